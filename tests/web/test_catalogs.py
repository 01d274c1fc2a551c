"""Every message the templates show has its Korean translation (Korean is the default), with the
same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from haot.web.i18n import catalog_files, translations

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
    korean: dict[object, object] = {}
    for path in catalog_files("ko"):
        with path.open("rb") as po:
            korean |= {m.id: m.string for m in read_po(po) if m.id}
    missing = sorted(str(m) for m in used if not korean.get(m))
    assert not missing, f"no Korean for: {missing}"
    for message in used:
        assert set(PLACEHOLDER.findall(str(message))) == set(
            PLACEHOLDER.findall(str(korean[message]))
        ), message


def test_every_catalog_of_a_language_is_read() -> None:
    """The guest pages' catalog and the others (host, admin) make one set of translations."""
    files = catalog_files("ko")
    assert any(path.name == "messages.po" for path in files)
    korean = translations("ko")
    for path in files:
        with path.open("rb") as po:
            sample = next(m for m in read_po(po) if m.id and m.string and not m.pluralizable)
        assert korean.gettext(str(sample.id)) == sample.string, path.name
