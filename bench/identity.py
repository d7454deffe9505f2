"""Benchmark: the person index and family building on an ingested warehouse.

Not part of the test suite. Usage (after ``familycard run --sources N/sources --data D``, which also
builds the index; this re-runs the stages on the same snapshot to time them alone):

    .venv/bin/python bench/identity.py --data D [--truth N/truth] [--engine duckdb]

Prints one JSON line per stage with seconds, peak RSS (this process and its children), the engine's
memory limit (``--memory``, the pipeline's by default) and the most it spilled to disk beyond it
(``spilled_peak_mib``: the largest the engine's temporary directory grew), and ``steps``: the rows and
seconds of every table the stage materialises and every result it fetches (``bench/steps.py``; the rest
of a stage's time is Python and Splink's scoring), and with ``--truth`` the linkage and family scores,
for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from familycard.pipeline import MEMORY_LIMIT
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

sys.path.insert(0, str(Path(__file__).parent))
from ingest import measured  # the sibling benchmark's sampler
from steps import Spilled, Step, summary, timed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--truth", type=Path, default=None)
    ap.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    ap.add_argument("--memory", default=MEMORY_LIMIT, help="the engine's memory limit (the pipeline's)")
    args = ap.parse_args(argv)
    wh = Warehouse(args.data)
    tmp = args.data / "tmp"
    # (capped as the pipeline caps it, so that peak memory is the pipeline's)
    with open_engine(args.engine, temp_dir=tmp, memory_limit=args.memory) as eng:
        from familycard.identity.index import run_identity

        steps: list[Step] = []
        timed(eng, steps)
        with Spilled(tmp) as spilled:
            report, seconds, peak = measured(lambda: run_identity(wh, eng))
        print(
            json.dumps(
                {
                    "stage": "identity",
                    "engine": args.engine,
                    "mentions": report.mentions,
                    "persons": report.persons,
                    "review": report.review,
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak / 2**20),
                    "memory_limit": args.memory,
                    "spilled_peak_mib": round(spilled.peak / 2**20),
                    "steps": summary(steps),
                }
            ),
            flush=True,
        )
        from familycard.families.stage import run_families

        steps.clear()
        with Spilled(tmp) as spilled:
            _fam, seconds, peak = measured(lambda: run_families(wh, eng))
        print(
            json.dumps(
                {
                    "stage": "families",
                    "engine": args.engine,
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak / 2**20),
                    "memory_limit": args.memory,
                    "spilled_peak_mib": round(spilled.peak / 2**20),
                    "steps": summary(steps),
                }
            ),
            flush=True,
        )
    if args.truth is not None:
        from familycard.families.evaluate import evaluate as evaluate_families
        from familycard.identity.evaluate import evaluate_identity

        score, seconds, peak = measured(lambda: evaluate_identity(args.data, args.truth))
        print(
            json.dumps(
                {
                    "eval": "identity",
                    "precision": round(score.precision, 5),
                    "recall": round(score.recall, 5),
                    "mentions": score.mentions,
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak / 2**20),
                }
            ),
            flush=True,
        )
        families, seconds, peak = measured(lambda: evaluate_families(wh, args.truth))
        overall = families.group()
        print(
            json.dumps(
                {
                    "eval": "families",
                    "f1": overall["f1"],
                    "exact_share": overall["exact_share"],
                    "head_accuracy": round(families.head_accuracy, 5),
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak / 2**20),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
