"""The access-control matrix: every route × every role × inside/outside the territory × purposes.

The expectations are written here, independently of the code: which permission each route needs,
whether it concerns one family (territory-scoped: outside the territory it does not exist, 404),
whether sensitive categories need a declared purpose, whether it changes state (CSRF token). The roles'
permissions, purposes and each purpose's categories are read straight from ``policy.toml``. Every cell
is requested; every difference from the expectation is collected and all of them are printed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount
from web_support import ROLES, Nation, citizen_sign_in, make_app, sign_in, web_nation  # noqa: F401

import familycard.security.policy
from familycard.identity.iin import is_valid
from familycard.indicators.methodology import load_methodology
from familycard.scoring.explain import explain_family
from familycard.security.accounts import start_session
from familycard.security.policy import load_policy
from familycard.store.models import Account
from familycard.store.warehouse import Warehouse

pytestmark = pytest.mark.xdist_group("web_access")

POLICY_FILE = Path(familycard.security.policy.__file__).with_name("policy.toml")
POLICY = tomllib.loads(POLICY_FILE.read_text(encoding="utf-8"))
ROLE_PERMS: dict[str, set[str]] = {r: set(v["permissions"]) for r, v in POLICY["roles"].items()}
ROLE_PURPOSES: dict[str, list[str]] = {r: list(v["purposes"]) for r, v in POLICY["roles"].items()}
PURPOSE_CATS: dict[str, set[str]] = {p: set(v["categories"]) for p, v in POLICY["purposes"].items()}
PURPOSE_REID: dict[str, bool] = {p: bool(v["reidentify"]) for p, v in POLICY["purposes"].items()}
UNKNOWN = "no_such_purpose"
IIN_RE = re.compile(r"(?<!\d)\d{12}(?!\d)")
# Territory-scoped JSON answers whose content check_body verifies against the warehouse.
SCOPE_CHECKED = {"/api/v1/families", "/api/v1/overview"}


@dataclass(frozen=True)
class Rule:
    """What a route needs, written from the design, not read from the code."""

    need: str  # "public", "session" (any signed-in), "citizen", or a policy permission
    family: bool = False  # about one family: territory-scoped, 404 outside
    scoped: bool = False  # aggregates or a list over the viewer's territory
    purpose: str = (
        ""  # "read": sensitive categories need a purpose; "reidentify": needs a purpose allowing it
    )
    csrf: bool = False  # changes state: the session's CSRF token is required
    pre: bool = False  # a sign-in form: the pre-session (double-submit) token is required
    ok: int = 200


PAGE_FAMILY = Rule("view_families", family=True, purpose="read")
REID = Rule("reidentify", family=True, purpose="reidentify", csrf=True)
TABLE: dict[tuple[str, str], Rule] = {
    ("GET", "/api/openapi.json"): Rule("public"),
    ("HEAD", "/api/openapi.json"): Rule("public"),
    ("GET", "/static"): Rule("public"),  # the static files mount
    ("GET", "/"): Rule("public"),  # a citizen is sent on to /me
    ("GET", "/healthz"): Rule("public"),
    ("GET", "/login"): Rule("public"),
    ("POST", "/login"): Rule("public", pre=True, ok=303),
    ("POST", "/logout"): Rule("session", csrf=True, ok=303),
    ("GET", "/lang/{code}"): Rule("public", ok=303),
    ("GET", "/citizen/login"): Rule("public"),
    # Sign-in at an OpenID Connect provider: none is configured here, so the routes do not exist (404).
    ("GET", "/login/oidc"): Rule("public", ok=404),
    ("GET", "/citizen/login/oidc"): Rule("public", ok=404),
    ("GET", "/auth/callback"): Rule("public", ok=404),
    ("POST", "/citizen/code"): Rule("public", pre=True),
    ("POST", "/citizen/login"): Rule("public", pre=True, ok=303),
    ("GET", "/api/v1/session"): Rule("public"),
    ("GET", "/overview"): Rule("view_aggregates", scoped=True),
    ("GET", "/api/v1/overview"): Rule("view_aggregates", scoped=True),
    ("GET", "/quality"): Rule("view_quality"),
    ("GET", "/api/v1/quality"): Rule("view_quality"),
    ("GET", "/families"): Rule("view_families", scoped=True),
    ("GET", "/api/v1/families"): Rule("view_families", scoped=True),
    ("GET", "/families/{pseudonym}"): PAGE_FAMILY,
    ("GET", "/api/v1/families/{pseudonym}"): PAGE_FAMILY,
    ("POST", "/families/{pseudonym}/identity"): REID,
    ("POST", "/api/v1/families/{pseudonym}/identity"): REID,
    ("GET", "/audit"): Rule("view_audit"),
    ("GET", "/api/v1/audit"): Rule("view_audit"),
    ("GET", "/api/v1/audit/verification"): Rule("view_audit"),
    ("GET", "/admin/accounts"): Rule("manage_accounts"),
    ("POST", "/admin/accounts"): Rule("manage_accounts", csrf=True, ok=303),
    ("GET", "/api/v1/accounts"): Rule("manage_accounts"),
    ("POST", "/api/v1/accounts"): Rule("manage_accounts", csrf=True, ok=201),
    ("GET", "/admin/keys"): Rule("rotate_keys"),
    ("POST", "/admin/keys/rotate"): Rule("rotate_keys", csrf=True, ok=303),
    ("GET", "/api/v1/keys"): Rule("rotate_keys"),
    ("POST", "/api/v1/keys/rotate"): Rule("rotate_keys", csrf=True, ok=200),
    ("GET", "/me"): Rule("citizen"),
    ("GET", "/api/v1/me"): Rule("citizen"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the application answers, mounts as GET of their prefix."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x: included routers are lazy

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI: app.routes is already flat
        routes = list(app.routes)
    found = set()
    for r in routes:
        original = getattr(r, "original_route", r)
        if isinstance(original, Mount):
            found.add(("GET", original.path))
            continue
        for method in r.methods or ():
            found.add((method, r.path_format))
    return found


# --- the principals --------------------------------------------------------------------------------


@dataclass
class Who:
    name: str
    role: str  # a policy role, "citizen" or "anonymous"
    territory: str
    client: TestClient
    csrf: str = ""

    @property
    def anonymous(self) -> bool:
        return self.role == "anonymous"

    @property
    def citizen(self) -> bool:
        return self.role == "citizen"

    @property
    def staff(self) -> bool:
        return not (self.anonymous or self.citizen)


@dataclass
class World:
    app: FastAPI
    nation: Nation
    who: list[Who]
    inside: str  # pseudonym of a family inside every account's territory
    outside: str  # pseudonym of a family outside every regional account's territory
    missing: str  # a well-formed pseudonym of no family
    inside_id: str
    outside_id: str
    outside_kato: str
    citizen_iin: str
    citizen_person: str


def find_citizen(app: FastAPI, family_ids: list[str]) -> tuple[str, str]:
    """(IIN, person id) of someone with a mobile number, who can sign in with a one-time code."""
    snap = app.state.ctx.snapshot
    for fid in family_ids:
        for p in snap.identities(fid):
            if p["iin"] and p["phones"]:
                return str(p["iin"]), str(p["person_id"])
    raise AssertionError("no person with a mobile number in the sample nation")


@pytest.fixture(scope="module")
def world(web_nation: Nation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = make_app(web_nation, tmp_path_factory.mktemp("web-access"))
    scores = Warehouse(web_nation.data).read("family_scores").to_pylist()
    outside_id = next(str(r["family_id"]) for r in scores if str(r["kato"]) == web_nation.other_kato)
    ids = [web_nation.family_id, *(str(r["family_id"]) for r in scores)]
    iin, person = find_citizen(app, ids)
    keys = app.state.ctx.keys
    who = []
    for username, role, digits, _measure in ROLES:
        c = TestClient(app)
        who.append(Who(username, role, web_nation.kato[:digits], c, sign_in(c, username)))
    citizen = TestClient(app)
    citizen_sign_in(citizen, app, iin)
    who.append(Who("citizen", "citizen", "", citizen, str(citizen.get("/api/v1/session").json()["csrf"])))
    who.append(Who("anonymous", "anonymous", "", TestClient(app)))
    yield World(
        app=app,
        nation=web_nation,
        who=who,
        inside=keys.pseudonym("family", web_nation.family_id),
        outside=keys.pseudonym("family", outside_id),
        missing=keys.pseudonym("family", "no-such-family"),
        inside_id=web_nation.family_id,
        outside_id=outside_id,
        outside_kato=web_nation.other_kato,
        citizen_iin=iin,
        citizen_person=person,
    )
    for w in who:
        w.client.close()
    app.state.ctx.store.close()


def call(client: TestClient, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request that leaves the client's cookies (its session, its language) as they were."""
    saved = list(client.cookies.jar)
    try:
        return client.request(method, url, follow_redirects=False, **kw)
    finally:
        client.cookies.jar.clear()
        for cookie in saved:
            client.cookies.jar.set_cookie(cookie)


