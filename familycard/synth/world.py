"""The simulated world of one chunk of families: who exists, who lives with whom, and their conditions.

A chunk is a closed set of families (kin who live elsewhere, such as a divorced father, are in the
same chunk), so chunks are simulated independently and in bounded memory. Static person attributes
are 1-D arrays; everything that changes month by month is a *panel* of shape ``(months, capacity)``
whose row ``t`` is the state at the end of simulation month ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

import numpy as np
import numpy.typing as npt

ALIVE = np.iinfo(np.int32).max
"""Sentinel death day of a living person."""

ID_STRIDE = 10_000_000
"""Ids are ``chunk * ID_STRIDE + local`` so they stay unique across chunks."""


class Role(IntEnum):
    """A person's place in their family, relative to the family head."""

    HEAD = 1
    SPOUSE = 2
    PARTNER = 3
    CHILD = 4
    STEPCHILD = 5
    PARENT = 6
    GRANDCHILD = 7
    ADULT_CHILD = 8
    RELATIVE = 9
    CHILD_IN_LAW = 10


class Archetype(IntEnum):
    """How a family was composed when it was generated (or formed during the simulation)."""

    SINGLE_ADULT = 1
    ELDERLY_ALONE = 2
    COUPLE = 3
    ELDERLY_COUPLE = 4
    COUPLE_WITH_CHILDREN = 5
    LARGE_FAMILY = 6
    SINGLE_PARENT = 7
    UNMARRIED_PARTNERS = 8
    REMARRIED_STEPCHILDREN = 9
    GRANDPARENTS_RAISING = 10
    THREE_GENERATION = 11
    ADULT_CHILDREN_AT_HOME = 12
    MIGRANT_FAMILY = 13
    EX_PARTNER_ALONE = 14
    NEWLY_FORMED = 15


class HardCase(IntFlag):
    """The hard cases for family building, kept per family so evaluation can report each."""

    NONE = 0
    STEPCHILDREN = 1
    GRANDPARENTS_RAISING = 2
    PARENT_ELSEWHERE = 4
    UNMARRIED_PARTNERS = 8
    ADULT_CHILDREN = 16
    TWINS = 32
    NO_REGISTERED_ADDRESS = 64
    CHILD_WITHOUT_IIN = 128
    THREE_GENERATION = 256
    MOVED = 512
    STALE_ADDRESS = 1024


HARD_CASE_NAMES: dict[HardCase, str] = {
    HardCase.STEPCHILDREN: "remarried_with_stepchildren",
    HardCase.GRANDPARENTS_RAISING: "grandparents_raising_grandchildren",
    HardCase.PARENT_ELSEWHERE: "parent_lives_elsewhere",
    HardCase.UNMARRIED_PARTNERS: "unmarried_partners",
    HardCase.ADULT_CHILDREN: "adult_children_at_home",
    HardCase.TWINS: "twins",
    HardCase.NO_REGISTERED_ADDRESS: "member_without_registered_address",
    HardCase.CHILD_WITHOUT_IIN: "migrant_child_without_iin",
    HardCase.THREE_GENERATION: "three_generations",
    HardCase.MOVED: "moved_during_period",
    HardCase.STALE_ADDRESS: "stale_registered_address",
}


class Emp(IntEnum):
    """Labour-market status of a person in a month."""

    NONE = 0  # child
    EMPLOYEE = 1  # formal contract, contributions paid
    SELF_EMPLOYED = 2  # registered individual entrepreneur
    INFORMAL = 3  # works without contract: no contributions, income unseen
    UNEMPLOYED_REGISTERED = 4
    UNEMPLOYED = 5  # looking for work, not registered
    STUDENT = 6
    PENSIONER = 7
    CARER = 8  # unpaid care at home
    INACTIVE = 9


class Act(IntEnum):
    """Civil-registry act types."""

    BIRTH = 1
    MARRIAGE = 2
    DIVORCE = 3
    DEATH = 4
    ADOPTION = 5
    GUARDIANSHIP = 6


class Migration(IntEnum):
    CITIZEN = 0
    KANDAS = 1  # ethnic Kazakh repatriate
    PERMANENT_PERMIT = 2
    TEMPORARY_PERMIT = 3


