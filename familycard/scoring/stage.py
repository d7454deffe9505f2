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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from familycard.families.asof import period_end
from familycard.geo.territory import build_territory
from familycard.indicators import compute, facts
from familycard.indicators.methodology import Methodology, load_methodology
from familycard.scoring import levels
from familycard.store.engine import Engine
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


def run_assessment(
    warehouse: Warehouse,
    engine: Engine,
    *,
    methodology: Methodology | str = "v1",
    run: Run | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> AssessmentReport:
    """Assess every family of the warehouse's current families with ``methodology`` and write the
    stage's tables. With ``run`` (a run in progress) the tables go into it and nothing is committed;
    without, the stage starts a run on the current snapshot, carries the other tables and commits."""
    t0 = time.perf_counter()
    meth = load_methodology(methodology) if isinstance(methodology, str) else methodology
    with stage_scope(warehouse, engine, run, "assess") as scope:
        for name in (*BASE_INPUTS, *(f"src_{f}" for f in FEEDS_READ)):
            engine.register_parquet(name, scope.run.input_path(name))
            scope.views.append(name)
        engine.register_arrow("ind_settlements", settlements_table())
        scope.views.append("ind_settlements")
        got = engine.fetch("SELECT MAX(as_of) AS p FROM families").column("p")[0].as_py()
        if got is None:
            raise ValueError("there are no families to assess: run the family stage first")
        period = str(got)
        report = _assess(engine, scope.run, meth, period, scope.scratch, scope.views, progress)
        scope.finish(
            {"stage": "assessment", "engine": engine.name, "as_of": period, "methodology": _meta(meth)}
        )
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _meta(meth: Methodology) -> dict[str, str]:
    return {
        "id": meth.id,
        "version": meth.version,
        "indicators": meth.catalogue_version,
        "situations": meth.situations_version,
        "digest": meth.digest,
    }


def compute_facts(engine: Engine, period: str, make: Callable[[str, str], int]) -> None:
    """Materialise ``ind_members``, the selections and ``person_facts``/``family_facts`` (through
    ``make(name, sql)``) over the registered inputs."""
    window = facts.Window(period, period_end(period))
    make("ind_members", facts.members_sql(window))
    for sel in facts.SELECTIONS:
        make(f"ind_sel_{sel.name}", facts.selection_sql(sel, window))
    make("person_facts", facts.person_facts_sql(window))


def compute_levels(meth: Methodology, make: Callable[[str, str], int]) -> None:
    """Materialise ``family_indicators`` and ``family_scores`` for ``meth`` over ``person_facts`` and
    ``family_facts``."""
    make("family_indicators", compute.family_indicators_sql(meth))
    make("family_scores", levels.scores_sql(meth))


def _assess(
    engine: Engine,
    run: Run,
    meth: Methodology,
    period: str,
    scratch: Path,
    views: list[str],
    progress: Callable[[str, int, int], None] | None,
) -> AssessmentReport:
    kept = {"person_facts", "family_facts", "family_indicators", "family_scores"}
    order = {
        "person_facts": ["family_id", "person_id"],
        "family_facts": ["family_id"],
        "family_indicators": ["family_id"],
        "family_scores": ["family_id"],
        "indicator_sources": ["family_id", "indicator", "feed", "record_key", "person_id"],
        "family_situations": ["family_id", "situation"],
    }
    steps = ["facts", "indicators", "scores", "sources"]

    def make(name: str, sql: str) -> int:
        views.append(name)
        target = run.new_table(name) if name in kept or name in OUTPUTS else scratch / name
        return engine.materialize(name, sql, target, order_by=order.get(name, ()))

    def step(n: int) -> None:
        if progress:
            progress(f"assessment: {steps[n]}", n, len(steps))

    step(0)
    compute_facts(engine, period, make)
    pension_age = int(meth.parameters.get("pension_age", 63))
    n_families = make(
        "family_facts", facts.family_facts_sql(facts.Window(period, period_end(period)), pension_age)
    )
    step(1)
    compute_levels(meth, make)
    step(2)
    make("family_situations", levels.situations_sql(meth))
    step(3)
    engine.register_arrow("ind_source_map", compute.source_map(meth))
    views.append("ind_source_map")
    make("indicator_sources", compute.sources_sql(meth))
    got = engine.fetch("SELECT level, COUNT(*) AS n FROM family_scores GROUP BY level ORDER BY level")
    by_level = dict(zip(got.column("level").to_pylist(), got.column("n").to_pylist(), strict=True))
    targeted = engine.fetch("SELECT COUNT(*) AS n FROM family_scores WHERE targeted").column("n")[0].as_py()
    return AssessmentReport(
        run=run.id,
        as_of=period,
        methodology=meth.id,
        families=n_families,
        indicators=len(meth.indicators),
        by_level={str(k): int(v) for k, v in by_level.items()},
        targeted=int(targeted or 0),
    )
