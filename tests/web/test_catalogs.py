"""Every message the pages show has its Korean translation (Korean is the default), with the
same placeholders: the templates' messages and the code's (``N_``, the API's refusals worded
again by ``haot.web.refusals``); and every message of the catalogs is one the pages show."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from haot.web.i18n import catalog_files, translations

WEB = Path(__file__).resolve().parents[2] / "src" / "haot" / "web"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_messages() -> set[str]:
    return {
        str(message)
        for _, _, message, _, _ in extract_from_dir(
            str(WEB / "templates"),
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }


def code_messages() -> set[str]:
    """Messages marked in the pages' Python code (``N_("...")``, Babel's default keywords)."""
    return {
        str(message)
        for _, _, message, _, _ in extract_from_dir(str(WEB), method_map=[("**.py", "python")])
    }


def korean_catalog() -> dict[str, str]:
    korean: dict[str, str] = {}
    for path in catalog_files("ko"):
        with path.open("rb") as po:
            korean |= {str(m.id): str(m.string) for m in read_po(po) if m.id}
    return korean


def test_every_template_message_is_translated_to_korean() -> None:
    used = template_messages()
    assert len(used) > 20  # the extraction found the messages: the check means something
    korean = korean_catalog()
    missing = sorted(m for m in used if not korean.get(m))
    assert not missing, f"no Korean for: {missing}"
    for message in used:
        assert set(PLACEHOLDER.findall(message)) == set(PLACEHOLDER.findall(korean[message])), (
            message
        )


def test_every_message_of_the_code_is_translated_to_korean() -> None:
    used = code_messages()
    assert "Enter at least %(min_length)s characters." in used  # the extraction sees N_()
    korean = korean_catalog()
    missing = sorted(m for m in used if not korean.get(m))
    assert not missing, f"no Korean for: {missing}"
    for message in used:
        assert set(PLACEHOLDER.findall(message)) == set(PLACEHOLDER.findall(korean[message])), (
            message
        )


def test_the_catalogs_hold_no_message_the_pages_no_longer_show() -> None:
    stale = sorted(set(korean_catalog()) - template_messages() - code_messages())
    assert not stale, f"in the catalogs, shown nowhere: {stale}"


def test_every_catalog_of_a_language_is_read() -> None:
    """The guest pages' catalog and the others (host, admin) make one set of translations."""
    files = catalog_files("ko")
    assert any(path.name == "messages.po" for path in files)
    korean = translations("ko")
    for path in files:
        with path.open("rb") as po:
            sample = next(m for m in read_po(po) if m.id and m.string and not m.pluralizable)
        assert korean.gettext(str(sample.id)) == sample.string, path.name
