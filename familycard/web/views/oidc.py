"""Signing in through an OpenID Connect provider: staff at the agency's, citizens at the state's.

``GET /login/oidc`` (staff) and ``GET /citizen/login/oidc`` send the browser to the provider with a fresh
state, nonce and PKCE challenge; the provider sends it back to ``GET /auth/callback``, which takes the
pending request (once), exchanges the code, validates the ID token and starts a session.

The provider proves who signs in; the platform decides what they may do. A staff member's subject claim
must name an active account an administrator linked to it (``Account.oidc_subject``); a citizen's claim
holds their IIN, which must be valid and known in the published snapshot. A cookie bound to the browser
that started the sign-in must come back with the state, so nobody can sign another person in to an
account of their choosing by sending them a callback link. Routes of a provider that is not configured
answer 404.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from familycard.identity.iin import is_valid
from familycard.security.oidc import (
    PENDING_MINUTES,
    OidcClient,
    OidcError,
    Pending,
    TokenRejected,
    begin,
    take,
)
from familycard.settings import OidcProvider
from familycard.store.models import Account, LoginAttempt
from familycard.web.context import AppContext
from familycard.web.deps import Ctx, Lang
from familycard.web.render import tr
from familycard.web.views.auth import _safe_next, _set_session, citizen_session, client_of, staff_session

log = logging.getLogger(__name__)

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["session"])
BIND = "fc_oidc"  # the state, in a cookie of the browser that started the sign-in
CALLBACK = "/auth/callback"
NOT_CONFIGURED = "no identity provider is configured for this sign-in"


def provider_of(ctx: AppContext, audience: str) -> OidcProvider | None:
    """The provider staff (``staff``) or citizens (``citizen``) sign in at; None if not configured."""
    return ctx.settings.staff_oidc if audience == "staff" else ctx.settings.citizen_oidc


def client_for(request: Request, ctx: AppContext, audience: str) -> OidcClient:
    """The application's client of the audience's provider (404 when there is none)."""
    provider = provider_of(ctx, audience)
    if provider is None:
        raise HTTPException(404, NOT_CONFIGURED)
    clients: dict[str, OidcClient] | None = getattr(request.app.state, "oidc_clients", None)
    if clients is None:
        clients = request.app.state.oidc_clients = {}
    client = clients.get(audience)
    if client is None or client.provider is not provider:
        client = clients[audience] = OidcClient(provider)
    return client


def redirect_uri(ctx: AppContext, request: Request) -> str:
    """The callback's absolute URL (``public_url`` when set, else the URL this request came to)."""
    base = ctx.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + CALLBACK


def _unreachable(lang: str, exc: OidcError) -> HTTPException:
    log.warning("OIDC provider failure: %s", exc)
    message = tr(lang, "The identity provider cannot be reached now: try again later.")
    return HTTPException(502, f"{message} ({exc})")


def _start(request: Request, ctx: AppContext, lang: str, audience: str, next_url: str) -> Response:
    client = client_for(request, ctx, audience)
    try:
        client.metadata()  # before anything is stored: a provider that is down fails here
    except OidcError as exc:
        raise _unreachable(lang, exc) from exc
    with ctx.store.transaction() as db:
        pending = begin(db, audience, next_url)
    try:
        url = client.authorization_url(
            redirect_uri(ctx, request), pending.state, pending.nonce, pending.code_verifier
        )
    except OidcError as exc:
        raise _unreachable(lang, exc) from exc
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        BIND,
        pending.state,
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite="lax",  # the provider's redirect back is a top-level GET from another site
        path=CALLBACK,
        max_age=PENDING_MINUTES * 60,
    )
    return response


@pages.get("/login/oidc", include_in_schema=False)
def staff_start(request: Request, ctx: Ctx, lang: Lang, next: str = "/") -> Response:
    """Staff: sign in at the agency's identity provider."""
    return _start(request, ctx, lang, "staff", _safe_next(next))


@pages.get("/citizen/login/oidc", include_in_schema=False)
def citizen_start(request: Request, ctx: Ctx, lang: Lang) -> Response:
    """Citizens: sign in at the state identity provider."""
    return _start(request, ctx, lang, "citizen", "/me")


def _claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or len(value) > 200 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return ""  # not a usable subject (control characters cannot be stored, e.g. NUL in PostgreSQL)
    return value


