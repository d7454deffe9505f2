"""Tests of the synthetic-nation generator (familycard.synth).

What a pipeline may rely on: the same settings give the same bytes; every file reads back in the format
its manifest documents; faults occur at their configured rates and exactly where the ground truth says;
the ground truth is complete and coherent; a missing change delivery loses nothing.

Nations are generated once per module (and per xdist worker) and shared by the tests that read them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from familycard.identity import iin as iinlib
from familycard.sources.formats import FileFormat, read_table
from familycard.synth.config import SynthConfig
from familycard.synth.feeds import FEED_BY_NAME, FEEDS
from familycard.synth.generate import TRUTH_SCHEMAS, generate
from familycard.synth.life import LEVELS, SUPPORT_CODES
from familycard.synth.world import HARD_CASE_NAMES, HardCase

# What the manifest's ``date_style`` of a feed means (docs/synthetic-nation.md).
DATE_STYLES = {
    "iso": "%Y-%m-%d",
    "dmy": "%d.%m.%Y",
    "dmy_slash": "%d/%m/%Y",
    "ymd": "%Y%m%d",
    "dmy_short": "%d.%m.%y",
    "dmy_compact": "%d%m%Y",
}
FLAGS = ("iin_missing", "iin_mistyped", "name_typo", "name_variant", "date_format", "duplicated")


def within(observed: float, rate: float, n: int) -> bool:
    """Whether a share observed over ``n`` independent trials is consistent with ``rate``."""
    return n > 0 and abs(observed - rate) <= 3 * math.sqrt(rate * (1 - rate) / n) + 0.001


def file_format(doc: dict[str, Any]) -> FileFormat:
    """The reader's format of a feed, built from nothing but its documentation in the manifest."""
    kind = doc["format"]
    if kind == "parquet":
        return FileFormat(kind="parquet")
    eol = {"LF": "\n", "CRLF": "\r\n"}[doc["line_ending"]]
    if kind == "csv":
        return FileFormat(kind="csv", encoding=doc["encoding"], delimiter=doc["delimiter"], line_ending=eol)
    if kind == "fixed":
        widths = tuple((str(name), int(width)) for name, width in doc["widths"])
        return FileFormat(kind="fixed", encoding=doc["encoding"], widths=widths, line_ending=eol)
    return FileFormat(kind=kind, encoding=doc["encoding"], line_ending=eol)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``sources/`` and ``truth/``, by relative path."""
    return {
        str(p.relative_to(root)): sha256(p)
        for sub in ("sources", "truth")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


@functools.cache
def invalid_iin(text: str) -> bool:
    return bool(iinlib.problems(text))


@dataclass
class Record:
    """One agency record as the ground truth describes it (its first appearance)."""

    flags: dict[str, bool]
    roles: dict[str, int]


class Nation:
    """A generated nation with cached readers for its deliveries and ground truth."""

    def __init__(self, cfg: SynthConfig, root: Path, workers: int | None = None) -> None:
        self.cfg = cfg
        self.root = root
        self.summary = generate(cfg, root, workers=workers)
        self.manifest = json.loads((root / "sources" / "manifest.json").read_text(encoding="utf-8"))
        self.docs = {d["feed"]: d for d in self.manifest["feeds"]}
        self._tables: dict[str, pa.Table] = {}
        self._truth: dict[str, pa.Table] = {}
        self._records: dict[str, dict[str, Record]] | None = None

    def deliveries(self, feed: str) -> list[dict[str, Any]]:
        return sorted(
            (d for d in self.manifest["deliveries"] if d["feed"] == feed), key=lambda d: d["period"]
        )

    def read(self, delivery: dict[str, Any]) -> pa.Table:
        key = delivery["file"]
        if key not in self._tables:
            doc = self.docs[delivery["feed"]]
            self._tables[key] = read_table(
                self.root / "sources" / key, file_format(doc), expected_columns=doc["columns"]
            )
        return self._tables[key]

    def rows(self, feed: str) -> list[tuple[dict[str, Any], list[str], dict[str, list[Any]]]]:
        """Per delivery of ``feed`` in period order: (delivery, record ids as text, columns as lists)."""
        id_col = FEED_BY_NAME[feed].id_column
        out = []
        for d in self.deliveries(feed):
            table = self.read(d)
            cols = {c: table.column(c).to_pylist() for c in table.column_names}
            out.append((d, [str(v) for v in cols[id_col]], cols))
        return out

    def truth(self, name: str) -> pa.Table:
        if name not in self._truth:
            self._truth[name] = pq.read_table(self.root / "truth" / f"{name}.parquet")
        return self._truth[name]

    def records(self, feed: str) -> dict[str, Record]:
        """The ground truth's records of ``feed`` by record id (the first appearance wins)."""
        if self._records is None:
            t = self.truth("source_records").to_pydict()
            recs: dict[str, dict[str, Record]] = defaultdict(dict)
            for i, (f, rid) in enumerate(zip(t["feed"], t["record_id"], strict=True)):
                rec = recs[f].get(rid)
                if rec is None:
                    rec = recs[f][rid] = Record({k: t[k][i] for k in FLAGS}, {})
                rec.roles.setdefault(t["role"][i], t["person_id"][i])
            self._records = dict(recs)
        return self._records.get(feed, {})

    @functools.cached_property
    def persons(self) -> dict[int, dict[str, Any]]:
        return {p["person_id"]: p for p in self.truth("persons").to_pylist()}


