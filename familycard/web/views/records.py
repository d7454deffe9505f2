"""The audit log for the data-protection officer: who read or changed what, and whether the chain holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from familycard.security import audit
from familycard.security.pseudonyms import UnknownPseudonym
from familycard.store.models import AuditEvent
from familycard.web.context import AppContext
from familycard.web.deps import API_ERRORS, Ctx, Lang, Principal, staff
from familycard.web.models import AuditCheck, AuditPage, AuditRow
from familycard.web.render import render, tr

pages = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["audit"], responses=API_ERRORS)
Auditing = Annotated[Principal, Depends(staff("view_audit"))]
FamilyQ = Annotated[
    str | None,
    Query(max_length=40, pattern="^[A-Za-z0-9-]*$", description="Only accesses to this family (pseudonym)"),
]
OffsetQ = Annotated[int, Query(ge=0, le=100_000_000)]


def audit_page(ctx: AppContext, viewer: Principal, family: str | None, offset: int) -> AuditPage:
    subject = None
    if family:
        try:
            subject = ctx.snapshot.resolve("family", family)
        except UnknownPseudonym:
            subject = "-"
    with ctx.store.transaction() as db:
        q = select(AuditEvent)
        n = select(func.count()).select_from(AuditEvent)
        if subject is not None:
            q, n = (
                q.where(AuditEvent.subject_family == subject),
                n.where(AuditEvent.subject_family == subject),
            )
        total = int(db.scalar(n) or 0)
        rows = db.scalars(q.order_by(AuditEvent.seq.desc()).offset(offset).limit(100)).all()
        out = AuditPage(
            total=total,
            rows=[
                AuditRow(
                    seq=r.seq,
                    at=r.at,
                    actor=r.actor,
                    role=r.role,
                    territory=r.territory,
                    purpose=r.purpose,
                    action=r.action,
                    object_type=r.object_type,
                    object_id=r.object_id,
                    family=ctx.snapshot.pseudonym("family", r.subject_family) if r.subject_family else "",
                )
                for r in rows
            ],
        )
        audit.record(
            db,
            viewer.access(
                "audit.view",
                "audit_investigation",
                object_type="audit_log",
                object_id=family or "",
                subject_family=subject or "",
            ),
        )
    return out


def check(ctx: AppContext, viewer: Principal) -> AuditCheck:
    result = audit.verify(ctx.store)
    return AuditCheck(rows=result.rows, ok=result.ok, first_bad=result.first_bad, reason=result.reason)


@api.get("/audit", response_model=AuditPage)
def api_audit(ctx: Ctx, viewer: Auditing, family: FamilyQ = None, offset: OffsetQ = 0) -> AuditPage:
    """The audit log, newest first (100 rows a page), optionally for one family."""
    return audit_page(ctx, viewer, family, offset)


@api.get("/audit/verification", response_model=AuditCheck)
def api_verify(ctx: Ctx, viewer: Auditing) -> AuditCheck:
    """Walk the hash chain; the first row that does not hold, if any."""
    return check(ctx, viewer)


@pages.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def page_audit(
    request: Request,
    ctx: Ctx,
    viewer: Auditing,
    lang: Lang,
    family: FamilyQ = None,
    offset: OffsetQ = 0,
    verify: bool = False,
) -> HTMLResponse:
    data = audit_page(ctx, viewer, family, offset)
    result = check(ctx, viewer) if verify else None
    return render(
        request,
        "audit.html",
        data=data,
        family=family or "",
        result=result,
        roles={r.id: r.name[lang] for r in ctx.policy.roles.values()},
        purposes={p.id: p.name[lang] for p in ctx.policy.purposes.values()},
        title=tr(lang, "Audit log"),
    )
