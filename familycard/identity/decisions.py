"""Reviewers' decisions on person links, kept outside the run snapshots and reused by every later run.

``DATA/decisions/link_decisions.parquet`` is append-only: a decision is never changed or removed, a new
one is added (the latest decision on a link wins). Each row says who decided, when and why, about which
link: a mention (``feed``, ``record_key``, ``role``) and a person (``person_id``, stable across runs).

* ``accept``: the mention is that person's, whatever the model says in later runs (as long as the
  person exists);
* ``reject``: the mention is never linked to that person; the model's next best candidate is used, or
  the mention stays apart.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DECISIONS = ("accept", "reject")
DECISION_SCHEMA = pa.schema(
    [
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("reviewer", pa.string()),
        ("decision", pa.string()),
        ("feed", pa.string()),
        ("record_key", pa.string()),
        ("role", pa.string()),
        ("person_id", pa.string()),
        ("reason", pa.string()),
    ]
)


def decisions_path(data: Path) -> Path:
    """Where the decisions of the warehouse at ``data`` are kept."""
    return Path(data) / "decisions" / "link_decisions.parquet"


def load_decisions(data: Path) -> pa.Table:
    """Every decision ever recorded, oldest first (an empty table when there is none)."""
    path = decisions_path(data)
    if not path.is_file():
        return DECISION_SCHEMA.empty_table()
    return pq.read_table(path).cast(DECISION_SCHEMA)


def record_decisions(data: Path, rows: Iterable[dict[str, object]]) -> int:
    """Append decisions (dicts with the columns of :data:`DECISION_SCHEMA`; ``decided_at`` defaults to
    now); return how many. The file is rewritten with every earlier row unchanged and then replaced
    atomically, so a reader sees either the old or the new file, never a half-written one."""
    now = dt.datetime.now(dt.UTC)
    new = []
    for row in rows:
        row = {**row, "decided_at": row.get("decided_at") or now}
        missing = [
            f for f in ("reviewer", "decision", "feed", "record_key", "role", "person_id") if not row.get(f)
        ]
        if missing:
            raise ValueError(f"a decision needs {', '.join(missing)}")
        if row["decision"] not in DECISIONS:
            raise ValueError(f"decision {row['decision']!r} is not one of {', '.join(DECISIONS)}")
        new.append({name: row.get(name) for name in DECISION_SCHEMA.names})
    if not new:
        return 0
    table = pa.concat_tables([load_decisions(data), pa.Table.from_pylist(new, schema=DECISION_SCHEMA)])
    path = decisions_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return len(new)


def record_decision(
    data: Path,
    *,
    feed: str,
    record_key: str,
    role: str,
    person_id: str,
    decision: str,
    reviewer: str,
    reason: str = "",
    decided_at: dt.datetime | None = None,
) -> None:
    """Append one reviewer's decision on the link of a mention to a person."""
    record_decisions(
        data,
        [
            {
                "decided_at": decided_at,
                "reviewer": reviewer,
                "decision": decision,
                "feed": feed,
                "record_key": record_key,
                "role": role,
                "person_id": person_id,
                "reason": reason,
            }
        ],
    )


def mention_id(feed: str, record_key: str, role: str) -> str:
    """A mention's id, ``feed|record_key|role`` (as :mod:`familycard.identity.mentions` makes it in SQL)."""
    return f"{feed}|{record_key}|{role}"


def mention_parts(mention_id: str) -> tuple[str, str, str]:
    """The feed, record key and role of a mention id (feeds and roles hold no ``|``; record keys may)."""
    feed, rest = mention_id.split("|", 1)
    record_key, role = rest.rsplit("|", 1)
    return feed, record_key, role


def current_decisions(decisions: pa.Table) -> dict[tuple[str, str], str]:
    """The decision in force per (mention id ``feed|record_key|role``, person id): the latest one."""
    rows = sorted(
        enumerate(decisions.to_pylist()), key=lambda ir: (ir[1]["decided_at"], ir[0])
    )  # ties keep file order
    out: dict[tuple[str, str], str] = {}
    for _, r in rows:
        out[(mention_id(r["feed"], r["record_key"], r["role"]), str(r["person_id"]))] = str(r["decision"])
    return out