# ---- nations -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nation(tmp_path_factory: pytest.TempPathFactory) -> Nation:
    """3,000 families over 3 months with the default fault rates."""
    return Nation(SynthConfig(families=3_000, seed=11, months=3), tmp_path_factory.mktemp("nation"))


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory) -> Nation:
    """The same nation with ten times as many mistyped IINs."""
    cfg = SynthConfig(families=3_000, seed=11, months=3).with_faults(iin_mistyped=0.05)
    return Nation(cfg, tmp_path_factory.mktemp("raised"))


TWIN_CFG = SynthConfig(families=1_500, seed=1, months=6, chunk_families=500)


@pytest.fixture(scope="module")
def twin_a(tmp_path_factory: pytest.TempPathFactory) -> Nation:
    """1,500 families in three chunks over 6 months (chunks simulated by parallel workers)."""
    return Nation(TWIN_CFG, tmp_path_factory.mktemp("twin_a"), workers=2)


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Nation, Nation]:
    """One nation delivered twice: every delivery, and with half the change deliveries never sent."""
    cfg = SynthConfig(families=1_000, seed=5, months=12)
    every = Nation(cfg.with_faults(missing_delivery=0.0), tmp_path_factory.mktemp("every"))
    gappy = Nation(cfg.with_faults(missing_delivery=0.5), tmp_path_factory.mktemp("gappy"))
    return every, gappy


# ---- determinism ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(twin_a: Nation, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Same settings, same bytes: in another folder, and whether chunks run in parallel or one by one."""
    again = tmp_path_factory.mktemp("twin_b")
    generate(TWIN_CFG, again, workers=1)
    first, second = tree_digest(twin_a.root), tree_digest(again)
    assert TWIN_CFG.n_chunks == 3
    assert len(first) > 50
    assert first == second, [p for p in first if first[p] != second.get(p)][:5]

    other = tmp_path_factory.mktemp("other_seed")
    generate(SynthConfig(families=1_500, seed=2, months=6, chunk_families=500), other)
    third = tree_digest(other)
    differing = [p for p in first if first[p] != third.get(p)]
    assert "truth/persons.parquet" in differing
    assert "sources/civil_registry/civil_registry_2024-12_full.csv" in differing
    assert len(differing) > len(first) // 2


# ---- files and formats ---------------------------------------------------------------------------------


def test_manifest_documents_every_feed_as_declared(nation: Nation) -> None:
    assert [d["feed"] for d in nation.manifest["feeds"]] == [f.name for f in FEEDS]
    for feed in FEEDS:
        doc = nation.docs[feed.name]
        assert doc["agency"] == feed.agency
        assert doc["columns"] == list(feed.columns)
        assert doc["id_column"] == feed.id_column and feed.id_column in feed.columns
        assert doc["op_column"] == feed.op_column
        assert doc["mode"] == feed.mode and doc["cadence_months"] == feed.cadence
        assert doc["date_style"] in DATE_STYLES
        fmt = file_format(doc)
        assert fmt.kind == feed.fmt.kind and fmt.extension == feed.fmt.extension
        if fmt.kind != "parquet":
            assert (fmt.encoding, fmt.line_ending, fmt.widths) == (
                feed.fmt.encoding,
                feed.fmt.line_ending,
                feed.fmt.widths,
            )
        if fmt.kind == "csv":
            assert fmt.delimiter == feed.fmt.delimiter


