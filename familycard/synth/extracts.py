"""From the simulated world to agency extracts: deliveries on each feed's cadence, with faults.

A feed is declared once (``feeds.py``): its agency, file format, cadence and delivery mode, and a
``build`` function that returns :class:`Rows` for a period. This module turns those into files:

* ``snapshot`` feeds deliver their whole current state every time;
* ``delta`` feeds deliver everything first, then only rows inserted (I), updated (U) or deleted (D)
  since the last *delivered* state, in an operation column;
* ``events`` feeds deliver what happened since the last delivered period (history first).

Change detection works on numeric state columns, so text is rendered only for rows that are written.
Rendered columns are Arrow arrays (taken from per-chunk tables of every person's names, dates and IINs),
and faults touch only the few rows they change. Faults are decided by a keyed hash of (seed, feed,
record, fault), so a record keeps the same typo in every delivery, and a run is byte-for-byte
reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from familycard.identity import iin as iinlib
from familycard.sources.formats import FileFormat
from familycard.synth import names
from familycard.synth.config import FaultRates

Mode = Literal["snapshot", "delta", "events"]
DateStyle = Literal["iso", "dmy", "dmy_slash", "ymd", "dmy_short", "dmy_compact"]
Script = Literal["kk", "ru", "ru_upper", "passport", "kz2021"]

_STRFTIME: dict[str, str] = {
    "iso": "%Y-%m-%d",
    "dmy": "%d.%m.%Y",
    "dmy_slash": "%d/%m/%Y",
    "ymd": "%Y%m%d",
    "dmy_short": "%d.%m.%y",
    "dmy_compact": "%d%m%Y",
}
_STYLES: tuple[DateStyle, ...] = ("iso", "dmy", "dmy_slash", "ymd", "dmy_short", "dmy_compact")
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-spread hash of uint64 values."""
    with np.errstate(over="ignore"):
        z = np.array(x, dtype=np.uint64)  # a copy, then updated in place: no temporaries per step
        z += _GOLD
        z ^= z >> _S30
        z *= _M1
        z ^= z >> _S27
        z *= _M2
        z ^= z >> _S31
        return z


