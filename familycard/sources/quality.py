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
from typing import Any

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
UNFOUND_SCHEMA = pa.schema([("feed", pa.string()), ("field", pa.string()), ("value", pa.string())])
"""The distinct values of each reference that the referenced feed does not hold (as text): what a run
needs to update the found counts from what it changed alone. Bookkeeping, never shown (the values are
identifiers such as IINs)."""

CURRENT = "_valid_to_seq IS NULL AND NOT _deleted"


@dataclass
class Quality:
    feeds: pa.Table  # QUALITY_SCHEMA
    columns: pa.Table  # COLUMN_SCHEMA
    references: pa.Table | None = None  # REFERENCE_SCHEMA (the counts behind consistency)
    unfound: pa.Table | None = None  # UNFOUND_SCHEMA


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
    counts: tuple[dict[str, int], dict[str, list[str]]] | None = None,
) -> Quality:
    """Quality of every feed. The engine must have views ``src_<feed>`` for every feed, ``findings`` and
    ``releases``; ``deliveries`` is the delivery ledger. ``counts`` (as :func:`counts_sql` names them,
    with each reference's values not found, e.g. from :func:`updated_counts`) spares counting every
    feed's current records again."""
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
        counts = split_counts(engine.fetch(counts_sql(catalogue)).to_pylist()[0])
    numbers, unfound = counts
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
        n = int(numbers[f"{spec.name}__n"] or 0)
        shares = []
        for f in counted_fields(spec):
            filled = int(numbers[f"{spec.name}__c_{f}"] or 0)
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
            seen = int(numbers[f"{spec.name}__r_{col.field}"] or 0)
            found = seen - len(unfound[f"{spec.name}__{col.field}"])
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
    unfound_rows = [
        dict(feed=name.split("__")[0], field=name.split("__", 1)[1], value=v)
        for name, values in sorted(unfound.items())
        for v in sorted(values)
    ]
    return Quality(
        pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA),
        pa.Table.from_pylist(col_rows, schema=COLUMN_SCHEMA),
        pa.Table.from_pylist(ref_rows, schema=REFERENCE_SCHEMA),
        pa.Table.from_pylist(unfound_rows, schema=UNFOUND_SCHEMA),
    )


