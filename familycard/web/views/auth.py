"""Signing in and out: staff with a password, citizens with a one-time code sent by SMS.

Forms carry a CSRF token before there is a session too (a double-submit cookie), so a third-party page
cannot sign someone in to an account of its choosing. Answers never say whether a user name or an IIN
exists.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from familycard.identity.iin import is_valid
from familycard.outreach.sms import deliver_pending
from familycard.security import audit
from familycard.security.accounts import (
    LoginRefused,
    authenticate,
    end_session,
    note_citizen_attempt,
    start_session,
)
from familycard.security.audit import Access
from familycard.security.otp import check_code, issue_code
from familycard.store.models import Account
from familycard.web.context import AppContext
from familycard.web.deps import LANG_COOKIE, Csrf, Ctx, Lang, Viewer, cookie_name
from familycard.web.i18n import LANGS
from familycard.web.models import SessionInfo
from familycard.web.render import N_, render, tr

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["session"])
PRE = "fc_pre"
REFUSALS = {
    "invalid": N_("The user name or password is wrong."),
    "locked": N_("Too many failed attempts: the account is locked for a while."),
    "rate": N_("Too many attempts from this device: wait a minute."),
}


def refusal(lang: str, reason: str) -> str:
    """Why sign-in was refused, in ``lang``."""
    message = REFUSALS[reason]
    return tr(lang, message)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _pre_token(request: Request) -> str:
    return request.cookies.get(PRE) or secrets.token_urlsafe(24)


def _with_pre(ctx: AppContext, response: Response, token: str) -> Response:
    response.set_cookie(PRE, token, httponly=True, samesite="strict", secure=ctx.settings.cookie_secure)
    return response


def _check_pre(request: Request, sent: str) -> None:
    cookie = request.cookies.get(PRE)
    if not cookie or not secrets.compare_digest(cookie, sent or ""):
        raise HTTPException(403, N_("the form expired: reload the page and try again"))


def _safe_next(target: str | None) -> str:
    # Only a path on this site: not "//host" nor "/\\host" (browsers read both as another host).
    ok = target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
    return target if ok and target else "/"


def _set_session(ctx: AppContext, response: Response, token: str) -> None:
    response.set_cookie(
        cookie_name(ctx),
        token,
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite="lax",
        path="/",
        max_age=ctx.settings.session_max_hours * 3600,
    )


@pages.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, ctx: Ctx, lang: Lang, next: str = "/") -> Response:
    token = _pre_token(request)
    page = render(
        request,
        "login.html",
        pre=token,
        next=_safe_next(next),
        error=None,
        title=tr(lang, "Sign in"),
        oidc=ctx.settings.staff_oidc is not None,
    )
    return _with_pre(ctx, page, token)


def _staff_login(ctx: AppContext, request: Request, username: str, password: str) -> str:
    """Check the password; the new session's token (LoginRefused otherwise)."""
    refused: LoginRefused | None = None
    with ctx.store.transaction() as db:  # the attempt and the lock-out count are kept even on refusal
        try:
            account = authenticate(db, ctx.settings, username, password, client_of(request))
        except LoginRefused as exc:
            refused = exc
        else:
            token = staff_session(db, ctx, account, "password")
    if refused is not None:
        raise refused
    return token


@pages.post("/login", include_in_schema=False)
def login(
    request: Request,
    ctx: Ctx,
    lang: Lang,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    pre: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=200)] = "/",
) -> Response:
    _check_pre(request, pre)
    try:
        token = _staff_login(ctx, request, username, password)
    except LoginRefused as refused:
        status = 429 if refused.reason == "rate" else 401
        page = render(
            request,
            "login.html",
            status=status,
            pre=pre,
            next=_safe_next(next),
            error=refusal(lang, refused.reason),
            title=tr(lang, "Sign in"),
            oidc=ctx.settings.staff_oidc is not None,
        )
        return page
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session(ctx, response, token)
    return response


@pages.post("/logout", include_in_schema=False, dependencies=[Csrf])
def logout(request: Request, ctx: Ctx) -> Response:
    with ctx.store.transaction() as db:
        end_session(db, request.cookies.get(cookie_name(ctx)))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(cookie_name(ctx), path="/")
    return response


