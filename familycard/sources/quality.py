"""Freshness and quality of every feed, from the delivery ledger, the findings and the histories.

Per feed:

- **completeness**: the share of filled values over the current records' columns (each column's own
  share is in ``quality_columns``);
- **validity**: the share of rows read that loaded with no issue set aside (rejected and flagged rows
  count against it), and the rows still waiting in quarantine;
- **uniqueness**: the share of rows read that were not exact duplicates within their delivery;
- **timeliness**: deliveries expected by the cadence up to the as-of date, how many are missing, how many
  arrived late and by how many days, and the last period received;
- **consistency** across feeds: the share of the current records whose reference (e.g. an IIN) the
  referenced feed holds (health records of people unknown to the civil registry count against it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
        ("records", pa.int64()),  # current records with the reference filled
        ("found", pa.int64()),  # of those, records whose value the referenced feed holds (any version)
    ]
)
UNFOUND_SCHEMA = pa.schema(
    [("feed", pa.string()), ("field", pa.string()), ("value", pa.string()), ("records", pa.int64())]
)
"""Each reference's values that the referenced feed does not hold (as text), with how many current
records hold each: what a run needs to update the counts from what it changed alone. Bookkeeping, never
shown (the values are identifiers such as IINs)."""

PROBED_SCHEMA = pa.schema(
    [
        ("target", pa.string()),
        ("feed", pa.string()),
        ("field", pa.string()),
        ("_delivery", pa.string()),
        ("_seq", pa.int64()),
        ("_line", pa.int64()),
        ("_key", pa.string()),
        ("value", pa.string()),
    ]
)
"""The view of a run's referring rows not found (``target`` is ``<feed>.<field>``; ``value`` as text),
which the references check writes and the quality counts read."""

Counts = tuple[dict[str, int], dict[str, dict[str, int]]]
"""Quality's counts over the current records (named as :func:`counts_sql` names them) and, per reference
(``<feed>__<field>``), its values not found with their records."""

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
    counts: Counts | None = None,
) -> Quality:
    """Quality of every feed. The engine must have views ``src_<feed>`` for every feed, ``findings`` and
    ``releases``; ``deliveries`` is the delivery ledger. ``counts`` (e.g. from :func:`updated_counts`)
    spares counting every feed's current records again."""
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
        counts = fresh_counts(engine, catalogue)
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
            records = int(numbers[f"{spec.name}__r_{col.field}"] or 0)
            not_found = sum(unfound.get(f"{spec.name}__{col.field}", {}).values())
            refs += records
            unknown += not_found
            ref_rows.append(
                dict(
                    feed=spec.name,
                    field=col.field,
                    target_feed=col.references.feed,
                    target_field=col.references.field,
                    records=records,
                    found=records - not_found,
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
        dict(feed=name.split("__")[0], field=name.split("__", 1)[1], value=v, records=k)
        for name, values in sorted(unfound.items())
        for v, k in sorted(values.items())
    ]
    return Quality(
        pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA),
        pa.Table.from_pylist(col_rows, schema=COLUMN_SCHEMA),
        pa.Table.from_pylist(ref_rows, schema=REFERENCE_SCHEMA),
        pa.Table.from_pylist(unfound_rows, schema=UNFOUND_SCHEMA),
    )


def fresh_counts(
    engine: Engine,
    catalogue: Catalogue,
    probed: str | None = None,
    known: dict[str, dict[str, int]] | None = None,
    unfound: str | None = None,
) -> Counts:
    """Quality's counts over every feed's current records, counted afresh (two queries: the counts, and
    the values not found). ``probed`` (:data:`PROBED_SCHEMA`), when every current record came with
    this run's deliveries: the run's referring rows that the referenced feed does not hold, which then
    decide what is not found without reading the referenced feeds again. ``known``: feeds whose counts
    the run already has (:func:`parquet_counts`, :func:`ordered_counts_sql`), not counted again;
    ``unfound``: the values not found, when the run can tell them without a query over the feeds
    (:func:`kept_unfound_sql`)."""
    known = known or {}
    numbers: dict[str, int] = {k: v for counts in known.values() for k, v in counts.items()}
    rest = [spec for spec in catalogue if spec.name not in known]
    if rest:
        got = engine.fetch(counts_sql(rest)).to_pylist()[0]
        numbers |= {k: int(v or 0) for k, v in got.items()}
    return numbers, unfound_by_reference(engine.fetch(unfound or unfound_sql(catalogue, probed)))


