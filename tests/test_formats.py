"""Tests of the agency feed file formats (familycard.sources.formats)."""

from __future__ import annotations

import contextlib
import datetime as dt
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from familycard.sources import formats
from familycard.sources.formats import (
    FileFormat,
    FormatError,
    iter_batches,
    open_writer,
    read_table,
)

CSV_CP1251 = FileFormat("csv", encoding="cp1251", delimiter=";", line_ending="\r\n")
CSV_UTF8 = FileFormat("csv")
CSV_CP866_HEADERLESS = FileFormat("csv", encoding="cp866", delimiter="|", header=False)
JSONL = FileFormat("jsonl")
PARQUET = FileFormat("parquet")
FIXED_CP866 = FileFormat(
    "fixed",
    encoding="cp866",
    widths=(("ИИН", 12), ("Фамилия", 10), ("Город", 8)),
    line_ending="\r\n",
)
FIXED_UTF8 = FileFormat("fixed", widths=(("ИИН", 12), ("Фамилия", 10), ("Город", 8)))
ALL_FORMATS = [CSV_CP1251, CSV_UTF8, CSV_CP866_HEADERLESS, JSONL, PARQUET, FIXED_CP866, FIXED_UTF8]
FORMAT_IDS = [
    "csv-cp1251",
    "csv-utf8",
    "csv-cp866-headerless",
    "jsonl",
    "parquet",
    "fixed-cp866",
    "fixed-utf8",
]


def _people(n: int = 9) -> pa.Table:
    """Registry-like rows: IINs with leading zeros, Cyrillic names, a few awkward values."""
    iins = [f"{i:012d}" for i in range(n)]
    iins[0] = "061211600012"
    surnames = ["Иванов", "Петрова", None, "", "Ким", "Ли", "Сидоров", "Ахметов", "Жукова"]
    towns = ["Алматы", "Астана", None, "Шымкент", "Тараз", "Актобе", "Атырау", "Костанай", "Павлодар"]
    return pa.table(
        {
            "ИИН": iins,
            "Фамилия": [surnames[i % len(surnames)] for i in range(n)],
            "Город": [towns[i % len(towns)] for i in range(n)],
        }
    )


def _tricky() -> pa.Table:
    """Values that CSV must quote, plus nulls and leading zeros."""
    return pa.table(
        {
            "ИИН": ["061211600012", "000000000001", None, "x", "y", "z", "w"],
            "Фамилия": ["Иванов", "a;b", 'он сказал "да"', "две\nстроки", "cr\r\nlf", None, ""],
            "Дата_рождения": ["2006-12-11", "", None, " пробел ", "a,b", '"', "|"],
        }
    )


def _text_expected(table: pa.Table) -> dict[str, list[str | None]]:
    """What a text format reads back: every value a string, empty strings as null."""
    return {
        name: [v if v != "" else None for v in col.to_pylist()]
        for name, col in zip(table.column_names, table.columns, strict=True)
    }


def _write(path: Path, fmt: FileFormat, *tables: pa.Table) -> int:
    with open_writer(path, fmt, tables[0].schema) as writer:
        for table in tables:
            writer.write(table)
    return writer.close()


def _read(path: Path, fmt: FileFormat, names: list[str] | None = None) -> pa.Table:
    expected = names if fmt.kind == "csv" and not fmt.header else None
    return read_table(path, fmt, expected_columns=expected)


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_round_trip_people(tmp_path: Path, fmt: FileFormat) -> None:
    table = _people()
    path = tmp_path / "feeds" / "agency" / f"people.{fmt.extension}"
    assert _write(path, fmt, table) == table.num_rows
    back = _read(path, fmt, table.column_names)
    assert back.column_names == table.column_names
    if fmt.kind in ("parquet", "jsonl"):
        expected = table.to_pydict()
        if fmt.kind == "jsonl":
            assert back.column("ИИН").to_pylist()[0] == "061211600012"
        assert back.to_pydict() == expected
    else:
        assert all(t == pa.string() for t in back.schema.types)
        assert back.to_pydict() == _text_expected(table)


