"""Ingestion: deliveries recorded, broken files rejected whole, bad rows quarantined and released,
history kept per record, the same delivery twice changes nothing, and both engines agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from familycard.pipeline import MEMORY_LIMIT, quality, quarantine, run_pipeline
from familycard.sources.catalogue import load_catalogue, load_feed
from familycard.sources.ingest import Ingestion, IngestReport
from familycard.sources.periods import period_bounds
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse, content_digest
from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate

if TYPE_CHECKING:
    from conftest import SparkRun

    from familycard.sources.catalogue import Catalogue

NATION = SynthConfig(families=600, seed=21, months=6)


@pytest.fixture(scope="module")
def nation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nation")
    generate(NATION, out)
    return out


def _ingest(sources: Path, data: Path, cat: Catalogue | None = None) -> IngestReport:
    """Ingestion alone (the shipped catalogue unless ``cat``), with the pipeline's engine settings: what
    these tests check is what ingestion writes; the later stages have their own tests, and the whole
    pipeline is run by conftest's shared runs, the CLI's tests and the rejected-file test below."""
    with open_engine("duckdb", temp_dir=data / "tmp", memory_limit=MEMORY_LIMIT) as eng:
        return Ingestion(sources, Warehouse(data), eng, catalogue=cat).run()


@pytest.fixture(scope="module")
def loaded(nation: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    _ingest(nation / "sources", data)
    return data


def _sources_copy(nation: Path, tmp_path: Path) -> Path:
    src = tmp_path / "sources"
    shutil.copytree(nation / "sources", src)
    return src


def _digests(data: Path) -> dict[str, str]:
    wh = Warehouse(data)
    out = {}
    for t in wh.tables():
        table = wh.read(t)
        keep = [c for c in table.column_names if c != "run"]
        out[t] = content_digest(table.select(keep))
    return out


# ------------------------------------------------------------------------------- a whole small nation


def test_every_delivery_is_recorded_and_every_row_accounted_for(nation: Path, loaded: Path) -> None:
    wh = Warehouse(loaded)
    deliveries = wh.read("deliveries")
    manifest = json.loads((nation / "sources" / "manifest.json").read_text(encoding="utf-8"))
    assert deliveries.num_rows == len(manifest["deliveries"])
    assert set(deliveries["status"].to_pylist()) == {"loaded"}
    by_file = {d["file"]: d for d in manifest["deliveries"]}
    for d in deliveries.to_pylist():
        note = by_file[d["file"]]
        assert d["sha256"] == note["sha256"]
        assert d["rows_read"] == note["rows"]
        assert d["rows_accepted"] + d["rows_rejected"] == d["rows_read"]
    # The generator's faults: mistyped IINs are set aside (flagged), never rejected.
    assert sum(deliveries["rows_flagged"].to_pylist()) > 0


def test_nothing_delivered_is_lost(nation: Path, loaded: Path) -> None:
    """Every record the generator wrote (truth: source_records) is in its feed's history."""
    truth = pq.read_table(nation / "truth" / "source_records.parquet", columns=["feed", "record_id"])
    wh = Warehouse(loaded)
    cat = load_catalogue()
    for spec in cat:
        expected = set(pc.filter(truth["record_id"], pc.equal(truth["feed"], spec.name)).to_pylist())
        got = set(wh.read(f"src_{spec.name}")["_key"].to_pylist())
        assert expected <= got, f"{spec.name}: {len(expected - got)} records missing"


def test_civil_registry_history_follows_births_and_deaths(nation: Path, loaded: Path) -> None:
    """The registry's history against the truth: everyone with an IIN born by the last period is current,
    with the death date the simulation gave (as an update in the period it was delivered)."""
    truth = pq.read_table(nation / "truth" / "persons.parquet").to_pylist()
    records = pq.read_table(nation / "truth" / "source_records.parquet")
    records = records.filter(pc.equal(records["feed"], "civil_registry")).to_pylist()
    person_of = {r["record_id"]: r["person_id"] for r in records}
    hist = Warehouse(loaded).read("src_civil_registry").to_pylist()
    current = {person_of[h["_key"]]: h for h in hist if h["_valid_to_seq"] is None and not h["_deleted"]}
    # The state as of the registry's last delivered period (a delivery may be missing: faults).
    deliveries = Warehouse(loaded).read("deliveries").to_pylist()
    last_end = period_bounds(max(d["period"] for d in deliveries if d["feed"] == "civil_registry"))[1]
    expected = {p["person_id"]: p for p in truth if p["iin"] is not None and p["birth_date"] <= last_end}
    assert set(current) == set(expected)
    died = 0
    for pid, h in current.items():
        death = expected[pid]["death_date"]
        assert h["death_date"] == (death if death is not None and death <= last_end else None)
        if death is not None and NATION.start <= death <= last_end:
            died += 1
            versions = sorted((v for v in hist if person_of[v["_key"]] == pid), key=lambda v: v["_seq"])
            assert versions[0]["death_date"] is None and versions[-1]["death_date"] == death
            assert versions[-1]["_op"] == "update"
            assert versions[-1]["_period"] >= f"{death:%Y-%m}"
    assert died > 0