@pytest.mark.parametrize("which", ["nation", "twin_a"])
def test_every_delivery_reads_in_its_documented_format(which: str, request: pytest.FixtureRequest) -> None:
    n: Nation = request.getfixturevalue(which)
    periods = [n.cfg.period(t) for t in range(n.cfg.months)]
    on_disk = {str(p.relative_to(n.root / "sources")) for p in (n.root / "sources").rglob("*") if p.is_file()}
    assert on_disk == {d["file"] for d in n.manifest["deliveries"]} | {"manifest.json"}
    for feed in FEEDS:
        doc = n.docs[feed.name]
        ds = n.deliveries(feed.name)
        assert ds and ds[0]["period"] == periods[0] and ds[0]["kind"] == "full", feed.name
        later = {"delta": "delta", "snapshot": "full", "events": "events"}[feed.mode]
        for d in ds:
            t = periods.index(d["period"])
            assert t % feed.cadence == 0, d
            assert d["kind"] == ("full" if t == 0 else later), d
            ext = file_format(doc).extension
            assert d["file"] == f"{feed.name}/{feed.name}_{d['period']}_{d['kind']}.{ext}"
            path = n.root / "sources" / d["file"]
            assert sha256(path) == d["sha256"], d["file"]
            table = n.read(d)
            assert table.num_rows == d["rows"], d["file"]
            assert table.column_names == doc["columns"], d["file"]
            assert dt.date.fromisoformat(d["delivered"]) >= dt.date.fromisoformat(d["due"])
        assert sum(d["rows"] for d in ds) == n.summary.rows_by_feed[feed.name]


def test_truth_tables_have_their_schemas(nation: Nation) -> None:
    for name, schema in TRUTH_SCHEMAS.items():
        assert nation.truth(name).schema.remove_metadata() == schema, name
    run = json.loads((nation.root / "truth" / "run.json").read_text())
    assert run["config"] == nation.cfg.as_dict()
    assert run["persons"] == nation.truth("persons").num_rows
    assert run["families"] == nation.truth("families").num_rows


# ---- IINs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["nation", "raised"])
def test_invalid_iins_are_exactly_the_mistyped_ones(which: str, request: pytest.FixtureRequest) -> None:
    n: Nation = request.getfixturevalue(which)
    rate = n.cfg.faults.iin_mistyped
    fields = invalid = 0
    mismatches: list[tuple[str, str, list[Any]]] = []
    for feed in FEEDS:
        if not feed.iin_columns:
            continue
        records = n.records(feed.name)
        seen: set[str] = set()
        for _, ids, cols in n.rows(feed.name):
            for i, rid in enumerate(ids):
                values = [cols[c][i] for c in feed.iin_columns]
                bad = [v for v in values if v and invalid_iin(v)]
                if bool(bad) != records[rid].flags["iin_mistyped"]:
                    mismatches.append((feed.name, rid, values))
                if rid not in seen and not feed.iin_authority:
                    seen.add(rid)
                    fields += sum(1 for v in values if v)
                    invalid += len(bad)
        if feed.iin_authority:
            assert not any(r.flags["iin_mistyped"] or r.flags["iin_missing"] for r in records.values())
    assert not mismatches, (
        f"{len(mismatches)} rows where an invalid IIN and the flag disagree: {mismatches[:5]}"
    )
    # per IIN field present in a file: P(mistyped) is the configured rate
    assert within(invalid / fields, rate, fields), (invalid / fields, rate, fields)
    # per record (one IIN column), from the ground truth alone: mistyped among those whose IIN was not dropped
    n_ok = n_typo = 0
    for feed in FEEDS:
        if len(feed.iin_columns) != 1 or feed.iin_authority:
            continue
        for rec in n.records(feed.name).values():
            (pid,) = rec.roles.values()
            if n.persons[pid]["iin"] is not None and not rec.flags["iin_missing"]:
                n_ok += 1
                n_typo += rec.flags["iin_mistyped"]
    assert within(n_typo / n_ok, rate, n_ok), (n_typo / n_ok, rate, n_ok)


