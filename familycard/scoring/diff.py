"""Methodology diff: who would move level if methodology ``to`` replaced ``from``, before it goes live.

Both versions are applied to the same facts (the published snapshot's ``person_facts`` and the families
behind ``family_facts``), so every difference comes from the methodology alone. The result holds the
transition matrix (rows: levels under ``from``, columns: levels under ``to``), the same matrix by region,
and sample families for each move.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from familycard.families.asof import period_end
from familycard.indicators import facts
from familycard.indicators.methodology import Methodology, load_methodology
from familycard.scoring.stage import compute_levels, settlements_table
from familycard.store.engine import Engine, open_engine
from familycard.store.warehouse import Warehouse


@dataclass
class Diff:
    """The transition between two methodologies' levels over the same families."""

    source: str
    target: str
    as_of: str
    families: int
    from_levels: list[str]
    to_levels: list[str]
    matrix: list[list[int]]
    by_region: dict[str, list[list[int]]]
    samples: list[dict[str, Any]] = field(default_factory=list)

    entering: int = 0
    """Families the ``to`` methodology puts in the target group and ``from`` does not."""
    leaving: int = 0
    """Families in the target group under ``from`` and not under ``to``."""

    @property
    def moved(self) -> int | None:
        """Families whose level changes, when both methodologies use the same level codes (else None:
        the scales are not comparable level by level, only by the target group)."""
        if set(self.from_levels) != set(self.to_levels):
            return None
        return sum(
            n
            for i, row in enumerate(self.matrix)
            for j, n in enumerate(row)
            if self.from_levels[i] != self.to_levels[j]
        )

    def row_totals(self) -> list[int]:
        return [sum(r) for r in self.matrix]

    def column_totals(self) -> list[int]:
        return [sum(r[j] for r in self.matrix) for j in range(len(self.to_levels))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "as_of": self.as_of,
            "families": self.families,
            "from_levels": self.from_levels,
            "to_levels": self.to_levels,
            "matrix": self.matrix,
            "row_totals": self.row_totals(),
            "column_totals": self.column_totals(),
            "by_region": self.by_region,
            "moved": self.moved,
            "entering_target_group": self.entering,
            "leaving_target_group": self.leaving,
            "samples": self.samples,
        }


def _levels_for(engine: Engine, meth: Methodology, period: str, scratch: Path) -> pa.Table:
    """Every family's level and score under ``meth`` (recomputing the family facts, whose parameters
    may differ between versions)."""
    made: list[str] = []

    def make(name: str, sql: str) -> int:
        made.append(name)
        return engine.materialize(name, sql, scratch / name)

    window = facts.Window(period, period_end(period))
    make("family_facts", facts.family_facts_sql(window, int(meth.parameters.get("pension_age", 63))))
    compute_levels(engine, meth, make)
    out = engine.fetch("SELECT family_id, level, score, region FROM family_scores ORDER BY family_id")
    for name in made:
        engine.drop(name)
    return out


def methodology_diff(data: Path, source: str, target: str, *, samples: int = 3) -> Diff:
    """Apply ``source`` and ``target`` (version ids or files) to the published snapshot's facts and
    compare the levels."""
    wh = Warehouse(data)
    run = wh.published() or wh.current()
    if run is None or "person_facts" not in wh.tables(run):
        raise FileNotFoundError(
            f"no assessed families in the warehouse at {data}: run `familycard run` first"
        )
    a, b = load_methodology(source), load_methodology(target)
    scratch = Path(tempfile.mkdtemp(prefix="diff-", dir=data / "tmp" if (data / "tmp").is_dir() else None))
    try:
        with open_engine("duckdb", temp_dir=scratch) as eng:
            eng.register_parquet("person_facts", wh.table_path("person_facts", run))
            eng.register_parquet("families", wh.table_path("families", run))
            eng.register_arrow("ind_settlements", settlements_table())
            period = str(eng.fetch("SELECT MAX(as_of) AS p FROM families").column(0)[0].as_py())
            la = _levels_for(eng, a, period, scratch / "from")
            lb = _levels_for(eng, b, period, scratch / "to")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    fa, fb = [lv.code for lv in a.levels], [lv.code for lv in b.levels]
    ia, ib = {c: i for i, c in enumerate(fa)}, {c: i for i, c in enumerate(fb)}
    matrix = [[0] * len(fb) for _ in fa]
    by_region: dict[str, list[list[int]]] = {}
    picked: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ids = la.column("family_id").to_pylist()
    if ids != lb.column("family_id").to_pylist():
        raise RuntimeError("the two methodologies scored different families")
    rows = zip(
        ids,
        la.column("level").to_pylist(),
        lb.column("level").to_pylist(),
        la.column("score").to_pylist(),
        lb.column("score").to_pylist(),
        la.column("region").to_pylist(),
        strict=True,
    )
    ta = {lv.code for lv in a.levels if lv.targeted}
    tb = {lv.code for lv in b.levels if lv.targeted}
    entering = leaving = 0
    for fid, x, y, sx, sy, region in rows:
        matrix[ia[x]][ib[y]] += 1
        entering += int(x not in ta and y in tb)
        leaving += int(x in ta and y not in tb)
        reg = by_region.setdefault(str(region), [[0] * len(fb) for _ in fa])
        reg[ia[x]][ib[y]] += 1
        if ia[x] != ib[y] or (x in ta) != (y in tb):
            bucket = picked.setdefault((x, y), [])
            if len(bucket) < samples:
                bucket.append(
                    {"family_id": fid, "region": region, "from": x, "to": y, "score_from": sx, "score_to": sy}
                )
    return Diff(
        source=a.id,
        target=b.id,
        as_of=period,
        families=len(ids),
        from_levels=fa,
        to_levels=fb,
        matrix=matrix,
        by_region=dict(sorted(by_region.items())),
        samples=[s for key in sorted(picked) for s in picked[key]],
        entering=entering,
        leaving=leaving,
    )
