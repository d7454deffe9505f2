"""One small interface over the two warehouse engines: DuckDB (embedded, the default) and Spark.

Stages never import ``duckdb`` or ``pyspark``. They write SQL in DuckDB's dialect and call an
:class:`Engine`; the Spark engine transpiles that SQL with sqlglot (plus the few rewrites in
:mod:`familycard.store.dialect`). Tables live as Parquet directories, so both engines read and write the
same storage.

Both engines return the same result for the same SQL, types included, because every result is brought
to one set of column types (:func:`canonical_type`) before it is written or fetched:

* every integer type (DuckDB's ``HUGEINT`` sums, Spark's ``INT`` row numbers) becomes ``int64``;
* ``FLOAT`` becomes ``float64``; strings are ``string`` (never ``large_string`` or views);
* every timestamp becomes ``timestamp[us, tz=UTC]`` (both sessions run in UTC);
* ``DECIMAL(p, s)`` becomes ``DECIMAL(18, s)`` or ``DECIMAL(38, s)`` (the engines widen sums and products
  differently; 18 digits fit in 64 bits);
* ``DATE`` is ``date32``, ``BOOLEAN`` is ``bool``.

SQL known to give the same result on both engines (``tests/test_engine.py`` runs each line on both and
compares the Arrow tables, types included):

* ``SELECT``/``WHERE``/``GROUP BY``/``HAVING``/``ORDER BY``/``LIMIT``/``OFFSET``, ``WITH``,
  ``UNION ALL``, ``EXCEPT``, ``VALUES``, ``SELECT * EXCLUDE (..)``, ``GROUP BY ALL``, ``ORDER BY ALL``;
* joins: ``INNER``, ``LEFT``, ``FULL``, ``USING``, ``SEMI``/``ANTI JOIN``, ``[NOT] EXISTS``, ``IN``;
* ``CASE``, ``COALESCE``, ``NULLIF``, ``IF``, ``GREATEST``/``LEAST``, ``IS [NOT] DISTINCT FROM``,
  ``BETWEEN``, ``CAST``/``TRY_CAST``/``::`` (see the integer rule below);
* aggregates: ``COUNT``, ``COUNT(DISTINCT)``, ``SUM``, ``AVG``, ``MIN``, ``MAX``, ``BOOL_OR``,
  ``BOOL_AND``, ``COUNT_IF``, ``.. FILTER (WHERE ..)``, ``ARG_MAX``/``ARG_MIN``, ``MEDIAN``,
  ``STRING_AGG(x, sep ORDER BY x)``;
* windows: ``ROW_NUMBER``, ``RANK``, ``DENSE_RANK``, ``LAG``, ``LEAD``, ``FIRST_VALUE``, ``SUM``/``COUNT``
  ``OVER (PARTITION BY .. ORDER BY .. ROWS BETWEEN ..)``, ``QUALIFY`` (also with ``SELECT *``, ``LIMIT``);
* NULL ordering: DuckDB's default (NULLs last, ascending or descending) is spelt out for Spark;
  explicit ``NULLS FIRST``/``NULLS LAST`` are kept;
* arithmetic: ``+ - *``, ``/`` (always DOUBLE), ``//`` (integer division, truncating), ``%``,
  ``ROUND`` (half away from zero), ``ABS``, ``FLOOR``/``CEIL``;
* strings: ``||``, ``CONCAT``, ``CONCAT_WS``, ``LENGTH`` (characters), ``UPPER``/``LOWER`` (Kazakh and
  Russian letters included), ``TRIM``, ``SUBSTRING``/``SUBSTR`` with a start of 1 or more, ``LEFT``,
  ``RIGHT``, ``REPLACE``, ``STRPOS``, ``LPAD``, ``SPLIT_PART``, ``STARTS_WITH``, ``CONTAINS``, ``LIKE``,
  ``ILIKE``, ``REGEXP_MATCHES(s, p[, 'i'])``, ``REGEXP_REPLACE(s, p, r, 'g'[i])``,
  ``REGEXP_EXTRACT(s, p[, group])``, ``LEVENSHTEIN`` on ASCII text;
* hashing: ``MD5(text)`` and ``SHA256(text)`` (the same hex strings on both; hash numbers as
  ``MD5(CAST(x AS VARCHAR))``);
* dates: ``DATE '..'``, ``d + n``/``d - n`` (days), ``DATE_DIFF('day'|'week'|'month'|'quarter'|'year',
  a, b)`` (boundaries crossed; whole weeks), ``DATE_SUB('month'|'year', a, b)`` (whole units elapsed:
  ages), ``YEAR``/``MONTH``/``DAY``, ``EXTRACT``, ``MAKE_DATE``, ``LAST_DAY``,
  ``CAST(DATE_TRUNC('month', d) AS DATE)``, ``CAST(d + INTERVAL n MONTH AS DATE)``, ``STRFTIME`` and
  ``STRPTIME``/``TRY_STRPTIME`` with ``%d %m %Y %H %M %S``;
* timestamps: literals, comparison, ``CAST(ts AS DATE)``.

Rules for stage authors (the first two are checked on both engines, see
:func:`familycard.store.dialect.check_portable`):

* ``HASH`` differs between the engines: use ``MD5``. ``REGEXP_REPLACE`` needs the ``'g'`` option.
* ``DATE_DIFF`` only in the units above; ``DATE_SUB`` only in months and years, on dates.
* Name every computed output column (``AS``): unnamed ones are named differently by each engine.
* ``CAST`` of a DOUBLE to an integer rounds (half to even) in DuckDB and truncates in Spark: write
  ``ROUND``, ``FLOOR`` or ``CEIL`` first (``CAST(a / b AS BIGINT)`` and ``CAST(AVG(x) AS ..)`` are
  rewritten for Spark).
* ``d + INTERVAL ..`` is a TIMESTAMP in DuckDB and a DATE in Spark: cast it. ``d1 - d2`` of dates is a
  number in DuckDB and an interval in Spark: use ``DATE_DIFF('day', d1, d2)``.
* Division by zero: ``/`` gives ``inf`` in DuckDB and fails in Spark; ``//`` and ``%`` fail in both.
  Guard divisors with ``NULLIF(b, 0)``. A bad ``CAST``, an overflow or an unparsable ``STRPTIME`` fails
  in both (``TRY_CAST``/``TRY_STRPTIME`` give NULL in both).
* ``LEVENSHTEIN`` counts bytes in DuckDB and characters in Spark: use it on ASCII (e.g. transliterated)
  text only. ``SUBSTRING`` with a start below 1 differs.
* DECIMAL arithmetic widens differently (normalised on output, see above); sums of DOUBLEs may differ in
  the last bits (summation order), so round them before comparing.
* Output column names must be unique (Spark cannot resolve a duplicate name in ``ORDER BY``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: str) -> str:
    """A view name must be a plain identifier (so it needs no quoting in either dialect)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def check_output_dir(path: Path) -> Path:
    """The directory a table is written to: created if missing, and it must be empty."""
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise FileExistsError(f"table directory is not empty: {path}")
    return path