def test_persons_iins_are_valid_and_unique(nation: Nation) -> None:
    iins = [p["iin"] for p in nation.persons.values() if p["iin"] is not None]
    assert len(iins) > 0.98 * len(nation.persons)
    assert not [v for v in iins if invalid_iin(v)]
    assert len(set(iins)) == len(iins)
    for p in nation.persons.values():
        if p["iin"] is not None:
            info = iinlib.info(p["iin"])
            assert (info.birth_date, info.sex) == (p["birth_date"], p["sex"]), p


def test_iin_missing_rate_and_empty_fields(nation: Nation) -> None:
    rate = nation.cfg.faults.iin_missing
    n_has = n_missing = 0
    wrong: list[tuple[str, str, Any]] = []
    for feed in FEEDS:
        if not feed.iin_columns:
            continue
        records = nation.records(feed.name)
        single = len(feed.iin_columns) == 1
        for _, ids, cols in nation.rows(feed.name):
            for i, rid in enumerate(ids):
                rec = records[rid]
                values = [cols[c][i] for c in feed.iin_columns]
                if single:
                    (pid,) = rec.roles.values()
                    expect_empty = rec.flags["iin_missing"] or nation.persons[pid]["iin"] is None
                    if (not values[0]) != expect_empty:
                        wrong.append((feed.name, rid, values[0]))
                elif rec.flags["iin_missing"] and all(values):
                    wrong.append((feed.name, rid, values))
        if single and not feed.iin_authority:
            for rec in records.values():
                (pid,) = rec.roles.values()
                if nation.persons[pid]["iin"] is not None:
                    n_has += 1
                    n_missing += rec.flags["iin_missing"]
    assert not wrong, f"{len(wrong)} IIN fields empty against the truth: {wrong[:5]}"
    assert within(n_missing / n_has, rate, n_has), (n_missing / n_has, rate, n_has)


# ---- names, dates, duplicates ---------------------------------------------------------------------------


def test_name_fault_rates(nation: Nation) -> None:
    faults = nation.cfg.faults
    recs = [r for f in FEEDS if f.name_columns for r in nation.records(f.name).values()]
    n = len(recs)
    typo = sum(r.flags["name_typo"] for r in recs) / n
    variant = sum(r.flags["name_variant"] for r in recs) / n
    assert within(typo, faults.name_typo, n), typo
    # a record gets at most one name fault: a variant only where there is no typo
    assert within(variant, faults.name_variant * (1 - faults.name_typo), n), variant
    assert not any(r.flags["name_typo"] and r.flags["name_variant"] for r in recs)
    others = [r for f in FEEDS if not f.name_columns for r in nation.records(f.name).values()]
    assert not any(r.flags["name_typo"] or r.flags["name_variant"] for r in others)


# feeds that write names as the civil registry does (Kazakh Cyrillic): column -> (role, truth field)
_P = (("surname", "surname"), ("name", "given_name"), ("patronymic", "patronymic"))
KK_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "civil_registry": {
        "Фамилия": ("subject", "surname"),
        "Имя": ("subject", "given_name"),
        "Отчество": ("subject", "patronymic"),
    },
    "civil_acts": {f"person{k}_{c}": (f"person{k}", t) for k in (1, 2, 3) for c, t in _P},
    "employment_contracts": {f"employee_{c}": ("subject", t) for c, t in _P},
}


def test_name_faults_change_exactly_one_name_of_the_flagged_records(nation: Nation) -> None:
    """A record flagged with a name typo or variant has one name field that differs from the person's
    name; every other record spells every name exactly as the civil registry does."""
    assert {c for cols in KK_NAMES.values() for c in cols} >= {
        c for f in KK_NAMES for c in FEED_BY_NAME[f].name_columns
    }
    wrong: list[tuple[str, str, bool, dict[str, Any]]] = []
    checked = 0
    for feed, columns in KK_NAMES.items():
        assert FEED_BY_NAME[feed].name_script == "kk"
        records = nation.records(feed)
        for _, ids, cols in nation.rows(feed):
            for i, rid in enumerate(ids):
                rec = records[rid]
                diff = {}
                for col, (role, field) in columns.items():
                    pid = rec.roles.get(role)
                    true = (nation.persons[pid][field] if pid is not None else None) or ""
                    if (cols[col][i] or "") != true:
                        diff[col] = (cols[col][i], true)
                flagged = rec.flags["name_typo"] or rec.flags["name_variant"]
                checked += 1
                if len(diff) != (1 if flagged else 0):
                    wrong.append((feed, rid, flagged, diff))
    assert checked > 10_000
    assert not wrong, (
        f"{len(wrong)} of {checked} rows whose names disagree with their name-fault flags: {wrong[:5]}; "
        f"by feed {Counter(w[0] for w in wrong)}"
    )


