"""Who is asking, and may they: request dependencies as named types.

``Ctx`` the application's context; ``Lang`` the request's language; ``Viewer`` the signed-in principal
(or None); ``Staff(permission)`` a signed-in staff member holding a permission; ``Citizen`` a signed-in
citizen; ``DeclaredPurpose`` the purpose declared for this request, checked against the role;
``Csrf`` the check every state-changing request passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from familycard.security.accounts import find_session
from familycard.security.audit import Access
from familycard.store.models import Account
from familycard.web.context import AppContext
from familycard.web.i18n import N_, negotiate
from familycard.web.models import ErrorBody

# The errors every signed-in JSON endpoint may answer, all in one shape (``render.error_response``), so
# the OpenAPI document says what a client really receives (422 included: not FastAPI's default body).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request body cannot be read"},
    401: {"model": ErrorBody, "description": "Not signed in"},
    403: {"model": ErrorBody, "description": "The role, purpose or CSRF token does not allow this"},
    404: {"model": ErrorBody, "description": "Nothing of this name in the caller's territory"},
    422: {"model": ErrorBody, "description": "A parameter or the body is invalid"},
    503: {"model": ErrorBody, "description": "No snapshot is published yet"},
}

COOKIE = "fc_session"
SECURE_COOKIE = "__Host-fc_session"
LANG_COOKIE = "fc_lang"


def cookie_name(ctx: AppContext) -> str:
    return SECURE_COOKIE if ctx.settings.cookie_secure else COOKIE


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def get_lang(request: Request) -> str:
    lang = negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )
    request.state.lang = lang
    return lang


Lang = Annotated[str, Depends(get_lang)]


@dataclass
class Principal:
    kind: str  # staff | citizen
    role: str
    territory: str
    actor: str
    csrf: str
    account: Account | None = None
    person_id: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    def access(self, action: str, purpose: str | None = None, **what: Any) -> Access:
        """An audit record of this principal doing ``action``."""
        return Access(
            actor=self.actor,
            role=self.role,
            territory=self.territory,
            purpose=purpose or "",
            action=action,
            **what,
        )


class SignInRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, "sign in first")


def get_viewer(request: Request, ctx: Ctx) -> Principal | None:
    if hasattr(request.state, "viewer"):
        viewer: Principal | None = request.state.viewer
        return viewer
    token = request.cookies.get(cookie_name(ctx))
    viewer = None
    if token:
        with ctx.store.transaction() as db:
            found = find_session(db, ctx.settings, token)
            if found is not None and found.kind == "staff" and found.account_id is not None:
                account = db.get(Account, found.account_id)
                if account is not None:
                    role = ctx.policy.roles.get(account.role)
                    viewer = Principal(
                        kind="staff",
                        role=account.role,
                        territory=account.territory,
                        actor=account.username,
                        csrf=found.csrf,
                        account=account,
                        permissions=role.permissions if role else frozenset(),
                    )
            elif found is not None and found.kind == "citizen":
                viewer = Principal(
                    kind="citizen",
                    role="citizen",
                    territory="",
                    actor="citizen",
                    csrf=found.csrf,
                    person_id=found.person_id,
                )
    request.state.viewer = viewer
    return viewer


Viewer = Annotated[Principal | None, Depends(get_viewer)]


def staff(permission: str) -> Callable[..., Principal]:
    """A dependency: the signed-in staff member, who must hold ``permission`` (401 / 403 otherwise)."""

    def dependency(viewer: Viewer) -> Principal:
        if viewer is None:
            raise SignInRequired()
        if viewer.kind != "staff" or permission not in viewer.permissions:
            raise HTTPException(403, N_("your role does not allow this"))
        return viewer

    dependency.__name__ = f"staff_{permission}"
    return dependency


def get_citizen(viewer: Viewer) -> Principal:
    if viewer is None:
        raise SignInRequired()
    if viewer.kind != "citizen":
        raise HTTPException(403, N_("this page is for citizens signed in to their own card"))
    return viewer


Citizen = Annotated[Principal, Depends(get_citizen)]


async def check_csrf(request: Request, viewer: Viewer) -> None:
    """State-changing requests of a signed-in session carry its CSRF token (header or form field)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or viewer is None:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("csrf") or "")
    if not sent or sent != viewer.csrf:
        raise HTTPException(403, N_("missing or wrong CSRF token: reload the page and try again"))


Csrf = Depends(check_csrf)


def declared_purpose(
    ctx: Ctx,
    viewer: Viewer,
    purpose: Annotated[
        str | None, Query(max_length=40, description="Declared purpose of this access")
    ] = None,
) -> str | None:
    """The purpose declared for this request: one the policy knows and the role may declare."""
    if purpose is None or purpose == "":
        return None
    if purpose not in ctx.policy.purposes:
        raise HTTPException(422, f"unknown purpose {purpose!r}")
    if viewer is not None and not ctx.policy.purpose_allowed(viewer.role, purpose):
        raise HTTPException(403, f"your role may not declare the purpose {purpose!r}")
    return purpose


DeclaredPurpose = Annotated[str | None, Depends(declared_purpose)]
