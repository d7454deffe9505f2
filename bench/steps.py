"""Where a stage's time goes: the tables an engine materialises and the results it fetches, timed.

Shared by the stage benchmarks: :func:`timed` wraps an engine so that every ``materialize`` (by table
name), ``partition`` (as ``<directory> (split by <column>)``) and ``fetch`` (as ``fetch <the first table
the query reads>``) is recorded with its rows and seconds; :func:`summary` sums them by name, in the order
they first ran. What a stage does outside the engine (Python, Splink's own DuckDB) is the stage's time
less the steps'.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from familycard.store.engine import Engine

Step = tuple[str, int, float]


class Spilled:
    """The largest the engine's temporary directory grew while the ``with`` block ran (``peak``, in
    bytes): what it spilled to disk beyond its memory limit, sampled every half second."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Spilled:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _size(self.directory))
            time.sleep(0.5)


def _size(directory: Path) -> int:
    """Bytes of the files directly in ``directory`` (where DuckDB writes its spill files)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:  # a spill file removed while sampled
                    pass
    except OSError:
        return 0
    return total


def timed(engine: Engine, steps: list[Step]) -> None:
    """Record (name, rows, seconds) of every table ``engine`` materialises and every result it fetches."""
    materialize, fetch, partition = engine.materialize, engine.fetch, engine.partition

    def timed_materialize(name: str, query: str, path: Path, *, order_by: Sequence[str] = ()) -> int:
        t = time.perf_counter()
        rows = materialize(name, query, path, order_by=order_by)
        steps.append((name, rows, time.perf_counter() - t))
        return rows

    def timed_fetch(query: str) -> pa.Table:
        t = time.perf_counter()
        table = fetch(query)
        read = re.search(r"\bFROM\s+([A-Za-z_][A-Za-z_0-9]*)", query, flags=re.IGNORECASE)
        steps.append((f"fetch {read.group(1) if read else '?'}", table.num_rows, time.perf_counter() - t))
        return table

    def timed_partition(query: str, path: Path, column: str) -> int:
        t = time.perf_counter()
        rows = partition(query, path, column)
        steps.append((f"{path.name} (split by {column})", rows, time.perf_counter() - t))
        return rows

    engine.materialize = timed_materialize  # type: ignore[method-assign]
    engine.partition = timed_partition  # type: ignore[method-assign]
    engine.fetch = timed_fetch  # type: ignore[method-assign]


def summary(steps: list[Step]) -> dict[str, list[float]]:
    """``{name: [rows, seconds]}`` summed over the steps of each name, in the order names first ran."""
    return {
        name: [sum(r for n, r, _ in steps if n == name), round(sum(t for n, _, t in steps if n == name), 2)]
        for name in dict.fromkeys(name for name, _, _ in steps)
    }
