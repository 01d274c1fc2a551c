"""Languages of the pages: Korean by default, English by choice (ADR 0017).

Messages are gettext catalogs read with Babel at start-up; money, numbers and dates are formatted
by Babel for the language. The language is the ``haot_lang`` cookie (set by the switch), else the
best of ``Accept-Language``, else Korean.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_compact_decimal, format_currency, format_decimal
from starlette.requests import Request

LANGUAGES = ("ko", "en")
DEFAULT = "ko"
COOKIE = "haot_lang"
_LOCALES = Path(__file__).parent / "locale"
SEOUL = ZoneInfo("Asia/Seoul")  # the platform's clock: stays and drops are on Seoul time


def language_of(request: Request) -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    wanted = request.headers.get("accept-language", "")
    ranked = []
    for position, part in enumerate(wanted.split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        ranked.append((-weight, position, tag.split("-")[0].strip().lower()))
    for *_, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return DEFAULT


def catalog_files(language: str) -> list[Path]:
    """The catalogs of ``language``: one per part of the site (``messages.po`` for the guest
    pages, ``host.po``, ``admin.po``), so each part's messages stay beside each other."""
    return sorted((_LOCALES / language / "LC_MESSAGES").glob("*.po"))


def translations(language: str) -> gettext.NullTranslations:
    """The catalogs of ``language`` as one (messages are written in English: English needs
    none)."""
    merged: gettext.NullTranslations = gettext.NullTranslations()
    for path in reversed(catalog_files(language)):
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = gettext.GNUTranslations(compiled)
        part.add_fallback(merged)
        merged = part
    return merged


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The translations of ``language``, read once per process (the pages' and their refusals')."""
    return translations(language)


class Formats:
    """Money, numbers and dates as the language writes them."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._locale = Locale.parse(language)

    def won(self, amount: int) -> str:
        return format_currency(amount, "KRW", locale=self._locale)

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self._locale)

    def day(self, value: date | str) -> str:
        day = date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(day, format="medium", locale=self._locale)

    def moment(self, value: datetime | str) -> str:
        """A point in time, on Seoul's clock."""
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        day = format_date(when.astimezone(SEOUL), format="medium", locale=self._locale)
        return f"{day} {format_time(when, format='short', tzinfo=SEOUL, locale=self._locale)}"

    def compact(self, value: float) -> str:
        """A price where room is short (a calendar's day): 8만, 12.5만; 80K, 125K."""
        return format_compact_decimal(value, locale=self._locale, fraction_digits=1)

    def weekdays(self) -> list[str]:
        """Short weekday names from Sunday, as the month calendars show them."""
        names = self._locale.days["format"]["abbreviated"]
        return [names[(6 + n) % 7] for n in range(7)]

    def month(self, value: str) -> str:
        """A month (``YYYY-MM``) as the language names it: 2026년 12월, December 2026."""
        first = date.fromisoformat(f"{value}-01")
        return format_skeleton("yMMMM", first, locale=self._locale)