def unfound_by_reference(rows: pa.Table) -> dict[str, dict[str, int]]:
    """Rows of ``ref``, ``v``, ``records`` (:func:`unfound_sql`) as {reference: {value: records}}."""
    out: dict[str, dict[str, int]] = {}
    cols = (rows[c].to_pylist() for c in ("ref", "v", "records"))
    for ref, v, k in zip(*cols, strict=True):
        out.setdefault(str(ref), {})[str(v)] = int(k)
    return out


def counted(spec: FeedSpec) -> list[tuple[str, str | None]]:
    """The counts quality keeps of one feed's current records, as (name, field counted; None: the
    records): the records (``<feed>__n``), the filled values of each stored field (``<feed>__c_<field>``)
    and the filled references (``<feed>__r_<field>``)."""
    out: list[tuple[str, str | None]] = [(f"{spec.name}__n", None)]
    out += [(f"{spec.name}__c_{f}", f) for f in history.stored_fields(spec)]
    return out + [(f"{spec.name}__r_{f}", f) for f in _reference_fields(spec)]


def _count_exprs(spec: FeedSpec) -> list[str]:
    q = history.q
    return [f"COUNT({'*' if f is None else q(f)}) AS {q(name)}" for name, f in counted(spec)]


def counts_sql(specs: Iterable[FeedSpec]) -> str:
    """One row with every count quality needs (:func:`counted`) over views ``src_<feed>`` (a single
    query: on Spark, one job instead of one per feed)."""
    parts = [
        f"(SELECT {', '.join(_count_exprs(spec))} FROM src_{spec.name} WHERE {CURRENT})" for spec in specs
    ]
    return "SELECT * FROM " + " CROSS JOIN ".join(f"{p} AS t{i}" for i, p in enumerate(parts))


def parquet_counts(spec: FeedSpec, files: Iterable[Path]) -> dict[str, int] | None:
    """The counts of :func:`counted` over every row of some Parquet files (a feed's staged delivery),
    read from their footers: no row is read. None when a file lacks a column's null counts."""
    names = counted(spec)
    numbers = dict.fromkeys((name for name, _ in names), 0)
    for path in files:
        meta = pq.ParquetFile(path).metadata
        index = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if group.num_rows == 0:  # (a writer may give an empty group no statistics)
                continue
            for name, f in names:
                if f is None:
                    numbers[name] += group.num_rows
                    continue
                stats = group.column(index[f]).statistics
                if stats is None or not stats.has_null_count:
                    return None
                numbers[name] += group.num_rows - stats.null_count
    return numbers


def ordered_counts_sql(spec: FeedSpec, rows: str, versions: str) -> str:
    """One row: the counts of :func:`counted` over the current records among ``versions`` less those over
    ``rows``. A first delivery whose staged rows are kept as they are orders only the rows of the keys
    that recur in it (``rows``) into versions (``versions``): its counts are those of every staged row
    (:func:`parquet_counts`) plus these."""
    q = history.q
    names = [name for name, _ in counted(spec)]
    exprs = ", ".join(_count_exprs(spec))
    diff = ", ".join(f"v.{q(n)} - r.{q(n)} AS {q(n)}" for n in names)
    return (
        f"SELECT {diff} FROM (SELECT {exprs} FROM {versions} WHERE {CURRENT}) AS v "
        f"CROSS JOIN (SELECT {exprs} FROM {rows}) AS r"
    )