def test_date_format_rate(nation: Nation) -> None:
    eligible = [f for f in FEEDS if f.date_columns and f.fmt.kind != "parquet"]
    recs = [r for f in eligible for r in nation.records(f.name).values()]
    share = sum(r.flags["date_format"] for r in recs) / len(recs)
    assert within(share, nation.cfg.faults.date_format, len(recs)), share
    others = [r for f in FEEDS if f not in eligible for r in nation.records(f.name).values()]
    assert not any(r.flags["date_format"] for r in others)


def _parses(text: str, style: str) -> bool:
    try:
        dt.datetime.strptime(text, DATE_STYLES[style])
    except ValueError:
        return False
    return True


def test_dates_follow_the_documented_style_unless_flagged(nation: Nation) -> None:
    """Unflagged records write every date in the feed's documented style; a record flagged
    ``date_format`` has dates, and writes none of them in that style."""
    wrong: list[tuple[str, str, bool, list[str]]] = []
    for feed in FEEDS:
        if not feed.date_columns or feed.fmt.kind == "parquet":
            continue
        style = nation.docs[feed.name]["date_style"]
        records = nation.records(feed.name)
        for _, ids, cols in nation.rows(feed.name):
            for i, rid in enumerate(ids):
                dates = [cols[c][i] for c in feed.date_columns if cols[c][i]]
                ok = [_parses(v, style) for v in dates]
                flagged = records[rid].flags["date_format"]
                if not (bool(dates) and not any(ok) if flagged else all(ok)):
                    wrong.append((feed.name, rid, flagged, dates))
    assert not wrong, (
        f"{len(wrong)} rows whose dates disagree with their date_format flag: {wrong[:5]}; "
        f"by feed {Counter(w[0] for w in wrong)}"
    )


def test_duplicates_rate_and_files(nation: Nation) -> None:
    rate = nation.cfg.faults.duplicate
    pairs = doubled = 0
    wrong: list[tuple[str, str]] = []
    for feed in FEEDS:
        records = nation.records(feed.name)
        first_seen: set[str] = set()
        for d, ids, _ in nation.rows(feed.name):
            counts = Counter(ids)
            assert max(counts.values(), default=1) <= 2, (d["file"], counts.most_common(1))
            pairs += len(counts)
            doubled += sum(1 for c in counts.values() if c == 2)
            for rid, c in counts.items():
                if rid not in first_seen:
                    first_seen.add(rid)
                    if (c == 2) != records[rid].flags["duplicated"]:
                        wrong.append((d["file"], rid))
        assert first_seen == set(records), feed.name
    assert not wrong, f"{len(wrong)} first deliveries whose duplication disagrees with the truth: {wrong[:5]}"
    assert within(doubled / pairs, rate, pairs), (doubled / pairs, rate, pairs)
    recs = [r for f in FEEDS for r in nation.records(f.name).values()]
    share = sum(r.flags["duplicated"] for r in recs) / len(recs)
    assert within(share, rate, len(recs)), share


# ---- ground truth ------------------------------------------------------------------------------------------


def _members_at(nation: Nation, period: str) -> pa.Table:
    s = nation.truth("family_spells")
    mask = pc.and_(pc.less_equal(s["from_period"], period), pc.greater_equal(s["to_period"], period))
    return s.filter(mask)


