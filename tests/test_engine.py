"""The warehouse engines (familycard.store.engine): DuckDB and Spark give the same answers to the same SQL.

``test_same_result`` runs every construct of the documented portable subset on both engines and compares
the Arrow tables, types included. The tests that take ``engine`` run on each engine and check values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from familycard.store.dialect import UnsupportedSQL, check_portable, to_spark
from familycard.store.engine import Engine, canonical_table, open_engine, partition_dir
from familycard.store.spark import _java as spark_java
from familycard.store.spark import spark_memory

UTC = dt.UTC

PEOPLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5, 6, 7, None], pa.int32()),
        "family_id": pa.array([10, 10, 10, 20, 20, 30, None, 30], pa.int64()),
        "name": pa.array(
            ["Әлия", "Ғалым", "abc-12", "Иван", None, "ҚҰРМАНҒАЛИ", "x", "Ерлан-7"], pa.large_string()
        ),
        "born": pa.array(
            [
                dt.date(2000, 2, 29),
                dt.date(1985, 1, 31),
                dt.date(2019, 12, 31),
                None,
                dt.date(1950, 3, 31),
                dt.date(2012, 6, 15),
                dt.date(2020, 1, 30),
                dt.date(1999, 12, 1),
            ]
        ),
        "income": [150000.5, None, 0.0, -2.5, 2.5, 3.5, 1e6, 42.25],
        "disabled": [False, True, None, False, False, True, False, False],
        "seen": pa.array([dt.datetime(2026, 1, 1, 10, 30, i) for i in range(7)] + [None], pa.timestamp("ms")),
    }
)
FAMILIES = pa.table({"family_id": [10, 20, 40], "region": ["Алматы", "Астана", None]})
REF = "DATE '2026-02-28'"

# (name, query): every construct of the portable subset documented in familycard.store.engine.
QUERIES = [
    ("select", "SELECT id, name, born, income, disabled, seen FROM people ORDER BY id"),
    ("order_nulls_default", "SELECT id, name FROM people ORDER BY name, id"),
    ("order_desc", "SELECT id, name FROM people ORDER BY name DESC, id"),
    ("order_nulls_first", "SELECT id FROM people ORDER BY id NULLS FIRST"),
    ("order_desc_nulls_last", "SELECT id FROM people ORDER BY family_id DESC NULLS LAST, id"),
    ("where_in_between", "SELECT id FROM people WHERE id IN (1, 2, 5) OR income BETWEEN 1 AND 4 ORDER BY id"),
    ("distinct_from", "SELECT id FROM people WHERE disabled IS DISTINCT FROM true ORDER BY id"),
    (
        "group_by",
        "SELECT family_id, count(*) AS n, count(id) AS ids, sum(id) AS total, min(born) AS first_born, "
        "max(name) AS last_name, round(avg(income), 6) AS mean, count(DISTINCT disabled) AS kinds "
        "FROM people GROUP BY family_id ORDER BY family_id",
    ),
    (
        "group_by_all",
        "SELECT family_id, count(*) AS n FROM people GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL",
    ),
    (
        "aggregates",
        "SELECT family_id, count_if(income > 0) AS positive, count(*) FILTER (WHERE disabled) AS dis, "
        "bool_or(disabled) AS any_dis, bool_and(income >= 0) AS all_pos, arg_max(name, income) AS richest, "
        "arg_min(name, income) AS poorest, median(income) AS med FROM people GROUP BY family_id ORDER BY 1",
    ),
    (
        "string_agg",
        "SELECT family_id, string_agg(name, ',' ORDER BY name) AS names FROM people GROUP BY 1 ORDER BY 1",
    ),
    (
        "windows",
        "SELECT id, row_number() OVER (PARTITION BY family_id ORDER BY id) AS rn, "
        "rank() OVER (ORDER BY family_id) AS rk, dense_rank() OVER (ORDER BY family_id) AS dr, "
        "lag(id) OVER (ORDER BY id) AS prev, lead(id, 2, 0) OVER (ORDER BY id) AS next2, "
        "sum(id) OVER (PARTITION BY family_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
        "AS running, count(*) OVER (PARTITION BY family_id) AS size, "
        "first_value(name) OVER (PARTITION BY family_id ORDER BY id) AS head, "
        "CAST(avg(id) OVER (PARTITION BY family_id) AS BIGINT) AS mean_id FROM people ORDER BY id",
    ),
    (
        "qualify_star",
        "SELECT * FROM people QUALIFY row_number() OVER (PARTITION BY family_id ORDER BY id DESC) = 1 "
        "ORDER BY id",
    ),
    (
        "qualify_alias_limit",
        "SELECT id, family_id, row_number() OVER (PARTITION BY family_id ORDER BY income) AS rn FROM people "
        "QUALIFY rn = 1 ORDER BY family_id LIMIT 2",
    ),
    ("inner_join", "SELECT p.id, f.region FROM people p JOIN families f USING (family_id) ORDER BY p.id"),
    (
        "left_join",
        "SELECT p.id, f.region FROM people p LEFT JOIN families f ON p.family_id = f.family_id ORDER BY p.id",
    ),
    (
        "full_join",
        "SELECT p.id AS person, f.family_id AS family FROM people p "
        "FULL JOIN families f ON p.family_id = f.family_id ORDER BY person, family",
    ),
    ("semi_join", "SELECT f.* FROM families f SEMI JOIN people p ON f.family_id = p.family_id ORDER BY 1"),
    ("anti_join", "SELECT f.* FROM families f ANTI JOIN people p ON f.family_id = p.family_id ORDER BY 1"),
    (
        "not_exists",
        "SELECT id FROM people p WHERE NOT EXISTS (SELECT 1 FROM families f WHERE f.family_id = p.family_id) "
        "ORDER BY id",
    ),
    (
        "cte_union_except",
        "WITH a AS (SELECT id FROM people WHERE id < 4), b AS (SELECT id FROM people WHERE id > 5) "
        "SELECT id FROM a UNION ALL SELECT id FROM b EXCEPT SELECT 2 ORDER BY id",
    ),
    ("values", "SELECT * FROM (VALUES (1, 'а'), (2, 'b')) v(k, label) ORDER BY k"),
    ("exclude", "SELECT * EXCLUDE (seen, born) FROM people ORDER BY id"),
    ("limit_offset", "SELECT id FROM people ORDER BY id LIMIT 3 OFFSET 2"),
    (
        "conditionals",
        "SELECT id, CASE WHEN income > 100 THEN 'high' WHEN income IS NULL THEN 'none' ELSE 'low' END "
        "AS band, "
        "coalesce(name, 'unknown') AS nm, nullif(family_id, 10) AS nf, if(disabled, 1, 0) AS flag, "
        "greatest(id, 3) AS g, least(id, 3) AS l FROM people ORDER BY id",
    ),
    (
        "casts",
        "SELECT id, CAST(id AS VARCHAR) AS txt, id::DOUBLE AS dbl, CAST('12' AS INTEGER) AS twelve, "
        "TRY_CAST(name AS INTEGER) AS num, CAST(income AS DECIMAL(18, 2)) AS money, "
        "CAST(born AS VARCHAR) AS born_txt, CAST('2024-02-29' AS DATE) AS leap FROM people ORDER BY id",
    ),
    (
        "arithmetic",
        "SELECT id, id + 1 AS plus, id * 3 AS times, id / 2 AS half, id // 2 AS idiv, id % 3 AS modulo, "
        "-7 // 2 AS neg_idiv, -7 % 3 AS neg_mod, 7.0 / 2 AS dec_div, round(income, 1) AS r1, "
        "round(2.5) AS r, "
        "abs(income) AS a, CAST(id / 2 AS BIGINT) AS rounded_half, CAST(floor(income) AS BIGINT) AS fl, "
        "CAST(ceil(income) AS BIGINT) AS cl "
        "FROM people ORDER BY id",
    ),
    (
        "decimals",
        "SELECT 1.5 * 1.5 AS product, sum(CAST(income AS DECIMAL(12, 2))) AS total, "
        "CAST(1.5 * 1.5 AS DECIMAL(10, 2)) AS fixed FROM people",
    ),
    (
        "strings",
        "SELECT id, name || '-' || family_id AS joined, concat(name, '/', family_id) AS cat, "
        "concat_ws('-', name, region) AS ws, length(name) AS len, upper(name) AS up, lower(name) AS low, "
        "trim('  x  ') AS tr, substring(name, 2, 3) AS sub, substr(name, 2) AS tail, left(name, 2) AS l2, "
        "right(name, 2) AS r2 FROM people LEFT JOIN families USING (family_id) ORDER BY id",
    ),
    (
        "more_strings",
        "SELECT id, replace(name, 'а', 'a') AS rep, strpos(name, 'л') AS pos, lpad(name, 6, '0') AS pad, "
        "split_part(name, '-', 2) AS part2, split_part(name, '-', 5) AS part5, starts_with(name, 'И') AS sw, "
        "contains(name, 'ал') AS has, name LIKE '%a%' AS lk, name ILIKE 'ә%' AS ilk FROM people ORDER BY id",
    ),
    (
        "regexps",
        "SELECT id, regexp_matches(name, '\\d+') AS has_digits, regexp_matches(name, '^ә', 'i') AS ci, "
        "regexp_replace(name, '[0-9]', '#', 'g') AS masked, regexp_replace(name, 'А', '_', 'gi') AS ci_rep, "
        "regexp_extract(name, '[a-zа-я]+') AS word, regexp_extract(name, '([^-]+)-(\\d+)', 2) AS num "
        "FROM people ORDER BY id",
    ),
    ("levenshtein_ascii", "SELECT levenshtein('kitten', 'sitting') AS d, levenshtein('', 'abc') AS e"),
    (
        "hashes",
        "SELECT id, md5(name) AS m, sha256(name) AS s, md5(CAST(id AS VARCHAR)) AS mid "
        "FROM people ORDER BY id",
    ),
    (
        "dates",
        f"SELECT id, born + 1 AS next_day, born - 1 AS prev_day, year(born) AS y, month(born) AS m, "
        f"day(born) AS d, extract(year FROM born) AS ey, last_day(born) AS eom, "
        f"make_date(2024, 2, 29) AS md, CAST(date_trunc('month', born) AS DATE) AS month_start, "
        f"CAST(born + INTERVAL 1 MONTH AS DATE) AS plus, "
        f"{REF} AS ref FROM people ORDER BY id",
    ),
    (
        "date_diff",
        f"SELECT id, date_diff('day', born, {REF}) AS days, date_diff('week', born, {REF}) AS weeks, "
        f"date_diff('month', born, {REF}) AS months, date_diff('quarter', born, {REF}) AS quarters, "
        f"date_diff('year', born, {REF}) AS years, date_diff('month', {REF}, born) AS back "
        f"FROM people ORDER BY id",
    ),
    (
        "ages",
        f"SELECT id, date_sub('year', born, {REF}) AS age, date_sub('month', born, {REF}) AS months, "
        f"date_sub('year', {REF}, born) AS negative, datesub('month', born, DATE '2020-02-29') AS to_leap "
        f"FROM people ORDER BY id",
    ),
    (
        "format_parse",
        "SELECT id, strftime(born, '%d.%m.%Y') AS ru, strftime(born, '%Y-%m') AS ym, "
        "CAST(strptime(strftime(born, '%d.%m.%Y'), '%d.%m.%Y') AS DATE) AS back, "
        "strptime('5.1.2020 7:08:09', '%d.%m.%Y %H:%M:%S') AS ts, "
        "try_strptime('31.02.2020', '%d.%m.%Y') AS bad "
        "FROM people ORDER BY id",
    ),
    (
        "timestamps",
        "SELECT id, seen, CAST(seen AS DATE) AS day, TIMESTAMP '2026-01-01 10:00:00' AS lit, "
        "seen > TIMESTAMP '2026-01-01 10:30:03' AS later FROM people ORDER BY id",
    ),
    ("empty", "SELECT id, name, born FROM people WHERE id > 100"),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, spark_dir: Path) -> Iterator[tuple[Engine, Engine]]:
    """A DuckDB and a Spark engine with ``people`` and ``families`` registered."""
    duck = open_engine("duckdb", temp_dir=tmp_path_factory.mktemp("duck"))
    spark = open_engine("spark", temp_dir=spark_dir, threads=2)
    for engine in (duck, spark):
        engine.register_arrow("people", PEOPLE)
        engine.register_arrow("families", FAMILIES)
    yield duck, spark
    duck.close()
    spark.close()


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize(("name", "query"), QUERIES, ids=[name for name, _ in QUERIES])
def test_same_result(pair: tuple[Engine, Engine], name: str, query: str) -> None:
    duck, spark = pair
    expected = duck.fetch(query)
    got = spark.fetch(query)
    assert got.schema == expected.schema, f"{name}: {to_spark(query)}"
    assert got.to_pylist() == expected.to_pylist(), f"{name}: {to_spark(query)}"


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_tables_written_by_one_engine_read_the_same_by_the_other(
    pair: tuple[Engine, Engine], tmp_path: Path
) -> None:
    duck, spark = pair
    query = "SELECT * FROM people"
    for writer, reader in ((duck, spark), (spark, duck)):
        out = tmp_path / writer.name
        writer.materialize("copy", query, out, order_by=["id"])
        reader.register_parquet("copy", out)
        assert reader.fetch("SELECT * FROM copy ORDER BY id") == duck.fetch(f"{query} ORDER BY id")
        for engine in (duck, spark):
            engine.drop("copy")


def test_register_arrow_round_trip(engine: Engine) -> None:
    engine.register_arrow("people", PEOPLE)
    got = engine.fetch("SELECT * FROM people ORDER BY id")
    expected = canonical_table(PEOPLE).sort_by([("id", "ascending")])
    assert got.schema == expected.schema
    assert got.schema.field("id").type == pa.int64()
    assert got.schema.field("name").type == pa.string()
    assert got.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert got.to_pylist() == expected.to_pylist()


def test_materialize_writes_parquet_and_registers_a_view(engine: Engine, tmp_path: Path) -> None:
    engine.register_arrow("people", PEOPLE)
    out = tmp_path / "adults"
    rows = engine.materialize(
        "adults",
        "SELECT id, name, date_sub('year', born, DATE '2026-01-01') AS age FROM people "
        "WHERE born < DATE '2008-01-01'",
        out,
        order_by=["age DESC", "id"],
    )
    assert rows == 4
    files = sorted(out.glob("*.parquet"))
    assert files and not [p for p in out.iterdir() if p.name.startswith(".")]
    written = pa.concat_tables([pq.read_table(f) for f in files])
    assert written.column("age").to_pylist() == [75, 40, 26, 25]  # as ordered
    assert written.schema.field("age").type == pa.int64()
    assert engine.fetch("SELECT count(*) AS n FROM adults").column("n").to_pylist() == [4]
    # Both engines write the pipeline's one codec (engine.PARQUET_COMPRESSION: LZ4_RAW, which Arrow
    # names LZ4).
    codecs = {
        meta.row_group(g).column(c).compression
        for meta in (pq.ParquetFile(f).metadata for f in files)
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }
    assert codecs in ({"LZ4"}, {"LZ4_RAW"})


def test_materialize_zero_rows_keeps_the_schema(engine: Engine, tmp_path: Path) -> None:
    engine.register_arrow("people", PEOPLE)
    out = tmp_path / "nobody"
    assert engine.materialize("nobody", "SELECT id, name, born FROM people WHERE id > 100", out) == 0
    files = list(out.glob("*.parquet"))
    assert files
    schema = pq.read_schema(files[0])
    assert schema.names == ["id", "name", "born"]
    got = engine.fetch("SELECT * FROM nobody")
    assert got.num_rows == 0
    assert got.schema == pa.schema([("id", pa.int64()), ("name", pa.string()), ("born", pa.date32())])


def test_materialize_refuses_a_directory_with_files(engine: Engine, tmp_path: Path) -> None:
    engine.register_arrow("people", PEOPLE)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "part-0.parquet").write_bytes(b"")
    with pytest.raises(FileExistsError):
        engine.materialize("t", "SELECT * FROM people", tmp_path / "t")


def test_partition_writes_one_table_per_value(engine: Engine, tmp_path: Path) -> None:
    """One pass splits the rows by a column's value: each value's rows are a table directory of their own,
    without the column, readable as any table; a value no row has gets no directory."""
    engine.register_arrow("people", PEOPLE)
    out = tmp_path / "split"
    query = "SELECT id, name, CAST(id % 2 AS BIGINT) AS half FROM people WHERE id <> 2"
    rows = engine.partition(query, out, "half")
    assert rows == PEOPLE.num_rows - 2  # (not id 2, nor the row without an id)
    expected = engine.fetch(f"{query} ORDER BY id").to_pylist()
    for value in (0, 1, 2):
        part = partition_dir(out, "half", value)
        kept = [{"id": r["id"], "name": r["name"]} for r in expected if r["half"] == value]
        if not kept:
            assert not part.exists()
            continue
        assert not [p for p in part.iterdir() if p.name.startswith(".") or not p.name.endswith(".parquet")]
        engine.register_parquet("piece", part)
        assert engine.fetch("SELECT * FROM piece ORDER BY id").to_pylist() == kept
    with pytest.raises(FileExistsError):
        engine.partition(query, out, "half")
    nothing = tmp_path / "nothing"
    assert engine.partition(f"{query} AND id > 100", nothing, "half") == 0
    assert not list(nothing.glob("half=*"))


def test_values_on_each_engine(engine: Engine) -> None:
    engine.register_arrow("people", PEOPLE)
    got = engine.fetch(
        "SELECT id, date_sub('year', born, DATE '2026-02-28') AS age, md5(name) AS h, "
        "length(name) AS n, upper(name) AS up FROM people WHERE id IN (1, 2) ORDER BY id"
    ).to_pylist()
    assert got == [
        {"id": 1, "age": 26, "h": hashlib.md5("Әлия".encode()).hexdigest(), "n": 4, "up": "ӘЛИЯ"},
        {"id": 2, "age": 41, "h": hashlib.md5("Ғалым".encode()).hexdigest(), "n": 5, "up": "ҒАЛЫМ"},
    ]
    nulls = engine.fetch("SELECT id FROM people ORDER BY id").column("id").to_pylist()
    assert nulls[-1] is None  # DuckDB's default: NULLs last, on both engines


def test_drop_forgets_a_view(engine: Engine) -> None:
    engine.register_arrow("people", PEOPLE)
    engine.drop("people")
    engine.drop("people")  # no error the second time
    with pytest.raises(Exception, match=r"(?i)people"):
        engine.fetch("SELECT * FROM people")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT hash(name) AS h FROM people",
        "SELECT regexp_replace(name, 'a', 'b') AS r FROM people",
        "SELECT regexp_matches(name, 'a', 's') AS r FROM people",
        "SELECT date_diff('hour', seen, seen) AS h FROM people",
    ],
)
def test_non_portable_sql_is_refused_on_both_engines(engine: Engine, query: str) -> None:
    engine.register_arrow("people", PEOPLE)
    with pytest.raises(UnsupportedSQL):
        engine.fetch(query)


def test_view_names_are_plain_identifiers(engine: Engine) -> None:
    with pytest.raises(ValueError, match="identifier"):
        engine.register_arrow("people; DROP", PEOPLE)


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        open_engine("oracle")


def test_spark_without_java_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(RuntimeError, match="needs Java 17"):
        spark_java()


def test_memory_sizes_for_spark() -> None:
    assert spark_memory("4GB") == "4096m"
    assert spark_memory("512MiB") == "512m"
    assert spark_memory("1.5 GB") == "1536m"
    with pytest.raises(ValueError):
        spark_memory("lots")


def test_importing_the_engine_does_not_start_spark() -> None:
    code = "import sys, familycard.store.engine, familycard.store.warehouse; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("duckdb", "spark"),
    [
        (
            "SELECT * FROM t QUALIFY row_number() OVER (ORDER BY a) = 1",
            "SELECT * EXCEPT (_w) FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY a NULLS LAST) AS _w FROM t) "
            "AS _t WHERE _w = 1",
        ),
        ("SELECT date_diff('year', a, b) AS x", "SELECT (YEAR(b) - YEAR(a)) AS x"),
        (
            "SELECT date_diff('month', a, b) AS x",
            "SELECT ((YEAR(b) - YEAR(a)) * 12 + (MONTH(b) - MONTH(a))) AS x",
        ),
        ("SELECT date_diff('day', a, b) AS x", "SELECT DATEDIFF(CAST(b AS DATE), CAST(a AS DATE)) AS x"),
        ("SELECT CAST(a / b AS BIGINT) AS x", "SELECT CAST(BROUND(CAST(a AS DOUBLE) / b) AS BIGINT) AS x"),
        ("SELECT regexp_matches(a, 'x', 'i') AS x", "SELECT a RLIKE '(?iu)x' AS x"),
        ("SELECT regexp_replace(a, 'x', 'y', 'g') AS x", "SELECT REGEXP_REPLACE(a, 'x', 'y') AS x"),
        ("SELECT try_strptime(a, '%d.%m.%Y') AS x", "SELECT TRY_TO_TIMESTAMP(a, 'd.M.yyyy') AS x"),
    ],
)
def test_spark_rewrites(duckdb: str, spark: str) -> None:
    assert to_spark(duckdb) == spark


def test_date_sub_rewrite_keeps_duckdb_month_end_rule() -> None:
    sql = to_spark("SELECT date_sub('year', a, b) AS age")
    assert "LAST_DAY(b)" in sql and "DIV 12" in sql
    check_portable("SELECT date_sub('year', a, b) AS age")
    with pytest.raises(UnsupportedSQL):
        check_portable("SELECT date_sub('day', a, b) AS d")
