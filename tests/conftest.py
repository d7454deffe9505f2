"""Shared fixtures: an open warehouse engine of each kind.

Tests that take ``engine`` run once on DuckDB and once on Spark (marked ``spark``). The Spark session
is started once per test process and shared; each test gets its own engine (its own views) and a
fresh temporary directory. A machine without Java fails the Spark runs with a message saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from familycard.store.engine import Engine, open_engine

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="session")
def spark_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch space of the process's Spark session (it outlives any one test's directory)."""
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path, spark_dir: Path) -> Iterator[Engine]:
    """An open engine of each kind, with a per-test temporary directory."""
    kind: str = request.param
    opened = open_engine(kind, temp_dir=spark_dir if kind == "spark" else tmp_path / "engine", threads=2)
    try:
        yield opened
    finally:
        opened.close()