def partition_dir(path: Path, column: str, value: int) -> Path:
    """The table directory that :meth:`Engine.partition` writes the rows of one value of ``column`` to
    (it may not exist: no row had the value)."""
    return path / f"{column}={value}"


PARQUET_COMPRESSION = "lz4"
"""The codec of every Parquet file the pipeline writes (LZ4_RAW; Spark calls it ``lz4_raw``). Tables are
written once and read many times, and most stages read more than they write: decoding LZ4 costs about
half of what Zstandard does (a feed's history scanned whole, every column: 0.62 s against 1.04 s for
19 million rows), and writing costs a little less, for files about 1.7 times as large."""

SUPERSEDED = "_superseded"
"""The subdirectory of a table directory that lists rows its part files still hold but a later run
replaced: a feed history's current versions that a run closed without rewriting the part files holding
them, and the rows of a feed's first delivery that are not current versions (``familycard.sources.history``).
Each of its files has the columns ``_key``, ``_seq`` and ``_line`` (null for a version no line said: a
deletion implied by a full delivery); a view over the table leaves out the rows with such a ``_key``,
``_seq`` and ``_line`` whose ``_valid_to_seq`` is null (their closed copies, with a valid-to, stay).
Both engines' file listings skip it (its name starts with ``_``)."""


