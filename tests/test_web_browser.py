"""Every page in a real browser (Chromium), in Kazakh, Russian and English, checked by axe-core.

One app is served by uvicorn on a free local port for the whole module, and one Chromium is driven
through Playwright; each role signs in through the real login form in its own browser context (its own
cookies), switches language with the header's links and visits its pages. Each page must pass axe-core's
WCAG 2.1 A and AA rules with no violation. The skip link, signing out and a refused password are checked
by keyboard and by what the page shows.

The pages set a strict Content-Security-Policy (``script-src 'self'``). Playwright's ``page.evaluate``
runs in the page without being subject to it, so axe is injected as it is and the contexts keep the CSP.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import axe_playwright_python.sync_playwright as axe_sync
import playwright.sync_api as playwright_sync
import pytest
import uvicorn
from fastapi import FastAPI
from web_support import PASSWORD, Nation, make_app, web_nation  # noqa: F401

from familycard.web.i18n import LANGS
from familycard.web.render import tr

CHROMIUM = "/usr/bin/chromium"  # Debian's (Playwright's own browser download is not used)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("web_browser"),
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG}, "resultTypes": ["violations"]}
TIMEOUT_MS = 20_000

Page = Any  # playwright.sync_api.Page (imported lazily, so a machine without Playwright skips the module)


@dataclass
class Site:
    url: str
    app: FastAPI
    nation: Nation
    browser: Any
    axe: Any

    def page(self) -> Page:
        """A fresh page in its own context (no cookies: signed out, language from Accept-Language)."""
        context = self.browser.new_context(base_url=self.url, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        return context.new_page()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def served(web_nation: Nation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    """The app, served by uvicorn in a background thread on a free port of 127.0.0.1."""
    app = make_app(web_nation, tmp_path_factory.mktemp("web-browser"))
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.ctx.store.close()


@pytest.fixture(scope="module")
def site(served: tuple[str, FastAPI], web_nation: Nation) -> Iterator[Site]:
    """One Chromium for the module, over the served app."""
    url, app = served
    with playwright_sync.sync_playwright() as pw:
        assert Path(CHROMIUM).exists(), (
            f"no Chromium at {CHROMIUM}: install Debian's chromium (./run test does)"
        )
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Site(url, app, web_nation, browser, axe_sync.Axe())
        finally:
            browser.close()


# --- checks ----------------------------------------------------------------------------------------


def check_axe(site: Site, page: Page, what: str) -> None:
    """axe-core finds no WCAG 2.1 A/AA violation on the page."""
    results = site.axe.run(page, options=AXE_OPTIONS).response
    assert results["passes"], f"axe ran no rule on {what}"
    found = results["violations"]
    lines = [
        f"  {v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(
            " ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"]) for n in v["nodes"]
        )
        for v in found
    ]
    assert not found, f"axe: {len(found)} WCAG violation(s) on {what} ({page.url}):\n" + "\n".join(lines)


def check_page(site: Site, page: Page, lang: str, title: str, what: str) -> None:
    """The page is in ``lang``, its heading is ``title`` in that language, and axe finds nothing."""
    assert page.locator("html").get_attribute("lang") == lang, what
    assert page.locator("main h1").inner_text().strip() == tr(lang, title), what
    assert page.locator(f'nav.langs a[hreflang="{lang}"]').get_attribute("aria-current") == "true", what
    check_axe(site, page, f"{what} [{lang}]")


def goto(page: Page, path: str, status: int = 200) -> None:
    response = page.goto(path)
    assert response is not None and response.status == status, f"{path}: {response and response.status}"


def switch_language(page: Page, lang: str) -> None:
    """Click the header's link to ``lang``; the same page comes back in that language."""
    before = page.url
    with page.expect_navigation():
        page.locator(f'nav.langs a[hreflang="{lang}"]').click()
    assert page.locator("html").get_attribute("lang") == lang
    assert page.url == before, "the language switch should come back to the same page"


