"""Targeting accuracy of the levels against a synthetic nation's truth, and a proxy-means-test baseline.

At the assessment's as-of period, a family is *truly in need* when its true level
(``truth/family_levels``) is one of ``NEED`` (D or E). Each true family is matched to the build's family
holding most of its members (persons mapped through the identity links, as in
:mod:`familycard.families.evaluate`), and each build family to the true family most of its members belong
to. Then:

* **exclusion error**: the share of truly-in-need families whose build family is not in the target group
  (``family_scores.targeted``), or who are in no build family at all;
* **inclusion error**: the share of build families in the target group whose true family is not in need.

Both are reported overall and by region, sex of the head, rural/urban and disability (a member receives
a disability benefit in the truth that period), each for the methodology's levels and for the
**proxy-means-test (PMT) baseline** most registries use: an ordinary least-squares regression of welfare
on observable proxies (family composition, housing, assets, territory, disability, employment; no
income), estimated on a random "survey" sample of families whose welfare is known (here the truth's
latent welfare, which a household budget survey would measure), and applied to every family; the
families with the lowest predicted welfare are targeted, as many as the survey's share in need.

This module is an evaluation helper, not part of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

NEED = ("D", "E")
SURVEY_SHARE = 0.10
"""Share of families in the PMT's calibration survey."""
SURVEY_SEED = 20260
GROUPS = ("region", "head_sex", "rural", "disability")
PMT_PROXIES = (
    "size",
    "minors",
    "under3",
    "under7",
    "elderly",
    "working_age",
    "women_working_age",
    "earners",
    "with_official_income",
    "owns_dwelling",
    "area_per_member",
    "dwelling_rooms",
    "vehicles",
    "land_ha",
    "livestock",
    "rural",
    "head_age",
    "head_female",
    "disabled",
    "chronic",
    "unemployed",
    "housing_queue",
    "utility_debt",
)
"""Observable proxies of the PMT regression (no income: the premise of a PMT is that income is not
verifiable), plus one indicator per region."""


