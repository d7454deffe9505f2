"""Periods and the state of a feed's history as of a period.

A family is built *as of* a period ``YYYY-MM``: the records valid at the end of that period, and the
acts dated on or before its last day. Histories (``src_<feed>``) keep every version of every record; a
version opened by a delivery of period ``_period`` and closed by a delivery of period
``_valid_to_period`` was the agency's word from the first up to (not including) the second.
"""

from __future__ import annotations

import datetime as dt
import re

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def check_period(as_of: str | dt.date) -> str:
    """``as_of`` as a period ``YYYY-MM`` (a date gives its month)."""
    if isinstance(as_of, dt.date):
        return f"{as_of.year:04d}-{as_of.month:02d}"
    if not _PERIOD.fullmatch(as_of):
        raise ValueError(f"as_of must be a period YYYY-MM or a date, not {as_of!r}")
    return as_of


def period_end(period: str) -> dt.date:
    """The last day of a period ``YYYY-MM``."""
    year, month = int(period[:4]), int(period[5:7])
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def previous_period(period: str, months: int = 1) -> str:
    """The period ``months`` before ``period``."""
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def valid_at(alias: str, period: str) -> str:
    """SQL condition: the version ``alias`` was current at the end of ``period`` (and not a tombstone)."""
    p = check_period(period)
    return (
        f"{alias}._period <= '{p}' "
        f"AND ({alias}._valid_to_period IS NULL OR {alias}._valid_to_period > '{p}') "
        f"AND NOT COALESCE({alias}._deleted, FALSE)"
    )


def date_literal(day: dt.date) -> str:
    """A SQL date literal."""
    return f"DATE '{day.isoformat()}'"