@pages.get("/lang/{code}", include_in_schema=False)
def switch_language(ctx: Ctx, code: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in LANGS:
        response.set_cookie(
            LANG_COOKIE, code, samesite="lax", secure=ctx.settings.cookie_secure, max_age=365 * 86400
        )
    return response


@api.get("/session", response_model=SessionInfo)
def api_session(ctx: Ctx, viewer: Viewer) -> SessionInfo:
    """Who is signed in (or not), with what role, territory, permissions and purposes."""
    if viewer is None:
        return SessionInfo(signed_in=False)
    role = ctx.policy.roles.get(viewer.role)
    return SessionInfo(
        signed_in=True,
        kind=viewer.kind,
        role=viewer.role,
        territory=viewer.territory,
        permissions=sorted(viewer.permissions),
        purposes=list(role.purposes) if role else [],
        csrf=viewer.csrf,
    )


# --- citizens --------------------------------------------------------------------------------------


def _no_demo_codes(ctx: AppContext) -> bool:
    """In production citizens sign in only through the state identity provider (no one-time codes)."""
    return ctx.settings.environment == "production"


@pages.get("/citizen/login", response_class=HTMLResponse, include_in_schema=False)
def citizen_form(request: Request, ctx: Ctx, lang: Lang) -> Response:
    if _no_demo_codes(ctx):
        return RedirectResponse("/citizen/login/oidc", status_code=303)
    token = _pre_token(request)
    page = render(
        request,
        "citizen_login.html",
        pre=token,
        step="iin",
        iin="",
        error=None,
        title=tr(lang, "Sign in to your family card"),
        oidc=ctx.settings.citizen_oidc is not None,
    )
    return _with_pre(ctx, page, token)


def staff_session(db: Session, ctx: AppContext, account: Account, method: str) -> str:
    """Start a staff member's session (and audit it); its token."""
    token = start_session(db, ctx.settings, account_id=account.id).token
    audit.record(
        db,
        Access(
            actor=account.username, role=account.role, territory=account.territory, purpose="",
            action="session.start", detail={"method": method},
        ),
    )  # fmt: skip
    return token


def citizen_session(db: Session, ctx: AppContext, person: str, method: str) -> str:
    """Start a citizen's session (and audit it); its token."""
    token = start_session(db, ctx.settings, person_id=person).token
    audit.record(
        db,
        Access(
            actor="citizen", role="citizen", territory="", purpose="own_card", action="session.start",
            subject_person=person, detail={"method": method},
        ),
    )  # fmt: skip
    return token


def _citizen_page(
    request: Request,
    lang: str,
    pre: str,
    step: str,
    iin: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The citizen's sign-in form at ``step`` (``iin`` or ``code``), with an error if any."""
    title = tr(lang, "Sign in to your family card")
    return render(
        request, "citizen_login.html", status=status, pre=pre, step=step, iin=iin, error=error, title=title
    )


@pages.post("/citizen/code", response_class=HTMLResponse, include_in_schema=False)
def citizen_code(
    request: Request,
    ctx: Ctx,
    lang: Lang,
    iin: Annotated[str, Form(max_length=20)],
    pre: Annotated[str, Form(max_length=64)],
) -> Response:
    """Send a code if the IIN is known and has a mobile number; the answer is the same either way."""
    if _no_demo_codes(ctx):
        raise HTTPException(404, N_("not found"))
    _check_pre(request, pre)
    iin = iin.strip()
    if not is_valid(iin):
        error = tr(lang, "This is not a valid IIN: check the 12 digits.")
        return _citizen_page(request, lang, pre, "iin", error=error, status=422)
    try:
        with ctx.store.transaction() as db:
            note_citizen_attempt(db, ctx.settings, client_of(request), success=False)
            try:
                person, _family, phone = ctx.snapshot.person_by_iin(iin)
            except LookupError:
                person, phone = "", None
            if person and phone:
                text = tr(lang, "Family card: your sign-in code is {code}. Do not tell it to anyone.")
                issue_code(db, ctx.settings, ctx.otp_key, person, phone, text)
    except LoginRefused:
        return _citizen_page(request, lang, pre, "iin", error=refusal(lang, "rate"), status=429)
    deliver_pending(ctx.store, ctx.sms)
    return _citizen_page(request, lang, pre, "code", iin)


@pages.post("/citizen/login", include_in_schema=False)
def citizen_login(
    request: Request,
    ctx: Ctx,
    lang: Lang,
    iin: Annotated[str, Form(max_length=20)],
    code: Annotated[str, Form(max_length=10)],
    pre: Annotated[str, Form(max_length=64)],
) -> Response:
    if _no_demo_codes(ctx):
        raise HTTPException(404, N_("not found"))
    _check_pre(request, pre)
    token = None
    try:
        with ctx.store.transaction() as db:
            note_citizen_attempt(db, ctx.settings, client_of(request), success=False)
            try:
                person = ctx.snapshot.person_by_iin(iin.strip())[0]
            except LookupError:
                person = ""
            if person and check_code(db, ctx.settings, ctx.otp_key, person, code):
                token = citizen_session(db, ctx, person, "one-time code")
    except LoginRefused:
        return _citizen_page(request, lang, pre, "code", iin, error=refusal(lang, "rate"), status=429)
    if token is None:
        error = tr(lang, "The code is wrong or has expired.")
        return _citizen_page(request, lang, pre, "code", iin, error=error, status=401)
    response = RedirectResponse("/me", status_code=303)
    _set_session(ctx, response, token)
    return response
