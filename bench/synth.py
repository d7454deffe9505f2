"""Benchmark: generate a synthetic nation and record wall time and peak memory.

Not part of the test suite. Usage:

    .venv/bin/python bench/synth.py --families 6000000 --out /tmp/nation-bench

Before it starts it prints (on stderr) how much disk the run will take and how much is free there, and
stops when it would not fit (``--force`` goes on anyway). At the end it prints one JSON line with
families, persons, rows, seconds, peak RSS (this process and its workers together, sampled every half
second), the CPU seconds of the main process and of its workers, and the output size, suitable for
pasting into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil

from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate

#: Output bytes per family and simulated month, measured (1.57 GiB for 200,000 families over 24 months).
BYTES_PER_FAMILY_MONTH = 352
#: Fragments of chunks under way (two per worker at most) take about the output of one chunk each.
FRAGMENT_FACTOR = 2.2


def disk_estimate(cfg: SynthConfig, workers: int) -> tuple[int, int]:
    """(bytes of the finished output, bytes more at most while chunk fragments wait to be written)."""
    output = cfg.families * cfg.months * BYTES_PER_FAMILY_MONTH
    chunk = min(cfg.chunk_families, cfg.families) * cfg.months * BYTES_PER_FAMILY_MONTH
    return output, int(2 * workers * chunk * FRAGMENT_FACTOR)


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that will hold ``path`` (its nearest existing parent)."""
    p = path.resolve()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--chunk-families", type=int, default=SynthConfig().chunk_families)
    ap.add_argument("--workers", type=int, default=None, help="simulation processes (default: CPU count)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/familycard-bench"))
    ap.add_argument("--force", action="store_true", help="run even if the disk looks too small")
    args = ap.parse_args(argv)
    cfg = SynthConfig(
        families=args.families, seed=args.seed, months=args.months, chunk_families=args.chunk_families
    )
    workers = max(1, min(args.workers or os.cpu_count() or 1, cfg.n_chunks))
    output, fragments = disk_estimate(cfg, workers)
    free = free_bytes(args.out)
    gib = 2**30
    print(
        f"{cfg.families:,} families x {cfg.months} months in {cfg.n_chunks:,} chunks of "
        f"{cfg.chunk_families:,}, {workers} workers -> {args.out}\n"
        f"disk: about {output / gib:.1f} GiB of output, plus up to {fragments / gib:.1f} GiB of chunk "
        f"fragments while running; {free / gib:.1f} GiB free there",
        file=sys.stderr,
        flush=True,
    )
    if output + fragments > free and not args.force:
        print("not enough free disk (use --force to run anyway)", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    last = [t0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            print(f"chunk {done}/{total} at {now - t0:.0f}s", file=sys.stderr, flush=True)
            last[0] = now

    peak = [0]
    cpu: dict[int, float] = {}  # CPU seconds of each worker process, as last seen
    done = threading.Event()

    def sample() -> None:  # peak RSS of this process and its workers, summed; CPU time of the workers
        me = psutil.Process()
        while not done.is_set():
            total = me.memory_info().rss
            for c in me.children(recursive=True):
                try:
                    total += c.memory_info().rss
                    t = c.cpu_times()
                    cpu[c.pid] = t.user + t.system
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = generate(cfg, args.out, progress=progress, workers=workers)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    mine = psutil.Process().cpu_times()
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
                "chunk_families": cfg.chunk_families,
                "workers": workers,
                "seconds": round(seconds, 1),
                "peak_rss_mib_all_processes": round(peak[0] / 2**20),
                # CPU seconds (user + system): the main process, and its workers as last sampled
                "cpu_s_main": round(mine.user + mine.system, 1),
                "cpu_s_workers": round(sum(cpu.values()), 1),
                "output_gib": round(size / 2**30, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