@pytest.mark.parametrize("fmt", [CSV_CP1251, CSV_UTF8, CSV_CP866_HEADERLESS], ids=FORMAT_IDS[:3])
def test_csv_round_trip_tricky_values(tmp_path: Path, fmt: FileFormat) -> None:
    table = _tricky()
    path = tmp_path / "t.csv"
    _write(path, fmt, table)
    assert _read(path, fmt, table.column_names).to_pydict() == _text_expected(table)


def test_csv_quotes_only_when_needed(tmp_path: Path) -> None:
    table = pa.table({"ИИН": ["061211600012", "a;b", 'q"x', "n\nl", " s "], "Имя": ["Жанна"] * 5})
    path = tmp_path / "q.csv"
    _write(path, CSV_CP1251, table)
    text = path.read_bytes().decode("cp1251")
    assert text == (
        'ИИН;Имя\r\n061211600012;Жанна\r\n"a;b";Жанна\r\n"q""x";Жанна\r\n"n\nl";Жанна\r\n s ;Жанна\r\n'
    )


def test_csv_header_quoting_and_single_column_nulls(tmp_path: Path) -> None:
    table = pa.table({"a;b": ["x", None, "", "y"]})
    path = tmp_path / "one.csv"
    _write(path, FileFormat("csv", delimiter=";"), table)
    assert path.read_bytes() == b'"a;b"\nx\n\n\ny\n'
    assert read_table(path, FileFormat("csv", delimiter=";")).to_pydict() == {"a;b": ["x", None, None, "y"]}


def test_csv_non_string_columns_are_written_as_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "n": [1, None, -3],
            "d": [dt.date(2006, 12, 11), None, dt.date(1979, 10, 28)],
            "b": [True, False, None],
        }
    )
    path = tmp_path / "typed.csv"
    _write(path, CSV_UTF8, table)
    assert read_table(path, CSV_UTF8).to_pydict() == {
        "n": ["1", None, "-3"],
        "d": ["2006-12-11", None, "1979-10-28"],
        "b": ["true", "false", None],
    }


def test_csv_reader_accepts_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "ИИН;Имя\r\n061211600012;Ә\r\n".encode())
    table = read_table(path, FileFormat("csv", delimiter=";"))
    assert table.to_pydict() == {"ИИН": ["061211600012"], "Имя": ["Ә"]}


def test_jsonl_round_trip_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ИИН": ["061211600012", None, "000000000007"],
            "сумма": [1.0, 2.5, None],
            "дети": [3, None, 0],
            "флаг": [True, None, False],
            "дата": [dt.date(2006, 12, 11), None, dt.date(2020, 1, 31)],
            "текст": ['кавычка " и \\', "таб\tи\x01", "строка\nещё"],
        }
    )
    path = tmp_path / "t.jsonl"
    _write(path, JSONL, table)
    first = path.read_text(encoding="utf-8").split("\n")[0]
    assert first == (
        '{"ИИН":"061211600012","сумма":1.0,"дети":3,"флаг":true,"дата":"2006-12-11",'
        '"текст":"кавычка \\" и \\\\"}'
    )
    back = read_table(path, JSONL)
    assert back.schema.types == [pa.string(), pa.float64(), pa.int64(), pa.bool_(), pa.string(), pa.string()]
    expected = table.to_pydict()
    expected["дата"] = ["2006-12-11", None, "2020-01-31"]  # dates come back as their JSON text
    assert back.to_pydict() == expected


def test_jsonl_nonfinite_floats_become_null(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, JSONL, pa.table({"x": [float("nan"), float("inf"), 1e20, -0.5]}))
    assert read_table(path, JSONL).column("x").to_pylist() == [None, None, 1e20, -0.5]


def test_jsonl_date_like_strings_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"a": null, "b": "x"}\n{"a": "2020-01-31", "b": "2020-01-01 10:00:00"}\n', encoding="utf-8"
    )
    table = read_table(path, JSONL)
    assert table.schema.types == [pa.string(), pa.string()]
    assert table.to_pydict() == {"a": [None, "2020-01-31"], "b": ["x", "2020-01-01 10:00:00"]}


