"""Row validation: every rule on tiny inline batches, with the line, field and reason it reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from familycard.identity import iin as iinlib
from familycard.sources.catalogue import load_catalogue, load_feed
from familycard.sources.validate import BatchValidator

FEED = """
[feed]
name = "people"
agency = "Test agency"
title = "People"
cadence_months = 1
mode = "delta"
key = ["record_no"]
op_field = "op"
ops = { I = "insert", U = "update", D = "delete" }

[format]
kind = "csv"
delimiter = ";"

[[columns]]
name = "Номер"
field = "record_no"
type = "string"
required = true

[[columns]]
name = "ИИН"
field = "iin"
type = "iin"
personal = "identifier"

[[columns]]
name = "Дата_рождения"
field = "birth_date"
type = "date"
date_styles = ["dmy", "iso", "dmy_short", "ymd", "dmy_compact"]
not_before = "1900-01-01"
not_after = "delivery"

[[columns]]
name = "Пол"
field = "sex"
type = "code"
codes = ["М", "Ж"]

[[columns]]
name = "КАТО"
field = "kato"
type = "kato"

[[columns]]
name = "Сумма"
field = "amount"
type = "decimal"
min = 0

[[columns]]
name = "Дети"
field = "children"
type = "integer"

[[columns]]
name = "Операция"
field = "op"
type = "code"
required = true
codes = ["I", "U", "D"]

[[checks]]
kind = "iin_birth_date"
fields = ["iin", "birth_date"]
severity = "flag"