_NO_UNFOUND = "SELECT CAST(NULL AS VARCHAR) AS ref, CAST(NULL AS VARCHAR) AS v, 0 AS records WHERE FALSE"
"""No values not found (:func:`unfound_sql`, :func:`kept_unfound_sql` when there is no reference)."""


def unfound_sql(catalogue: Catalogue, probed: str | None = None) -> str:
    """Rows ``ref`` (``<feed>__<field>``), ``v``, ``records``: each reference's values that the
    referenced feed does not hold, with the current records holding them. The current records of every
    field that refers to one referenced field are looked up together, in one anti-join: the referenced
    feed is read once, and no referring feed's values need to be made distinct first."""
    q = history.q
    parts = []
    for (feed, field), sources in sorted(references_by_target(catalogue).items()):
        rows = " UNION ALL ".join(
            f"SELECT '{spec.name}__{f}' AS ref, {q(f)} AS v FROM src_{spec.name} "
            f"WHERE {CURRENT} AND {q(f)} IS NOT NULL"
            for spec, f in sources
        )
        if probed is None:
            missing = f"ANTI JOIN src_{feed} AS t ON x.v = t.{q(field)}"
        else:
            missing = (
                f"SEMI JOIN (SELECT DISTINCT value FROM {probed} WHERE target = '{feed}.{field}') AS p "
                "ON CAST(x.v AS VARCHAR) = p.value"
            )
        parts.append(
            f"SELECT x.ref, CAST(x.v AS VARCHAR) AS v, COUNT(*) AS records FROM ({rows}) AS x "
            f"{missing} GROUP BY x.ref, x.v"
        )
    if not parts:
        return _NO_UNFOUND
    return " UNION ALL ".join(parts)


def kept_unfound_sql(probed: str, feeds: dict[str, tuple[str, str] | None]) -> str:
    """Rows ``ref``, ``v``, ``records`` as :func:`unfound_sql` gives them, from the references check's
    unresolved rows (``probed``: :data:`PROBED_SCHEMA`) alone, when every current record came with the
    run and every referring feed's first history was kept as staged (``feeds``: per referring feed, the
    views of the keys whose versions were ordered and of those versions, or None when no key was). A
    staged row is then a current record unless its key was ordered and the row is not a current
    version; no feed is read."""
    parts = []
    for feed, ordered in sorted(feeds.items()):
        base = f"SELECT p.feed, p.field, p.value FROM {probed} AS p"
        where = f"WHERE p.feed = '{feed}'"
        if ordered is None:
            parts.append(f"{base} {where}")
            continue
        keys, versions = ordered
        current = f"SELECT _key, _seq, _line FROM {versions} WHERE {CURRENT}"
        parts += [
            f"{base} ANTI JOIN {keys} AS k ON p._key = k._key {where}",
            f"{base} SEMI JOIN ({current}) AS v "
            f"ON p._key = v._key AND p._seq = v._seq AND p._line = v._line {where}",
        ]
    if not parts:
        return _NO_UNFOUND
    return (
        f"SELECT feed || '__' || field AS ref, value AS v, COUNT(*) AS records "
        f"FROM ({' UNION ALL '.join(parts)}) AS x GROUP BY feed, field, value"
    )


def previous_counts(quality: pa.Table, columns: pa.Table, references: pa.Table, unfound: pa.Table) -> Counts:
    """The counts behind a run's ``quality``, ``quality_columns``, ``quality_references`` and
    ``quality_unfound`` tables."""
    counts: dict[str, int] = {}
    for r in quality.to_pylist():
        counts[f"{r['feed']}__n"] = int(r["current_records"] or 0)
    for r in columns.to_pylist():
        counts[f"{r['feed']}__c_{r['field']}"] = int(r["filled"] or 0)
    missing: dict[str, dict[str, int]] = {}
    if "records" not in references.schema.names or "records" not in unfound.schema.names:
        return counts, missing  # written before records were counted: count afresh
    for r in references.to_pylist():
        counts[f"{r['feed']}__r_{r['field']}"] = int(r["records"] or 0)
        missing[f"{r['feed']}__{r['field']}"] = {}
    for r in unfound.to_pylist():
        missing.setdefault(f"{r['feed']}__{r['field']}", {})[str(r["value"])] = int(r["records"])
    return counts, missing


