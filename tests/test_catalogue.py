"""Tests of the source catalogue (familycard.sources.catalogue).

The shipped catalogue must describe exactly what the synthetic-nation generator writes: the same feeds,
columns, formats, cadences, keys and operations as ``familycard.synth.feeds.FEEDS``; code lists that
cover every value in its files; and row rules (required fields, types, date styles and bounds, IIN
checks, date order) that every row keeps unless the ground truth records a deliberate fault in it. A
broken definition fails to load with an error naming the file and the key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from familycard.identity import iin as iinlib
from familycard.sources.catalogue import (
    DATE_STYLES,
    FEEDS_DIR,
    CatalogueError,
    Column,
    FeedSpec,
    load_catalogue,
    load_feed,
)
from familycard.sources.formats import read_table
from familycard.synth.config import SynthConfig
from familycard.synth.extracts import Feed
from familycard.synth.feeds import FEEDS
from familycard.synth.generate import FAULT_FLAGS, generate

CATALOGUE = load_catalogue()
STRFTIME = {
    "iso": "%Y-%m-%d",
    "dmy": "%d.%m.%Y",
    "dmy_slash": "%d/%m/%Y",
    "ymd": "%Y%m%d",
    "dmy_short": "%d.%m.%y",
    "dmy_compact": "%d%m%Y",
}
# The roles the generator gives the people of a record (truth/source_records.role).
ROLES = {"subject", "person1", "person2", "person3", "recipient", "owner", "head", "person", "other"}
NAME_FIELD = re.compile(r"(\w+_)?(surname|given_name|patronymic|full_name)")  # e.g. person2_surname
# What each feed holds that purpose-bound access must guard, by category.
SENSITIVE = {
    "health": {"health"},
    "disability": {"disability"},
    "police": {"police"},
    "debts": {"finance"},
    "housing_utilities": {"finance"},
    "social_payments": {"social"},
    "education": {"education"},
    "migration": {"migration"},
}
SEX = {"М": "M", "Ж": "F", "M": "M", "F": "F"}  # civil registry (Cyrillic) and passport (Latin) codes
ARROW_TYPES = {pa.date32(): "date", pa.float64(): "decimal", pa.int64(): "integer", pa.bool_(): "boolean"}


def by_feed(feed: Feed) -> str:
    return feed.name


def field_of(spec: FeedSpec, column_name: str) -> str:
    return spec.fields[spec.column_names.index(column_name)]


# ---- the shipped catalogue against the generator's declarations -----------------------------------


def test_catalogue_has_exactly_the_generators_feeds() -> None:
    assert sorted(CATALOGUE.names()) == sorted(f.name for f in FEEDS)
    assert len(CATALOGUE) == 20


@pytest.mark.parametrize("feed", FEEDS, ids=by_feed)
def test_feed_matches_the_generator(feed: Feed) -> None:
    spec = CATALOGUE[feed.name]
    assert spec.column_names == feed.columns
    assert spec.format == feed.fmt  # kind, encoding, delimiter, line ending, widths, header, replacement
    assert (spec.agency, spec.title) == (feed.agency, feed.title)
    assert (spec.cadence_months, spec.mode, spec.due_day, spec.version) == (feed.cadence, feed.mode, 6, 1)
    assert spec.key == (field_of(spec, feed.id_column),)
    assert spec.column(spec.key[0]).required
    if feed.op_column is None:
        assert spec.op_field is None and not spec.ops
    else:
        assert spec.op_field == field_of(spec, feed.op_column)
        # the generator's deltas write I, U and D in the operation column
        assert dict(spec.ops) == {"I": "insert", "U": "update", "D": "delete"}
        assert spec.column(spec.op_field).codes == ("I", "U", "D")


@pytest.mark.parametrize("feed", FEEDS, ids=by_feed)
def test_column_types_match_the_generator(feed: Feed) -> None:
    spec = CATALOGUE[feed.name]
    assert {c.name for c in spec.columns if c.type == "iin"} == set(feed.iin_columns)
    for c in spec.columns:
        arrow = feed.types.get(c.name, pa.string())
        if arrow != pa.string():
            assert c.type == ARROW_TYPES[arrow], c.name
    typed_dates = {name for name, t in feed.types.items() if t == pa.date32()}
    assert {c.name for c in spec.columns if c.type == "date"} == set(feed.date_columns) | typed_dates


@pytest.mark.parametrize("feed", FEEDS, ids=by_feed)
def test_date_styles_are_the_feeds_own_then_every_fault_style(feed: Feed) -> None:
    spec = CATALOGUE[feed.name]
    if feed.fmt.kind == "parquet":
        expected = ["iso"]  # typed dates: never reformatted
    elif feed.fmt.kind == "fixed":  # a reformatted date keeps the field's width
        width = len(dt.date(2025, 1, 31).strftime(STRFTIME[feed.date_style]))
        expected = [s for s in DATE_STYLES if len(dt.date(2025, 1, 31).strftime(STRFTIME[s])) == width]
    else:
        expected = list(DATE_STYLES)
    for c in spec.columns:
        if c.type == "date":
            assert c.date_styles[0] == (feed.date_style if feed.fmt.kind != "parquet" else "iso"), c.name
            assert sorted(c.date_styles) == sorted(expected), c.name


@pytest.mark.parametrize("spec", CATALOGUE.feeds, ids=lambda s: s.name)
def test_personal_data_is_marked(spec: FeedSpec) -> None:
    generator = next(f for f in FEEDS if f.name == spec.name)
    for c in spec.columns:
        assert (c.category is not None) == (c.personal == "sensitive"), c.name
        if c.type == "iin":
            assert c.personal == "identifier", c.name
        if NAME_FIELD.fullmatch(c.field) or c.name in generator.name_columns:
            assert c.personal == "name", c.name
        if c.field.endswith("birth_date"):
            assert c.personal == "birth", c.name
    assert {c.category for c in spec.columns if c.personal == "sensitive"} == SENSITIVE.get(spec.name, set())


@pytest.mark.parametrize("spec", CATALOGUE.feeds, ids=lambda s: s.name)
def test_iins_outside_the_civil_registry_are_optional_references(spec: FeedSpec) -> None:
    for c in spec.columns:
        if c.type != "iin":
            continue
        if spec.name == "civil_registry":
            assert c.required and c.references is None
        else:
            # an empty IIN must not stop a record that names can still link
            assert not c.required, c.name
            assert c.references is not None
            assert (c.references.feed, c.references.field, c.references.severity) == (
                "civil_registry",
                "iin",
                "flag",
            )


@pytest.mark.parametrize("spec", CATALOGUE.feeds, ids=lambda s: s.name)
def test_persons_point_at_fields_of_the_right_kind(spec: FeedSpec) -> None:
    assert spec.persons
    roles = [p.role for p in spec.persons]
    assert len(set(roles)) == len(roles) and set(roles) <= ROLES
    iins = set()
    for p in spec.persons:
        assert p.iin is not None and spec.column(p.iin).type == "iin"
        iins.add(p.iin)
        assert p.full_name is not None or (p.surname is not None and p.given_name is not None)
        for name in (p.surname, p.given_name, p.patronymic, p.full_name):
            assert name is None or spec.column(name).personal == "name"
        assert p.birth_date is None or spec.column(p.birth_date).type == "date"
        assert p.sex is None or spec.column(p.sex).type == "code"
    assert iins == {c.field for c in spec.columns if c.type == "iin"}


# ---- the shipped catalogue against a generated nation ----------------------------------------------


@dataclass
class Delivery:
    spec: FeedSpec
    file: str
    period_end: dt.date
    columns: dict[str, list[Any]]  # field -> values in file order (empty text and null read as None)
    faults: list[set[str]]  # per row: the faults the ground truth records for its record


@dataclass
class Nation:
    deliveries: list[Delivery]
    roles: dict[str, set[str]]  # feed -> roles of the people its records name


@pytest.fixture(scope="module")
def nation(tmp_path_factory: pytest.TempPathFactory) -> Nation:
    root = tmp_path_factory.mktemp("catalogue-nation")
    generate(SynthConfig(families=300, seed=3, months=4), root, workers=1)
    manifest = json.loads((root / "sources" / "manifest.json").read_text(encoding="utf-8"))
    faults: dict[tuple[str, str], set[str]] = defaultdict(set)
    roles: dict[str, set[str]] = defaultdict(set)
    for r in pq.read_table(root / "truth" / "source_records.parquet").to_pylist():
        faults[(r["feed"], r["record_id"])] |= {f for f in FAULT_FLAGS if r[f]}
        roles[r["feed"]].add(r["role"])
    deliveries = []
    for d in manifest["deliveries"]:
        spec = CATALOGUE[d["feed"]]
        table = read_table(root / "sources" / d["file"], spec.format, expected_columns=spec.column_names)
        columns = {
            c.field: [None if v == "" else v for v in table.column(c.name).to_pylist()] for c in spec.columns
        }
        year, month = map(int, d["period"].split("-"))
        end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
        ids = columns[spec.key[0]]
        deliveries.append(
            Delivery(spec, d["file"], end, columns, [faults.get((d["feed"], str(v)), set()) for v in ids])
        )
    assert sum(len(d.faults) for d in deliveries) > 5_000  # the nation is not empty
    return Nation(deliveries, dict(roles))


def parse_date(value: Any, style: str) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.datetime.strptime(str(value), STRFTIME[style]).date()
    except ValueError:
        return None


def bound(text: str, period_end: dt.date) -> dt.date:
    if text.startswith("delivery"):
        extra = re.fullmatch(r"delivery(?:\+(\d+)d)?", text)
        assert extra is not None
        return period_end + dt.timedelta(days=int(extra.group(1) or 0))
    return dt.date.fromisoformat(text)


def type_ok(c: Column, value: Any) -> bool:
    text = str(value)
    if c.type == "iin":
        return not iinlib.problems(text)
    if c.type == "bin":
        return re.fullmatch(r"\d{4}[456]\d{7}", text) is not None
    if c.type == "kato":
        return re.fullmatch(r"\d{9}", text) is not None
    if c.type == "period":
        return re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text) is not None
    if c.type == "boolean":
        return isinstance(value, bool)
    if c.type == "integer":
        return not isinstance(value, bool | float) and re.fullmatch(r"-?\d+", text) is not None
    if c.type == "decimal":
        return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None
    return True


def test_code_lists_cover_every_generated_value(nation: Nation) -> None:
    unknown: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for d in nation.deliveries:
        for c in d.spec.columns:
            if c.type == "code":
                seen = {v for v in d.columns[c.field] if v is not None}
                unknown[(d.spec.name, c.field)] |= seen - set(c.codes)
    assert {k: v for k, v in unknown.items() if v} == {}
    assert unknown  # the code columns were read


def test_required_columns_are_always_filled(nation: Nation) -> None:
    empty = {
        (d.file, c.name)
        for d in nation.deliveries
        for c in d.spec.columns
        if c.required and None in d.columns[c.field]
    }
    assert empty == set()


def test_every_date_reads_in_a_declared_style(nation: Nation) -> None:
    unreadable = {
        (d.file, c.name, v)
        for d in nation.deliveries
        for c in d.spec.columns
        if c.type == "date"
        for v in d.columns[c.field]
        if v is not None and not any(parse_date(v, s) for s in c.date_styles)
    }
    assert unreadable == set()


def test_rows_without_a_fault_keep_every_rule(nation: Nation) -> None:
    """Types, the feed's own date style, bounds and row checks hold wherever the truth records no fault
    that could break them (a mistyped IIN, a reformatted date)."""
    broken: dict[tuple[str, str, str], Any] = {}
    checked = 0
    for d in nation.deliveries:
        spec = d.spec
        for i, faults in enumerate(d.faults):
            row = {f: vals[i] for f, vals in d.columns.items()}
            dates: dict[str, dt.date | None] = {}
            for c in spec.columns:
                v = row[c.field]
                if v is None or (c.type == "iin" and "iin_mistyped" in faults):
                    continue
                if c.type == "date":
                    if "date_format" in faults:
                        continue
                    dates[c.field] = day = parse_date(v, c.date_styles[0])
                    if day is None:
                        broken.setdefault((spec.name, c.field, "own date style"), v)
                        continue
                    if c.not_before and day < bound(c.not_before, d.period_end):
                        broken.setdefault((spec.name, c.field, "not_before"), v)
                    if c.not_after and day > bound(c.not_after, d.period_end):
                        broken.setdefault((spec.name, c.field, "not_after"), (v, d.file))
                elif not type_ok(c, v):
                    broken.setdefault((spec.name, c.field, c.type), v)
                elif (c.min is not None and float(v) < c.min) or (c.max is not None and float(v) > c.max):
                    broken.setdefault((spec.name, c.field, "min/max"), v)
            for chk in spec.checks:
                if chk.kind == "date_order":
                    days = [dates.get(f) for f in chk.fields]
                    known = [x for x in days if x is not None]
                    if known != sorted(known):
                        broken.setdefault((spec.name, ",".join(chk.fields), chk.kind), row[spec.key[0]])
                    continue
                iin, other = row[chk.fields[0]], row[chk.fields[1]]
                if iin is None or other is None or faults & {"iin_mistyped", "date_format"}:
                    continue
                info = iinlib.info(iin)
                if chk.kind == "iin_birth_date" and dates.get(chk.fields[1]) != info.birth_date:
                    broken.setdefault((spec.name, ",".join(chk.fields), chk.kind), (iin, other))
                if chk.kind == "iin_sex" and SEX.get(other) != info.sex:
                    broken.setdefault((spec.name, ",".join(chk.fields), chk.kind), (iin, other))
            checked += 1
    assert broken == {}
    assert checked > 5_000


def test_persons_cover_every_role_the_generator_links(nation: Nation) -> None:
    for feed, roles in nation.roles.items():
        assert roles <= {p.role for p in CATALOGUE[feed].persons}, feed


# ---- broken definitions ----------------------------------------------------------------------------

CIVIL = (FEEDS_DIR / "civil_registry.toml").read_text(encoding="utf-8")
PENSION = (FEEDS_DIR / "pension_payments.toml").read_text(encoding="utf-8")


def write_definition(directory: Path, file: str, text: str) -> Path:
    """Write a definition, beside an intact civil registry that its IIN references point to."""
    if file != "civil_registry":
        (directory / "civil_registry.toml").write_text(CIVIL, encoding="utf-8")
    path = directory / f"{file}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def mutate(text: str, old: str, new: str) -> str:
    assert old in text, f"the definition no longer contains {old!r}"
    return text.replace(old, new, 1)


# (case, file name, definition text, expected key); columns of civil_registry: 0 Номер_записи, 1 ИИН,
# 2 Фамилия, 3 Имя, 4 Отчество, 5 Дата_рождения, 6 Пол, 7 Гражданство, 8 Дата_смерти, 9 Операция
BROKEN: list[tuple[str, str, str, str]] = [
    ("invalid-toml", "civil_registry", mutate(CIVIL, "[format]", "[format"), ""),
    ("name-not-file-name", "civil_registry_v2", CIVIL, "feed.name"),
    (
        "unknown-feed-key",
        "civil_registry",
        mutate(CIVIL, "due_day = 6\n", 'due_day = 6\ncolour = "red"\n'),
        "feed.colour",
    ),
    (
        "unknown-column-key",
        "civil_registry",
        mutate(CIVIL, 'name = "Отчество"\n', 'name = "Отчество"\nrequird = true\n'),
        "columns[4].requird",
    ),
    ("missing-key", "civil_registry", mutate(CIVIL, 'agency = "Ministry of Justice"\n', ""), "feed.agency"),
    (
        "wrong-type",
        "civil_registry",
        mutate(CIVIL, "cadence_months = 1", 'cadence_months = "monthly"'),
        "feed.cadence_months",
    ),
    ("bool-for-number", "civil_registry", mutate(CIVIL, "version = 1", "version = true"), "feed.version"),
    (
        "wrong-column-type",
        "civil_registry",
        mutate(
            CIVIL,
            'field = "sex"\ntype = "code"\nrequired = true',
            'field = "sex"\ntype = "code"\nrequired = "yes"',
        ),
        "columns[6].required",
    ),
    (
        "unknown-type",
        "civil_registry",
        mutate(CIVIL, 'field = "birth_date"\ntype = "date"', 'field = "birth_date"\ntype = "datetime"'),
        "columns[5].type",
    ),
    ("code-without-codes", "civil_registry", mutate(CIVIL, 'codes = ["М", "Ж"]\n', ""), "columns[6].codes"),
    (
        "codes-on-string",
        "civil_registry",
        mutate(CIVIL, 'field = "surname"\n', 'field = "surname"\ncodes = ["A"]\n'),
        "columns[2].codes",
    ),
    (
        "duplicate-field",
        "civil_registry",
        mutate(CIVIL, 'field = "patronymic"', 'field = "given_name"'),
        "columns[4].field",
    ),
    (
        "field-not-snake-case",
        "civil_registry",
        mutate(CIVIL, 'field = "patronymic"', 'field = "Patronymic"'),
        "columns[4].field",
    ),
    (
        "key-unknown-field",
        "civil_registry",
        mutate(CIVIL, 'key = ["record_no"]', 'key = ["record_id"]'),
        "feed.key",
    ),
    (
        "key-not-required",
        "civil_registry",
        mutate(
            CIVIL,
            'field = "record_no"\ntype = "string"\nrequired = true',
            'field = "record_no"\ntype = "string"',
        ),
        "feed.key",
    ),
    (
        "reference-unknown-feed",
        "civil_registry",
        mutate(
            CIVIL,
            'personal = "identifier"\n',
            'personal = "identifier"\nreferences = { feed = "nowhere", field = "iin" }\n',
        ),
        "columns[1].references.feed",
    ),
    (
        "reference-unknown-field",
        "civil_registry",
        mutate(
            CIVIL,
            'personal = "identifier"\n',
            'personal = "identifier"\nreferences = { feed = "civil_registry", field = "nin" }\n',
        ),
        "columns[1].references.field",
    ),
    (
        "sensitive-without-category",
        "civil_registry",
        mutate(CIVIL, 'field = "citizenship"\n', 'field = "citizenship"\npersonal = "sensitive"\n'),
        "columns[7].category",
    ),
    (
        "category-not-sensitive",
        "civil_registry",
        mutate(CIVIL, 'field = "citizenship"\n', 'field = "citizenship"\ncategory = "migration"\n'),
        "columns[7].category",
    ),
    (
        "bad-date-style",
        "civil_registry",
        mutate(CIVIL, 'date_styles = ["dmy", "iso"', 'date_styles = ["dmy", "isoo"'),
        "columns[5].date_styles[1]",
    ),
    (
        "bad-date-bound",
        "civil_registry",
        mutate(CIVIL, 'not_after = "delivery"', 'not_after = "tomorrow"'),
        "columns[5].not_after",
    ),
    (
        "bound-on-string",
        "civil_registry",
        mutate(CIVIL, 'field = "surname"\n', 'field = "surname"\nmin = 0\n'),
        "columns[2].min",
    ),
    (
        "fixed-widths-not-columns",
        "pension_payments",
        mutate(PENSION, '    ["KATO", 9],\n', ""),
        "format.widths",
    ),
    (
        "fixed-width-not-a-number",
        "pension_payments",
        mutate(PENSION, '["DR", 8]', '["DR", "8"]'),
        "format.widths[3]",
    ),
    ("bad-encoding", "civil_registry", mutate(CIVIL, 'encoding = "utf-8"', 'encoding = "utf-16"'), "format"),
    (
        "bad-replacement",
        "civil_registry",
        mutate(CIVIL, 'line_ending = "LF"', 'line_ending = "LF"\nunencodable = "drop"'),
        "format.unencodable",
    ),
    ("delta-without-op-field", "civil_registry", mutate(CIVIL, 'op_field = "op"\n', ""), "feed.op_field"),
    ("ops-not-op-codes", "civil_registry", mutate(CIVIL, ', D = "delete" }', " }"), "feed.ops"),
    ("bad-op", "civil_registry", mutate(CIVIL, 'D = "delete"', 'D = "remove"'), "feed.ops.D"),
    ("due-day-past-28", "civil_registry", mutate(CIVIL, "due_day = 6", "due_day = 31"), "feed.due_day"),
    (
        "person-unknown-field",
        "civil_registry",
        mutate(CIVIL, 'sex = "sex"', 'sex = "gender"'),
        "persons[0].sex",
    ),
    (
        "check-unknown-field",
        "civil_registry",
        mutate(CIVIL, '"death_date"]', '"burial_date"]'),
        "checks[2].fields",
    ),
    (
        "check-wrong-types",
        "civil_registry",
        mutate(CIVIL, 'fields = ["iin", "sex"]', 'fields = ["iin", "surname"]'),
        "checks[1].fields",
    ),
]


@pytest.mark.parametrize(("file", "text"), [("civil_registry", CIVIL), ("pension_payments", PENSION)])
def test_unbroken_copies_load(tmp_path: Path, file: str, text: str) -> None:
    path = write_definition(tmp_path, file, text)
    assert load_catalogue(tmp_path)[file] == replace(CATALOGUE[file], path=str(path))


@pytest.mark.parametrize(("case", "file", "text", "key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_definition_names_file_and_key(
    tmp_path: Path, case: str, file: str, text: str, key: str
) -> None:
    path = write_definition(tmp_path, file, text)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert (err.value.path, err.value.key) == (str(path), key), err.value
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert (err.value.path, err.value.key) == (str(tmp_path), "")


def test_load_feed_reads_one_definition() -> None:
    spec = load_feed(FEEDS_DIR / "pension_payments.toml")
    assert spec == CATALOGUE["pension_payments"]
    assert spec.file_name("2025-01", "events") == "pension_payments_2025-01_events.txt"
    assert spec.column("birth_date").date_styles == ("ymd", "dmy_short", "dmy_compact")
    with pytest.raises(KeyError):
        spec.column("nothing")
    with pytest.raises(KeyError):
        CATALOGUE["nothing"]
