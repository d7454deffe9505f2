"""Calibration report: does a generated nation look like Kazakhstan?

:func:`calibration` measures a set of figures on a generated nation's ground truth (``OUT/truth/``, never
the agency extracts) and compares each with its target in ``data/targets.toml``. It is the generator's
own check: the pipeline never reads the truth, but the people tuning the simulation do.

Every figure is measured at the **first simulated month** ``p0`` (``truth/run.json``: config start):

- *people at p0* are the persons with a membership spell covering p0 (``family_spells`` with
  ``from_period <= p0 <= to_period``); *families at p0* are the families those people belong to;
- ages are whole years at the first day of p0 (``persons.birth_date``); sex is ``persons.sex``;
- region and rural/urban come from the family (``families.region``, ``families.rural``);
- family size is the number of members at p0; a *large family* has 4 or more members under 18;
- pensioners and disability-benefit recipients are distinct persons with a ``support`` row of measure
  ``pension`` / ``disability`` in p0, among the people at p0;
- TSA families are distinct families with a ``support`` row of measure ``tsa`` in p0, among the families
  at p0;
- *no official income*: income from work or a pension, as the published figure counts it (social
  benefits and TSA are not income from work). The truth has no wage column, so a family counts as
  having an official income when, at p0, a member receives a pension, or when any member is the
  subject of a ``pension_contributions`` or ``tax`` record first delivered in p0's delivery (formal
  wages and declared entrepreneur income; ``source_records.period``). A family with none of these has
  no official income.

The unemployment rate target (``unemployment_rate``, marked ``report = false``) is documented but **not
measured**: the truth holds no labour-market status, so neither the unemployed nor the labour force can
be counted from ``truth/`` alone, and reading the agency extracts instead would break the rule that the
calibration is computed from the truth only.

All measurements are SQL over the Parquet files (duckdb), so the report runs in seconds on a nation of
millions of people without loading it into Python.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb

from familycard.geo.territory import REGIONS

OFFICIAL_INCOME_MEASURES: tuple[str, ...] = ("pension",)
"""Person-level payments that count as an official income (social benefits do not)."""
OFFICIAL_INCOME_FEEDS: tuple[str, ...] = ("pension_contributions", "tax")
"""Feeds whose subjects have a formal wage or a declared entrepreneur income."""
FAMILY_SIZE_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("family_size_1", 1, 1),
    ("family_size_2", 2, 2),
    ("family_size_3", 3, 3),
    ("family_size_4", 4, 4),
    ("family_size_5", 5, 5),
    ("family_size_6_plus", 6, 1_000_000),
)
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("age_0_14", 0, 14),
    ("age_15_64", 15, 64),
    ("age_65_plus", 65, 1_000),
)
_TRUTH_TABLES = ("persons", "family_spells", "families", "support", "source_records")


@dataclass(frozen=True, slots=True)
class Target:
    """One calibration target from ``data/targets.toml``."""

    name: str
    description: str
    value: float
    tolerance: float
    unit: str
    source: str
    report: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure next to its target."""

    name: str
    description: str
    generated: float
    target: float
    tolerance: float
    ok: bool

    @property
    def deviation(self) -> float:
        """``generated - target`` (NaN when nothing could be measured)."""
        return self.generated - self.target


@cache
def targets() -> dict[str, Target]:
    """All calibration targets, in file order (``report = false`` ones included)."""
    text = resources.files("familycard.synth").joinpath("data/targets.toml").read_text("utf-8")
    data = tomllib.loads(text)
    out: dict[str, Target] = {}
    for name, t in data["figures"].items():
        out[name] = Target(
            name=name,
            description=str(t["description"]),
            value=float(t["value"]),
            tolerance=float(t["tolerance"]),
            unit=str(t.get("unit", "")),
            source=str(t.get("source", "")),
            report=bool(t.get("report", True)),
            note=str(t.get("note", "")).strip(),
        )
    return out


def first_period(out: Path) -> tuple[str, str]:
    """``(p0, start date)`` of a nation, from its ``truth/run.json``, e.g. ``("2024-12", "2024-12-01")``."""
    run = Path(out) / "truth" / "run.json"
    if not run.is_file():
        raise FileNotFoundError(f"{run} not found: is {out} the output folder of `familycard synth`?")
    start = str(json.loads(run.read_text("utf-8"))["config"]["start"])
    return start[:7], start


def measure(out: Path) -> dict[str, float]:
    """Every measurable figure of the nation in ``out``, computed from ``out/truth/`` only."""
    out = Path(out)
    p0, start = first_period(out)
    paths = {}
    for name in _TRUTH_TABLES:
        path = out / "truth" / f"{name}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the truth of {out} is incomplete")
        paths[name] = "'" + str(path).replace("'", "''") + "'"
    con = duckdb.connect()
    try:
        return _measure(con, paths, p0, start)
    finally:
        con.close()


