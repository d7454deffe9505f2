"""The assessment stage: facts, indicators, scores, levels and situations for every family.

It reads the identity contract (``persons``, ``person_links``), the families (``families``,
``family_members``) and the feeds' histories, and writes, as of the families' period:

* ``person_facts`` and ``family_facts``: the fact vocabulary (:mod:`familycard.indicators.facts`);
* ``family_indicators``: every indicator's value ``v_<id>`` and deprivation ``d_<id>`` per family;
* ``indicator_sources``: the agency records (feed, record key, delivery period) behind each deprivation;
* ``family_scores``: score, level, floor, whether the family is in the target group, uncertain members;
* ``family_situations``: the difficult life situations that apply.

Every step is SQL on the chosen engine, so DuckDB and Spark give the same tables.
``docs/methodology/scoring.md`` explains the method in plain language.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from familycard.families.asof import period_end
from familycard.geo.territory import build_territory
from familycard.indicators import compute, facts
from familycard.indicators.methodology import Methodology, load_methodology
from familycard.scoring import levels
from familycard.store.engine import Engine, partition_dir
from familycard.store.scope import stage_scope
from familycard.store.warehouse import Run, Warehouse

BASE_INPUTS = ("persons", "person_links", "families", "family_members")
FEEDS_READ = tuple(sorted({s.feed for s in facts.SELECTIONS}))
OUTPUTS = (
    "person_facts",
    "family_facts",
    "family_indicators",
    "indicator_sources",
    "family_scores",
    "family_situations",
)


@dataclass
class AssessmentReport:
    """What one assessment did."""

    run: str
    as_of: str
    methodology: str
    families: int
    indicators: int
    by_level: dict[str, int] = field(default_factory=dict)
    targeted: int = 0
    seconds: float = 0.0


def settlements_table() -> pa.Table:
    """KATO code → rural flag of every settlement (the territory classifier)."""
    t = build_territory().settlements_to_arrow()
    return t.select(["kato", "rural"])


BUCKETED = ("families", "family_members")
"""Inputs read one bucket at a time (registered whole as ``all_<name>``)."""
BUCKET_FAMILIES = 1_000_000
"""Families assessed together: the stage works through the families in buckets of consecutive family ids
of about this size, so that its joins and aggregates hold one bucket at a time (memory bounded at any
nation size) and each bucket's output is a part of every table, in family order."""


SELECTION_ROWS = 15_000_000
"""A selection whose feed links more records than this to its role is selected bucket by bucket (the
members of one family bucket at a time), so that its join holds a bucket's records, not the nation's
(run_assessment's ``selection_rows``)."""


