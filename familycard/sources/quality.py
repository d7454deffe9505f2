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
from familycard.sources.catalogue import Catalogue, FeedSpec, references_by_target
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


REFERENCE_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("field", pa.string()),
        ("target_feed", pa.string()),
        ("target_field", pa.string()),
        ("values", pa.int64()),  # distinct values among the current records
        ("found", pa.int64()),  # of those, found in the referenced feed (any version)
    ]
)
CURRENT = "_valid_to_seq IS NULL AND NOT _deleted"


@dataclass
class Quality:
    feeds: pa.Table  # QUALITY_SCHEMA
    columns: pa.Table  # COLUMN_SCHEMA
    references: pa.Table | None = None  # REFERENCE_SCHEMA (the counts behind consistency)


@dataclass(frozen=True)
class FeedChange:
    """What a run changed in one feed's history, for counts updated rather than recounted: ``changes``
    is a view of the versions the run added and of the current versions it closed (a feed whose history
    is new: the history itself), ``since`` the run's first delivery of the feed (versions before it were
    current before the run)."""

    changes: str
    since: int


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
    engine: Engine,
    catalogue: Catalogue,
    deliveries: pa.Table,
    as_of: dt.date | None = None,
    counts: dict[str, int] | None = None,
) -> Quality:
    """Quality of every feed. The engine must have views ``src_<feed>`` for every feed, ``findings`` and
    ``releases``; ``deliveries`` is the delivery ledger. ``counts`` (as :func:`counts_sql` names them,
    e.g. from :func:`updated_counts`) spares counting every feed's current records again."""
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
    if counts is None:
        counts = engine.fetch(counts_sql(catalogue)).to_pylist()[0]
    rows: list[dict[str, object]] = []
    ref_rows: list[dict[str, object]] = []
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
        n = int(counts[f"{spec.name}__n"] or 0)
        shares = []
        for f in counted_fields(spec):
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
            found = int(counts[f"{spec.name}__f_{col.field}"] or 0)
            refs += seen
            unknown += seen - found
            ref_rows.append(
                dict(
                    feed=spec.name,
                    field=col.field,
                    target_feed=col.references.feed,
                    target_field=col.references.field,
                    values=seen,
                    found=found,
                )
            )
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
        pa.Table.from_pylist(ref_rows, schema=REFERENCE_SCHEMA),
    )


def counts_sql(catalogue: Catalogue) -> str:
    """One row with every count quality needs, over views ``src_<feed>`` (a single query: on Spark, one job
    instead of one per feed). A referenced field's values are read once for every field that refers
    to it."""
    q = history.q
    current = CURRENT
    parts = []
    for spec in catalogue:
        counts = [f"COUNT(*) AS {q(spec.name + '__n')}"]
        counts += [f"COUNT({q(f)}) AS {q(f'{spec.name}__c_{f}')}" for f in history.stored_fields(spec)]
        parts.append(f"(SELECT {', '.join(counts)} FROM src_{spec.name} WHERE {current})")
    for (feed, field), sources in sorted(references_by_target(catalogue).items()):
        values = " UNION ALL ".join(
            f"SELECT DISTINCT {i} AS src, {q(f)} AS v FROM src_{spec.name} "
            f"WHERE {current} AND {q(f)} IS NOT NULL"
            for i, (spec, f) in enumerate(sources)
        )
        counts = []
        for i, (spec, f) in enumerate(sources):
            counts += [
                f"COUNT(*) FILTER (WHERE s.src = {i}) AS {q(f'{spec.name}__r_{f}')}",
                f"COUNT(t.v) FILTER (WHERE s.src = {i}) AS {q(f'{spec.name}__f_{f}')}",
            ]
        parts.append(
            f"""(SELECT {", ".join(counts)}
                FROM ({values}) AS s
                LEFT JOIN (SELECT DISTINCT {q(field)} AS v FROM src_{feed}) AS t ON s.v = t.v)"""
        )
    return "SELECT * FROM " + " CROSS JOIN ".join(f"{p} AS t{i}" for i, p in enumerate(parts))


def previous_counts(quality: pa.Table, columns: pa.Table, references: pa.Table) -> dict[str, int]:
    """The counts behind a run's ``quality``, ``quality_columns`` and ``quality_references`` tables, named
    as :func:`counts_sql` names them."""
    counts: dict[str, int] = {}
    for r in quality.to_pylist():
        counts[f"{r['feed']}__n"] = int(r["current_records"] or 0)
    for r in columns.to_pylist():
        counts[f"{r['feed']}__c_{r['field']}"] = int(r["filled"] or 0)
    for r in references.to_pylist():
        counts[f"{r['feed']}__r_{r['field']}"] = int(r["values"] or 0)
        counts[f"{r['feed']}__f_{r['field']}"] = int(r["found"] or 0)
    return counts


