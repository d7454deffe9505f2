"""Scoring a family build against a synthetic nation's truth (``truth/family_spells.parquet``).

Measures, at the build's as-of period:

* **pairwise co-membership**: a pair of persons is *predicted* when the build puts both in one family
  and *true* when the truth does; precision, recall and F1 over pairs;
* **exact families**: the share of true families the build reproduces with exactly their members;
* **head accuracy**: among exactly reproduced families with a head in the truth, the share whose
  principal recipient is that head;

overall and for the families of each hard case (``truth/families.parquet`` ``hard_cases``; a pair
counts for a hard case when either person's true family has it). Build persons are mapped to true
persons through their identity links (``person_links``) and the truth's ``source_records``, by majority;
a true person the build does not place loses their pairs (recall), a build person with no true person
keeps theirs (precision).

This module is an evaluation helper, not part of the pipeline: it reads the truth, which the pipeline
never does. :func:`install_truth_identity` writes a stand-in for the identity stage's tables, built
from the truth, so that the family stage can be measured on its own.

Run ``python -m familycard.families.evaluate NATION DATA [--as-of YYYY-MM] [--truth-identity]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

ALL = "all"


# ------------------------------------------------------------------------------ the identity stand-in


def truth_identity_tables(truth: Path) -> tuple[pa.Table, pa.Table]:
    """``persons`` and ``person_links`` as a perfect identity stage would write them, from the truth:
    every mention linked to its true person, with certainty (an evaluation stand-in, never a pipeline
    input)."""
    truth = Path(truth)
    people = pq.read_table(
        truth / "persons.parquet",
        columns=["person_id", "iin", "surname", "given_name", "patronymic", "birth_date", "sex"],
    )
    records = pq.read_table(
        truth / "source_records.parquet", columns=["feed", "record_id", "role", "person_id"]
    )
    keys = pa.table(
        {
            "feed": records["feed"],
            "record_key": records["record_id"].cast(pa.string()),
            "role": records["role"],
            "person_id": records["person_id"],
        }
    )
    links = keys.group_by(["feed", "record_key", "role", "person_id"]).aggregate([])
    n = links.num_rows
    links = links.append_column("method", pa.array(["truth"] * n, pa.string()))
    links = links.append_column("match_probability", pa.array(np.ones(n), pa.float64()))
    links = links.append_column("uncertain", pa.array(np.zeros(n, bool), pa.bool_()))
    mentions = links.group_by("person_id").aggregate([("record_key", "count")])
    counted = dict(
        zip(mentions["person_id"].to_pylist(), mentions["record_key_count"].to_pylist(), strict=True)
    )
    n_mentions = pa.array([counted.get(p, 0) for p in people["person_id"].to_pylist()], pa.int64())
    return people.append_column("n_mentions", n_mentions), links


def install_truth_identity(warehouse: Warehouse, truth: Path) -> str:
    """Commit a run that adds the truth stand-in ``persons`` and ``person_links`` to the current
    snapshot (every other table carried over); return the run id."""
    people, links = truth_identity_tables(truth)
    run = warehouse.begin()
    try:
        pq.write_table(people, run.new_table("persons") / "part-0.parquet")
        pq.write_table(links, run.new_table("person_links") / "part-0.parquet")
        for name in warehouse.tables(run.base) if run.base else []:
            if name not in ("persons", "person_links"):
                run.carry(name)
        run.commit({"stage": "truth_identity"})
    except BaseException:
        run.abort()
        raise
    return run.id


# ---------------------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Scores of one build: one row per group (``all`` and each hard case)."""

    as_of: str
    rows: list[dict[str, object]] = field(default_factory=list)
    head_accuracy: float = float("nan")

    def group(self, name: str = ALL) -> dict[str, object]:
        """The scores of one group."""
        for row in self.rows:
            if row["group"] == name:
                return row
        raise KeyError(name)

    @property
    def f1(self) -> float:
        return float(self.group()["f1"])  # type: ignore[arg-type]

    @property
    def exact_share(self) -> float:
        return float(self.group()["exact_share"])  # type: ignore[arg-type]