# --- the cells -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    method: str
    path: str
    who: str
    inside: bool | None = None  # the family asked about (family routes)
    purpose: str | None = None
    csrf: bool | None = None
    pre: str | None = None  # "wrong" or "missing" (sign-in forms)

    def __str__(self) -> str:
        parts = [f"{self.method} {self.path}", f"as {self.who}"]
        if self.inside is not None:
            parts.append("inside" if self.inside else "outside")
        if self.purpose is not None or self.inside is not None:
            parts.append(f"purpose={self.purpose!r}")
        if self.csrf is not None:
            parts.append("with CSRF" if self.csrf else "without CSRF")
        if self.pre is not None:
            parts.append(f"pre-token {self.pre}")
        return ", ".join(parts)


def purposes_to_try(who: Who) -> list[str | None]:
    """No purpose, each purpose the role may declare, one it may not, and one the policy lacks."""
    allowed = ROLE_PURPOSES.get(who.role, [])
    other = next(p for p in POLICY["purposes"] if p not in allowed)
    return [None, *allowed, other, UNKNOWN]


def cells(w: World) -> Iterator[tuple[Cell, Rule, Who]]:
    for (method, path), rule in sorted(TABLE.items()):
        for who in w.who:
            if rule.pre:
                for pre in ("wrong", "missing"):
                    yield Cell(method, path, who.name, pre=pre), rule, who
            elif rule.family:
                for inside in (True, False):
                    for purpose in purposes_to_try(who):
                        for csrf in (True, False) if rule.csrf else (None,):
                            yield Cell(method, path, who.name, inside, purpose, csrf), rule, who
            elif rule.csrf:
                for csrf in (True, False):
                    yield Cell(method, path, who.name, csrf=csrf), rule, who
            else:
                yield Cell(method, path, who.name), rule, who


