"""The start page and the health check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from familycard.web.deps import Ctx, Lang, Viewer
from familycard.web.models import Health
from familycard.web.render import render, tr
from familycard.web.snapshot import NoSnapshot

pages = APIRouter()
api = APIRouter(tags=["health"])


@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, ctx: Ctx, viewer: Viewer, lang: Lang) -> Response:
    if viewer is not None and viewer.kind == "citizen":
        return RedirectResponse("/me", status_code=303)
    role = ctx.policy.roles[viewer.role].name[lang] if viewer and viewer.role in ctx.policy.roles else None
    return render(request, "home.html", role_name=role, title=tr(lang, "Digital Family Card"))


@api.get("/healthz", response_model=Health)
def health(ctx: Ctx) -> Health:
    """Liveness: the published snapshot and the store's migration."""
    try:
        snapshot: str | None = ctx.snapshot.run()
    except NoSnapshot:
        snapshot = None
    return Health(status="ok", snapshot=snapshot, store=ctx.store.dialect)