def counted_fields(spec: FeedSpec) -> list[str]:
    """The fields whose completeness is measured (raw IIN text is filled only where an IIN was set
    aside: not a column to complete)."""
    return [f for f in history.stored_fields(spec) if not f.endswith("_raw")]


def updated_counts(
    engine: Engine, catalogue: Catalogue, previous: dict[str, int], changed: dict[str, FeedChange]
) -> dict[str, int] | None:
    """The counts of :func:`counts_sql` after a run, from the previous run's and what the run changed
    (one query; its cost follows the size of the changes, not of the histories). None when the
    previous counts do not cover every feed (then count afresh).

    Completeness: the current records are the previous ones, less those the run closed, plus its new
    current versions. References count distinct values, so a value leaves only when no current record
    holds it any more (*gone*), and enters only when none held it before (*came*); a value counts as
    found when the referenced feed holds it in any version, and a feed's versions only ever grow, so
    the found values change by the gone and came values found, plus the values kept whose referenced
    record arrived in this run."""
    need = [k for spec in catalogue for k in _count_names(spec)]
    if any(k not in previous for k in need):
        return None
    parts, ctes = [], []
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}  # referenced field: (reference, its CTEs)
    for spec in catalogue:
        change = changed.get(spec.name)
        if change is not None:
            parts.append(_completeness_delta(spec, change))
        for col in spec.columns:
            ref = col.references
            if ref is None or (change is None and ref.feed not in changed):
                continue
            name = f"{spec.name}__{col.field}"
            unknown = previous[f"{spec.name}__r_{col.field}"] > previous[f"{spec.name}__f_{col.field}"]
            more, select = _reference_delta(spec, col.field, ref.feed, ref.field, changed, name, unknown)
            ctes += [c for c in more if c not in ctes]
            parts.append(select)
            if change is not None:
                targets.setdefault((ref.feed, ref.field), []).append((f"{spec.name}__f_{col.field}", name))
    parts += [_found_delta(target, field, refs, changed) for (target, field), refs in sorted(targets.items())]
    counts = dict(previous)
    if not parts:
        return counts
    sql = " CROSS JOIN ".join(f"({p}) AS d{i}" for i, p in enumerate(parts))
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + f"SELECT * FROM {sql}"
    for column, delta in engine.fetch(sql).to_pylist()[0].items():
        key = column.split("@")[0]  # (a count's delta may come in several columns: found@came, ...)
        counts[key] = counts[key] + int(delta or 0)
    return counts


def _found_delta(target: str, field: str, refs: list[tuple[str, str]], changed: dict[str, FeedChange]) -> str:
    """One row: for each reference to ``target``'s ``field`` (its found count's name, and the prefix of its
    ``_gone`` and ``_came`` values: :func:`_reference_delta`), the values that came and are found there,
    less those gone that were found before the run. The referenced feed is read twice for all of them."""
    q = history.q
    tf = q(field)
    tchange = changed.get(target)
    t_old = f"src_{target}" + (f" WHERE _seq < {int(tchange.since)}" if tchange else "")
    gone = " UNION ALL ".join(f"SELECT {i} AS r, v FROM {name}_gone" for i, (_, name) in enumerate(refs))
    came = " UNION ALL ".join(f"SELECT {i} AS r, v FROM {name}_came" for i, (_, name) in enumerate(refs))
    came_counts = ", ".join(
        f"COUNT(*) FILTER (WHERE g.r = {i}) AS {q(count + '@came')}" for i, (count, _) in enumerate(refs)
    )
    gone_counts = ", ".join(
        f"-COUNT(*) FILTER (WHERE g.r = {i}) AS {q(count + '@gone')}" for i, (count, _) in enumerate(refs)
    )
    return f"""
        SELECT * FROM
        (SELECT {came_counts} FROM ({came}) AS g SEMI JOIN (SELECT {tf} AS v FROM src_{target}) AS t
            ON g.v = t.v) AS c
        CROSS JOIN
        (SELECT {gone_counts} FROM ({gone}) AS g SEMI JOIN (SELECT {tf} AS v FROM {t_old}) AS t
            ON g.v = t.v) AS o
    """


def _count_names(spec: FeedSpec) -> list[str]:
    names = [f"{spec.name}__n", *(f"{spec.name}__c_{f}" for f in counted_fields(spec))]
    for col in spec.columns:
        if col.references is not None:
            names += [f"{spec.name}__r_{col.field}", f"{spec.name}__f_{col.field}"]
    return names


