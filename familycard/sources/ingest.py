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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from familycard.sources import history
from familycard.sources.catalogue import Catalogue, FeedSpec, load_catalogue, references_by_target
from familycard.sources.formats import FormatError, iter_batches
from familycard.sources.periods import due_date, period_bounds
from familycard.sources.quality import (
    OPEN_SQL,
    PROBED_SCHEMA,
    REFERENCE_SCHEMA,
    UNFOUND_SCHEMA,
    FeedChange,
    compute_quality,
    fresh_counts,
    kept_unfound_sql,
    ordered_counts_sql,
    parquet_counts,
    previous_counts,
    updated_counts,
)
from familycard.sources.recurring import RecurringKeys
from familycard.sources.validate import ISSUE_SCHEMA, BatchValidator, output_schema
from familycard.store.engine import PARQUET_COMPRESSION, SUPERSEDED, Engine, superseded_dir
from familycard.store.warehouse import Run, Warehouse, link_file

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
MAX_OPEN_PARTS = 8  # a feed's history is compacted into one open part when it has this many
MAX_SUPERSEDED_SHARE = 0.2
"""A feed's open parts are rewritten (compacted) when the current versions closed without rewriting them
(its superseded list) would exceed this share of their rows: readers skip superseded rows at a cost."""
PARALLEL_BYTES = 64 * 2**20  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class DeliveryFile:
    """A file found in the sources directory, with what its name and the delivery note say. ``sha256``
    is empty until the file is read (a file the checksum cache does not know is hashed by the process
    that reads it)."""

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


@dataclass
class _FeedMerge:
    """One feed's history merge in a run: its deliveries, views and scratch directory, and the part
    files of its history so far (closed ones, kept as they are; open ones, kept or rewritten; the list of
    open versions closed since the open parts were written)."""

    spec: FeedSpec
    deliveries: list[dict[str, object]]
    work: Path
    has_fulls: bool = False
    prev_closed: list[Path] = field(default_factory=list)
    prev_open: list[Path] = field(default_factory=list)
    prev_superseded: list[Path] = field(default_factory=list)
    open_rows: int = 0  # rows of the open parts, superseded ones included
    superseded_rows: int = 0
    changes: int = 0  # rows of this run's changes (a feed with a history)
    # One delivery implying no deletions: its staged rows become an open part as they are, and only the
    # keys it touches are compared.
    direct: bool = False
    staged_dir: Path | None = None  # where the reading processes staged the feed's rows
    # A first history kept as staged: quality's counts over every staged row (from the files' footers).
    staged_counts: dict[str, int] | None = None
    views: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def table(self) -> str:
        return f"src_{self.spec.name}"

    @property
    def staged(self) -> str:
        return f"staged_{self.spec.name}"

    @property
    def multi(self) -> str:
        return f"multi_{self.spec.name}"

    @property
    def multi_rows(self) -> str:
        """The staged rows of the keys in :attr:`multi` (materialised: read by the versions, the
        superseded list and the duplicates, instead of the staged rows three times)."""
        return f"multi_rows_{self.spec.name}"

    @property
    def prev(self) -> str:
        return f"prev_{self.spec.name}"

    @property
    def touched(self) -> str:
        return f"touched_{self.spec.name}"

    @property
    def fulls(self) -> str | None:
        """The view of this run's deliveries that imply deletions, if there are any."""
        return f"fulls_{self.spec.name}" if self.has_fulls else None

    @property
    def last_seq(self) -> int:
        """This run's last delivery of the feed."""
        return max(int(str(d["seq"])) for d in self.deliveries)

    @property
    def first_seq(self) -> int:
        """This run's first delivery of the feed: every version before it was in the history already."""
        return min(int(str(d["seq"])) for d in self.deliveries)

    def view(self, what: str) -> str:
        return f"{what}_{self.spec.name}"

    def dir(self, what: str) -> Path:
        """A scratch directory (not yet created) for one table of the merge."""
        self.work.mkdir(parents=True, exist_ok=True)
        return self.work / what

    def typed(self, sql: str) -> str:
        """``sql`` with the feed's type placeholders filled."""
        return history.with_types(sql, self.spec, _types(self.spec))


# ----------------------------------------------------------------------------------------- discovery


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