[[checks]]
kind = "iin_sex"
fields = ["iin", "sex"]
severity = "flag"
"""

GOOD_IIN = "791028302728"  # born 1979-10-28, male (FACTS.md)
PERIOD_END = dt.date(2025, 1, 31)
KATO = "751110000"  # a real Almaty district code? the classifier decides: see the kato test


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("feeds") / "people.toml"
    path.write_text(FEED, encoding="utf-8")
    return load_feed(path)


def _row(**over: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "Номер": "1",
        "ИИН": GOOD_IIN,
        "Дата_рождения": "28.10.1979",
        "Пол": "М",
        "КАТО": None,
        "Сумма": "100.50",
        "Дети": "2",
        "Операция": "I",
    }
    row.update(over)
    return row


def _validate(spec, rows: list[dict[str, str | None]]):  # type: ignore[no-untyped-def]
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in rows[0]]))
    return BatchValidator(spec, PERIOD_END)(table, first_line=2)


def _issues(v) -> list[tuple[int, str, str, str]]:  # type: ignore[no-untyped-def]
    return list(
        zip(
            v.issues["line"].to_pylist(),
            v.issues["field"].to_pylist(),
            v.issues["rule"].to_pylist(),
            v.issues["severity"].to_pylist(),
            strict=True,
        )
    )


def test_a_clean_row_loads_typed(spec) -> None:  # type: ignore[no-untyped-def]
    v = _validate(spec, [_row()])
    assert (v.read, v.rejected, v.flagged) == (1, 0, 0)
    assert v.issues.num_rows == 0
    row = v.rows.to_pylist()[0]
    assert row["birth_date"] == dt.date(1979, 10, 28)
    assert row["amount"] == 100.5 and row["children"] == 2
    assert row["iin"] == GOOD_IIN and row["iin_raw"] is None
    assert row["_line"] == 2 and row["_flagged"] is False


def test_missing_required_key_rejects_the_row_with_the_raw_record(spec) -> None:  # type: ignore[no-untyped-def]
    v = _validate(spec, [_row(), _row(**{"Номер": " "})])
    assert v.rejected == 1 and v.rows.num_rows == 1
    assert _issues(v) == [(3, "record_no", "required", "reject")]
    record = json.loads(v.issues["record"][0].as_py())
    assert record["ИИН"] == GOOD_IIN and record["Номер"] is None


def test_mistyped_iin_is_set_aside_but_the_row_loads(spec) -> None:  # type: ignore[no-untyped-def]
    bad = GOOD_IIN[:-1] + "9"
    v = _validate(spec, [_row(**{"ИИН": bad})])
    assert v.rejected == 0 and v.flagged == 1
    assert _issues(v) == [(2, "iin", "check_digit", "flag")]
    row = v.rows.to_pylist()[0]
    assert row["iin"] is None and row["iin_raw"] == bad and row["_flagged"] is True
    assert v.issues["value"][0].as_py() == bad
    assert v.issues["record"][0].as_py() is None  # the row itself is loaded


@pytest.mark.parametrize(
    ("iin", "rule"),
    [("79102830272", "iin_format"), ("7910283027A8", "iin_format"), ("123456789012", "check_digit")],
)
def test_iin_shapes(spec, iin: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    v = _validate(spec, [_row(**{"ИИН": iin})])
    assert [r for _, f, r, _ in _issues(v) if f == "iin"] == [rule]


def test_a_bin_is_not_a_person(spec) -> None:  # type: ignore[no-untyped-def]
    # A business number: same check rule, 5th digit 4.
    first11 = "05014" + "000123"
    check = iinlib.check_digit(first11)
    assert check is not None
    v = _validate(spec, [_row(**{"ИИН": first11 + str(check), "Дата_рождения": None, "Пол": None})])
    assert ("iin", "iin_kind") in [(f, r) for _, f, r, _ in _issues(v)]


def test_iin_against_birth_date_and_sex(spec) -> None:  # type: ignore[no-untyped-def]
    v = _validate(spec, [_row(**{"Дата_рождения": "29.10.1979"}), _row(**{"Пол": "Ж"})])
    assert _issues(v) == [(2, "iin", "iin_birth_date", "flag"), (3, "iin", "iin_sex", "flag")]
    assert v.rows["iin"].to_pylist() == [None, None]
    assert v.rows["iin_raw"].to_pylist() == [GOOD_IIN, GOOD_IIN]


def test_date_styles_are_read_and_noted(spec) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row(**{"Дата_рождения": s, "ИИН": None})
        for s in ("28.10.1979", "1979-10-28", "28.10.79", "19791028", "28101979")
    ]
    v = _validate(spec, rows)
    assert v.rows["birth_date"].to_pylist() == [dt.date(1979, 10, 28)] * 5
    assert [(line, r, s) for line, _, r, s in _issues(v)] == [(n, "date_style", "warn") for n in (3, 4, 5, 6)]


def test_impossible_and_implausible_dates(spec) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row(**{"Дата_рождения": s, "ИИН": None}) for s in ("31.02.1990", "01.01.1850", "01.03.2025", "soon")
    ]
    v = _validate(spec, rows)
    assert v.rejected == 0 and v.flagged == 4  # an optional field: set aside, row kept
    assert [r for _, _, r, _ in _issues(v)] == ["date", "plausible", "plausible", "date"]
    assert v.rows["birth_date"].to_pylist() == [None] * 4


def test_codes_numbers_and_ranges(spec) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row(**{"Пол": "X"}),
        _row(**{"Сумма": "1 234,50"}),
        _row(**{"Сумма": "-5"}),
        _row(**{"Дети": "2.5"}),
        _row(**{"Операция": "Z"}),
    ]
    v = _validate(spec, rows)
    assert _issues(v) == [
        (2, "sex", "code", "flag"),
        (4, "amount", "range", "flag"),
        (5, "children", "number", "flag"),
        (6, "op", "code", "reject"),
    ]
    assert v.rows["amount"].to_pylist() == [100.5, 1234.5, None, 100.5]


def test_numbers_beyond_the_type_are_set_aside_not_a_crash(spec) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row(**{"Дети": "10891291820242622657"}),  # more than a 64-bit integer holds
        _row(**{"Дети": "95373284400788110"}),  # fits, though a double cannot hold it exactly
        _row(**{"Дети": "+5", "Сумма": "+7,5"}),  # a leading plus sign
        _row(**{"Дети": "+-5", "Сумма": "1e999"}),  # two signs; a decimal beyond a double
        _row(**{"Дети": "-0000000000000000000000012"}),  # leading zeros are no size
    ]
    v = _validate(spec, rows)
    assert _issues(v) == [
        (2, "children", "range", "flag"),
        (5, "amount", "range", "flag"),
        (5, "children", "number", "flag"),
    ]
    assert v.rows["children"].to_pylist() == [None, 95373284400788110, 5, None, -12]
    assert v.rows["amount"].to_pylist() == [100.5, 100.5, 7.5, None, 100.5]
    assert v.issues["reason"].to_pylist()[0] == "too large to be read as a number"


def test_kato_must_exist(spec) -> None:  # type: ignore[no-untyped-def]
    from familycard.geo.territory import build_territory

    real = str(build_territory().settlement_kato[0])
    v = _validate(spec, [_row(**{"КАТО": real}), _row(**{"КАТО": "999999999"}), _row(**{"КАТО": "12"})])
    assert [(line, r) for line, f, r, _ in _issues(v) if f == "kato"] == [(3, "kato"), (4, "kato")]
    assert v.rows["kato"].to_pylist() == [real, None, None]


def test_issue_keys_name_the_record(spec) -> None:  # type: ignore[no-untyped-def]
    v = _validate(spec, [_row(**{"Номер": "77", "Пол": "X"})])
    assert v.issues["key"].to_pylist() == ["77"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(list(_row())),
            st.text(max_size=14)
            | st.from_regex(r"[-+ ]{0,2}[0-9]{1,25}([.,][0-9]{0,5})?([eE][-+]?[0-9]{1,4})?", fullmatch=True)
            | st.from_regex(r"[0-9./-]{6,12}", fullmatch=True),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_text_never_crashes_and_every_row_is_accounted_for(tmp_path_factory, rows) -> None:  # type: ignore[no-untyped-def]
    path = Path(tmp_path_factory.getbasetemp()) / "people.toml"
    if not path.exists():
        path.write_text(FEED, encoding="utf-8")
    spec = load_feed(path)
    full = [_row(**r) for r in rows]
    v = _validate(spec, full)
    assert v.rows.num_rows + v.rejected == len(full)
    rejected_lines = set(
        v.issues.filter(pa.compute.equal(v.issues["severity"], "reject"))["line"].to_pylist()
    )
    assert len(rejected_lines) == v.rejected
    assert set(v.rows["_line"].to_pylist()).isdisjoint(rejected_lines)


def test_shipped_catalogue_validates_a_generated_nation_cleanly(small_nation: Path) -> None:
    """On generator output, only the generator's deliberate faults raise issues."""
    from familycard.sources.formats import iter_batches
    from familycard.sources.periods import period_bounds

    rules: set[str] = set()
    rejected = 0
    for spec in load_catalogue():
        for path in sorted((small_nation / "sources" / spec.name).glob("*")):
            period = path.name[len(spec.name) + 1 : len(spec.name) + 8]
            check = BatchValidator(spec, period_bounds(period)[1])
            for batch in iter_batches(path, spec.format, expected_columns=spec.column_names):
                v = check(batch, 2)
                rejected += v.rejected
                rules |= set(v.issues["rule"].to_pylist())
    assert rejected == 0
    assert rules <= {"check_digit", "date_style", "iin_format"}
    assert "check_digit" in rules and "date_style" in rules