def superseded_dir(path: Path) -> Path | None:
    """The table directory's list of superseded rows (:data:`SUPERSEDED`), if it has one with files."""
    sup = Path(path) / SUPERSEDED
    return sup if sup.is_dir() and any(sup.glob("*.parquet")) else None


def without_superseded_sql(table: str, superseded: str) -> str:
    """The rows of ``table`` (a view over part files) less those ``superseded`` (a view of ``_key``,
    ``_seq`` and ``_line``) lists as replaced."""
    return (
        f"SELECT t.* FROM {table} AS t ANTI JOIN {superseded} AS s "
        "ON t._key = s._key AND t._seq = s._seq AND t._line IS NOT DISTINCT FROM s._line "
        "AND t._valid_to_seq IS NULL"
    )


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The one Arrow type both engines use for a column of type ``t`` (see the module docstring)."""
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_decimal(t):
        return pa.decimal128(18 if t.precision <= 18 else 38, t.scale)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(canonical_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, canonical_type(f.type)) for f in t])
    return t


def canonical_table(table: pa.Table) -> pa.Table:
    """``table`` cast to canonical types; a naive timestamp is taken to be UTC."""
    schema = pa.schema([pa.field(f.name, canonical_type(f.type)) for f in table.schema])
    if schema == table.schema:
        return table
    return table.cast(schema)


class Engine(ABC):
    """A SQL engine over Parquet tables; queries are written in DuckDB's dialect."""

    name: str

    @abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make ``name`` a temporary view over an Arrow table (cast to canonical types)."""

    @abstractmethod
    def register_parquet(self, name: str, path: Path) -> None:
        """Make ``name`` a view over a table directory (all ``*.parquet`` files in it, less the rows its
        :data:`SUPERSEDED` files list)."""

    @abstractmethod
    def register_query(self, name: str, query: str) -> None:
        """Make ``name`` a view over ``query`` (evaluated each time the view is read)."""

    @abstractmethod
    def materialize(self, name: str, query: str, path: Path, *, order_by: Sequence[str] = ()) -> int:
        """Run ``query``, write the result as Parquet into the new, empty directory ``path``, register
        ``name`` as a view over it and return the row count.

        ``order_by`` (SQL expressions) sorts the rows as written. A zero-row result still writes a
        file that carries the schema.
        """

    @abstractmethod
    def partition(self, query: str, path: Path, column: str) -> int:
        """Run ``query`` and write its rows as Parquet into the new, empty directory ``path``, split by
        the value of ``column``: the rows of each value in the table directory ``path / f"{column}={v}"``
        (:func:`partition_dir`), without the column itself. Returns the row count. (One pass where one
        query per value would read the input once per value.)"""

    @abstractmethod
    def fetch(self, query: str) -> pa.Table:
        """The result of ``query`` as an Arrow table with canonical types (for small results)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Forget the view ``name`` (no error if there is none)."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources; the engine is unusable afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_engine(
    kind: str = "duckdb",
    *,
    temp_dir: Path | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Engine:
    """Open an engine: ``"duckdb"`` (in memory, spilling to ``temp_dir``) or ``"spark"`` (local mode).

    ``memory_limit`` is a size such as ``"4GB"``. For Spark, ``threads``, ``memory_limit`` and
    ``temp_dir`` take effect only when the process's one Spark session is first created.
    """
    if kind == "duckdb":
        from familycard.store.duck import DuckDBEngine

        return DuckDBEngine(temp_dir=temp_dir, threads=threads, memory_limit=memory_limit)
    if kind == "spark":
        from familycard.store.spark import SparkEngine

        return SparkEngine(temp_dir=temp_dir, threads=threads, memory_limit=memory_limit)
    raise ValueError(f"unknown engine {kind!r}: expected 'duckdb' or 'spark'")