def test_every_person_alive_at_the_start_is_in_exactly_one_family(nation: Nation) -> None:
    start = nation.cfg.start
    members = _members_at(nation, nation.cfg.period(0))
    pids = members["person_id"].to_pylist()
    assert len(pids) == len(set(pids))
    alive = {
        pid
        for pid, p in nation.persons.items()
        if p["birth_date"] < start and (p["death_date"] is None or p["death_date"] >= start)
    }
    spells = nation.truth("family_spells").to_pydict()
    first_period: dict[int, str] = {}
    for pid, fp in zip(spells["person_id"], spells["from_period"], strict=True):
        first_period[pid] = min(fp, first_period.get(pid, fp))
    # alive at the start but in no family then: only guardians who moved in later
    late = alive - set(pids)
    assert all(first_period.get(pid, "") > nation.cfg.period(0) for pid in late), sorted(late)[:5]
    assert len(late) < 0.01 * len(alive)
    assert set(pids) <= alive
    families = set(nation.truth("families")["family_id"].to_pylist())
    assert set(spells["family_id"]) <= families


def test_children_born_during_the_run_join_a_family_in_their_birth_month(nation: Nation) -> None:
    """A birth dated in month m is a family member from month m (and so in that month's registry)."""
    spells = nation.truth("family_spells").to_pydict()
    first_period: dict[int, str] = {}
    for pid, fp in zip(spells["person_id"], spells["from_period"], strict=True):
        first_period[pid] = min(fp, first_period.get(pid, fp))
    born = [p for p in nation.persons.values() if p["birth_date"] >= nation.cfg.start]
    assert len(born) > 20
    wrong = [
        (p["person_id"], p["birth_date"].isoformat(), first_period.get(p["person_id"]))
        for p in born
        if first_period.get(p["person_id"]) != p["birth_date"].strftime("%Y-%m")
    ]
    assert not wrong, f"{len(wrong)} of {len(born)} newborns join their family in another month: {wrong[:5]}"


def test_family_sizes_are_plausible(nation: Nation) -> None:
    members = _members_at(nation, nation.cfg.period(0))
    sizes = np.array(list(Counter(members["family_id"].to_pylist()).values()))
    assert sizes.min() >= 1 and sizes.max() <= 16
    assert 2.8 <= sizes.mean() <= 4.2, sizes.mean()
    assert 0.08 <= np.mean(sizes == 1) <= 0.35
    assert np.mean(sizes >= 5) >= 0.10
    heads = Counter(members.filter(pc.equal(members["role"], "head"))["family_id"].to_pylist())
    assert set(heads.values()) == {1}
    assert len(heads) == len(set(members["family_id"].to_pylist()))


def test_initial_families_are_the_requested_number(nation: Nation) -> None:
    """``families`` families exist at the start, every archetype among them (population.py:
    ex-partners living alone are carved out of the single adults so the total stays as requested)."""
    fams = nation.truth("families").to_pydict()
    initial = [
        a for a, created in zip(fams["archetype"], fams["created_period"], strict=True) if created is None
    ]
    assert len(initial) == nation.cfg.families
    assert len(set(_members_at(nation, nation.cfg.period(0))["family_id"].to_pylist())) == nation.cfg.families


def test_hard_cases_are_present(nation: Nation) -> None:
    counts: Counter[str] = Counter()
    for text in nation.truth("families")["hard_cases"].to_pylist():
        counts.update(h for h in (text or "").split(",") if h)
    assert set(counts) <= set(HARD_CASE_NAMES.values())
    wanted = (
        HardCase.STEPCHILDREN,
        HardCase.GRANDPARENTS_RAISING,
        HardCase.PARENT_ELSEWHERE,
        HardCase.UNMARRIED_PARTNERS,
        HardCase.ADULT_CHILDREN,
        HardCase.TWINS,
        HardCase.NO_REGISTERED_ADDRESS,
        HardCase.CHILD_WITHOUT_IIN,
        HardCase.THREE_GENERATION,
    )
    missing = [HARD_CASE_NAMES[h] for h in wanted if counts[HARD_CASE_NAMES[h]] == 0]
    assert not missing, counts