@dataclass
class Targeting:
    """Exclusion and inclusion errors of one method, overall and by group."""

    method: str
    in_need: int
    targeted: int
    exclusion_error: float
    inclusion_error: float
    by_group: dict[str, dict[str, dict[str, float | int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "in_need": self.in_need,
            "targeted": self.targeted,
            "exclusion_error": self.exclusion_error,
            "inclusion_error": self.inclusion_error,
            "by_group": self.by_group,
        }


@dataclass
class TargetingEvaluation:
    as_of: str
    methodology: str
    families_true: int
    families_built: int
    levels: Targeting
    pmt: Targeting
    pmt_r2: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "methodology": self.methodology,
            "families_true": self.families_true,
            "families_built": self.families_built,
            "levels": self.levels.as_dict(),
            "pmt": self.pmt.as_dict(),
            "pmt_r2": self.pmt_r2,
        }


_MAP_SQL = """
WITH votes AS (
    SELECT CAST(l.person_id AS VARCHAR) AS pid, CAST(t.person_id AS VARCHAR) AS tid, COUNT(*) AS n
    FROM person_links AS l
    JOIN t_records AS t ON t.feed = l.feed AND t.record_id = l.record_key AND t.role = l.role
    GROUP BY 1, 2
)
SELECT pid, tid FROM votes QUALIFY ROW_NUMBER() OVER (PARTITION BY pid ORDER BY n DESC, tid) = 1
"""


def evaluate_targeting(warehouse: Warehouse, truth: Path, *, run: str | None = None) -> TargetingEvaluation:
    """Targeting errors of the run's levels and of the PMT baseline against the truth."""
    truth = Path(truth)
    with open_engine("duckdb") as eng:
        for name in ("family_members", "family_scores", "family_facts", "person_facts", "person_links"):
            eng.register_parquet(name, warehouse.table_path(name, run))
        period = str(eng.fetch("SELECT MAX(as_of) AS p FROM family_members").column("p")[0].as_py())
        methodology = str(eng.fetch("SELECT MAX(methodology) AS m FROM family_scores").column("m")[0].as_py())
        eng.register_arrow(
            "t_records",
            pq.read_table(
                truth / "source_records.parquet", columns=["feed", "record_id", "role", "person_id"]
            ),
        )
        for t in ("family_spells", "family_levels", "families", "persons", "support"):
            eng.register_arrow(f"t_{t}", pq.read_table(truth / f"{t}.parquet"))
        eng.register_arrow("pmap", eng.fetch(_MAP_SQL))
        true_fam = eng.fetch(_true_families_sql(period))
        built = eng.fetch(_built_families_sql(period))
        proxies = eng.fetch(_proxies_sql())
    levels = _errors("levels", true_fam, built, built.column("targeted").to_numpy(zero_copy_only=False))
    pmt_targeted, r2 = _pmt(true_fam, built, proxies)
    pmt = _errors("pmt", true_fam, built, pmt_targeted)
    return TargetingEvaluation(period, methodology, true_fam.num_rows, built.num_rows, levels, pmt, r2)


def _true_families_sql(period: str) -> str:
    """One row per true family at ``period``: need, groups, and the build family most of its members
    are in (NULL when none)."""
    return f"""
    WITH members AS (
        SELECT family_id AS tfam, CAST(person_id AS VARCHAR) AS tid, role FROM t_family_spells
        WHERE from_period <= '{period}' AND to_period >= '{period}'
    ),
    placed AS (
        SELECT m.tfam, fm.family_id AS bfam, COUNT(*) AS n,
            MAX(CASE WHEN m.role = 'head' THEN 1 ELSE 0 END) AS h
        FROM members AS m JOIN pmap ON pmap.tid = m.tid
        JOIN family_members AS fm ON CAST(fm.person_id AS VARCHAR) = pmap.pid
        GROUP BY 1, 2
    ),
    best AS (
        SELECT tfam, bfam FROM placed
        QUALIFY ROW_NUMBER() OVER (PARTITION BY tfam ORDER BY n DESC, h DESC, bfam) = 1
    ),
    lvl AS (
        SELECT family_id AS tfam, level, mean_latent FROM t_family_levels
        WHERE from_period <= '{period}' AND to_period >= '{period}'
    ),
    head AS (
        SELECT m.tfam, MAX(p.sex) AS head_sex FROM members AS m
        JOIN t_persons AS p ON CAST(p.person_id AS VARCHAR) = m.tid
        WHERE m.role = 'head' GROUP BY 1
    ),
    dis AS (
        SELECT DISTINCT family_id AS tfam FROM t_support WHERE period = '{period}' AND measure = 'disability'
    )
    SELECT l.tfam, l.level IN ({", ".join(f"'{x}'" for x in NEED)}) AS need, l.mean_latent,
        best.bfam, f.region, COALESCE(h.head_sex, '?') AS head_sex,
        CASE WHEN f.rural THEN 'rural' ELSE 'urban' END AS rural,
        CASE WHEN d.tfam IS NULL THEN 'no' ELSE 'yes' END AS disability
    FROM lvl AS l
    JOIN (SELECT DISTINCT tfam FROM members) AS live ON live.tfam = l.tfam
    JOIN t_families AS f ON f.family_id = l.tfam
    LEFT JOIN best ON best.tfam = l.tfam
    LEFT JOIN head AS h ON h.tfam = l.tfam
    LEFT JOIN dis AS d ON d.tfam = l.tfam
    ORDER BY l.tfam
    """


def _built_families_sql(period: str) -> str:
    """One row per build family: targeted, and the true family most of its members belong to."""
    return f"""
    WITH tm AS (
        SELECT family_id AS tfam, CAST(person_id AS VARCHAR) AS tid FROM t_family_spells
        WHERE from_period <= '{period}' AND to_period >= '{period}'
    ),
    placed AS (
        SELECT fm.family_id AS bfam, tm.tfam, COUNT(*) AS n
        FROM family_members AS fm JOIN pmap ON pmap.pid = CAST(fm.person_id AS VARCHAR)
        JOIN tm ON tm.tid = pmap.tid GROUP BY 1, 2
    ),
    best AS (
        SELECT bfam, tfam FROM placed
        QUALIFY ROW_NUMBER() OVER (PARTITION BY bfam ORDER BY n DESC, tfam) = 1
    )
    SELECT s.family_id AS bfam, s.targeted, best.tfam FROM family_scores AS s
    LEFT JOIN best ON best.bfam = s.family_id ORDER BY s.family_id
    """


def _proxies_sql() -> str:
    return """
    WITH pp AS (
        SELECT family_id,
            SUM(CASE WHEN disability_group IS NOT NULL THEN 1 ELSE 0 END) AS disabled,
            SUM(CASE WHEN chronic_conditions > 0 THEN 1 ELSE 0 END) AS chronic,
            SUM(CASE WHEN unemployed THEN 1 ELSE 0 END) AS unemployed
        FROM person_facts GROUP BY family_id
    )
    SELECT f.family_id AS bfam, f.size, f.minors, f.under3, f.under7, f.elderly, f.working_age,
        f.women_working_age, f.earners, f.with_official_income,
        CAST(f.owns_dwelling AS INTEGER) AS owns_dwelling, f.area_per_member,
        COALESCE(f.dwelling_rooms, 0) AS dwelling_rooms, f.vehicles, f.land_ha, f.livestock,
        CAST(f.rural AS INTEGER) AS rural, COALESCE(f.head_age, 40) AS head_age,
        CASE WHEN f.head_sex = 'F' THEN 1 ELSE 0 END AS head_female,
        pp.disabled, pp.chronic, pp.unemployed, CAST(f.housing_queue AS INTEGER) AS housing_queue,
        CASE WHEN f.utility_debt > 0 THEN 1 ELSE 0 END AS utility_debt, f.region
    FROM family_facts AS f JOIN pp ON pp.family_id = f.family_id ORDER BY f.family_id
    """


def _pmt(true_fam: pa.Table, built: pa.Table, proxies: pa.Table) -> tuple[np.ndarray, float]:
    """The PMT's targeting of every build family (aligned with ``built``) and the regression's R²."""
    regions = sorted(set(proxies.column("region").to_pylist()) - {None})
    cols = [proxies.column(c).to_numpy(zero_copy_only=False).astype(float) for c in PMT_PROXIES]
    reg = np.array(proxies.column("region").to_pylist(), dtype=object)
    cols += [(reg == r).astype(float) for r in regions[1:]]
    x = np.column_stack([np.ones(proxies.num_rows), *cols])
    x = np.nan_to_num(x)
    row_of = {f: i for i, f in enumerate(proxies.column("bfam").to_pylist())}
    # the survey: a random sample of true families found in the build, with their welfare
    rng = np.random.default_rng(SURVEY_SEED)
    bfam = true_fam.column("bfam").to_pylist()
    latent = true_fam.column("mean_latent").to_numpy(zero_copy_only=False).astype(float)
    need = true_fam.column("need").to_numpy(zero_copy_only=False).astype(bool)
    found = np.array([b is not None and b in row_of for b in bfam])
    sample = np.flatnonzero(found & (rng.random(len(bfam)) < SURVEY_SHARE))
    rows = np.array([row_of[bfam[i]] for i in sample], dtype=np.int64)
    beta, *_ = np.linalg.lstsq(x[rows], latent[sample], rcond=None)
    fitted = x[rows] @ beta
    resid = latent[sample] - fitted
    r2 = 1.0 - float(resid @ resid) / float(((latent[sample] - latent[sample].mean()) ** 2).sum())
    predicted = x @ beta
    share = float(need[sample].mean()) if len(sample) else 0.0
    cut = np.quantile(predicted, share) if share > 0 else -np.inf
    by_row = predicted <= cut
    order = [row_of[f] for f in built.column("bfam").to_pylist()]
    return by_row[np.array(order, dtype=np.int64)], round(r2, 4)


def _errors(method: str, true_fam: pa.Table, built: pa.Table, targeted: np.ndarray) -> Targeting:
    tgt_of = dict(zip(built.column("bfam").to_pylist(), targeted.tolist(), strict=True))
    need = true_fam.column("need").to_pylist()
    bfam = true_fam.column("bfam").to_pylist()
    caught = [bool(b is not None and tgt_of.get(b, False)) for b in bfam]
    groups = {g: true_fam.column(g).to_pylist() for g in GROUPS}
    tfam_row = {t: i for i, t in enumerate(true_fam.column("tfam").to_pylist())}
    b_tfam = built.column("tfam").to_pylist()

    def excl(idx: list[int]) -> tuple[float, int]:
        needy = [i for i in idx if need[i]]
        return (round(sum(not caught[i] for i in needy) / len(needy), 4) if needy else 0.0), len(needy)

    def incl(keep: set[int] | None) -> tuple[float, int]:
        sel = []
        for j, t in enumerate(b_tfam):
            if not targeted[j]:
                continue
            i = tfam_row.get(t) if t is not None else None
            if keep is not None and (i is None or i not in keep):
                continue
            sel.append(i is None or not need[i])
        return (round(sum(sel) / len(sel), 4) if sel else 0.0), len(sel)

    all_idx = list(range(len(need)))
    ex, n_need = excl(all_idx)
    inc, n_tgt = incl(None)
    by_group: dict[str, dict[str, dict[str, float | int]]] = {}
    for g, values in groups.items():
        by_group[g] = {}
        for v in sorted({str(x) for x in values}):
            idx = [i for i in all_idx if str(values[i]) == v]
            e, n1 = excl(idx)
            c, n2 = incl(set(idx))
            by_group[g][v] = {"exclusion_error": e, "in_need": n1, "inclusion_error": c, "targeted": n2}
    return Targeting(method, n_need, n_tgt, ex, inc, by_group)
