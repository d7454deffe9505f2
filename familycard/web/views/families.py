"""Families: the pseudonymised list and card (analysts, social workers, officers), and re-identification.

A family outside the viewer's territory does not exist for them (404). Deprivations and situations in
a sensitive category are withheld unless the request declares a purpose that allows the category; the
card says which categories were withheld. Re-identification is a POST with a purpose that allows it.
Every read is written to the audit log before the response is sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from familycard.indicators.methodology import load_methodology
from familycard.scoring.explain import ROLES, NotFound, explain_family
from familycard.security import audit
from familycard.security.pseudonyms import UnknownPseudonym
from familycard.web.context import AppContext, area_name
from familycard.web.deps import (
    API_ERRORS,
    Csrf,
    Ctx,
    DeclaredPurpose,
    Lang,
    Principal,
    declared_purpose,
    staff,
)
from familycard.web.models import (
    FamilyCard,
    FamilyList,
    FamilySummary,
    Identity,
    IndicatorShown,
    Member,
    PersonIdentity,
    PurposeIn,
    SituationShown,
    SourceRef,
)
from familycard.web.render import N_, render, tr

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["families"], responses=API_ERRORS)
Viewing = Annotated[Principal, Depends(staff("view_families"))]
Reidentifying = Annotated[Principal, Depends(staff("reidentify"))]
LEVELS = ("A", "B", "C", "D", "E", "1", "2", "3", "4", "5", "6")


def role_name(role: str, lang: str) -> str:
    return ROLES.get(role, {}).get(lang, role)


def family_list(
    ctx: AppContext, viewer: Principal, lang: str, level: str | None, offset: int, limit: int
) -> FamilyList:
    total, rows = ctx.snapshot.families(viewer.territory, level=level, limit=limit, offset=offset)
    run = ctx.snapshot.run()
    with ctx.store.transaction() as db:
        audit.record(
            db,
            viewer.access(
                "family.list",
                object_type="territory",
                object_id=viewer.territory,
                detail={"level": level, "offset": offset, "shown": len(rows), "snapshot": run},
            ),
        )
    return FamilyList(
        territory=viewer.territory,
        snapshot=run,
        total=total,
        offset=offset,
        limit=limit,
        level=level,
        families=[
            FamilySummary(
                pseudonym=ctx.snapshot.pseudonym("family", r.family_id),
                level=r.level,
                score=r.score,
                area=r.kato,
                area_name=area_name(r.kato, lang),
                rural=r.rural,
                size=r.size,
                adults=r.adults,
                minors=r.minors,
                targeted=r.targeted,
                uncertain_members=r.uncertain_members,
            )
            for r in rows
        ],
    )


def _family_id(ctx: AppContext, viewer: Principal, pseudonym: str) -> str:
    """The family behind a pseudonym, if it is in the viewer's territory (404 otherwise)."""
    try:
        fid = ctx.snapshot.resolve("family", pseudonym)
    except UnknownPseudonym:
        raise HTTPException(404, N_("no such family")) from None
    if ctx.snapshot.family(fid, viewer.territory) is None:
        raise HTTPException(404, N_("no such family"))
    return fid


def build_card(
    ctx: AppContext, fid: str, pseudonym: str, readable: frozenset[str], lang: str, purpose: str | None
) -> FamilyCard:
    row = ctx.snapshot.family(fid, "")
    assert row is not None
    try:
        ex = explain_family(ctx.settings.data, fid, lang)
    except NotFound:
        raise HTTPException(404, N_("no such family")) from None
    meth = load_methodology(ex.methodology["id"])
    ind_cats = ctx.policy.indicator_categories(meth)
    sit_cats = ctx.policy.situation_categories(meth)
    members = ctx.snapshot.members(fid)
    by_person = {m["person_id"]: m for m in members}
    shown: list[IndicatorShown] = []
    withheld: set[str] = set()
    hidden = 0
    for d in ex.deprivations:
        cats = ind_cats.get(d.indicator, frozenset())
        if not cats <= readable:
            withheld |= cats - readable
            hidden += 1
            continue
        shown.append(
            IndicatorShown(
                id=d.indicator,
                domain=d.domain,
                name=d.name,
                description=d.description,
                value=d.value,
                share=d.weight,
                sources=[
                    SourceRef(
                        feed=s.feed,
                        record=s.record_key,
                        period=s.period,
                        member=role_name(by_person.get(s.person_id, {}).get("role", ""), lang),
                    )
                    for s in d.sources
                ],
                checked=d.checked,
            )
        )
    situations = []
    for s in ex.situations:
        cats = sit_cats.get(s["id"], frozenset())
        if not cats <= readable:
            withheld |= cats - readable
            continue
        situations.append(SituationShown(**s))
    return FamilyCard(
        pseudonym=pseudonym,
        snapshot=ctx.snapshot.run(),
        as_of=ex.as_of,
        methodology=f"{ex.methodology['id']} ({ex.methodology['version']})",
        level=ex.level,
        level_name=ex.level_name,
        score=ex.score,
        area=row.kato,
        area_name=area_name(row.kato, lang),
        rural=row.rural,
        targeted=ex.targeted,
        uncertain_members=ex.uncertain_members,
        floor_reason=ex.floor_reason if not withheld else None,
        purpose=purpose,
        withheld=sorted(withheld),
        withheld_indicators=hidden,
        members=[
            Member(
                pseudonym=ctx.snapshot.pseudonym("person", m["person_id"]),
                role=role_name(m["role"], lang),
                age=m["age"],
                sex=m["sex"],
                uncertain=m["uncertain"],
            )
            for m in members
        ],
        deprivations=shown,
        situations=situations,
    )


