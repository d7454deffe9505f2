"""A citizen's own card: their family's level, the reasons they may read, and who looked at it.

Sensitive reasons (health, disability, violence, police) are not shown here: one member's record must
not reach another member through the family's card (a violence report must never reach the person it
names). The card says how many reasons are discussed in person with a social worker instead.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from familycard.security import audit
from familycard.store.models import AuditEvent
from familycard.web.context import AppContext
from familycard.web.deps import API_ERRORS, Citizen, Ctx, Lang, Principal
from familycard.web.models import AccessSeen, MyCard
from familycard.web.render import N_, render, tr
from familycard.web.views.families import build_card

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["citizen"], responses=API_ERRORS)


def my_card(ctx: AppContext, viewer: Principal, lang: str) -> MyCard:
    person = viewer.person_id or ""
    with ctx.snapshot.connect() as (con, run):
        got = con.execute(
            "SELECT family_id FROM family_members WHERE person_id = ? LIMIT 1", [person]
        ).fetchone()
    fid = str(got[0]) if got else None
    card = build_card(ctx, fid, "", frozenset(), lang, None) if fid and ctx.snapshot.family(fid, "") else None
    with ctx.store.transaction() as db:
        seen: list[AuditEvent] = []
        if fid:
            seen = list(
                db.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.subject_family == fid, AuditEvent.role != "citizen")
                    .order_by(AuditEvent.seq.desc())
                    .limit(50)
                ).all()
            )
        audit.record(
            db,
            viewer.access(
                "citizen.view_own",
                "own_card",
                object_type="family",
                subject_family=fid or "",
                subject_person=person,
            ),
        )
        accesses = [
            AccessSeen(at=e.at[:16].replace("T", " "), role=e.role, purpose=e.purpose, action=e.action)
            for e in seen
        ]
    if card is None:
        if fid is None and not person:
            raise HTTPException(404, N_("no card"))
        return MyCard(
            snapshot=run,
            level=None,
            level_name=None,
            score=None,
            deprivations=[],
            situations=[],
            withheld_indicators=0,
            accesses=accesses,
        )
    return MyCard(
        snapshot=card.snapshot,
        level=card.level,
        level_name=card.level_name,
        score=card.score,
        deprivations=card.deprivations,
        situations=card.situations,
        withheld_indicators=card.withheld_indicators,
        accesses=accesses,
    )


@api.get("/me", response_model=MyCard)
def api_me(ctx: Ctx, viewer: Citizen, lang: Lang) -> MyCard:
    """The signed-in citizen's family card and who has looked at it."""
    return my_card(ctx, viewer, lang)


@pages.get("/me", response_class=HTMLResponse, include_in_schema=False)
def page_me(request: Request, ctx: Ctx, viewer: Citizen, lang: Lang) -> HTMLResponse:
    roles = {r.id: r.name[lang] for r in ctx.policy.roles.values()}
    purposes = {p.id: p.name[lang] for p in ctx.policy.purposes.values()}
    return render(
        request,
        "me.html",
        card=my_card(ctx, viewer, lang),
        roles=roles,
        purposes=purposes,
        title=tr(lang, "My family card"),
    )