def test_migrant_children_have_no_iin(nation: Nation) -> None:
    no_iin = [p for p in nation.persons.values() if p["iin"] is None]
    assert no_iin
    assert all(p["migration_status"] != "citizen" for p in no_iin)
    start = nation.cfg.start
    assert all((start - p["birth_date"]).days < 18 * 366 for p in no_iin)
    fams = nation.truth("families").to_pydict()
    flagged = {
        f
        for f, h in zip(fams["family_id"], fams["hard_cases"], strict=True)
        if "migrant_child_without_iin" in h
    }
    spells = nation.truth("family_spells").to_pydict()
    family_of = dict(zip(spells["person_id"], spells["family_id"], strict=True))
    assert {family_of[p["person_id"]] for p in no_iin} <= flagged
    # the migration service knows them, without an IIN
    migration = nation.records("migration")
    known = {rec.roles["subject"] for rec in migration.values()}
    assert {p["person_id"] for p in no_iin} <= known


def test_kin_links_are_plausible(nation: Nation) -> None:
    persons = nation.persons
    for child in persons.values():
        for key, sex in (("mother_id", "F"), ("father_id", "M")):
            parent_id = child[key]
            if parent_id is None or parent_id < 0:  # unknown parent
                continue
            parent = persons[parent_id]
            assert parent["sex"] == sex, (child, parent)
            gap = (child["birth_date"] - parent["birth_date"]).days / 365.25
            assert 14 <= gap <= 60, (child, parent)
        if child["death_date"] is not None:
            assert child["death_date"] >= child["birth_date"]


def test_source_records_refer_to_known_persons(nation: Nation) -> None:
    persons = set(nation.persons)
    referred = set(nation.truth("source_records")["person_id"].to_pylist())
    assert referred <= persons
    assert len(nation.persons) == len(set(nation.truth("persons")["person_id"].to_pylist()))
    feeds = set(nation.truth("source_records")["feed"].to_pylist())
    assert feeds == {f.name for f in FEEDS if nation.summary.rows_by_feed[f.name]}


def test_true_levels_and_support(nation: Nation) -> None:
    levels = nation.truth("family_levels")
    assert set(levels["level"].to_pylist()) == set(LEVELS)
    assert np.isfinite(levels["mean_latent"].to_numpy()).all()
    support = nation.truth("support")
    assert support.num_rows > 0
    measures = support["measure"].to_pylist()
    assert None not in measures and set(measures) <= set(SUPPORT_CODES)
    assert {"pension", "tsa", "disability", "large_family"} <= set(measures)
    amount = support["amount"].to_numpy(zero_copy_only=False)
    effect = support["true_effect"].to_numpy(zero_copy_only=False)
    assert np.isfinite(amount).all() and (amount >= 0).all()
    assert np.isfinite(effect).all()
    cash = amount > 0
    assert (effect[cash] >= 0).all()  # cash never lowers the latent welfare score
    families = set(nation.truth("families")["family_id"].to_pylist())
    assert set(support["family_id"].to_pylist()) <= families
    periods = {nation.cfg.period(t) for t in range(nation.cfg.months)}
    assert set(support["period"].to_pylist()) <= periods