def test_duplicates_are_noted_not_loaded_twice(loaded: Path) -> None:
    wh = Warehouse(loaded)
    findings = wh.read("findings")
    dups = findings.filter(pc.equal(findings["rule"], "duplicate"))
    assert dups.num_rows > 0
    assert set(dups["severity"].to_pylist()) == {"warn"}
    for spec in load_catalogue():
        hist = wh.read(f"src_{spec.name}")
        versions = (
            pa.table({"k": hist["_key"], "s": hist["_seq"]}).group_by(["k", "s"]).aggregate([("k", "count")])
        )
        assert max(versions["k_count"].to_pylist(), default=1) == 1, spec.name


def test_reingesting_the_same_files_changes_nothing(
    nation: Path, loaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files the checksum cache does not know (copied, touched) are hashed by the reading processes and
    skipped there when their feed had them already; their checksums are remembered for the next run."""
    from familycard.sources import ingest

    data = tmp_path / "data"
    shutil.copytree(loaded, data)
    before = _digests(data)
    run_before = Warehouse(data).current()
    src = _sources_copy(nation, tmp_path)
    for f in src.rglob("*.csv"):
        f.touch()  # same content, new time
    report = _ingest(src, data)
    files = [f for f in src.rglob("*_*_*.*") if f.name != "manifest.json"]
    assert report.run is None and report.skipped == len(files)
    assert Warehouse(data).current() == run_before
    assert _digests(data) == before
    read: list[Path] = []
    real = ingest.sha256_file
    monkeypatch.setattr(ingest, "sha256_file", lambda p: read.append(p) or real(p))
    assert _ingest(src, data).run is None
    assert read == []


def test_quality_report(loaded: Path) -> None:
    q = quality(loaded).feeds
    rows = {r["feed"]: r for r in q.to_pylist()}
    assert set(rows) == set(load_catalogue().names())
    reg = rows["civil_registry"]
    assert reg["completeness"] is not None and 0.5 < reg["completeness"] <= 1
    assert reg["validity"] == 1.0  # the reference registry carries no IIN faults
    health = rows["health"]
    assert health["validity"] < 1.0 and health["quarantine_open"] > 0
    assert 0.9 < health["consistency"] <= 1.0
    assert all(r["expected"] >= 1 and r["missing"] >= 0 for r in rows.values())


# ---------------------------------------------------------------------------------- broken files


def _first(src: Path, feed: str) -> Path:
    return sorted((src / feed).iterdir())[0]


BREAKS = {
    "truncated": ("civil_registry", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2 - 7])),
    "wrong_encoding": (
        "address_registry",
        lambda p: p.write_bytes(p.read_bytes().decode("cp1251").encode("utf-16")),
    ),
    "wrong_delimiter": ("unemployment", lambda p: p.write_bytes(p.read_bytes().replace(b";", b"\t"))),
    "missing_column": (
        "disability",
        lambda p: p.write_bytes(p.read_bytes().replace("Группа;".encode(), b"", 1)),
    ),
    "empty": ("education", lambda p: p.write_bytes(b"")),
    "corrupt_parquet": ("health", lambda p: p.write_bytes(p.read_bytes()[:-40])),
    "bad_json": ("civil_acts", lambda p: p.write_bytes(p.read_bytes().replace(b"}", b"", 1))),
}


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_broken_file_is_rejected_whole_and_others_load(nation: Path, tmp_path: Path, case: str) -> None:
    feed, breaker = BREAKS[case]
    src = _sources_copy(nation, tmp_path)
    note = src / "manifest.json"
    note.unlink()  # without the delivery note: the reader alone must catch it
    victim = _first(src, feed)
    breaker(victim)
    data = tmp_path / "data"
    _ingest(src, data)
    wh = Warehouse(data)
    d = wh.read("deliveries").to_pylist()
    bad = [x for x in d if x["status"] == "rejected"]
    assert [x["file"] for x in bad] == [victim.relative_to(src).as_posix()]
    message = bad[0]["message"]
    assert victim.name in message and len(message) < 400
    assert bad[0]["rows_accepted"] == 0
    others = [x for x in d if x["status"] == "loaded"]
    assert len(others) == len(d) - 1
    # Nothing of the broken file reached the history, nor its rows' issues read before the break.
    hist = wh.read(f"src_{feed}")
    assert bad[0]["delivery"] not in set(hist["_delivery"].to_pylist())
    assert bad[0]["delivery"] not in set(wh.read("findings")["delivery"].to_pylist())


def test_a_rejected_file_does_not_stop_the_later_stages(nation: Path, tmp_path: Path) -> None:
    """The whole pipeline over deliveries with one broken file: the file is rejected, and the person
    index, the families and their assessment are still built from everything else and published."""
    src = _sources_copy(nation, tmp_path)
    victim = _first(src, "education")
    victim.write_bytes(b"")
    report = run_pipeline(src, tmp_path / "data")
    assert [d["file"] for d in report.ingest.rejected_files] == [victim.relative_to(src).as_posix()]
    assert report.published is not None
    wh = Warehouse(tmp_path / "data")
    assert wh.published() == report.published
    assert wh.read("family_scores", report.published).num_rows > 0


def test_checksum_against_the_delivery_note(nation: Path, tmp_path: Path) -> None:
    src = _sources_copy(nation, tmp_path)
    victim = _first(src, "tax")
    victim.write_bytes(victim.read_bytes().replace(b"0", b"1", 1))
    data = tmp_path / "data"
    _ingest(src, data)
    bad = [x for x in Warehouse(data).read("deliveries").to_pylist() if x["status"] == "rejected"]
    assert len(bad) == 1 and "checksum" in bad[0]["message"] and victim.name in bad[0]["message"]


def test_a_stray_file_is_recorded_not_ignored(nation: Path, tmp_path: Path) -> None:
    src = _sources_copy(nation, tmp_path)
    (src / "tax" / "notes.txt").write_text("hello", encoding="utf-8")
    data = tmp_path / "data"
    _ingest(src, data)
    d = Warehouse(data).read("deliveries").to_pylist()
    assert [x["file"] for x in d if x["status"] == "rejected"] == ["tax/notes.txt"]
    # A second run does not record it again.
    assert _ingest(src, data).run is None


# --------------------------------------------------------------------- history on hand-made deliveries

PEOPLE = """
[feed]
name = "people"
agency = "Test agency"
title = "People"
cadence_months = 1
mode = "{mode}"
key = ["record_no"]
{ops}

[format]
kind = "csv"
delimiter = ";"

[[columns]]
name = "record_no"
field = "record_no"
type = "string"
required = true

[[columns]]
name = "amount"
field = "amount"
type = "decimal"
required = true
min = 0
{opcol}
"""


def _catalogue(tmp_path: Path, mode: str):  # type: ignore[no-untyped-def]
    from familycard.sources.catalogue import Catalogue

    ops = 'op_field = "op"\nops = { I = "insert", U = "update", D = "delete" }' if mode == "delta" else ""
    opcol = '[[columns]]\nname = "op"\nfield = "op"\ntype = "code"\nrequired = true\ncodes = ["I", "U", "D"]'
    d = tmp_path / "feeds"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "people.toml"
    path.write_text(
        PEOPLE.format(mode=mode, ops=ops, opcol=opcol if mode == "delta" else ""), encoding="utf-8"
    )
    return Catalogue((load_feed(path),))


def _deliver(src: Path, period: str, kind: str, lines: list[str], header: str) -> Path:
    (src / "people").mkdir(parents=True, exist_ok=True)
    path = src / "people" / f"people_{period}_{kind}.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _versions(data: Path) -> list[tuple[str, float | None, str, bool, str, str | None]]:
    t = Warehouse(data).read("src_people").to_pylist()
    rows = [(r["_key"], r["amount"], r["_op"], r["_deleted"], r["_period"], r["_valid_to_period"]) for r in t]
    return sorted(rows, key=lambda r: (r[0], r[4], r[2]))


def test_delta_history_inserts_updates_deletes(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    _deliver(src, "2025-01", "full", ["a;1;I", "b;2;I", "c;3;I"], h)
    _ingest(src, data, cat)
    _deliver(src, "2025-02", "delta", ["a;10;U", "c;3;D"], h)  # b absent: unchanged, not deleted
    _deliver(src, "2025-03", "delta", ["a;10;U", "c;4;I", "z;1;D"], h)  # a re-sent unchanged; z unknown
    _ingest(src, data, cat)
    assert _versions(data) == [
        ("a", 1.0, "insert", False, "2025-01", "2025-02"),
        ("a", 10.0, "update", False, "2025-02", None),
        ("b", 2.0, "insert", False, "2025-01", None),
        ("c", 3.0, "insert", False, "2025-01", "2025-02"),
        ("c", 3.0, "delete", True, "2025-02", "2025-03"),
        ("c", 4.0, "insert", False, "2025-03", None),
    ]


def test_a_first_delivery_orders_the_keys_that_recur_in_it(tmp_path: Path) -> None:
    """A feed's first delivery becomes its history's open part as it was staged: the rows that are not
    current versions (an earlier version of a recurring key, a repeated row, a deletion of an unknown
    record) are listed as superseded, and the closed versions go to a closed part; a reader sees the
    same versions as when the delivery comes with another in one run (every key ordered)."""
    cat = _catalogue(tmp_path, "delta")
    h = "record_no;amount;op"
    lines = ["a;1;I", "b;3;I", "a;2;U", "z;1;D", "a;2;U", "c;5;I", "c;5;D"]
    expected = [
        ("a", 1.0, "insert", False, "2025-01", "2025-01"),
        ("a", 2.0, "update", False, "2025-01", None),
        ("b", 3.0, "insert", False, "2025-01", None),
        ("c", 5.0, "delete", True, "2025-01", None),
        ("c", 5.0, "insert", False, "2025-01", "2025-01"),
    ]
    src, data = tmp_path / "src", tmp_path / "data"
    _deliver(src, "2025-01", "full", lines, h)
    _ingest(src, data, cat)
    assert _versions(data) == expected
    wh = Warehouse(data)
    parts = [p.name.split("-")[0] for p in wh.parts("src_people")]
    assert sorted(parts) == ["closed", "open"]
    listed = wh.meta()["tables"]["src_people"]
    assert listed["superseded"] == 4  # a's first line and repeat, z's deletion, c's insert
    assert listed["rows"] == 5
    # Quality counts the staged rows from the files' footers, corrected by the ordered keys: as afresh.
    stored = wh.read("quality")
    assert stored.to_pylist()[0]["current_records"] == 2  # a and b (c is deleted)
    fresh = quality(data, as_of=stored["as_of"][0].as_py(), catalogue=cat)
    assert content_digest(fresh.feeds) == content_digest(stored)
    assert content_digest(fresh.columns) == content_digest(wh.read("quality_columns"))
    _deliver(src, "2025-02", "delta", ["b;3;U"], h)  # b re-sent unchanged
    _ingest(src, data, cat)
    assert _versions(data) == expected
    both, together = tmp_path / "src2", tmp_path / "data2"
    _deliver(both, "2025-01", "full", lines, h)
    _deliver(both, "2025-02", "delta", ["b;3;U"], h)
    _ingest(both, together, cat)
    assert _versions(together) == expected


def test_a_file_that_breaks_after_rows_with_issues_leaves_no_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The readers write each delivery's issues as they go; when the file then proves broken, it is
    rejected whole: neither its rows nor the issues of the rows read before the break are kept."""
    from familycard.sources import formats, ingest

    monkeypatch.setattr(formats, "_READ_BLOCK_BYTES", 64)  # several reads, several batches
    monkeypatch.setattr(ingest, "BATCH_ROWS", 2)
    cat = _catalogue(tmp_path, "snapshot")
    src, data = tmp_path / "src", tmp_path / "data"
    lines = [f"r{i};{-1 if i % 3 == 0 else i}" for i in range(40)]  # every third amount is refused
    _deliver(src, "2025-01", "full", [*lines, "r40;1;surplus field"], "record_no;amount")
    _ingest(src, data, cat)
    wh = Warehouse(data)
    (row,) = wh.read("deliveries").to_pylist()
    assert row["status"] == "rejected" and "line 42" in row["message"], row["message"]
    assert wh.read("findings").num_rows == 0
    assert wh.read("src_people").num_rows == 0
    _deliver(src, "2025-01", "full", lines, "record_no;amount")  # corrected: its issues are kept
    _ingest(src, data, cat)
    assert Warehouse(data).read("findings").num_rows == 14


def test_full_delivery_deletes_what_it_omits(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path, "snapshot")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount"
    _deliver(src, "2025-01", "full", ["a;1", "b;2"], h)
    _deliver(src, "2025-02", "full", ["a;1"], h)
    _deliver(src, "2025-03", "full", ["a;1", "b;5"], h)
    _ingest(src, data, cat)
    assert _versions(data) == [
        ("a", 1.0, "insert", False, "2025-01", None),
        ("b", 2.0, "insert", False, "2025-01", "2025-02"),
        ("b", None, "delete", True, "2025-02", "2025-03"),
        ("b", 5.0, "insert", False, "2025-03", None),
    ]


def test_events_are_kept_and_corrected(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path, "events")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount"
    _deliver(src, "2025-01", "events", ["e1;1", "e2;2"], h)
    _ingest(src, data, cat)
    _deliver(src, "2025-02", "events", ["e3;3", "e2;2", "e1;7"], h)  # e2 re-sent, e1 corrected
    _ingest(src, data, cat)
    assert _versions(data) == [
        ("e1", 1.0, "insert", False, "2025-01", "2025-02"),
        ("e1", 7.0, "insert", False, "2025-02", None),
        ("e2", 2.0, "insert", False, "2025-01", None),
        ("e3", 3.0, "insert", False, "2025-02", None),
    ]


def test_quarantine_and_release_by_a_corrected_redelivery(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    first = _deliver(src, "2025-01", "full", ["a;1;I", "b;-2;I", ";3;I", "d;x;I"], h)
    _ingest(src, data, cat)
    q = quarantine(data).to_pylist()
    assert [(r["line"], r["field"], r["rule"], r["severity"]) for r in q] == [
        (3, "amount", "range", "reject"),
        (4, "record_no", "required", "reject"),
        (5, "amount", "number", "reject"),
    ]
    assert all(r["feed"] == "people" and r["file"] == "people/people_2025-01_full.csv" for r in q)
    assert json.loads(q[0]["record"]) == {"record_no": "b", "amount": "-2", "op": "I"}
    assert _versions(data) == [("a", 1.0, "insert", False, "2025-01", None)]
    # The agency corrects and sends the same period again.
    first.write_text("\n".join([h, "a;1;I", "b;2;I", "c;3;I", "d;4;I"]) + "\n", encoding="utf-8")
    _ingest(src, data, cat)
    assert quarantine(data).num_rows == 0
    released = quarantine(data, include_released=True).to_pylist()
    assert sorted((r["line"], r["how"]) for r in released) == [
        (3, "corrected"),
        (4, "superseded"),
        (5, "corrected"),
    ]
    assert [v[0] for v in _versions(data)] == ["a", "b", "c", "d"]


# ------------------------------------------------------------------------------------ both engines


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_duckdb_and_spark_build_identical_tables(
    assessed: tuple[Path, Path], spark_pipeline: SparkRun
) -> None:
    """One run over every delivery of a nation, through the whole pipeline (conftest's shared runs):
    every table of the warehouse, from the histories to the scores, is the same on both engines."""
    _, duck = assessed
    digests = _digests(duck)
    assert _digests(spark_pipeline.data) == digests
    # Every stage wrote its tables, and they hold rows: the comparison is not one of empty tables.
    rows = {t: Warehouse(duck).read(t).num_rows for t in digests}
    assert {"deliveries", "findings", "persons", "person_links", "families", "family_members"} <= set(rows)
    assert {"family_changes", "family_scores"} <= set(rows)
    assert all(rows[f"src_{spec.name}"] > 0 for spec in load_catalogue()), rows
    # A first run has no earlier families to change from and no corrected redeliveries to release; every
    # reference of this nation may be found (values not found: test_month_by_month_gives_...).
    assert {t for t, n in rows.items() if n == 0} <= {"family_changes", "releases", "quality_unfound"}, rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=200),
    junk=st.binary(min_size=0, max_size=12),
    at=st.integers(min_value=0, max_value=200),
)
def test_any_corruption_is_a_clear_rejection_or_an_accounted_load(
    tmp_path: Path, cut: int, junk: bytes, at: int
) -> None:
    """Whatever happens to a file's bytes, ingestion does not crash: the file is rejected whole with a
    message naming it, or it loads with every row either accepted or in quarantine."""
    import uuid

    base = tmp_path / uuid.uuid4().hex
    cat = _catalogue(base, "delta")
    src, data = base / "src", base / "data"
    path = _deliver(src, "2025-01", "full", [f"r{i};{i}.5;I" for i in range(12)], "record_no;amount;op")
    raw = path.read_bytes()
    raw = raw[: len(raw) - cut] if cut < len(raw) else b""
    pos = min(at, len(raw))
    path.write_bytes(raw[:pos] + junk + raw[pos:])
    _ingest(src, data, cat)
    wh = Warehouse(data)
    (d,) = wh.read("deliveries").to_pylist()
    if d["status"] == "rejected":
        assert path.name in d["message"]
        assert wh.read("src_people").num_rows == 0
    else:
        assert d["rows_accepted"] + d["rows_rejected"] == d["rows_read"]
        rejected_lines = {r["line"] for r in wh.read("findings").to_pylist() if r["severity"] == "reject"}
        assert len(rejected_lines) == d["rows_rejected"]
        assert wh.read("src_people").num_rows <= d["rows_accepted"]


