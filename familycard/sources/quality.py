"""Freshness and quality of every feed, from the delivery ledger, the findings and the histories.

Per feed:

- **completeness**: the share of filled values over the current records' columns (each column's own
  share is in ``quality_columns``);
- **validity**: the share of rows read that loaded with no issue set aside (rejected and flagged rows
  count against it), and the rows still waiting in quarantine;
- **uniqueness**: the share of rows read that were not exact duplicates within their delivery;
- **timeliness**: deliveries expected by the cadence up to the as-of date, how many are missing, how many
  arrived late and by how many days, and the last period received;
- **consistency** across feeds: the share of the current records' references (e.g. IINs) not found in
  the referenced feed (people in health records unknown to the civil registry).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from familycard.sources import history
from familycard.sources.catalogue import Catalogue, FeedSpec
from familycard.sources.periods import due_date, months, period_of
from familycard.store.engine import Engine

OPEN_SQL = """
    SELECT f.* FROM findings AS f
    LEFT JOIN releases AS r
      ON r.delivery = f.delivery AND r.line = f.line AND r.field = f.field AND r.rule = f.rule
    WHERE f.severity IN ('reject', 'flag') AND r.delivery IS NULL
"""
"""Quarantine entries still open: rejected or flagged findings no release names."""

QUALITY_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("agency", pa.string()),
        ("cadence_months", pa.int64()),
        ("files_loaded", pa.int64()),
        ("files_rejected", pa.int64()),
        ("last_period", pa.string()),
        ("last_received", pa.date32()),
        ("expected", pa.int64()),
        ("missing", pa.int64()),
        ("late", pa.int64()),
        ("mean_days_late", pa.float64()),
        ("timely", pa.float64()),
        ("rows_read", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("rows_flagged", pa.int64()),
        ("duplicates", pa.int64()),
        ("quarantine_open", pa.int64()),
        ("current_records", pa.int64()),
        ("completeness", pa.float64()),
        ("validity", pa.float64()),
        ("uniqueness", pa.float64()),
        ("unknown_references", pa.int64()),
        ("consistency", pa.float64()),
        ("as_of", pa.date32()),
    ]
)
COLUMN_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("field", pa.string()),
        ("filled", pa.int64()),
        ("records", pa.int64()),
        ("completeness", pa.float64()),
    ]
)


@dataclass
class Quality:
    feeds: pa.Table  # QUALITY_SCHEMA
    columns: pa.Table  # COLUMN_SCHEMA


def expected_periods(spec: FeedSpec, first: str, as_of: dt.date) -> list[str]:
    """Periods a feed owes from its first delivery up to ``as_of`` (those already due)."""
    out = []
    m = months(first)
    while True:
        p = period_of(m)
        if due_date(spec, p) > as_of:
            break
        out.append(p)
        m += spec.cadence_months
    return out


def compute_quality(
    engine: Engine, catalogue: Catalogue, deliveries: pa.Table, as_of: dt.date | None = None
) -> Quality:
    """Quality of every feed. The engine must have views ``src_<feed>`` for every feed, ``findings`` and
    ``releases``; ``deliveries`` is the delivery ledger."""
    findings_open = engine.fetch(f"SELECT feed, COUNT(*) AS n FROM ({OPEN_SQL}) AS o GROUP BY feed")
    findings_counts = engine.fetch("SELECT feed, rule, COUNT(*) AS n FROM findings GROUP BY feed, rule")
    loaded = deliveries.filter(pc.equal(deliveries["status"], "loaded"))
    if as_of is None:
        # The data's own clock: the latest due date among the deliveries received (wall-clock time would
        # call every feed of an old or synthetic extract overdue).
        due = pc.max(loaded["due"]).as_py() if loaded.num_rows else None
        as_of = due or dt.date.today()
    open_by_feed = dict(zip(findings_open["feed"].to_pylist(), findings_open["n"].to_pylist(), strict=True))
    dup_by_feed = {
        f: n
        for f, r, n in zip(
            findings_counts["feed"].to_pylist(),
            findings_counts["rule"].to_pylist(),
            findings_counts["n"].to_pylist(),
            strict=True,
        )
        if r == "duplicate"
    }
    counts = engine.fetch(counts_sql(catalogue)).to_pylist()[0]
    rows: list[dict[str, object]] = []
    col_rows: list[dict[str, object]] = []
    d_rows = deliveries.to_pylist()
    for spec in catalogue:
        mine = [d for d in d_rows if d["feed"] == spec.name]
        ok = [d for d in mine if d["status"] == "loaded"]
        periods = sorted({str(d["period"]) for d in ok})
        expected = expected_periods(spec, periods[0], as_of) if periods else []
        # A missed period's changes arrive with a later delivery; the period itself is still missing.
        missing = [p for p in expected if p not in periods]
        late = [d for d in ok if d["received"] > d["due"]]
        read = sum(int(d["rows_read"]) for d in ok)
        rejected = sum(int(d["rows_rejected"]) for d in ok)
        flagged = sum(int(d["rows_flagged"]) for d in ok)
        dups = int(dup_by_feed.get(spec.name, 0))
        fields = history.stored_fields(spec)
        n = int(counts[f"{spec.name}__n"] or 0)
        # Raw IIN text is only filled where the IIN was set aside: not a column to complete.
        shares = []
        for f in fields:
            if f.endswith("_raw"):
                continue
            filled = int(counts[f"{spec.name}__c_{f}"] or 0)
            shares.append(filled / n if n else 0.0)
            col_rows.append(
                dict(
                    feed=spec.name, field=f, filled=filled, records=n, completeness=filled / n if n else None
                )
            )
        unknown, refs = 0, 0
        for col in spec.columns:
            if col.references is None:
                continue
            seen = int(counts[f"{spec.name}__r_{col.field}"] or 0)
            refs += seen
            unknown += seen - int(counts[f"{spec.name}__f_{col.field}"] or 0)
        rows.append(
            dict(
                feed=spec.name,
                agency=spec.agency,
                cadence_months=spec.cadence_months,
                files_loaded=len(ok),
                files_rejected=sum(1 for d in mine if d["status"] == "rejected"),
                last_period=periods[-1] if periods else None,
                last_received=max((d["received"] for d in ok), default=None),
                expected=len(expected),
                missing=len(missing),
                late=len(late),
                mean_days_late=(sum((d["received"] - d["due"]).days for d in late) / len(late))
                if late
                else 0.0,
                timely=(len(expected) - len(missing) - len(late)) / len(expected) if expected else None,
                rows_read=read,
                rows_rejected=rejected,
                rows_flagged=flagged,
                duplicates=dups,
                quarantine_open=int(open_by_feed.get(spec.name, 0)),
                current_records=n,
                completeness=sum(shares) / len(shares) if shares and n else None,
                validity=(read - rejected - flagged) / read if read else None,
                uniqueness=(read - dups) / read if read else None,
                unknown_references=unknown,
                consistency=(refs - unknown) / refs if refs else None,
                as_of=as_of,
            )
        )
    return Quality(
        pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA),
        pa.Table.from_pylist(col_rows, schema=COLUMN_SCHEMA),
    )


def counts_sql(catalogue: Catalogue) -> str:
    """One row with every count quality needs, over views ``src_<feed>`` (a single query: on Spark, one job
    instead of one per feed)."""
    q = history.q
    current = "_valid_to_seq IS NULL AND NOT _deleted"
    parts = []
    for spec in catalogue:
        counts = [f"COUNT(*) AS {q(spec.name + '__n')}"]
        counts += [f"COUNT({q(f)}) AS {q(f'{spec.name}__c_{f}')}" for f in history.stored_fields(spec)]
        parts.append(f"(SELECT {', '.join(counts)} FROM src_{spec.name} WHERE {current})")
        for col in spec.columns:
            ref = col.references
            if ref is None:
                continue
            parts.append(
                f"""(SELECT COUNT(*) AS {q(f"{spec.name}__r_{col.field}")},
                        COUNT(t.v) AS {q(f"{spec.name}__f_{col.field}")}
                    FROM (SELECT DISTINCT {q(col.field)} AS v FROM src_{spec.name}
                          WHERE {current} AND {q(col.field)} IS NOT NULL) AS s
                    LEFT JOIN (SELECT DISTINCT {q(ref.field)} AS v FROM src_{ref.feed}) AS t ON s.v = t.v)"""
            )
    return "SELECT * FROM " + " CROSS JOIN ".join(f"{p} AS t{i}" for i, p in enumerate(parts))


def _pct(x: object) -> str:
    return "—" if x is None else f"{100 * float(x):.1f}%"  # type: ignore[arg-type]


def format_quality(table: pa.Table) -> str:
    """A plain-text report of the ``quality`` table, one line per feed."""
    head = (
        f"{'feed':<22} {'last':>7} {'files':>5} {'rej':>3} {'miss':>4} {'late':>4} {'rows':>10} "
        f"{'complete':>8} {'valid':>7} {'unique':>7} {'consist':>7} {'quarant.':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in table.to_pylist():
        lines.append(
            f"{r['feed']:<22} {r['last_period'] or '—':>7} {r['files_loaded']:>5} {r['files_rejected']:>3} "
            f"{r['missing']:>4} {r['late']:>4} {r['rows_read']:>10,} {_pct(r['completeness']):>8} "
            f"{_pct(r['validity']):>7} {_pct(r['uniqueness']):>7} {_pct(r['consistency']):>7} "
            f"{r['quarantine_open']:>8,}"
        )
    as_of = table["as_of"][0].as_py() if table.num_rows else None
    lines.append(
        f"as of {as_of}: files = deliveries loaded, rej = files rejected whole, miss/late = deliveries "
        "missing or late against the cadence"
    )
    return "\n".join(lines)


def quality_json(table: pa.Table) -> str:
    return json.dumps(table.to_pylist(), ensure_ascii=False, default=str, indent=2)