def counted_fields(spec: FeedSpec) -> list[str]:
    """The fields whose completeness is measured (raw IIN text is filled only where an IIN was set
    aside: not a column to complete)."""
    return [f for f in history.stored_fields(spec) if not f.endswith("_raw")]


def updated_counts(
    engine: Engine,
    catalogue: Catalogue,
    previous: Counts,
    changed: dict[str, FeedChange],
    probed: str,
) -> Counts | None:
    """The counts of :func:`fresh_counts` after a run, from the previous run's and what the run changed
    (two queries whose cost follows the size of the changes and of the values not found, not of the
    histories). None when the previous counts do not cover every feed (then count afresh).

    ``probed`` (:data:`PROBED_SCHEMA`): the run's referring rows, of every feed it changed, that the
    referenced feed does not hold, as the references check found them after the merge. The values of
    the run's new versions are then judged by it, and only the values not found before are looked up
    in a referenced feed that changed.

    Completeness and references: the current records are the previous ones, less those the run closed,
    plus its new current versions. A value counts as found when the referenced feed holds it in any
    version, and a feed's versions only ever grow: the values not found after the run are among those
    not found before (their records less those the run closed) and those of the run's new current
    versions; ``probed`` and the versions the run added to the referenced feed decide which of these
    are found, so no feed is read whole."""
    numbers, unfound = previous
    need = [k for spec in catalogue for k in _count_names(spec)]
    refs = [f"{spec.name}__{f}" for spec in catalogue for f in _reference_fields(spec)]
    if any(k not in numbers for k in need) or any(r not in unfound for r in refs):
        return None
    numbers, unfound = dict(numbers), dict(unfound)
    parts = [_completeness_delta(spec, changed[spec.name]) for spec in catalogue if spec.name in changed]
    if parts:
        sql = "SELECT * FROM " + " CROSS JOIN ".join(f"({p}) AS d{i}" for i, p in enumerate(parts))
        for name, delta in engine.fetch(sql).to_pylist()[0].items():
            numbers[name] += int(delta or 0)
    lookups = []
    for (feed, field), sources in sorted(references_by_target(catalogue).items()):
        cands = [
            _candidates(f"{spec.name}__{f}", f, changed.get(spec.name))
            for spec, f in sources
            if spec.name in changed or feed in changed
        ]
        if cands:
            names = [f"{spec.name}__{f}" for spec, f in sources]
            lookups.append(_lookup_sql(feed, field, cands, names, probed, changed.get(feed)))
            for spec, f in sources:
                if spec.name in changed or feed in changed:
                    unfound[f"{spec.name}__{f}"] = {}
    if not lookups:
        return numbers, unfound
    before = [(r, v, k) for r in refs for v, k in previous[1][r].items()]
    engine.register_arrow(
        "unfound_before",
        pa.table(
            {
                "ref": pa.array([r for r, _, _ in before], pa.string()),
                "v": pa.array([v for _, v, _ in before], pa.string()),
                "records": pa.array([k for _, _, k in before], pa.int64()),
            }
        ),
    )
    after = unfound_by_reference(engine.fetch(" UNION ALL ".join(lookups)))
    engine.drop("unfound_before")
    for name, values in after.items():
        unfound[name] = values
    return numbers, unfound