def test_fixed_layout(tmp_path: Path) -> None:
    fmt = FileFormat("fixed", encoding="cp866", widths=(("ИИН", 12), ("Ф", 6)), line_ending="\r\n")
    path = tmp_path / "f.txt"
    _write(path, fmt, pa.table({"ИИН": ["061211600012", None], "Ф": ["Ли", "Жукова"]}))
    assert path.read_bytes() == "061211600012Ли    \r\n            Жукова\r\n".encode("cp866")


def test_cp866_fixed_reads_other_code_page_bytes_consistently(tmp_path: Path) -> None:
    """The byte-matrix fast path and the general path agree (the latter used for UTF-8)."""
    table = _people(50)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    _write(a, FIXED_CP866, table)
    _write(b, FIXED_UTF8, table)
    assert read_table(a, FIXED_CP866).equals(read_table(b, FIXED_UTF8))


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_columns_selection(tmp_path: Path, fmt: FileFormat) -> None:
    table = _people()
    path = tmp_path / f"p.{fmt.extension}"
    _write(path, fmt, table)
    expected = table.column_names if fmt.kind == "csv" and not fmt.header else None
    got = read_table(path, fmt, columns=["Город", "ИИН"], expected_columns=expected)
    assert got.column_names == ["Город", "ИИН"]
    assert got.column("ИИН").to_pylist() == table.column("ИИН").to_pylist()
    with pytest.raises(FormatError, match="Отчество"):
        read_table(path, fmt, columns=["Отчество"], expected_columns=expected)


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_empty_feed(tmp_path: Path, fmt: FileFormat) -> None:
    schema = _people().schema
    path = tmp_path / f"e.{fmt.extension}"
    with open_writer(path, fmt, schema) as writer:
        pass
    assert writer.close() == 0
    back = _read(path, fmt, schema.names)
    assert back.num_rows == 0
    assert list(iter_batches(path, fmt, expected_columns=schema.names if fmt.kind == "csv" else None)) == []
    if fmt.kind != "jsonl":  # an empty JSON-lines file has no keys to name columns
        assert back.column_names == schema.names


def test_csv_header_only_is_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes("ИИН;Фамилия".encode("cp1251"))
    assert read_table(path, CSV_CP1251).to_pydict() == {"ИИН": [], "Фамилия": []}


