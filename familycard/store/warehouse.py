"""The warehouse: one immutable snapshot of every table per pipeline run.

```
DATA/runs/<run_id>/<table>/part-*.parquet   one directory per table per run
DATA/runs/<run_id>/<table>/_superseded/     rows of its part files a later run replaced (histories only)
DATA/runs/<run_id>/run.json                 what the run wrote (tables, row counts, times, caller's notes)
DATA/CURRENT                                the current run id, replaced atomically
```

A run writes into its own directory and becomes visible only when :meth:`Run.commit` switches
``CURRENT`` (write a temporary file, then ``os.replace``). Readers resolve ``CURRENT`` once and read
that run's files, which nothing rewrites, so a run in progress never blocks or disturbs them. A table a
run does not recompute is carried over from the run it started from by hard links (no copy, no extra
space); Parquet files are written once and never modified, so the runs sharing a file cannot see each
other's changes. Run ids sort in the order runs begin (``20261125T143000Z-0001``: UTC time and a
counter). One pipeline writes at a time: a run whose base is no longer current cannot commit.

A feed's history may keep, beside its part files, the list of current versions a run closed without
rewriting the file that holds them (``_superseded``, :data:`familycard.store.engine.SUPERSEDED`); every
reader (the engines' views, :meth:`Warehouse.read`) leaves those rows out, and ``run.json`` counts
the rows a reader sees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from familycard.store.engine import SUPERSEDED, Engine, canonical_table, superseded_dir

RUN_ID = re.compile(r"\d{8}T\d{6}Z-\d{4}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = ("run", "base", "started", "finished", "tables")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_table(table: str) -> str:
    """Table names are plain identifiers: they are directory names and view names."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not a valid table name: {table!r}")
    return table


def _parts(directory: Path) -> list[Path]:
    """A table's data files in name order (Spark's and DuckDB's part files; not hidden files)."""
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))


def _check_sub(into: str | None) -> str:
    """The subdirectory of a table that part files may go into: none, or its superseded list."""
    if into not in (None, SUPERSEDED):
        raise ValueError(f"a table has no subdirectory {into!r} (only {SUPERSEDED!r})")
    return into or ""


