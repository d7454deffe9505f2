"""Benchmark: the assessment stage (facts, indicators, scores, levels, situations, provenance) at scale.

Not part of the test suite. The assessment's inputs at national size (persons, links, families and every
feed's history) come from a small assessed nation *replicated*: each copy gets its own person, family and
record ids (the original id plus ``~k``), so the stage sees ``copies`` times as many families with the
same distribution of facts. Usage:

    .venv/bin/familycard synth --families 20000 --months 13 --seed 3 --out /tmp/val/nation
    .venv/bin/familycard run --sources /tmp/val/nation/sources --data /tmp/val/data
    .venv/bin/python bench/scoring.py --data /tmp/val/data --copies 300 --out /tmp/scoring-bench

It prints one JSON line: families, persons, input rows, seconds and peak RSS of the stage alone, the
engine's memory limit (``--memory``) and the most it spilled to disk (``spilled_peak_gib``), and
``steps``: the rows and seconds of every table the stage materialises (summed over its buckets), which is
where the time goes. ``--reuse`` assesses the replica already at ``--out`` again; ``--bucket`` sets the
families assessed together (``BUCKET_FAMILIES``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import measured
from steps import Spilled, Step, summary, timed

from familycard.pipeline import MEMORY_LIMIT
from familycard.scoring.stage import BASE_INPUTS, BUCKET_FAMILIES, FEEDS_READ, run_assessment
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

SUFFIXED = {
    "persons": ("person_id",),
    "person_links": ("person_id", "record_key"),
    "families": ("family_id", "head_person_id"),
    "family_members": ("family_id", "person_id"),
}
"""Id columns that get the copy's suffix; every feed history's ``_key`` does too."""
NUMBERED = ("persons", "person_links")
"""Tables that hold person numbers (``person_no``) where the identity stage wrote them: copy ``k`` of a
number keeps its high bits and takes ``k`` as its low :data:`COPY_BITS`, so the copies' numbers differ
and keep their order."""
COPY_BITS = 12
MAX_COPIES = 1 << COPY_BITS


def replicate(source: Path, out: Path, copies: int) -> tuple[int, int]:
    """Write a warehouse at ``out`` whose stage inputs are ``copies`` copies of ``source``'s; return
    (families, input rows)."""
    src = Warehouse(source)
    run_id = src.published() or src.current()
    if out.exists():
        shutil.rmtree(out)
    wh = Warehouse(out)
    run = wh.begin()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    rows = 0
    if copies > MAX_COPIES:
        raise ValueError(f"at most {MAX_COPIES} copies")
    persons = f"'{src.table_path('persons', run_id)}/*.parquet'"
    columns = con.execute(f"SELECT * FROM read_parquet({persons}) LIMIT 0").description or []
    numbered = "person_no" in {c[0] for c in columns}
    if numbered:
        n, distinct = con.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT person_no >> {COPY_BITS}) FROM read_parquet({persons})"
        ).fetchone() or (0, 0)
        if n != distinct:
            clash = f"two persons' numbers differ only in their low {COPY_BITS} bits: the copies would clash"
            raise ValueError(clash)
    for table in (*BASE_INPUTS, *(f"src_{f}" for f in FEEDS_READ)):
        cols = SUFFIXED.get(table, ("_key",))
        target = run.new_table(table)
        files = f"'{src.table_path(table, run_id)}/*.parquet'"
        replace = ", ".join(f"CAST({c} AS VARCHAR) || '~' || CAST(k AS VARCHAR) AS {c}" for c in cols)
        if numbered and table in NUMBERED:
            replace += f", person_no - (person_no & {MAX_COPIES - 1}) + k AS person_no"
        query = (
            f"SELECT * EXCLUDE (k) REPLACE ({replace}) FROM read_parquet({files}) "
            f"CROSS JOIN range({copies}) AS r(k)"
        )
        if table == "person_links":  # one file per feed, in feed order, as the identity stage sorts them
            feeds = con.execute(f"SELECT DISTINCT feed FROM read_parquet({files}) ORDER BY feed").fetchall()
            for i, (feed,) in enumerate(feeds):
                part = target / f"part-{i:03d}.parquet"
                con.execute(f"COPY ({query} WHERE feed = '{feed}') TO '{part}' (FORMAT parquet)")
        else:
            con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, PER_THREAD_OUTPUT true)")
        rows += _rows(con, target)
    for table in ("deliveries", "quality"):  # one row per file or feed: the same for every copy
        if table in src.tables(run_id):
            run.link(table, src.parts(table, run_id))
    families = _rows(con, run.path / "families")
    run.commit({"stage": "bench-replica", "copies": copies, "source": str(source)})
    return families, rows


def replica_size(out: Path) -> tuple[int, int]:
    """(families, input rows) of the replica at ``out``."""
    wh = Warehouse(out)
    run_id = wh.current()
    con = duckdb.connect()
    rows = sum(
        _rows(con, wh.table_path(t, run_id)) for t in (*BASE_INPUTS, *(f"src_{f}" for f in FEEDS_READ))
    )
    return _rows(con, wh.table_path("families", run_id)), rows


def _rows(con: duckdb.DuckDBPyConnection, table: Path) -> int:
    """The rows of the table directory ``table``."""
    row = con.execute(f"SELECT COUNT(*) FROM read_parquet('{table}/*.parquet')").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="an assessed warehouse (the nation to copy)")
    ap.add_argument("--copies", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--engine", default="duckdb")
    ap.add_argument("--bucket", type=int, default=BUCKET_FAMILIES, help="families assessed together")
    ap.add_argument("--reuse", action="store_true", help="assess the replica already at --out again")
    ap.add_argument("--memory", default=MEMORY_LIMIT, help="the engine's memory limit (the pipeline's)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.reuse:
        families, rows = replica_size(args.out)
    else:
        families, rows = replicate(args.data, args.out, args.copies)
    built = time.perf_counter() - t0
    (args.out / "tmp").mkdir(exist_ok=True)
    wh = Warehouse(args.out)

    steps: list[Step] = []

    def stage() -> object:
        with open_engine(args.engine, temp_dir=args.out / "tmp", memory_limit=args.memory) as eng:
            timed(eng, steps)
            return run_assessment(wh, eng, bucket_families=args.bucket)

    with Spilled(args.out / "tmp") as spilled:
        report, seconds, peak = measured(stage)
    print(
        json.dumps(
            {
                "copies": args.copies,
                "families": families,
                "input_rows": rows,
                "replica_seconds": round(built, 1),
                "stage_seconds": round(seconds, 1),
                "peak_rss_gib": round(peak / 2**30, 2),
                "memory_limit": args.memory,
                "spilled_peak_gib": round(spilled.peak / 2**30, 2),
                "persons": wh.read("person_facts").num_rows if args.copies <= 10 else None,
                "report": {k: v for k, v in vars(report).items() if k != "run"},
                "buckets": sum(1 for name, _, _ in steps if name == "family_scores"),  # one per bucket
                "steps": summary(steps),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