ROWS_SQL = """
    WITH votes AS (
        SELECT CAST(l.person_id AS VARCHAR) AS pid, CAST(t.person_id AS VARCHAR) AS tid, COUNT(*) AS n
        FROM person_links AS l
        JOIN t_records AS t ON t.feed = l.feed AND t.record_id = l.record_key AND t.role = l.role
        GROUP BY CAST(l.person_id AS VARCHAR), CAST(t.person_id AS VARCHAR)
    ),
    map AS (
        SELECT pid, tid FROM votes
        QUALIFY ROW_NUMBER() OVER (PARTITION BY pid ORDER BY n DESC, tid) = 1
    ),
    mapped AS (
        SELECT COALESCE(map.tid, 'build:' || CAST(m.person_id AS VARCHAR)) AS tid, m.family_id,
            f.head_person_id = m.person_id AS is_head
        FROM family_members AS m
        JOIN families AS f ON f.family_id = m.family_id
        LEFT JOIN map ON map.pid = CAST(m.person_id AS VARCHAR)
        WHERE m.as_of = '{period}'
    ),
    -- a true person the build holds twice (identity left a duplicate) counts once
    pred AS (
        SELECT * FROM mapped QUALIFY ROW_NUMBER() OVER (PARTITION BY tid ORDER BY family_id) = 1
    ),
    tru AS (
        SELECT CAST(person_id AS VARCHAR) AS tid, family_id, role = 'head' AS is_head FROM t_spells
        WHERE from_period <= '{period}' AND to_period >= '{period}'
    )
    SELECT COALESCE(p.family_id, 'none:' || t.tid) AS pred, COALESCE(t.family_id, -1) AS fam,
        COALESCE(p.is_head, FALSE) AS pred_head, COALESCE(t.is_head, FALSE) AS true_head
    FROM pred AS p FULL JOIN tru AS t ON t.tid = p.tid
"""
"""Each person of the build or the truth at the as-of period: the family the build puts them in (its
build persons mapped to true persons by majority of their links), their true family, and whether each
side makes them the head."""


def evaluate(
    warehouse: Warehouse,
    truth: Path,
    *,
    run: str | None = None,
    as_of: str | None = None,
    memory_limit: str = "8GB",
) -> Evaluation:
    """Score the families of the current (or given) run against the truth at their as-of period (DuckDB
    capped at ``memory_limit``, spilling to a temporary directory under the warehouse)."""
    truth = Path(truth)
    # (the truth's records are read where they lie, and the engine spills beyond its memory limit: a
    # national truth has some 180 M records)
    tmp = Path(tempfile.mkdtemp(prefix="eval-", dir=warehouse.data))
    records = str(truth / "source_records.parquet").replace("'", "''")
    try:
        with open_engine("duckdb", temp_dir=tmp, memory_limit=memory_limit) as eng:
            for name in ("family_members", "families", "person_links"):
                eng.register_parquet(name, warehouse.table_path(name, run))
            period = as_of or eng.fetch("SELECT MAX(as_of) AS p FROM families").column("p")[0].as_py()
            if period is None:
                raise ValueError("the build has no families")
            eng.register_query(
                "t_records", f"SELECT feed, record_id, role, person_id FROM read_parquet('{records}')"
            )
            eng.register_arrow("t_spells", pq.read_table(truth / "family_spells.parquet"))
            rows = eng.fetch(ROWS_SQL.format(period=period))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hard = pq.read_table(truth / "families.parquet", columns=["family_id", "hard_cases"])
    return _score(str(period), rows, hard)


def _pairs(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.float64)
    return n * (n - 1) / 2


