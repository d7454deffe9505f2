"""Shared fixtures: an open warehouse engine of each kind, and one small nation run through the whole
pipeline on each engine.

Tests that take ``engine`` run once on DuckDB and once on Spark (marked ``spark``). The Spark session
is started once per test process and shared; each test gets its own engine (its own views) and a
fresh temporary directory. A machine without Java fails the Spark runs with a message saying so.

Every test that runs Spark is in the xdist group ``spark`` (``SPARK_GROUP``; ``./run test`` runs
pytest with ``--dist loadgroup``), so one worker starts the JVM and runs them all, and the Spark
pipeline below runs once per test session, not once per stage's parity test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from familycard.pipeline import PipelineReport, run_pipeline
from familycard.store.engine import Engine, open_engine
from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate

SPARK_GROUP = pytest.mark.xdist_group("spark")
"""Every test that starts Spark: one worker runs them all (one JVM, one shared pipeline run)."""

ENGINES = ["duckdb", pytest.param("spark", marks=[pytest.mark.spark, SPARK_GROUP])]

# The JVM of the tests' Spark runs many small, short queries: most of its CPU goes to the optimising
# JIT compiler (C2), whose code those queries never run long enough to repay. The quick compiler alone
# gives the same results for less CPU; serial GC spares the two cores a set of GC threads.
_JVM_TEST_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
if "TieredStopAtLevel" not in os.environ.get("JAVA_TOOL_OPTIONS", ""):
    os.environ["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {_JVM_TEST_OPTIONS}".strip()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` group by ``xdist_group`` on pytest 9.2, as it does on earlier ones.

    An xdist worker tells the scheduler an item's group by appending ``@group`` to its node id; pytest
    9.2 keeps node ids in ``Item._id``, so xdist 3.8's assignment to ``Item._nodeid`` no longer takes
    effect and every group is silently spread over the workers (pytest-dev/pytest-xdist#1386, fix
    proposed in #1388). This does the same on the structured id, only where xdist's own did not."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        suffix = "@" + "_".join(names)
        if not names or item.nodeid.endswith(suffix):
            continue
        try:
            from _pytest.nodeid import NodeId
        except ImportError:  # an older pytest: xdist's own suffix works there
            continue
        item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]


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


# ----------------------------------------------------------------- one nation, the whole pipeline

PIPELINE_NATION = SynthConfig(families=800, seed=21, months=13)
"""A small nation (800 families, 13 months: every methodology window is filled) run through the whole
pipeline: the assessment tests read its DuckDB run, and the parity tests of every stage (ingestion,
identity, families, assessment) compare its Spark run with it."""


@pytest.fixture(scope="session")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``PIPELINE_NATION`` (the nation folder) run through the whole pipeline on DuckDB (the data)."""
    root = tmp_path_factory.mktemp("assessed")
    generate(PIPELINE_NATION, root / "nation", workers=1)
    report = run_pipeline(root / "nation" / "sources", root / "data")
    assert report.assessment is not None
    return root / "nation", root / "data"


@dataclass(frozen=True)
class SparkRun:
    """The same nation's sources run through the whole pipeline on Spark, from scratch, in one run."""

    data: Path
    report: PipelineReport


@pytest.fixture(scope="session")
def spark_pipeline(assessed: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> SparkRun:
    """Ingestion of every delivery, identity, families and assessment on Spark: each stage's parity test
    compares its own tables with the DuckDB run (``assessed``). Only tests in ``SPARK_GROUP`` may take
    it (one worker runs them all, so the pipeline runs once)."""
    nation, _ = assessed
    data = tmp_path_factory.mktemp("spark-pipeline") / "data"
    report = run_pipeline(nation / "sources", data, engine="spark")
    return SparkRun(data, report)