def expected(cell: Cell, rule: Rule, who: Who, inside: bool) -> int:
    """The status the design says this cell gets."""
    api = cell.path.startswith("/api/")
    if rule.pre:
        return 403 if cell.pre == "wrong" else 422
    if rule.need == "public":
        return 303 if (cell.path == "/" and who.citizen) else rule.ok
    if who.anonymous:
        if rule.need == "session":
            return rule.ok  # signing out without a session: nothing to protect
        return 401 if api else 303
    if rule.csrf and not cell.csrf:
        return 403
    if rule.need == "session":
        return rule.ok
    if rule.need == "citizen":
        return rule.ok if who.citizen else 403
    if who.citizen or rule.need not in ROLE_PERMS[who.role]:
        return 403
    allowed = ROLE_PURPOSES[who.role]
    if rule.purpose == "read":
        if cell.purpose == UNKNOWN:
            return 422
        if cell.purpose is not None and cell.purpose not in allowed:
            return 403
    if rule.purpose == "reidentify":
        if cell.purpose == UNKNOWN:
            return 422
        if cell.purpose is None:
            return 403 if api else 422  # the API takes an empty purpose; the form requires one
        if cell.purpose not in allowed or not PURPOSE_REID[cell.purpose]:
            return 403
    if rule.family and not inside:
        return 404
    return rule.ok