# ---------------------------------------------------------------------------- determinism and streaming


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_byte_identical_and_streaming(
    tmp_path: Path, fmt: FileFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "PARQUET_ROW_GROUP_ROWS", 64)  # several row groups, split mid-batch
    monkeypatch.setattr(formats, "_WRITE_CHUNK_ROWS", 50)
    table = _people(300)
    once, again, batched = (tmp_path / f"{name}.{fmt.extension}" for name in ("once", "again", "batched"))
    _write(once, fmt, table)
    _write(again, fmt, table)
    assert _write(batched, fmt, table.slice(0, 7), table.slice(7, 150), table.slice(157)) == 300
    assert once.read_bytes() == again.read_bytes() == batched.read_bytes()
    if fmt.kind == "parquet":
        import pyarrow.parquet as pq

        assert pq.ParquetFile(once).metadata.num_row_groups == 5


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=FORMAT_IDS)
def test_iter_batches(tmp_path: Path, fmt: FileFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_READ_BLOCK_BYTES", 1024)  # many read blocks
    table = _people(500)
    path = tmp_path / f"p.{fmt.extension}"
    _write(path, fmt, table)
    names = table.column_names if fmt.kind == "csv" and not fmt.header else None
    batches = list(iter_batches(path, fmt, batch_rows=64, expected_columns=names))
    assert [b.num_rows for b in batches] == [64] * 7 + [52]
    whole = read_table(path, fmt, expected_columns=names)
    assert pa.concat_tables(batches).to_pydict() == whole.to_pydict()
    assert whole.column("ИИН").to_pylist() == table.column("ИИН").to_pylist()


def test_writer_is_atomic_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "p.csv"
    writer = open_writer(path, CSV_UTF8, _people().schema)
    writer.write(_people())
    assert not path.exists()
    assert writer.close() == 9
    assert writer.close() == 9
    assert path.exists()
    assert list(path.parent.iterdir()) == [path]
    with pytest.raises(ValueError, match="closed"):
        writer.write(_people())


def test_writer_rejects_other_schema(tmp_path: Path) -> None:
    with open_writer(tmp_path / "p.csv", CSV_UTF8, _people().schema) as writer:
        with pytest.raises(ValueError, match="differ"):
            writer.write(pa.table({"other": ["x"]}))
        writer.write(_people().select(["Город", "ИИН", "Фамилия"]))  # same columns, other order: fine
    assert read_table(tmp_path / "p.csv", CSV_UTF8).column_names == ["ИИН", "Фамилия", "Город"]


# ------------------------------------------------------------------------------------------ encodings


def test_unencodable_kazakh_letter_raises_with_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "kz.csv"
    table = pa.table({"ИИН": ["1", "2", "3"], "Имя": ["Иван", "Жанна", "Әлия"]})
    with pytest.raises(FormatError) as info:
        _write(path, CSV_CP1251, table.slice(0, 2), table.slice(2))
    err = info.value
    assert (err.path, err.row, err.field) == (path, 3, "Имя")
    assert str(path) in str(err) and "row 3" in str(err) and "'Имя'" in str(err) and "U+04D8" in str(err)
    assert not path.exists() and not list(tmp_path.iterdir())  # the partial file is gone


def test_unencodable_column_name(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="Әкесі"):
        open_writer(tmp_path / "kz.csv", CSV_CP1251, pa.schema([("Әкесі", pa.string())]))


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("cp1251", "Алия Касымова, Онербек Нуртас \u0456 Х?"),  # cp1251 has the Ukrainian/Kazakh і
        ("cp866", "Алия Касымова, Онербек Нуртас i Х?"),  # cp866 does not: Latin i
    ],
)
def test_unencodable_replace_with_lookalikes(tmp_path: Path, encoding: str, expected: str) -> None:
    fmt = FileFormat("csv", encoding=encoding, unencodable="replace")
    path = tmp_path / "kz.csv"
    _write(path, fmt, pa.table({"имя": ["Әлия Қасымова, Өнербек Нұртас і Һ😀"]}))
    assert read_table(path, fmt).column("имя").to_pylist() == [expected]


def test_replace_keeps_fixed_width_alignment(tmp_path: Path) -> None:
    fmt = FileFormat("fixed", encoding="cp866", widths=(("a", 5), ("b", 2)), unencodable="replace")
    path = tmp_path / "kz.txt"
    _write(path, fmt, pa.table({"a": ["Әңгі"], "b": ["ұү"]}))
    assert read_table(path, fmt).to_pydict() == {"a": ["Анг" + "i"], "b": ["уу"]}


def test_kz1048_holds_kazakh_letters(tmp_path: Path) -> None:
    fmt = FileFormat("csv", encoding="kz1048", delimiter=";")
    path = tmp_path / "kz.csv"
    table = pa.table({"Аты": ["Әлия", "Қанат", "Өмір"]})
    _write(path, fmt, table)
    assert read_table(path, fmt).equals(table)


# ------------------------------------------------------------------------------------------ read errors


def _raises(
    path: Path, fmt: FileFormat, *, line: int | None = None, field: str | None = None, **kw: object
) -> FormatError:
    with pytest.raises(FormatError) as info:
        read_table(path, fmt, **kw)  # type: ignore[arg-type]
    err = info.value
    assert err.path == path and str(path) in str(err)
    assert err.line == line, str(err)
    if line is not None:
        assert f"line {line}" in str(err)
    if field is not None:
        assert err.field == field and repr(field) in str(err)
    return err