def family_card(
    ctx: AppContext, viewer: Principal, pseudonym: str, lang: str, purpose: str | None
) -> FamilyCard:
    fid = _family_id(ctx, viewer, pseudonym)
    readable = ctx.policy.readable(viewer.role, purpose)
    card = build_card(ctx, fid, pseudonym, readable, lang, purpose)
    with ctx.store.transaction() as db:
        audit.record(
            db,
            viewer.access(
                "family.view",
                purpose,
                object_type="family",
                object_id=pseudonym,
                subject_family=fid,
                detail={"categories": sorted(readable), "snapshot": card.snapshot},
            ),
        )
    return card


def reidentify(
    ctx: AppContext, viewer: Principal, pseudonym: str, purpose: str | None, lang: str = "en"
) -> Identity:
    if purpose is None or not ctx.policy.can_reidentify(viewer.role, purpose):
        raise HTTPException(403, N_("re-identification needs a declared purpose that allows it"))
    fid = _family_id(ctx, viewer, pseudonym)
    people = ctx.snapshot.identities(fid)
    with ctx.store.transaction() as db:
        audit.record(
            db,
            viewer.access(
                "family.reidentify",
                purpose,
                object_type="family",
                object_id=pseudonym,
                subject_family=fid,
                subject_person=people[0]["person_id"] if people else "",
            ),
            subjects=[(fid, p["person_id"]) for p in people[1:]],
        )
    return Identity(
        pseudonym=pseudonym,
        purpose=purpose,
        members=[
            PersonIdentity(
                pseudonym=ctx.snapshot.pseudonym("person", p["person_id"]),
                role=role_name(p["role"], lang),
                iin=p["iin"],
                surname=p["surname"],
                given_name=p["given_name"],
                patronymic=p["patronymic"],
                birth_date=p["birth_date"],
                sex=p["sex"],
                phones=p["phones"],
            )
            for p in people
        ],
    )


LevelQ = Annotated[str | None, Query(pattern="^[A-E1-6]$", description="Only families at this level")]
OffsetQ = Annotated[int, Query(ge=0, le=10_000_000)]
LimitQ = Annotated[int, Query(ge=1, le=500)]


@api.get("/families", response_model=FamilyList)
def api_families(
    ctx: Ctx, viewer: Viewing, lang: Lang, level: LevelQ = None, offset: OffsetQ = 0, limit: LimitQ = 50
) -> FamilyList:
    """Families in the caller's territory, most deprived first, by pseudonym."""
    return family_list(ctx, viewer, lang, level, offset, limit)


@pages.get("/families", response_class=HTMLResponse, include_in_schema=False)
def page_families(
    request: Request, ctx: Ctx, viewer: Viewing, lang: Lang, level: LevelQ = None, offset: OffsetQ = 0
) -> HTMLResponse:
    data = family_list(ctx, viewer, lang, level, offset, 50)
    return render(request, "families.html", data=data, levels=_levels(ctx), title=tr(lang, "Families"))


def _levels(ctx: AppContext) -> list[str]:
    return [lv.code for lv in load_methodology().levels]


@api.get("/families/{pseudonym}", response_model=FamilyCard)
def api_family(ctx: Ctx, viewer: Viewing, lang: Lang, purpose: DeclaredPurpose, pseudonym: str) -> FamilyCard:
    """A family's card: level, score, members by role, the deprivations and situations behind the level.

    Sensitive categories are shown only with a declared ``purpose`` the caller's role allows."""
    return family_card(ctx, viewer, pseudonym, lang, purpose)


@pages.get("/families/{pseudonym}", response_class=HTMLResponse, include_in_schema=False)
def page_family(
    request: Request, ctx: Ctx, viewer: Viewing, lang: Lang, purpose: DeclaredPurpose, pseudonym: str
) -> HTMLResponse:
    card = family_card(ctx, viewer, pseudonym, lang, purpose)
    role = ctx.policy.roles[viewer.role]
    purposes = [(p, ctx.policy.purposes[p].name[lang]) for p in role.purposes]
    categories = {c.id: c.name[lang] for c in ctx.policy.categories.values()}
    reid = [(p, n) for p, n in purposes if ctx.policy.can_reidentify(viewer.role, p)]
    return render(
        request,
        "family.html",
        card=card,
        purposes=purposes,
        categories=categories,
        reidentify_purposes=reid,
        title=tr(lang, "Family card"),
    )


@api.post("/families/{pseudonym}/identity", response_model=Identity, dependencies=[Csrf])
def api_identity(ctx: Ctx, viewer: Reidentifying, lang: Lang, body: PurposeIn, pseudonym: str) -> Identity:
    """Re-identify a family's members (IIN, names, phones). Needs a purpose that allows it; audited."""
    purpose = declared_purpose(ctx, viewer, body.purpose)
    return reidentify(ctx, viewer, pseudonym, purpose, lang)


@pages.post(
    "/families/{pseudonym}/identity",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Csrf],
)
def page_identity(
    request: Request,
    ctx: Ctx,
    viewer: Reidentifying,
    lang: Lang,
    pseudonym: str,
    purpose: Annotated[str, Form(max_length=40)],
) -> HTMLResponse:
    checked = declared_purpose(ctx, viewer, purpose)
    ident = reidentify(ctx, viewer, pseudonym, checked, lang)
    return render(
        request,
        "identity.html",
        ident=ident,
        purpose_name=ctx.policy.purposes[ident.purpose].name[lang],
        title=tr(lang, "Who the members are"),
    )
