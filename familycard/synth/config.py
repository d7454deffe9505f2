"""Settings of one synthetic-nation run: size, seed, time span and fault rates.

Every default lives here, with its meaning, so that `familycard synth --help`, the docs and the tests
read the same numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often each realistic fault is injected into agency extracts (a share of eligible rows)."""

    iin_missing: float = 0.010
    """IIN field left empty in feeds other than the civil registry."""
    iin_mistyped: float = 0.005
    """IIN with one digit changed or two digits swapped, so that its check digit fails."""
    name_typo: float = 0.020
    """One name field with a keyboard typo (deletion, doubling, swap or neighbouring key)."""
    name_variant: float = 0.040
    """One name field written in another script or transliteration than the feed's own."""
    date_format: float = 0.010
    """A date written in another format than the feed's own (dd.mm.yyyy, yyyymmdd, d/m/yy ...)."""
    duplicate: float = 0.010
    """A record delivered twice in the same file."""
    stale_address: float = 0.300
    """Share of moves never re-registered: the address register keeps the old address."""
    late_delivery: float = 0.050
    """Share of deliveries that arrive after their due date."""
    missing_delivery: float = 0.020
    """Share of change deliveries never sent; their changes arrive with the next one."""

    @classmethod
    def scaled(cls, factor: float) -> FaultRates:
        """All rates multiplied by ``factor`` (0 gives clean extracts)."""
        return cls(**{f.name: min(1.0, getattr(cls(), f.name) * factor) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """One synthetic nation: ``families`` families simulated over ``months`` months from ``start``."""

    families: int = 2_000
    seed: int = 0
    months: int = 24
    start: dt.date = dt.date(2024, 12, 1)
    chunk_families: int = 25_000
    """Families simulated at a time: bounds each worker's memory (about 0.5 GiB at 25,000 families) and,
    with many chunks, keeps the workers and the writing main process busy together."""
    faults: FaultRates = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        if self.families < 1:
            raise ValueError("families must be at least 1")
        if not 1 <= self.months <= 120:
            raise ValueError("months must be between 1 and 120")
        if self.start.day != 1:
            raise ValueError("start must be the first day of a month")
        if self.chunk_families < 100:
            raise ValueError("chunk_families must be at least 100")
        for f in fields(FaultRates):
            v = getattr(self.faults, f.name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"fault rate {f.name} must be within 0..1, got {v}")

    @property
    def n_chunks(self) -> int:
        return -(-self.families // self.chunk_families)

    def period(self, t: int) -> str:
        """Calendar month ``YYYY-MM`` of simulation month ``t`` (0-based)."""
        m = self.start.year * 12 + self.start.month - 1 + t
        return f"{m // 12:04d}-{m % 12 + 1:02d}"

    def month_start_day(self, t: int) -> int:
        """Days since 1970-01-01 of the first day of month ``t``."""
        m = self.start.year * 12 + self.start.month - 1 + t
        return (dt.date(m // 12, m % 12 + 1, 1) - dt.date(1970, 1, 1)).days

    def as_dict(self) -> dict[str, Any]:
        return {
            "families": self.families,
            "seed": self.seed,
            "months": self.months,
            "start": self.start.isoformat(),
            "chunk_families": self.chunk_families,
            "faults": {f.name: getattr(self.faults, f.name) for f in fields(FaultRates)},
        }

    def with_faults(self, **rates: float) -> SynthConfig:
        return replace(self, faults=replace(self.faults, **rates))