def _measure(con: duckdb.DuckDBPyConnection, paths: dict[str, str], p0: str, start: str) -> dict[str, float]:
    con.execute(
        f"""
        CREATE TEMP TABLE members AS
        SELECT s.person_id, s.family_id, f.region, f.rural, p.sex,
               date_sub('year', p.birth_date, CAST($start AS DATE)) AS age
        FROM read_parquet({paths["family_spells"]}) s
        JOIN read_parquet({paths["persons"]}) p ON p.person_id = s.person_id
        LEFT JOIN read_parquet({paths["families"]}) f ON f.family_id = s.family_id
        WHERE s.from_period <= $p0 AND s.to_period >= $p0
        """,
        {"p0": p0, "start": start},
    )
    con.execute(
        """
        CREATE TEMP TABLE fams AS
        SELECT family_id, count(*) AS size, count(*) FILTER (WHERE age < 18) AS minors
        FROM members GROUP BY family_id
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE support_p0 AS
        SELECT family_id, person_id, measure FROM read_parquet({paths["support"]}) WHERE period = $p0
        """,
        {"p0": p0},
    )
    people, families = _row(con, "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM fams)")
    fig: dict[str, float] = {}

    def share(num: float, den: float) -> float:
        return num / den if den else math.nan

    # people
    female, rural = _row(
        con, "SELECT count(*) FILTER (WHERE sex = 'F'), count(*) FILTER (WHERE rural) FROM members"
    )
    fig["rural_share"] = share(rural, people)
    fig["female_share"] = share(female, people)
    fig["average_family_size"] = share(people, families)
    for name, lo, hi in AGE_BANDS:
        (n,) = _row(con, "SELECT count(*) FROM members WHERE age BETWEEN $lo AND $hi", {"lo": lo, "hi": hi})
        fig[name] = share(n, people)
    by_region = dict(con.execute("SELECT region, count(*) FROM members GROUP BY region").fetchall())
    for r in REGIONS:
        fig[f"region_share_{r.code}"] = share(by_region.get(r.code, 0), people)
    # families
    for name, lo, hi in FAMILY_SIZE_BUCKETS:
        (n,) = _row(con, "SELECT count(*) FROM fams WHERE size BETWEEN $lo AND $hi", {"lo": lo, "hi": hi})
        fig[name] = share(n, families)
    (large,) = _row(con, "SELECT count(*) FROM fams WHERE minors >= 4")
    fig["large_families"] = share(large, families)
    # support
    for name, measure_ in (("pensioners", "pension"), ("disability_benefit", "disability")):
        (n,) = _row(
            con,
            """SELECT count(DISTINCT person_id) FROM support_p0
               WHERE measure = $m AND person_id IN (SELECT person_id FROM members)""",
            {"m": measure_},
        )
        fig[name] = share(n, people)
    (tsa,) = _row(
        con,
        """SELECT count(DISTINCT family_id) FROM support_p0
           WHERE measure = 'tsa' AND family_id IN (SELECT family_id FROM fams)""",
    )
    fig["tsa_families"] = share(tsa, families)
    # no official income
    (with_income,) = _row(
        con,
        f"""
        WITH earners AS (
            SELECT person_id FROM support_p0 WHERE measure IN $measures AND person_id IS NOT NULL
            UNION
            SELECT person_id FROM read_parquet({paths["source_records"]})
            WHERE feed IN $feeds AND role = 'subject' AND person_id IS NOT NULL AND period = $p0
        ),
        income_families AS (
            SELECT m.family_id FROM members m JOIN earners e ON e.person_id = m.person_id
        )
        SELECT count(*) FROM fams WHERE family_id IN (SELECT family_id FROM income_families)
        """,
        {"measures": list(OFFICIAL_INCOME_MEASURES), "feeds": list(OFFICIAL_INCOME_FEEDS), "p0": p0},
    )
    fig["no_official_income"] = share(families - with_income, families)
    return fig


def _row(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> tuple[int, ...]:
    row = con.execute(sql, params or {}).fetchone()
    assert row is not None
    return tuple(int(v or 0) for v in row)


def calibration(out: Path) -> list[Figure]:
    """Each reported target of ``data/targets.toml`` with the figure measured on ``out/truth/``.

    A figure is ``ok`` when ``|generated - target| <= tolerance``. Raises :class:`FileNotFoundError` when
    ``out`` holds no complete truth, and :class:`ValueError` when a reported target has no measurement.
    """
    measured = measure(out)
    figures: list[Figure] = []
    for t in targets().values():
        if not t.report:
            continue
        if t.name not in measured:
            raise ValueError(
                f"target {t.name!r} in targets.toml has no measurement in familycard.synth.report"
            )
        g = measured[t.name]
        ok = not math.isnan(g) and abs(g - t.value) <= t.tolerance + 1e-12
        figures.append(Figure(t.name, t.description, g, t.value, t.tolerance, ok))
    return figures


def format_report(figures: Sequence[Figure]) -> str:
    """A fixed-width table: figure, generated, target, tolerance, ok/MISS and the description."""
    w = max([len("figure"), *(len(f.name) for f in figures)])
    head = f"{'figure':<{w}}  {'generated':>9}  {'target':>9}  {'tolerance':>9}  {'ok':<4}  description"
    lines = [head, "-" * len(head)]
    for f in figures:
        lines.append(
            f"{f.name:<{w}}  {f.generated:>9.4f}  {f.target:>9.4f}  {'±' + format(f.tolerance, '.4f'):>9}  "
            f"{'ok' if f.ok else 'MISS':<4}  {f.description}"
        )
    misses = [f for f in figures if not f.ok]
    lines.append("-" * len(head))
    lines.append(f"{len(figures) - len(misses)} of {len(figures)} figures within tolerance")
    for f in misses:
        lines.append(
            f"MISS {f.name}: generated {f.generated:.4f}, target {f.target:.4f} ± {f.tolerance:.4f} "
            f"(off by {f.deviation:+.4f})"
        )
    return "\n".join(lines)


def figures_json(figures: Sequence[Figure]) -> dict[str, object]:
    """The report as JSON-ready data (NaN becomes ``None``)."""
    return {
        "ok": all(f.ok for f in figures),
        "figures": [
            {
                "name": f.name,
                "description": f.description,
                "generated": None if math.isnan(f.generated) else f.generated,
                "target": f.target,
                "tolerance": f.tolerance,
                "ok": f.ok,
            }
            for f in figures
        ],
    }
