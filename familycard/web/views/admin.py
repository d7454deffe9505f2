"""Administration: accounts and pseudonym keys (no personal data of families here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from familycard.security import audit
from familycard.security.accounts import _aware, create_account, utc_now
from familycard.security.passwords import WeakPassword
from familycard.security.policy import PolicyError
from familycard.store.models import Account
from familycard.web.context import AppContext
from familycard.web.deps import API_ERRORS, Csrf, Ctx, Lang, Principal, staff
from familycard.web.models import AccountIn, AccountList, AccountOut, KeyList, KeyVersion
from familycard.web.render import render, tr

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["administration"], responses=API_ERRORS)
Managing = Annotated[Principal, Depends(staff("manage_accounts"))]
Rotating = Annotated[Principal, Depends(staff("rotate_keys"))]


def account_list(ctx: AppContext) -> AccountList:
    now = utc_now()
    with ctx.store.transaction() as db:
        rows = db.scalars(select(Account).order_by(Account.username)).all()
        return AccountList(
            accounts=[
                AccountOut(
                    username=a.username,
                    display_name=a.display_name,
                    role=a.role,
                    territory=a.territory,
                    measure=a.measure,
                    active=a.active,
                    locked=a.locked_until is not None and _aware(a.locked_until) > now,
                )
                for a in rows
            ]
        )


def add_account(ctx: AppContext, viewer: Principal, body: AccountIn) -> AccountOut:
    try:
        with ctx.store.transaction() as db:
            acc = create_account(
                db,
                username=body.username,
                display_name=body.display_name,
                role=body.role,
                territory=body.territory,
                measure=body.measure or None,
                password=body.password,
            )
            audit.record(
                db,
                viewer.access(
                    "account.create",
                    object_type="account",
                    object_id=acc.username,
                    detail={"role": acc.role, "territory": acc.territory},
                ),
            )
    except (PolicyError, WeakPassword, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return AccountOut(
        username=acc.username,
        display_name=acc.display_name,
        role=acc.role,
        territory=acc.territory,
        measure=acc.measure,
        active=True,
        locked=False,
    )


def key_list(ctx: AppContext) -> KeyList:
    return KeyList(
        keys=[
            KeyVersion(
                version=k.version, created=k.created, retired=k.retired, current=k.version == ctx.keys.current
            )
            for k in ctx.keys.versions
        ]
    )


def rotate(ctx: AppContext, viewer: Principal) -> KeyList:
    with ctx.store.transaction() as db:
        version = ctx.keys.rotate()
        audit.record(db, viewer.access("keys.rotate", object_type="pseudonym_key", object_id=str(version)))
    return key_list(ctx)


@api.get("/accounts", response_model=AccountList)
def api_accounts(ctx: Ctx, viewer: Managing) -> AccountList:
    """Every staff account (no password hashes)."""
    return account_list(ctx)


@api.post("/accounts", response_model=AccountOut, status_code=201, dependencies=[Csrf])
def api_add_account(ctx: Ctx, viewer: Managing, body: AccountIn) -> AccountOut:
    """Create a staff account with a role and a territory the role allows."""
    return add_account(ctx, viewer, body)


@pages.get("/admin/accounts", response_class=HTMLResponse, include_in_schema=False)
def page_accounts(request: Request, ctx: Ctx, viewer: Managing, lang: Lang) -> HTMLResponse:
    roles = [(r.id, r.name[lang]) for r in ctx.policy.roles.values()]
    return render(
        request, "accounts.html", data=account_list(ctx), roles=roles, error=None, title=tr(lang, "Accounts")
    )


@pages.post("/admin/accounts", include_in_schema=False, dependencies=[Csrf])
def page_add_account(
    request: Request,
    ctx: Ctx,
    viewer: Managing,
    lang: Lang,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=200)],
    territory: Annotated[str, Form(max_length=9)] = "",
    measure: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        body = AccountIn(
            username=username,
            display_name=display_name,
            role=role,
            territory=territory,
            measure=measure or None,
            password=password,
        )
        add_account(ctx, viewer, body)
    except (HTTPException, ValueError) as exc:
        roles = [(r.id, r.name[lang]) for r in ctx.policy.roles.values()]
        message = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return render(
            request,
            "accounts.html",
            status=422,
            data=account_list(ctx),
            roles=roles,
            error=message,
            title=tr(lang, "Accounts"),
        )
    return RedirectResponse("/admin/accounts", status_code=303)


@api.get("/keys", response_model=KeyList)
def api_keys(ctx: Ctx, viewer: Rotating) -> KeyList:
    """The pseudonym key versions (never the keys)."""
    return key_list(ctx)


@api.post("/keys/rotate", response_model=KeyList, dependencies=[Csrf])
def api_rotate(ctx: Ctx, viewer: Rotating) -> KeyList:
    """Start a new pseudonym key version; older pseudonyms still resolve until retired."""
    return rotate(ctx, viewer)


@pages.get("/admin/keys", response_class=HTMLResponse, include_in_schema=False)
def page_keys(request: Request, ctx: Ctx, viewer: Rotating, lang: Lang) -> HTMLResponse:
    return render(request, "keys.html", data=key_list(ctx), title=tr(lang, "Pseudonym keys"))


@pages.post("/admin/keys/rotate", include_in_schema=False, dependencies=[Csrf])
def page_rotate(ctx: Ctx, viewer: Rotating) -> Response:
    rotate(ctx, viewer)
    return RedirectResponse("/admin/keys", status_code=303)
