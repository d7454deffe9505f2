"""Kazakh, Russian and English through gettext catalogues (Babel).

The catalogues are ``locale/<lang>/LC_MESSAGES/messages.po`` (English is the source language). They
are compiled in memory at start-up, so the repository holds only the text files translators edit.
``pybabel extract -F familycard/web/babel.cfg`` finds the messages; a test keeps the catalogues
complete and in step with the code and templates.

The language of a request: ``?lang=`` (also remembered in a cookie), else the ``lang`` cookie, else the
browser's ``Accept-Language``, else Kazakh, the state language.
"""

from __future__ import annotations

import io
from functools import cache
from gettext import NullTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGS = ("kk", "ru", "en")
DEFAULT = "kk"
LOCALE = Path(__file__).with_name("locale")
LANG_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def N_(message: str) -> str:  # gettext's conventional name, known to the extractor
    """Mark ``message`` for translation where it is written; :func:`tr` translates it where it is shown."""
    return message


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (English: the messages as written)."""
    po = LOCALE / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def gettext(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def negotiate(query: str | None, cookie: str | None, accept: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGS:
            return str(candidate)
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return DEFAULT