def keyed_uniform(seed: int, salt: int, keys: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per key, stable for the same (seed, salt, key)."""
    with np.errstate(over="ignore"):
        s = mix64(np.array([seed * 1_000_003 + salt], dtype=np.uint64))[0]
        h = mix64(keys.astype(np.uint64) ^ s)
    h >>= _S11
    u = h.astype(np.float64)
    u *= 1.0 / float(1 << 53)
    return u


def record_ids(seed: int, feed_salt: int, keys: np.ndarray) -> np.ndarray:
    """The agency's own record numbers: scrambled per feed so they never reveal a person across feeds."""
    with np.errstate(over="ignore"):
        s = mix64(np.array([seed * 7_919 + feed_salt * 104_729], dtype=np.uint64))[0]
        h = mix64(keys.astype(np.uint64) ^ s) >> np.uint64(14)
    return h.astype(np.int64)


_DAY_MIN, _DAY_MAX = -40_000, 60_000
"""Dates outside (_DAY_MIN, _DAY_MAX) days since 1970-01-01 are sentinels and render empty."""
# Typed scalars: Arrow compute would infer the type of a plain Python value, slowly, on every call.
_NULL_TEXT = pa.scalar(None, pa.string())
_EMPTY = pa.scalar("", pa.string())
_FALSE = pa.scalar(False, pa.bool_())
_ZERO = pa.scalar(0, pa.int32())


@cache
def _date_texts(style: DateStyle) -> pa.Array:
    """Every renderable day in ``style``, indexed by ``day - _DAY_MIN`` (rendered once per process)."""
    days = pa.array(np.arange(_DAY_MIN, _DAY_MAX, dtype=np.int32)).cast(pa.date32()).cast(pa.timestamp("s"))
    return pc.strftime(days, format=_STRFTIME[style])


def format_dates(days: np.ndarray, style: DateStyle) -> pa.Array:
    """Dates (days since 1970-01-01; a far-off sentinel → null) as text in an agency's style."""
    d = np.asarray(days, dtype=np.int64)
    valid = (d > _DAY_MIN) & (d < _DAY_MAX)
    idx = pa.array(np.where(valid, d - _DAY_MIN, 0), mask=~valid)
    return _date_texts(style).take(idx)


def _date_fields(text: str, style: DateStyle) -> tuple[str, str, str]:
    """(year, month, day) digits of a date written in ``style`` (fixed positions: no parsing needed)."""
    if style == "iso":
        return text[0:4], text[5:7], text[8:10]
    if style in ("dmy", "dmy_slash"):
        return text[6:10], text[3:5], text[0:2]
    if style == "ymd":
        return text[0:4], text[4:6], text[6:8]
    if style == "dmy_compact":
        return text[4:8], text[2:4], text[0:2]
    yy = text[6:8]  # dmy_short: two-digit years pivot as strptime's %y does
    return ("20" if int(yy) < 69 else "19") + yy, text[3:5], text[0:2]


def reformat_date(text: str, source: DateStyle, target: DateStyle) -> str:
    """A date written in ``source`` style rewritten in ``target`` style ("" stays "")."""
    if not text:
        return text
    y, m, d = _date_fields(text, source)
    if target == "iso":
        return f"{y}-{m}-{d}"
    if target == "dmy":
        return f"{d}.{m}.{y}"
    if target == "dmy_slash":
        return f"{d}/{m}/{y}"
    if target == "ymd":
        return f"{y}{m}{d}"
    if target == "dmy_short":
        return f"{d}.{m}.{y[2:]}"
    return f"{d}{m}{y}"


_SCRIPT_FUNCS: dict[str, Callable[[str], str]] = {
    "kk": lambda s: s,
    "ru": names.kk_to_ru,
    "ru_upper": lambda s: names.kk_to_ru(s).upper(),
    "passport": lambda s: names.to_latin(s, "passport"),
    "kz2021": lambda s: names.to_latin(s, "kz2021"),
}


def in_script(values: np.ndarray | pa.Array, script: Script) -> pa.Array:
    """Names written the way an agency writes them (computed once per distinct name)."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    if script == "kk" or not len(arr):
        return arr
    enc = arr.dictionary_encode()
    f = _SCRIPT_FUNCS[script]
    spelt = pa.array([f(s) for s in enc.dictionary.to_pylist()], pa.string())
    return spelt.take(enc.indices)


Column: TypeAlias = pa.Array | np.ndarray
"""A rendered column: Arrow (text, typed values) or numpy (numbers, or objects with None for null)."""


def text(values: Column) -> pa.Array:
    """A column as an Arrow string array in which an empty string is null (text files cannot tell
    them apart, and Parquet and JSON lines should not either)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        v: np.ndarray = np.asarray(values)
        values = pa.array(v if v.dtype.kind in "OUS" else v.astype(str), type=pa.string())
    elif not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    empty = pc.equal(values, _EMPTY)
    if pc.any(empty).as_py():
        values = pc.if_else(empty, _NULL_TEXT, values)
    return values


def present(values: Column) -> np.ndarray:
    """Whether each value of a text column is there (neither null nor empty)."""
    if isinstance(values, np.ndarray):
        return np.asarray((values != "") & (values != None), dtype=bool)  # noqa: E711
    lengths = pc.binary_length(values) if pa.types.is_string(values.type) else pc.cast(values, pa.int8())
    return np.asarray(pc.fill_null(pc.greater(lengths, _ZERO), _FALSE).to_numpy(zero_copy_only=False))


def replace_rows(values: pa.Array, mask: np.ndarray, new: Sequence[str | None]) -> pa.Array:
    """``values`` with the rows where ``mask`` is set replaced by ``new`` (in row order); an empty new
    value (a one-letter name that lost its letter) becomes null, as in :func:`text`."""
    if not new:
        return values
    return pc.replace_with_mask(values, pa.array(mask), pa.array([v or None for v in new], values.type))


def fault_columns(feed: Feed) -> frozenset[str]:
    """The text columns :func:`apply_faults` normalises (with :func:`text`) and may change."""
    dates = feed.date_columns if feed.fmt.kind != "parquet" else ()
    return frozenset((*feed.iin_columns, *feed.name_columns, *dates))


@dataclass
class Rows:
    """What a feed says in one period, before it is written."""

    key: np.ndarray
    """int64 record key, unique within the feed and stable across periods."""
    state: dict[str, np.ndarray]
    """numeric columns compared between deliveries to find changes"""
    persons: dict[str, np.ndarray]
    """role → local person index (-1 none) of the people each row is about (the truth)"""
    render: Callable[[np.ndarray], dict[str, Column]]
    """output columns for the given row positions"""

    def __len__(self) -> int:
        return len(self.key)

    def row_hash(self) -> np.ndarray:
        h = np.zeros(len(self.key), np.uint64)
        with np.errstate(over="ignore", invalid="ignore"):
            for i, col in enumerate(self.state.values()):
                v = np.asarray(col)
                if v.dtype.kind == "f":
                    v = np.round(v.astype(np.float64), 2).view(np.int64)
                h = mix64(h ^ (v.astype(np.int64).astype(np.uint64) + np.uint64(i * 0x1234567)))
        return h


@dataclass(frozen=True)
class Feed:
    """One agency extract: who sends it, in which shape, how often, and what it says."""

    name: str
    agency: str
    title: str
    fmt: FileFormat
    cadence: int
    mode: Mode
    columns: tuple[str, ...]
    build: Callable[..., Rows]
    id_column: str
    op_column: str | None = None
    iin_columns: tuple[str, ...] = ()
    name_columns: tuple[str, ...] = ()
    name_script: Script = "kk"
    date_columns: tuple[str, ...] = ()
    date_style: DateStyle = "iso"
    types: dict[str, pa.DataType] = field(default_factory=dict)
    iin_authority: bool = False  # the civil registry: IINs there are the reference, never faulty
    salt: int = 0

    def schema(self) -> pa.Schema:
        return pa.schema([(c, self.types.get(c, pa.string())) for c in self.columns])

    def due(self, t: int) -> bool:
        return t == 0 or t % self.cadence == 0


# ---- faults -------------------------------------------------------------------------------------

_FAULT_SALTS = {
    "iin_missing": 1,
    "iin_mistyped": 2,
    "name_typo": 3,
    "name_variant": 4,
    "date": 5,
    "dup": 6,
    "pick": 7,
    "how": 8,
}


def mistype_iin(text: str, u: float) -> str:
    """Change one digit, or swap two neighbours, so that the check digit no longer matches."""
    digits = list(text)
    k = int(u * 1e6)
    for attempt in range(40):
        d = digits.copy()
        pos = (k + attempt * 7) % 11
        if (k + attempt) % 3 == 0 and d[pos] != d[pos + 1]:
            d[pos], d[pos + 1] = d[pos + 1], d[pos]
        else:
            d[pos] = str((int(d[pos]) + 1 + (k + attempt) % 9) % 10)
        cand = "".join(d)
        if iinlib.problems(cand):
            return cand
    return text[:11] + str((int(text[11]) + 1) % 10)


def _u(feed: Feed, seed: int, keys: np.ndarray, name: str, extra: int = 0) -> np.ndarray:
    return keyed_uniform(seed, feed.salt * 100 + _FAULT_SALTS[name] * 10 + extra, keys)


def _masks(
    feed: Feed, keys: np.ndarray, rates: FaultRates, seed: int, has_iin: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """Which rows get which fault: decided by keyed hashes, so the same record always gets the same."""
    out: dict[str, np.ndarray] = {}
    if feed.iin_columns and not feed.iin_authority:
        for j, present in enumerate(has_iin):
            miss = present & (_u(feed, seed, keys, "iin_missing", j) < rates.iin_missing)
            out[f"iin_missing_{j}"] = miss
            out[f"iin_mistyped_{j}"] = (
                present & ~miss & (_u(feed, seed, keys, "iin_mistyped", j) < rates.iin_mistyped)
            )
    if feed.name_columns:
        out["name_which"] = (_u(feed, seed, keys, "pick") * len(feed.name_columns)).astype(int)
        out["name_typo"] = _u(feed, seed, keys, "name_typo") < rates.name_typo
        out["name_variant"] = ~out["name_typo"] & (_u(feed, seed, keys, "name_variant") < rates.name_variant)
    if feed.date_columns and feed.fmt.kind != "parquet":
        out["date_format"] = _u(feed, seed, keys, "date") < rates.date_format
    return out


def apply_faults(
    feed: Feed, cols: dict[str, Column], keys: np.ndarray, rates: FaultRates, seed: int
) -> tuple[dict[str, Column], dict[str, np.ndarray]]:
    """Inject faults into rendered rows; returns the columns and, per row, the faults really applied
    (a fault drawn for an empty field changes nothing and is not reported). Only the faulty rows are
    visited in Python."""
    n = len(keys)
    none = np.zeros(n, bool)
    for c in fault_columns(feed):
        cols[c] = text(cols[c])
    has_iin = [present(cols[c]) for c in feed.iin_columns]
    m = _masks(feed, keys, rates, seed, has_iin)
    applied = {
        f: none.copy() for f in ("iin_missing", "iin_mistyped", "name_typo", "name_variant", "date_format")
    }
    for j, col in enumerate(feed.iin_columns if not feed.iin_authority else ()):
        vals = cols[col]
        assert isinstance(vals, pa.Array)
        mistyped, missing = m[f"iin_mistyped_{j}"], m[f"iin_missing_{j}"]
        rows = np.flatnonzero(mistyped)
        if len(rows):
            u = _u(feed, seed, keys[rows], "how", j).tolist()
            old = vals.take(pa.array(rows)).to_pylist()
            vals = replace_rows(vals, mistyped, [mistype_iin(v, x) for v, x in zip(old, u, strict=True)])
        if missing.any():
            vals = pc.if_else(pa.array(missing), _NULL_TEXT, vals)
        cols[col] = vals
        applied["iin_missing"] |= missing
        applied["iin_mistyped"] |= mistyped
    if feed.name_columns:
        k = len(feed.name_columns)
        here_ok = np.stack([present(cols[c]) for c in feed.name_columns])
        # the drawn name field, or the next one that has a value
        target: np.ndarray = np.full(n, -1)
        rows_n = np.arange(n)
        for step in range(k - 1, -1, -1):
            j_step = (m["name_which"] + step) % k
            target = np.where(here_ok[j_step, rows_n], j_step, target)
        typo_m, variant_m = m["name_typo"], m["name_variant"]
        for j, col in enumerate(feed.name_columns):
            sel = (typo_m | variant_m) & (target == j)
            rows = np.flatnonzero(sel)
            if not len(rows):
                continue
            vals = cols[col]
            assert isinstance(vals, pa.Array)
            how = _u(feed, seed, keys[rows], "how", 50).tolist()
            old = vals.take(pa.array(rows)).to_pylist()
            is_typo = typo_m[rows].tolist()
            new = [
                names.typo(v, h) if t else _variant(v, h) for v, h, t in zip(old, how, is_typo, strict=True)
            ]
            cols[col] = replace_rows(vals, sel, new)
        applied["name_typo"] = typo_m & (target >= 0)
        applied["name_variant"] = variant_m & (target >= 0)
    if "date_format" in m and m["date_format"].any():
        styles = _other_styles(feed.date_style, feed.fmt.kind == "fixed")
        drawn = np.flatnonzero(m["date_format"])
        pick = (_u(feed, seed, keys[drawn], "how", 70) * len(styles)).astype(int)
        for col in feed.date_columns:
            vals = cols[col]
            assert isinstance(vals, pa.Array)
            nonempty = present(vals.take(pa.array(drawn)))
            if not nonempty.any():
                continue
            rows = drawn[nonempty]
            applied["date_format"][rows] = True
            old = vals.take(pa.array(rows)).to_pylist()
            new = [
                reformat_date(v, feed.date_style, styles[p])
                for v, p in zip(old, pick[nonempty].tolist(), strict=True)
            ]
            sel = np.zeros(n, bool)
            sel[rows] = True
            cols[col] = replace_rows(vals, sel, new)
    return cols, applied


@cache
def _other_styles(style: DateStyle, same_width: bool) -> tuple[DateStyle, ...]:
    """Date styles a date-format fault may use instead of ``style`` (a fixed-width field keeps its
    width)."""
    styles = [s for s in _STYLES if s != style]
    if same_width:
        width = len(reformat_date("1970-01-01", "iso", style))
        styles = [s for s in styles if len(reformat_date("1970-01-01", "iso", s)) == width]
    return tuple(styles)


@lru_cache(maxsize=200_000)
def _options(value: str) -> tuple[str, ...]:
    return tuple(names.variants(value))


def _variant(value: str, u: float) -> str:
    if " " in value:  # a full name: one of its words is spelt another way
        words = value.split(" ")
        k = int(u * 7919) % len(words)
        words[k] = _variant(words[k], u)
        return " ".join(words)
    options = _options(value)
    return options[int(u * len(options)) % len(options)] if options else value


def duplicate_mask(feed: Feed, keys: np.ndarray, rates: FaultRates, seed: int, t: int) -> np.ndarray:
    """Rows delivered twice in this delivery."""
    return keyed_uniform(seed, feed.salt * 100 + 60 + t, keys) < rates.duplicate


def delivery_fate(feed: Feed, t: int, rates: FaultRates, seed: int) -> tuple[bool, int]:
    """(missing, days late) of the delivery of ``feed`` for month ``t``; the first one always comes."""
    key = np.array([t], np.int64)
    missing = t > 0 and keyed_uniform(seed, feed.salt * 100 + 90, key)[0] < rates.missing_delivery
    late_u = keyed_uniform(seed, feed.salt * 100 + 91, key)[0]
    late = late_u < rates.late_delivery
    days = int(5 + keyed_uniform(seed, feed.salt * 100 + 92, key)[0] * 40) if late else 0
    return bool(missing), days