def _score(period: str, rows: pa.Table, hard: pa.Table) -> Evaluation:
    pred = pc.dictionary_encode(rows["pred"]).combine_chunks()
    g = pred.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    fam_ids = rows["fam"].to_numpy(zero_copy_only=False).astype(np.int64)
    has_fam = fam_ids >= 0
    # people the truth does not know form families of one (they never make a true pair)
    unknown = np.flatnonzero(~has_fam)
    codes, f = np.unique(fam_ids, return_inverse=True)
    f = f.astype(np.int64)
    f[unknown] = len(codes) + np.arange(len(unknown))
    n_f_codes = len(codes) + len(unknown)
    n_g = np.bincount(g, minlength=len(pred.dictionary))
    n_fam = np.bincount(f, minlength=n_f_codes)
    cell_key = g * n_f_codes + f
    cells, cell_n = np.unique(cell_key, return_counts=True)
    cg, cf = cells // n_f_codes, cells % n_f_codes
    tp_f = np.bincount(cf, weights=_pairs(cell_n), minlength=n_f_codes)
    exact_f = np.zeros(n_f_codes, bool)
    exact_cells = (cell_n == n_fam[cf]) & (cell_n == n_g[cg])
    exact_f[cf[exact_cells]] = True
    real = np.zeros(n_f_codes, bool)
    real[: len(codes)] = codes >= 0

    # heads: exactly rebuilt families whose true head is the build's head
    pred_head = rows["pred_head"].to_numpy(zero_copy_only=False)
    true_head = rows["true_head"].to_numpy(zero_copy_only=False)
    has_true_head = np.zeros(n_f_codes, bool)
    has_true_head[f[true_head]] = True
    head_right = np.zeros(n_f_codes, bool)
    head_right[f[true_head & pred_head]] = True
    judged = exact_f & has_true_head & real
    head_accuracy = float(head_right[judged].mean()) if judged.any() else float("nan")

    code_index = {int(c): i for i, c in enumerate(codes)}
    groups: dict[str, np.ndarray] = {ALL: real.copy()}
    for fid, cases in zip(hard["family_id"].to_pylist(), hard["hard_cases"].to_pylist(), strict=True):
        i = code_index.get(int(fid))
        if i is None:
            continue
        for case in (cases or "").split(","):
            if case:
                groups.setdefault(case, np.zeros(n_f_codes, bool))[i] = True
    ev = Evaluation(as_of=period, head_accuracy=head_accuracy)
    order = [ALL, *sorted((k for k in groups if k != ALL), key=lambda k: -int(groups[k].sum()))]
    for name in order:
        in_h = groups[name]
        true_pairs = _pairs(n_fam)[in_h].sum()
        tp = tp_f[in_h].sum()
        n_gh = np.bincount(cg, weights=cell_n * in_h[cf], minlength=len(n_g))
        pred_pairs = (_pairs(n_g) - _pairs(n_g - n_gh)).sum()
        precision = tp / pred_pairs if pred_pairs else 1.0
        recall = tp / true_pairs if true_pairs else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        ev.rows.append(
            {
                "group": name,
                "families": int(in_h.sum()),
                "persons": int(n_fam[in_h].sum()),
                "precision": round(float(precision), 4),
                "recall": round(float(recall), 4),
                "f1": round(float(f1), 4),
                "exact_share": round(float(exact_f[in_h].mean()), 4) if in_h.any() else float("nan"),
            }
        )
    return ev


def format_evaluation(ev: Evaluation) -> str:
    """The scores as a Markdown table."""
    lines = [
        f"Families as of {ev.as_of}; head accuracy {ev.head_accuracy:.4f}",
        "",
        "| group | families | persons | precision | recall | F1 | exact |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ev.rows:
        lines.append(
            f"| {r['group']} | {r['families']:,} | {r['persons']:,} | {r['precision']:.4f} | "
            f"{r['recall']:.4f} | {r['f1']:.4f} | {r['exact_share']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build (optionally with the truth stand-in for identity) and score the families of a nation."""
    from familycard.families.stage import run_families

    parser = argparse.ArgumentParser(prog="python -m familycard.families.evaluate", description=main.__doc__)
    parser.add_argument("nation", type=Path, help="the synthetic nation (its truth/ is read)")
    parser.add_argument("data", type=Path, help="the warehouse, already ingested from nation/sources")
    parser.add_argument("--as-of", help="period YYYY-MM (default: the address register's latest)")
    parser.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    parser.add_argument(
        "--truth-identity", action="store_true", help="stand in for the identity stage with the truth first"
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    wh = Warehouse(args.data)
    if args.truth_identity:
        install_truth_identity(wh, args.nation / "truth")
    started = dt.datetime.now()
    with open_engine(args.engine, temp_dir=args.data / "tmp") as eng:
        report = run_families(wh, eng, as_of=args.as_of)
    ev = evaluate(wh, args.nation / "truth")
    seconds = (dt.datetime.now() - started).total_seconds()
    if args.json:
        print(json.dumps({"as_of": ev.as_of, "head_accuracy": ev.head_accuracy, "rows": ev.rows}, indent=1))  # noqa: T201
    else:
        print(format_evaluation(ev))  # noqa: T201
        print(f"\n{report.families:,} families, {report.members:,} members, built in {seconds:.1f} s")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
