"""Benchmark: generate a synthetic nation and record wall time and peak memory.

Not part of the test suite. Usage:

    .venv/bin/python bench/synth.py --families 6000000 --out /tmp/nation-bench

Prints one JSON line with families, persons, rows, seconds and peak RSS (this process and its
workers together, sampled every half second), suitable for pasting into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import psutil

from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--families", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--chunk-families", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=None, help="simulation processes (default: CPU count)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/familycard-bench"))
    args = ap.parse_args(argv)
    cfg = SynthConfig(
        families=args.families, seed=args.seed, months=args.months, chunk_families=args.chunk_families
    )
    t0 = time.perf_counter()
    last = [t0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            print(f"chunk {done}/{total} at {now - t0:.0f}s", file=sys.stderr, flush=True)
            last[0] = now

    peak = [0]
    done = threading.Event()

    def sample() -> None:  # peak RSS of this process and its workers, summed
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
    kwargs = {} if args.workers is None else {"workers": args.workers}
    summary = generate(cfg, args.out, progress=progress, **kwargs)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(
        json.dumps(
            {
                "families": cfg.families,
                "families_ever": summary.families,
                "persons": summary.persons,
                "rows": sum(summary.rows_by_feed.values()),
                "deliveries": summary.deliveries,
                "months": cfg.months,
                "seconds": round(seconds, 1),
                "peak_rss_mib_all_processes": round(peak[0] / 2**20),
                "output_gib": round(size / 2**30, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
