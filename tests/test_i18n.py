"""The web platform speaks Kazakh, Russian and English: catalogues complete and in step with the code.

Every message marked in the templates (``_("...")``) and in Python (``tr(lang, "...")``, the message
being the second argument) must have a translation in the Kazakh and Russian catalogues, with the same
placeholders; the catalogues carry no fuzzy, obsolete or stale entries. When a test here fails after a
new string, re-extract and update the catalogues (from the repository root)::

    pybabel extract -F familycard/web/babel.cfg -k tr:2 -o familycard/web/messages.pot \\
        --no-location --sort-output .
    pybabel update -i familycard/web/messages.pot -d familycard/web/locale -D messages --ignore-obsolete

then translate the new ``msgstr ""`` entries in ``familycard/web/locale/{kk,ru}/LC_MESSAGES/messages.po``.
The pages themselves are then rendered in each language through the app.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_support import Nation, citizen_sign_in, make_app, sign_in, web_app, web_nation  # noqa: F401

from familycard.sources.catalogue import load_catalogue
from familycard.web.i18n import LANGS, LOCALE
from familycard.web.render import LABELS

pytestmark = pytest.mark.xdist_group("i18n")

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "familycard" / "web"
TRANSLATED = ("kk", "ru")
KEYWORDS = {**DEFAULT_KEYWORDS, "tr": (2,)}
PLURAL_FORMS = {
    "kk": "nplurals=2; plural=(n != 1);",
    "ru": "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) "
    "? 1 : 2);",
}
# ``{name}`` (str.format) and ``%(name)s`` / ``%s`` / ``%%`` (newstyle Jinja gettext always applies ``%``)
BRACES = re.compile(r"\{[^{}]*\}")
PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


@cache
def extracted() -> dict[str, tuple[str, ...]]:
    """Every message marked in the code and templates, with the files that use it."""
    with (WEB / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    where: dict[str, set[str]] = defaultdict(set)
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            where[msgid].add(f"{filename}:{lineno}")
    return {m: tuple(sorted(w)) for m, w in where.items()}


@cache
def catalogue(lang: str) -> Catalog:
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def entries(catalog: Catalog) -> dict[str, list[str]]:
    """msgid -> its translations (one per plural form), header left out."""
    out = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else m.id[0]
        out[key] = [m.string] if isinstance(m.string, str) else list(m.string or ())
    return out


def listing(messages: Iterable[object], where: dict[str, tuple[str, ...]] | None = None) -> str:
    lines = []
    for m in sorted(messages, key=repr):
        used = f"  ({', '.join(where[m][:3])})" if where and isinstance(m, str) and m in where else ""
        lines.append(f"  {m!r}{used}")
    return "\n".join(lines)


def test_messages_are_extracted() -> None:
    found = extracted()
    assert len(found) > 50
    assert "Digital Family Card" in found  # templates (Jinja2)
    assert "Sign in to your family card" in found  # views (tr(lang, ...))


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_has_a_translation(lang: str) -> None:
    translations = entries(catalogue(lang))
    found = extracted()
    missing = [m for m in found if m not in translations]
    empty = [m for m in found if m in translations and not all(s.strip() for s in translations[m])]
    assert not missing, f"not in the {lang} catalogue (re-extract and update, see this module):\n" + listing(
        missing, found
    )
    assert not empty, f"no {lang} translation:\n" + listing(empty, found)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalogue_has_no_fuzzy_obsolete_or_stale_entries(lang: str) -> None:
    catalog = catalogue(lang)
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries in {lang} (check the translation, then drop the flag):\n" + listing(
        fuzzy
    )
    assert not catalog.obsolete, f"obsolete entries in {lang}:\n" + listing(catalog.obsolete)
    stale = set(entries(catalog)) - set(extracted())
    assert not stale, f"entries in {lang} that no code or template uses any more:\n" + listing(stale)


def test_template_is_in_step() -> None:
    with (WEB / "messages.pot").open("rb") as f:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    found = extracted()
    assert not set(found) - pot, "messages.pot lacks (re-extract):\n" + listing(set(found) - pot, found)
    assert not pot - set(found), "messages.pot has unused messages (re-extract):\n" + listing(
        pot - set(found)
    )


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalogue_headers(lang: str) -> None:
    catalog = catalogue(lang)
    headers = dict(catalog.mime_headers)
    assert headers["Language"] == lang
    assert "charset=utf-8" in headers["Content-Type"].lower()
    assert catalog.plural_forms.replace(" ", "") == PLURAL_FORMS[lang].replace(" ", "")
    assert not catalog.fuzzy, f"the {lang} catalogue's header is marked fuzzy"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_are_kept(lang: str) -> None:
    wrong = []
    for msgid, strings in entries(catalogue(lang)).items():
        for s in strings:
            if not s:
                continue
            if sorted(BRACES.findall(s)) != sorted(BRACES.findall(msgid)):
                wrong.append(f"{msgid!r} -> {s!r}: placeholders {{...}} differ")
            if sorted(PERCENT.findall(s)) != sorted(PERCENT.findall(msgid)):
                wrong.append(f"{msgid!r} -> {s!r}: % placeholders differ")
            if "%" in PERCENT.sub("", s):
                wrong.append(f"{msgid!r} -> {s!r}: a lone % (write %% in templates)")
    assert not wrong, f"{lang}:\n" + "\n".join(wrong)


def test_placeholder_message_exists() -> None:
    """The SMS text carries ``{code}``: a translation that lost it would send no code."""
    assert any("{code}" in m for m in extracted())


@pytest.mark.parametrize("lang", TRANSLATED)
def test_kazakh_and_russian_use_cyrillic(lang: str) -> None:
    """Translations are written in Cyrillic (Latin only in acronyms such as API, JSON, SMS)."""
    latin_words = re.compile(r"\b(?![A-Z]{2,}\b|OpenAPI\b)[A-Za-z]{2,}\b")
    latin = [
        f"{m!r} -> {s!r}"
        for m, ss in entries(catalogue(lang)).items()
        for s in ss
        if latin_words.search(BRACES.sub("", s))
    ]
    assert not latin, f"{lang} translations with Latin words:\n" + "\n".join(latin)
    kazakh = re.compile("[әғқңөұүһі]", re.IGNORECASE)
    with_kazakh = [s for ss in entries(catalogue(lang)).values() for s in ss if kazakh.search(s)]
    if lang == "kk":
        assert len(with_kazakh) > len(entries(catalogue(lang))) // 3, "Kazakh with hardly any Kazakh letters"
    else:
        assert not with_kazakh, f"Kazakh letters in Russian: {with_kazakh}"


# --- the pages in each language ---------------------------------------------------------------------

SIGN_IN_TITLE = {
    "kk": "<title>Кіру · Отбасының цифрлық картасы</title>",
    "ru": "<title>Войти · Цифровая карта семьи</title>",
    "en": "<title>Sign in · Digital Family Card</title>",
}
BACK = {"kk": "Басты бетке оралу", "ru": "Вернуться на главную страницу", "en": "Back to the start page"}
PHRASE = {  # a phrase of base.html, in each language
    "kk": "Тек синтетикалық деректер",
    "ru": "Только синтетические данные",
    "en": "Synthetic data only",
}


@pytest.fixture(scope="module")
def app(web_nation: Nation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app for the tests that only read pages without signing in (setting up accounts is slow)."""
    made = make_app(web_nation, tmp_path_factory.mktemp("i18n-app"))
    yield made
    made.state.ctx.store.close()