class ChecksumCache:
    """SHA-256 of delivery files, remembered between runs in a small JSON file.

    Every run lists every file of the sources directory, and all but the newest were ingested before:
    reading them all again to recompute their checksums would cost more than a monthly change itself
    (tens of GiB nationally). A file is read again whenever its size, modification time (in
    nanoseconds) or inode differ from what was remembered, as ``rsync`` and ``make`` judge a file
    unchanged; the checksum still decides whether a file is new. A missing or unreadable cache file only
    means every file is read.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: dict[str, list[object]] = {}
        self._seen: dict[str, list[object]] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._known = {str(k): list(v) for k, v in data.items()} if isinstance(data, dict) else {}
            except (ValueError, TypeError):
                self._known = {}

    def sha256(self, path: Path) -> str:
        """The file's SHA-256, from the cache when the file looks unchanged."""
        digest = self.known(path)
        if digest is None:
            digest = sha256_file(path)
            self.record(path, digest)
        return digest

    def known(self, path: Path) -> str | None:
        """The file's SHA-256 if the cache holds it and the file looks unchanged (else None)."""
        st = path.stat()
        key = str(path.resolve())
        known = self._known.get(key)
        stamp: list[object] = [st.st_size, st.st_mtime_ns, st.st_ino]
        if known is not None and known[:3] == stamp and isinstance(known[3], str):
            self._seen[key] = known
            return known[3]
        return None

    def record(self, path: Path, digest: str) -> None:
        """Remember a checksum computed elsewhere (e.g. by the process that read the file)."""
        st = path.stat()
        self._seen[str(path.resolve())] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]

    def save(self) -> None:
        """Remember the files seen in this run (written atomically; files no longer listed are forgotten)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._seen, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


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


def discover(
    sources: Path, catalogue: Catalogue, checksums: ChecksumCache | None = None, *, hash_unknown: bool = True
) -> tuple[list[DeliveryFile], list[tuple[str, str]]]:
    """Delivery files under ``sources/<feed>/``, and (path, reason) for files that cannot be deliveries;
    ``checksums`` remembers the checksums of files seen before. Without ``hash_unknown``, a file the
    cache does not know keeps an empty checksum (for the process that reads it to compute)."""
    if not sources.is_dir():
        raise FileNotFoundError(f"no sources directory at {sources}")
    note = _delivery_note(sources)

    def digest(path: Path) -> str:
        if hash_unknown:
            return checksums.sha256(path) if checksums else sha256_file(path)
        return (checksums.known(path) if checksums else None) or ""

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
                    sha256=digest(path),
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
        checksums = ChecksumCache(self.wh.data / "cache" / "sha256.json")
        # Files the checksum cache does not know are hashed by the processes that read them, just before
        # reading them (one pass over the disk instead of two), and skipped there if seen before.
        found, strays = discover(self.sources, self.catalogue, checksums, hash_unknown=False)
        new = [d for d in found if not d.sha256 or (d.feed, d.sha256) not in seen]
        report = IngestReport(run=None, skipped=len(found) - len(new))
        if previous is not None:
            known_strays = {
                (f, s)
                for f, s in zip(previous["file"].to_pylist(), previous["status"].to_pylist(), strict=True)
            }
            strays = [(p, r) for p, r in strays if (p, "rejected") not in known_strays]
        if not new and not strays:
            checksums.save()
            return report
        new.sort(key=lambda d: (d.period, self.order[d.feed], d.kind, d.rel))
        run = self.wh.begin()
        report.run = run.id
        staging = self.wh.data / "staging" / run.id
        try:
            deliveries = self._land_all(run, new, strays, next_seq, staging, report, seen, checksums)
            checksums.save()
            if not deliveries:  # every file was a delivery seen before (under another name or time)
                run.abort()
                report.run = None
                return report
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
        seen: set[tuple[str, str]],
        checksums: ChecksumCache,
    ) -> list[dict[str, object]]:
        """Read, validate and stage the new files; their ledger rows (none for a file that proves to be
        a delivery seen before, whose sequence number is then left unused)."""
        rows: list[dict[str, object]] = []
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
                frozenset(sha for feed, sha in seen if feed == d.feed) if not d.sha256 else frozenset(),
                seq + i,
                staging,
                run.id,
            )
            for i, d in enumerate(new)
        ]

        def take(i: int, result: tuple[str, dict[str, object] | None]) -> None:
            digest, row = result
            if not new[i].sha256:
                checksums.record(new[i].path, digest)
            if row is None:
                report.skipped += 1
                return
            rows.append(row)

        # Files are independent: large batches are read and validated in one process per core, the
        # largest files first (so that no large file starts last and leaves the other cores idle); the
        # results are taken in delivery order.
        workers = min(os.cpu_count() or 1, len(tasks))
        if workers > 1 and sum(d.size for d in new) >= PARALLEL_BYTES:
            ctx = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                largest = sorted(range(len(tasks)), key=lambda i: -new[i].size)
                futures = {i: pool.submit(_land_task, tasks[i]) for i in largest}
                for i in range(len(tasks)):
                    self.progress("read", i, len(new))
                    take(i, futures[i].result())
        else:
            for i, task in enumerate(tasks):
                self.progress("read", i, len(new))
                take(i, _land_task(task))
        self.progress("read", len(new), len(new))
        if not rows:
            return []
        table = pa.Table.from_pylist(rows, schema=DELIVERY_SCHEMA)
        pq.write_table(
            table,
            run.append("deliveries")
            if self._has("deliveries")
            else run.new_table("deliveries") / "part-0.parquet",
        )
        self._write_findings(run, findings_dir(staging))
        report.deliveries = [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()} for r in rows
        ]
        return rows

    def _has(self, table: str) -> bool:
        return self.wh.current() is not None and table in self.wh.tables()

    def _write_findings(self, run: Run, written: Path) -> None:
        """The issues the reading processes wrote (one file per delivery, in ``written``) become part
        files of the findings table, in delivery order, as they are."""
        if self._has("findings"):
            run.carry("findings")
        else:
            run.new_table("findings")
            if not any(written.glob("*.parquet")):
                pq.write_table(FINDING_SCHEMA.empty_table(), run.append("findings"))
        if written.is_dir():
            run.adopt("findings", written, "part")

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
        merges: list[_FeedMerge] = []
        views: list[str] = []
        carried = False  # a feed this run did not change has a history
        for i, name in enumerate(feeds):
            self.progress("merge", i, len(feeds))
            spec = self.catalogue[name]
            table = f"src_{name}"
            if name in by_feed and (staging / name).is_dir():
                merges.append(self._prepare(spec, by_feed[name], staging))
            elif self._has(table):
                eng.register_parquet(table, run.carry(table))
                views.append(table)
                carried = True
            else:
                eng.materialize(table, _empty_history_sql(spec), run.new_table(table))
                views.append(table)
        multi = self._register_multi(merges, staging)
        for m in merges:
            if m.prev_open:
                sql = history.change_sql(m.spec, staged=m.staged, prev=m.prev, fulls=m.fulls)
                if m.direct:
                    touched = history.touched_keys_sql(m.staged, m.multi, m.prev)
                    m.views.append(m.touched)
                    if eng.materialize(m.touched, touched, m.dir("touched")):
                        # Keys that recur in the delivery but that the history does not hold (repeated
                        # events, most often) need no current version: the history is not read.
                        held = eng.fetch(f"SELECT COUNT(*) AS n FROM {m.touched} WHERE _held = 1")
                        prev = m.prev if held["n"][0].as_py() else f"(SELECT * FROM {m.prev} WHERE FALSE)"
                        sql = history.change_sql(
                            m.spec, staged=history.of_keys(m.staged, m.touched), prev=prev, fulls=m.fulls
                        )
                    else:  # all new records (an events feed): nothing to compare
                        sql = f"SELECT {history.history_columns(m.spec)} FROM {m.staged} WHERE FALSE"
                m.changes = eng.materialize(m.view("changes"), m.typed(sql), m.dir("changes"))
            else:
                self._write_first(run, m, multi[m.name], staging)
        counts = self._change_counts([m for m in merges if m.prev_open])
        deltas: dict[str, FeedChange] = {}
        for m in merges:
            if m.prev_open:
                self._write_change(run, m, *counts[m.name])
            deltas[m.name] = FeedChange(self._delta(m), m.first_seq)
            eng.register_parquet(m.table, run.path / m.table)
            views += [m.table, *m.views]
            report.feeds_changed.append(m.name)
        self.progress("merge", len(feeds), len(feeds))
        changed = [m.spec for m in merges]
        # Every current record came with this run (its first): the references check saw them all.
        all_new = not carried and not any(m.prev_open for m in merges)
        extra = [self._duplicates(changed, files, run.id), self._references(changed, files, run.id, staging)]
        extra = [t for t in extra if t.num_rows]
        if extra:
            pq.write_table(pa.concat_tables(extra), run.append("findings"))
        self._releases(run, {m.name: (m.first_seq, m.last_seq) for m in merges}, staging)
        self._quality(run, deltas, all_new, *self._first_counts(merges, all_new))
        for view in views:
            eng.drop(view)

    def _prepare(self, spec: FeedSpec, delivered: list[dict[str, object]], staging: Path) -> _FeedMerge:
        """Register a feed's staged rows, the deliveries that imply deletions and (hard-linked into a
        scratch directory, so that a view sees them alone) the open part files of its history so far."""
        eng = self.engine
        m = _FeedMerge(spec, delivered, staging / "_merge" / spec.name)
        eng.register_parquet(m.staged, staging / spec.name)
        m.views.append(m.staged)
        full = [d for d in delivered if d["kind"] == "full" and spec.mode != "events"]
        if full:
            eng.register_arrow(
                f"fulls_{spec.name}",
                pa.table(
                    {
                        "_seq": pa.array([d["seq"] for d in full], pa.int64()),
                        "_delivery": pa.array([d["delivery"] for d in full], pa.string()),
                        "_period": pa.array([d["period"] for d in full], pa.string()),
                    }
                ),
            )
            m.has_fulls = True
            m.views.append(f"fulls_{spec.name}")
        parts = self.wh.parts(m.table) if self._has(m.table) else []
        if sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == 0:
            return m  # no history yet (or an empty one): nothing to compare with, nothing to keep
        m.prev_closed = [p for p in parts if history.is_closed_part(p.name)]
        m.prev_open = [p for p in parts if not history.is_closed_part(p.name)]
        sup = superseded_dir(self.wh.table_path(m.table))
        m.prev_superseded = sorted(sup.glob("*.parquet")) if sup is not None else []
        m.open_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in m.prev_open)
        m.superseded_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in m.prev_superseded)
        prev = m.dir("prev")
        (prev / SUPERSEDED).mkdir(parents=True)
        for p in m.prev_open:
            link_file(p, prev / p.name)
        for p in m.prev_superseded:  # (so that the view leaves out what they list)
            link_file(p, prev / SUPERSEDED / p.name)
        eng.register_parquet(m.prev, prev)
        m.views.append(m.prev)
        # One delivery that implies no deletions: its new keys need no comparing, and its staged file
        # becomes an open part as it is (open parts of the older layout are rewritten the old way).
        m.direct = (
            len(delivered) == 1
            and m.fulls is None
            and all(p.name.startswith(history.OPEN_PART + "-") for p in m.prev_open)
        )
        m.staged_dir = staging / spec.name
        return m

    def _delta(self, m: _FeedMerge) -> str:
        """The view of what a run changed in a feed, for quality (:class:`FeedChange`): its changes, with
        the staged rows that are current as they are (a direct merge); a new history: the history."""
        if not m.prev_open:
            return m.table
        if not m.direct:
            return m.view("changes")
        untouched = history.of_keys(m.staged, m.touched, among=False)
        sql = (
            f"SELECT {history.history_columns(m.spec)} FROM {m.view('changes')} UNION ALL "
            f"SELECT {history.history_columns(m.spec, 's')} FROM {untouched}"
        )
        self.engine.register_query(m.view("delta"), sql)
        m.views.append(m.view("delta"))
        return m.view("delta")

    def _register_multi(self, merges: Sequence[_FeedMerge], staging: Path) -> dict[str, int]:
        """Register ``multi_<feed>``: the keys that occur more than once in a delivery or that a row
        deletes (as the reading processes found them: :func:`multi_dir`), and ``multi_rows_<feed>``:
        their staged rows. Returns how many keys per feed."""
        counts: dict[str, int] = {}
        for m in merges:
            found = [delivery_file(multi_dir(staging), int(str(d["seq"]))) for d in m.deliveries]
            parts = [pq.read_table(f)["_key"] for f in found if f.is_file()]
            unique = pc.unique(pa.chunked_array(parts, pa.string())) if parts else pa.array([], pa.string())
            keys = pa.table({"_key": unique})
            self.engine.register_arrow(m.multi, keys)
            m.views.append(m.multi)
            counts[m.name] = keys.num_rows
            rows = history.of_keys(m.staged, m.multi) if keys.num_rows else f"{m.staged} WHERE FALSE"
            self.engine.materialize(m.multi_rows, f"SELECT * FROM {rows}", m.dir("multi_rows"))
            m.views.append(m.multi_rows)
        return counts

    def _write_first(self, run: Run, m: _FeedMerge, n_multi: int, staging: Path) -> None:
        """A feed's first history. From one delivery, its staged rows become the open part as they are;
        only the keys that recur in it (and deletions) are ordered into versions: the closed ones make
        a closed part, and the rows that are not current go on the superseded list. From several
        deliveries, every key is ordered and both parts are written."""
        eng = self.engine
        if len(m.deliveries) > 1:
            for closed, part in ((True, history.CLOSED_PART), (False, history.OPEN_PART)):
                sql = history.first_history_sql(m.spec, staged=m.staged, fulls=m.fulls, closed=closed)
                if eng.materialize(m.view(part), m.typed(sql), m.dir(part)) or not closed:
                    run.adopt(m.table, m.dir(part), part)
                m.views.append(m.view(part))
            return
        m.staged_counts = parquet_counts(m.spec, sorted((staging / m.name).glob("*.parquet")))
        run.adopt(m.table, staging / m.name, history.OPEN_PART)
        if not n_multi:
            return
        versions = m.view("versions")
        sql = history.first_versions_sql(m.spec, staged=m.multi_rows, multi=m.multi, fulls=m.fulls)
        eng.materialize(versions, m.typed(sql), m.dir("versions"))
        m.views.append(versions)
        sql = f"SELECT * FROM {versions} WHERE _valid_to_seq IS NOT NULL"
        if eng.materialize(m.view("closed"), sql, m.dir("closed")):
            run.adopt(m.table, m.dir("closed"), history.CLOSED_PART)
        m.views.append(m.view("closed"))
        sql = history.not_current_sql(m.multi_rows, m.multi, versions)
        if eng.materialize(m.view("superseded"), sql, m.dir("superseded")):
            run.adopt(m.table, m.dir("superseded"), "superseded", into=SUPERSEDED)
        m.views.append(m.view("superseded"))

    def _first_counts(
        self, merges: Sequence[_FeedMerge], all_new: bool
    ) -> tuple[dict[str, dict[str, int]], str | None]:
        """Quality's counts of the feeds whose first history this run kept as staged, without reading
        their rows: those of every staged row (the files' footers), corrected by the keys whose versions
        were ordered (one query for every feed). When every current record came with this run and every
        feed it changed was kept so, also the query of the values not found (from ``probed`` alone)."""
        kept = [m for m in merges if m.staged_counts is not None]
        ordered = [m for m in kept if m.view("versions") in m.views]
        known = {m.name: dict(m.staged_counts or {}) for m in kept}
        if ordered:
            parts = [ordered_counts_sql(m.spec, m.multi_rows, m.view("versions")) for m in ordered]
            sql = "SELECT * FROM " + " CROSS JOIN ".join(f"({p}) AS t{i}" for i, p in enumerate(parts))
            for name, delta in self.engine.fetch(sql).to_pylist()[0].items():
                known[name.split("__")[0]][name] += int(delta or 0)
        if not all_new or len(kept) < len(merges):
            return known, None
        names = {m.name for m in ordered}
        feeds = {
            m.name: ((m.multi, m.view("versions")) if m.name in names else None)
            for m in kept
            if any(c.references is not None for c in m.spec.columns)
        }
        return known, kept_unfound_sql("probed", feeds)

    def _change_counts(self, merges: Sequence[_FeedMerge]) -> dict[str, tuple[int, int]]:
        """Per feed: how many current versions this run closes, and how many closed versions it adds."""
        if not merges:
            return {}
        sql = " UNION ALL ".join(
            history.change_counts_sql(m.spec, m.view("changes"), m.first_seq) for m in merges
        )
        got = self.engine.fetch(sql).to_pylist()
        return {str(r["feed"]): (int(r["closes"] or 0), int(r["closed"] or 0)) for r in got}

    def _write_change(self, run: Run, m: _FeedMerge, closes: int, closed: int) -> None:
        """Write what a run changes in a feed's history: closed parts are kept as they are and this run's
        closed versions are appended as a new one; the open parts are kept, this run's new current
        versions added as a new one, and the current versions it closes added to the superseded list
        (readers leave them out of the open parts). The open parts are rewritten into one, without the
        versions closed, and the list emptied, when they have grown too many or the list too long (or
        an open part of the older layout, which holds closed versions too, has a version to close).

        A direct merge (one delivery implying no deletions) adds the delivery's staged file as the new
        open part, as it is, and lists its rows that are not current versions as superseded: only the
        keys it touches were compared (:func:`history.touched_keys_sql`)."""
        eng = self.engine
        changes = m.view("changes")
        m.views.append(changes)
        older = any(not p.name.startswith(history.OPEN_PART + "-") for p in m.prev_open)
        rewrite = (
            len(m.prev_open) >= MAX_OPEN_PARTS
            or (closes > 0 and older)
            or m.superseded_rows + closes > MAX_SUPERSEDED_SHARE * m.open_rows
        )
        stale = 0  # rows a direct merge adds to the superseded list (the versions closed among them)
        if m.direct and not rewrite:
            sql = history.direct_superseded_sql(changes, m.first_seq, m.staged, m.touched)
            stale = eng.materialize(m.view("stale"), sql, m.dir("stale"))
            m.views.append(m.view("stale"))
        # A delivery that re-sends many current versions unchanged would list too many rows as
        # superseded: its new versions are then written as an open part of their own.
        direct = m.direct and not rewrite and m.superseded_rows + stale <= MAX_SUPERSEDED_SHARE * m.open_rows
        run.link(m.table, m.prev_closed)
        if not rewrite:
            run.link(m.table, m.prev_open)
            run.link(m.table, m.prev_superseded, into=SUPERSEDED)
            if direct:
                assert m.staged_dir is not None
                if sum(int(str(d["rows_accepted"])) for d in m.deliveries):
                    run.adopt(m.table, m.staged_dir, history.OPEN_PART)
                if stale:
                    run.adopt(m.table, m.dir("stale"), "superseded", into=SUPERSEDED)
                if closed:
                    sql = history.closed_part_sql(m.spec, changes)
                    if eng.materialize(m.view("closed"), sql, m.dir("closed")):
                        run.adopt(m.table, m.dir("closed"), history.CLOSED_PART)
                    m.views.append(m.view("closed"))
                return
            if not m.changes and not m.direct:
                return
            if not closed and not m.direct:  # only new current versions: the changes are the new open part
                run.adopt(m.table, m.dir("changes"), history.OPEN_PART)
                return
            if closes:
                sql = history.superseded_sql(changes, m.first_seq)
                eng.materialize(m.view("superseded"), sql, m.dir("superseded"))
                run.adopt(m.table, m.dir("superseded"), "superseded", into=SUPERSEDED)
                m.views.append(m.view("superseded"))
        # Part files of the older layout (every version in one file) hold closed versions too: a rewrite
        # moves them to a closed part.
        mixed = rewrite and older
        if closed or mixed:
            sql = history.closed_part_sql(m.spec, changes, m.prev if mixed else None)
            if eng.materialize(m.view("closed"), sql, m.dir("closed")):
                run.adopt(m.table, m.dir("closed"), history.CLOSED_PART)
            m.views.append(m.view("closed"))
        prev = m.prev if rewrite else None
        untouched = history.of_keys(m.staged, m.touched, among=False) if m.direct else None
        sql = history.open_part_sql(m.spec, changes, prev, m.first_seq, untouched)
        if eng.materialize(m.view("open"), sql, m.dir("open")) or rewrite:
            run.adopt(m.table, m.dir("open"), history.OPEN_PART)
        m.views.append(m.view("open"))

    def _duplicates(self, changed: Sequence[FeedSpec], files: dict[str, str], run_id: str) -> pa.Table:
        if not changed:
            return FINDING_SCHEMA.empty_table()
        sql = " UNION ALL ".join(
            f"SELECT '{spec.name}' AS feed, '{spec.key[0]}' AS field, d.* FROM ("
            + history.duplicates_sql(spec, _types(spec), f"multi_rows_{spec.name}")
            + ") AS d"
            for spec in changed
        )
        got = self.engine.fetch(sql)
        return _findings_from(got, files, run_id, severity="warn", value=got["_key"])

    def _references(
        self, changed: Sequence[FeedSpec], files: dict[str, str], run_id: str, staging: Path
    ) -> pa.Table:
        """References across feeds never remove a row (the other feed may simply be late): a value not
        found is flagged for review and released once the referenced record arrives. The rows referring
        to one referenced field are looked up together, in one anti-join over that feed; the rows not
        found are kept in the view ``probed`` for the quality counts (:data:`PROBED_SCHEMA`)."""
        targets = references_by_target(changed)
        parts = [
            f"SELECT '{feed}.{field_name}' AS target, r.* FROM ("
            + history.unreferenced_sql(
                [(spec.name, f, f"staged_{spec.name}") for spec, f in sources], f"src_{feed}", field_name
            )
            + ") AS r"
            for (feed, field_name), sources in sorted(targets.items())
        ]
        if parts:
            self.engine.materialize("probed", " UNION ALL ".join(parts), staging / "_probed")
        else:
            self.engine.register_arrow("probed", PROBED_SCHEMA.empty_table())
        got = self.engine.fetch(
            "SELECT feed, field, 'reference' AS rule, 'not found in ' || target AS reason, "
            "_delivery, _seq, _line, _key, value FROM probed"
        )
        return _findings_from(got, files, run_id, severity="flag", value=got["value"])

    def _releases(self, run: Run, seqs: dict[str, tuple[int, int]], staging: Path) -> None:
        """Open quarantine entries that this run's deliveries corrected, superseded or resolved.

        ``seqs``: the feeds this run changed, with the first and last of their deliveries in this run.
        Only this run's deliveries can release anything: a feed that received none has no new version
        and no re-delivery, and a reference resolves only when its target feed changed. So only this
        run's versions are compared (earlier ones released what they could in their own run), only
        entries older than a feed's last delivery can be corrected or superseded, only entries of
        earlier runs resolved (a reference this run found missing is missing after its merge), and the
        open entries are found once for every feed."""
        eng = self.engine
        eng.register_parquet("findings", run.path / "findings")
        eng.register_parquet("deliveries", run.path / "deliveries")
        had_releases = self._has("releases")
        if had_releases:
            eng.register_parquet("releases", self.wh.table_path("releases"))
        else:
            eng.register_arrow("releases", RELEASE_SCHEMA.empty_table())
        parts, feeds = [], set()
        run_first = min((first for first, _ in seqs.values()), default=0)
        for spec in self.catalogue:
            if spec.name in seqs:
                feeds.add(spec.name)
                parts.append(_release_sql(spec, run.id, f"src_{spec.name}", *seqs[spec.name]))
            for col in spec.columns:
                ref = col.references
                if ref is not None and ref.feed in seqs:
                    feeds.add(spec.name)
                    target = (f"src_{ref.feed}", seqs[ref.feed][0])
                    parts.append(_resolved_sql(spec, col.field, ref.field, run.id, target, run_first))
        got = RELEASE_SCHEMA.empty_table()
        if parts:
            names = ", ".join(f"'{f}'" for f in sorted(feeds))
            eng.materialize(
                "open_findings", f"{OPEN_SQL} AND f.feed IN ({names})", staging / "_open_findings"
            )
            got = eng.fetch(" UNION ALL ".join(f"SELECT * FROM ({p}) AS p{i}" for i, p in enumerate(parts)))
            eng.drop("open_findings")
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

    def _quality(
        self,
        run: Run,
        changed: dict[str, FeedChange],
        all_new: bool,
        known: dict[str, dict[str, int]],
        unfound: str | None,
    ) -> None:
        """Quality and freshness of every feed, judged as of the latest due date among the deliveries.
        The counts over current records are the previous run's updated by what this run changed, when
        the previous run has them; else they are counted afresh (``all_new``: every current record came
        with this run, so the references check's ``probed`` rows tell which values are not found), less
        those the run knows already (``known``, and the values not found when ``unfound`` is a query
        of them: :meth:`_first_counts`)."""
        eng = self.engine
        eng.register_parquet("findings", run.path / "findings")
        eng.register_parquet("releases", run.path / "releases")
        counts = None
        tables = ("quality", "quality_columns", "quality_references", "quality_unfound")
        if all(self._has(t) for t in tables):
            previous = previous_counts(*(self.wh.read(t) for t in tables))
            counts = updated_counts(eng, self.catalogue, previous, changed, probed="probed")
        if counts is None:
            counts = fresh_counts(eng, self.catalogue, "probed" if all_new else None, known, unfound)
        q = compute_quality(eng, self.catalogue, pq.read_table(run.path / "deliveries"), counts=counts)
        pq.write_table(q.feeds, run.new_table("quality") / "part-0.parquet")
        pq.write_table(q.columns, run.new_table("quality_columns") / "part-0.parquet")
        references = q.references if q.references is not None else REFERENCE_SCHEMA.empty_table()
        pq.write_table(references, run.new_table("quality_references") / "part-0.parquet")
        unfound = q.unfound if q.unfound is not None else UNFOUND_SCHEMA.empty_table()
        pq.write_table(unfound, run.new_table("quality_unfound") / "part-0.parquet")
        eng.drop("findings")
        eng.drop("releases")
        eng.drop("probed")


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
    run_id: str,
) -> dict[str, object]:
    """Read, validate and stage one delivery file: its ledger row. Its accepted rows are staged in
    ``staging/<feed>/``, its issues in ``staging/_findings/`` (:func:`findings_dir`) and the keys that
    recur in it in ``staging/_multi/`` (:func:`multi_dir`), one file each named by the delivery's
    sequence number; a file rejected whole leaves none of them."""
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
    part = delivery_file(out_dir, seq)
    schema = history.staged_schema(spec, output_schema(spec))
    first = 2 if spec.format.kind == "csv" and spec.format.header else 1
    issues = delivery_file(findings_dir(staging), seq)
    issues.parent.mkdir(parents=True, exist_ok=True)
    recurring = RecurringKeys()
    try:
        with ExitStack() as files:
            writer: pq.ParquetWriter | None = None  # opened at the first batch (its columns' make-up)
            noted: pq.ParquetWriter | None = None  # opened at the first issue
            for batch in iter_batches(d.path, spec.format, BATCH_ROWS, expected_columns=spec.column_names):
                v = validate(batch, first + counts["rows_read"])
                counts["rows_read"] += v.read
                counts["rows_rejected"] += v.rejected
                counts["rows_flagged"] += v.flagged
                counts["rows_accepted"] += v.rows.num_rows
                staged = history.staged_rows(spec, v.rows, seq, delivery_id, d.period)
                if staged.num_rows:  # (a batch whose rows were all rejected writes no empty row group)
                    if writer is None:
                        dictionary = dictionary_columns(staged)
                        writer = pq.ParquetWriter(
                            part, schema, compression=PARQUET_COMPRESSION, use_dictionary=dictionary
                        )
                        files.enter_context(writer)
                    writer.write_table(staged)
                    recurring.add(staged["_key"], staged["_deleted"])
                if v.issues.num_rows:
                    if noted is None:
                        noted = pq.ParquetWriter(issues, FINDING_SCHEMA, compression="zstd")
                        files.enter_context(noted)
                    noted.write_table(_finding_table(v.issues, delivery_id, seq, d.feed, d.rel, run_id))
    except FormatError as exc:
        issues.unlink(missing_ok=True)
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
    if writer is None:  # (no row accepted: the staged file holds none)
        pq.write_table(schema.empty_table(), part, compression=PARQUET_COMPRESSION)
    keys = recurring.result()
    if len(keys):
        out = delivery_file(multi_dir(staging), seq)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"_key": keys}), out)
    return {**base, **counts, "status": "loaded", "message": None}


DICTIONARY_SAMPLE = 50_000
"""How many of a delivery's first rows judge which of its columns get a Parquet dictionary."""


def dictionary_columns(rows: pa.Table) -> list[str]:
    """The columns worth a dictionary in Parquet, judged on a delivery's first rows (at most
    :data:`DICTIONARY_SAMPLE` of its first batch): those with at most one distinct value for every two
    filled ones. A column of identifiers (a key, an IIN) would only make the writer build a dictionary
    and drop it: without one, a national delivery is written about a fifth faster, and its file is
    smaller."""
    chosen = []
    sample = rows.slice(0, DICTIONARY_SAMPLE)
    for name in sample.column_names:
        col = sample[name]
        filled = len(col) - col.null_count
        if pc.count_distinct(col).as_py() * 2 <= filled or filled == 0:
            chosen.append(name)
    return chosen


def delivery_file(directory: Path, seq: int) -> Path:
    """The file in ``directory`` that a reading process writes for the delivery with sequence number
    ``seq`` (its staged rows, its issues, its recurring keys): named so that names sort as deliveries."""
    return directory / f"{seq:09d}.parquet"


def findings_dir(staging: Path) -> Path:
    """Where the reading processes write the issues of each delivery they read (no feed's name: feed
    names start with a letter)."""
    return staging / "_findings"


def multi_dir(staging: Path) -> Path:
    """Where the reading processes write the keys that recur in each delivery they read, or that a row
    deletes (:class:`~familycard.sources.recurring.RecurringKeys`; a delivery with none writes no file)."""
    return staging / "_multi"


def _land_task(
    task: tuple[FeedSpec, DeliveryFile, frozenset[str], int, Path, str],
) -> tuple[str, dict[str, object] | None]:
    """:func:`land_delivery` for a process pool: arguments in; the file's checksum and its ledger row
    out (rows and issues go to files: nothing large crosses between processes). A file with no checksum
    yet is hashed first (reading it into the page cache for the reader), and not read further if its
    feed had it already (``seen``): no ledger row."""
    spec, d, seen, seq, staging, run_id = task
    if not d.sha256:
        d = replace(d, sha256=sha256_file(d.path))
        if d.sha256 in seen:
            return d.sha256, None
    delivery_id = f"{d.feed}/{d.period}/{d.kind}/{d.sha256[:12]}"
    return d.sha256, land_delivery(spec, d, delivery_id, seq, staging, run_id)


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
    fields = history.staged_schema(spec, output_schema(spec))
    cols = [f"CAST(NULL AS {_SQL_TYPES[f.type]}) AS {history.q(f.name)}" for f in fields]
    return f"SELECT {', '.join(cols)} WHERE 1 = 0"


def _release_sql(spec: FeedSpec, run_id: str, hist: str, since: int, until: int) -> str:
    """Releases for one feed's open entries (view ``open_findings``): ``corrected`` by a later accepted
    version of the record (with a value in the flagged field), and ``superseded`` when the same period's
    delivery was sent again. This run's deliveries of the feed run from ``since`` to ``until``: only its
    versions can be new, and only entries from before ``until`` have a later delivery."""
    q = history.q
    fields = history.stored_fields(spec)
    has_value = " ".join(f"WHEN '{f}' THEN h.{q(f)} IS NOT NULL" for f in fields)
    has_value = f"CASE f.field {has_value} ELSE TRUE END" if fields else "TRUE"
    return f"""
        WITH open_f AS (SELECT * FROM open_findings WHERE feed = '{spec.name}' AND seq < {int(until)}),
        corrected AS (
            SELECT f.delivery, f.line, f.field, f.rule, MIN(h._seq) AS by_seq
            FROM open_f AS f
            JOIN (SELECT * FROM {hist} WHERE _seq >= {int(since)}) AS h
              ON h._key = f.key AND h._seq > f.seq AND NOT h._deleted
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


def _resolved_sql(
    spec: FeedSpec, field_name: str, target_field: str, run_id: str, target: tuple[str, int], before: int
) -> str:
    """Open reference issues on ``field_name`` whose value has since arrived in the referenced feed
    ``target`` (its view, and its first delivery in this run: a value arrives with a version from there
    on, as earlier ones were there when the issue was raised or released it in their own run). Only
    issues from deliveries ``before`` this run's can be resolved."""
    q = history.q
    view, since = target
    tf = q(target_field)
    return f"""
        WITH open_f AS (
            SELECT * FROM open_findings
            WHERE feed = '{spec.name}' AND rule = 'reference' AND field = '{field_name}'
              AND seq < {int(before)}
        ),
        arrived AS (
            SELECT t.{tf} AS v, MIN(t._seq) AS by_seq
            FROM {view} AS t SEMI JOIN open_f AS o ON t.{tf} = o.value
            WHERE t._seq >= {int(since)} GROUP BY t.{tf}
        )
        SELECT f.delivery, f.line, f.field, f.rule, d.delivery AS released_by, 'resolved' AS how,
            '{run_id}' AS run
        FROM open_f AS f JOIN arrived AS a ON a.v = f.value JOIN deliveries AS d ON d.seq = a.by_seq
    """