def _completeness_delta(spec: FeedSpec, change: FeedChange) -> str:
    """One row: current records and filled values gained, less those lost, by one feed in a run."""
    q = history.q
    closed = f"_seq < {int(change.since)} AND NOT _deleted"
    opened = "_valid_to_seq IS NULL AND NOT _deleted"
    cols = [f"COUNT(*) FILTER (WHERE {opened}) - COUNT(*) FILTER (WHERE {closed}) AS {q(spec.name + '__n')}"]
    cols += [
        f"COUNT({q(f)}) FILTER (WHERE {opened}) - COUNT({q(f)}) FILTER (WHERE {closed}) "
        f"AS {q(f'{spec.name}__c_{f}')}"
        for f in counted_fields(spec)
    ]
    return f"SELECT {', '.join(cols)} FROM {change.changes}"


def _reference_delta(
    spec: FeedSpec,
    field: str,
    target: str,
    target_field: str,
    changed: dict[str, FeedChange],
    name: str,
    unknown: bool,
) -> tuple[list[str], str]:
    """``WITH`` clauses and one row: the change of one reference's distinct values and found values.
    ``unknown``: some values were not found before the run (else none can have arrived since)."""
    q = history.q
    f, tf = q(field), q(target_field)
    own, tchange = changed.get(spec.name), changed.get(target)
    # The current values are scanned, not kept: a CTE used twice may be materialised whole.
    cur = f"(SELECT {f} AS v FROM src_{spec.name} WHERE {CURRENT} AND {f} IS NOT NULL)"
    ctes: list[str] = []
    if own is not None:
        c = own.changes
        ctes += [
            f"{name}_rm AS (SELECT DISTINCT {f} AS v FROM {c} "
            f"WHERE _seq < {int(own.since)} AND NOT _deleted AND {f} IS NOT NULL)",
            f"{name}_ad AS (SELECT {f} AS v, COUNT(*) AS k FROM {c} "
            f"WHERE _valid_to_seq IS NULL AND NOT _deleted AND {f} IS NOT NULL GROUP BY {f})",
            f"{name}_hit AS (SELECT c.v, COUNT(*) AS k FROM {cur} AS c SEMI JOIN "
            f"(SELECT v FROM {name}_rm UNION ALL SELECT v FROM {name}_ad) AS x ON c.v = x.v GROUP BY c.v)",
            f"{name}_gone AS (SELECT r.v FROM {name}_rm AS r ANTI JOIN {name}_hit AS h ON r.v = h.v)",
            f"{name}_came AS (SELECT a.v FROM (SELECT a.v, a.k FROM {name}_ad AS a ANTI JOIN {name}_rm AS r "
            f"ON a.v = r.v) AS a JOIN {name}_hit AS h ON a.v = h.v WHERE h.k = a.k)",
        ]
    else:
        empty = f"SELECT {f} AS v FROM src_{spec.name} WHERE FALSE"
        ctes += [f"{name}_gone AS ({empty})", f"{name}_came AS ({empty})"]
    arrived = "0"
    if tchange is not None and unknown:
        newv = f"arrived_{target}__{target_field}"  # shared by every reference to the same field
        ctes += [
            f"{newv}_tnew AS (SELECT DISTINCT {tf} AS v FROM src_{target} "
            f"WHERE _seq >= {int(tchange.since)} AND {tf} IS NOT NULL)",
            f"{newv}_told AS (SELECT DISTINCT o.{tf} AS v FROM src_{target} AS o SEMI JOIN {newv}_tnew AS n "
            f"ON o.{tf} = n.v WHERE o._seq < {int(tchange.since)})",
            f"{newv} AS (SELECT n.v FROM {newv}_tnew AS n ANTI JOIN {newv}_told AS o ON n.v = o.v)",
        ]
        arrived = (
            f"(SELECT COUNT(*) FROM (SELECT DISTINCT c.v FROM {cur} AS c SEMI JOIN {newv} AS n "
            f"ON c.v = n.v) AS x ANTI JOIN {name}_came AS m ON x.v = m.v)"
        )
    if own is None:  # no value left or came: only arrivals can change what is found
        return (
            ctes,
            f"SELECT 0 AS {q(f'{spec.name}__r_{field}')}, {arrived} AS {q(f'{spec.name}__f_{field}')}",
        )
    # (the values gone and came that the referenced feed holds are counted for every reference to it
    # at once: :func:`_found_delta`)
    values = f"(SELECT COUNT(*) FROM {name}_came) - (SELECT COUNT(*) FROM {name}_gone)"
    select = f"SELECT {values} AS {q(f'{spec.name}__r_{field}')}, {arrived} AS {q(f'{spec.name}__f_{field}')}"
    return ctes, select


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