class Truth:
    """What the sample families really hold (from the scoring, not from the web layer)."""

    def __init__(self, w: World) -> None:
        policy = load_policy()
        self.deprivations: dict[str, dict[str, str]] = {}  # family id: indicator: name
        self.situations: dict[str, set[str]] = {}
        for fid in (w.inside_id, w.outside_id):
            ex = explain_family(w.nation.data, fid, "en")
            self.deprivations[fid] = {d.indicator: d.name for d in ex.deprivations}
            self.situations[fid] = {s["id"] for s in ex.situations}
        meth = load_methodology(ex.methodology["id"])
        self.ind_cats = {k: set(v) for k, v in policy.indicator_categories(meth).items()}
        self.sit_cats = {k: set(v) for k, v in policy.situation_categories(meth).items()}
        self.sensitive = {i for i in self.deprivations[w.inside_id] if self.ind_cats.get(i)}
        scores = Warehouse(w.nation.data).read("family_scores").to_pylist()
        self.katos = [str(r["kato"]) for r in scores]


_serial = count(1)


def send(w: World, cell: Cell, who: Who) -> httpx.Response:
    """Make the request the cell stands for."""
    family = w.inside if cell.inside else w.outside
    url = cell.path.replace("{pseudonym}", family).replace("{code}", "en")
    if url == "/static":
        url = "/static/app.css"
    api = url.startswith("/api/")
    client, csrf = who.client, who.csrf
    if cell.path == "/logout" and cell.csrf and not who.anonymous:
        client, csrf = throwaway_session(w, who)  # signing out for real must not end the shared session
    headers: dict[str, str] = {}
    data: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    params: dict[str, str] = {}
    if cell.pre is not None:
        data = {
            "/login": {
                "username": who.name if who.staff else "analyst",
                "password": "a long test passphrase 42",
            },
            "/citizen/code": {"iin": w.citizen_iin},
            "/citizen/login": {"iin": w.citizen_iin, "code": "123456"},
        }[cell.path]
        if cell.pre == "wrong":
            data["pre"] = "not-the-cookie"
    elif cell.method == "POST":
        n = next(_serial)
        if "identity" in cell.path:
            if api:
                body = {"purpose": cell.purpose or ""}
            else:
                data = {"purpose": cell.purpose or ""}
        elif cell.path == "/api/v1/accounts":
            body = {
                "username": f"new{n}",
                "display_name": "New",
                "role": "auditor",
                "password": "x9!long pass y7",
            }
        elif cell.path == "/admin/accounts":
            data = {
                "username": f"new{n}",
                "display_name": "New",
                "role": "auditor",
                "password": "x9!long pass y7",
            }
        elif not api:
            data = {}
        if cell.csrf:
            if api:
                headers["X-CSRF-Token"] = csrf
            else:
                data = {**(data or {}), "csrf": csrf}
    elif cell.purpose is not None:
        params["purpose"] = cell.purpose
    if not api and "{pseudonym}" in cell.path:
        params["lang"] = "en"
    return call(client, cell.method, url, params=params, data=data, json=body, headers=headers)


def throwaway_session(w: World, who: Who) -> tuple[TestClient, str]:
    store, settings = w.app.state.ctx.store, w.app.state.ctx.settings
    with store.transaction() as db:
        if who.citizen:
            new = start_session(db, settings, person_id=w.citizen_person)
        else:
            account = db.query(Account).filter_by(username=who.name).one()
            new = start_session(db, settings, account_id=account.id)
    c = TestClient(w.app)
    c.cookies.set("fc_session", new.token)
    assert c.get("/api/v1/session").json()["signed_in"]
    return c, new.csrf


