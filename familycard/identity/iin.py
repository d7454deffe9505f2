"""The IIN, Kazakhstan's 12-digit individual identification number.

Layout: ``YYMMDD`` birth date, one century/sex digit (1/2 = 1800s, 3/4 = 1900s, 5/6 = 2000s; odd male,
even female), a 4-digit serial and a check digit. The check digit is ``Σ d[i]·(i+1) mod 11`` over the
first 11 digits; when that is 10 a second pass uses weights ``3,4,5,6,7,8,9,10,11,1,2``; when that is
10 again the number is not issued. A BIN (business number) has the same length and check but its fifth
digit is 4, 5 or 6 (a legal-entity type), which a valid birth month can never be.

Scalar functions serve validation of single values; the ``*_array`` functions work on whole numpy
columns for the generator and the pipeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

WEIGHTS_1 = np.arange(1, 12, dtype=np.int64)
WEIGHTS_2 = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], dtype=np.int64)
_POW10 = 10 ** np.arange(11, -1, -1, dtype=np.int64)
_WEIGHTS_COL_1 = WEIGHTS_1.astype(np.int16)[:, None]
_WEIGHTS_COL_2 = WEIGHTS_2.astype(np.int16)[:, None]


class IINProblem(StrEnum):
    """Why an IIN is not acceptable as a person's identifier."""

    FORMAT = "not 12 digits"
    CHECK_DIGIT = "check digit does not match"
    UNISSUABLE = "check digit cannot be computed (number never issued)"
    CENTURY_SEX = "century/sex digit is not 1-6"
    BIRTH_DATE = "first six digits are not a valid birth date"
    BIN = "a business identification number (BIN), not a person"


@dataclass(frozen=True, slots=True)
class IINInfo:
    """What an IIN says about its holder."""

    birth_date: dt.date
    sex: str  # "M" or "F"


def check_digit(first11: str) -> int | None:
    """Check digit for the first 11 digits, or None when no check digit exists (never issued)."""
    d = [int(c) for c in first11]
    c = sum(x * w for x, w in zip(d, range(1, 12), strict=True)) % 11
    if c == 10:
        c = sum(x * int(w) for x, w in zip(d, WEIGHTS_2, strict=True)) % 11
        if c == 10:
            return None
    return c


def problems(iin: str) -> list[IINProblem]:
    """Every rule the value breaks; an empty list means a valid personal IIN.

    >>> problems("791028302728")
    []
    >>> problems("791028302729")
    [<IINProblem.CHECK_DIGIT: 'check digit does not match'>]
    """
    if len(iin) != 12 or not iin.isascii() or not iin.isdigit():
        return [IINProblem.FORMAT]
    found: list[IINProblem] = []
    c = check_digit(iin[:11])
    if c is None:
        found.append(IINProblem.UNISSUABLE)
    elif c != int(iin[11]):
        found.append(IINProblem.CHECK_DIGIT)
    if iin[4] in "456":
        found.append(IINProblem.BIN)
        return found
    if iin[6] not in "123456":
        found.append(IINProblem.CENTURY_SEX)
    elif _birth_date(iin) is None:
        found.append(IINProblem.BIRTH_DATE)
    return found


def is_valid(iin: str) -> bool:
    """True for a well-formed personal IIN with a correct check digit."""
    return not problems(iin)


def info(iin: str) -> IINInfo:
    """Birth date and sex encoded in a valid IIN; ValueError naming the broken rule otherwise."""
    found = problems(iin)
    if found:
        raise ValueError(f"invalid IIN {iin!r}: {', '.join(p.value for p in found)}")
    born = _birth_date(iin)
    assert born is not None
    return IINInfo(birth_date=born, sex="M" if int(iin[6]) % 2 else "F")


def _birth_date(iin: str) -> dt.date | None:
    century = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}.get(iin[6])
    if century is None:
        return None
    try:
        return dt.date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return None


def century_sex_digit(year: int, sex: str) -> int:
    """The 7th digit for a person born in ``year`` of ``sex`` ("M"/"F")."""
    base = {18: 1, 19: 3, 20: 5}[year // 100]
    return base + (0 if sex == "M" else 1)


def make(birth_date: dt.date, sex: str, serial: int) -> str | None:
    """The IIN for a birth date, sex and 4-digit serial, or None when that serial is unissuable."""
    first11 = f"{birth_date:%y%m%d}{century_sex_digit(birth_date.year, sex)}{serial:04d}"
    c = check_digit(first11)
    return None if c is None else first11 + str(c)


# ---- vectorised forms -------------------------------------------------------------------------------


def digits_array(iins: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Split 12-digit integers into an (n, 12) digit matrix (leading zeros kept)."""
    return (iins[:, None] // _POW10[None, :]) % 10


def check_digits_array(first11: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Check digits for an (n, 11) digit matrix (digits 0-9, any integer type); -1 where the number
    cannot be issued."""
    columns = first11.T.astype(np.int16)  # (a weighted sum is at most 11 * 9 * 11)
    c = (columns * _WEIGHTS_COL_1).sum(axis=0, dtype=np.int16).astype(np.int64) % 11
    c2 = (columns * _WEIGHTS_COL_2).sum(axis=0, dtype=np.int16).astype(np.int64) % 11
    c = np.where(c == 10, c2, c)
    return np.where(c == 10, -1, c)


def make_array(
    birth_days: npt.NDArray[np.int32],
    male: npt.NDArray[np.bool_],
    slot: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """IINs as integers for birth days (days since 1970-01-01), sex and serial slots.

    Each slot (0..2,499, unique per birth date and sex) owns the four serials ``4*slot .. 4*slot+3``;
    the first issuable one is used, so IINs are unique whenever slots are. -1 marks the (about one in
    two hundred million) slot whose four serials are all unissuable.
    """
    if len(slot) and (slot.min() < 0 or slot.max() >= 2500):
        raise ValueError("IIN serial slot out of range 0..2499")
    dates = birth_days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    century = np.select([years < 1900, years < 2000], [1, 3], 5) + (~male).astype(np.int64)
    head = ((years % 100) * 10000 + months * 100 + days) * 10 + century
    out = np.full(len(slot), -1, dtype=np.int64)
    for j in range(4):
        todo = out < 0
        if not todo.any():
            break
        first11 = head[todo] * 10000 + slot[todo].astype(np.int64) * 4 + j
        c = check_digits_array(digits_array(first11 * 10)[:, :11])
        idx = np.flatnonzero(todo)
        ok = c >= 0
        out[idx[ok]] = first11[ok] * 10 + c[ok]
    return out


def format_array(iins: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Zero-padded 12-character strings; empty where the value is negative (no IIN)."""
    text = np.char.zfill(iins.astype(str), 12)
    return np.where(iins >= 0, text, "")