def link_file(source: Path, target: Path) -> None:
    """Hard-link a part file (copy it where the file system cannot link)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Warehouse:
    """The snapshots under a data directory."""

    def __init__(self, data: Path) -> None:
        self.data = Path(data)
        self.runs_dir = self.data / "runs"

    def current(self) -> str | None:
        """The current run id, or None before the first commit."""
        try:
            text = (self.data / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def published(self) -> str | None:
        """The run readers should use: the last one in which every pipeline stage finished (stages commit
        one after another; a reader never sees sources newer than the families built from them)."""
        try:
            text = (self.data / "PUBLISHED").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def publish(self, run: str | None = None) -> str:
        """Mark the current (or given) committed run as the one readers use."""
        run = run or self.current()
        if run is None or not (self.runs_dir / run / "run.json").is_file():
            raise KeyError(f"run {run} was never committed; nothing to publish")
        _write_atomic(self.data / "PUBLISHED", run + "\n")
        return run

    def runs(self) -> list[str]:
        """Committed runs, oldest first."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if (p / "run.json").is_file())

    def meta(self, run: str | None = None) -> dict[str, Any]:
        """The ``run.json`` of the current (or given) run."""
        path = self._run_dir(run) / "run.json"
        if not path.is_file():
            raise KeyError(f"run {path.parent.name} was never committed")
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return result

    def _run_dir(self, run: str | None) -> Path:
        run = run or self.current()
        if run is None:
            raise KeyError(f"the warehouse {self.data} has no committed run yet")
        path = self.runs_dir / run
        if not path.is_dir():
            raise KeyError(f"run {run} is not in the warehouse {self.data}")
        return path

    def table_path(self, table: str, run: str | None = None) -> Path:
        """The directory of ``table`` in the current (or given) run."""
        run_dir = self._run_dir(run)
        path = run_dir / _check_table(table)
        if not path.is_dir():
            known = ", ".join(self.tables(run_dir.name)) or "none"
            raise KeyError(f"table {table!r} is not in run {run_dir.name} (its tables: {known})")
        return path

    def tables(self, run: str | None = None) -> list[str]:
        """The tables of the current (or given) run, by name; none before the first commit."""
        if run is None and self.current() is None:
            return []
        return sorted(p.name for p in self._run_dir(run).iterdir() if p.is_dir())

    def parts(self, table: str, run: str | None = None) -> list[Path]:
        """The part files of ``table`` in the current (or given) run, in name order."""
        return _parts(self.table_path(table, run))

    def read(self, table: str, run: str | None = None) -> pa.Table:
        """A whole table as Arrow, with canonical column types (for tests and small tables), less the rows
        its superseded list names (as a view over it reads it)."""
        path = self.table_path(table, run)
        files = _parts(path)
        if not files:
            raise KeyError(f"table {table!r} has no data files")
        parts = [canonical_table(pq.read_table(f)) for f in files]
        whole = pa.concat_tables(parts, promote_options="permissive")
        sup = superseded_dir(path)
        if sup is None:
            return whole
        names = ["_key", "_seq", "_line"]
        listed = pa.concat_tables([canonical_table(pq.read_table(f, columns=names)) for f in _parts(sup)])
        current = pc.is_null(whole["_valid_to_seq"])
        # (a null line names a version no line said: nulls match here, as in the engines' views)
        line = pc.fill_null(whole["_line"], -1)
        whole = whole.append_column("_line_or", line)
        listed = listed.set_column(2, "_line_or", pc.fill_null(listed["_line"], -1))
        kept = whole.filter(current).join(listed, ["_key", "_seq", "_line_or"], join_type="left anti")
        whole = whole.drop_columns(["_line_or"])
        return pa.concat_tables([whole.filter(pc.invert(current)), kept.select(whole.column_names)])

    def register(self, engine: Engine, run: str | None = None) -> list[str]:
        """Register every table of the current (or given) run as a view in ``engine``."""
        names = self.tables(run)
        for name in names:
            engine.register_parquet(name, self.table_path(name, run))
        return names

    def begin(self, run_id: str | None = None) -> Run:
        """Start a run; it stays invisible to readers until it commits."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            run = run_id or self._next_id()
            if not RUN_ID.fullmatch(run):
                raise ValueError(f"run ids look like 20261125T143000Z-0001, not {run!r}")
            existing = [p.name for p in self.runs_dir.iterdir() if RUN_ID.fullmatch(p.name)]
            if existing and run <= max(existing):
                if run_id is not None:
                    raise ValueError(f"run id {run} does not sort after the latest run {max(existing)}")
                continue
            try:
                (self.runs_dir / run).mkdir()
            except FileExistsError:
                if run_id is not None:
                    raise
                continue  # another process took this id a moment ago
            return Run(self, run, base=self.current())

    def _next_id(self) -> str:
        stamp = _utc_now().strftime("%Y%m%dT%H%M%SZ")
        existing = sorted(p.name for p in self.runs_dir.iterdir() if RUN_ID.fullmatch(p.name))
        if existing and existing[-1][:16] >= stamp:
            # Same second (or a clock that went back): continue the latest run's counter.
            stamp, counter = existing[-1][:16], int(existing[-1][17:]) + 1
            if counter > 9999:
                raise RuntimeError("more than 9999 runs in one second")
            return f"{stamp}-{counter:04d}"
        return f"{stamp}-0001"

    def prune(self, keep: int = 2) -> list[str]:
        """Delete runs older than the ``keep`` runs committed before the current one; return their ids.

        Uncommitted runs older than the current one are leftovers of failed runs (they can no longer
        commit) and go too. The current and the published run and anything newer are never touched.
        """
        current = self.current()
        if current is None:
            return []
        committed = set(self.runs())
        older = sorted(
            p.name for p in self.runs_dir.iterdir() if RUN_ID.fullmatch(p.name) and p.name < current
        )
        kept = [r for r in older if r in committed][-keep:] if keep > 0 else []
        published = self.published()
        removed = [r for r in older if r not in kept and r != published]
        for run in removed:
            shutil.rmtree(self.runs_dir / run)
        return removed


class Run:
    """A run in progress: the tables it writes, carries and appends to."""

    def __init__(self, warehouse: Warehouse, run_id: str, *, base: str | None) -> None:
        self.warehouse = warehouse
        self.id = run_id
        self.path = warehouse.runs_dir / run_id
        self.base = base
        self.started = _utc_now()

    def _table_dir(self, table: str) -> Path:
        return self.path / _check_table(table)

    def new_table(self, table: str) -> Path:
        """A fresh, empty directory for a table written in this run."""
        path = self._table_dir(table)
        path.mkdir()
        return path

    def carry(self, table: str) -> Path:
        """The base run's ``table``, unchanged, hard-linked into this run (copied where links fail)."""
        if self.base is None:
            raise KeyError(f"run {self.id} started from an empty warehouse: there is no {table!r} to carry")
        source = self.warehouse.table_path(table, self.base)
        target = self._table_dir(table)
        target.mkdir()
        for item in sorted(source.iterdir()):
            if item.is_file():
                link_file(item, target / item.name)
            elif item.name == SUPERSEDED:
                self.link(table, _parts(item), into=SUPERSEDED)
        return target

    def link(self, table: str, files: Iterable[Path], *, into: str | None = None) -> Path:
        """Some part files of an earlier run's ``table``, unchanged, hard-linked into this run's table
        (copied where links fail; ``into``: its subdirectory :data:`SUPERSEDED`); the table's directory is
        created if needed. A table whose parts are written once and rewritten one by one (a feed's
        history) carries the parts it keeps this way."""
        target = self._table_dir(table) / _check_sub(into)
        target.mkdir(parents=True, exist_ok=True)
        for item in files:
            if (target / item.name).exists():
                raise FileExistsError(f"{table}/{item.name} is already in run {self.id}")
            link_file(item, target / item.name)
        return target

    def adopt(self, table: str, source: Path, prefix: str, *, into: str | None = None) -> list[Path]:
        """Hard-link (copy where links fail) the part files an engine wrote into the directory ``source``
        into this run's ``table`` (created if needed; ``into``: its subdirectory :data:`SUPERSEDED`) as
        ``<prefix>-<run id>-NNNN.parquet``, so that the name says what a part holds and which run wrote
        it. ``source`` is left as it is (a scratch directory the caller removes, and may read until
        then)."""
        if not re.fullmatch(r"[a-z]+", prefix):
            raise ValueError(f"a part prefix is lower-case letters, not {prefix!r}")
        target = self._table_dir(table) / _check_sub(into)
        target.mkdir(parents=True, exist_ok=True)
        n = len(list(target.glob(f"{prefix}-{self.id}-*.parquet")))
        adopted = []
        for item in _parts(source):
            path = target / f"{prefix}-{self.id}-{n:04d}.parquet"
            link_file(item, path)
            adopted.append(path)
            n += 1
        return adopted

    def append(self, table: str) -> Path:
        """The path of one more part file of an append-only table (carried first if needed)."""
        target = self._table_dir(table)
        if not target.is_dir():
            if self.base is not None and table in self.warehouse.tables(self.base):
                self.carry(table)
            else:
                self.new_table(table)
        n = len(list(target.glob(f"part-{self.id}-*.parquet")))
        return target / f"part-{self.id}-{n:04d}.parquet"

    def tables(self) -> list[str]:
        """Tables written or carried so far."""
        return sorted(p.name for p in self.path.iterdir() if p.is_dir())

    def input_path(self, table: str) -> Path:
        """Where a stage reads ``table``: this run's own if it has written it, else its base run's."""
        own = self._table_dir(table)
        if own.is_dir():
            return own
        if self.base is None:
            raise KeyError(f"run {self.id} needs the table {table!r}, and the warehouse is empty")
        return self.warehouse.table_path(table, self.base)

    def carry_rest(self) -> None:
        """Carry every table of the base run that this run has not written (before a stage commits)."""
        if self.base is None:
            return
        written = set(self.tables())
        for table in self.warehouse.tables(self.base):
            if table not in written:
                self.carry(table)

    def commit(self, meta: dict[str, Any] | None = None) -> None:
        """Write ``run.json`` and make this run current. ``meta`` adds the caller's notes (e.g. the
        engine); its keys must not be one of ``run, base, started, finished, tables``."""
        meta = dict(meta or {})
        clash = sorted(set(meta) & set(_RESERVED))
        if clash:
            raise ValueError(f"run.json keys {clash} are written by the warehouse")
        if self.warehouse.current() != self.base:
            raise RuntimeError(
                f"run {self.id} started from {self.base}, but {self.warehouse.current()} has been "
                "committed since; start a new run"
            )
        tables = {}
        for name in self.tables():
            files = _parts(self.path / name)
            listed = _parts(self.path / name / SUPERSEDED)  # (each names one row of the files)
            replaced = sum(pq.ParquetFile(f).metadata.num_rows for f in listed)
            tables[name] = {
                "rows": sum(pq.ParquetFile(f).metadata.num_rows for f in files) - replaced,
                "files": len(files),
                "bytes": sum(f.stat().st_size for f in (*files, *listed)),
            }
            if replaced:
                tables[name]["superseded"] = replaced
        record = {
            "run": self.id,
            "base": self.base,
            "started": _iso(self.started),
            "finished": _iso(_utc_now()),
            "tables": tables,
            **meta,
        }
        _write_atomic(self.path / "run.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        _write_atomic(self.warehouse.data / "CURRENT", self.id + "\n")

    def abort(self) -> None:
        """Remove everything this run wrote."""
        shutil.rmtree(self.path, ignore_errors=True)


def _sort_keys(table: pa.Table) -> tuple[pa.Table, list[tuple[str, str, str]]]:
    """Sort keys over every column; a column Arrow cannot sort is keyed by its values' text."""
    keys = []
    for i, field in enumerate(table.schema):
        name = f"_k{i}"
        column = table.column(i)
        if pa.types.is_nested(field.type) or pa.types.is_dictionary(field.type):
            column = pa.array([repr(v) for v in column.to_pylist()], pa.string())
        table = table.append_column(name, column)
        keys.append((name, "ascending", "at_end"))
    return table, keys


def _column_bytes(column: pa.Array) -> Iterator[bytes]:
    """A canonical byte form of one column: its null mask, then its values with nulls blanked."""
    yield np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_).tobytes()
    kind = column.type
    if pa.types.is_decimal(kind):
        column = column.cast(pa.string())
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        filled = column.fill_null("" if pa.types.is_string(kind) else b"")
        yield np.asarray(pc.binary_length(filled).to_numpy(), dtype=np.int64).tobytes()
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(filled)], pa.int32()), filled), "")
        value = joined[0].as_py()
        yield value.encode("utf-8") if isinstance(value, str) else (value or b"")
    elif pa.types.is_boolean(kind):
        yield np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_).tobytes()
    elif pa.types.is_integer(kind) or pa.types.is_temporal(kind):
        raw = (
            column.view(pa.int64() if kind.bit_width == 64 else pa.int32())
            if pa.types.is_temporal(kind)
            else column
        )
        yield np.asarray(raw.cast(pa.int64()).fill_null(0).to_numpy(), dtype=np.int64).tobytes()
    elif pa.types.is_floating(kind):
        values = np.asarray(column.fill_null(0.0).to_numpy(), dtype=np.float64)
        yield np.where(np.isnan(values), np.nan, values + 0.0).tobytes()  # one NaN, no negative zero
    else:
        yield repr(column.to_pylist()).encode("utf-8")


def content_digest(table: pa.Table) -> str:
    """A hash of a table's content (column names, canonical types and rows) that ignores row order and
    chunking: equal tables give equal digests however they were written or read."""
    table = canonical_table(table)
    digest = hashlib.sha256()
    for field in table.schema:
        digest.update(f"{field.name}\x1f{field.type}\x1e".encode())
    keyed, keys = _sort_keys(table)
    order = pc.sort_indices(keyed, sort_keys=keys)
    ordered = table.take(order)
    for column in ordered.columns:
        array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        for chunk in _column_bytes(array):
            digest.update(len(chunk).to_bytes(8, "little"))
            digest.update(chunk)
    return digest.hexdigest()
