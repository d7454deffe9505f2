"""The ingestion stage: agency files in, validated history, quarantine and a delivery ledger out.

For each delivery file not seen before (by checksum) the stage

1. records it in ``deliveries`` (feed, period, kind, file, SHA-256, size, received and due dates, rows read,
   accepted, flagged and rejected, status and message);
2. reads it with the feed's declared format; a broken *file* (wrong encoding or delimiter, missing
   columns, truncated, empty, corrupt Parquet, a checksum other than the delivery note's) is rejected as a
   whole with one clear message, and every other file still loads;
3. validates every row (:mod:`familycard.sources.validate`); issues go to ``findings`` with the feed, file,
   line, field, value, rule and reason (rejected rows with the raw record as delivered);
4. merges the accepted rows into the feed's history ``src_<feed>`` (:mod:`familycard.sources.history`),
   checks references across feeds, and releases quarantined issues that a later delivery corrected.

Row validation runs on Arrow in this process; everything set-based runs as SQL on the chosen engine
(DuckDB or Spark), so both engines produce the same tables. Re-delivering a file that was already
ingested changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from familycard.sources import history
from familycard.sources.catalogue import Catalogue, FeedSpec, load_catalogue
from familycard.sources.formats import FormatError, iter_batches
from familycard.sources.periods import due_date, period_bounds
from familycard.sources.quality import compute_quality
from familycard.sources.validate import ISSUE_SCHEMA, BatchValidator, output_schema
from familycard.store.engine import Engine
from familycard.store.warehouse import Run, Warehouse

DELIVERY_SCHEMA = pa.schema(
    [
        ("delivery", pa.string()),
        ("seq", pa.int64()),
        ("feed", pa.string()),
        ("period", pa.string()),
        ("kind", pa.string()),
        ("file", pa.string()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("received", pa.date32()),
        ("due", pa.date32()),
        ("status", pa.string()),
        ("message", pa.string()),
        ("rows_read", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_flagged", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("run", pa.string()),
    ]
)
FINDING_SCHEMA = pa.schema(
    [
        ("delivery", pa.string()),
        ("seq", pa.int64()),
        ("feed", pa.string()),
        ("file", pa.string()),
        *[(f.name, f.type) for f in ISSUE_SCHEMA],
        ("run", pa.string()),
    ]
)
RELEASE_SCHEMA = pa.schema(
    [
        ("delivery", pa.string()),  # the finding: delivery, line, field, rule
        ("line", pa.int64()),
        ("field", pa.string()),
        ("rule", pa.string()),
        ("released_by", pa.string()),  # the delivery that corrected or superseded it
        ("how", pa.string()),  # corrected | superseded | resolved
        ("run", pa.string()),
    ]
)
_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}
_FILE_RE = re.compile(
    r"^(?P<feed>[a-z0-9_]+)_(?P<period>\d{4}-\d{2})_(?P<kind>full|delta|events)\.(?P<ext>\w+)$"
)
BATCH_ROWS = 200_000
PARALLEL_BYTES = 64 * 2**20  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class DeliveryFile:
    """A file found in the sources directory, with what its name and the delivery note say."""

    feed: str
    period: str
    kind: str
    path: Path
    rel: str
    sha256: str
    size: int
    received: dt.date
    note_sha256: str | None = None


@dataclass
class IngestReport:
    """What one ingestion did (also written to the run's metadata)."""

    run: str | None
    deliveries: list[dict[str, object]] = field(default_factory=list)
    skipped: int = 0
    feeds_changed: list[str] = field(default_factory=list)

    @property
    def rejected_files(self) -> list[dict[str, object]]:
        return [d for d in self.deliveries if d["status"] == "rejected"]


# ----------------------------------------------------------------------------------------- discovery


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _delivery_note(sources: Path) -> dict[str, dict[str, object]]:
    """The optional delivery note (``manifest.json``): file → its entry."""
    path = sources / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(d["file"]): d for d in data.get("deliveries", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(path, f"the delivery note is not valid: {exc}") from None


def discover(sources: Path, catalogue: Catalogue) -> tuple[list[DeliveryFile], list[tuple[str, str]]]:
    """Delivery files under ``sources/<feed>/``, and (path, reason) for files that cannot be deliveries."""
    if not sources.is_dir():
        raise FileNotFoundError(f"no sources directory at {sources}")
    note = _delivery_note(sources)
    found: list[DeliveryFile] = []
    strays: list[tuple[str, str]] = []
    names = set(catalogue.names())
    for sub in sorted(p for p in sources.iterdir() if p.is_dir()):
        if sub.name not in names:
            strays.append((sub.name, f"no feed {sub.name!r} in the source catalogue"))
            continue
        spec = catalogue[sub.name]
        for path in sorted(p for p in sub.iterdir() if p.is_file()):
            rel = path.relative_to(sources).as_posix()
            m = _FILE_RE.match(path.name)
            if path.name.endswith((".part", ".tmp")):
                continue  # a file still being written
            if not m or m["feed"] != spec.name or m["ext"] != spec.format.extension:
                strays.append(
                    (
                        rel,
                        f"file name does not follow {spec.name}_YYYY-MM_full|delta|events."
                        f"{spec.format.extension}",
                    )
                )
                continue
            entry = note.get(rel, {})
            received = entry.get("delivered")
            found.append(
                DeliveryFile(
                    feed=spec.name,
                    period=m["period"],
                    kind=m["kind"],
                    path=path,
                    rel=rel,
                    sha256=sha256_file(path),
                    size=path.stat().st_size,
                    received=dt.date.fromisoformat(str(received))
                    if received
                    else dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date(),
                    note_sha256=str(entry["sha256"]) if "sha256" in entry else None,
                )
            )
    return found, strays


def feed_order(catalogue: Catalogue) -> dict[str, int]:
    """Feeds ordered so that a feed comes after the feeds its references point to."""
    deps = {
        f.name: {c.references.feed for c in f.columns if c.references and c.references.feed != f.name}
        for f in catalogue
    }
    order: list[str] = []
    while len(order) < len(deps):
        ready = sorted(n for n, d in deps.items() if n not in order and d <= set(order))
        if not ready:  # a cycle: fall back to names
            ready = sorted(n for n in deps if n not in order)[:1]
        order.extend(ready)
    return {n: i for i, n in enumerate(order)}


# ------------------------------------------------------------------------------------------ the stage


class Ingestion:
    """One ingestion run over a sources directory into a warehouse, on one engine."""

    def __init__(
        self,
        sources: Path,
        warehouse: Warehouse,
        engine: Engine,
        *,
        catalogue: Catalogue | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.sources = Path(sources)
        self.wh = warehouse
        self.engine = engine
        self.catalogue = catalogue or load_catalogue()
        self.progress = progress or (lambda _what, _done, _total: None)
        self.order = feed_order(self.catalogue)

    # -- previous state
    def _previous(self, table: str) -> pa.Table | None:
        if self.wh.current() is None or table not in self.wh.tables():
            return None
        return self.wh.read(table)

    def run(self) -> IngestReport:
        previous = self._previous("deliveries")
        seen = set()
        next_seq = 1
        if previous is not None and previous.num_rows:
            seen = set(zip(previous["feed"].to_pylist(), previous["sha256"].to_pylist(), strict=True))
            next_seq = max(previous["seq"].to_pylist()) + 1
        found, strays = discover(self.sources, self.catalogue)
        new = [d for d in found if (d.feed, d.sha256) not in seen]
        report = IngestReport(run=None, skipped=len(found) - len(new))
        if previous is not None:
            known_strays = {
                (f, s)
                for f, s in zip(previous["file"].to_pylist(), previous["status"].to_pylist(), strict=True)
            }
            strays = [(p, r) for p, r in strays if (p, "rejected") not in known_strays]
        if not new and not strays:
            return report
        new.sort(key=lambda d: (d.period, self.order[d.feed], d.kind, d.rel))
        run = self.wh.begin()
        report.run = run.id
        staging = self.wh.data / "staging" / run.id
        try:
            deliveries = self._land_all(run, new, strays, next_seq, staging, report)
            self._merge_all(run, deliveries, staging, report)
            meta = {
                "stage": "ingest",
                "engine": self.engine.name,
                "deliveries": report.deliveries,
                "skipped": report.skipped,
                "feeds_changed": report.feeds_changed,
                "catalogue": {f.name: f.version for f in self.catalogue},
            }
            run.commit(meta)
        except BaseException:
            run.abort()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return report

    # -- landing: read, validate, stage
    def _land_all(
        self,
        run: Run,
        new: Sequence[DeliveryFile],
        strays: Sequence[tuple[str, str]],
        next_seq: int,
        staging: Path,
        report: IngestReport,
    ) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        findings: list[pa.Table] = []
        seq = next_seq
        for rel, reason in strays:
            rows.append(
                {
                    **dict.fromkeys(DELIVERY_SCHEMA.names),
                    **dict.fromkeys(
                        ("rows_read", "rows_accepted", "rows_flagged", "rows_rejected", "bytes"), 0
                    ),
                    "delivery": f"stray/{rel}",
                    "seq": seq,
                    "file": rel,
                    "sha256": "",
                    "status": "rejected",
                    "message": reason,
                    "run": run.id,
                }
            )
            seq += 1
        tasks = [
            (
                self.catalogue[d.feed],
                d,
                f"{d.feed}/{d.period}/{d.kind}/{d.sha256[:12]}",
                seq + i,
                staging,
                run.id,
            )
            for i, d in enumerate(new)
        ]
        # Files are independent: large batches are read and validated in one process per core.
        workers = min(os.cpu_count() or 1, len(tasks))
        if workers > 1 and sum(d.size for d in new) >= PARALLEL_BYTES:
            ctx = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                for i, (row, found) in enumerate(pool.map(_land_task, tasks)):
                    self.progress("read", i, len(new))
                    rows.append(row)
                    findings.extend(found)
        else:
            for i, task in enumerate(tasks):
                self.progress("read", i, len(new))
                row, found = _land_task(task)
                rows.append(row)
                findings.extend(found)
        self.progress("read", len(new), len(new))
        table = pa.Table.from_pylist(rows, schema=DELIVERY_SCHEMA)
        pq.write_table(
            table,
            run.append("deliveries")
            if self._has("deliveries")
            else run.new_table("deliveries") / "part-0.parquet",
        )
        self._write_findings(run, findings)
        report.deliveries = [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()} for r in rows
        ]
        return rows

    def _has(self, table: str) -> bool:
        return self.wh.current() is not None and table in self.wh.tables()

    def _write_findings(self, run: Run, tables: Iterable[pa.Table]) -> None:
        tables = [t for t in tables if t.num_rows]
        if not self._has("findings"):
            path = run.new_table("findings") / "part-0.parquet"
            pq.write_table(pa.concat_tables(tables) if tables else FINDING_SCHEMA.empty_table(), path)
        elif tables:
            pq.write_table(pa.concat_tables(tables), run.append("findings"))
        else:
            run.carry("findings")

    # -- merging: history, references, releases
    def _merge_all(
        self, run: Run, deliveries: list[dict[str, object]], staging: Path, report: IngestReport
    ) -> None:
        """Each feed's history, then (one query each, across feeds, so that Spark runs few jobs)
        duplicates, references, releases and quality."""
        eng = self.engine
        loaded = [d for d in deliveries if d["status"] == "loaded"]
        by_feed: dict[str, list[dict[str, object]]] = {}
        for d in loaded:
            by_feed.setdefault(str(d["feed"]), []).append(d)
        files = {str(d["delivery"]): str(d["file"]) for d in loaded}
        feeds = sorted(self.catalogue.names(), key=lambda n: self.order[n])
        changed: list[FeedSpec] = []
        views: list[str] = []
        for i, name in enumerate(feeds):
            self.progress("merge", i, len(feeds))
            spec = self.catalogue[name]
            table = f"src_{name}"
            had = self._has(table)
            if name not in by_feed or not (staging / name).is_dir():
                if had:
                    eng.register_parquet(table, run.carry(table))
                else:
                    eng.materialize(table, _empty_history_sql(spec), run.new_table(table))
                views.append(table)
                continue
            staged, fulls, prev = f"staged_{name}", f"fulls_{name}", f"prev_{name}"
            eng.register_parquet(staged, staging / name)
            full = [d for d in by_feed[name] if d["kind"] == "full" and spec.mode != "events"]
            eng.register_arrow(
                fulls,
                pa.table(
                    {
                        "_seq": pa.array([d["seq"] for d in full], pa.int64()),
                        "_delivery": pa.array([d["delivery"] for d in full], pa.string()),
                        "_period": pa.array([d["period"] for d in full], pa.string()),
                    }
                ),
            )
            if had:
                eng.register_parquet(prev, self.wh.table_path(table))
            sql = history.typed_merge_sql(spec, _types(spec), has_previous=had, views=(prev, staged, fulls))
            eng.materialize(table, sql, run.new_table(table))
            views += [table, staged, fulls] + ([prev] if had else [])
            changed.append(spec)
            report.feeds_changed.append(name)
        self.progress("merge", len(feeds), len(feeds))
        extra = [self._duplicates(changed, files, run.id), self._references(changed, files, run.id)]
        extra = [t for t in extra if t.num_rows]
        if extra:
            pq.write_table(pa.concat_tables(extra), run.append("findings"))
        self._releases(run, {spec.name for spec in changed})
        self._quality(run)
        for view in views:
            eng.drop(view)

    def _duplicates(self, changed: Sequence[FeedSpec], files: dict[str, str], run_id: str) -> pa.Table:
        if not changed:
            return FINDING_SCHEMA.empty_table()
        sql = " UNION ALL ".join(
            f"SELECT '{spec.name}' AS feed, '{spec.key[0]}' AS field, d.* "
            f"FROM ({history.duplicates_sql(spec, _types(spec), f'staged_{spec.name}')}) AS d"
            for spec in changed
        )
        got = self.engine.fetch(sql)
        return _findings_from(got, files, run_id, severity="warn", value=got["_key"])

    def _references(self, changed: Sequence[FeedSpec], files: dict[str, str], run_id: str) -> pa.Table:
        """References across feeds never remove a row (the other feed may simply be late): a value not
        found is flagged for review and released once the referenced record arrives."""
        parts = []
        for spec in changed:
            for col in spec.columns:
                ref = col.references
                if ref is None:
                    continue
                inner = history.references_sql(
                    spec, col.field, f"src_{ref.feed}", ref.field, staged=f"staged_{spec.name}"
                )
                parts.append(
                    f"SELECT '{spec.name}' AS feed, '{col.field}' AS field, 'reference' AS rule, "
                    f"'not found in {ref.feed}.{ref.field}' AS reason, r.* FROM ({inner}) AS r"
                )
        if not parts:
            return FINDING_SCHEMA.empty_table()
        got = self.engine.fetch(" UNION ALL ".join(parts))
        return _findings_from(got, files, run_id, severity="flag", value=got["value"])

    def _releases(self, run: Run, changed: set[str]) -> None:
        """Open quarantine entries that this run's deliveries corrected, superseded or resolved."""
        eng = self.engine
        eng.register_parquet("findings", run.path / "findings")
        eng.register_parquet("deliveries", run.path / "deliveries")
        had_releases = self._has("releases")
        if had_releases:
            eng.register_parquet("releases", self.wh.table_path("releases"))
        else:
            eng.register_arrow("releases", RELEASE_SCHEMA.empty_table())
        # Only this run's deliveries can release anything: a feed that received none has no new version
        # and no re-delivery, and a reference resolves only when its target feed changed.
        parts = []
        for spec in self.catalogue:
            if spec.name in changed:
                parts.append(_release_sql(spec, run.id, f"src_{spec.name}"))
            for col in spec.columns:
                if col.references is not None and col.references.feed in changed:
                    target = f"src_{col.references.feed}"
                    parts.append(_resolved_sql(spec, col.field, col.references.field, run.id, target))
        sql = " UNION ALL ".join(f"SELECT * FROM ({p}) AS p{i}" for i, p in enumerate(parts))
        got = eng.fetch(sql) if parts else RELEASE_SCHEMA.empty_table()
        for view in ("findings", "deliveries", "releases"):
            eng.drop(view)
        got = got.cast(RELEASE_SCHEMA)
        if had_releases:
            if got.num_rows:
                pq.write_table(got, run.append("releases"))
            else:
                run.carry("releases")
        else:
            pq.write_table(got, run.new_table("releases") / "part-0.parquet")

    def _quality(self, run: Run) -> None:
        """Quality and freshness of every feed, judged as of the latest due date among the deliveries."""
        eng = self.engine
        eng.register_parquet("findings", run.path / "findings")
        eng.register_parquet("releases", run.path / "releases")
        q = compute_quality(eng, self.catalogue, pq.read_table(run.path / "deliveries"))
        pq.write_table(q.feeds, run.new_table("quality") / "part-0.parquet")
        pq.write_table(q.columns, run.new_table("quality_columns") / "part-0.parquet")
        eng.drop("findings")
        eng.drop("releases")


def _findings_from(
    got: pa.Table, files: dict[str, str], run_id: str, *, severity: str, value: pa.ChunkedArray
) -> pa.Table:
    n = got.num_rows
    return pa.table(
        {
            "delivery": got["_delivery"].cast(pa.string()),
            "seq": got["_seq"].cast(pa.int64()),
            "feed": got["feed"].cast(pa.string()),
            "file": pa.array([files.get(x) for x in got["_delivery"].to_pylist()], pa.string()),
            "line": got["_line"].cast(pa.int64()),
            "field": got["field"].cast(pa.string()),
            "value": value.cast(pa.string()),
            "rule": got["rule"].cast(pa.string()),
            "severity": pa.array([severity] * n, pa.string()),
            "reason": got["reason"].cast(pa.string()),
            "key": got["_key"].cast(pa.string()),
            "record": pa.nulls(n, pa.string()),
            "run": pa.array([run_id] * n, pa.string()),
        },
        schema=FINDING_SCHEMA,
    )


def land_delivery(
    spec: FeedSpec,
    d: DeliveryFile,
    delivery_id: str,
    seq: int,
    staging: Path,
    findings: list[pa.Table],
    run_id: str,
) -> dict[str, object]:
    """Read, validate and stage one delivery file: its ledger row; issues are appended to ``findings``."""
    base = dict(
        delivery=delivery_id,
        seq=seq,
        feed=d.feed,
        period=d.period,
        kind=d.kind,
        file=d.rel,
        sha256=d.sha256,
        bytes=d.size,
        received=d.received,
        due=due_date(spec, d.period),
        run=run_id,
    )
    counts = dict(rows_read=0, rows_accepted=0, rows_flagged=0, rows_rejected=0)
    reason = None
    # JSON lines and fixed-width files have no header: zero bytes is an empty delivery, not a broken one.
    if d.size == 0 and (spec.format.kind == "parquet" or (spec.format.kind == "csv" and spec.format.header)):
        reason = f"{d.rel}: the file is empty (0 bytes; a {spec.format.kind} delivery has at least a header)"
    elif d.note_sha256 and d.note_sha256 != d.sha256:
        reason = (
            f"{d.rel}: checksum {d.sha256[:12]}… differs from the delivery note's "
            f"{d.note_sha256[:12]}… (truncated or altered in transit)"
        )
    if not reason and spec.format.kind != "parquet":
        with d.path.open("rb") as fh:
            head = fh.read(4096)
        if b"\x00" in head:
            reason = (
                f"{d.rel}: the file holds NUL bytes, so it is not {spec.format.encoding} text "
                "(UTF-16 or a binary file?)"
            )
    if d.kind == "delta" and spec.mode != "delta":
        reason = reason or f"{d.rel}: a {spec.mode} feed cannot deliver a delta"
    if reason:
        return {**base, **counts, "status": "rejected", "message": reason}
    _, period_end = period_bounds(d.period)
    validate = BatchValidator(spec, period_end)
    out_dir = staging / d.feed
    out_dir.mkdir(parents=True, exist_ok=True)
    part = out_dir / f"{seq:09d}.parquet"
    schema = (
        output_schema(spec)
        .append(pa.field("_seq", pa.int64()))
        .append(pa.field("_delivery", pa.string()))
        .append(pa.field("_period", pa.string()))
    )
    first = 2 if spec.format.kind == "csv" and spec.format.header else 1
    own: list[pa.Table] = []
    try:
        with pq.ParquetWriter(part, schema, compression="zstd") as writer:
            for batch in iter_batches(d.path, spec.format, BATCH_ROWS, expected_columns=spec.column_names):
                v = validate(batch, first + counts["rows_read"])
                counts["rows_read"] += v.read
                counts["rows_rejected"] += v.rejected
                counts["rows_flagged"] += v.flagged
                counts["rows_accepted"] += v.rows.num_rows
                n = v.rows.num_rows
                t = v.rows.append_column("_seq", pa.array([seq] * n, pa.int64()))
                t = t.append_column("_delivery", pa.array([delivery_id] * n, pa.string()))
                t = t.append_column("_period", pa.array([d.period] * n, pa.string()))
                writer.write_table(t)
                if v.issues.num_rows:
                    own.append(_finding_table(v.issues, delivery_id, seq, d.feed, d.rel, run_id))
    except FormatError as exc:
        part.unlink(missing_ok=True)
        where = f"line {exc.line}" if exc.line else ""
        where += (", " if where else "") + f"field {exc.field!r}" if exc.field else ""
        msg = _shorten(f"{d.rel}{': ' + where if where else ''}: {exc.reason}")
        return {
            **base,
            **dict.fromkeys(counts, 0),
            "rows_read": counts["rows_read"],
            "status": "rejected",
            "message": msg,
        }
    findings.extend(own)
    return {**base, **counts, "status": "loaded", "message": None}


def _land_task(
    task: tuple[FeedSpec, DeliveryFile, str, int, Path, str],
) -> tuple[dict[str, object], list[pa.Table]]:
    """:func:`land_delivery` for a process pool: arguments in, ledger row and findings out."""
    spec, d, delivery_id, seq, staging, run_id = task
    found: list[pa.Table] = []
    row = land_delivery(spec, d, delivery_id, seq, staging, found, run_id)
    return row, found


def _types(spec: FeedSpec) -> dict[str, str]:
    """SQL type of each validated field of a feed."""
    return {f.name: _SQL_TYPES[f.type] for f in output_schema(spec)}


def _shorten(text: str, limit: int = 300) -> str:
    """A message short enough for a ledger row and a terminal line."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finding_table(issues: pa.Table, delivery: str, seq: int, feed: str, file: str, run: str) -> pa.Table:
    n = issues.num_rows
    cols = {
        "delivery": pa.array([delivery] * n, pa.string()),
        "seq": pa.array([seq] * n, pa.int64()),
        "feed": pa.array([feed] * n, pa.string()),
        "file": pa.array([file] * n, pa.string()),
        **{name: issues[name] for name in ISSUE_SCHEMA.names},
        "run": pa.array([run] * n, pa.string()),
    }
    return pa.table(cols, schema=FINDING_SCHEMA)


def _empty_history_sql(spec: FeedSpec) -> str:
    fields = [f for f in output_schema(spec) if f.name not in ("_line", "_flagged", spec.op_field)]
    cols = [f"CAST(NULL AS {_SQL_TYPES[f.type]}) AS {history.q(f.name)}" for f in fields]
    meta = [
        "CAST(NULL AS VARCHAR) AS _key",
        "CAST(NULL AS VARCHAR) AS _op",
        "CAST(NULL AS BOOLEAN) AS _deleted",
        "CAST(NULL AS BIGINT) AS _seq",
        "CAST(NULL AS VARCHAR) AS _delivery",
        "CAST(NULL AS VARCHAR) AS _period",
        "CAST(NULL AS BIGINT) AS _line",
        "CAST(NULL AS BOOLEAN) AS _flagged",
        "CAST(NULL AS BIGINT) AS _valid_to_seq",
        "CAST(NULL AS VARCHAR) AS _valid_to_period",
    ]
    return f"SELECT {', '.join(cols + meta)} WHERE 1 = 0"


def _release_sql(spec: FeedSpec, run_id: str, hist: str) -> str:
    """Releases for one feed's open entries: ``corrected`` by a later accepted version of the record
    (with a value in the flagged field), ``resolved`` when a referenced value now exists, and
    ``superseded`` when the same period's delivery was sent again."""
    q = history.q
    fields = history.stored_fields(spec)
    has_value = " ".join(f"WHEN '{f}' THEN h.{q(f)} IS NOT NULL" for f in fields)
    has_value = f"CASE f.field {has_value} ELSE TRUE END" if fields else "TRUE"
    return f"""
        WITH open_f AS (
            SELECT f.* FROM findings AS f
            LEFT JOIN releases AS r
              ON r.delivery = f.delivery AND r.line = f.line AND r.field = f.field AND r.rule = f.rule
            WHERE f.feed = '{spec.name}' AND f.severity IN ('reject', 'flag') AND r.delivery IS NULL
        ),
        corrected AS (
            SELECT f.delivery, f.line, f.field, f.rule, MIN(h._seq) AS by_seq
            FROM open_f AS f JOIN {hist} AS h ON h._key = f.key AND h._seq > f.seq AND NOT h._deleted
            WHERE f.rule <> 'reference' AND (f.severity = 'reject' OR ({has_value}))
            GROUP BY f.delivery, f.line, f.field, f.rule
        ),
        superseded AS (
            SELECT f.delivery, f.line, f.field, f.rule, MIN(d2.seq) AS by_seq
            FROM open_f AS f
            JOIN deliveries AS d1 ON d1.delivery = f.delivery
            JOIN deliveries AS d2 ON d2.feed = d1.feed AND d2.period = d1.period AND d2.kind = d1.kind
                 AND d2.seq > d1.seq AND d2.status = 'loaded'
            GROUP BY f.delivery, f.line, f.field, f.rule
        ),
        chosen AS (
            SELECT c.delivery, c.line, c.field, c.rule, c.by_seq, 'corrected' AS how FROM corrected AS c
            UNION ALL
            SELECT s.delivery, s.line, s.field, s.rule, s.by_seq, 'superseded' AS how FROM superseded AS s
            LEFT JOIN corrected AS c ON c.delivery = s.delivery AND c.line = s.line AND c.field = s.field
                 AND c.rule = s.rule
            WHERE c.delivery IS NULL
        )
        SELECT ch.delivery, ch.line, ch.field, ch.rule, d.delivery AS released_by, ch.how,
            '{run_id}' AS run
        FROM chosen AS ch JOIN deliveries AS d ON d.seq = ch.by_seq
    """


def _resolved_sql(spec: FeedSpec, field_name: str, target_field: str, run_id: str, target: str) -> str:
    """Open reference issues on ``field_name`` whose value has since arrived in the referenced feed."""
    q = history.q
    return f"""
        WITH open_f AS (
            SELECT f.* FROM findings AS f
            LEFT JOIN releases AS r
              ON r.delivery = f.delivery AND r.line = f.line AND r.field = f.field AND r.rule = f.rule
            WHERE f.feed = '{spec.name}' AND f.rule = 'reference' AND f.field = '{field_name}'
              AND r.delivery IS NULL
        ),
        arrived AS (
            SELECT {q(target_field)} AS v, MIN(_seq) AS by_seq FROM {target}
            WHERE {q(target_field)} IS NOT NULL GROUP BY {q(target_field)}
        )
        SELECT f.delivery, f.line, f.field, f.rule, d.delivery AS released_by, 'resolved' AS how,
            '{run_id}' AS run
        FROM open_f AS f JOIN arrived AS a ON a.v = f.value JOIN deliveries AS d ON d.seq = a.by_seq
    """