I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
F32 = npt.NDArray[np.float32]
B = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]


def _panel(months: int, cap: int, dtype: type, fill: float | int | bool = 0) -> np.ndarray:
    return np.full((months, cap), fill, dtype=dtype)


@dataclass
class Persons:
    """Static person attributes, grown as people are born or move in."""

    n: int
    sex: I8  # 1 male, 2 female
    birth: I32  # days since 1970-01-01
    death: I32  # ALIVE while living
    iin: I64  # -1 when none was issued
    surname: Obj
    given: Obj
    patronymic: Obj  # "" when none
    stem: I32  # surname stem (row of the national surname table)
    given_idx: I32  # row of the national given-name table of the person's sex
    culture: I8  # naming tradition only; never an input anywhere else
    mother: I64  # local index, -1 unknown
    father: I64
    migration: I8
    migration_since: I32
    never_registered: B  # has no registered address at all
    special_needs: B
    phone: I64  # national significant number (10 digits), -1 none
    created_t: I32  # month the person entered the simulation (-1 at start)

    @property
    def male(self) -> B:
        return self.sex[: self.n] == 1


@dataclass
class Panels:
    """Month-by-month person state, shape (months, capacity)."""

    family: I64  # local family index, -1 dead/emigrated
    role: I8
    address: I64  # where they live, -1 homeless
    reg_address: I64  # where they are registered, -1 none
    emp: I8
    wage: F32  # formal monthly wage or declared entrepreneur income, tenge
    informal: F32  # unseen income
    employer: I32  # synthetic employer number, -1 none
    pension: F32  # state pension paid this month
    disability: I8  # 0 none, 1..3 group, 4 child with disability
    chronic: B  # on a dispensary register
    insured: B  # compulsory social health insurance
    school: I8  # 0 n/a, 1 enrolled, 2 not enrolled/dropped out, 3 preschool
    loan: F32  # outstanding consumer debt, tenge
    overdue: B  # 90+ days overdue
    enforcement: B  # under an enforcement proceeding
    benefits: F32  # social payments received this month, tenge


@dataclass
class Families:
    """Family-level attributes; local index = row."""

    n: int
    archetype: I8
    hard: I64  # HardCase bitmask (accumulated)
    created_t: I32
    effect: F32  # persistent unobserved resilience (latent)
    owns_home: B
    housing_queue: B
    rooms: I8
    utilities_debt: F32
    livestock: I32
    land_ha: F32
    vehicles: I8
    dv_last: I32  # month of the last domestic-violence report, -99 none


STREETS_PER_BLOCK = 399
"""Street numbers drawn at random for a dwelling (1 to 399, each with houses 1 to 249), within one block of
streets."""
BLOCK_FAMILIES = 500
"""Families a block of streets holds in a large settlement: half a percent of its 99,351 street and house
numbers, so that two families rarely draw one address without a flat."""
SPREAD_FROM = 8_000
"""Settlements expected to hold more families than this nationally get more than one block."""


def street_blocks(settlement_weight: np.ndarray, families: int) -> I32:
    """Per settlement, its blocks of :data:`STREETS_PER_BLOCK` streets for a nation of ``families``
    families: 1, or one per :data:`BLOCK_FAMILIES` expected families where more than
    :data:`SPREAD_FROM` are expected. With one block everywhere, a settlement had 99,351 addresses without
    a flat whatever its size, and in a national nation 118,408 of them held two or more unrelated
    families (one household to the address register). Nations of up to about 290,000 families have one
    block everywhere and are generated exactly as before."""
    expected = settlement_weight / settlement_weight.sum() * families
    blocks = np.where(expected > SPREAD_FROM, np.ceil(expected / BLOCK_FAMILIES), 1)
    return blocks.astype(np.int32)