def test_csv_wrong_encoding_names_line(tmp_path: Path) -> None:
    path = tmp_path / "enc.csv"
    path.write_bytes("ИИН;Имя\n1;Иван\n2;Ли\n".encode("cp1251"))
    _raises(path, FileFormat("csv", delimiter=";"), line=1)  # the Cyrillic header is not UTF-8
    path.write_bytes(b"a;b\n1;x\n" + '2;"две\nстроки"\n3;Иван\n'.encode("cp1251"))
    err = _raises(path, FileFormat("csv", delimiter=";"), line=3)
    assert "encoding" in err.reason
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text("a;b\n1;x\n2;Иван\n", encoding="utf-8")  # "И" is D0 98 and 0x98 is unused in cp1251
    _raises(utf8, CSV_CP1251, line=3)


def test_csv_wrong_delimiter_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "delim.csv"
    path.write_bytes("ИИН;Фамилия;Дата_рождения\n061211600012;Иванов;2006-12-11\n".encode("cp1251"))
    wrong = FileFormat("csv", encoding="cp1251", delimiter=",")
    err = _raises(path, wrong, line=1, expected_columns=["ИИН", "Фамилия", "Дата_рождения"])
    assert "ИИН" in err.reason and "Дата_рождения" in err.reason and "';'" in err.reason
    right = FileFormat("csv", encoding="cp1251", delimiter=";")
    assert read_table(path, right, expected_columns=["ИИН", "Фамилия"]).num_rows == 1


def test_csv_wrong_field_count_names_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "count.csv"
    path.write_text('a;b;c\n1;2;3\n"x\ny";5;6\n\n7;8\n9;10;11\n', encoding="utf-8")
    err = _raises(path, FileFormat("csv", delimiter=";"), line=6)
    assert "expected 3 fields, found 2" in err.reason
    path.write_text("a;b\n1;2\n3;4;5\n", encoding="utf-8")
    _raises(path, FileFormat("csv", delimiter=";"), line=3)
    headerless = FileFormat("csv", delimiter=";", header=False)
    _raises(path, headerless, line=3)


def test_csv_unterminated_quote(tmp_path: Path) -> None:
    """Arrow would read the open field to the end of the file, swallowing the later rows."""
    path = tmp_path / "open.csv"
    path.write_text('a;b\n1;"ok ""quoted"""\n3;"never closed\n4;5\n6;7\n', encoding="utf-8")
    err = _raises(path, FileFormat("csv", delimiter=";"), line=3)
    assert "never closed" in err.reason


def test_csv_error_in_later_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_READ_BLOCK_BYTES", 4096)
    path = tmp_path / "big.csv"
    lines = ["a;b"] + [f"{i:012d};Иван" for i in range(2000)]
    lines[1500] = "bad line"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batches = iter_batches(path, FileFormat("csv", delimiter=";"), batch_rows=100)
    next(batches)
    with pytest.raises(FormatError) as info:
        list(batches)
    assert info.value.line == 1501


def test_csv_empty_file_and_duplicate_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    err = _raises(path, CSV_UTF8)
    assert "empty" in err.reason
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    _raises(path, CSV_UTF8, line=1, field="a")
    headerless = FileFormat("csv", header=False)
    assert read_table(path, headerless).column_names == ["f0", "f1", "f2"]
    path.write_bytes(b"")
    assert read_table(path, headerless, expected_columns=["x"]).to_pydict() == {"x": []}


def test_fixed_errors(tmp_path: Path) -> None:
    fmt = FileFormat("fixed", encoding="cp866", widths=(("a", 3), ("b", 2)), line_ending="\r\n")
    path = tmp_path / "f.txt"
    path.write_bytes(b"abcde\r\nabcde\r\nabcd\r\nabcde\r\n")
    err = _raises(path, fmt, line=3)
    assert "4 characters, expected 5" in err.reason
    path.write_bytes(b"abcde\r\nabcde\r\n")
    _raises(path, FileFormat("fixed", encoding="cp866", widths=(("a", 3), ("b", 2))), line=1)
    utf8 = FileFormat("fixed", widths=(("a", 3), ("b", 2)))
    path.write_bytes(b"abcde\nab\xffde\n")
    _raises(path, utf8, line=2)
    path.write_bytes(b"abcde\nab\ncde\n")  # a stray line break splits a record
    _raises(path, utf8, line=2)
    _raises(path, utf8, expected_columns=["a", "z"])