def page_lang(html: str) -> str | None:
    got = re.search(r'<html lang="([a-z]+)">', html)
    return got.group(1) if got else None


@pytest.mark.parametrize("lang", LANGS)
def test_sign_in_page_in_each_language(app: FastAPI, lang: str) -> None:
    r = TestClient(app).get("/login", params={"lang": lang})
    assert r.status_code == 200
    assert f'<html lang="{lang}">' in r.text
    assert SIGN_IN_TITLE[lang] in r.text
    assert PHRASE[lang] in r.text


def test_kazakh_is_the_default(app: FastAPI) -> None:
    r = TestClient(app).get("/login")
    assert page_lang(r.text) == "kk"
    assert SIGN_IN_TITLE["kk"] in r.text


def test_query_language_is_remembered_in_a_cookie(app: FastAPI) -> None:
    c = TestClient(app)
    r = c.get("/login", params={"lang": "ru"})
    assert page_lang(r.text) == "ru"
    assert c.cookies.get("fc_lang") == "ru", "?lang=ru did not set the fc_lang cookie"
    again = c.get("/login")
    assert page_lang(again.text) == "ru"
    assert SIGN_IN_TITLE["ru"] in again.text


def test_language_switch_link_sets_the_cookie(app: FastAPI) -> None:
    c = TestClient(app)
    r = c.get("/lang/en", params={"next": "/login"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert c.cookies.get("fc_lang") == "en"
    assert page_lang(c.get("/login").text) == "en"
    assert page_lang(c.get("/lang/xx", params={"next": "/login"}).text) == "en"  # unknown: unchanged


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("kk-KZ", "kk"),
        ("de-DE,de;q=0.9,ru;q=0.5", "ru"),
        ("fr-FR,fr;q=0.9", "kk"),
        ("", "kk"),
    ],
)
def test_accept_language_is_negotiated(app: FastAPI, accept: str, lang: str) -> None:
    r = TestClient(app).get("/login", headers={"Accept-Language": accept})
    assert page_lang(r.text) == lang
    assert SIGN_IN_TITLE[lang] in r.text