def spread_streets(
    street: np.ndarray, settlement: np.ndarray, dwelling: np.ndarray, blocks: I32
) -> np.ndarray:
    """``street`` (1 to :data:`STREETS_PER_BLOCK`) moved to one of its settlement's ``blocks``, chosen by a
    fixed hash of the national dwelling id (no random draw: nations small enough for one block per
    settlement are generated exactly as before, and chunks need no coordination)."""
    if len(blocks) == 0 or int(blocks.max(initial=1)) == 1:
        return street
    mixed = (dwelling.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    block = (mixed % blocks[settlement].astype(np.uint64)).astype(np.int32)
    return (street + STREETS_PER_BLOCK * block).astype(np.int32)


@dataclass
class Addresses:
    """Dwellings: settlement (index into the territory), street, house and flat; ``blocks`` holds each
    settlement's blocks of streets (:func:`street_blocks`)."""

    n: int
    settlement: I32
    street: I32
    house: I32
    flat: I32  # 0 for a private house
    blocks: I32 = field(default_factory=lambda: np.ones(0, np.int32))


class Events:
    """Append-only columns of things that happened, kept as blocks of arrays (cheap to append)."""

    ACT_COLS = ("type", "day", "a", "b", "c")
    # civil acts: birth child/mother/father; marriage and divorce husband/wife; death person;
    # adoption and guardianship ward/guardian (persons are local indices, -1 unknown)
    POLICE_COLS = ("kind", "day", "person", "other")
    SUPPORT_COLS = ("month", "family", "person", "measure", "amount", "effect")
    # support received, with the true effect on the family's latent welfare score

    def __init__(self) -> None:
        self._blocks: dict[str, list[tuple[np.ndarray, ...]]] = {"acts": [], "police": [], "support": []}

    def add(self, kind: str, *cols: np.ndarray | int | float) -> None:
        n = max((len(c) for c in cols if isinstance(c, np.ndarray)), default=1)
        self._blocks[kind].append(tuple(np.broadcast_to(np.asarray(c), (n,)).copy() for c in cols))

    def table(self, kind: str) -> dict[str, np.ndarray]:
        names = {"acts": self.ACT_COLS, "police": self.POLICE_COLS, "support": self.SUPPORT_COLS}[kind]
        blocks = self._blocks[kind]
        if not blocks:
            return {c: np.zeros(0, np.float64 if c in ("amount", "effect") else np.int64) for c in names}
        return {c: np.concatenate([blk[i] for blk in blocks]) for i, c in enumerate(names)}


@dataclass
class World:
    """Everything the simulation knows about one chunk."""

    chunk: int
    months: int
    start_day: int
    persons: Persons
    panels: Panels
    families: Families
    addresses: Addresses
    events: Events
    latent: np.ndarray  # (months, family capacity) latent welfare score
    level: np.ndarray  # (months, family capacity) true level index 0=A .. 4=E, -1 no family
    iin_serials: dict[int, int] = field(default_factory=dict)  # IIN serials issued per (birth day, sex)

    def pid(self, local: np.ndarray) -> I64:
        """Global person ids for local indices (-1 stays -1)."""
        return np.where(local >= 0, self.chunk * ID_STRIDE + local, -1)

    def fid(self, local: np.ndarray) -> I64:
        return np.where(local >= 0, self.chunk * ID_STRIDE + local, -1)

    def aid(self, local: np.ndarray) -> I64:
        return np.where(local >= 0, self.chunk * ID_STRIDE + local, -1)


def new_panels(months: int, cap: int) -> Panels:
    return Panels(
        family=_panel(months, cap, np.int64, -1),
        role=_panel(months, cap, np.int8),
        address=_panel(months, cap, np.int64, -1),
        reg_address=_panel(months, cap, np.int64, -1),
        emp=_panel(months, cap, np.int8),
        wage=_panel(months, cap, np.float32),
        informal=_panel(months, cap, np.float32),
        employer=_panel(months, cap, np.int32, -1),
        pension=_panel(months, cap, np.float32),
        disability=_panel(months, cap, np.int8),
        chronic=_panel(months, cap, np.bool_, False),
        insured=_panel(months, cap, np.bool_, False),
        school=_panel(months, cap, np.int8),
        loan=_panel(months, cap, np.float32),
        overdue=_panel(months, cap, np.bool_, False),
        enforcement=_panel(months, cap, np.bool_, False),
        benefits=_panel(months, cap, np.float32),
    )