def run_assessment(
    warehouse: Warehouse,
    engine: Engine,
    *,
    methodology: Methodology | str = "v1",
    run: Run | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    bucket_families: int = BUCKET_FAMILIES,
    selection_rows: int = SELECTION_ROWS,
) -> AssessmentReport:
    """Assess every family of the warehouse's current families with ``methodology`` and write the
    stage's tables. With ``run`` (a run in progress) the tables go into it and nothing is committed;
    without, the stage starts a run on the current snapshot, carries the other tables and commits."""
    t0 = time.perf_counter()
    meth = load_methodology(methodology) if isinstance(methodology, str) else methodology
    with stage_scope(warehouse, engine, run, "assess") as scope:
        for name in (*BASE_INPUTS, *(f"src_{f}" for f in FEEDS_READ)):
            view = f"all_{name}" if name in BUCKETED else name
            engine.register_parquet(view, scope.run.input_path(name))
            scope.views.append(view)
        engine.register_arrow("ind_settlements", settlements_table())
        engine.register_arrow("ind_source_map", compute.source_map(meth))
        scope.views += ["ind_settlements", "ind_source_map"]
        got = engine.fetch("SELECT MAX(as_of) AS p FROM all_families").column("p")[0].as_py()
        if got is None:
            raise ValueError("there are no families to assess: run the family stage first")
        period = str(got)
        buckets = family_buckets(engine, bucket_families)
        report = _assess(
            engine, scope.run, meth, period, buckets, selection_rows, scope.scratch, scope.views, progress
        )
        scope.finish(
            {"stage": "assessment", "engine": engine.name, "as_of": period, "methodology": _meta(meth)}
        )
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def family_buckets(engine: Engine, size: int) -> list[str]:
    """SQL conditions on ``family_id`` that split ``all_families`` into ranges of consecutive ids of
    about ``size`` families each (``["TRUE"]`` when one bucket holds them all)."""
    ids = engine.fetch("SELECT family_id FROM all_families WHERE family_id IS NOT NULL").column("family_id")
    k = -(-len(ids) // max(size, 1))
    if k <= 1:
        return ["TRUE"]
    order = pc.sort_indices(ids)
    picks = pa.array([order[len(ids) * i // k].as_py() for i in range(1, k)], pa.int64())
    bounds = sorted(set(ids.take(picks).to_pylist()))
    quoted = ["'" + b.replace("'", "''") + "'" for b in bounds]
    conds = [f"family_id < {quoted[0]}"]
    conds += [f"family_id >= {lo} AND family_id < {hi}" for lo, hi in itertools.pairwise(quoted)]
    conds.append(f"family_id >= {quoted[-1]}")
    return conds


def _meta(meth: Methodology) -> dict[str, str]:
    return {
        "id": meth.id,
        "version": meth.version,
        "indicators": meth.catalogue_version,
        "situations": meth.situations_version,
        "digest": meth.digest,
    }


PREFILTER_RATIO = 2
"""A big group has the history rows its selections take written once, before the buckets read them
(``<group>_rows``), where it is a group of several selections (each bucket would evaluate every
selection's condition on every history row again) or its feed's history holds more than this many rows
per link (years of monthly deliveries against a twelve-month window). Nationally the health group's seven
buckets took 69.5 s reading the history and 40.4 s with the rows written first; pension contributions,
whose history is nearly all in the window, 41.8 s and 50.7 s. Where the rows taken are not written
first anyway, they are counted (a filtered count, nothing written); where they are no more than
``selection_rows``, they are written and the group is selected whole from them, with no buckets (civil
acts: 25 M links, 216,000 rows taken; pension payments: 23.7 M links, 2.0 M rows taken, the latest
month's)."""


def select_records(
    engine: Engine,
    period: str,
    buckets: list[str],
    selection_rows: int,
    make: Callable[[str, str], int],
    make_rows: Callable[[str, str], int],
    make_parts: Callable[[str, str, str], int],
) -> list[facts.Group]:
    """Materialise ``ind_members`` and the selections' groups (:class:`facts.Group`) over the registered
    inputs: through ``make(name, sql)``, or, for the groups of feeds with more than ``selection_rows``
    links when there are several buckets, bucket by bucket through ``make_parts(name, linked, sql)``:
    ``linked``, the feed's links to the members of every bucket (:func:`facts.linked_sql`), and ``sql``,
    the group's query over one bucket's links (``ind_linked``). The history rows a big group takes are
    written first where :data:`PREFILTER_RATIO` says (``make_rows``, unordered). Returns the groups; each
    group's table is named by ``Group.table``."""
    window = facts.Window(period, period_end(period))
    make("ind_members", facts.members_sql(window, buckets))
    links: dict[tuple[str, str], int] = {}
    if len(buckets) > 1:
        got = engine.fetch("SELECT feed, role, COUNT(*) AS n FROM person_links GROUP BY feed, role")
        columns = (got.column(c).to_pylist() for c in ("feed", "role", "n"))
        links = {(f, r): n for f, r, n in zip(*columns, strict=True)}
    groups = facts.selection_groups()
    for group in groups:
        n_links = links.get((group.feed, group.role), 0)
        if n_links <= selection_rows:
            make(group.table, group.sql(window))
            continue
        rows: str | None = None
        prefilter = (
            len(group.selections) > 1 or _rows_of(engine, f"src_{group.feed}") > PREFILTER_RATIO * n_links
        )
        # (the rows taken are counted first only where they would not be written otherwise)
        few = not prefilter and _taken(engine, group, window) <= selection_rows
        if prefilter or few:
            rows = f"{group.table}_rows"
            few = make_rows(rows, group.rows_sql(window)) <= selection_rows
            if few:
                make(group.table, group.sql(window, rows=rows))
                continue
        linked = facts.linked_sql(group.feed, group.role)
        make_parts(group.table, linked, group.sql(window, linked="ind_linked", rows=rows))
    return groups


def _taken(engine: Engine, group: facts.Group, window: facts.Window) -> int:
    """The number of history rows of ``group``'s feed that its selections take as of ``window`` (counted,
    not written)."""
    return _rows_of(engine, f"({group.rows_sql(window)}) AS r")


def _rows_of(engine: Engine, table: str) -> int:
    """The number of rows of ``table``: a registered table, or a subquery with its alias."""
    return int(engine.fetch(f"SELECT COUNT(*) AS n FROM {table}").column("n")[0].as_py() or 0)


def gather(parts: list[Path], target: Path) -> None:
    """Move the part files of ``parts`` (directories, in order) into the table directory ``target``, their
    names prefixed by their position, so that the table's files in name order follow ``parts``."""
    for b, d in enumerate(parts):
        for f in sorted(d.glob("*.parquet")):
            f.rename(target / f"b{b:04d}-{f.name}")


def compute_levels(engine: Engine, meth: Methodology, make: Callable[[str, str], int]) -> None:
    """Materialise ``family_indicators`` and ``family_scores`` for ``meth`` over ``person_facts`` and
    ``family_facts``."""
    largest = engine.fetch(compute.largest_family_sql()).column("n")[0].as_py()
    make("family_indicators", compute.family_indicators_sql(meth, int(largest or 0)))
    make("family_scores", levels.scores_sql(meth))


ORDER = {
    "person_facts": ["family_id", "person_id"],
    "family_facts": ["family_id"],
    "family_indicators": ["family_id"],
    "family_scores": ["family_id"],
    "indicator_sources": ["family_id", "indicator", "feed", "record_key", "person_id"],
    "family_situations": ["family_id", "situation"],
}
"""The order each output is written in (family first, so that the buckets' parts follow each other)."""


def _assess(
    engine: Engine,
    run: Run,
    meth: Methodology,
    period: str,
    buckets: list[str],
    selection_rows: int,
    scratch: Path,
    views: list[str],
    progress: Callable[[str, int, int], None] | None,
) -> AssessmentReport:
    window = facts.Window(period, period_end(period))
    pension_age = int(meth.parameters.get("pension_age", 63))
    parts: dict[str, list[Path]] = {name: [] for name in OUTPUTS}

    def make(name: str, sql: str, here: Path = scratch / "all", order: Sequence[str] | None = None) -> int:
        views.append(name)
        target = here / name
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = engine.materialize(name, sql, target, order_by=ORDER.get(name, ()) if order is None else order)
        if name in parts:
            parts[name].append(target)
        return rows

    def make_parts(name: str, linked: str, sql: str) -> int:
        # The links of every bucket's members in one pass, split by bucket (one query per bucket read
        # the feed's links once per bucket: 95 s of a national run), then each bucket's records: the
        # join to the feed (or to its rows taken) holds a bucket's links, not the feed.
        split = scratch / "links" / name
        split.parent.mkdir(parents=True, exist_ok=True)
        engine.partition(linked, split, "bucket")
        dirs = [scratch / "parts" / f"{b:04d}" / name for b in range(len(buckets))]
        rows = 0
        views.extend(("ind_linked", "ind_linked_part"))
        for b, d in enumerate(dirs):
            part = partition_dir(split, "bucket", b)
            if part.exists():
                engine.register_parquet("ind_linked_part", part)
                bucket = f"SELECT *, CAST({b} AS BIGINT) AS bucket FROM ind_linked_part"
            else:  # (no member of the bucket has a record of the feed)
                bucket = f"SELECT * FROM ({linked}) AS l WHERE FALSE"
            engine.register_query("ind_linked", bucket)
            rows += make(name, sql, d.parent, order=())
        target = scratch / "all" / name
        target.mkdir(parents=True)
        gather(dirs, target)
        engine.register_parquet(name, target)
        return rows

    # the members and the selections of all families (one query per selection over its feed's history)
    if progress:
        progress("assessment: records", 0, len(buckets) + 1)
    engine.register_query("families", "SELECT * FROM all_families")
    engine.register_query("family_members", "SELECT * FROM all_family_members")
    views += ["families", "family_members"]
    # (in bucket order, so that a bucket's rows are a few row groups that the bucket's reads pick out)
    by_bucket = functools.partial(make, order=("bucket",) if len(buckets) > 1 else ())
    unordered = functools.partial(make, here=scratch / "rows", order=())
    groups = select_records(engine, period, buckets, selection_rows, by_bucket, unordered, make_parts)
    whole = ["ind_members", *(g.table for g in groups)]
    for name in whole:
        engine.register_parquet(f"all_{name}", scratch / "all" / name)
        views.append(f"all_{name}")
    selected = {name: sql for g in groups for name, sql in g.views().items()}
    views += list(selected)
    # then facts, indicators, scores and sources bucket by bucket
    for b, cond in enumerate(buckets):
        if progress:
            progress(f"assessment: families {b + 1} of {len(buckets)}", b + 1, len(buckets) + 1)
        engine.register_query("families", f"SELECT * FROM all_families WHERE {cond}")
        for name in whole:
            engine.register_query(name, f"SELECT * FROM all_{name} WHERE bucket = {b}")
        for name, sql in selected.items():  # (after their group's, which a Spark view captures)
            engine.register_query(name, sql)
        here = scratch / f"bucket-{b:04d}"
        make("person_facts", facts.person_facts_sql(window), here)
        make("family_facts", facts.family_facts_sql(window, pension_age), here)
        compute_levels(engine, meth, functools.partial(make, here=here))
        make("family_situations", levels.situations_sql(meth), here)
        make("ind_masks", compute.masks_sql(meth), here)
        make("indicator_sources", compute.sources_sql(meth), here)
    for name, dirs in parts.items():
        target = run.new_table(name)
        gather(dirs, target)
        engine.register_parquet(name, target)
    got = engine.fetch("SELECT level, COUNT(*) AS n FROM family_scores GROUP BY level ORDER BY level")
    by_level = dict(zip(got.column("level").to_pylist(), got.column("n").to_pylist(), strict=True))
    targeted = engine.fetch("SELECT COUNT(*) AS n FROM family_scores WHERE targeted").column("n")[0].as_py()
    return AssessmentReport(
        run=run.id,
        as_of=period,
        methodology=meth.id,
        families=_rows_of(engine, "family_facts"),
        indicators=len(meth.indicators),
        by_level={str(k): int(v) for k, v in by_level.items()},
        targeted=int(targeted or 0),
    )
