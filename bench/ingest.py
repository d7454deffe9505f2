"""Benchmark: ingest a synthetic nation's first (full) deliveries, then one monthly change delivery.

Not part of the test suite. Usage:

    .venv/bin/python bench/synth.py --families 6000000 --months 2 --out /tmp/nation
    .venv/bin/python bench/ingest.py --nation /tmp/nation --data /tmp/nation-data [--engine duckdb]

It times the ingestion stage alone. The first run sees only the files of the first period (every feed's
full delivery); the second adds the
next period's files (the monthly changes). Each prints a JSON line with rows, seconds, peak RSS (this
process and its children, sampled every half second) and the machine's load average at its end (other
work sharing the cores slows it), for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from familycard.pipeline import MEMORY_LIMIT
from familycard.sources.ingest import Ingestion, IngestReport
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

T = TypeVar("T")


def measured(fn: Callable[[], T]) -> tuple[T, float, int]:
    """Run ``fn``; return its result, wall seconds and peak RSS in bytes (with child processes)."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not done.is_set():
            try:
                total = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                total = 0
            peak[0] = max(peak[0], total)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    return result, seconds, peak[0]


def ingest(sources: Path, data: Path, engine: str) -> IngestReport:
    """The ingestion stage alone (``familycard run`` goes on to identity and families)."""
    (data / "tmp").mkdir(parents=True, exist_ok=True)
    with open_engine(engine, temp_dir=data / "tmp", memory_limit=MEMORY_LIMIT) as eng:
        return Ingestion(sources, Warehouse(data), eng).run()


def link_period(nation: Path, sources: Path, period: str) -> int:
    """Link the nation's files of one period into ``sources`` (same layout); returns how many."""
    n = 0
    for f in sorted((nation / "sources").glob(f"*/*_{period}_*")):
        target = sources / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(f.resolve())
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nation", type=Path, required=True, help="output folder of familycard synth")
    ap.add_argument("--data", type=Path, default=Path("/tmp/familycard-ingest-bench"))
    ap.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    args = ap.parse_args(argv)
    manifest = json.loads((args.nation / "sources" / "manifest.json").read_text(encoding="utf-8"))
    periods = sorted({d["period"] for d in manifest["deliveries"]})
    sources = args.data.with_name(args.data.name + "-sources")
    for path in (args.data, sources):
        shutil.rmtree(path, ignore_errors=True)
    for step, period in zip(("full first delivery", "monthly change"), periods[:2], strict=False):
        files = link_period(args.nation, sources, period)
        rows = sum(d["rows"] for d in manifest["deliveries"] if d["period"] == period)
        report, seconds, peak = measured(lambda: ingest(sources, args.data, args.engine))
        print(f"{step}: {files} files", file=sys.stderr)
        print(
            json.dumps(
                {
                    "step": step,
                    "period": period,
                    "engine": args.engine,
                    "files": files,
                    "rows": rows,
                    "rejected_files": len(report.rejected_files),
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak / 2**20),
                    # Other work on the machine slows every step: say how busy it was.
                    "load_avg_1m": round(psutil.getloadavg()[0], 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
