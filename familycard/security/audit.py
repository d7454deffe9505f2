"""The audit log: every read or change of personal data, in a hash chain.

Each row holds who (actor, role, territory), why (purpose), what (action, object, the family and
person it concerns, as internal ids) and when. Its ``hash`` is SHA-256 over the previous row's hash
and the row's own fields, so changing, removing or reordering any row breaks every later link, and the
one-row ``audit_head`` (updated in the same transaction, under a row lock) catches a truncated tail.
:func:`verify` walks the chain and names the first row that does not hold.

A row is appended in the transaction of the access it records: if the row cannot be written, the
access does not happen (the request fails and nothing is shown).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from familycard.store.models import AuditEvent, AuditHead
from familycard.store.operational import OperationalStore

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "territory",
    "purpose",
    "action",
    "object_type",
    "object_id",
    "subject_family",
    "subject_person",
    "detail",
)


@dataclass
class Access:
    """What to record: filled by the request (who, why) and the handler (what)."""

    actor: str
    role: str
    territory: str
    purpose: str
    action: str
    object_type: str = ""
    object_id: str = ""
    subject_family: str = ""
    subject_person: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    body = json.dumps({k: row[k] for k in FIELDS}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def record(session: Session, access: Access, subjects: Iterable[tuple[str, str]] = ()) -> list[int]:
    """Append one row for ``access`` (and one per further (family, person) subject); their seqs.

    Call inside the unit of work's transaction; the head row lock makes concurrent appends queue.
    """
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    seq, prev = head.seq, head.hash
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    detail = json.dumps(access.detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    targets = [(access.subject_family, access.subject_person), *subjects]
    seqs = []
    for family, person in targets:
        seq += 1
        row = {
            "seq": seq,
            "at": now,
            "actor": access.actor,
            "role": access.role,
            "territory": access.territory,
            "purpose": access.purpose,
            "action": access.action,
            "object_type": access.object_type,
            "object_id": access.object_id,
            "subject_family": family,
            "subject_person": person,
            "detail": detail,
        }
        digest = row_hash(prev, row)
        session.add(AuditEvent(**row, prev_hash=prev, hash=digest))
        prev = digest
        seqs.append(seq)
    head.seq, head.hash = seq, prev
    session.flush()
    return seqs


@dataclass(frozen=True)
class Verification:
    rows: int
    ok: bool
    first_bad: int | None = None
    reason: str = ""


def verify(store: OperationalStore, batch: int = 10_000) -> Verification:
    """Walk the chain from the first row; the first row whose link or content does not hold."""
    prev, expected, n = GENESIS, 1, 0
    with store.transaction() as session:
        head = session.get(AuditHead, 1)
        last_seq = 0
        while True:
            rows = (
                session.execute(
                    select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
                )
                .scalars()
                .all()
            )
            if not rows:
                break
            for r in rows:
                if r.seq != expected:
                    return Verification(n, False, expected, f"row {expected} is missing (next is {r.seq})")
                if r.prev_hash != prev:
                    return Verification(n, False, r.seq, f"row {r.seq} does not link to row {r.seq - 1}")
                fields = {k: getattr(r, k) for k in FIELDS}
                if row_hash(prev, fields) != r.hash:
                    return Verification(n, False, r.seq, f"row {r.seq} was altered after it was written")
                prev, expected, n = r.hash, expected + 1, n + 1
            last_seq = rows[-1].seq
            session.expunge_all()
        if head is None or head.seq != n or head.hash != prev:
            said = head.seq if head else "nothing"
            return Verification(n, False, n + 1, f"the chain ends at row {n}, its head says row {said}")
    return Verification(n, True)