def test_fixed_error_in_later_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_READ_BLOCK_BYTES", 1000)
    path = tmp_path / "f.txt"
    lines = [f"{i:05d}" for i in range(3000)]
    lines[2345] = "123456"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp866"))
    fmt = FileFormat("fixed", encoding="cp866", widths=(("a", 3), ("b", 2)), line_ending="\r\n")
    _raises(path, fmt, line=2346)


def test_fixed_writer_errors(tmp_path: Path) -> None:
    fmt = FileFormat("fixed", encoding="cp866", widths=(("a", 3), ("b", 2)))
    path = tmp_path / "f.txt"
    with pytest.raises(FormatError) as info:
        _write(path, fmt, pa.table({"a": ["abc", "abc"], "b": ["ab", "abc"]}))
    assert (info.value.row, info.value.field) == (2, "b")
    assert "row 2" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(FormatError, match="line break") as info:
        _write(path, fmt, pa.table({"a": ["a\nb"], "b": ["x"]}))
    assert (info.value.row, info.value.field) == (1, "a")
    with pytest.raises(FormatError, match="cp866") as info:
        _write(path, fmt, pa.table({"a": ["abc", "қ"], "b": ["ab", "c"]}))
    assert (info.value.row, info.value.field) == (2, "a")
    assert not path.exists()


def test_jsonl_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    err = _raises(path, JSONL, line=3)
    assert "malformed JSON" in err.reason
    path.write_text('{"a": 1}\n\n[1, 2]\n', encoding="utf-8")
    _raises(path, JSONL, line=3)
    path.write_text('{"a": 1}\n{"a": "x"}\n', encoding="utf-8")
    _raises(path, JSONL, line=2, field="a")
    path.write_text('{"a": NaN}\n', encoding="utf-8")
    _raises(path, JSONL, line=1)
    path.write_bytes(b'{"a": "x"}\n{"a": "\xff"}\n')
    _raises(path, JSONL, line=2)
    path.write_text('{"a": 1}\n', encoding="utf-8")
    _raises(path, JSONL, expected_columns=["a", "b"])
    monkeypatch.setattr(formats, "_READ_BLOCK_BYTES", 512)
    lines = [f'{{"a": "{i}"}}' for i in range(1000)]
    lines[777] = '{"a": "x"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _raises(path, JSONL, line=778)


def test_parquet_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    _write(path, PARQUET, _people(1000))
    data = path.read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    err = _raises(truncated, PARQUET)
    assert "Parquet" in err.reason
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(data[:4] + bytes(200) + data[204:])
    _raises(corrupt, PARQUET)
    with pytest.raises(FormatError):
        list(iter_batches(corrupt, PARQUET))
    _raises(path, PARQUET, expected_columns=["ИИН", "Отчество"])
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    _raises(empty, PARQUET)


def test_missing_file_is_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "nope.csv", CSV_UTF8)


def test_format_error_attributes_and_pickle(tmp_path: Path) -> None:
    err = FormatError(tmp_path / "x.csv", "bad things", line=3, field="ИИН")
    assert str(err) == f"{tmp_path / 'x.csv'}, line 3, field 'ИИН': bad things"
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.path, clone.line, clone.field, clone.reason, str(clone)) == (
        err.path,
        3,
        "ИИН",
        "bad things",
        str(err),
    )