@pytest.fixture(scope="module")
def small_nation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from familycard.synth.config import SynthConfig
    from familycard.synth.generate import generate

    out = tmp_path_factory.mktemp("nation")
    generate(SynthConfig(families=400, seed=5, months=4), out)
    return out


def test_two_digit_years_take_the_plausible_century(tmp_path: Path) -> None:
    text = FEED.replace('name = "people"', 'name = "spans"').replace(
        '[[columns]]\nname = "КАТО"',
        '[[columns]]\nname = "До"\nfield = "valid_to"\ntype = "date"\n'
        'date_styles = ["dmy", "dmy_short"]\n\n[[columns]]\nname = "КАТО"',
    )
    path = tmp_path / "spans.toml"
    path.write_text(text, encoding="utf-8")
    spec = load_feed(path)
    v = _validate(spec, [_row(**{"ИИН": None, "Дата_рождения": "01.02.26", "До": "01.02.26"})])
    row = v.rows.to_pylist()[0]
    # A birth date cannot be after the delivery (January 2025): 1926. A validity end may be ahead: 2026.
    assert row["birth_date"] == dt.date(1926, 2, 1)
    assert row["valid_to"] == dt.date(2026, 2, 1)


# -- the vectorised readers agree with plain Python ------------------------------------------------------

