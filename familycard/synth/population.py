"""The initial population of a chunk: families by archetype, their members, kin links, names, homes.

Families are drawn from archetypes whose shares are model parameters (``ARCHETYPE_SHARES``), chosen so
that household sizes, the age pyramid and the hard cases come out near the targets in
``data/targets.toml`` (``familycard synth --report`` shows how near). Children are drawn first and
their parents' ages follow from them, so every family is biologically plausible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from familycard.geo.territory import REGIONS, build_territory
from familycard.identity import iin as iinlib
from familycard.synth import naming
from familycard.synth.config import SynthConfig
from familycard.synth.world import (
    ALIVE,
    Act,
    Addresses,
    Archetype,
    Events,
    Families,
    HardCase,
    Migration,
    Persons,
    Role,
    World,
    new_panels,
    spread_streets,
    street_blocks,
)

YEAR = 365.25

ARCHETYPE_SHARES: dict[Archetype, float] = {
    Archetype.SINGLE_ADULT: 0.110,
    Archetype.ELDERLY_ALONE: 0.075,
    Archetype.COUPLE: 0.090,
    Archetype.ELDERLY_COUPLE: 0.065,
    Archetype.COUPLE_WITH_CHILDREN: 0.230,
    Archetype.LARGE_FAMILY: 0.055,
    Archetype.SINGLE_PARENT: 0.080,
    Archetype.UNMARRIED_PARTNERS: 0.040,
    Archetype.REMARRIED_STEPCHILDREN: 0.030,
    Archetype.GRANDPARENTS_RAISING: 0.020,
    Archetype.THREE_GENERATION: 0.115,
    Archetype.ADULT_CHILDREN_AT_HOME: 0.080,
    Archetype.MIGRANT_FAMILY: 0.010,
}
"""Share of families of each archetype at the start (ex-partners living alone are carved out of
SINGLE_ADULT so the total stays the requested number of families)."""

# Naming traditions by region (Kazakh, Russian/Slavic, other); only names depend on them.
_CULTURE_NORTH = (0.55, 0.37, 0.08)
_CULTURE_SOUTH = (0.86, 0.02, 0.12)
_CULTURE_CITY = (0.68, 0.20, 0.12)
_CULTURE_DEFAULT = (0.78, 0.12, 0.10)
_NORTH = {"11", "35", "39", "55", "59", "63", "62", "10"}
_SOUTH = {"61", "79", "31", "43", "19", "33"}
_CITY = {"71", "75"}

TWIN_RATE = 0.015
NO_REG_ADDRESS_RATE = 0.006
PHONE_OWNERSHIP = 0.95


@dataclass
class _Builder:
    """Collects people and families as blocks of arrays, then freezes them into a World."""

    rng: np.random.Generator
    start_day: int
    sex: list[np.ndarray] = field(default_factory=list)
    birth: list[np.ndarray] = field(default_factory=list)
    fam: list[np.ndarray] = field(default_factory=list)
    role: list[np.ndarray] = field(default_factory=list)
    mother: list[np.ndarray] = field(default_factory=list)
    father: list[np.ndarray] = field(default_factory=list)
    death: list[np.ndarray] = field(default_factory=list)
    migration: list[np.ndarray] = field(default_factory=list)
    spouse_pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    divorced_pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    guardianships: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    arche: list[np.ndarray] = field(default_factory=list)
    hard: list[np.ndarray] = field(default_factory=list)
    twin_families: list[np.ndarray] = field(default_factory=list)
    n_people: int = 0
    n_fams: int = 0

    def families(self, n: int, arche: Archetype, hard: HardCase = HardCase.NONE) -> np.ndarray:
        ids = np.arange(self.n_fams, self.n_fams + n, dtype=np.int64)
        self.n_fams += n
        self.arche.append(np.full(n, int(arche), np.int8))
        self.hard.append(np.full(n, int(hard), np.int64))
        return ids

    def people(
        self,
        fam: np.ndarray,
        role: Role | np.ndarray,
        sex: np.ndarray | int,
        age_years: np.ndarray,
        *,
        mother: np.ndarray | None = None,
        father: np.ndarray | None = None,
        dead_at_years_ago: np.ndarray | None = None,
        migration: int = Migration.CITIZEN,
    ) -> np.ndarray:
        n = len(fam)
        ids = np.arange(self.n_people, self.n_people + n, dtype=np.int64)
        self.n_people += n
        days = np.floor(np.asarray(age_years, dtype=np.float64) * YEAR).astype(np.int64)
        self.birth.append((self.start_day - days).astype(np.int32))
        self.sex.append(np.broadcast_to(np.asarray(sex, dtype=np.int8), (n,)).copy())
        self.fam.append(np.asarray(fam, dtype=np.int64))
        self.role.append(np.broadcast_to(np.asarray(role, dtype=np.int8), (n,)).copy())
        self.mother.append(np.full(n, -1, np.int64) if mother is None else np.asarray(mother, np.int64))
        self.father.append(np.full(n, -1, np.int64) if father is None else np.asarray(father, np.int64))
        if dead_at_years_ago is None:
            self.death.append(np.full(n, ALIVE, np.int32))
        else:
            dd = self.start_day - np.floor(dead_at_years_ago * YEAR).astype(np.int64)
            self.death.append(np.where(dead_at_years_ago < 0, ALIVE, dd).astype(np.int32))
        self.migration.append(np.full(n, int(migration), np.int8))
        return ids

    def marry(self, husband: np.ndarray, wife: np.ndarray, years_ago: np.ndarray) -> None:
        day = self.start_day - np.floor(years_ago * YEAR).astype(np.int64)
        self.spouse_pairs.append((husband, wife, day))

    def divorced(self, husband: np.ndarray, wife: np.ndarray, married_ago: np.ndarray, div_ago: np.ndarray):
        m = self.start_day - np.floor(married_ago * YEAR).astype(np.int64)
        d = self.start_day - np.floor(div_ago * YEAR).astype(np.int64)
        self.divorced_pairs.append((husband, wife, m, d))


def _kids(b: _Builder, n_fam: int, counts: np.ndarray, youngest_max: float, eldest_cap: float):
    """Children's ages for ``n_fam`` families with ``counts`` children each.

    Returns (family position per child, age per child, twin flag per child, eldest age per family).
    The youngest is 0..youngest_max years old; each elder sibling 1-5 years older (or a twin).
    """
    rng = b.rng
    total = int(counts.sum())
    pos = np.repeat(np.arange(n_fam), counts)
    youngest = rng.uniform(0, youngest_max, n_fam)
    gaps = rng.gamma(3.0, 0.9, total) + 1.0
    twin = rng.random(total) < TWIN_RATE
    first = np.zeros(total, dtype=bool)
    starts = np.cumsum(counts) - counts
    first[starts[counts > 0]] = True
    gaps[first] = 0.0
    twin &= ~first
    gaps[twin] = 0.0
    cs = np.cumsum(gaps)
    base = np.repeat(cs[starts[counts > 0]] if total else np.zeros(0), counts[counts > 0])
    age = youngest[pos] + (cs - base)
    age = np.minimum(age, eldest_cap - rng.uniform(0, 0.5, total))
    eldest = np.full(n_fam, -1.0)
    if total:
        np.maximum.at(eldest, pos, age)
    return pos, age, twin, eldest


def _age_gap(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.normal(3.0, 3.0, n), -4, 12)


def build_population(cfg: SynthConfig, chunk: int, n_families: int, rng: np.random.Generator) -> World:
    """The initial state (start of month 0) of one chunk of ``n_families`` families."""
    start_day = cfg.month_start_day(0)
    b = _Builder(rng=rng, start_day=start_day)
    shares = np.array(list(ARCHETYPE_SHARES.values()))
    counts = rng.multinomial(n_families, shares / shares.sum())
    n_by = dict(zip(ARCHETYPE_SHARES, counts, strict=True))

    # --- families with children of a couple --------------------------------------------------
    def couple_with_kids(n: int, arche: Archetype, kid_counts: np.ndarray, hard: HardCase, married=True):
        f = b.families(n, arche, hard)
        pos, kage, twin, eldest = _kids(
            b, n, kid_counts, 15.5 if arche != Archetype.LARGE_FAMILY else 5.0, 17.9
        )
        mage = np.where(eldest >= 0, eldest, 0) + rng.uniform(20, 31, n)
        mage = np.where(kid_counts == 0, rng.uniform(20, 45, n), mage)
        fage = np.clip(mage + _age_gap(rng, n), 18, 90)
        dad = b.people(f, Role.HEAD, 1, fage)
        mom = b.people(f, Role.SPOUSE if married else Role.PARTNER, 2, mage)
        kids = b.people(
            f[pos], Role.CHILD, rng.integers(1, 3, len(pos)), kage, mother=mom[pos], father=dad[pos]
        )
        if married:
            b.marry(dad, mom, np.minimum(np.maximum(eldest, 0) + rng.uniform(0.8, 3, n), mage - 18))
        _flag_twins(b, f, pos, twin)
        return f, dad, mom, kids

    n = n_by[Archetype.COUPLE_WITH_CHILDREN]
    couple_with_kids(
        n, Archetype.COUPLE_WITH_CHILDREN, rng.choice([1, 2, 3], n, p=[0.52, 0.36, 0.12]), HardCase.NONE
    )
    n = n_by[Archetype.LARGE_FAMILY]
    couple_with_kids(n, Archetype.LARGE_FAMILY, 4 + rng.geometric(0.55, n) - 1, HardCase.NONE)
    n = n_by[Archetype.UNMARRIED_PARTNERS]
    couple_with_kids(
        n,
        Archetype.UNMARRIED_PARTNERS,
        rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1]),
        HardCase.UNMARRIED_PARTNERS,
        married=False,
    )

    # --- three generations: couple + children + one or two of the husband's parents -------------
    n = n_by[Archetype.THREE_GENERATION]
    f, dad, mom, _ = couple_with_kids(
        n,
        Archetype.THREE_GENERATION,
        rng.choice([0, 1, 2, 3, 4], n, p=[0.15, 0.35, 0.30, 0.15, 0.05]),
        HardCase.THREE_GENERATION,
    )
    dad_age = (start_day - np.concatenate(b.birth)[dad]) / YEAR
    gm_age = dad_age + rng.uniform(20, 32, n)
    both = rng.random(n) < 0.55
    gm = b.people(f, Role.PARENT, 2, gm_age)
    gf_f = f[both]
    gf = b.people(gf_f, Role.PARENT, 1, gm_age[both] + _age_gap(rng, int(both.sum())))
    b.marry(gf, gm[both], gm_age[both] - rng.uniform(19, 25, int(both.sum())))
    _set_parents(b, dad, gm, np.where(both, _scatter(n, both, gf), -1))

    # --- adult children still at home ------------------------------------------------------------
    n = n_by[Archetype.ADULT_CHILDREN_AT_HOME]
    f = b.families(n, Archetype.ADULT_CHILDREN_AT_HOME, HardCase.ADULT_CHILDREN)
    k = rng.choice([1, 2, 3, 4], n, p=[0.30, 0.40, 0.22, 0.08])
    pos, kage, twin, eldest = _kids(b, n, k, 12.0, 34.0)
    shift = np.maximum(0.0, 18.0 + rng.uniform(0, 8, n) - eldest)
    kage = kage + shift[pos]
    eldest = eldest + shift
    mage = eldest + rng.uniform(20, 30, n)
    dad = b.people(f, Role.HEAD, 1, np.clip(mage + _age_gap(rng, n), 36, 95))
    mom = b.people(f, Role.SPOUSE, 2, mage)
    roles = np.where(kage >= 18, Role.ADULT_CHILD, Role.CHILD).astype(np.int8)
    b.people(f[pos], roles, rng.integers(1, 3, len(pos)), kage, mother=mom[pos], father=dad[pos])
    b.marry(dad, mom, eldest + rng.uniform(0.8, 3, n))
    _flag_twins(b, f, pos, twin)

    # --- single parents: divorced (other parent lives alone elsewhere), widowed, never married ---
    n = n_by[Archetype.SINGLE_PARENT]
    kind = rng.choice([0, 1, 2], n, p=[0.55, 0.15, 0.30])  # divorced, widowed, never married
    hard = np.where(kind == 0, HardCase.PARENT_ELSEWHERE, HardCase.NONE)
    f = b.families(n, Archetype.SINGLE_PARENT)
    b.hard[-1][:] = hard
    k = rng.choice([1, 2, 3, 4], n, p=[0.55, 0.30, 0.12, 0.03])
    pos, kage, twin, eldest = _kids(b, n, k, 13.0, 17.9)
    mage = eldest + rng.uniform(19, 30, n)
    mom_is_parent = rng.random(n) < 0.88
    psex = np.where(mom_is_parent, 2, 1)
    parent = b.people(f, Role.HEAD, psex, np.where(mom_is_parent, mage, mage + 3))
    # the other parent: alone in a family of their own (divorced), dead (widowed), or unknown
    other_age = np.where(mom_is_parent, mage + _age_gap(rng, n), mage - 1)
    divorced = kind == 0
    nd = int(divorced.sum())
    ex_f = b.families(nd, Archetype.EX_PARTNER_ALONE, HardCase.PARENT_ELSEWHERE)
    ex = b.people(ex_f, Role.HEAD, 3 - psex[divorced], other_age[divorced])
    widowed = kind == 1
    nw = int(widowed.sum())
    dead = b.people(
        np.full(nw, -1),
        Role.HEAD,
        3 - psex[widowed],
        other_age[widowed],
        dead_at_years_ago=rng.uniform(0.2, np.maximum(eldest[widowed], 0.5)),
    )
    other = np.full(n, -1, np.int64)
    other[divorced] = ex
    other[widowed] = dead
    mother = np.where(mom_is_parent, parent, other)
    father = np.where(mom_is_parent, other, parent)
    b.people(f[pos], Role.CHILD, rng.integers(1, 3, len(pos)), kage, mother=mother[pos], father=father[pos])
    hus, wif = np.where(mom_is_parent, other, parent), np.where(mom_is_parent, parent, other)
    mar_ago = eldest + rng.uniform(0.5, 3, n)
    b.divorced(
        hus[divorced],
        wif[divorced],
        mar_ago[divorced],
        rng.uniform(0.3, 1, nd) * np.maximum(eldest[divorced], 0.5),
    )
    b.marry(hus[widowed], wif[widowed], mar_ago[widowed])
    _flag_twins(b, f, pos, twin)

    # --- remarried: mother, her children from a first marriage, new husband, maybe shared children -
    n = n_by[Archetype.REMARRIED_STEPCHILDREN]
    f = b.families(n, Archetype.REMARRIED_STEPCHILDREN, HardCase.STEPCHILDREN | HardCase.PARENT_ELSEWHERE)
    k_old = rng.choice([1, 2, 3], n, p=[0.55, 0.35, 0.10])
    pos, kage, twin, eldest = _kids(b, n, k_old, 6.0, 17.9)
    kage = kage + 3.0
    kage = np.minimum(kage, 17.9)
    eldest = np.minimum(eldest + 3.0, 17.9)
    mage = eldest + rng.uniform(19, 28, n)
    mom = b.people(f, Role.SPOUSE, 2, mage)
    stepdad = b.people(f, Role.HEAD, 1, mage + _age_gap(rng, n))
    ex_f = b.families(n, Archetype.EX_PARTNER_ALONE, HardCase.PARENT_ELSEWHERE)
    exdad = b.people(ex_f, Role.HEAD, 1, mage + _age_gap(rng, n))
    b.people(f[pos], Role.STEPCHILD, rng.integers(1, 3, len(pos)), kage, mother=mom[pos], father=exdad[pos])
    _flag_twins(b, f, pos, twin)
    shared = rng.choice([0, 1, 2], n, p=[0.5, 0.35, 0.15])
    spos = np.repeat(np.arange(n), shared)
    sage = rng.uniform(0, 2.5, len(spos))
    b.people(f[spos], Role.CHILD, rng.integers(1, 3, len(spos)), sage, mother=mom[spos], father=stepdad[spos])
    b.divorced(exdad, mom, eldest + rng.uniform(1, 3, n), rng.uniform(2.6, 4, n))
    b.marry(stepdad, mom, rng.uniform(0.3, 2.5, n))

    # --- grandparents raising grandchildren (parents dead or away), under guardianship ------------
    n = n_by[Archetype.GRANDPARENTS_RAISING]
    f = b.families(n, Archetype.GRANDPARENTS_RAISING, HardCase.GRANDPARENTS_RAISING)
    k = rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15])
    pos, kage, twin, eldest = _kids(b, n, k, 12.0, 17.9)
    mid_age = eldest + rng.uniform(20, 30, n)
    gm_age = mid_age + rng.uniform(20, 28, n)
    gm = b.people(f, Role.HEAD, 2, gm_age)
    both = rng.random(n) < 0.5
    gf = b.people(f[both], Role.SPOUSE, 1, gm_age[both] + _age_gap(rng, int(both.sum())))
    b.marry(gf, gm[both], gm_age[both] - 22)
    # the middle generation: mother dead or living elsewhere alone
    mdead = rng.random(n) < 0.5
    mom_f = np.full(n, -1, np.int64)
    mom_f[~mdead] = b.families(int((~mdead).sum()), Archetype.EX_PARTNER_ALONE, HardCase.PARENT_ELSEWHERE)
    mom = b.people(
        mom_f,
        Role.HEAD,
        2,
        mid_age,
        mother=gm,
        dead_at_years_ago=np.where(mdead, rng.uniform(0.3, np.maximum(eldest, 0.5)), -1.0),
    )
    kids = b.people(f[pos], Role.GRANDCHILD, rng.integers(1, 3, len(pos)), kage, mother=mom[pos])
    b.guardianships.append(
        (
            kids,
            gm[pos],
            start_day
            - np.floor(rng.uniform(0.1, 1, len(pos)) * np.maximum(kage, 0.3) * YEAR).astype(np.int64),
        )
    )
    _flag_twins(b, f, pos, twin)

    # --- couples without children, elderly, single adults -----------------------------------------
    n = n_by[Archetype.COUPLE]
    f = b.families(n, Archetype.COUPLE)
    wage = np.where(rng.random(n) < 0.55, rng.uniform(19, 35, n), rng.uniform(45, 62, n))
    h = b.people(f, Role.HEAD, 1, np.clip(wage + _age_gap(rng, n), 18, 80))
    w = b.people(f, Role.SPOUSE, 2, wage)
    b.marry(h, w, np.minimum(rng.uniform(0.2, 30, n), wage - 18.5))

    n = n_by[Archetype.ELDERLY_COUPLE]
    f = b.families(n, Archetype.ELDERLY_COUPLE)
    wage = rng.uniform(60, 85, n)
    h = b.people(f, Role.HEAD, 1, np.clip(wage + _age_gap(rng, n), 60, 97))
    w = b.people(f, Role.SPOUSE, 2, wage)
    b.marry(h, w, wage - rng.uniform(19, 28, n))

    n = n_by[Archetype.ELDERLY_ALONE]
    f = b.families(n, Archetype.ELDERLY_ALONE)
    female = rng.random(n) < 0.75
    b.people(f, Role.HEAD, np.where(female, 2, 1), 63 + rng.gamma(2.0, 5.5, n))

    # --- migrants: foreign nationals with a residence permit; children born abroad have no IIN ----
    n = n_by[Archetype.MIGRANT_FAMILY]
    f = b.families(n, Archetype.MIGRANT_FAMILY, HardCase.CHILD_WITHOUT_IIN)
    k = rng.choice([1, 2, 3, 4], n, p=[0.3, 0.35, 0.25, 0.1])
    pos, kage, twin, eldest = _kids(b, n, k, 6.0, 17.9)
    mage = eldest + rng.uniform(19, 30, n)
    d = b.people(f, Role.HEAD, 1, mage + _age_gap(rng, n), migration=Migration.TEMPORARY_PERMIT)
    m = b.people(f, Role.SPOUSE, 2, mage, migration=Migration.TEMPORARY_PERMIT)
    b.people(
        f[pos],
        Role.CHILD,
        rng.integers(1, 3, len(pos)),
        kage,
        mother=m[pos],
        father=d[pos],
        migration=Migration.TEMPORARY_PERMIT,
    )
    b.marry(d, m, eldest + rng.uniform(1, 3, n))
    _flag_twins(b, f, pos, twin)

    n_ex = b.n_fams - int(sum(n_by[a] for a in ARCHETYPE_SHARES if a != Archetype.SINGLE_ADULT))
    n = max(0, n_by[Archetype.SINGLE_ADULT] - n_ex)
    f = b.families(n, Archetype.SINGLE_ADULT)
    b.people(f, Role.HEAD, rng.integers(1, 3, n), 18 + rng.gamma(2.0, 8.0, n).clip(0, 44))

    return _freeze(cfg, chunk, b)


def _scatter(n: int, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    out[mask] = values
    return out


def _set_parents(b: _Builder, child: np.ndarray, mother: np.ndarray, father: np.ndarray) -> None:
    """Record parents for people already added (the head of a three-generation family)."""
    b.__dict__.setdefault("late_parents", []).append((child, mother, father))


def _flag_twins(b: _Builder, fam: np.ndarray, pos: np.ndarray, twin: np.ndarray) -> None:
    b.twin_families.append(fam[pos[twin]])


def _freeze(cfg: SynthConfig, chunk: int, b: _Builder) -> World:
    rng = b.rng
    months = cfg.months
    n = b.n_people
    cap = int(n * 1.12) + 64
    fcap = int(b.n_fams * 1.15) + 64

    def grow(parts: list[np.ndarray], dtype, fill) -> np.ndarray:
        out = np.full(cap, fill, dtype=dtype)
        if parts:
            out[:n] = np.concatenate(parts)
        return out

    sex = grow(b.sex, np.int8, 0)
    birth = grow(b.birth, np.int32, 0)
    death = grow(b.death, np.int32, ALIVE)
    fam0 = np.concatenate(b.fam)
    role0 = np.concatenate(b.role)
    mother = grow(b.mother, np.int64, -1)
    father = grow(b.father, np.int64, -1)
    for child, mom, dad in b.__dict__.get("late_parents", []):
        mother[child] = mom
        father[child] = dad
    migration = grow(b.migration, np.int8, 0)

    # deaths before the start stay as people (kin links) without a family
    dead_before = death[:n] <= b.start_day
    fam0 = np.where(dead_before, -1, fam0)

    # --- families, homes, addresses ------------------------------------------------------------
    nf = b.n_fams
    arche = np.zeros(fcap, np.int8)
    arche[:nf] = np.concatenate(b.arche)
    hard = np.zeros(fcap, np.int64)
    hard[:nf] = np.concatenate(b.hard)
    if b.twin_families:
        hard[np.concatenate(b.twin_families)] |= int(HardCase.TWINS)
    terr = build_territory()
    settle = terr.sample_settlements(rng, nf)
    rural = terr.settlement_rural[settle]
    acap = int(nf * 1.6) + 64
    addr_settle = np.zeros(acap, np.int32)
    addr_settle[:nf] = settle
    street = np.zeros(acap, np.int32)
    street[:nf] = rng.integers(1, 400, nf)
    house = np.zeros(acap, np.int32)
    house[:nf] = rng.integers(1, 250, nf)
    flat = np.zeros(acap, np.int32)
    flat[:nf] = np.where(~rural & (rng.random(nf) < 0.7), rng.integers(1, 300, nf), 0)
    blocks = street_blocks(terr.settlement_weight, cfg.families)
    addresses = Addresses(n=nf, settlement=addr_settle, street=street, house=house, flat=flat, blocks=blocks)

    # --- names ---------------------------------------------------------------------------------
    region_code = np.array([r.code for r in REGIONS])[terr.settlement_region[settle]]
    fam_culture = _draw_culture(rng, region_code)
    person_fam_any = np.concatenate(b.fam)
    # people without a family (dead before start) take the culture of a child's family: approximate by 0
    culture = np.zeros(cap, np.int8)
    culture[:n] = np.where(person_fam_any >= 0, fam_culture[np.maximum(person_fam_any, 0)], 0)
    surname, given, patronymic, stem, gidx = naming.assign(
        rng,
        culture[:n],
        sex[:n],
        birth[:n],
        mother[:n],
        father[:n],
        _pairs(b.spouse_pairs) + _pairs(b.divorced_pairs),
    )
    surname_a = grow([surname], object, "")
    given_a = grow([given], object, "")
    patr_a = grow([patronymic], object, "")

    # --- identity numbers ------------------------------------------------------------------------
    iins = np.full(cap, -1, np.int64)
    born_abroad = (migration[:n] != Migration.CITIZEN) & (role0 == Role.CHILD)
    serials: dict[int, int] = {}
    iins[:n] = issue_iins(birth[:n], sex[:n] == 1, chunk, cfg.n_chunks, serials)
    iins[:n][born_abroad] = -1

    never_reg = np.zeros(cap, bool)
    never_reg[:n] = rng.random(n) < NO_REG_ADDRESS_RATE
    never_reg[:n] |= born_abroad & (rng.random(n) < 0.5)
    special = np.zeros(cap, bool)
    age0 = (b.start_day - birth[:n]) / YEAR
    special[:n] = (age0 < 18) & (rng.random(n) < 0.03)
    phone = np.full(cap, -1, np.int64)
    has_phone = (age0 >= 16) & (rng.random(n) < PHONE_OWNERSHIP)
    phone[:n] = np.where(has_phone, _phones(rng, chunk, n, cfg.n_chunks), -1)

    persons = Persons(
        n=n,
        sex=sex,
        birth=birth,
        death=death,
        iin=iins,
        surname=surname_a,
        given=given_a,
        patronymic=patr_a,
        stem=grow([stem], np.int32, 0),
        given_idx=grow([gidx], np.int32, 0),
        culture=culture,
        mother=mother,
        father=father,
        migration=migration,
        migration_since=np.where(migration != 0, b.start_day - rng.integers(60, 2000, cap), 0).astype(
            np.int32
        ),
        never_registered=never_reg,
        special_needs=special,
        phone=phone,
        created_t=np.full(cap, -1, np.int32),
    )
    panels = new_panels(months, cap)
    panels.family[0, :n] = fam0
    panels.role[0, :n] = role0
    home = np.where(fam0 >= 0, fam0, -1)  # family i lives at address i initially
    panels.address[0, :n] = home
    panels.reg_address[0, :n] = np.where(never_reg[:n], -1, home)

    fam_rng = rng
    families = Families(
        n=nf,
        archetype=arche,
        hard=hard,
        created_t=np.full(fcap, -1, np.int32),
        effect=np.zeros(fcap, np.float32),
        owns_home=np.zeros(fcap, bool),
        housing_queue=np.zeros(fcap, bool),
        rooms=np.zeros(fcap, np.int8),
        utilities_debt=np.zeros(fcap, np.float32),
        livestock=np.zeros(fcap, np.int32),
        land_ha=np.zeros(fcap, np.float32),
        vehicles=np.zeros(fcap, np.int8),
        dv_last=np.full(fcap, -99, np.int32),
    )
    families.hard[:nf] |= np.where(
        np.bincount(np.maximum(fam0, 0), weights=never_reg[:n] & (fam0 >= 0), minlength=nf)[:nf] > 0,
        int(HardCase.NO_REGISTERED_ADDRESS),
        0,
    ).astype(np.int64)
    events = Events()
    _historic_acts(b, events, birth[:n], death[:n], mother[:n], father[:n], born_abroad)
    world = World(
        chunk=chunk,
        months=months,
        start_day=b.start_day,
        persons=persons,
        panels=panels,
        families=families,
        addresses=addresses,
        events=events,
        latent=np.zeros((months, fcap), np.float32),
        level=np.full((months, fcap), -1, np.int8),
        iin_serials=serials,
    )
    # large settlements' streets spread over their blocks, by the dwellings' national ids
    dwellings = np.arange(nf)
    street[:nf] = spread_streets(street[:nf], addr_settle[:nf], world.aid(dwellings), blocks)
    world.__dict__["rural_of_settlement"] = terr.settlement_rural
    world.__dict__["region_of_settlement"] = terr.settlement_region
    del fam_rng
    return world


def _pairs(pairs: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(p[0], p[1]) for p in pairs]


def _draw_culture(rng: np.random.Generator, region_code: np.ndarray) -> np.ndarray:
    out = np.zeros(len(region_code), np.int8)
    u = rng.random(len(region_code))
    for codes, p in ((_NORTH, _CULTURE_NORTH), (_SOUTH, _CULTURE_SOUTH), (_CITY, _CULTURE_CITY)):
        m = np.isin(region_code, list(codes))
        out[m] = np.where(u[m] < p[0], 0, np.where(u[m] < p[0] + p[1], 1, 2))
    other = ~np.isin(region_code, list(_NORTH | _SOUTH | _CITY))
    p = _CULTURE_DEFAULT
    out[other] = np.where(u[other] < p[0], 0, np.where(u[other] < p[0] + p[1], 1, 2))
    return out


IIN_SERIALS = 10_000
"""Serial numbers of the IIN (four digits) per birth date and sex."""


def issue_iins(
    birth: np.ndarray, male: np.ndarray, chunk: int, n_chunks: int, issued: dict[int, int]
) -> np.ndarray:
    """Unique IINs for people of one chunk, nationally unique without coordination between chunks.

    Of the serials of a (birth day, sex), chunk ``c`` owns ``c``, ``c + n_chunks``, ``c + 2·n_chunks``
    …; its people take them in turn, skipping serials whose check digit cannot be issued. ``issued``
    counts the serials the chunk has given out per (birth day, sex) key so far and is updated, so
    people born later in the run get the next ones.
    """
    n = len(birth)
    if n == 0:
        return np.zeros(0, np.int64)
    key = birth.astype(np.int64) * 2 + male
    order = np.argsort(key, kind="stable")
    sk = key[order]
    newgrp = np.r_[True, sk[1:] != sk[:-1]]
    starts = np.flatnonzero(newgrp)
    keys = sk[starts].tolist()
    before = np.array([issued.get(k, 0) for k in keys], np.int64)
    sizes = np.diff(np.r_[starts, n])
    issued.update(zip(keys, (before + sizes).tolist(), strict=True))
    grp = np.cumsum(newgrp) - 1
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - starts[grp] + before[grp]

    dates = birth.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    century = np.select([years < 1900, years < 2000], [1, 3], 5) + (~np.asarray(male, bool)).astype(np.int64)
    head = ((years % 100) * 10_000 + months * 100 + days) * 10 + century

    out = np.full(n, -1, np.int64)
    passed = np.zeros(n, np.int64)  # issuable serials of the chunk passed so far
    todo = np.arange(n)
    step = 0
    while len(todo):
        serial = chunk + step * n_chunks
        if serial >= IIN_SERIALS:
            raise ValueError("IIN serials of a birth date exhausted: too many people per chunk and date")
        first11 = head[todo] * 10_000 + serial
        check = iinlib.check_digits_array(iinlib.digits_array(first11 * 10)[:, :11])
        ok = check >= 0
        hit = ok & (passed[todo] == rank[todo])
        out[todo[hit]] = first11[hit] * 10 + check[hit]
        passed[todo] += ok
        todo = todo[~hit]
        step += 1
    return out


PHONE_PREFIXES = np.array([700, 701, 702, 705, 707, 708, 747, 771, 775, 776, 777, 778])
_PHONE_SPACE = len(PHONE_PREFIXES) * 10_000_000


def _phones(rng: np.random.Generator, chunk: int, n: int, n_chunks: int) -> np.ndarray:
    """Kazakh mobile numbers (national significant number 7XXXXXXXXX), unique in the whole nation.

    Each chunk owns a contiguous block of a 120-million-number space, which a fixed affine bijection
    scatters over the prefixes and subscriber numbers.
    """
    stride = _PHONE_SPACE // n_chunks
    if n > stride:
        raise ValueError("too many people per chunk for the phone-number space; use smaller chunks")
    x = chunk * stride + int(rng.integers(0, stride - n + 1)) + rng.permutation(n).astype(np.int64)
    y = (x * 7_919_021 + 1_234_567) % _PHONE_SPACE  # 7,919,021 is coprime with the space
    return PHONE_PREFIXES[y // 10_000_000].astype(np.int64) * 10_000_000 + y % 10_000_000


def _historic_acts(b: _Builder, events: Events, birth, death, mother, father, born_abroad) -> None:
    """Civil acts that happened before the start: births, marriages, divorces, deaths, guardianship."""
    kz = np.flatnonzero(~born_abroad)
    events.add("acts", int(Act.BIRTH), birth[kz].astype(np.int64), kz, mother[kz], father[kz])
    for h, w, d in b.spouse_pairs:
        events.add("acts", int(Act.MARRIAGE), d, h, w, -1)
    for h, w, m, d in b.divorced_pairs:
        events.add("acts", int(Act.MARRIAGE), m, h, w, -1)
        events.add("acts", int(Act.DIVORCE), np.maximum(d, m + 30), h, w, -1)
    dead = np.flatnonzero(death < b.start_day)
    events.add("acts", int(Act.DEATH), death[dead].astype(np.int64), dead, -1, -1)
    for ward, guardian, day in b.guardianships:
        events.add("acts", int(Act.GUARDIANSHIP), day, ward, guardian, -1)
