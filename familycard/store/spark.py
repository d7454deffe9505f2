"""The Spark engine: PySpark in local mode, one session per process, SQL transpiled from DuckDB's dialect.

Starting the JVM costs seconds, so the process's Spark session is created once, on first use, and every
:class:`SparkEngine` works in a child session of it (``newSession``): its own temporary views and SQL
settings over the shared context. Threads, driver memory and scratch directories are fixed when that
first session starts.

ANSI mode is on. DuckDB fails on a bad ``CAST``, on integer overflow and on ``//``/``%`` by zero; ANSI
Spark fails on the same, while non-ANSI Spark would return NULL or a wrapped number. With ANSI on, a
query either gives the same answer on both engines or fails loudly on Spark; it never silently differs.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from familycard.store.dialect import to_spark
from familycard.store.engine import Engine, canonical_table, check_name, check_output_dir, superseded_dir

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_LOCK = threading.Lock()
_BASE: SparkSession | None = None

# SQL settings of every session (also set on each child session, which starts from the context's).
_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.parquet.compression.codec": "lz4_raw",  # engine.PARQUET_COMPRESSION
    # INT96 (Spark's default) is a legacy encoding; DuckDB and Arrow write and expect microseconds.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?B)?\s*", re.IGNORECASE)


def spark_memory(size: str) -> str:
    """A DuckDB-style size (``"4GB"``, ``"512MiB"``) as a JVM size in megabytes (``"4096m"``)."""
    match = _SIZE.fullmatch(size)
    if not match:
        raise ValueError(f"not a memory size: {size!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[unit]
    return f"{max(1, round(number * scale))}m"


def _java() -> str:
    """The ``java`` Spark will run; a clear error if there is none."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise RuntimeError(
            "the Spark engine needs Java 17 or newer, and no 'java' was found "
            "(install a JDK, e.g. the openjdk-17-jre-headless package, or set JAVA_HOME)"
        )
    return java


def spark_session(
    *, temp_dir: Path | None = None, threads: int | None = None, memory_limit: str | None = None
) -> SparkSession:
    """The process's Spark session, created on first call (later arguments are then ignored)."""
    global _BASE
    with _LOCK:
        if _BASE is not None:
            return _BASE
        _java()
        from pyspark.sql import SparkSession

        base = Path(tempfile.mkdtemp(prefix="spark-", dir=temp_dir))
        log4j = base / "log4j2.properties"
        log4j.write_text(_LOG4J)
        java_options = f"-Dlog4j2.configurationFile={log4j.as_uri()} -Duser.timezone=UTC"
        n = threads or os.cpu_count() or 2
        builder = (
            SparkSession.builder.master(f"local[{n}]")
            .appName("familycard")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.extraJavaOptions", java_options)
            .config("spark.local.dir", str(base / "local"))
            .config("spark.sql.warehouse.dir", str(base / "warehouse"))
            .config("spark.sql.shuffle.partitions", str(max(4, 2 * n)))
            # A table directory holds part files only: no _SUCCESS marker (run.json says what is done).
            .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        )
        if memory_limit is not None:
            builder = builder.config("spark.driver.memory", spark_memory(memory_limit))
        for key, value in _SQL_CONF.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        session.sparkContext.setLogLevel("ERROR")
        # PySpark logs every failed query before raising it; the exception is enough.
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        _BASE = session
        return session