def test_files_read_in_parallel_give_the_same_tables(
    nation: Path, loaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from familycard.sources import ingest

    monkeypatch.setattr(ingest, "PARALLEL_BYTES", 0)  # a process per core, whatever the size
    data = tmp_path / "data"
    _ingest(nation / "sources", data)
    assert _digests(data) == _digests(loaded)


# ------------------------------------------------------------------ history stored part by part


def _parts(data: Path) -> dict[str, tuple[int, int]]:
    """The history's part files in the current run: name → (inode, rows)."""
    wh = Warehouse(data)
    return {p.name: (p.stat().st_ino, pq.ParquetFile(p).metadata.num_rows) for p in wh.parts("src_people")}


def test_a_monthly_change_leaves_closed_parts_untouched(tmp_path: Path) -> None:
    """Closed versions are written once: a later run hard-links their part files, appends the versions it
    closes as a new closed part, and rewrites the open part only when it closes a current version. The
    history is the one a single run over every delivery builds."""
    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    deliveries = [
        ("2025-01", "full", ["a;1;I", "b;2;I", "c;3;I"]),
        ("2025-02", "delta", ["a;10;U"]),
        ("2025-03", "delta", ["b;20;U", "d;4;I", "c;3;U"]),  # c re-sent unchanged
        ("2025-04", "delta", ["e;5;I", "a;10;U"]),  # only a new record (and a re-sent one)
        ("2025-05", "full", ["a;10;I", "b;20;I", "e;5;I"]),  # c and d are deleted by omission
    ]
    for period, kind, lines in deliveries[:2]:
        _deliver(src, period, kind, lines, h)
    _ingest(src, data, cat)
    first = _parts(data)
    closed = {n: v for n, v in first.items() if n.startswith("closed-")}
    assert [rows for _, rows in closed.values()] == [1]  # a's first version

    _deliver(src, *deliveries[2], h)
    _ingest(src, data, cat)
    second = _parts(data)
    assert {n: second[n] for n in closed} == closed  # the same files, not rewritten
    new_closed = [n for n in second if n.startswith("closed-") and n not in closed]
    assert [second[n][1] for n in new_closed] == [1]  # b's first version, closed by this run
    opened = [n for n in second if n.startswith("open-")]
    assert len(opened) == 1 and second[opened[0]][1] == 4  # rewritten: a, b, c, d current

    _deliver(src, *deliveries[3], h)
    _ingest(src, data, cat)
    third = _parts(data)
    assert {n: third[n] for n in second} == second  # nothing closed: every part kept
    assert [third[n][1] for n in third if n not in second] == [1]  # e, in a new open part

    _deliver(src, *deliveries[4], h)
    _ingest(src, data, cat)
    wh = Warehouse(data)
    for part in wh.parts("src_people"):
        valid_to = pq.read_table(part)["_valid_to_seq"]
        if part.name.startswith("closed-"):
            assert valid_to.null_count == 0, part.name
        else:
            assert valid_to.null_count == len(valid_to), part.name

    once = tmp_path / "once"
    _ingest(src, once, cat)
    assert content_digest(Warehouse(once).read("src_people")) == content_digest(wh.read("src_people"))
    assert [v for v in _versions(data) if v[0] in "cd"] == [
        ("c", 3.0, "insert", False, "2025-01", "2025-05"),
        ("c", None, "delete", True, "2025-05", None),
        ("d", 4.0, "insert", False, "2025-03", "2025-05"),
        ("d", None, "delete", True, "2025-05", None),
    ]


def test_closed_current_versions_are_listed_until_the_open_parts_are_compacted(tmp_path: Path) -> None:
    """A run that closes a few current versions leaves the open parts as they are and lists the versions
    it closed as superseded; readers see the history one run over every delivery builds. When the list
    would exceed a fifth of the open rows, the open parts are rewritten into one and the list emptied."""
    from familycard.sources.ingest import MAX_SUPERSEDED_SHARE
    from familycard.store.engine import SUPERSEDED

    assert MAX_SUPERSEDED_SHARE == 0.2  # (the figures below follow from it)
    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    _deliver(src, "2025-01", "full", [f"r{i};{i};I" for i in range(10)], h)
    _ingest(src, data, cat)
    first = _parts(data)

    def listed() -> list[tuple[str, int]]:
        sup = Warehouse(data).table_path("src_people") / SUPERSEDED
        files = sorted(sup.glob("*.parquet")) if sup.is_dir() else []
        return sorted((r["_key"], r["_seq"]) for f in files for r in pq.read_table(f).to_pylist())

    def same_as_one_run() -> None:
        once = tmp_path / f"once-{len(list(tmp_path.iterdir()))}"
        _ingest(src, once, cat)
        expected = content_digest(Warehouse(once).read("src_people"))
        assert content_digest(Warehouse(data).read("src_people")) == expected
        with open_engine("duckdb") as eng:
            eng.register_parquet("h", Warehouse(data).table_path("src_people"))
            assert content_digest(eng.fetch("SELECT * FROM h")) == expected

    _deliver(src, "2025-02", "delta", ["r1;11;U"], h)  # closes 1 of 10 current versions
    _ingest(src, data, cat)
    second = _parts(data)
    assert {n: second[n] for n in first} == first  # the open part is kept, not rewritten
    assert sorted(rows for n, (_, rows) in second.items() if n not in first) == [1, 1]  # closed, open
    assert listed() == [("r1", 1)]
    same_as_one_run()

    _deliver(src, "2025-03", "delta", ["r2;12;U", "r10;10;I"], h)  # 2 of 12 open rows listed: kept
    _ingest(src, data, cat)
    third = _parts(data)
    assert {n: third[n] for n in second} == second
    assert listed() == [("r1", 1), ("r2", 1)]
    same_as_one_run()

    _deliver(src, "2025-04", "delta", ["r3;13;U"], h)  # 3 of 13: over a fifth, compacted
    _ingest(src, data, cat)
    fourth = _parts(data)
    opened = [n for n in fourth if n.startswith("open-")]
    assert len(opened) == 1 and fourth[opened[0]][1] == 11  # r0 … r10, current
    assert listed() == []
    same_as_one_run()


def test_a_delivery_of_new_and_changed_records_becomes_an_open_part_as_staged(tmp_path: Path) -> None:
    """A run bringing one delivery that implies no deletions orders only the keys it touches (those the
    history holds, recurring ones, deletions): its staged file becomes an open part as it is, and its
    rows that are not current versions go on the superseded list with the current versions it closes.
    Readers see the history, and quality the counts, that one run over every delivery gives."""
    from familycard.store.engine import SUPERSEDED

    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    _deliver(src, "2025-01", "full", [f"r{i};{i};I" for i in range(20)], h)
    _ingest(src, data, cat)
    first = _parts(data)

    def listed() -> list[tuple[str, int, int]]:
        sup = Warehouse(data).table_path("src_people") / SUPERSEDED
        rows = [r for f in sorted(sup.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
        return sorted((r["_key"], r["_seq"], r["_line"]) for r in rows)

    def same_as_one_run() -> None:
        once = tmp_path / f"once-{len(list(tmp_path.iterdir()))}"
        _ingest(src, once, cat)
        for table in ("src_people", "quality", "quality_columns"):
            assert content_digest(Warehouse(data).read(table)) == content_digest(Warehouse(once).read(table))

    lines = [
        "n1;100;I",  # line 2: a new record
        "r1;1;U",  # line 3: re-sent unchanged
        "r2;22;U",  # line 4: closes r2's current version (line 4 of the first delivery)
        "n2;200;I",  # line 5: a new record, changed again on line 6
        "n2;201;U",
        "x;0;D",  # line 7: deletes a record never delivered
    ]
    _deliver(src, "2025-02", "delta", lines, h)
    _ingest(src, data, cat)
    second = _parts(data)
    assert {n: second[n] for n in first} == first
    added = sorted((n.split("-")[0], rows) for n, (_, rows) in second.items() if n not in first)
    assert added == [("closed", 2), ("open", 6)]  # r2's and n2's first versions; the delivery as staged
    assert listed() == [("n2", 2, 5), ("r1", 2, 3), ("r2", 1, 4), ("x", 2, 7)]
    assert [v for v in _versions(data) if v[0] in ("n2", "r1", "r2", "x")] == [
        ("n2", 200.0, "insert", False, "2025-02", "2025-02"),
        ("n2", 201.0, "update", False, "2025-02", None),
        ("r1", 1.0, "insert", False, "2025-01", None),
        ("r2", 2.0, "insert", False, "2025-01", "2025-02"),
        ("r2", 22.0, "update", False, "2025-02", None),
    ]
    same_as_one_run()

    _deliver(src, "2025-03", "delta", ["n3;300;I"], h)  # only a new record: nothing to compare
    _ingest(src, data, cat)
    third = _parts(data)
    assert {n: third[n] for n in second} == second
    assert [(n.split("-")[0], rows) for n, (_, rows) in third.items() if n not in second] == [("open", 1)]
    assert len(listed()) == 4
    same_as_one_run()


REFERRING = """
[feed]
name = "{name}"
agency = "Test agency"
title = "{name}"
cadence_months = 1
mode = "delta"
key = ["record_no"]
op_field = "op"
ops = {{ I = "insert", U = "update", D = "delete" }}

[format]
kind = "csv"
delimiter = ";"

[[columns]]
name = "record_no"
field = "record_no"
type = "string"
required = true

[[columns]]
name = "person"
field = "person"
type = "string"
{reference}

[[columns]]
name = "op"
field = "op"
type = "code"
required = true
codes = ["I", "U", "D"]
"""


def test_values_not_found_are_updated_run_by_run_as_a_fresh_count_finds_them(tmp_path: Path) -> None:
    """Run by run, a reference's values not found in the feed it refers to follow what either feed
    changed: a missing person arrives in the registry while the referring feed is unchanged, a
    referring record changes to an unknown person, another is deleted. Each run's stored counts and
    values not found, with the records holding each, equal a fresh count."""
    from familycard.sources.catalogue import Catalogue

    d = tmp_path / "feeds"
    d.mkdir()
    specs = []
    for name, reference in (
        ("registry", ""),
        ("visits", 'references = { feed = "registry", field = "person", severity = "flag" }'),
    ):
        (d / f"{name}.toml").write_text(REFERRING.format(name=name, reference=reference), encoding="utf-8")
        specs.append(load_feed(d / f"{name}.toml"))
    cat = Catalogue(tuple(specs))
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;person;op"

    def deliver(feed: str, period: str, kind: str, lines: list[str]) -> None:
        (src / feed).mkdir(parents=True, exist_ok=True)
        (src / feed / f"{feed}_{period}_{kind}.csv").write_text(
            "\n".join([h, *lines]) + "\n", encoding="utf-8"
        )

    def check(unfound: dict[str, int], records: int) -> None:
        with open_engine("duckdb", temp_dir=data / "tmp") as eng:
            Ingestion(src, Warehouse(data), eng, catalogue=cat).run()
        wh = Warehouse(data)
        got = wh.read("quality_unfound")
        assert dict(zip(got["value"].to_pylist(), got["records"].to_pylist(), strict=True)) == unfound
        refs = wh.read("quality_references").to_pylist()
        assert [(r["records"], r["found"]) for r in refs] == [(records, records - sum(unfound.values()))]
        fresh = quality(data, as_of=wh.read("quality")["as_of"][0].as_py(), catalogue=cat)
        assert content_digest(fresh.references) == content_digest(wh.read("quality_references"))
        assert content_digest(fresh.unfound) == content_digest(wh.read("quality_unfound"))
        assert content_digest(fresh.feeds) == content_digest(wh.read("quality"))

    deliver("registry", "2025-01", "full", ["1;A;I", "2;B;I"])
    # In the first delivery, unknown persons of rows that are no current record do not count: Q's
    # record moved on to A, R's record was deleted, Y's second row repeats the first.
    first = ["v1;A;I", "v2;X;I", "v3;Y;I", "v4;Y;I", "v4;Y;I", "v5;Z;I", "v8;Q;I", "v8;A;U", "v9;R;I"]
    deliver("visits", "2025-01", "full", [*first, "v9;R;D"])
    check({"X": 1, "Y": 2, "Z": 1}, 6)
    deliver("registry", "2025-02", "delta", ["3;X;I"])  # X arrives; visits unchanged
    check({"Y": 2, "Z": 1}, 6)
    deliver("visits", "2025-03", "delta", ["v1;W;U", "v3;B;U", "v5;Z;D"])  # W comes, one Y left, Z gone
    check({"W": 1, "Y": 1}, 5)
    deliver("registry", "2025-04", "delta", ["2;Y;U"])  # Y arrives; B stays found (any version counts)
    deliver("visits", "2025-04", "delta", ["v6;V;I", "v7;V;I"])
    check({"V": 2, "W": 1}, 7)


def test_an_older_history_of_one_part_is_split_when_rewritten(tmp_path: Path) -> None:
    """A history written before parts were split (one file with every version) reads as before, and the
    first run that closes a current version moves its closed versions to a closed part."""
    cat = _catalogue(tmp_path, "delta")
    src, data = tmp_path / "src", tmp_path / "data"
    h = "record_no;amount;op"
    _deliver(src, "2025-01", "full", ["a;1;I", "b;2;I"], h)
    _deliver(src, "2025-02", "delta", ["a;10;U"], h)
    _ingest(src, data, cat)
    wh = Warehouse(data)
    whole = wh.read("src_people")
    table = wh.table_path("src_people")
    for part in wh.parts("src_people"):
        part.unlink()
    pq.write_table(whole, table / "part-0.parquet")  # the older layout
    _deliver(src, "2025-03", "delta", ["b;20;U"], h)
    _ingest(src, data, cat)
    names = sorted(p.name for p in wh.parts("src_people"))
    assert [n.split("-")[0] for n in names] == ["closed", "open"]
    assert _versions(data) == [
        ("a", 1.0, "insert", False, "2025-01", "2025-02"),
        ("a", 10.0, "update", False, "2025-02", None),
        ("b", 2.0, "insert", False, "2025-01", "2025-03"),
        ("b", 20.0, "update", False, "2025-03", None),
    ]


def _month_by_month(nation: Path, data: Path, engine: str = "duckdb", months: int | None = None) -> None:
    """Ingest the nation's deliveries one period per run, as an agency calendar would."""
    src = data.with_name(data.name + "-sources")
    src.mkdir()
    shutil.copy(nation / "sources" / "manifest.json", src / "manifest.json")
    periods = sorted({f.name.split("_")[-2] for f in (nation / "sources").glob("*/*_*_*.*")})
    for period in periods[:months]:
        for f in sorted((nation / "sources").glob(f"*/*_{period}_*")):
            (src / f.parent.name).mkdir(exist_ok=True)
            shutil.copy(f, src / f.parent.name / f.name)
        (data / "tmp").mkdir(parents=True, exist_ok=True)
        with open_engine(engine, temp_dir=data / "tmp") as eng:
            Ingestion(src, Warehouse(data), eng).run()


def _history_digests(data: Path) -> dict[str, str]:
    return {t: d for t, d in _digests(data).items() if t.startswith("src_") or t == "deliveries"}


def test_month_by_month_gives_the_same_history_and_quality(
    nation: Path, loaded: Path, tmp_path: Path
) -> None:
    """Run after run, each merging only what it changes, the histories equal those of one run over
    every delivery, and the quality counts updated run by run equal a fresh count."""
    data = tmp_path / "data"
    _month_by_month(nation, data)
    assert _history_digests(data) == _history_digests(loaded)
    stored = Warehouse(data).read("quality")
    fresh = quality(data, as_of=stored["as_of"][0].as_py())
    assert content_digest(fresh.feeds) == content_digest(stored)
    assert content_digest(fresh.columns) == content_digest(Warehouse(data).read("quality_columns"))
    assert fresh.references is not None
    assert content_digest(fresh.references) == content_digest(Warehouse(data).read("quality_references"))
    assert fresh.unfound is not None and fresh.unfound.num_rows  # (the nation's faults leave some)
    assert content_digest(fresh.unfound) == content_digest(Warehouse(data).read("quality_unfound"))


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_duckdb_and_spark_agree_month_by_month(nation: Path, tmp_path: Path) -> None:
    duck, spark = tmp_path / "duck", tmp_path / "spark"
    _month_by_month(nation, duck, months=2)
    _month_by_month(nation, spark, "spark", months=2)
    assert _digests(spark) == _digests(duck)


def test_checksums_of_unchanged_files_are_remembered(
    nation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run does not read every earlier delivery again to find what is new: a file with the size, time
    and inode it had is taken to have the checksum it had; a file touched or rewritten is read again."""
    from familycard.sources import ingest

    src = _sources_copy(nation, tmp_path)
    cache = ingest.ChecksumCache(tmp_path / "sha256.json")
    found, _ = ingest.discover(src, load_catalogue(), cache)
    cache.save()
    read: list[Path] = []
    real = ingest.sha256_file
    monkeypatch.setattr(ingest, "sha256_file", lambda p: read.append(p) or real(p))
    cache = ingest.ChecksumCache(tmp_path / "sha256.json")
    again, _ = ingest.discover(src, load_catalogue(), cache)
    assert read == [] and [d.sha256 for d in again] == [d.sha256 for d in found]
    victim = _first(src, "tax")
    victim.write_bytes(victim.read_bytes().replace(b"0", b"1", 1))  # same size, new time
    cache.save()
    third, _ = ingest.discover(src, load_catalogue(), ingest.ChecksumCache(tmp_path / "sha256.json"))
    assert read == [victim]
    assert [d.sha256 for d in third if d.path == victim] == [ingest.sha256_file(victim)]


def test_footer_counts_of_a_staged_file_whatever_its_dictionaries_and_empty_groups(tmp_path: Path) -> None:
    """Quality reads a first delivery's counts from its staged file's footers: they must be there, and
    equal a count of the rows, for files written with the dictionaries the readers choose (none for a
    column of identifiers) and with a row group that holds no row."""
    from familycard.sources import history
    from familycard.sources.ingest import dictionary_columns
    from familycard.sources.quality import counted, parquet_counts
    from familycard.sources.validate import output_schema

    spec = load_catalogue()["civil_registry"]
    schema = history.staged_schema(spec, output_schema(spec))
    rows = [
        {f.name: (None if (i + j) % 3 == 0 else _sample(f.type, i)) for j, f in enumerate(schema)}
        for i in range(40)
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    path = tmp_path / "staged.parquet"
    with pq.ParquetWriter(path, schema, use_dictionary=dictionary_columns(table)) as writer:
        writer.write_table(schema.empty_table())
        writer.write_table(table)
    got = parquet_counts(spec, [path])
    assert got is not None
    for name, field_name in counted(spec):
        col = table.num_rows if field_name is None else table.num_rows - table[field_name].null_count
        assert got[name] == col, name


def _sample(t: pa.DataType, i: int) -> object:
    import datetime as dt

    if pa.types.is_string(t):
        return f"v{i}"
    if pa.types.is_integer(t):
        return i
    if pa.types.is_floating(t):
        return i / 2
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_date(t):
        return dt.date(2000, 1, 1) + dt.timedelta(days=i)
    raise AssertionError(t)
