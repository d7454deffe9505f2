"""The batch pipeline: stages in order over a warehouse, on one engine.

Ingestion (:mod:`familycard.sources.ingest`) → identity (:mod:`familycard.identity.index`) → families
(:mod:`familycard.families.stage`) → assessment: facts, indicators, scores and levels
(:mod:`familycard.scoring.stage`). Each stage writes an immutable snapshot
(:class:`familycard.store.warehouse.Warehouse`); the last one is published when all have finished, so
readers see the previous published snapshot until then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from familycard.families.stage import FamilyReport, run_families
from familycard.identity.index import IdentityReport, run_identity
from familycard.scoring.stage import AssessmentReport, run_assessment
from familycard.sources.catalogue import Catalogue, load_catalogue
from familycard.sources.ingest import Ingestion, IngestReport
from familycard.sources.quality import OPEN_SQL, Quality, compute_quality
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

ENGINES = ("duckdb", "spark")
MEMORY_LIMIT = "8GB"
"""The engine's memory before it spills to ``DATA/tmp`` (DuckDB's own default is 80 % of the machine)."""


@dataclass
class PipelineReport:
    """What one pipeline run did, stage by stage."""

    ingest: IngestReport
    identity: IdentityReport | None = None
    families: FamilyReport | None = None
    assessment: AssessmentReport | None = None
    published: str | None = None

    @property
    def run(self) -> str | None:
        """The run this pipeline published, or None when there was nothing new to do."""
        return self.published

    @property
    def skipped(self) -> int:
        return self.ingest.skipped

    @property
    def deliveries(self) -> list[dict[str, object]]:
        return self.ingest.deliveries

    @property
    def rejected_files(self) -> list[dict[str, object]]:
        return self.ingest.rejected_files

    @property
    def feeds_changed(self) -> list[str]:
        return self.ingest.feeds_changed


def run_pipeline(
    sources: Path,
    data: Path,
    *,
    engine: str = "duckdb",
    catalogue: Catalogue | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    memory_limit: str = MEMORY_LIMIT,
    methodology: str = "v1",
) -> PipelineReport:
    """Ingest every new delivery under ``sources`` into the warehouse at ``data``, then rebuild the person
    index, the families and their assessment (``methodology``: a version id under
    ``methodology/wellbeing`` or a file). Each stage commits a snapshot; when all have finished, the last
    one is
    *published* (the one the web reads), so readers never see sources newer than the persons and families
    built from them."""
    (data / "tmp").mkdir(parents=True, exist_ok=True)
    wh = Warehouse(data)
    with open_engine(engine, temp_dir=data / "tmp", memory_limit=memory_limit) as eng:
        ingest = Ingestion(sources, wh, eng, catalogue=catalogue, progress=progress).run()
        report = PipelineReport(ingest=ingest)
        stale = ingest.run is not None or "family_scores" not in wh.tables()
        if wh.current() is None or (not stale and wh.published() == wh.current()):
            return report
        report.identity = run_identity(wh, eng, catalogue=catalogue, progress=progress)
        report.families = run_families(wh, eng)
        report.assessment = run_assessment(wh, eng, methodology=methodology, progress=progress)
        report.published = wh.publish()
    return report


def quarantine(data: Path, *, feed: str | None = None, include_released: bool = False) -> pa.Table:
    """Quarantine entries of the current snapshot (open ones unless ``include_released``), oldest first."""
    wh = _existing(data)
    with open_engine("duckdb", temp_dir=data / "tmp") as eng:
        eng.register_parquet("findings", wh.table_path("findings"))
        eng.register_parquet("releases", wh.table_path("releases"))
        if include_released:
            sql = """SELECT f.*, r.released_by, r.how FROM findings AS f LEFT JOIN releases AS r
                     ON r.delivery = f.delivery AND r.line = f.line AND r.field = f.field AND r.rule = f.rule
                     WHERE f.severity IN ('reject', 'flag')"""
        else:
            sql = OPEN_SQL
        where = f" WHERE feed = '{feed}'" if feed else ""
        return eng.fetch(f"SELECT * FROM ({sql}) AS q{where} ORDER BY seq, line, field, rule")


def quality(data: Path, *, as_of: dt.date | None = None, catalogue: Catalogue | None = None) -> Quality:
    """Freshness and quality of every feed in the current snapshot (recomputed for ``as_of`` if given)."""
    wh = _existing(data)
    catalogue = catalogue or load_catalogue()
    if as_of is None and "quality" in wh.tables():
        return Quality(wh.read("quality"), wh.read("quality_columns"))
    with open_engine("duckdb", temp_dir=data / "tmp") as eng:
        for spec in catalogue:
            eng.register_parquet(f"src_{spec.name}", wh.table_path(f"src_{spec.name}"))
        eng.register_parquet("findings", wh.table_path("findings"))
        eng.register_parquet("releases", wh.table_path("releases"))
        return compute_quality(eng, catalogue, wh.read("deliveries"), as_of)


def _existing(data: Path) -> Warehouse:
    wh = Warehouse(data)
    if wh.current() is None:
        raise FileNotFoundError(
            f"no warehouse at {data}: run `familycard run --sources DIR --data {data}` first"
        )
    (data / "tmp").mkdir(exist_ok=True)
    return wh