class SparkEngine(Engine):
    """Spark in local mode; SQL in DuckDB's dialect is transpiled by :func:`dialect.to_spark`."""

    name = "spark"

    def __init__(
        self, *, temp_dir: Path | None = None, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        base = spark_session(temp_dir=temp_dir, threads=threads, memory_limit=memory_limit)
        self._spark = base.newSession()
        for key, value in _SQL_CONF.items():
            self._spark.conf.set(key, value)
        self._views: set[str] = set()

    def _df(self, query: str) -> DataFrame:
        """``query`` (DuckDB dialect) as a DataFrame with canonical column types."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        df = self._spark.sql(to_spark(query))
        columns: list[Any] = []
        for field in df.schema.fields:
            column = F.col(f"`{field.name.replace('`', '``')}`")
            kind = field.dataType
            if isinstance(kind, T.ByteType | T.ShortType | T.IntegerType):
                column = column.cast(T.LongType()).alias(field.name)
            elif isinstance(kind, T.FloatType):
                column = column.cast(T.DoubleType()).alias(field.name)
            elif isinstance(kind, T.TimestampNTZType):
                column = column.cast(T.TimestampType()).alias(field.name)
            elif isinstance(kind, T.DecimalType) and kind.precision not in (18, 38):
                precision = 18 if kind.precision <= 18 else 38
                column = column.cast(T.DecimalType(precision, kind.scale)).alias(field.name)
            columns.append(column)
        return df.select(*columns)

    def _view(self, name: str, df: DataFrame) -> None:
        df.createOrReplaceTempView(name)
        self._views.add(name)

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make ``name`` a temporary view over an Arrow table (cast to canonical types)."""
        self._view(check_name(name), self._spark.createDataFrame(canonical_table(table)))

    def register_parquet(self, name: str, path: Path) -> None:
        """Make ``name`` a view over a table directory (all ``*.parquet`` files in it, less the rows its
        superseded list names)."""
        from pyspark.sql import functions as F

        check_name(name)
        parts = self._spark.read.parquet(str(path))
        sup = superseded_dir(path)
        if sup is not None:  # (engine.without_superseded_sql, as a DataFrame join: no helper views)
            t, s = parts.alias("t"), self._spark.read.parquet(str(sup)).alias("s")
            on = (F.col("t._key") == F.col("s._key")) & (F.col("t._seq") == F.col("s._seq"))
            on &= F.col("t._line").eqNullSafe(F.col("s._line"))
            parts = t.join(s, on & F.col("t._valid_to_seq").isNull(), "left_anti")
        self._view(name, parts)

    def register_query(self, name: str, query: str) -> None:
        """Make ``name`` a view over ``query``."""
        self._view(check_name(name), self._spark.sql(to_spark(query.strip().rstrip(";"))))

    def materialize(self, name: str, query: str, path: Path, *, order_by: Sequence[str] = ()) -> int:
        """Write the result of ``query`` as part files into ``path``, register ``name`` over them."""
        check_name(name)
        out = check_output_dir(Path(path))
        if order_by:
            query = f"SELECT * FROM ({query.strip().rstrip(';')}\n) AS _o ORDER BY {', '.join(order_by)}"
        self._df(query).write.mode("append").parquet(str(out))
        # Checksums of the local file system: not part of the table, and they would be carried along.
        for crc in out.glob(".*.crc"):
            crc.unlink()
        self.register_parquet(name, out)
        return int(self._spark.table(name).count())

    def partition(self, query: str, path: Path, column: str) -> int:
        """Write the rows of ``query`` into ``path/<column>=<value>/`` (Spark's ``partitionBy``)."""
        out = check_output_dir(Path(path))
        self._df(query).write.mode("append").partitionBy(column).parquet(str(out))
        for crc in out.rglob(".*.crc"):
            crc.unlink()
        if not any(out.rglob("*.parquet")):  # (no row: no directory, and nothing to infer a schema from)
            return 0
        return int(self._spark.read.parquet(str(out)).count())

    def fetch(self, query: str) -> pa.Table:
        """The result of ``query`` as an Arrow table with canonical types."""
        return canonical_table(self._df(query).toArrow())

    def drop(self, name: str) -> None:
        """Forget the view ``name`` (no error if there is none)."""
        self._spark.catalog.dropTempView(check_name(name))
        self._views.discard(name)

    def close(self) -> None:
        """Drop this engine's views; the process's Spark context stays up for the next engine."""
        for name in list(self._views):
            self.drop(name)