def split_counts(row: dict[str, Any]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The one row of :func:`counts_sql` (or :func:`updated_counts`' deltas) as counts and, per reference
    (``<feed>__<field>``), the values not found (its ``<feed>__u_<field>`` lists)."""
    numbers: dict[str, int] = {}
    unfound: dict[str, list[str]] = {}
    for name, value in row.items():
        if "__u_" in name:
            feed, field = name.split("__u_", 1)
            unfound[f"{feed}__{field}"] = sorted(str(v) for v in (value or []))
        else:
            numbers[name] = int(value or 0)
    return numbers, unfound


def counts_sql(catalogue: Catalogue) -> str:
    """One row with every count quality needs, over views ``src_<feed>`` (a single query: on Spark, one job
    instead of one per feed), and each reference's values not found in the referenced feed, as a list
    (:func:`split_counts`). A referenced field's values are read once for every field that refers to
    it."""
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
                f"LIST(CAST(s.v AS VARCHAR)) FILTER (WHERE s.src = {i} AND t.v IS NULL) "
                f"AS {q(f'{spec.name}__u_{f}')}",
            ]
        parts.append(
            f"""(SELECT {", ".join(counts)}
                FROM ({values}) AS s
                LEFT JOIN (SELECT DISTINCT {q(field)} AS v FROM src_{feed}) AS t ON s.v = t.v)"""
        )
    return "SELECT * FROM " + " CROSS JOIN ".join(f"{p} AS t{i}" for i, p in enumerate(parts))


def previous_counts(
    quality: pa.Table, columns: pa.Table, references: pa.Table, unfound: pa.Table
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The counts behind a run's ``quality``, ``quality_columns`` and ``quality_references`` tables, named
    as :func:`counts_sql` names them, and each reference's values not found (``quality_unfound``)."""
    counts: dict[str, int] = {}
    for r in quality.to_pylist():
        counts[f"{r['feed']}__n"] = int(r["current_records"] or 0)
    for r in columns.to_pylist():
        counts[f"{r['feed']}__c_{r['field']}"] = int(r["filled"] or 0)
    missing: dict[str, list[str]] = {}
    for r in references.to_pylist():
        counts[f"{r['feed']}__r_{r['field']}"] = int(r["values"] or 0)
        missing[f"{r['feed']}__{r['field']}"] = []
    for r in unfound.to_pylist():
        missing.setdefault(f"{r['feed']}__{r['field']}", []).append(str(r["value"]))
    return counts, missing


def counted_fields(spec: FeedSpec) -> list[str]:
    """The fields whose completeness is measured (raw IIN text is filled only where an IIN was set
    aside: not a column to complete)."""
    return [f for f in history.stored_fields(spec) if not f.endswith("_raw")]


def updated_counts(
    engine: Engine,
    catalogue: Catalogue,
    previous: tuple[dict[str, int], dict[str, list[str]]],
    changed: dict[str, FeedChange],
) -> tuple[dict[str, int], dict[str, list[str]]] | None:
    """The counts of :func:`counts_sql` after a run, and each reference's values not found, from the
    previous run's and what the run changed (one query; its cost follows the size of the changes and of
    the values not found, not of the histories). None when the previous counts do not cover every feed
    (then count afresh).

    Completeness: the current records are the previous ones, less those the run closed, plus its new
    current versions. References count distinct values, so a value leaves only when no current record
    holds it any more (*gone*), and enters only when none held it before (*came*). A value counts as
    found when the referenced feed holds it in any version, and a feed's versions only ever grow: the
    values not found after the run are among those not found before and not gone, and those that came;
    only these few are looked up in the referenced feed."""
    numbers, unfound = previous
    need = [k for spec in catalogue for k in _count_names(spec)]
    refs = [f"{spec.name}__{c.field}" for spec in catalogue for c in spec.columns if c.references is not None]
    if any(k not in numbers for k in need) or any(r not in unfound for r in refs):
        return None
    parts, ctes = [], []
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}  # referenced field: (reference, count name)
    for spec in catalogue:
        change = changed.get(spec.name)
        if change is not None:
            parts.append(_completeness_delta(spec, change))
        for col in spec.columns:
            ref = col.references
            if ref is None or (change is None and ref.feed not in changed):
                continue
            name = f"{spec.name}__{col.field}"
            more, select = _reference_delta(spec, col.field, change, name)
            ctes += more
            if select:
                parts.append(select)
            targets.setdefault((ref.feed, ref.field), []).append((name, f"{spec.name}__u_{col.field}"))
    numbers, unfound = dict(numbers), dict(unfound)
    if not parts and not targets:
        return numbers, unfound
    before = [(r, v) for r in refs for v in unfound[r]]
    engine.register_arrow(
        "unfound_before",
        pa.table(
            {
                "ref": pa.array([r for r, _ in before], pa.string()),
                "v": pa.array([v for _, v in before], pa.string()),
            }
        ),
    )
    parts += [_unfound_sql(target, field, names) for (target, field), names in sorted(targets.items())]
    sql = " CROSS JOIN ".join(f"({p}) AS d{i}" for i, p in enumerate(parts))
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + f"SELECT * FROM {sql}"
    deltas, after = split_counts(engine.fetch(sql).to_pylist()[0])
    engine.drop("unfound_before")
    for name, delta in deltas.items():
        numbers[name] += delta
    return numbers, unfound | after


def _unfound_sql(target: str, field: str, refs: list[tuple[str, str]]) -> str:
    """One row: for each reference to ``target``'s ``field`` (its CTE prefix, its list's name), the
    values that may be missing there (:func:`_reference_delta`'s ``_cand``) that the referenced feed
    does not hold, as a list. The referenced feed is read once for all of them."""
    q = history.q
    cand = " UNION ALL ".join(f"SELECT {i} AS r, v FROM {name}_cand" for i, (name, _) in enumerate(refs))
    lists = ", ".join(f"LIST(c.v) FILTER (WHERE c.r = {i}) AS {q(col)}" for i, (_, col) in enumerate(refs))
    return f"""
        SELECT {lists} FROM ({cand}) AS c
        ANTI JOIN (SELECT CAST({q(field)} AS VARCHAR) AS v FROM src_{target}) AS t ON c.v = t.v
    """


def _count_names(spec: FeedSpec) -> list[str]:
    names = [f"{spec.name}__n", *(f"{spec.name}__c_{f}" for f in counted_fields(spec))]
    names += [f"{spec.name}__r_{col.field}" for col in spec.columns if col.references is not None]
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
    spec: FeedSpec, field: str, own: FeedChange | None, name: str
) -> tuple[list[str], str | None]:
    """``WITH`` clauses and one row (None when the feed did not change) for one reference: the change of
    its distinct values, and (``<name>_cand``) the values that may be missing from the referenced feed
    after the run: those missing before that are still held, and those that came."""
    q = history.q
    f = q(field)
    before = f"(SELECT v FROM unfound_before WHERE ref = '{name}') AS u"
    if own is None:  # the feed did not change: only its values missing before can have arrived
        return [f"{name}_cand AS (SELECT u.v FROM {before})"], None
    # The current values are scanned, not kept: a CTE used twice may be materialised whole.
    cur = f"(SELECT {f} AS v FROM src_{spec.name} WHERE {CURRENT} AND {f} IS NOT NULL)"
    c = own.changes
    ctes = [
        f"{name}_rm AS (SELECT DISTINCT {f} AS v FROM {c} "
        f"WHERE _seq < {int(own.since)} AND NOT _deleted AND {f} IS NOT NULL)",
        f"{name}_ad AS (SELECT {f} AS v, COUNT(*) AS k FROM {c} "
        f"WHERE _valid_to_seq IS NULL AND NOT _deleted AND {f} IS NOT NULL GROUP BY {f})",
        f"{name}_hit AS (SELECT c.v, COUNT(*) AS k FROM {cur} AS c SEMI JOIN "
        f"(SELECT v FROM {name}_rm UNION ALL SELECT v FROM {name}_ad) AS x ON c.v = x.v GROUP BY c.v)",
        f"{name}_gone AS (SELECT r.v FROM {name}_rm AS r ANTI JOIN {name}_hit AS h ON r.v = h.v)",
        f"{name}_came AS (SELECT a.v FROM (SELECT a.v, a.k FROM {name}_ad AS a ANTI JOIN {name}_rm AS r "
        f"ON a.v = r.v) AS a JOIN {name}_hit AS h ON a.v = h.v WHERE h.k = a.k)",
        f"{name}_cand AS (SELECT u.v FROM {before} ANTI JOIN "
        f"(SELECT CAST(v AS VARCHAR) AS v FROM {name}_gone) AS g ON u.v = g.v "
        f"UNION ALL SELECT CAST(v AS VARCHAR) AS v FROM {name}_came)",
    ]
    values = f"(SELECT COUNT(*) FROM {name}_came) - (SELECT COUNT(*) FROM {name}_gone)"
    return ctes, f"SELECT {values} AS {q(f'{spec.name}__r_{field}')}"


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
