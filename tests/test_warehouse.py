"""The snapshot store (familycard.store.warehouse): immutable runs, atomic switch, carry and append."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from familycard.store.engine import Engine, open_engine
from familycard.store.warehouse import RUN_ID, Warehouse, content_digest

PEOPLE = pa.table(
    {
        "id": [1, 2, 3],
        "name": ["Әлия", "Ғалым", None],
        "born": [dt.date(2000, 2, 29), dt.date(1985, 1, 31), None],
    }
)


def write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def committed(wh: Warehouse, tables: dict[str, pa.Table]) -> str:
    """Commit a run that writes ``tables``; return its id."""
    run = wh.begin()
    for name, table in tables.items():
        write(run.new_table(name) / "part-0.parquet", table)
    run.commit({"engine": "test"})
    return run.id


def test_empty_warehouse(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    assert wh.current() is None
    assert wh.tables() == []
    with pytest.raises(KeyError, match="no committed run"):
        wh.table_path("people")


def test_commit_switches_current(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    run = wh.begin()
    assert RUN_ID.fullmatch(run.id)
    write(run.new_table("people") / "part-0.parquet", PEOPLE)
    assert wh.current() is None  # invisible until committed
    run.commit({"engine": "duckdb", "families": 2})
    assert wh.current() == run.id
    assert (tmp_path / "CURRENT").read_text().strip() == run.id
    assert wh.tables() == ["people"]
    assert wh.read("people").to_pylist() == PEOPLE.to_pylist()
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["engine"] == "duckdb" and meta["families"] == 2 and meta["base"] is None
    assert meta["tables"]["people"]["rows"] == 3
    assert wh.meta() == meta
    with pytest.raises(KeyError, match="'families' is not in run"):
        wh.table_path("families")


def test_run_ids_sort_in_the_order_runs_begin(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    ids = [wh.begin().id for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    with pytest.raises(ValueError, match="does not sort after"):
        wh.begin("20000101T000000Z-0001")


def test_abort_leaves_no_trace(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    first = committed(wh, {"people": PEOPLE})
    run = wh.begin()
    write(run.new_table("people") / "part-0.parquet", PEOPLE.slice(0, 1))
    run.abort()
    assert not run.path.exists()
    assert sorted(p.name for p in wh.runs_dir.iterdir()) == [first]
    assert wh.current() == first and wh.read("people").num_rows == 3


def test_carry_hard_links_and_leaves_the_previous_run_untouched(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    first = committed(wh, {"people": PEOPLE, "families": pa.table({"family_id": [10]})})
    before = {p.name: p.read_bytes() for p in wh.table_path("people").iterdir()}
    run = wh.begin()
    carried = run.carry("people")
    write(run.new_table("families") / "part-0.parquet", pa.table({"family_id": [10, 20]}))
    run.commit({})
    source = wh.table_path("people", first) / "part-0.parquet"
    assert os.stat(carried / "part-0.parquet").st_ino == os.stat(source).st_ino
    assert {p.name: p.read_bytes() for p in wh.table_path("people", first).iterdir()} == before
    assert wh.read("people").to_pylist() == wh.read("people", first).to_pylist()
    assert wh.read("families", first).num_rows == 1 and wh.read("families").num_rows == 2


def test_a_stage_reads_its_own_tables_first_and_carries_the_rest(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    first = wh.begin()
    with pytest.raises(KeyError, match="'people'"):
        first.input_path("people")
    first.abort()
    base = committed(wh, {"people": PEOPLE, "families": pa.table({"family_id": [10]})})
    run = wh.begin()
    assert run.input_path("families") == wh.table_path("families", base)
    write(run.new_table("families") / "part-0.parquet", pa.table({"family_id": [10, 20]}))
    assert run.input_path("families") == run.path / "families"
    run.carry_rest()
    run.commit({})
    assert wh.tables() == ["families", "people"]
    assert wh.read("families").num_rows == 2
    assert wh.read("people").to_pylist() == wh.read("people", base).to_pylist()


def test_link_and_adopt_build_a_table_part_by_part(tmp_path: Path) -> None:
    """A table rewritten part by part (a feed's history): some parts hard-linked from the previous run,
    new ones adopted from an engine's output directory under names that say what they hold."""
    wh = Warehouse(tmp_path)
    run = wh.begin()
    out = tmp_path / "scratch"
    out.mkdir()
    write(out / "part-00000-x.parquet", PEOPLE.slice(0, 1))
    write(out / "part-00001-x.parquet", PEOPLE.slice(1, 1))
    adopted = run.adopt("people", out, "closed")
    assert [p.name for p in adopted] == [f"closed-{run.id}-0000.parquet", f"closed-{run.id}-0001.parquet"]
    assert len(list(out.iterdir())) == 2  # the engine's output is left for the caller to remove
    write(out / "part-00002-x.parquet", PEOPLE.slice(2, 1))
    (out / "part-00000-x.parquet").unlink()
    (out / "part-00001-x.parquet").unlink()
    assert [p.name for p in run.adopt("people", out, "open")] == [f"open-{run.id}-0000.parquet"]
    with pytest.raises(ValueError, match="lower-case letters"):
        run.adopt("people", out, "Open-1")
    run.commit({})
    first = run.id
    assert wh.read("people").num_rows == 3
    expected = [*sorted(p.name for p in adopted), f"open-{first}-0000.parquet"]
    assert [p.name for p in wh.parts("people")] == expected

    run = wh.begin()
    closed = [p for p in wh.parts("people") if p.name.startswith("closed-")]
    run.link("people", closed)
    with pytest.raises(FileExistsError):
        run.link("people", closed[:1])
    run.commit({})
    assert wh.read("people").num_rows == 2
    for part in closed:
        assert os.stat(wh.table_path("people") / part.name).st_ino == os.stat(part).st_ino
    assert wh.read("people", first).num_rows == 3


HISTORY = pa.table(
    {
        "_key": ["a", "a", "b", "c", "c", "d", "d"],
        "_seq": [1, 2, 1, 1, 3, 2, 3],
        "_line": pa.array([1, 4, 2, 3, 1, None, 7], pa.int64()),
        "amount": [1.0, 10.0, 2.0, 3.0, 30.0, None, 40.0],
        "_valid_to_seq": pa.array([2, None, None, 3, None, 3, None], pa.int64()),
    }
)
"""A history: a's first version closed (in a closed part), b current, c closed by a later run, d deleted
by a full delivery (a version no line said) and back in a later one."""


def test_superseded_rows_are_left_out_by_every_reader(engine: Engine, tmp_path: Path) -> None:
    """A run that closes current versions without rewriting the part file that holds them lists them in
    the table's ``_superseded`` directory: the engines' views and ``Warehouse.read`` leave out exactly
    those current rows (their closed copies stay), by key, delivery and line (a first delivery's open
    part also holds rows of a key that are not its current version; a null line matches a null line),
    a carried table keeps the list, and ``run.json`` counts the rows a reader sees."""
    from familycard.store.engine import SUPERSEDED

    wh = Warehouse(tmp_path / "data")
    run = wh.begin()

    def rows(key: str, seq: int, line: int | None, amount: float | None) -> pa.Table:
        return pa.table(
            {
                "_key": [key],
                "_seq": [seq],
                "_line": pa.array([line], pa.int64()),
                "amount": pa.array([amount], pa.float64()),
                "_valid_to_seq": pa.array([None], pa.int64()),
            }
        )

    pieces = [
        ("closed", HISTORY.slice(0, 1)),  # a's first version
        ("open", pa.concat_tables([HISTORY.slice(1, 2), rows("b", 1, 6, 2.5)])),  # a, b and b repeated
        ("open", rows("c", 1, 3, 3.0)),  # c's first version, current when written
        ("closed", HISTORY.slice(3, 2)),  # the run that closed it: c's versions
        ("open", rows("d", 2, None, None)),  # d's tombstone, current when written
        ("closed", HISTORY.slice(5, 2)),  # the run that closed it: d's versions
    ]
    for i, (prefix, table) in enumerate(pieces):
        out = tmp_path / f"scratch-{i}"
        out.mkdir()
        write(out / "part-0.parquet", table)
        run.adopt("src_x", out, prefix)
    out = tmp_path / "scratch-list"
    out.mkdir()
    superseded = {"_key": ["c", "b", "d"], "_seq": [1, 1, 2], "_line": pa.array([3, 6, None], pa.int64())}
    write(out / "part-0.parquet", pa.table(superseded))
    with pytest.raises(ValueError, match="no subdirectory"):
        run.adopt("src_x", out, "superseded", into="_other")
    listed = run.adopt("src_x", out, "superseded", into=SUPERSEDED)
    assert [p.parent.name for p in listed] == [SUPERSEDED]
    run.commit({})
    assert wh.meta()["tables"]["src_x"]["rows"] == 7
    assert wh.meta()["tables"]["src_x"]["superseded"] == 3
    assert content_digest(wh.read("src_x")) == content_digest(HISTORY)

    engine.register_parquet("src_x", wh.table_path("src_x"))
    got = engine.fetch("SELECT _key, _seq, _line, amount, _valid_to_seq FROM src_x")
    assert content_digest(got) == content_digest(HISTORY)

    run = wh.begin()
    run.carry("src_x")
    run.commit({})
    carried = wh.table_path("src_x") / SUPERSEDED
    assert [p.name for p in carried.iterdir()] == [listed[0].name]
    assert os.stat(carried / listed[0].name).st_ino == os.stat(listed[0]).st_ino
    assert content_digest(wh.read("src_x")) == content_digest(HISTORY)


def test_append_adds_a_part(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    run = wh.begin()
    write(run.append("events"), pa.table({"n": [1, 2]}))  # first run: a new table
    run.commit({})
    first = run.id
    run = wh.begin()
    part = run.append("events")
    assert part.name == f"part-{run.id}-0000.parquet"
    write(part, pa.table({"n": [3]}))
    write(run.append("events"), pa.table({"n": [4]}))
    run.commit({})
    assert sorted(wh.read("events").column("n").to_pylist()) == [1, 2, 3, 4]
    assert wh.read("events", first).column("n").to_pylist() == [1, 2]
    assert wh.meta()["tables"]["events"] == {
        "rows": 4,
        "files": 3,
        "bytes": sum(p.stat().st_size for p in wh.table_path("events").glob("*.parquet")),
    }


def test_reader_of_the_current_run_sees_old_content_while_a_run_is_half_written(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    committed(wh, {"people": PEOPLE})
    engine = open_engine("duckdb")
    wh.register(engine)
    run = wh.begin()
    table = run.new_table("people")
    write(table / "part-0.parquet", PEOPLE.slice(0, 1))  # half written: one of two parts
    reader = Warehouse(tmp_path)
    assert reader.read("people").num_rows == 3
    assert engine.fetch("SELECT count(*) AS n FROM people").column("n").to_pylist() == [3]
    write(table / "part-1.parquet", PEOPLE.slice(1, 1))
    run.commit({})
    assert reader.read("people").num_rows == 2
    # A view registered on the old snapshot keeps reading it: its files are never rewritten.
    assert engine.fetch("SELECT count(*) AS n FROM people").column("n").to_pylist() == [3]
    engine.close()


def test_a_run_cannot_commit_over_a_newer_one(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    slow = wh.begin()
    committed(wh, {"people": PEOPLE})
    write(slow.new_table("people") / "part-0.parquet", PEOPLE)
    with pytest.raises(RuntimeError, match="committed since"):
        slow.commit({})
    with pytest.raises(ValueError, match="written by the warehouse"):
        wh.begin().commit({"tables": 1})


def test_prune_keeps_the_current_and_n_previous_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    runs = [committed(wh, {"people": PEOPLE})]
    failed = wh.begin()  # never committed: a leftover once a later run commits
    runs += [committed(wh, {"people": PEOPLE}) for _ in range(3)]
    in_progress = wh.begin()
    assert wh.prune(keep=1) == [runs[0], failed.id, runs[1]]
    assert wh.runs() == runs[2:]
    assert in_progress.path.is_dir()
    assert wh.read("people").num_rows == 3
    assert wh.prune(keep=0) == [runs[2]]
    assert wh.runs() == [runs[3]]


def test_content_digest_ignores_row_order_and_chunking() -> None:
    digest = content_digest(PEOPLE)
    shuffled = PEOPLE.take([2, 0, 1])
    chunked = pa.Table.from_batches(PEOPLE.to_batches(max_chunksize=1))
    assert chunked.column(0).num_chunks == 3
    assert content_digest(shuffled) == digest
    assert content_digest(chunked) == digest
    narrow = PEOPLE.cast(pa.schema([("id", pa.int32()), ("name", pa.large_string()), ("born", pa.date32())]))
    assert content_digest(narrow) == digest  # canonical types: the engines' int32/int64 agree


def test_content_digest_sees_one_changed_value() -> None:
    digest = content_digest(PEOPLE)
    changed = PEOPLE.set_column(1, "name", pa.array(["Әлия", "Ғалым", "x"]))
    assert content_digest(changed) != digest
    renamed = PEOPLE.rename_columns(["id", "full_name", "born"])
    assert content_digest(renamed) != digest
    empty_not_null = PEOPLE.set_column(1, "name", pa.array(["Әлия", "Ғалым", ""]))
    assert content_digest(empty_not_null) != digest
    assert content_digest(pa.table({"x": [1.0, None]})) != content_digest(pa.table({"x": [1.0, 0.0]}))


def test_content_digest_of_parquet_written_in_row_groups(tmp_path: Path) -> None:
    pq.write_table(PEOPLE, tmp_path / "a.parquet", row_group_size=1)
    assert content_digest(pq.read_table(tmp_path / "a.parquet")) == content_digest(PEOPLE)


def test_pipeline_runs_on_each_engine(engine: Engine, tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    run = wh.begin()
    engine.register_arrow("people_in", PEOPLE)
    assert engine.materialize("people", "SELECT * FROM people_in", run.new_table("people")) == 3
    run.commit({"engine": engine.name})
    assert content_digest(wh.read("people")) == content_digest(PEOPLE)

    run = wh.begin()
    run.carry("people")
    wh.register(engine, wh.current())
    query = "SELECT id, date_sub('year', born, DATE '2026-01-01') AS age FROM people WHERE born IS NOT NULL"
    assert engine.materialize("ages", query, run.new_table("ages"), order_by=["id"]) == 2
    run.commit({"engine": engine.name})
    assert wh.tables() == ["ages", "people"]
    assert wh.read("ages").to_pylist() == [{"id": 1, "age": 25}, {"id": 2, "age": 40}]
    assert wh.meta()["tables"]["ages"]["rows"] == 2


def test_a_stage_scope_commits_its_own_run_and_aborts_on_failure(tmp_path: Path) -> None:
    from familycard.store.scope import stage_scope

    wh = Warehouse(tmp_path)
    base = committed(wh, {"people": PEOPLE})
    with open_engine("duckdb", temp_dir=tmp_path / "engine") as eng:
        with pytest.raises(RuntimeError), stage_scope(wh, eng, None, "probe") as scope:
            scope.scratch.mkdir(parents=True)
            eng.register_arrow("probe_view", PEOPLE)
            scope.views.append("probe_view")
            raise RuntimeError("the stage failed")
        assert wh.current() == base and not scope.scratch.exists()
        with pytest.raises(duckdb.CatalogException):
            eng.fetch("SELECT * FROM probe_view")
        with stage_scope(wh, eng, None, "probe") as scope:
            write(scope.run.new_table("families") / "part-0.parquet", pa.table({"family_id": [1]}))
            scope.finish({"stage": "probe"})
    assert wh.current() != base and wh.tables() == ["families", "people"]