def test_query_and_cookie_come_before_the_browser(app: FastAPI) -> None:
    c = TestClient(app)
    browser = {"Accept-Language": "en-US,en;q=0.9"}
    c.cookies.set("fc_lang", "kk")
    assert page_lang(c.get("/login", headers=browser).text) == "kk"
    assert page_lang(c.get("/login", params={"lang": "ru"}, headers=browser).text) == "ru"


AGENCY = {
    "kk": "Денсаулық сақтау министрлігі",
    "ru": "Министерство здравоохранения",
    "en": "Ministry of Health",
}


@pytest.mark.parametrize("lang", LANGS)
def test_staff_pages_render_in_each_language(web_app: FastAPI, web_nation: Nation, lang: str) -> None:
    """Every staff page, and the error page, renders in the language (a stray % would break it)."""
    pages = {
        "analyst": ["/", "/overview", "/families", "/quality"],
        "worker": ["/families?purpose=case_work"],
        "auditor": ["/audit?verify=true"],
        "admin": ["/admin/accounts", "/admin/keys"],
    }
    for username, paths in pages.items():
        c = TestClient(web_app)
        c.cookies.set("fc_lang", lang)
        csrf = sign_in(c, username)
        pseudonym = (
            c.get("/api/v1/families").json()["families"][0]["pseudonym"] if username == "worker" else ""
        )
        if pseudonym:
            paths = [*paths, f"/families/{pseudonym}", f"/families/{pseudonym}?purpose=case_work"]
        for path in paths:
            r = c.get(path)
            assert r.status_code == 200, (lang, username, path)
            assert page_lang(r.text) == lang, (lang, path)
            assert PHRASE[lang] in r.text, (lang, path)
            if path == "/quality":  # names that come from data are shown in the language too
                assert AGENCY[lang] in r.text, (lang, path)
        if username == "analyst":
            r = c.get("/families/fam-nonexistent")  # the error page
            assert r.status_code == 404
            assert page_lang(r.text) == lang
            assert BACK[lang] in r.text
        if pseudonym:
            r = c.post(f"/families/{pseudonym}/identity", data={"purpose": "case_work", "csrf": csrf})
            assert r.status_code == 200, (lang, "identity")
            assert page_lang(r.text) == lang


@pytest.mark.parametrize(
    ("lang", "sms", "title"),
    [
        ("kk", "Отбасы картасы", "Менің отбасымның картасы"),
        ("ru", "Карта семьи", "Карта моей семьи"),
        ("en", "Family card", "My family card"),
    ],
)
def test_citizen_is_served_in_their_language(
    web_app: FastAPI, web_nation: Nation, lang: str, sms: str, title: str
) -> None:
    """The SMS and the citizen's own card come in the chosen language, the code kept in the text."""
    people = web_app.state.ctx.snapshot.identities(web_nation.family_id)
    iin = next(p["iin"] for p in people if p["iin"] and p["phones"])
    c = TestClient(web_app)
    c.cookies.set("fc_lang", lang)
    citizen_sign_in(c, web_app, iin)
    text = web_app.state.ctx.sms.messages()[-1]["text"]
    assert text.startswith(sms) and re.search(r"\b\d{6}\b", text) and "{code}" not in text
    r = c.get("/me")
    assert r.status_code == 200
    assert page_lang(r.text) == lang
    assert f"<h1>{title}</h1>" in r.text


def test_every_agency_of_the_catalogue_has_a_translated_name() -> None:
    """The quality page names each feed's agency in the page's language: every agency the source
    catalogue names is a label (and so, by the tests above, in the Kazakh and Russian catalogues)."""
    agencies = {feed.agency for feed in load_catalogue()}
    assert agencies and not agencies - set(LABELS["agency"]), sorted(agencies - set(LABELS["agency"]))
