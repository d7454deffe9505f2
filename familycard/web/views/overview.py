"""Aggregates: families by level across the viewer's territory, and feed quality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from familycard.web.context import AppContext, area_name
from familycard.web.deps import API_ERRORS, Ctx, Lang, Principal, staff
from familycard.web.models import AreaLevels, FeedQuality, LevelCount, Overview, QualityReport
from familycard.web.render import render, tr

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["aggregates"], responses=API_ERRORS)
Aggregates = Annotated[Principal, Depends(staff("view_aggregates"))]
Quality = Annotated[Principal, Depends(staff("view_quality"))]
NEXT_DIGITS = {0: 2, 2: 4, 4: 6, 6: 9, 9: 9}


def overview(ctx: AppContext, viewer: Principal, lang: str) -> Overview:
    scope = viewer.territory
    digits = NEXT_DIGITS.get(len(scope), 9)
    rows = ctx.snapshot.levels_by_area(scope, digits)
    areas: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for area, level, n in rows:
        areas.setdefault(area, {})[level] = n
        totals[level] = totals.get(level, 0) + n
    return Overview(
        territory=scope,
        territory_name=area_name(scope, lang),
        snapshot=ctx.snapshot.run(),
        families=sum(totals.values()),
        levels=[LevelCount(level=k, families=v) for k, v in sorted(totals.items())],
        areas=[
            AreaLevels(
                area=a,
                name=area_name(a, lang),
                families=sum(lv.values()),
                levels=[LevelCount(level=k, families=v) for k, v in sorted(lv.items())],
            )
            for a, lv in sorted(areas.items())
        ],
    )


@api.get("/overview", response_model=Overview)
def api_overview(ctx: Ctx, viewer: Aggregates, lang: Lang) -> Overview:
    """Families by well-being level in the caller's territory and each of its areas (counts only)."""
    return overview(ctx, viewer, lang)


@pages.get("/overview", response_class=HTMLResponse, include_in_schema=False)
def page_overview(request: Request, ctx: Ctx, viewer: Aggregates, lang: Lang) -> HTMLResponse:
    data = overview(ctx, viewer, lang)
    levels = [lv.level for lv in data.levels]
    return render(request, "overview.html", data=data, levels=levels, title=tr(lang, "Overview"))


def quality(ctx: AppContext) -> QualityReport:
    rows = ctx.snapshot.quality()
    return QualityReport(
        snapshot=ctx.snapshot.run(),
        feeds=[FeedQuality.model_validate({k: r.get(k) for k in FeedQuality.model_fields}) for r in rows],
    )


@api.get("/quality", response_model=QualityReport)
def api_quality(ctx: Ctx, viewer: Quality) -> QualityReport:
    """Each feed's freshness and quality in the published snapshot."""
    return quality(ctx)


@pages.get("/quality", response_class=HTMLResponse, include_in_schema=False)
def page_quality(request: Request, ctx: Ctx, viewer: Quality, lang: Lang) -> HTMLResponse:
    return render(request, "quality.html", data=quality(ctx), title=tr(lang, "Feed quality"))