def sign_in_staff(site: Site, username: str, password: str = PASSWORD) -> Page:
    page = site.page()
    goto(page, "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.locator("main form.stack button[type=submit]").click()
    assert page.locator(".signout .who").inner_text() == username
    return page


def citizen_with_phone(site: Site) -> str:
    """An IIN of a person whose family is assessed and who has a mobile number (to receive the code)."""
    snap = site.app.state.ctx.snapshot
    fids = [site.nation.family_id] + [r.family_id for r in snap.families("", limit=200, offset=0)[1]]
    for fid in fids:
        for person in snap.identities(fid):
            if person["iin"] and snap.person_by_iin(person["iin"])[2]:
                return str(person["iin"])
    raise AssertionError("no person with an IIN and a mobile number in the test nation")


SMS = "Family card: your sign-in code is {code}. Do not tell it to anyone."


def code_sent_to(site: Site, iin: str, after: int, lang: str) -> str:
    """The one-time code from the newest message the demo gateway 'sent' (its outbox file), which is
    written in the language of the page that asked for it."""
    phone = site.app.state.ctx.snapshot.person_by_iin(iin)[2]
    messages = [m for m in site.app.state.ctx.sms.messages()[after:] if m["phone"] == phone]
    assert messages, "no SMS was sent"
    code = re.search(r"\b(\d{6})\b", messages[-1]["text"])
    assert code is not None, messages[-1]
    assert messages[-1]["text"] == tr(lang, SMS).format(code=code.group(1))
    return code.group(1)


def each_language(page: Page, start: str, visit: Callable[[str], None]) -> None:
    """``visit(lang)`` for each language, switching with the header's links on ``start`` first."""
    for lang in LANGS:
        goto(page, start)
        switch_language(page, lang)
        visit(lang)


# --- tests -----------------------------------------------------------------------------------------


def test_pages_before_signing_in(site: Site) -> None:
    page = site.page()
    goto(page, "/")
    assert page.locator("html").get_attribute("lang") == "en"  # from the browser's Accept-Language
    for lang in LANGS:
        goto(page, "/")
        switch_language(page, lang)
        check_page(site, page, lang, "Digital Family Card", "start page")
        goto(page, "/login")
        check_page(site, page, lang, "Sign in", "staff sign-in")
        goto(page, "/citizen/login")
        check_page(site, page, lang, "Sign in to your family card", "citizen sign-in")
        goto(page, "/no/such/page", 404)
        assert page.locator("main [role=alert]").count() == 1
        check_axe(site, page, f"not-found page [{lang}]")
    page.context.close()


def test_error_pages_follow_the_chosen_language(site: Site) -> None:
    page = site.page()
    goto(page, "/")
    switch_language(page, "ru")
    goto(page, "/no/such/page", 404)
    assert page.locator("html").get_attribute("lang") == "ru"
    page.context.close()


def test_the_language_switch_changes_the_page(site: Site) -> None:
    """<html lang>, the current-language mark and the text all follow the link clicked."""
    page = sign_in_staff(site, "worker")
    policy = site.app.state.ctx.policy
    texts = {}
    for lang in LANGS:
        switch_language(page, lang)
        assert page.locator("html").get_attribute("lang") == lang
        current = page.locator("nav.langs a[aria-current]")
        assert current.count() == 1 and current.get_attribute("hreflang") == lang
        role = policy.roles["social_worker"].name[lang]
        assert role in page.locator("main").inner_text()
        assert page.title().endswith(tr(lang, "Digital Family Card"))
        texts[lang] = page.locator("body").inner_text()
    assert len(set(texts.values())) == len(LANGS), "each language should show a different page"
    page.context.close()


def test_skip_link_moves_focus_to_main(site: Site) -> None:
    page = site.page()
    goto(page, "/")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("el => el === document.activeElement"), "the first Tab should reach the skip link"
    assert skip.is_visible(), "the focused skip link should be visible"
    assert skip.bounding_box()["x"] >= 0
    ring = skip.evaluate(
        "el => [getComputedStyle(el).outlineStyle, parseFloat(getComputedStyle(el).outlineWidth)]"
    )
    assert ring[0] != "none" and ring[1] >= 2, f"the focused link should show a focus ring: {ring}"
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'main'")
    page.context.close()


def test_pages_reflow_on_a_narrow_screen(site: Site) -> None:
    """At 320 CSS pixels wide the pages without tables need no horizontal scrolling (WCAG 1.4.10), in
    each language, signed out and in (the header holds the menu, the languages and the sign-out)."""
    anonymous, worker = site.page(), sign_in_staff(site, "worker")
    for page, paths in (
        (anonymous, ("/", "/login", "/citizen/login")),
        (worker, ("/", "/families/fam-none")),
    ):
        page.set_viewport_size({"width": 320, "height": 640})
        for path in paths:
            goto(page, path, 404 if "fam-none" in path else 200)
            for lang in LANGS:
                switch_language(page, lang)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 320, f"{path} [{lang}] is {width} px wide at a 320 px viewport"
        page.context.close()


def test_a_wrong_password_is_refused_with_an_alert(site: Site) -> None:
    page = site.page()
    goto(page, "/login")
    page.fill("#username", "analyst")
    page.fill("#password", "not the password at all")
    with page.expect_navigation():
        page.locator("main form.stack button[type=submit]").click()
    alert = page.locator("[role=alert]")
    assert alert.count() == 1
    assert alert.inner_text() == tr("en", "The user name or password is wrong.")
    assert page.locator("#username").get_attribute("aria-describedby") == alert.get_attribute("id")
    assert page.locator(".signout").count() == 0
    check_page(site, page, "en", "Sign in", "refused sign-in")
    page.context.close()


def test_social_worker_pages(site: Site) -> None:
    page = sign_in_staff(site, "worker")

    def visit(lang: str) -> None:
        check_page(site, page, lang, "Digital Family Card", "start page (social worker)")
        goto(page, "/overview")
        check_page(site, page, lang, "Overview", "overview")
        goto(page, "/families")
        check_page(site, page, lang, "Families", "family list")
        with page.expect_navigation():
            page.locator("main table tbody th a").first.click()
        pseudonym = page.url.rsplit("/", 1)[-1]
        assert pseudonym.startswith("fam-")
        check_page(site, page, lang, "Family card", "family card")
        goto(page, f"/families/{pseudonym}?purpose=case_work")
        check_page(site, page, lang, "Family card", "family card with a purpose")
        page.select_option("#reid-purpose", "case_work")
        with page.expect_navigation():
            page.locator("section[aria-labelledby=reid-h] button[type=submit]").click()
        assert page.url.endswith(f"/families/{pseudonym}/identity")
        check_page(site, page, lang, "Who the members are", "re-identification")
        assert page.locator("main table tbody tr").count() >= 1
        goto(page, "/families/fam-does-not-exist", 404)
        assert page.locator("main [role=alert]").count() == 1
        check_page(site, page, lang, "Error", "no such family")

    each_language(page, "/", visit)
    page.context.close()


def test_national_analyst_pages(site: Site) -> None:
    page = sign_in_staff(site, "analyst")

    def visit(lang: str) -> None:
        check_page(site, page, lang, "Digital Family Card", "start page (analyst)")
        goto(page, "/quality")
        check_page(site, page, lang, "Feed quality", "feed quality")
        goto(page, "/overview")
        check_page(site, page, lang, "Overview", "overview (country)")
        goto(page, "/families")
        level = page.locator("#level option").nth(1).get_attribute("value")
        page.select_option("#level", level)
        with page.expect_navigation():
            page.locator("main form.inline button[type=submit]").click()
        assert f"level={level}" in page.url
        check_page(site, page, lang, "Families", "family list, one level")
        link = page.locator("main table tbody th a").first
        if link.count():
            with page.expect_navigation():
                link.click()
            check_page(site, page, lang, "Family card", "family card, sensitive reasons withheld")
        goto(page, "/audit", 403)
        check_axe(site, page, f"forbidden page [{lang}]")

    each_language(page, "/", visit)
    page.context.close()


def test_auditor_pages(site: Site) -> None:
    page = sign_in_staff(site, "auditor")

    def visit(lang: str) -> None:
        check_page(site, page, lang, "Audit log", "audit log")
        with page.expect_navigation():
            page.locator("form.inline:has(input[name=verify]) button").click()
        assert "verify=true" in page.url
        status = page.locator("main [role=status]")
        assert status.count() == 1 and "ok" in (status.get_attribute("class") or "")
        check_page(site, page, lang, "Audit log", "audit log, chain verified")

    each_language(page, "/audit", visit)
    page.context.close()


def test_administrator_pages(site: Site) -> None:
    page = sign_in_staff(site, "admin")

    def visit(lang: str) -> None:
        check_page(site, page, lang, "Accounts", "accounts")
        goto(page, "/admin/keys")
        check_page(site, page, lang, "Pseudonym keys", "pseudonym keys")

    each_language(page, "/admin/accounts", visit)
    page.context.close()


def test_citizen_signs_in_with_a_code_and_reads_the_card(site: Site) -> None:
    iin = citizen_with_phone(site)
    page = site.page()
    for lang in LANGS:
        goto(page, "/citizen/login")
        switch_language(page, lang)
        check_page(site, page, lang, "Sign in to your family card", "citizen sign-in, IIN")
        sent = len(site.app.state.ctx.sms.messages())
        page.fill("#iin", iin)
        with page.expect_navigation():
            page.locator("main form.stack button[type=submit]").click()
        assert page.locator("#code").count() == 1
        check_page(site, page, lang, "Sign in to your family card", "citizen sign-in, code")
        code = code_sent_to(site, iin, sent, lang)
        if lang == LANGS[0]:  # a wrong code first: an alert, tied to the field
            page.fill("#code", "000000" if code != "000000" else "111111")
            with page.expect_navigation():
                page.locator("main form.stack button[type=submit]").click()
            alert = page.locator("main [role=alert]")
            assert alert.inner_text() == tr(lang, "The code is wrong or has expired.")
            assert page.locator("#code").get_attribute("aria-describedby") == alert.get_attribute("id")
            assert page.locator("#code").get_attribute("aria-invalid") == "true"
            check_page(site, page, lang, "Sign in to your family card", "citizen sign-in, wrong code")
        page.fill("#code", code)
        with page.expect_navigation():
            page.locator("main form.stack button[type=submit]").click()
        assert page.url.endswith("/me")
        check_page(site, page, lang, "My family card", "own card")
        goto(page, "/")  # a citizen's start page is their card
        assert page.url.endswith("/me")
        with page.expect_navigation():
            page.locator(".signout button").click()
        assert page.locator(".signout").count() == 0
    page.context.close()


def test_sign_out(site: Site) -> None:
    page = sign_in_staff(site, "worker")
    goto(page, "/families")
    switch_language(page, "kk")
    session = [c for c in page.context.cookies() if c["name"] == "fc_session"]
    assert len(session) == 1
    with page.expect_navigation():
        page.get_by_role("button", name=tr("kk", "Sign out")).click()
    assert page.url == site.url + "/"
    assert page.locator(".signout").count() == 0
    goto(page, "/families")  # signed out: back to the sign-in form
    assert page.url.startswith(site.url + "/login")
    assert page.locator("#password").count() == 1
    page.context.add_cookies(session)  # the old session cookie no longer opens anything
    goto(page, "/families")
    assert page.url.startswith(site.url + "/login")
    assert page.locator(".signout").count() == 0
    page.context.close()
