"""Row-level validation of one batch of a feed file against its catalogue definition.

Runs on Arrow arrays before any engine sees the data, so DuckDB and Spark receive the same typed rows.
Each problem becomes an *issue* naming the line, field, value, rule and reason, with a severity:

- ``reject``: the row is not loaded; it waits in quarantine with the raw record as delivered.
  A bad value in a required field (or the record's key) rejects the row.
- ``flag``: the row is loaded, the bad value is set aside (null in the warehouse, kept in the issue and,
  for IINs, in ``<field>_raw`` so that linkage can still use it); the issue waits in quarantine until a
  later delivery brings a good value. A bad value in an optional field flags the row.
- ``warn``: the row is loaded as delivered; the issue only counts in quality figures (e.g. a date in
  another format than the feed's own, which was still read unambiguously).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from familycard.geo.territory import Territory, build_territory
from familycard.identity import iin as iinlib
from familycard.sources.catalogue import Column, FeedSpec

ISSUE_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("reason", pa.string()),
        ("key", pa.string()),  # the record's key as delivered (key fields joined by "|"), null if missing
        ("record", pa.string()),  # the raw row as JSON (file's column names), for rejected rows
    ]
)

_MALE = {"М", "M", "1", "Е", "ER", "male", "м", "m"}
_FEMALE = {"Ж", "F", "2", "Ә", "A", "female", "ж", "f"}

# Date styles as fixed-width templates: Y, M and D stand for ASCII digits of the year, month and day,
# any other character for itself; two-digit years are resolved by a pivot.
_DATE_TEMPLATES: dict[str, str] = {
    "iso": "YYYY-MM-DD",
    "dmy": "DD.MM.YYYY",
    "dmy_slash": "DD/MM/YYYY",
    "ymd": "YYYYMMDD",
    "dmy_short": "DD.MM.YY",
    "dmy_compact": "DDMMYYYY",
}
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class _Issues:
    """Issues of one batch, collected column-wise."""

    rows: list[npt.NDArray[np.int64]] = field(default_factory=list)
    cols: list[tuple[str, pa.Array, str, str, str]] = field(default_factory=list)

    def add(
        self,
        rows: npt.NDArray[np.int64],
        field_name: str,
        values: pa.Array,
        rule: str,
        severity: str,
        reason: str,
    ) -> None:
        if len(rows):
            self.rows.append(rows)
            self.cols.append((field_name, values.take(pa.array(rows)), rule, severity, reason))


@dataclass
class Validated:
    """One validated batch: typed rows to load and the issues found."""

    rows: pa.Table  # canonical fields (typed), <iin>_raw, _line, _flagged
    issues: pa.Table  # ISSUE_SCHEMA
    read: int
    rejected: int
    flagged: int


class BatchValidator:
    """Validates batches of one feed delivery (``period_end``: last day of the period it covers)."""

    def __init__(self, spec: FeedSpec, period_end: dt.date, territory: Territory | None = None) -> None:
        self.spec = spec
        self.period_end = period_end
        self._territory = territory
        self._kato_codes: pa.Array | None = None
        self.schema = output_schema(spec)

    @property
    def territory(self) -> Territory:
        if self._territory is None:
            self._territory = build_territory()
        return self._territory

    @property
    def kato_codes(self) -> pa.Array:
        """Every unit's code in the classifier, as an Arrow set to look values up in."""
        if self._kato_codes is None:
            self._kato_codes = pa.array(self.territory.unit_kato.tolist(), pa.string())
        return self._kato_codes

    def __call__(self, raw: pa.Table, first_line: int) -> Validated:
        """Validate ``raw`` (columns named as in the file); its first row is on line ``first_line``."""
        n = raw.num_rows
        lines = np.arange(first_line, first_line + n, dtype=np.int64)
        issues = _Issues()
        reject = np.zeros(n, dtype=bool)
        flag = np.zeros(n, dtype=bool)
        out: dict[str, pa.Array] = {}
        texts: dict[str, pa.Array] = {}
        iins: dict[str, _IinRead] = {}  # each IIN field's digits and birth days, for the checks below
        for col in self.spec.columns:
            text = (
                _as_text(raw.column(col.name)) if col.name in raw.column_names else pa.nulls(n, pa.string())
            )
            texts[col.field] = text
            value, bad, reasons, rule = self._parse(
                col, raw.column(col.name) if col.name in raw.column_names else None, text, iins
            )
            missing = np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)
            if col.required or col.field in self.spec.key:
                idx = np.flatnonzero(missing)
                issues.add(idx, col.field, text, "required", "reject", "required value is missing")
                reject[idx] = True
            severe = "reject" if (col.required or col.field in self.spec.key) else "flag"
            for mask, rule_name, reason in reasons:
                idx = np.flatnonzero(mask & ~missing)
                issues.add(idx, col.field, text, rule_name, severe, reason)
                (reject if severe == "reject" else flag)[idx] = True
            if bad is not None:
                value = pc.if_else(pa.array(bad), pa.nulls(n, value.type), value)
            if col.type == "iin":
                out[col.field + "_raw"] = pc.if_else(
                    pa.array(bad if bad is not None else np.zeros(n, bool)), text, pa.nulls(n, pa.string())
                )
            out[col.field] = value
            for mask, rule_name, reason in rule:
                idx = np.flatnonzero(mask & ~missing)
                issues.add(idx, col.field, text, rule_name, "warn", reason)
        for chk in self.spec.checks:
            mask, reason = self._check(chk.kind, chk.fields, out, iins)
            idx = np.flatnonzero(mask)
            target = chk.fields[0]
            issues.add(idx, target, texts[target], chk.kind, chk.severity, reason)
            if chk.severity == "reject":
                reject[idx] = True
            elif chk.severity == "flag":
                flag[idx] = True
                out[target] = pc.if_else(pa.array(mask), pa.nulls(n, out[target].type), out[target])
                if target + "_raw" in out:
                    out[target + "_raw"] = pc.if_else(pa.array(mask), texts[target], out[target + "_raw"])
        keep = ~reject
        out["_line"] = pa.array(lines)
        out["_flagged"] = pa.array(flag & keep)
        rows = pa.table({f.name: out[f.name] for f in self.schema}, schema=self.schema).filter(pa.array(keep))
        return Validated(
            rows=rows,
            issues=_issue_table(issues, lines, raw, reject, _key_text(self.spec, texts)),
            read=n,
            rejected=int(reject.sum()),
            flagged=int((flag & keep).sum()),
        )

    # ---------------------------------------------------------------------------------- parsing

    def _parse(
        self,
        col: Column,
        raw: pa.ChunkedArray | None,
        text: pa.Array,
        iins: dict[str, _IinRead],
    ) -> tuple[
        pa.Array, npt.NDArray[np.bool_] | None, list[tuple[Any, str, str]], list[tuple[Any, str, str]]
    ]:
        """Typed values, the mask of values set aside, errors and warnings as (mask, rule, reason);
        an IIN or BIN field's digits (and an IIN's birth days) go into ``iins``."""
        n = len(text)
        errors: list[tuple[Any, str, str]] = []
        warnings: list[tuple[Any, str, str]] = []
        bad = np.zeros(n, dtype=bool)

        def fail(mask: npt.NDArray[np.bool_], rule: str, reason: str) -> None:
            mask = mask & ~bad
            if mask.any():
                errors.append((mask.copy(), rule, reason))
                bad[mask] = True

        if col.type in ("string", "period"):
            value = text
        elif col.type in ("iin", "bin"):
            value, why, iins[col.field] = _check_iin(text, business=col.type == "bin")
            for rule, reason, mask in why:
                fail(mask, rule, reason)
        elif col.type == "kato":
            value = text
            fits, matrix = _fixed_width(text, 9)
            ok = fits.copy()
            ok[fits] = _ascii_digits(matrix)[0]
            fail(~ok, "kato", "not a 9-digit KATO code")
            exists = _np(pc.is_in(text, value_set=self.kato_codes))
            fail(~exists, "kato", "KATO code does not exist in the classifier")
        elif col.type == "code":
            value = text
            ok = _np(pc.is_in(text, value_set=pa.array(list(col.codes), pa.string())))
            fail(~ok, "code", f"not one of the codes {', '.join(col.codes)}")
        elif col.type == "date":
            value, used, unparsed = self._dates(col, raw, text)
            fail(unparsed, "date", f"not a date in the formats {', '.join(col.date_styles)}")
            other = (used > 0) & ~unparsed
            if other.any():
                warnings.append(
                    (other, "date_style", f"date not in the feed's own format ({col.date_styles[0]})")
                )
            days = np.asarray(pc.cast(value, pa.int32()).fill_null(0).to_numpy(zero_copy_only=False))
            present = ~_np(pc.is_null(value))
            lo, hi = self._date_bounds(col)
            if lo is not None:
                fail(present & (days < lo), "plausible", f"date before {col.not_before}")
            if hi is not None:
                fail(
                    present & (days > hi), "plausible", f"date after the delivery's period ({col.not_after})"
                )
        elif col.type in ("integer", "decimal"):
            value, unparsed, huge = _numbers(raw, text, integer=col.type == "integer")
            fail(unparsed, "number", "not an integer" if col.type == "integer" else "not a number")
            fail(huge, "range", "too large to be read as a number")
            nums = np.asarray(
                pc.cast(value, pa.float64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
            )
            present = ~_np(pc.is_null(value))
            if col.min is not None:
                fail(present & (nums < col.min), "range", f"below the minimum {col.min:g}")
            if col.max is not None:
                fail(present & (nums > col.max), "range", f"above the maximum {col.max:g}")
        elif col.type == "boolean":
            low = pc.utf8_lower(text)
            says_yes = _np(pc.is_in(low, value_set=pa.array(["1", "true", "yes", "да", "иә", "y", "t"])))
            says_no = _np(pc.is_in(low, value_set=pa.array(["0", "false", "no", "нет", "жоқ", "n", "f"])))
            present = ~_np(pc.is_null(text))
            fail(present & ~says_yes & ~says_no, "boolean", "not a yes/no value")
            value = pc.if_else(
                pa.array(says_yes), True, pc.if_else(pa.array(says_no), False, pa.nulls(n, pa.bool_()))
            )
        else:  # pragma: no cover - the loader only admits the types above
            raise ValueError(col.type)
        return value, (bad if bad.any() else None), errors, warnings

    def _date_bounds(self, col: Column) -> tuple[int | None, int | None]:
        lo = (dt.date.fromisoformat(col.not_before) - _EPOCH).days if col.not_before else None
        hi = None
        if col.not_after:
            if col.not_after.startswith("delivery"):
                extra = col.not_after.removeprefix("delivery")
                slack = int(extra.removeprefix("+").removesuffix("d")) if extra else 0
                hi = (self.period_end - _EPOCH).days + slack
            else:
                hi = (dt.date.fromisoformat(col.not_after) - _EPOCH).days
        return lo, hi

    def _dates(
        self, col: Column, raw: pa.ChunkedArray | None, text: pa.Array
    ) -> tuple[pa.Array, npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
        """Dates as date32, the index of the style each was read in, and the unreadable ones."""
        n = len(text)
        if raw is not None and pa.types.is_temporal(raw.type):
            value = pc.cast(raw.combine_chunks(), pa.date32()) if raw.num_chunks else pa.nulls(n, pa.date32())
            return value, np.zeros(n, np.int8), np.zeros(n, bool)
        days = np.zeros(n, dtype=np.int32)
        used = np.full(n, -1, dtype=np.int8)
        fallback_days = np.zeros(n, dtype=np.int32)
        fallback_used = np.full(n, -1, dtype=np.int8)
        todo = ~_np(pc.is_null(text))
        lo, hi = self._date_bounds(col)
        year = self.period_end.year
        for k, style in enumerate(col.date_styles):
            if not todo.any():
                break
            sub = text.filter(pa.array(todo))
            ok, y, m, d = _read_template(sub, _DATE_TEMPLATES[style])
            if not ok.any():
                continue
            if style == "dmy_short":
                y = _century(y, year, past_only=hi is not None)
            parsed, valid = _civil_days(y, m, d)
            good = ok & valid
            # A style that reads the text as an implausible date is kept only as a last resort: another
            # style may read it plausibly (20011999 is no yyyymmdd date but a ddmmyyyy one).
            first_fallback = np.flatnonzero(todo)[good & (fallback_used[todo] < 0)]
            fallback_days[first_fallback] = parsed[good & (fallback_used[todo] < 0)]
            fallback_used[first_fallback] = k
            if lo is not None:
                good &= parsed >= lo
            if hi is not None:
                good &= parsed <= hi
            where = np.flatnonzero(todo)[good]
            days[where] = parsed[good]
            used[where] = k
            todo[where] = False
        late = todo & (fallback_used >= 0)
        days[late] = fallback_days[late]
        used[late] = fallback_used[late]
        unparsed = todo & ~late
        present = used >= 0
        value = pa.array(days, pa.int32(), mask=~present).cast(pa.date32())
        return value, np.maximum(used, 0).astype(np.int8), unparsed

    def _check(
        self,
        kind: str,
        fields: Sequence[str],
        out: dict[str, pa.Array],
        iins: dict[str, _IinRead],
    ) -> tuple[npt.NDArray[np.bool_], str]:
        """Rows that fail a check across fields; ``iins``: what was read of IIN fields (:meth:`_parse`)."""
        if kind == "iin_birth_date":
            values, dates = out[fields[0]], out[fields[1]]
            read = iins[fields[0]]
            expected = read.birth if read.birth is not None else _iin_birth_days_digits(read.digits)
            got = np.asarray(pc.cast(dates, pa.int32()).fill_null(-(10**6)).to_numpy(zero_copy_only=False))
            both = ~_np(pc.is_null(values)) & ~_np(pc.is_null(dates))
            return both & (expected != got), f"IIN's birth date does not match {fields[1]}"
        if kind == "iin_sex":
            values, sex = out[fields[0]], out[fields[1]]
            iin_male = iins[fields[0]].digits[:, 6] % 2 == 1
            sx = pc.fill_null(sex, "")
            male = _np(pc.is_in(sx, value_set=pa.array(sorted(_MALE))))
            female = _np(pc.is_in(sx, value_set=pa.array(sorted(_FEMALE))))
            both = ~_np(pc.is_null(values)) & (male | female)
            return both & (male != iin_male), f"IIN's sex digit does not match {fields[1]}"
        if kind == "date_order":
            a, b = out[fields[0]], out[fields[1]]
            later = _np(pc.fill_null(pc.greater(a, b), False))
            return later, f"{fields[0]} is after {fields[1]}"
        raise ValueError(kind)  # pragma: no cover


def output_schema(spec: FeedSpec) -> pa.Schema:
    """Schema of the validated rows of a feed: canonical fields, IIN raw text, line, flag."""
    types = {
        "string": pa.string(),
        "period": pa.string(),
        "iin": pa.string(),
        "bin": pa.string(),
        "kato": pa.string(),
        "code": pa.string(),
        "date": pa.date32(),
        "integer": pa.int64(),
        "decimal": pa.float64(),
        "boolean": pa.bool_(),
    }
    fields: list[tuple[str, pa.DataType]] = []
    for c in spec.columns:
        fields.append((c.field, types[c.type]))
        if c.type == "iin":
            fields.append((c.field + "_raw", pa.string()))
    fields += [("_line", pa.int64()), ("_flagged", pa.bool_())]
    return pa.schema(fields)


# -------------------------------------------------------------------------------------------- helpers


def _np(arr: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """A boolean Arrow array as numpy, null → False."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _as_text(col: pa.ChunkedArray) -> pa.Array:
    """Any column as trimmed text, empty → null (what validation and quarantine show)."""
    arr = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(pc.binary_length(arr), 0)
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, pa.nulls(len(arr), pa.string()), arr)


def _century(yy: npt.NDArray[np.int64], year: int, *, past_only: bool) -> npt.NDArray[np.int64]:
    """Four-digit years for two-digit ones: the latest not after ``year`` for dates that cannot be in the
    future (birth, registration), else the nearest to ``year`` (a validity end may be years ahead)."""
    full = (year // 100) * 100 + yy
    if past_only:
        return np.where(full > year, full - 100, full)
    return np.where(full > year + 49, full - 100, np.where(full < year - 50, full + 100, full))


_FIRST_YEAR, _LAST_YEAR = 1800, 2200  # dates outside these years are not read as dates
_YEARS = np.arange(_FIRST_YEAR, _LAST_YEAR + 1)
_LEAP = ((_YEARS % 4 == 0) & (_YEARS % 100 != 0)) | (_YEARS % 400 == 0)
_YEAR_START = np.array(  # days since 1970-01-01 of each year's 1 January
    [(dt.date(int(y), 1, 1) - _EPOCH).days for y in _YEARS], dtype=np.int32
)
_MONTH_LEN = np.array(
    [[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]],
    dtype=np.int32,
).ravel()  # index: leap * 12 + month - 1
_MONTH_START = np.concatenate(
    [np.cumsum(_MONTH_LEN[:12]) - _MONTH_LEN[:12], np.cumsum(_MONTH_LEN[12:]) - _MONTH_LEN[12:]]
).astype(np.int32)


def _civil_days(
    y: npt.NDArray[np.integer], m: npt.NDArray[np.integer], d: npt.NDArray[np.integer]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """Days since 1970-01-01 for year/month/day arrays, and which triples are real calendar dates
    (years 1800 to 2200); by table lookups, with no arithmetic on calendars."""
    valid = (m >= 1) & (m <= 12) & (d >= 1) & (y >= _FIRST_YEAR) & (y <= _LAST_YEAR)
    year = np.where(valid, y - _FIRST_YEAR, 1970 - _FIRST_YEAR)
    month = _LEAP[year] * 12 + np.where(valid, m, 1) - 1
    valid &= d <= _MONTH_LEN[month]
    days = _YEAR_START[year] + _MONTH_START[month] + np.where(valid, d, 1).astype(np.int32) - 1
    return days.astype(np.int32, copy=False), valid


class _IinRead(NamedTuple):
    """The digits of an IIN or BIN field (as :func:`_digits`), and an IIN's birth days
    (:func:`_iin_birth_days_digits`; None for a BIN)."""

    digits: npt.NDArray[np.uint8]
    birth: npt.NDArray[np.int64] | None


def _check_iin(
    text: pa.Array, *, business: bool
) -> tuple[pa.Array, list[tuple[str, str, npt.NDArray[np.bool_]]], _IinRead]:
    """IIN/BIN text → (valid values or null, [(rule, reason, mask)], what was read)."""
    n = len(text)
    present = ~_np(pc.is_null(text))
    shape, digits = _digits(text)
    why: list[tuple[str, str, npt.NDArray[np.bool_]]] = []
    why.append(("iin_format" if not business else "bin_format", "not 12 digits", present & ~shape))
    check = iinlib.check_digits_array(digits[:, :11])
    check_ok = shape & (check >= 0) & (check == digits[:, 11])
    why.append(("check_digit", "check digit does not match", shape & ~check_ok))
    is_bin = (digits[:, 4] >= 4) & (digits[:, 4] <= 6)  # a BIN's fifth digit is its kind
    birth = None
    if business:
        why.append(("bin_kind", "not a business identification number", check_ok & ~is_bin))
        good = check_ok & is_bin
    else:
        century = digits[:, 6]
        birth = _iin_birth_days_digits(digits)
        why.append(
            ("iin_kind", "a business identification number (BIN), not a person's IIN", check_ok & is_bin)
        )
        bad_date = check_ok & ~is_bin & ((century < 1) | (century > 6) | (birth < -(10**6)))
        why.append(("iin_date", "the birth date or century digit in the IIN is impossible", bad_date))
        good = check_ok & ~is_bin & ~bad_date
    if (good | ~present).all():  # (the usual case: every value given is good)
        return text, why, _IinRead(digits, birth)
    value = pc.if_else(pa.array(good), text, pa.nulls(n, pa.string()))
    return value, why, _IinRead(digits, birth)


def _fixed_width(text: pa.Array, width: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Which values of a string array are exactly ``width`` bytes long, and the bytes of those values
    as the rows of a (k, ``width``) matrix."""
    fits = _np(pc.equal(pc.binary_length(text), width))
    if not fits.any():
        return fits, np.zeros((0, width), np.uint8)
    sub = pc.cast(text.filter(pa.array(fits)), pa.string())
    offsets = np.frombuffer(sub.buffers()[1], np.int32)[sub.offset : sub.offset + len(sub) + 1]
    data = np.frombuffer(sub.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    return fits, data.reshape(-1, width)


def _ascii_digits(matrix: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Which rows of a byte matrix are all ASCII digits, and the digits' values (bytes: a byte that is
    no digit has a value above 9)."""
    # Column-major, so that each position's bytes are contiguous for the checks that read positions.
    values = np.asfortranarray(matrix) - np.uint8(ord("0"))  # (wraps: a byte that is no digit is above 9)
    if not values.size:
        return np.ones(len(values), dtype=bool), values
    ok = np.asarray(values.max(axis=1) <= 9, dtype=bool)
    return ok, values


def _read_template(
    text: pa.Array, template: str
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Values that follow a fixed-width date template (:data:`_DATE_TEMPLATES`), and their year, month
    and day (zero where a value does not follow it)."""
    n = len(text)
    y, m, d = (np.zeros(n, np.int64) for _ in range(3))
    fits, matrix = _fixed_width(text, len(template.encode()))
    if not len(matrix):
        return fits, y, m, d
    digit_at = [i for i, ch in enumerate(template) if ch in "YMD"]
    ok, values = _ascii_digits(matrix[:, digit_at])
    for i, ch in enumerate(template):
        if ch not in "YMD":
            ok &= matrix[:, i] == ord(ch)
    parts = {"Y": y, "M": m, "D": d}
    where = np.flatnonzero(fits)[ok]
    for ch, out in parts.items():
        number = np.zeros(len(values), np.int32)
        for j, i in enumerate(digit_at):
            if template[i] == ch:
                number = number * 10 + values[:, j]  # (a column of the column-major digits)
        out[where] = number[ok]
    read = np.zeros(n, bool)
    read[where] = True
    return read, y, m, d


def _digits(text: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Which values are exactly 12 ASCII digits, and the digits of each as a row of an (n, 12) matrix
    (zeros for the others), read from the text's bytes (no arithmetic on 12-digit numbers)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.string())
    fits, matrix = _fixed_width(text, 12)
    ok, values = _ascii_digits(matrix)
    if len(values) == len(text) and ok.all():  # (the usual case: every value is 12 digits)
        return ok, values
    shape = fits.copy()
    shape[fits] = ok
    digits = np.zeros((len(text), 12), dtype=np.uint8, order="F")
    digits[shape] = values[ok]
    return shape, digits


def _iin_birth_days_digits(digits: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Birth day (days since epoch) encoded in IINs (an (n, 12) digit matrix); a large negative number
    when impossible."""
    head = digits[:, :7].astype(np.int32)
    yy = head[:, 0] * 10 + head[:, 1]
    mm = head[:, 2] * 10 + head[:, 3]
    dd = head[:, 4] * 10 + head[:, 5]
    century = head[:, 6]
    base = 1800 + 100 * np.clip((century - 1) // 2, 0, 2)  # 1-2: 1800s, 3-4: 1900s, 5-6: 2000s
    days, valid = _civil_days(base + yy, mm, dd)
    return np.where(valid & (century >= 1) & (century <= 6), days.astype(np.int64), -(10**7))


def _numbers(
    raw: pa.ChunkedArray | None, text: pa.Array, *, integer: bool
) -> tuple[pa.Array, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Numbers from typed columns or text (a decimal comma is read as a point; spaces as thousands),
    the values that are not numbers, and those too large for the field's type (beyond a 64-bit integer,
    or infinite)."""
    target = pa.int64() if integer else pa.float64()
    n = len(text)
    none = np.zeros(n, bool)
    if raw is not None and (
        pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type) or pa.types.is_decimal(raw.type)
    ):
        arr = raw.combine_chunks() if raw.num_chunks else pa.nulls(n, target)
        try:
            if integer and pa.types.is_floating(arr.type):
                whole = _np(pc.equal(pc.floor(arr), arr)) | _np(pc.is_null(arr))
                arr = pc.if_else(pa.array(whole), arr, pa.nulls(n, arr.type))
                return pc.cast(arr, target), ~whole, none
            value = pc.cast(arr, target)
        except pa.ArrowInvalid:  # out of the target's range: read as text below, which says so
            pass
        else:
            if not integer:
                value, infinite = _finite(value)
                return value, none, infinite
            return value, none, none
    cleaned = pc.replace_substring_regex(text, "[\\s\u00a0]", "")
    cleaned = pc.replace_substring(cleaned, ",", ".")
    pattern = r"^[-+]?\d+$" if integer else r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
    ok = _np(pc.match_substring_regex(cleaned, pattern))
    present = ~_np(pc.is_null(text))
    huge = none
    if integer:  # 18 digits always fit in 64 bits; more are read only where they do
        long = ok & _np(pc.greater(pc.utf8_length(pc.utf8_ltrim(cleaned, "+-0")), 18))
        if long.any():
            wide = pc.cast(pc.if_else(pa.array(long), cleaned, pa.nulls(n, pa.string())), pa.float64())
            huge = long & ~_np(pc.less(pc.abs(wide), 2.0**63 - 1024))
            ok &= ~huge
    cleaned = pc.replace_substring_regex(cleaned, r"^\+", "")  # Arrow reads no leading plus sign
    value = pc.cast(pc.if_else(pa.array(ok), cleaned, pa.nulls(n, pa.string())), target)
    if not integer:
        value, huge = _finite(value)
    return value, present & ~ok & ~huge, huge


def _finite(value: pa.Array) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Decimal values with the infinite ones set to null, and which those were."""
    infinite = _np(pc.is_inf(value))
    if infinite.any():
        value = pc.if_else(pa.array(infinite), pa.nulls(len(value), value.type), value)
    return value, infinite


def _key_text(spec: FeedSpec, texts: dict[str, pa.Array]) -> pa.Array:
    """The key as delivered: key fields' text joined by "|" (null when any part is missing)."""
    parts = [texts[k] for k in spec.key]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")


def _issue_table(
    issues: _Issues,
    lines: npt.NDArray[np.int64],
    raw: pa.Table,
    reject: npt.NDArray[np.bool_],
    keys: pa.Array,
) -> pa.Table:
    if not issues.rows:
        return ISSUE_SCHEMA.empty_table()
    rows = np.concatenate(issues.rows)
    records = _records(raw, rows, reject)
    order = pa.array(np.argsort(rows, kind="stable"))  # by line, then in the order the checks ran
    return pa.table(
        {
            "line": pa.array(lines[rows]),
            "field": _repeated(issues, 0),
            "value": pa.concat_arrays([c[1] for c in issues.cols]),
            "rule": _repeated(issues, 2),
            "severity": _repeated(issues, 3),
            "reason": _repeated(issues, 4),
            "key": keys.take(pa.array(rows)),
            "record": records,
        },
        schema=ISSUE_SCHEMA,
    ).take(order)


def _repeated(issues: _Issues, part: int) -> pa.Array:
    """One text column of the issue table: each issue group's constant (field, rule, ...) per row."""
    return pa.array(
        np.concatenate(
            [np.full(len(r), c[part], dtype=object) for r, c in zip(issues.rows, issues.cols, strict=True)]
        ),
        pa.string(),
    )


def _records(raw: pa.Table, rows: npt.NDArray[np.int64], reject: npt.NDArray[np.bool_]) -> pa.Array:
    """The raw row as delivered (JSON with the file's column names) for each issue on a rejected row."""
    wanted = reject[rows]
    out: list[str | None] = [None] * len(rows)
    if wanted.any():
        sub = raw.take(pa.array(rows[wanted]))
        as_text = {name: _as_text(sub.column(name)).to_pylist() for name in sub.column_names}
        texts = [
            json.dumps({k: as_text[k][i] for k in sub.column_names}, ensure_ascii=False)
            for i in range(sub.num_rows)
        ]
        for pos, text in zip(np.flatnonzero(wanted), texts, strict=True):
            out[pos] = text
    return pa.array(out, pa.string())