def check_body(w: World, truth: Truth, cell: Cell, who: Who, r: httpx.Response) -> list[str]:
    """Further checks of an answer that had the expected status."""
    problems: list[str] = []
    api = cell.path.startswith("/api/")
    protected = TABLE[(cell.method, cell.path)].need not in ("public", "session")
    if who.anonymous and protected and r.status_code in (401, 303):
        if api:
            got = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            if not got or got.get("error", {}).get("code") != "sign_in":
                problems.append(f"anonymous API call answered {r.text[:80]!r}, not a 401 JSON error")
        elif not r.headers.get("location", "").startswith("/login"):
            problems.append(f"anonymous page redirected to {r.headers.get('location')!r}, not /login")
    if r.status_code == 404 and api and cell.path.endswith("{pseudonym}"):
        missing = call(who.client, "GET", f"/api/v1/families/{w.missing}")
        if (missing.status_code, missing.json()) != (404, r.json()):
            problems.append("a family outside the territory answers differently from no family at all")
    if r.status_code != 200:
        return problems
    readable = (
        PURPOSE_CATS.get(cell.purpose or "", set())
        if cell.purpose in ROLE_PURPOSES.get(who.role, [])
        else set()
    )
    fid, pseudonym = (w.inside_id, w.inside) if cell.inside else (w.outside_id, w.outside)
    if cell.path == "/api/v1/families/{pseudonym}":
        truth_deps = truth.deprivations[fid]
        card = r.json()
        shown = {d["id"] for d in card["deprivations"]}
        for ind in shown:
            if not truth.ind_cats.get(ind, set()) <= readable:
                problems.append(f"sensitive deprivation {ind} ({sorted(truth.ind_cats[ind])}) shown")
        want = {i for i in truth_deps if truth.ind_cats.get(i, set()) <= readable}
        if shown != want:
            problems.append(f"deprivations shown {sorted(shown ^ want)} differ from what the purpose allows")
        if card["withheld_indicators"] != len(truth_deps) - len(want):
            problems.append(f"withheld_indicators {card['withheld_indicators']} is wrong")
        for s in card["situations"]:
            if not truth.sit_cats.get(s["id"], set()) <= readable:
                problems.append(f"sensitive situation {s['id']} shown")
        if card["pseudonym"] != pseudonym:
            problems.append("the card is of another family")
    if cell.path == "/families/{pseudonym}":
        names = truth.deprivations[fid]
        for ind, name in names.items():
            if not truth.ind_cats.get(ind, set()) <= readable and name in r.text:
                others = [n for i, n in names.items() if i != ind and name in n]
                if not others:
                    problems.append(f"the card page names the withheld deprivation {name!r}")
    if cell.path == "/api/v1/families/{pseudonym}/identity":
        members = r.json()["members"]
        if not members or not any(m["iin"] and is_valid(m["iin"]) for m in members):
            problems.append("re-identification gave no IIN")
    elif "identity" not in cell.path and any(is_valid(m) for m in IIN_RE.findall(r.text)):
        problems.append("an IIN appears in the answer")
    if cell.path == "/api/v1/families":
        listing = r.json()
        if any(not f["area"].startswith(who.territory) for f in listing["families"]):
            problems.append("the list shows a family outside the territory")
        if listing["total"] != sum(k.startswith(who.territory) for k in truth.katos):
            problems.append(f"the list counts {listing['total']} families in the territory")
    if cell.path == "/api/v1/overview":
        data = r.json()
        if any(not a["area"].startswith(who.territory) for a in data["areas"]):
            problems.append("the overview shows an area outside the territory")
        if data["families"] != sum(k.startswith(who.territory) for k in truth.katos):
            problems.append(f"the overview counts {data['families']} families")
    if cell.path == "/api/v1/me":
        for d in r.json()["deprivations"]:
            if truth.ind_cats.get(d["id"]):
                problems.append(f"the citizen's card shows the sensitive deprivation {d['id']}")
    return problems


# --- the tests -------------------------------------------------------------------------------------


