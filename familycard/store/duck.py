"""The DuckDB engine: an in-memory connection that reads and writes Parquet and spills to disk."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from familycard.store.dialect import check_portable
from familycard.store.engine import (
    PARQUET_COMPRESSION,
    Engine,
    canonical_table,
    check_name,
    check_output_dir,
    superseded_dir,
    without_superseded_sql,
)

# DuckDB column types that are written and fetched as another type (see engine.canonical_type).
_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_TIMESTAMPS = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def table_sql(path: Path) -> str:
    """A query over a table directory in DuckDB: all its part files, less the rows its superseded list
    names (for any DuckDB connection that reads a warehouse table)."""
    files = _literal(str(path / "*.parquet"))
    # (not hive_partitioning: a part of a partitioned write, `<column>=<value>/`, is read as written,
    # without the column its directory names, as Spark reads it)
    sql = f"SELECT * FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)"
    sup = superseded_dir(path)
    if sup is not None:
        listed = _literal(str(sup / "*.parquet"))
        sql = without_superseded_sql(f"({sql})", f"read_parquet({listed}, union_by_name = true)")
    return sql


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _strip(query: str) -> str:
    return query.strip().rstrip(";").strip()


class DuckDBEngine(Engine):
    """DuckDB in memory. Insertion order is preserved, so ``order_by`` is the order written."""

    name = "duckdb"

    def __init__(
        self, *, temp_dir: Path | None = None, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        self._con = duckdb.connect(":memory:")
        self._arrow: set[str] = set()
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET preserve_insertion_order = true")
        if temp_dir is not None:
            temp_dir.mkdir(parents=True, exist_ok=True)
            self._con.execute(f"SET temp_directory = {_literal(str(temp_dir))}")
        if threads is not None:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            self._con.execute(f"SET memory_limit = {_literal(memory_limit)}")

    def _canonical(self, query: str) -> str:
        """``query`` with its columns cast to the canonical types."""
        query = _strip(query)
        check_portable(query)
        described = self._con.execute(f"DESCRIBE {query}").fetchall()
        columns = []
        changed = False
        for row in described:
            column, kind = str(row[0]), str(row[1])
            if kind in _INTEGERS:
                columns.append(f"CAST({_quote(column)} AS BIGINT) AS {_quote(column)}")
            elif kind == "FLOAT":
                columns.append(f"CAST({_quote(column)} AS DOUBLE) AS {_quote(column)}")
            elif kind in _TIMESTAMPS:
                columns.append(f"CAST({_quote(column)} AS TIMESTAMPTZ) AS {_quote(column)}")
            elif (decimal := _DECIMAL.fullmatch(kind)) and int(decimal.group(1)) not in (18, 38):
                precision = 18 if int(decimal.group(1)) <= 18 else 38
                target = f"DECIMAL({precision}, {decimal.group(2)})"
                columns.append(f"CAST({_quote(column)} AS {target}) AS {_quote(column)}")
            else:
                columns.append(_quote(column))
                continue
            changed = True
        if not changed:
            return query
        return f"SELECT {', '.join(columns)} FROM ({query}\n) AS _q"

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make ``name`` a temporary view over an Arrow table (cast to canonical types)."""
        self.drop(name)
        self._con.register(check_name(name), canonical_table(table))
        self._arrow.add(name)

    def register_parquet(self, name: str, path: Path) -> None:
        """Make ``name`` a view over a table directory (all ``*.parquet`` files in it, less the rows its
        superseded list names)."""
        self.drop(name)
        self._con.execute(f"CREATE VIEW {check_name(name)} AS {table_sql(Path(path))}")

    def register_query(self, name: str, query: str) -> None:
        """Make ``name`` a view over ``query``."""
        self.drop(name)
        query = _strip(query)
        check_portable(query)
        self._con.execute(f"CREATE VIEW {check_name(name)} AS {query}")

    def materialize(self, name: str, query: str, path: Path, *, order_by: Sequence[str] = ()) -> int:
        """Write the result of ``query`` to ``path/part-0.parquet``, register ``name`` over it."""
        check_name(name)
        out = check_output_dir(Path(path))
        select = self._canonical(query)
        if order_by:
            select = f"SELECT * FROM ({select}\n) AS _o ORDER BY {', '.join(order_by)}"
        target = _literal(str(out / "part-0.parquet"))
        row = self._con.execute(
            f"COPY ({select}\n) TO {target} (FORMAT parquet, COMPRESSION {PARQUET_COMPRESSION})"
        ).fetchone()
        self.register_parquet(name, out)
        return int(row[0]) if row else 0

    def partition(self, query: str, path: Path, column: str) -> int:
        """Write the rows of ``query`` into ``path/<column>=<value>/`` (one pass, DuckDB's partitioned
        write)."""
        out = check_output_dir(Path(path))
        options = f"FORMAT parquet, COMPRESSION {PARQUET_COMPRESSION}, PARTITION_BY ({_quote(column)})"
        row = self._con.execute(
            f"COPY ({self._canonical(query)}\n) TO {_literal(str(out))} ({options}, OVERWRITE_OR_IGNORE)"
        ).fetchone()
        return int(row[0]) if row else 0

    def fetch(self, query: str) -> pa.Table:
        """The result of ``query`` as an Arrow table with canonical types."""
        return canonical_table(self._con.sql(self._canonical(query)).to_arrow_table())

    def drop(self, name: str) -> None:
        """Forget the view ``name`` (no error if there is none)."""
        check_name(name)
        if name in self._arrow:
            self._con.unregister(name)
            self._arrow.discard(name)
        else:
            self._con.execute(f"DROP VIEW IF EXISTS {name}")

    def close(self) -> None:
        """Close the connection."""
        self._con.close()