def _staff_session(
    ctx: AppContext, request: Request, lang: str, provider: OidcProvider, claims: dict[str, Any]
) -> str:
    subject = _claim(claims, provider.subject_claim)
    token = None
    with ctx.store.transaction() as db:
        account = (
            db.scalar(select(Account).where(Account.oidc_subject == subject, Account.active.is_(True)))
            if subject
            else None
        )
        db.add(
            LoginAttempt(
                at=dt.datetime.now(dt.UTC),
                client=client_of(request),
                username=account.username if account else f"oidc:{subject}"[:64],
                kind="staff",
                success=account is not None,
            )
        )
        if account is not None:
            token = staff_session(db, ctx, account, "oidc")
    if token is None:
        log.warning(
            "OIDC staff sign-in refused: no active account for %s %r", provider.subject_claim, subject
        )
        raise HTTPException(
            403,
            tr(
                lang,
                "The identity provider knows you, but no active account here is linked to you: "
                "ask an administrator to link your account.",
            ),
        )
    return token


def _citizen_session(
    ctx: AppContext, request: Request, lang: str, provider: OidcProvider, claims: dict[str, Any]
) -> str:
    iin = _claim(claims, provider.subject_claim).strip()
    if not is_valid(iin):
        log.warning("OIDC citizen sign-in refused: the claim %s is not a valid IIN", provider.subject_claim)
        raise HTTPException(403, tr(lang, "The identity provider did not give a valid IIN."))
    try:
        person = ctx.snapshot.person_by_iin(iin)[0]
    except LookupError:
        person = ""
    with ctx.store.transaction() as db:
        db.add(
            LoginAttempt(
                at=dt.datetime.now(dt.UTC),
                client=client_of(request),
                username="",
                kind="citizen",
                success=bool(person),
            )
        )
        token = None
        if person:
            token = citizen_session(db, ctx, person, "oidc")
    if token is None:
        raise HTTPException(403, tr(lang, "There is no family card for this IIN."))
    return token


def _take(ctx: AppContext, request: Request, lang: str, state: str) -> Pending:
    """The pending request of ``state``, if this browser started it (400 otherwise)."""
    again = tr(lang, "This sign-in has expired or was already used: start again.")
    bound = request.cookies.get(BIND)
    if not state or not bound or not secrets.compare_digest(bound.encode(), state.encode()):
        raise HTTPException(400, f"{again} (the sign-in was not started in this browser)")
    failure: OidcError | None = None
    with ctx.store.transaction() as db:  # committed even on refusal: a used or expired state is gone
        try:
            pending = take(db, state)
        except OidcError as exc:
            failure = exc
    if failure is not None:
        raise HTTPException(400, f"{again} ({failure})")
    return pending


@pages.get(CALLBACK, include_in_schema=False)
def callback(
    request: Request, ctx: Ctx, lang: Lang, state: str = "", code: str = "", error: str = ""
) -> Response:
    """The provider's answer: a code to exchange (or an error), with the state of the request."""
    if ctx.settings.staff_oidc is None and ctx.settings.citizen_oidc is None:
        raise HTTPException(404, NOT_CONFIGURED)
    pending = _take(ctx, request, lang, state)
    client = client_for(request, ctx, pending.audience)
    if error or not code:
        shown = error if re.fullmatch(r"[a-z_]{1,40}", error) else "no code"
        message = tr(lang, "The identity provider did not sign you in.")
        raise HTTPException(403, f"{message} ({shown})")
    try:
        tokens = client.exchange(code, redirect_uri(ctx, request), pending.code_verifier)
        claims = client.validate(str(tokens["id_token"]), pending.nonce)
    except TokenRejected as exc:
        log.warning("OIDC sign-in rejected (%s): %s", pending.audience, exc)
        message = tr(lang, "The answer of the identity provider could not be verified.")
        raise HTTPException(403, f"{message} ({exc})") from exc
    except OidcError as exc:
        raise _unreachable(lang, exc) from exc
    if pending.audience == "staff":
        token = _staff_session(ctx, request, lang, client.provider, claims)
        target = _safe_next(pending.next_url)
    else:
        token = _citizen_session(ctx, request, lang, client.provider, claims)
        target = "/me"
    response = RedirectResponse(target, status_code=303)
    _set_session(ctx, response, token)
    response.delete_cookie(BIND, path=CALLBACK)
    return response