def test_file_format_validation() -> None:
    assert [f.extension for f in (CSV_UTF8, JSONL, PARQUET, FIXED_CP866)] == [
        "csv",
        "jsonl",
        "parquet",
        "txt",
    ]
    for bad in (
        {"kind": "xml"},
        {"kind": "csv", "delimiter": '"'},
        {"kind": "csv", "delimiter": ";;"},
        {"kind": "csv", "encoding": "utf-16"},
        {"kind": "csv", "encoding": "no-such-codec"},
        {"kind": "csv", "line_ending": "\r"},
        {"kind": "fixed"},
        {"kind": "fixed", "widths": (("a", 0),)},
        {"kind": "fixed", "widths": (("a", 1), ("a", 2))},
    ):
        with pytest.raises(ValueError):
            FileFormat(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ properties

ALPHABET = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВЖЗЯәғқңөұүһіӘҒҚҢӨҰҮҺІabcXYZ019 ;\"\n\r,|\t\\'"
_text = st.text(alphabet=ALPHABET, max_size=8)


@st.composite
def _text_tables(draw: st.DrawFn) -> pa.Table:
    n_cols = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.text(alphabet=ALPHABET, min_size=1, max_size=6), min_size=n_cols, max_size=n_cols, unique=True
        )
    )
    n_rows = draw(st.integers(0, 12))
    rows = draw(
        st.lists(
            st.lists(st.none() | _text, min_size=n_cols, max_size=n_cols), min_size=n_rows, max_size=n_rows
        )
    )
    return pa.table({name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(names)})


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_text_tables(), delimiter=st.sampled_from([",", ";", "|"]), crlf=st.booleans())
def test_property_csv_round_trip(scratch: Path, table: pa.Table, delimiter: str, crlf: bool) -> None:
    """Any text survives UTF-8 CSV, except that the empty string reads back as null (documented)."""
    fmt = FileFormat("csv", delimiter=delimiter, line_ending="\r\n" if crlf else "\n")
    path = scratch / "prop.csv"
    _write(path, fmt, table)
    back = read_table(path, fmt)
    assert back.column_names == table.column_names
    assert back.to_pydict() == _text_expected(table)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_text_tables())
def test_property_jsonl_round_trip(scratch: Path, table: pa.Table) -> None:
    """Any text survives JSON lines exactly, empty strings and nulls included."""
    path = scratch / "prop.jsonl"
    _write(path, JSONL, table)
    back = read_table(path, JSONL)
    if table.num_rows == 0:
        assert back.num_rows == 0
        return
    assert back.column_names == table.column_names
    assert back.to_pydict() == table.to_pydict()


_GARBAGE_FORMATS = [
    CSV_UTF8,
    CSV_CP1251,
    CSV_CP866_HEADERLESS,
    FileFormat("csv", encoding="cp1251", delimiter=";", header=False),
    JSONL,
    PARQUET,
    FileFormat("fixed", encoding="cp866", widths=(("a", 2), ("b", 3)), line_ending="\r\n"),
    FileFormat("fixed", widths=(("a", 1),)),
    FileFormat("fixed", encoding="cp1251", widths=(("a", 1),)),
]
_BYTES = st.binary(max_size=200) | st.lists(
    st.sampled_from(
        [
            b"a",
            b";",
            b",",
            b'"',
            b"\n",
            b"\r\n",
            b"{",
            b"}",
            b":",
            b"1",
            b"\xd0\x98",
            b"\x98",
            b"\xff",
            b'"k"',
            b"null",
            b"PAR1",
            b" ",
            b"\x00",
        ]
    ),
    max_size=60,
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_BYTES, fmt=st.sampled_from(_GARBAGE_FORMATS))
def test_property_garbage_reads_or_raises_format_error(scratch: Path, data: bytes, fmt: FileFormat) -> None:
    path = scratch / "garbage"
    path.write_bytes(data)
    try:
        table = read_table(path, fmt)
    except FormatError as err:
        assert err.path == path
    else:
        assert isinstance(table, pa.Table)
    try:
        for batch in iter_batches(path, fmt, batch_rows=3):
            assert batch.num_rows <= 3
    except FormatError:
        pass


@pytest.fixture(scope="module")
def parquet_bytes(scratch: Path) -> bytes:
    path = scratch / "valid.parquet"
    _write(path, PARQUET, _people(300))
    return path.read_bytes()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
)
def test_property_damaged_parquet(
    scratch: Path, parquet_bytes: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(parquet_bytes[: max(0, len(parquet_bytes) - cut % (len(parquet_bytes) + 1))])
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    path = scratch / "damaged.parquet"
    path.write_bytes(bytes(data))
    with contextlib.suppress(FormatError):
        read_table(path, PARQUET)
