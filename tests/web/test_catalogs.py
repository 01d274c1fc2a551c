"""Every message the templates show has its Korean translation (Korean is the default), with the
same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "src" / "haot" / "web"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_every_template_message_is_translated_to_korean() -> None:
    used = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(WEB / "templates"),
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    assert len(used) > 20  # the extraction found the messages: the check means something
    with (WEB / "locale" / "ko" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        korean = {m.id: m.string for m in read_po(po) if m.id}
    missing = sorted(str(m) for m in used if not korean.get(m))
    assert not missing, f"no Korean for: {missing}"
    for message in used:
        assert set(PLACEHOLDER.findall(str(message))) == set(
            PLACEHOLDER.findall(str(korean[message]))
        ), message