def _lookup_sql(
    feed: str, field: str, cands: list[str], refs: list[str], probed: str, target: FeedChange | None
) -> str:
    """Rows ``ref``, ``v``, ``records``: the candidates (:func:`_candidates`) of the references to
    ``feed``'s ``field`` that the feed does not hold: a value the run's own rows brought is not found
    exactly when ``probed`` lists it, and a value not found before is found only if one of the versions
    the run added to the referenced feed (``target``: what the run changed there, if anything) holds
    it. The referenced feed itself is not read."""
    q = history.q
    c = (
        f"(SELECT ref, v, SUM(k) AS records FROM ({' UNION ALL '.join(cands)}) AS u "
        "GROUP BY ref, v HAVING SUM(k) > 0) AS c"
    )
    in_refs = ", ".join(f"'{r}'" for r in refs)
    sql = (
        f"SELECT c.ref, c.v, c.records FROM {c} "
        f"LEFT JOIN (SELECT DISTINCT value AS v FROM {probed} WHERE target = '{feed}.{field}') AS p "
        "ON c.v = p.v "
        f"LEFT JOIN (SELECT DISTINCT v FROM unfound_before WHERE ref IN ({in_refs})) AS b ON c.v = b.v "
    )
    if target is None:  # the referenced feed did not change: what it lacked, it still lacks
        return sql + "WHERE p.v IS NOT NULL OR b.v IS NOT NULL"
    added = (
        f"SELECT DISTINCT CAST({q(field)} AS VARCHAR) AS v FROM {target.changes} "
        f"WHERE _seq >= {int(target.since)} AND {q(field)} IS NOT NULL"
    )
    return (
        sql
        + f"LEFT JOIN ({added}) AS h ON c.v = h.v WHERE p.v IS NOT NULL OR (b.v IS NOT NULL AND h.v IS NULL)"
    )


def _candidates(name: str, field: str, own: FeedChange | None) -> str:
    """Rows ``ref``, ``v``, ``k`` for one reference: its values not found before with their records,
    less the records of those values the run closed, plus the run's new current versions by value
    (whether found or not: the lookup decides)."""
    q = history.q
    f = q(field)
    before = f"SELECT ref, v, records AS k FROM unfound_before WHERE ref = '{name}'"
    if own is None:  # the feed did not change: only its values missing before can have arrived
        return before
    c = own.changes
    closed = (
        f"SELECT '{name}' AS ref, CAST({f} AS VARCHAR) AS v, -COUNT(*) AS k FROM {c} "
        f"WHERE _seq < {int(own.since)} AND NOT _deleted AND {f} IS NOT NULL "
        f"AND CAST({f} AS VARCHAR) IN (SELECT v FROM unfound_before WHERE ref = '{name}') GROUP BY {f}"
    )
    opened = (
        f"SELECT '{name}' AS ref, CAST({f} AS VARCHAR) AS v, COUNT(*) AS k FROM {c} "
        f"WHERE {CURRENT} AND {f} IS NOT NULL GROUP BY {f}"
    )
    return f"{before} UNION ALL {closed} UNION ALL {opened}"


def _reference_fields(spec: FeedSpec) -> list[str]:
    return [col.field for col in spec.columns if col.references is not None]


def _count_names(spec: FeedSpec) -> list[str]:
    names = [f"{spec.name}__n", *(f"{spec.name}__c_{f}" for f in counted_fields(spec))]
    return names + [f"{spec.name}__r_{f}" for f in _reference_fields(spec)]


def _completeness_delta(spec: FeedSpec, change: FeedChange) -> str:
    """One row: current records, filled values and filled references gained, less those lost, by one
    feed in a run."""
    q = history.q
    closed = f"_seq < {int(change.since)} AND NOT _deleted"
    opened = CURRENT
    cols = [f"COUNT(*) FILTER (WHERE {opened}) - COUNT(*) FILTER (WHERE {closed}) AS {q(spec.name + '__n')}"]
    fields = [("c", f) for f in counted_fields(spec)] + [("r", f) for f in _reference_fields(spec)]
    cols += [
        f"COUNT({q(f)}) FILTER (WHERE {opened}) - COUNT({q(f)}) FILTER (WHERE {closed}) "
        f"AS {q(f'{spec.name}__{kind}_{f}')}"
        for kind, f in fields
    ]
    return f"SELECT {', '.join(cols)} FROM {change.changes}"


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
