"""Sign-in through an OpenID Connect provider, against a fake provider served on 127.0.0.1.

The fake provider publishes discovery and a JWKS, "signs in" whoever the test names at its authorization
endpoint (redirecting back with a code), checks the client and the PKCE verifier at its token endpoint
and answers with an ID token it signs with an RSA key generated here. Tests walk the redirects by hand:
the platform's TestClient, the provider with httpx.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from web_support import ROLES, Nation, make_app, web_nation  # noqa: F401

from familycard.identity.iin import is_valid, make
from familycard.security.accounts import create_account
from familycard.security.audit import verify
from familycard.security.oidc import OidcClient, OidcError, TokenRejected, code_challenge
from familycard.settings import OidcProvider, Settings
from familycard.store.models import Account, AuditEvent, OidcRequest
from familycard.web.app import create_app
from familycard.web.views.oidc import BIND

pytestmark = pytest.mark.xdist_group("oidc")

STAFF_CLIENT, STAFF_SECRET = "familycard-staff", "a staff client secret 7"
CITIZEN_CLIENT = "familycard-citizen"  # a public client: PKCE only


def _rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class FakeProvider:
    """A tiny OpenID provider; tests set who signs in next and how the next ID token is spoiled."""

    url: str = ""
    original: RSAKey = field(default_factory=lambda: _rsa("k1"))
    key: RSAKey = field(default_factory=lambda: _rsa("k1"))
    published: list[RSAKey] = field(default_factory=list)
    sign_with: RSAKey | None = None  # None: ``key``
    user: dict[str, Any] = field(default_factory=dict)  # claims of whoever signs in next
    spoil: dict[str, Any] = field(default_factory=dict)  # claims the next ID token gets instead
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_calls: list[dict[str, str]] = field(default_factory=list)
    jwks_fetches: int = 0
    auth_methods: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.key = self.original
        self.published = [self.key]
        self.sign_with, self.user, self.spoil = None, {}, {}
        self.codes.clear()
        self.authorizations.clear()
        self.token_calls.clear()
        self.jwks_fetches = 0
        self.auth_methods = ["client_secret_basic", "none"]

    def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": self.auth_methods,
            }
        )

    def jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.published]})

    def authorize(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.authorizations.append(q)
        ok = (
            q.get("response_type") == "code"
            and q.get("code_challenge_method") == "S256"
            and q.get("client_id") in (STAFF_CLIENT, CITIZEN_CLIENT)
            and "openid" in q.get("scope", "").split()
        )
        if not ok:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**q, "user": dict(self.user)}
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(back, status_code=302)

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = (unquote(x) for x in base64.b64decode(auth[6:]).decode().partition(":"))
            method = "client_secret_basic"
        else:
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            method = "client_secret_post" if secret else "none"
        self.token_calls.append({"method": method, "client_id": client_id})
        expected = {STAFF_CLIENT: STAFF_SECRET, CITIZEN_CLIENT: ""}
        if client_id not in expected or secret != expected[client_id]:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code", "")), None)
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or grant["client_id"] != client_id
            or grant["redirect_uri"] != form.get("redirect_uri")
            or grant["code_challenge"] != code_challenge(str(form.get("code_verifier", "")))
        ):
            return JSONResponse({"error": "invalid_grant", "error_description": "bad code"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **grant["user"],
            **self.spoil,
        }
        signer = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def provider_server() -> Iterator[FakeProvider]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake = FakeProvider()
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake provider did not start"
        time.sleep(0.02)
    yield fake
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def idp(provider_server: FakeProvider) -> FakeProvider:
    provider_server.reset()
    return provider_server


def oidc_app(nation: Nation, tmp: Path, idp: FakeProvider, **more: Any) -> FastAPI:
    """An app over ``nation`` whose staff and citizens sign in at ``idp``; each account linked to it."""
    settings = Settings(
        data=nation.data,
        store_url=f"sqlite:///{tmp / 'operational.sqlite3'}",
        secrets_dir=tmp / "secrets",
        staff_oidc=OidcProvider(issuer=idp.url, client_id=STAFF_CLIENT, client_secret=STAFF_SECRET),
        citizen_oidc=OidcProvider(issuer=idp.url, client_id=CITIZEN_CLIENT, subject_claim="iin"),
        **more,
    )
    app = create_app(settings)
    with app.state.ctx.store.transaction() as db:
        for username, role, digits, measure in (*ROLES, ("retired", "social_worker", 4, None)):
            create_account(
                db,
                username=username,
                display_name=username.title(),
                role=role,
                territory=nation.kato[:digits],
                measure=measure,
                oidc_subject=f"idp-{username}",
            )
        db.execute(update(Account).where(Account.username == "retired").values(active=False))
    return app


@pytest.fixture
def app(web_nation: Nation, tmp_path: Path, idp: FakeProvider) -> Iterator[FastAPI]:
    built = oidc_app(web_nation, tmp_path, idp)
    yield built
    built.state.ctx.store.close()


def a_citizen_iin(app: FastAPI, nation: Nation) -> str:
    """The IIN of a member of the sample family."""
    with app.state.ctx.snapshot.connect() as (con, _run):
        got = con.execute(
            """SELECT CAST(p.iin AS VARCHAR) FROM persons AS p JOIN family_members AS m
                 ON m.person_id = p.person_id WHERE m.family_id = ? AND p.iin IS NOT NULL
               ORDER BY 1 LIMIT 1""",
            [nation.family_id],
        ).fetchone()
    assert got is not None and is_valid(got[0])
    return str(got[0])


def start(client: TestClient, path: str) -> str:
    """Open a sign-in route; the provider's authorization URL it redirects to."""
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def at_provider(authorization_url: str) -> str:
    """The provider's redirect back to the platform (the callback URL with code and state)."""
    r = httpx.get(authorization_url, follow_redirects=False)
    assert r.status_code == 302, r.text
    return str(r.headers["location"])