def test_every_route_is_in_the_table(world: World) -> None:
    routes = app_routes(world.app)
    uncovered = sorted(routes - set(TABLE))
    stale = sorted(set(TABLE) - routes)
    assert not uncovered, f"routes without an expectation in TABLE: {uncovered}"
    assert not stale, f"TABLE names routes the app does not have: {stale}"
    scoped = {p for (_m, p), rule in TABLE.items() if rule.scoped and p.startswith("/api/")}
    assert scoped <= SCOPE_CHECKED, f"scoped answers without a content check: {scoped - SCOPE_CHECKED}"


def test_the_sample_is_meaningful(world: World) -> None:
    truth = Truth(world)
    assert truth.sensitive, "the sample family has no sensitive deprivation: the matrix would prove nothing"
    assert truth.deprivations[world.inside_id].keys() - truth.sensitive, "only sensitive deprivations"
    regional = [w for w in world.who if w.staff and w.territory]
    assert regional and all(not world.outside_kato.startswith(w.territory) for w in regional)
    assert all(world.nation.kato.startswith(w.territory) for w in world.who)


def test_access_matrix(world: World) -> None:
    truth = Truth(world)
    who = {w.name: w for w in world.who}
    violations: list[str] = []
    n = 0
    for cell, rule, w in cells(world):
        inside = bool(cell.inside) or world.outside_kato.startswith(w.territory)
        want = expected(cell, rule, w, inside)
        r = send(world, cell, who[cell.who])
        n += 1
        if r.status_code != want:
            violations.append(f"{cell}: got {r.status_code}, expected {want}: {r.text[:120]!r}")
            continue
        violations.extend(f"{cell}: {p}" for p in check_body(world, truth, cell, w, r))
    print(f"access matrix: {n} cells, {len(violations)} violations")  # noqa: T201
    assert n > 500
    assert not violations, f"{len(violations)} of {n} cells violate the policy:\n" + "\n".join(violations)


def test_csrf_is_checked_on_every_post(world: World) -> None:
    """Every POST of a signed-in session is refused without the token, or with another session's."""
    staff = [w for w in world.who if w.staff]
    posts = [(m, p) for (m, p), rule in TABLE.items() if m == "POST" and rule.csrf]
    assert posts
    refused = 0
    for w in staff:
        other = next(o for o in staff if o is not w)
        for _m, path in posts:
            url = path.replace("{pseudonym}", world.inside)
            for headers in ({}, {"X-CSRF-Token": other.csrf}, {"X-CSRF-Token": ""}):
                r = call(w.client, "POST", url, headers=headers, json={"purpose": "case_work"})
                assert r.status_code == 403, (w.name, path, headers, r.status_code, r.text[:200])
                refused += 1
    print(f"CSRF: {refused} token-less or foreign-token POSTs refused")  # noqa: T201


def test_reidentification_needs_permission_and_purpose(world: World) -> None:
    allowed = 0
    for w in world.who:
        if not w.staff:
            continue
        for purpose in POLICY["purposes"]:
            r = call(
                w.client,
                "POST",
                f"/api/v1/families/{world.inside}/identity",
                json={"purpose": purpose},
                headers={"X-CSRF-Token": w.csrf},
            )
            may = (
                "reidentify" in ROLE_PERMS[w.role]
                and purpose in ROLE_PURPOSES[w.role]
                and PURPOSE_REID[purpose]
            )
            assert (r.status_code == 200) == may, (w.role, purpose, r.status_code, r.text[:200])
            allowed += may
            if not may:
                assert "iin" not in r.text
    assert allowed >= 3  # worker, supervisor (case_work), officer (eligibility), auditor


def test_logout_ends_the_session(world: World) -> None:
    w = next(x for x in world.who if x.name == "worker")
    c, csrf = throwaway_session(world, w)
    token = c.cookies["fc_session"]
    assert call(c, "POST", "/logout", data={}).status_code == 403  # no token: still signed in
    assert c.get("/api/v1/session").json()["signed_in"]
    assert c.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    c.cookies.clear()
    c.cookies.set("fc_session", token)  # the old cookie, replayed: the session is gone on the server
    assert c.get("/api/v1/families").status_code == 401