def test_ids_stay_unique_across_chunks(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Four chunks of 2,500 families: no IIN, phone number or record id is shared by two people."""
    cfg = SynthConfig(families=10_000, seed=3, months=1, chunk_families=2_500)
    root = tmp_path_factory.mktemp("chunks")
    generate(cfg, root)
    persons = pq.read_table(root / "truth" / "persons.parquet").to_pydict()
    for key in ("person_id", "iin", "phone"):
        values = [v for v in persons[key] if v is not None]
        dupes = [v for v, c in Counter(values).items() if c > 1]
        assert not dupes, f"{len(dupes)} {key} values shared by two persons, e.g. {dupes[:3]}"
    t = pq.read_table(root / "truth" / "source_records.parquet").to_pydict()
    owners: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for f, rid, role, pid in zip(t["feed"], t["record_id"], t["role"], t["person_id"], strict=True):
        owners[(f, rid, role)].add(pid)
    shared = [k for k, v in owners.items() if len(v) > 1]
    assert not shared, f"{len(shared)} record ids name two persons, e.g. {shared[:3]}"


# ---- missing deliveries ----------------------------------------------------------------------------------


def _state(n: Nation, feed: str, upto: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """A feed's table as a pipeline rebuilds it from the deliveries up to ``upto``, and every id seen."""
    f = FEED_BY_NAME[feed]
    state: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for d, ids, cols in n.rows(feed):
        if d["period"] > upto:
            continue
        for i, rid in enumerate(ids):
            seen.add(rid)
            if f.op_column and cols[f.op_column][i] == "D":
                state.pop(rid, None)
            else:
                state[rid] = {c: cols[c][i] for c in cols if c != f.op_column}
    return state, seen


def test_missing_deliveries_lose_no_change(gaps: tuple[Nation, Nation]) -> None:
    every, gappy = gaps
    months = every.cfg.months
    due = sum(1 for f in FEEDS for t in range(1, months) if t % f.cadence == 0)
    absent = len(every.manifest["deliveries"]) - len(gappy.manifest["deliveries"])
    assert len(every.manifest["deliveries"]) == sum(
        1 for f in FEEDS for t in range(months) if t % f.cadence == 0
    )
    assert 0.3 * due <= absent <= 0.7 * due, (absent, due)
    for feed in FEEDS:
        assert gappy.deliveries(feed.name)[0]["period"] == every.cfg.period(0)
        delivered = {d["period"] for d in gappy.deliveries(feed.name)}
        assert delivered <= {d["period"] for d in every.deliveries(feed.name)}
    # the civil registry: a gap delays changes to the next delivery, which carries them all
    reg = gappy.deliveries("civil_registry")
    assert len(reg) < months
    for feed in ("civil_registry", "address_registry"):
        last = gappy.deliveries(feed)[-1]["period"]
        state_every, ids_every = _state(every, feed, last)
        state_gappy, ids_gappy = _state(gappy, feed, last)
        assert ids_gappy == ids_every, feed
        assert state_gappy == state_every, feed
    # event feeds: every event up to the last delivered period arrives, once
    for feed in ("civil_acts", "social_payments"):
        last = gappy.deliveries(feed)[-1]["period"]
        ev_every = Counter(rid for d, ids, _ in every.rows(feed) if d["period"] <= last for rid in set(ids))
        ev_gappy = Counter(rid for d, ids, _ in gappy.rows(feed) if d["period"] <= last for rid in set(ids))
        assert ev_gappy == ev_every, feed
        assert set(ev_gappy.values()) == {1}, feed


def test_employer_bins_are_valid_and_distinct_at_national_scale() -> None:
    """Every synthetic employer has its own business number that the validator accepts as a BIN (check
    digit, fifth digit 4–6), also beyond the few hundred thousand employers of a small nation (a
    national nation has millions)."""
    from familycard.sources.validate import _check_iin
    from familycard.synth.feeds import _bins

    bins = _bins(np.arange(3_000_000, dtype=np.int64))
    assert len(set(bins.tolist())) == len(bins)
    sample = pa.array(bins[::997].tolist() + bins[-5:].tolist())
    valid, problems, _ = _check_iin(sample, business=True)
    assert valid.null_count == 0
    assert [rule for rule, _, mask in problems if mask.any()] == []


def test_large_settlements_have_streets_enough_for_distinct_addresses() -> None:
    """Addresses are drawn at random within a settlement; a national nation spreads its large settlements
    over more blocks of streets, so unrelated families rarely share an address without a flat (one such
    address makes them one household to the address register)."""
    from familycard.geo.territory import build_territory
    from familycard.synth.world import STREETS_PER_BLOCK, spread_streets, street_blocks

    weights = build_territory().settlement_weight
    assert int(street_blocks(weights, 20_000).max()) == 1  # small nations are generated as before
    blocks = street_blocks(weights, 6_000_000)
    largest = int(np.argmax(weights))
    families = int(weights[largest] / weights.sum() * 6_000_000)
    rng = np.random.default_rng(3)

    def shared(spread: bool) -> float:
        street = rng.integers(1, STREETS_PER_BLOCK + 1, families)
        house = rng.integers(1, 250, families)
        if spread:
            settlement = np.full(families, largest)
            drawn = street
            street = spread_streets(drawn, settlement, np.arange(families, dtype=np.int64), blocks)
            assert ((street - 1) % STREETS_PER_BLOCK + 1 == drawn).all()  # the number within its block
            assert int(street.max()) > STREETS_PER_BLOCK * (int(blocks[largest]) - 1)
        _, counts = np.unique(street.astype(np.int64) * 1000 + house, return_counts=True)
        return float(counts[counts > 1].sum() / families)

    assert shared(spread=False) > 0.5  # one block: most of the city's houses are shared
    assert shared(spread=True) < 0.01
