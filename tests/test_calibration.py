"""Calibration: a 20,000-family nation must match every national figure in ``data/targets.toml``.

The figures are measured on the generator's ground truth (``familycard.synth.report``). A failure here
means the simulation parameters drift away from the national figures: tune the simulation, never the
targets.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from familycard.geo.territory import REGIONS
from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate
from familycard.synth.report import Figure, calibration, format_report, targets

CFG = SynthConfig(families=20_000, seed=0, months=3)
REPORTED = [t.name for t in targets().values() if t.report]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibration")
    generate(CFG, out)
    return out


@pytest.fixture(scope="module")
def figures(nation: Path) -> dict[str, Figure]:
    return {f.name: f for f in calibration(nation)}


# ---- the targets file ----------------------------------------------------------------------------


def test_targets_are_documented() -> None:
    all_targets = targets()
    assert all_targets
    for t in all_targets.values():
        assert t.description and t.source and t.unit, t.name
        assert t.tolerance > 0, t.name
        assert not math.isnan(t.value), t.name
        if not t.report:
            assert t.note, f"{t.name} is not reported: say why in its note"


def test_region_targets_follow_the_territory() -> None:
    total = sum(r.population for r in REGIONS)
    all_targets = targets()
    for r in REGIONS:
        t = all_targets[f"region_share_{r.code}"]
        assert t.value == pytest.approx(r.population / total, abs=5e-5), r.code
        assert t.tolerance == pytest.approx(0.015)
    assert sum(all_targets[f"region_share_{r.code}"].value for r in REGIONS) == pytest.approx(1.0, abs=1e-3)


def test_rural_target_matches_the_territory() -> None:
    total = sum(r.population for r in REGIONS)
    rural = sum(r.population * r.rural_share for r in REGIONS) / total
    assert targets()["rural_share"].value == pytest.approx(rural, abs=0.01)


# ---- the generated nation ------------------------------------------------------------------------


def test_every_reported_target_is_measured(figures: dict[str, Figure]) -> None:
    assert list(figures) == REPORTED


def test_measurements_agree_with_a_direct_count(nation: Path, figures: dict[str, Figure]) -> None:
    """Cross-check the SQL with a plain pyarrow/numpy count of people and families at the first month."""
    spells = pq.read_table(nation / "truth" / "family_spells.parquet")
    p0 = CFG.period(0)
    at_p0 = spells.filter(
        pc.and_(pc.less_equal(spells["from_period"], p0), pc.greater_equal(spells["to_period"], p0))
    )
    people = at_p0.num_rows
    families = len(pc.unique(at_p0["family_id"]))
    assert figures["average_family_size"].generated == pytest.approx(people / families)
    persons = pq.read_table(nation / "truth" / "persons.parquet", columns=["person_id", "sex", "birth_date"])
    member = np.isin(persons["person_id"].to_numpy(), at_p0["person_id"].to_numpy())
    female = (persons["sex"].to_numpy(zero_copy_only=False)[member] == "F").mean()
    assert figures["female_share"].generated == pytest.approx(female)
    start = CFG.start
    births = persons["birth_date"].to_pylist()
    ages = np.array([start.year - b.year - ((b.month, b.day) > (start.month, start.day)) for b in births])[
        member
    ]
    assert figures["age_65_plus"].generated == pytest.approx((ages >= 65).mean())


def test_report_lists_every_figure(figures: dict[str, Figure]) -> None:
    text = format_report(list(figures.values()))
    for name in figures:
        assert name in text


@pytest.mark.parametrize("name", REPORTED)
def test_figure_within_tolerance(figures: dict[str, Figure], name: str) -> None:
    f = figures[name]
    assert f.ok, (
        f"{name} ({f.description}): generated {f.generated:.4f}, target {f.target:.4f} ± {f.tolerance:.4f}, "
        f"off by {f.generated - f.target:+.4f}"
    )