_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2003\u200a\u2028\u2029\u202f\u205f\u3000"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=_SPACES + "abcЖжәңүқөһ«»°é—№р8", max_size=6),
        ),
        max_size=20,
    )
)
def test_text_is_trimmed_as_arrow_trims_it(values: list[str | None]) -> None:
    import pyarrow.compute as pc

    from familycard.sources.validate import _as_text

    arr = pa.array(values, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr).to_pylist()
    expected = [None if v is None or v == "" else v for v in trimmed]
    assert _as_text(pa.chunked_array([arr], pa.string())).to_pylist() == expected
    assert _as_text(pa.chunked_array([arr.slice(1)], pa.string())).to_pylist() == expected[1:]
    for i in range(len(values)):  # (alone: one value that needs trimming has every value trimmed)
        assert _as_text(pa.chunked_array([arr.slice(i, 1)], pa.string())).to_pylist() == expected[i : i + 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1700, 2300), st.integers(-1, 14), st.integers(-1, 33)), max_size=30))
def test_calendar_days_match_the_standard_library(triples: list[tuple[int, int, int]]) -> None:
    import numpy as np

    from familycard.sources.validate import _civil_days

    y, m, d = (np.array([t[i] for t in triples], np.int64) for i in range(3))
    days, valid = _civil_days(y, m, d)
    for (yy, mm, dd), got, ok in zip(triples, days.tolist(), valid.tolist(), strict=True):
        try:
            date = dt.date(yy, mm, dd) if 1800 <= yy <= 2200 else None
        except ValueError:
            date = None
        assert ok == (date is not None)
        if date is not None:
            assert got == (date - dt.date(1970, 1, 1)).days


def _with_check_digit(first11: str) -> str:
    check = iinlib.check_digit(first11)
    return first11 + str(check if check is not None else 0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789", min_size=12, max_size=12),
            st.text(alphabet="0123456789a ", min_size=10, max_size=13),
            st.text(alphabet="0123456789", min_size=11, max_size=11).map(_with_check_digit),
        ),
        max_size=30,
    )
)
def test_iin_rules_match_the_scalar_rules(values: list[str | None]) -> None:
    from familycard.sources.validate import _check_iin

    value, why, read = _check_iin(pa.array(values, pa.string()), business=False)
    failed = {rule: mask.tolist() for rule, _, mask in why}
    for i, text in enumerate(values):
        if text is None:
            assert value[i].as_py() is None and not any(m[i] for m in failed.values())
            continue
        broken = {p.name for p in iinlib.problems(text)}
        assert (value[i].as_py() == text) == (not broken)
        assert failed["iin_format"][i] == ("FORMAT" in broken)
        if "FORMAT" not in broken:
            assert read.digits[i].tolist() == [int(c) for c in text]
            bad_check = bool(broken & {"CHECK_DIGIT", "UNISSUABLE"})
            assert failed["check_digit"][i] == bad_check
            if not bad_check:
                assert failed["iin_kind"][i] == ("BIN" in broken)
                assert failed["iin_date"][i] == bool(broken & {"CENTURY_SEX", "BIRTH_DATE"})
