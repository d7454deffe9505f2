"""From the simulated world to agency extracts: deliveries on each feed's cadence, with faults.

A feed is declared once (``feeds.py``): its agency, file format, cadence and delivery mode, and a
``build`` function that returns :class:`Rows` for a period. This module turns those into files:

* ``snapshot`` feeds deliver their whole current state every time;
* ``delta`` feeds deliver everything first, then only rows inserted (I), updated (U) or deleted (D)
  since the last *delivered* state, in an operation column;
* ``events`` feeds deliver what happened since the last delivered period (history first).

Change detection works on numeric state columns, so text is rendered only for rows that are written.
Faults are decided by a keyed hash of (seed, feed, record, fault), so a record keeps the same typo in
every delivery, and a run is byte-for-byte reproducible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

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
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-spread hash of uint64 values."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def keyed_uniform(seed: int, salt: int, keys: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per key, stable for the same (seed, salt, key)."""
    with np.errstate(over="ignore"):
        s = mix64(np.array([seed * 1_000_003 + salt], dtype=np.uint64))[0]
        h = mix64(keys.astype(np.uint64) ^ s)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def record_ids(seed: int, feed_salt: int, keys: np.ndarray) -> np.ndarray:
    """The agency's own record numbers: scrambled per feed so they never reveal a person across feeds."""
    with np.errstate(over="ignore"):
        s = mix64(np.array([seed * 7_919 + feed_salt * 104_729], dtype=np.uint64))[0]
        h = mix64(keys.astype(np.uint64) ^ s) >> np.uint64(14)
    return h.astype(np.int64)


def format_dates(days: np.ndarray, style: DateStyle) -> np.ndarray:
    """Dates (days since 1970-01-01; negative sentinel → empty) as text in an agency's style."""
    d = np.asarray(days, dtype=np.int64)
    valid = (d > -40_000) & (d < 60_000)
    arr = pa.array(np.where(valid, d, 0).astype(np.int32)).cast(pa.date32()).cast(pa.timestamp("s"))
    out = np.asarray(pc.strftime(arr, format=_STRFTIME[style]).to_numpy(zero_copy_only=False), dtype=object)
    out[~valid] = ""
    return out


def reformat_date(text: str, source: DateStyle, target: DateStyle) -> str:
    if not text:
        return text
    fmt_in, fmt_out = _STRFTIME[source], _STRFTIME[target]
    return dt.datetime.strptime(text, fmt_in).strftime(fmt_out)


_SCRIPT_FUNCS: dict[str, Callable[[str], str]] = {
    "kk": lambda s: s,
    "ru": names.kk_to_ru,
    "ru_upper": lambda s: names.kk_to_ru(s).upper(),
    "passport": lambda s: names.to_latin(s, "passport"),
    "kz2021": lambda s: names.to_latin(s, "kz2021"),
}


def in_script(values: np.ndarray, script: Script) -> np.ndarray:
    """Names written the way an agency writes them (computed once per distinct name)."""
    if script == "kk" or not len(values):
        return values
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    f = _SCRIPT_FUNCS[script]
    return np.array([f(s) for s in uniq.tolist()], dtype=object)[inv]


@dataclass
class Rows:
    """What a feed says in one period, before it is written."""

    key: np.ndarray
    """int64 record key, unique within the feed and stable across periods."""
    state: dict[str, np.ndarray]
    """numeric columns compared between deliveries to find changes"""
    persons: dict[str, np.ndarray]
    """role → local person index (-1 none) of the people each row is about (the truth)"""
    render: Callable[[np.ndarray], dict[str, np.ndarray]]
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
    n = len(keys)
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
    del n
    return out


def apply_faults(
    feed: Feed, cols: dict[str, np.ndarray], keys: np.ndarray, rates: FaultRates, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Inject faults into rendered rows; returns the columns and, per row, the faults really applied
    (a fault drawn for an empty field changes nothing and is not reported)."""
    n = len(keys)
    none = np.zeros(n, bool)
    has_iin = [_present(cols[c]) for c in feed.iin_columns]
    m = _masks(feed, keys, rates, seed, has_iin)
    applied = {
        f: none.copy() for f in ("iin_missing", "iin_mistyped", "name_typo", "name_variant", "date_format")
    }
    for j, col in enumerate(feed.iin_columns if not feed.iin_authority else ()):
        vals = np.asarray(cols[col], dtype=object)
        vals = names.apply_array(mistype_iin, vals, m[f"iin_mistyped_{j}"], _u(feed, seed, keys, "how", j))
        vals[m[f"iin_missing_{j}"]] = ""
        cols[col] = vals
        applied["iin_missing"] |= m[f"iin_missing_{j}"]
        applied["iin_mistyped"] |= m[f"iin_mistyped_{j}"]
    if feed.name_columns:
        how = _u(feed, seed, keys, "how", 50)
        k = len(feed.name_columns)
        present = np.stack([_present(cols[c]) for c in feed.name_columns])
        # the drawn name field, or the next one that has a value
        target: np.ndarray = np.full(n, -1)
        for step in range(k - 1, -1, -1):
            j = (m["name_which"] + step) % k
            target = np.where(present[j, np.arange(n)], j, target)
        for j, col in enumerate(feed.name_columns):
            vals = np.asarray(cols[col], dtype=object)
            here = target == j
            vals = names.apply_array(names.typo, vals, m["name_typo"] & here, how)
            vals = names.apply_array(_variant, vals, m["name_variant"] & here, how)
            cols[col] = vals
        applied["name_typo"] = m["name_typo"] & (target >= 0)
        applied["name_variant"] = m["name_variant"] & (target >= 0)
    if "date_format" in m:
        styles = [s for s in _STRFTIME if s != feed.date_style]
        if feed.fmt.kind == "fixed":  # a fixed-width field keeps its width
            width = len(format_dates(np.array([0]), feed.date_style)[0])
            styles = [s for s in styles if len(format_dates(np.array([0]), s)[0]) == width]  # type: ignore[arg-type]
        pick = (_u(feed, seed, keys, "how", 70) * len(styles)).astype(int)
        for col in feed.date_columns:
            vals = np.asarray(cols[col], dtype=object)
            nonempty = _present(vals)
            applied["date_format"] |= m["date_format"] & nonempty
            for si, style in enumerate(styles):
                sel = m["date_format"] & (pick == si) & nonempty
                vals = names.apply_array(lambda s, st=style: reformat_date(s, feed.date_style, st), vals, sel)
            cols[col] = vals
    return cols, applied


def _present(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=object)
    return (v != "") & (v != None)  # noqa: E711


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