def walk(client: TestClient, path: str = "/login/oidc?next=/families") -> httpx.Response:
    """The whole round trip: start, sign in at the provider, come back; the callback's answer."""
    return client.get(at_provider(start(client, path)), follow_redirects=False)


def browser(app: FastAPI, base_url: str = "http://testserver") -> TestClient:
    """A client whose pages are in English (the messages the tests look for)."""
    return TestClient(app, base_url=base_url, cookies={"fc_lang": "en"})


def session_of(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/api/v1/session").json())


def oidc_audit_rows(app: FastAPI) -> list[AuditEvent]:
    with app.state.ctx.store.transaction() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == "session.start")).all()
    return [r for r in rows if '"oidc"' in r.detail]


# --- staff -----------------------------------------------------------------------------------------


def test_a_staff_member_signs_in_at_the_provider(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user = {"sub": "idp-worker"}
    authorization = start(c, "/login/oidc?next=/families")
    assert authorization.startswith(f"{idp.url}/authorize?")
    q = {k: v[0] for k, v in parse_qs(urlsplit(authorization).query).items()}
    assert q["response_type"] == "code" and q["client_id"] == STAFF_CLIENT
    assert q["redirect_uri"] == "http://testserver/auth/callback"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert "openid" in q["scope"].split() and q["state"] and q["nonce"]
    with app.state.ctx.store.transaction() as db:  # the store keeps the state's hash, not the state
        pending = db.scalars(select(OidcRequest)).all()
    assert len(pending) == 1 and pending[0].audience == "staff" and pending[0].state_hash != q["state"]
    assert pending[0].state_hash == hashlib.sha256(q["state"].encode()).hexdigest()

    r = c.get(at_provider(authorization), follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/families"
    assert idp.token_calls == [{"method": "client_secret_basic", "client_id": STAFF_CLIENT}]
    who = session_of(c)
    assert who["signed_in"] and who["kind"] == "staff" and who["role"] == "social_worker"
    assert c.get("/families").status_code == 200
    rows = oidc_audit_rows(app)
    assert [(row.actor, row.role) for row in rows] == [("worker", "social_worker")]
    assert verify(app.state.ctx.store).ok
    with app.state.ctx.store.transaction() as db:  # used: gone
        assert db.scalars(select(OidcRequest)).all() == []


def test_a_provider_that_takes_the_secret_in_the_form(app: FastAPI, idp: FakeProvider) -> None:
    idp.auth_methods = ["client_secret_post"]
    idp.user = {"sub": "idp-auditor"}
    c = browser(app)
    assert walk(c).status_code == 303
    assert idp.token_calls == [{"method": "client_secret_post", "client_id": STAFF_CLIENT}]
    assert session_of(c)["role"] == "auditor"


def test_the_provider_proves_who_the_platform_decides_what(app: FastAPI, idp: FakeProvider) -> None:
    for subject in ("idp-nobody", "idp-retired"):  # no account linked; a deactivated account
        c = browser(app)
        idp.user = {"sub": subject}
        r = walk(c)
        assert r.status_code == 403, r.text
        assert "no active account here is linked to you" in r.text
        assert not session_of(c)["signed_in"]
    assert oidc_audit_rows(app) == []


def test_the_staff_subject_claim_is_configurable(
    web_nation: Nation, tmp_path: Path, idp: FakeProvider
) -> None:
    app = oidc_app(web_nation, tmp_path, idp)
    staff = app.state.ctx.settings.staff_oidc
    app.state.ctx.settings.staff_oidc = staff.model_copy(update={"subject_claim": "preferred_username"})
    c = browser(app)
    idp.user = {"sub": "opaque-123", "preferred_username": "idp-analyst"}
    assert walk(c, "/login/oidc").status_code == 303
    assert session_of(c)["role"] == "national_analyst"
    app.state.ctx.store.close()


# --- citizens --------------------------------------------------------------------------------------


def test_a_citizen_signs_in_at_the_state_provider(
    app: FastAPI, idp: FakeProvider, web_nation: Nation
) -> None:
    c = browser(app)
    iin = a_citizen_iin(app, web_nation)
    idp.user = {"sub": "egov-42", "iin": iin}
    r = walk(c, "/citizen/login/oidc")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/me"
    assert idp.token_calls == [{"method": "none", "client_id": CITIZEN_CLIENT}]  # public client + PKCE
    assert idp.authorizations[-1]["client_id"] == CITIZEN_CLIENT
    who = session_of(c)
    assert who["signed_in"] and who["kind"] == "citizen"
    assert c.get("/me").status_code == 200
    rows = oidc_audit_rows(app)
    assert len(rows) == 1 and rows[0].role == "citizen" and rows[0].subject_person
    assert rows[0].subject_person == app.state.ctx.snapshot.person_by_iin(iin)[0]


def test_a_citizen_needs_a_valid_known_iin(app: FastAPI, idp: FakeProvider, web_nation: Nation) -> None:
    assert not is_valid("123456789012")
    unknown = next(
        iin
        for serial in range(1, 9999)
        if (iin := make(dt.date(1961, 3, 7), "F", serial)) and not _known(app, iin)
    )
    for claims, message in (
        ({"sub": "egov-1", "iin": "123456789012"}, "did not give a valid IIN"),
        ({"sub": "egov-2"}, "did not give a valid IIN"),  # no IIN claim at all
        ({"sub": "egov-3", "iin": unknown}, "no family card for this IIN"),
    ):
        c = browser(app)
        idp.user = claims
        r = walk(c, "/citizen/login/oidc")
        assert r.status_code == 403, r.text
        assert message in r.text
        assert not session_of(c)["signed_in"]
    assert oidc_audit_rows(app) == []


def _known(app: FastAPI, iin: str) -> bool:
    try:
        app.state.ctx.snapshot.person_by_iin(iin)
    except LookupError:
        return False
    return True


# --- the links on the sign-in pages ------------------------------------------------------------------


def test_the_sign_in_pages_offer_the_provider_only_when_configured(
    app: FastAPI, web_nation: Nation, tmp_path: Path
) -> None:
    c = browser(app)
    assert (
        'href="/login/oidc?next=/families%3Fpage%3D2"'
        in c.get("/login", params={"next": "/families?page=2"}).text
    )
    assert 'href="/citizen/login/oidc"' in c.get("/citizen/login").text
    plain = make_app(web_nation, tmp_path / "plain")
    p = TestClient(plain)
    assert "/login/oidc" not in p.get("/login").text
    assert "/citizen/login/oidc" not in p.get("/citizen/login").text
    plain.state.ctx.store.close()


def test_no_provider_no_routes(web_nation: Nation, tmp_path: Path) -> None:
    plain = make_app(web_nation, tmp_path)
    c = TestClient(plain)
    for path in ("/login/oidc", "/citizen/login/oidc", "/auth/callback?state=x&code=y"):
        assert c.get(path, follow_redirects=False).status_code == 404, path
    plain.state.ctx.store.close()


def test_a_provider_for_staff_only(web_nation: Nation, tmp_path: Path, idp: FakeProvider) -> None:
    app = create_app(
        Settings(
            data=web_nation.data,
            store_url=f"sqlite:///{tmp_path / 'operational.sqlite3'}",
            secrets_dir=tmp_path / "secrets",
            staff_oidc=OidcProvider(issuer=idp.url, client_id=STAFF_CLIENT, client_secret=STAFF_SECRET),
        )
    )
    c = browser(app)
    assert c.get("/citizen/login/oidc", follow_redirects=False).status_code == 404
    assert "/citizen/login/oidc" not in c.get("/citizen/login").text
    assert c.get("/login/oidc", follow_redirects=False).status_code == 303
    app.state.ctx.store.close()


# --- refusals: the state ---------------------------------------------------------------------------


def test_a_wrong_state_is_refused(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user = {"sub": "idp-worker"}
    back = urlsplit(at_provider(start(c, "/login/oidc")))
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    forged = "/auth/callback?" + urlencode({"code": q["code"], "state": "not-the-state"})
    r = c.get(forged, follow_redirects=False)
    assert r.status_code == 400 and "not started in this browser" in r.text
    # even with a cookie that matches it, a state the platform never issued is refused
    r = c.get(forged, headers={"cookie": f"{BIND}=not-the-state"}, follow_redirects=False)
    assert r.status_code == 400 and "unknown or was already used" in r.text
    assert not session_of(c)["signed_in"]


def test_a_callback_link_does_not_sign_in_another_browser(app: FastAPI, idp: FakeProvider) -> None:
    idp.user = {"sub": "idp-admin"}
    back = at_provider(start(browser(app), "/login/oidc"))  # the attacker's own sign-in ...
    victim = browser(app)
    r = victim.get(back, follow_redirects=False)  # ... sent to someone else as a link
    assert r.status_code == 400
    assert not session_of(victim)["signed_in"]


def test_a_state_is_used_once(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user = {"sub": "idp-worker"}
    back = at_provider(start(c, "/login/oidc"))
    assert c.get(back, follow_redirects=False).status_code == 303
    state = parse_qs(urlsplit(back).query)["state"][0]
    again = browser(app).get(back, headers={"cookie": f"{BIND}={state}"}, follow_redirects=False)
    assert again.status_code == 400 and "unknown or was already used" in again.text
    assert len(oidc_audit_rows(app)) == 1


def test_a_pending_request_lives_ten_minutes(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user = {"sub": "idp-worker"}
    back = at_provider(start(c, "/login/oidc"))
    with app.state.ctx.store.transaction() as db:
        db.execute(update(OidcRequest).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)))
    r = c.get(back, follow_redirects=False)
    assert r.status_code == 400 and "has expired" in r.text
    with app.state.ctx.store.transaction() as db:  # and it is gone
        assert db.scalars(select(OidcRequest)).all() == []


def test_the_provider_saying_no(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    state = parse_qs(urlsplit(start(c, "/login/oidc")).query)["state"][0]
    r = c.get(
        "/auth/callback?" + urlencode({"error": "access_denied", "state": state}), follow_redirects=False
    )
    assert r.status_code == 403 and "did not sign you in" in r.text and "access_denied" in r.text


def test_a_code_the_provider_refuses(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user = {"sub": "idp-worker"}
    back = urlsplit(at_provider(start(c, "/login/oidc")))
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    r = c.get("/auth/callback?" + urlencode({"code": "made-up", "state": q["state"]}), follow_redirects=False)
    assert r.status_code == 403 and "refused the sign-in code" in r.text
    assert not session_of(c)["signed_in"]


# --- refusals: the ID token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"nonce": "another-nonce"}, "nonce"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, "has expired"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": [STAFF_CLIENT, "someone-else"]}, "azp"),  # several audiences and no azp
        ({"iss": "https://impostor.example"}, "iss"),
        ({"iat": int(time.time()) + 3600}, "iat"),
    ],
)
def test_an_id_token_that_does_not_hold_is_refused(
    app: FastAPI, idp: FakeProvider, spoil: dict[str, Any], message: str
) -> None:
    c = browser(app)
    idp.user, idp.spoil = {"sub": "idp-worker"}, spoil
    r = walk(c)
    assert r.status_code == 403, r.text
    assert "could not be verified" in r.text and message in r.text
    assert not session_of(c)["signed_in"]
    assert oidc_audit_rows(app) == []


def test_a_signature_by_another_key_is_refused(app: FastAPI, idp: FakeProvider) -> None:
    c = browser(app)
    idp.user, idp.sign_with = {"sub": "idp-worker"}, _rsa("k1")  # same key id, not the provider's key
    r = walk(c)
    assert r.status_code == 403 and "signature does not verify" in r.text
    idp.sign_with = _rsa("k-unpublished")  # a key id the provider does not publish: JWKS read again, once
    fetches = idp.jwks_fetches
    r = walk(c)
    assert r.status_code == 403 and "does not publish" in r.text
    assert idp.jwks_fetches == fetches + 1
    assert not session_of(c)["signed_in"]


def test_the_provider_rotates_its_keys(app: FastAPI, idp: FakeProvider) -> None:
    idp.user = {"sub": "idp-worker"}
    assert walk(browser(app)).status_code == 303
    assert idp.jwks_fetches == 1
    assert walk(browser(app)).status_code == 303
    assert idp.jwks_fetches == 1  # cached
    idp.key = _rsa("k2")
    idp.published = [idp.key]
    assert walk(browser(app)).status_code == 303
    assert idp.jwks_fetches == 2  # the unknown key id made the platform read the JWKS again


# --- production -------------------------------------------------------------------------------------


def test_production_has_no_one_time_codes(web_nation: Nation, tmp_path: Path, idp: FakeProvider) -> None:
    app = oidc_app(web_nation, tmp_path, idp, environment="production", cookie_secure=True)
    c = browser(app, "https://testserver")
    r = c.get("/citizen/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/citizen/login/oidc"
    iin = a_citizen_iin(app, web_nation)
    assert c.post("/citizen/code", data={"iin": iin, "pre": "x"}).status_code == 404
    assert c.post("/citizen/login", data={"iin": iin, "code": "123456", "pre": "x"}).status_code == 404
    assert app.state.ctx.sms.messages() == []
    # the state identity provider works, with secure cookies
    idp.user = {"sub": "egov-7", "iin": iin}
    r = c.get(at_provider(start(c, "/citizen/login/oidc")), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    assert "__Host-fc_session" in c.cookies
    assert session_of(c)["kind"] == "citizen"
    app.state.ctx.store.close()


def test_production_settings_need_the_state_provider(web_nation: Nation, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="state identity provider"):
        Settings(data=web_nation.data, environment="production", cookie_secure=True)


# --- the client on its own ---------------------------------------------------------------------------


def test_discovery_must_name_the_configured_issuer(idp: FakeProvider) -> None:
    client = OidcClient(OidcProvider(issuer=idp.url + "/realm", client_id="x"))
    with pytest.raises(OidcError):  # no discovery document there
        client.metadata()
    with pytest.raises(OidcError, match="not an https URL"):
        OidcClient(OidcProvider(issuer="http://idp.example", client_id="x"))
    unreachable = OidcClient(OidcProvider(issuer="http://127.0.0.1:9", client_id="x"), timeout=2)
    with pytest.raises(OidcError, match="could not be reached"):
        unreachable.metadata()


def test_only_asymmetric_signatures_are_accepted(idp: FakeProvider) -> None:
    provider = OidcProvider(issuer=idp.url, client_id=STAFF_CLIENT, client_secret=STAFF_SECRET)
    client = OidcClient(provider)
    now = int(time.time())
    claims = {
        "iss": idp.url,
        "aud": STAFF_CLIENT,
        "sub": "idp-admin",
        "iat": now,
        "exp": now + 60,
        "nonce": "n",
    }
    good = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, idp.key)
    assert client.validate(good, "n")["sub"] == "idp-admin"
    hmac = jwt.encode(
        {"alg": "HS256"}, claims, OctKey.import_key(STAFF_SECRET.encode()), algorithms=["HS256"]
    )
    with pytest.raises(TokenRejected):  # keyed with the client secret: refused
        client.validate(hmac, "n")
    unsigned = good.rsplit(".", 1)[0] + "."
    with pytest.raises(TokenRejected):
        client.validate(unsigned, "n")
    with pytest.raises(TokenRejected, match="nonce"):
        client.validate(good, "another")
