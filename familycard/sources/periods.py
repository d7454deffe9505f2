"""Delivery periods (``YYYY-MM``) and due dates."""

from __future__ import annotations

import datetime as dt

from familycard.sources.catalogue import FeedSpec


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First and last day of a ``YYYY-MM`` period."""
    y, m = int(period[:4]), int(period[5:7])
    start = dt.date(y, m, 1)
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return start, nxt - dt.timedelta(days=1)


def due_date(spec: FeedSpec, period: str) -> dt.date:
    """A delivery is due on the feed's due day of the month after its period."""
    _, end = period_bounds(period)
    return end + dt.timedelta(days=spec.due_day)


def months(period: str) -> int:
    """Months since year 0 (for arithmetic on periods)."""
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def period_of(month_index: int) -> str:
    return f"{month_index // 12:04d}-{month_index % 12 + 1:02d}"
