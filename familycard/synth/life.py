"""Life over time: month by month, people are born, marry, divorce, move, lose and find jobs, fall ill,
drop out of school, fall into debt, suffer violence, receive support, and die.

Each step is vectorised over the whole chunk; only structural events (a new family, a newborn) touch
the arrays' sizes. Families carry an unobserved disadvantage (``z``) that makes hardships cluster, as
they do in life, and an unobserved resilience (``effect``) that no agency records.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from familycard.geo.territory import REGIONS, build_territory
from familycard.identity import iin as iinlib
from familycard.synth import naming
from familycard.synth.population import YEAR, issue_iins
from familycard.synth.world import (
    ALIVE,
    Act,
    Archetype,
    Emp,
    HardCase,
    Migration,
    Role,
    World,
    spread_streets,
)

# region wage multipliers (oil regions and the capitals pay more)
_WAGE_REGION = {
    "23": 1.6,
    "47": 1.45,
    "71": 1.4,
    "75": 1.35,
    "62": 1.2,
    "35": 1.05,
    "55": 1.0,
    "63": 1.0,
    "15": 0.95,
    "27": 0.95,
    "10": 0.85,
    "11": 0.85,
    "39": 0.85,
    "59": 0.8,
    "43": 0.85,
    "19": 0.85,
    "33": 0.8,
    "31": 0.75,
    "61": 0.7,
    "79": 0.8,
}
MEDIAN_WAGE = 310_000.0

POLICE_DV, POLICE_PROTECTIVE_ORDER, POLICE_JUVENILE, POLICE_RELEASED = 1, 2, 3, 4
SUPPORT_CODES = {
    "tsa": 1,
    "large_family": 2,
    "birth_grant": 3,
    "childcare": 4,
    "disability": 5,
    "breadwinner": 6,
    "pension": 7,
    "employment_programme": 8,
}
LEVELS = ("A", "B", "C", "D", "E")


@cache
def benefits() -> dict[str, Any]:
    """The simulation's support parameters (``data/benefits.toml``)."""
    text = resources.files("familycard.synth").joinpath("data/benefits.toml").read_text("utf-8")
    return tomllib.loads(text)


def poverty_line() -> float:
    b = benefits()
    base, tsa = b["base"], b["tsa"]
    return max(
        tsa["poverty_line_share_of_median"] * base["median_income_per_capita"],
        tsa["poverty_line_min_share_of_pm"] * base["subsistence_minimum"],
    )


class Life:
    """Runs the monthly simulation of one chunk in place."""

    def __init__(self, world: World, rng: np.random.Generator, stale_rate: float, n_chunks: int) -> None:
        self.w = world
        self.rng = rng
        self.stale_rate = stale_rate
        self.n_chunks = n_chunks
        terr = build_territory()
        self.terr = terr
        codes = np.array([r.code for r in REGIONS])
        self.wage_mult_by_settlement = np.array([_WAGE_REGION[c] for c in codes])[terr.settlement_region]
        fcap = len(world.families.archetype)
        self.z = np.zeros(fcap, np.float32)  # family disadvantage
        self.in_programme = np.zeros(len(world.persons.sex), bool)
        self.orphan_benefit = np.zeros(len(world.persons.sex), bool)
        self.spouse = np.full(len(world.persons.sex), -1, np.int64)
        self.next_employer = world.chunk * 100_000
        first = np.datetime64(int(world.start_day), "D").astype("datetime64[M]")
        months = first + np.arange(world.months + 1)
        self.month_starts = months.astype("datetime64[D]").astype(np.int64)

    # ---- helpers ---------------------------------------------------------------------------------
    def age(self, t: int) -> np.ndarray:
        w = self.w
        day = int(self.month_starts[t]) + 14
        return (day - w.persons.birth[: w.persons.n]) / YEAR

    def day_in_month(self, t: int, n: int) -> np.ndarray:
        """Days within calendar month ``t`` (so an event belongs to the month's delivery)."""
        start, end = int(self.month_starts[t]), int(self.month_starts[t + 1])
        return self.rng.integers(start, end, n).astype(np.int64)

    def alive_in_family(self, t: int) -> np.ndarray:
        return self.w.panels.family[t, : self.w.persons.n] >= 0

    def settlement_of_person(self, t: int) -> np.ndarray:
        a = self.w.panels.address[t, : self.w.persons.n]
        return np.where(a >= 0, self.w.addresses.settlement[np.maximum(a, 0)], -1)

    # ---- run -------------------------------------------------------------------------------------
    def run(self) -> None:
        self._spouses_from_acts()
        self._init_conditions()
        self._support(0)
        self._latent(0)
        for t in range(1, self.w.months):
            self._carry(t)
            self._deaths(t)
            self._births(t)
            self._marriages(t)
            self._divorces(t)
            self._leave_home(t)
            self._moves(t)
            self._labour(t)
            self._health(t)
            self._school(t)
            self._debts(t)
            self._violence(t)
            self._support(t)
            self._latent(t)

    def _spouses_from_acts(self) -> None:
        acts = self.w.events.table("acts")
        order = np.argsort(acts["day"], kind="stable")
        for typ in (Act.MARRIAGE, Act.DIVORCE):
            m = acts["type"][order] == typ
            h, wf = acts["a"][order][m], acts["b"][order][m]
            if typ == Act.MARRIAGE:
                self.spouse[h] = wf
                self.spouse[wf] = h
        # divorces come after their marriage: clear
        m = acts["type"] == Act.DIVORCE
        h, wf = acts["a"][m], acts["b"][m]
        self.spouse[h] = -1
        self.spouse[wf] = -1
        # partners (unmarried) count as couples for births and separations
        p = self.w.persons
        fam, role = self.w.panels.family[0, : p.n], self.w.panels.role[0, : p.n]
        partner = np.flatnonzero(role == Role.PARTNER)
        head_of = np.full(len(self.w.families.archetype), -1, np.int64)
        heads = np.flatnonzero((role == Role.HEAD) & (fam >= 0))
        head_of[fam[heads]] = heads
        self.spouse[partner] = head_of[fam[partner]]
        self.spouse[head_of[fam[partner]]] = partner
        dead = p.death[: p.n] <= self.w.start_day
        s = self.spouse[: p.n]
        s[(s >= 0) & dead[np.maximum(s, 0)]] = -1

    # ---- initial conditions ----------------------------------------------------------------------
    def _init_conditions(self) -> None:
        w, rng, P = self.w, self.rng, self.w.panels
        p = w.persons
        n, nf = p.n, w.families.n
        F = w.families
        self.z[:nf] = rng.normal(0, 1, nf)
        F.effect[:nf] = rng.normal(0, 0.25, nf)
        fam = P.family[0, :n]
        live = fam >= 0
        z = np.where(live, self.z[np.maximum(fam, 0)], 0)
        age = self.age(0)
        sett = self.settlement_of_person(0)
        rural = np.where(sett >= 0, self.terr.settlement_rural[np.maximum(sett, 0)], False)
        male = p.sex[:n] == 1
        emp = self._draw_status(age, male, rural, z, fam, live)
        P.emp[0, :n] = emp
        self._set_incomes(0, np.arange(n), emp, z, sett, rural)
        # health
        dis_p = np.where(age < 18, 0.012, np.where(age < 62, 0.026, 0.055)) * np.exp(0.25 * z)
        has_dis = live & (rng.random(n) < dis_p)
        grp = rng.choice([1, 2, 3], n, p=[0.1, 0.45, 0.45]).astype(np.int8)
        P.disability[0, :n] = np.where(has_dis, np.where(age < 18, 4, grp), 0)
        chronic_p = np.clip(0.04 + 0.0075 * age, 0, 0.8) * np.exp(0.15 * z)
        P.chronic[0, :n] = live & (rng.random(n) < chronic_p)
        # school
        P.school[0, :n] = self._school_status(age, z, live)
        # debts
        adult = live & (age >= 21) & (age < 70)
        borrower = adult & (rng.random(n) < 0.38)
        P.loan[0, :n] = np.where(borrower, rng.lognormal(np.log(600_000), 0.9, n), 0).astype(np.float32)
        P.overdue[0, :n] = borrower & (rng.random(n) < 0.06 * np.exp(0.5 * z))
        P.enforcement[0, :n] = P.overdue[0, :n] & (rng.random(n) < 0.45)
        # families: home, rooms, vehicles, land, livestock, utilities
        hf = np.arange(nf)
        fz = self.z[:nf]
        fsett = w.addresses.settlement[hf]
        frural = self.terr.settlement_rural[fsett]
        F.owns_home[:nf] = rng.random(nf) < np.clip(0.80 - 0.08 * fz + 0.08 * frural, 0.2, 0.97)
        F.housing_queue[:nf] = ~F.owns_home[:nf] & (rng.random(nf) < 0.30)
        F.rooms[:nf] = np.clip(rng.poisson(np.where(frural, 3.2, 2.4), nf), 1, 8)
        F.utilities_debt[:nf] = np.where(
            rng.random(nf) < 0.05 * np.exp(0.6 * fz), rng.lognormal(np.log(45_000), 0.8, nf), 0
        ).astype(np.float32)
        F.vehicles[:nf] = np.clip(rng.poisson(np.clip(0.45 - 0.15 * fz + 0.1 * frural, 0.02, 2), nf), 0, 3)
        F.livestock[:nf] = np.where(frural & (rng.random(nf) < 0.5), rng.geometric(0.08, nf), 0).astype(
            np.int32
        )
        F.land_ha[:nf] = np.where(frural & (rng.random(nf) < 0.35), rng.lognormal(np.log(0.25), 1.2, nf), 0)
        # informal income in rural areas comes largely from livestock
        head_rural_extra = F.livestock[:nf] * 2_500.0
        heads = np.flatnonzero(live & (P.role[0, :n] == Role.HEAD))
        P.informal[0, heads] += head_rural_extra[fam[heads]].astype(np.float32)

    def _draw_status(self, age, male, rural, z, fam, live) -> np.ndarray:
        rng = self.rng
        n = len(age)
        u = rng.random(n)
        emp = np.full(n, Emp.INACTIVE, np.int8)
        retired = np.where(male, age >= 63, age >= 61)
        # working-age probabilities (cumulative): employee, self-employed, informal,
        # registered unemployed, unregistered unemployed
        shift = np.clip(0.07 * z, -0.15, 0.2)
        p_emp = np.where(rural, 0.48, 0.64) - shift - np.where(male, 0, 0.05)
        p_self = np.where(rural, 0.17, 0.09) + 0.0 * z
        p_inf = np.where(rural, 0.11, 0.07) + shift * 0.5
        p_ureg = 0.018 + np.clip(0.01 * z, -0.01, 0.03)
        p_un = 0.022 + np.clip(0.01 * z, -0.01, 0.03)
        c1 = p_emp
        c2 = c1 + p_self
        c3 = c2 + p_inf
        c4 = c3 + p_ureg
        c5 = c4 + p_un
        wa = np.select([u < c1, u < c2, u < c3, u < c4, u < c5], [1, 2, 3, 4, 5], 9).astype(np.int8)
        # mothers of small children care at home more often
        emp = np.where(live, wa, Emp.NONE).astype(np.int8)
        student = (age >= 16) & (age < 23) & (rng.random(n) < np.where(age < 18, 0.97, 0.45))
        emp[student] = Emp.STUDENT
        emp[age < 16] = Emp.NONE
        working_pensioner = rng.random(n) < 0.12
        emp[retired & ~working_pensioner] = Emp.PENSIONER
        emp[retired & working_pensioner] = Emp.EMPLOYEE
        self.working_pensioner = retired & working_pensioner
        carer = (~male) & (age >= 20) & (age < 45) & (rng.random(n) < 0.06)
        emp[carer & (emp != Emp.STUDENT) & ~retired] = Emp.CARER
        emp[~live] = Emp.NONE
        return emp

    def _set_incomes(self, t, idx, emp, z, sett, rural) -> None:
        rng, P = self.rng, self.w.panels
        k = len(idx)
        mult = np.where(sett >= 0, self.wage_mult_by_settlement[np.maximum(sett, 0)], 1.0)
        mult = mult * np.where(rural, 0.8, 1.0) * np.exp(-0.18 * z)
        wage = rng.lognormal(np.log(MEDIAN_WAGE), 0.55, k) * mult
        declared = rng.lognormal(np.log(140_000), 0.7, k) * mult
        informal = rng.lognormal(np.log(120_000), 0.6, k) * mult
        P.wage[t, idx] = np.select([emp == Emp.EMPLOYEE, emp == Emp.SELF_EMPLOYED], [wage, declared], 0)
        P.informal[t, idx] = np.where(emp == Emp.INFORMAL, informal, 0) + np.where(
            np.isin(emp, [Emp.UNEMPLOYED, Emp.INACTIVE]) & (rng.random(k) < 0.5), informal * 0.4, 0
        )
        p = self.w.persons
        age = (int(self.month_starts[t]) + 14 - p.birth[idx]) / YEAR
        ret = (emp == Emp.PENSIONER) | (
            np.where(p.sex[idx] == 1, age >= 63, age >= 61) & (emp == Emp.EMPLOYEE)
        )
        P.pension[t, idx] = np.where(ret, rng.lognormal(np.log(benefits()["pension"]["median"]), 0.25, k), 0)
        has_employer = emp == Emp.EMPLOYEE
        new_emp = self.next_employer + rng.integers(0, 4000, k)
        P.employer[t, idx] = np.where(has_employer, new_emp, -1)

    def _school_status(self, age, z, live) -> np.ndarray:
        rng = self.rng
        n = len(age)
        s = np.zeros(n, np.int8)
        school_age = live & (age >= 6.5) & (age < 18)
        not_enrolled = rng.random(n) < np.clip(0.006 * np.exp(0.8 * z) * np.where(age >= 15, 3, 1), 0, 0.5)
        s[school_age] = np.where(not_enrolled[school_age], 2, 1)
        pre = live & (age >= 3) & (age < 6.5) & (rng.random(n) < 0.8)
        s[pre] = 3
        return s

    # ---- monthly steps ---------------------------------------------------------------------------
    def _carry(self, t: int) -> None:
        P = self.w.panels
        for name in P.__dataclass_fields__:
            arr = getattr(P, name)
            arr[t] = arr[t - 1]
        P.benefits[t] = 0
        self.w.latent[t] = self.w.latent[t - 1]
        self.w.level[t] = self.w.level[t - 1]

    def _new_people(self, k: int) -> np.ndarray:
        p = self.w.persons
        if p.n + k > len(p.sex):
            raise RuntimeError("chunk person capacity exceeded; raise the growth margin")
        idx = np.arange(p.n, p.n + k)
        p.n += k
        return idx

    def _new_families(self, k: int, arche: Archetype, t: int) -> np.ndarray:
        F = self.w.families
        if F.n + k > len(F.archetype):
            raise RuntimeError("chunk family capacity exceeded; raise the growth margin")
        idx = np.arange(F.n, F.n + k)
        F.n += k
        F.archetype[idx] = arche
        F.created_t[idx] = t
        F.effect[idx] = self.rng.normal(0, 0.25, k)
        self.z[idx] = self.rng.normal(0.2, 1, k)
        F.rooms[idx] = np.clip(self.rng.poisson(2.2, k), 1, 6)
        F.owns_home[idx] = self.rng.random(k) < 0.45
        F.housing_queue[idx] = ~F.owns_home[idx] & (self.rng.random(k) < 0.35)
        return idx

    def _new_addresses(self, k: int, settlement: np.ndarray) -> np.ndarray:
        A = self.w.addresses
        if A.n + k > len(A.settlement):
            raise RuntimeError("chunk address capacity exceeded; raise the growth margin")
        idx = np.arange(A.n, A.n + k)
        A.n += k
        rng = self.rng
        A.settlement[idx] = settlement
        A.street[idx] = spread_streets(rng.integers(1, 400, k), settlement, self.w.aid(idx), A.blocks)
        A.house[idx] = rng.integers(1, 250, k)
        rural = self.terr.settlement_rural[settlement]
        A.flat[idx] = np.where(~rural & (rng.random(k) < 0.7), rng.integers(1, 300, k), 0)
        return idx

    def _relocate(self, t: int, people: np.ndarray, addr: np.ndarray, family_level_stale: np.ndarray) -> None:
        """Move ``people`` to ``addr``; their registration follows unless the move stays unregistered."""
        P, p = self.w.panels, self.w.persons
        P.address[t, people] = addr
        follow = ~family_level_stale & ~p.never_registered[people]
        P.reg_address[t, people[follow]] = addr[follow]

    def _deaths(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        live = P.family[t, :n] >= 0
        age = self.age(t)
        q = np.where(age < 1, 0.008, np.exp(-10.2 + 0.092 * np.maximum(age, 5)))
        q = q * np.where(p.sex[:n] == 1, 1.35, 0.8) * (1 + 0.8 * (P.disability[t, :n] == 1))
        dies = live & (rng.random(n) < q / 12)
        idx = np.flatnonzero(dies)
        if not len(idx):
            return
        day = self.day_in_month(t, len(idx))
        p.death[idx] = day.astype(np.int32)
        fam = P.family[t, idx].copy()
        for arr in (P.family, P.address, P.reg_address):
            arr[t, idx] = -1
        P.emp[t, idx] = Emp.NONE
        P.wage[t, idx] = P.informal[t, idx] = P.pension[t, idx] = 0
        w.events.add("acts", int(Act.DEATH), day, idx, -1, -1)
        sp = self.spouse[idx]
        self.spouse[sp[sp >= 0]] = -1
        self.spouse[idx] = -1
        # children who lost a parent receive the loss-of-breadwinner benefit
        kids = np.flatnonzero(np.isin(p.mother[:n], idx) | np.isin(p.father[:n], idx))
        self.orphan_benefit[kids] = True
        # a family left with only children gets a guardian (an aunt moves in, under guardianship)
        fam_alive = P.family[t, :n]
        adults = np.bincount(
            np.maximum(fam_alive, 0), weights=(fam_alive >= 0) & (age >= 18), minlength=w.families.n
        )
        members = np.bincount(np.maximum(fam_alive, 0), weights=(fam_alive >= 0), minlength=w.families.n)
        orphaned = np.unique(fam[(adults[fam] == 0) & (members[fam] > 0)])
        if len(orphaned):
            g = self._new_people(len(orphaned))
            p.sex[g] = 2
            p.birth[g] = (int(self.month_starts[t]) - rng.uniform(30, 50, len(g)) * YEAR).astype(np.int32)
            p.death[g] = ALIVE
            p.created_t[g] = t
            p.culture[g] = self._any_member_attr(t, orphaned, p.culture)
            p.stem[g] = self._any_member_attr(t, orphaned, p.stem)
            sur, giv, pat, gidx = naming.newborn(rng, p.culture[g], p.sex[g], p.stem[g], None)
            p.surname[g], p.given[g], p.patronymic[g], p.given_idx[g] = sur, giv, pat, gidx
            p.mother[g] = p.father[g] = -1
            p.migration[g] = Migration.CITIZEN
            p.iin[g] = self._guardian_iins(g)
            P.family[t, g] = orphaned
            P.role[t, g] = Role.RELATIVE
            home = self._family_address(t, orphaned)
            P.address[t, g] = home
            P.reg_address[t, g] = home
            P.emp[t, g] = Emp.EMPLOYEE
            self._set_incomes(
                t,
                g,
                np.full(len(g), Emp.EMPLOYEE, np.int8),
                np.zeros(len(g)),
                np.where(home >= 0, w.addresses.settlement[np.maximum(home, 0)], -1),
                np.zeros(len(g), bool),
            )
            P.insured[t, g] = True
            wards = np.flatnonzero(np.isin(fam_alive, orphaned))
            guardian_of = np.full(w.families.n, -1, np.int64)
            guardian_of[orphaned] = g
            w.events.add(
                "acts",
                int(Act.GUARDIANSHIP),
                self.day_in_month(t, len(wards)),
                wards,
                guardian_of[fam_alive[wards]],
                -1,
            )

    def _any_member_attr(self, t: int, fams: np.ndarray, attr: np.ndarray) -> np.ndarray:
        P, p = self.w.panels, self.w.persons
        fam = P.family[t, : p.n]
        first = np.full(self.w.families.n, -1, np.int64)
        members = np.flatnonzero(fam >= 0)
        first[fam[members][::-1]] = members[::-1]
        src = first[fams]
        return attr[np.maximum(src, 0)]

    def _guardian_iins(self, new: np.ndarray) -> np.ndarray:
        """IINs for adults who join mid-run: serial slots from the top of the chunk's range, so they
        never meet the slots handed out by birth-date rank."""
        p = self.w.persons
        existing = set(p.iin[: new.min()].tolist())
        out = np.full(len(new), -1, np.int64)
        top = 2500 // self.n_chunks - 1
        for i, person in enumerate(new.tolist()):
            for r in range(top, -1, -1):
                slot = np.array([r * self.n_chunks + self.w.chunk], np.int64)
                v = int(iinlib.make_array(p.birth[[person]], p.sex[[person]] == 1, slot)[0])
                if v >= 0 and v not in existing:
                    out[i] = v
                    existing.add(v)
                    break
        return out

    def _family_address(self, t: int, fams: np.ndarray) -> np.ndarray:
        return self._any_member_attr(t, fams, self.w.panels.address[t])

    def _births(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        age = self.age(t)
        fam = P.family[t, :n]
        women = (fam >= 0) & (p.sex[:n] == 2) & (age >= 18) & (age < 46)
        partnered = self.spouse[:n] >= 0
        asfr = np.interp(age, [18, 22, 27, 32, 37, 42, 46], [0.05, 0.17, 0.19, 0.15, 0.08, 0.02, 0.0])
        asfr = asfr * np.where(partnered, 1.0, 0.12)
        # recent mothers rarely give birth again within a year
        recent = np.zeros(n, bool)
        if t >= 1:
            kids_new = np.flatnonzero(p.created_t[:n] >= max(0, t - 12))
            recent[p.mother[kids_new][p.mother[kids_new] >= 0]] = True
        mothers = np.flatnonzero(women & ~recent & (rng.random(n) < asfr / 12))
        if not len(mothers):
            return
        twins = rng.random(len(mothers)) < TWIN_BIRTHS
        mom = np.concatenate([mothers, mothers[twins]])
        kids = self._new_people(len(mom))
        day = self.day_in_month(t, len(mothers))
        day = np.concatenate([day, day[twins]])
        dad = self.spouse[mom]
        p.sex[kids] = rng.integers(1, 3, len(kids))
        p.birth[kids] = day.astype(np.int32)
        p.death[kids] = ALIVE
        p.mother[kids] = mom
        p.father[kids] = dad
        p.created_t[kids] = t
        p.culture[kids] = p.culture[mom]
        parent = np.where(dad >= 0, dad, mom)
        father_given: np.ndarray = np.where(dad >= 0, p.given[np.maximum(dad, 0)], "")
        if (dad < 0).any():
            drawn = naming.given_text(
                naming.draw_given(rng, p.culture[kids], np.ones(len(kids), np.int8)),
                np.ones(len(kids), np.int8),
            )
            father_given = np.where(dad >= 0, father_given, drawn)
        sur, giv, pat, gidx = naming.newborn(rng, p.culture[kids], p.sex[kids], p.stem[parent], father_given)
        p.surname[kids], p.given[kids], p.patronymic[kids] = sur, giv, pat
        p.stem[kids], p.given_idx[kids] = p.stem[parent], gidx
        p.iin[kids] = issue_iins(p.birth[kids], p.sex[kids] == 1, w.chunk, self.n_chunks, w.iin_serials)
        p.migration[kids] = Migration.CITIZEN
        P.family[t, kids] = P.family[t, mom]
        P.role[t, kids] = np.where(P.role[t, mom] == Role.CHILD_IN_LAW, Role.GRANDCHILD, Role.CHILD)
        P.address[t, kids] = P.address[t, mom]
        P.reg_address[t, kids] = P.reg_address[t, mom]
        P.insured[t, kids] = True
        w.events.add("acts", int(Act.BIRTH), day, kids, mom, dad)
        fams = P.family[t, mom[len(mothers) :]]
        w.families.hard[fams] |= int(HardCase.TWINS)
        # one-off birth grant
        order = self._birth_order(mom)
        b = benefits()["birth"]
        amount = np.where(order <= 3, b["one_off_1_to_3"], b["one_off_from_4"]).astype(np.float64)
        self._pay(
            t, P.family[t, kids[: len(mothers)]], kids[: len(mothers)], "birth_grant", amount[: len(mothers)]
        )
        # mothers leave work for childcare
        working = np.isin(P.emp[t, mothers], [Emp.EMPLOYEE, Emp.SELF_EMPLOYED, Emp.INFORMAL])
        leave = mothers[~working | (rng.random(len(mothers)) < 0.3)]
        P.emp[t, leave] = Emp.CARER
        P.wage[t, leave] = 0
        P.informal[t, leave] = 0

    def _birth_order(self, mothers: np.ndarray) -> np.ndarray:
        p = self.w.persons
        counts = np.bincount(np.maximum(p.mother[: p.n], 0), weights=p.mother[: p.n] >= 0, minlength=p.n)
        return counts[mothers]

    def _marriages(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        age = self.age(t)
        fam = P.family[t, :n]
        role = P.role[t, :n]
        arche = w.families.archetype[np.maximum(fam, 0)]
        single_home = (role == Role.HEAD) & np.isin(
            arche, [Archetype.SINGLE_ADULT, Archetype.EX_PARTNER_ALONE]
        )
        single_home &= (P.family[t] == P.family[t])[:n]
        eligible = (
            (fam >= 0)
            & (self.spouse[:n] < 0)
            & (age >= 20)
            & (age < 45)
            & ((role == Role.ADULT_CHILD) | single_home)
        )
        eligible &= p.migration[:n] == Migration.CITIZEN
        if single_home.any():
            fam_size = np.bincount(np.maximum(fam, 0), weights=fam >= 0, minlength=w.families.n)
            eligible &= ~single_home | (fam_size[np.maximum(fam, 0)] == 1)
        pick = eligible & (rng.random(n) < 0.011)
        men = np.flatnonzero(pick & (p.sex[:n] == 1))
        women = np.flatnonzero(pick & (p.sex[:n] == 2))
        k = min(len(men), len(women))
        if k == 0:
            return
        sett = self.settlement_of_person(t)
        region = self.terr.settlement_region[np.maximum(sett, 0)]
        men = men[np.lexsort((age[men], region[men]))][:k]
        women = women[np.lexsort((age[women], region[women]))][:k]
        day = self.day_in_month(t, k)
        w.events.add("acts", int(Act.MARRIAGE), day, men, women, -1)
        self.spouse[men] = women
        self.spouse[women] = men
        stale = rng.random(k) < self.stale_rate
        # the bride moves into the groom's parents' home (a daughter-in-law), or the couple sets up home
        with_parents = (role[men] == Role.ADULT_CHILD) & (rng.random(k) < 0.3)
        into = men[with_parents]
        brides = women[with_parents]
        old_fam_b = fam[brides]
        P.family[t, brides] = fam[into]
        P.role[t, brides] = Role.CHILD_IN_LAW
        self._relocate(t, brides, P.address[t, into], stale[with_parents])
        w.families.hard[fam[into]] |= int(HardCase.THREE_GENERATION)
        self._close_if_empty(t, old_fam_b)
        new = ~with_parents
        m2, w2 = men[new], women[new]
        if len(m2):
            old = np.concatenate([fam[m2], fam[w2]])
            nf = self._new_families(len(m2), Archetype.NEWLY_FORMED, t)
            addr = self._new_addresses(len(m2), np.maximum(sett[m2], 0).astype(np.int32))
            P.family[t, m2] = nf
            P.family[t, w2] = nf
            P.role[t, m2] = Role.HEAD
            P.role[t, w2] = Role.SPOUSE
            self._relocate(t, m2, addr, stale[new])
            self._relocate(t, w2, addr, stale[new])
            w.families.hard[nf] |= np.where(stale[new], int(HardCase.STALE_ADDRESS), 0)
            self._close_if_empty(t, old)

    def _close_if_empty(self, t: int, fams: np.ndarray) -> None:
        """Nothing to do: a family with no members simply stops existing (kept for clarity)."""

    def _divorces(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        fam = P.family[t, :n]
        s = self.spouse[:n]
        men = np.flatnonzero((p.sex[:n] == 1) & (s >= 0) & (fam >= 0))
        men = men[fam[s[men]] == fam[men]]
        married = P.role[t, s[men]] == Role.SPOUSE
        split = rng.random(len(men)) < np.where(married, 0.0008, 0.0025)
        men = men[split]
        if not len(men):
            return
        wives = s[men]
        m_married = married[split]
        day = self.day_in_month(t, len(men))
        w.events.add("acts", int(Act.DIVORCE), day[m_married], men[m_married], wives[m_married], -1)
        self.spouse[men] = -1
        self.spouse[wives] = -1
        old = fam[men]
        # he leaves; she stays with the children and becomes the head
        P.role[t, wives] = np.where(P.role[t, wives] == Role.CHILD_IN_LAW, Role.CHILD_IN_LAW, Role.HEAD)
        nf = self._new_families(len(men), Archetype.EX_PARTNER_ALONE, t)
        sett = self.settlement_of_person(t)[men]
        addr = self._new_addresses(len(men), np.maximum(sett, 0).astype(np.int32))
        P.family[t, men] = nf
        P.role[t, men] = Role.HEAD
        stale = rng.random(len(men)) < self.stale_rate
        self._relocate(t, men, addr, stale)
        w.families.hard[old] |= int(HardCase.PARENT_ELSEWHERE)
        w.families.hard[nf] |= int(HardCase.PARENT_ELSEWHERE) | np.where(
            stale, int(HardCase.STALE_ADDRESS), 0
        )

    def _leave_home(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        age = self.age(t)
        fam = P.family[t, :n]
        leavers = np.flatnonzero(
            (fam >= 0)
            & (P.role[t, :n] == Role.ADULT_CHILD)
            & (self.spouse[:n] < 0)
            & (age >= 19)
            & (rng.random(n) < 0.006)
        )
        if not len(leavers):
            return
        nf = self._new_families(len(leavers), Archetype.SINGLE_ADULT, t)
        far = rng.random(len(leavers)) < 0.4
        sett = self.settlement_of_person(t)[leavers]
        sett = np.where(far, self.terr.sample_settlements(rng, len(leavers)), sett)
        addr = self._new_addresses(len(leavers), np.maximum(sett, 0).astype(np.int32))
        P.family[t, leavers] = nf
        P.role[t, leavers] = Role.HEAD
        stale = rng.random(len(leavers)) < self.stale_rate
        self._relocate(t, leavers, addr, stale)
        w.families.hard[nf] |= int(HardCase.MOVED) | np.where(stale, int(HardCase.STALE_ADDRESS), 0)

    def _moves(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        nf = w.families.n
        movers = np.flatnonzero(rng.random(nf) < 0.006)
        if not len(movers):
            return
        fam = P.family[t, : p.n]
        exists = np.bincount(np.maximum(fam, 0), weights=fam >= 0, minlength=nf) > 0
        movers = movers[exists[movers]]
        cur = self._family_address(t, movers)
        cur_sett = np.where(cur >= 0, w.addresses.settlement[np.maximum(cur, 0)], 0)
        far = rng.random(len(movers)) < 0.4
        sett = np.where(far, self.terr.sample_settlements(rng, len(movers)), cur_sett).astype(np.int32)
        addr = self._new_addresses(len(movers), sett)
        stale = rng.random(len(movers)) < self.stale_rate
        new_addr = np.full(nf, -1, np.int64)
        new_addr[movers] = addr
        st = np.zeros(nf, bool)
        st[movers] = stale
        people = np.flatnonzero((fam >= 0) & np.isin(fam, movers))
        self._relocate(t, people, new_addr[fam[people]], st[fam[people]])
        w.families.hard[movers] |= int(HardCase.MOVED) | np.where(stale, int(HardCase.STALE_ADDRESS), 0)
        # a move can change the home situation
        w.families.owns_home[movers] = rng.random(len(movers)) < 0.6

    def _labour(self, t: int) -> None:
        rng, P, p = self.rng, self.w.panels, self.w.persons
        n = p.n
        fam = P.family[t, :n]
        live = fam >= 0
        z = np.where(live, self.z[np.maximum(fam, 0)], 0)
        age = self.age(t)
        male = p.sex[:n] == 1
        emp = P.emp[t, :n].copy()
        u = rng.random(n)
        sett = self.settlement_of_person(t)
        rural = np.where(sett >= 0, self.terr.settlement_rural[np.maximum(sett, 0)], False)
        retire_now = live & np.where(male, age >= 63, age >= 61) & ~np.isin(emp, [Emp.PENSIONER])
        retire_now &= u < 0.9
        lose = live & np.isin(emp, [Emp.EMPLOYEE, Emp.SELF_EMPLOYED]) & (u < 0.007 * np.exp(0.35 * z))
        lose_inf = live & (emp == Emp.INFORMAL) & (u < 0.01)
        upl = benefits()["employment_programme"]["job_finding_uplift"]
        find_p = 0.07 * np.exp(-0.2 * z) + np.where(self.in_programme[:n], upl, 0)
        job_seeker = live & np.isin(emp, [Emp.UNEMPLOYED, Emp.UNEMPLOYED_REGISTERED])
        find = job_seeker & (u < find_p)
        find_informal = job_seeker & ~find & (u < find_p + 0.03)
        register = live & (emp == Emp.UNEMPLOYED) & ~find & ~find_informal & (rng.random(n) < 0.08)
        come_of_age = live & (emp == Emp.NONE) & (age >= 16)
        grad = live & (emp == Emp.STUDENT) & (age >= 18) & (rng.random(n) < np.where(age >= 22.5, 0.3, 0.01))
        carer_back = live & (emp == Emp.CARER) & (rng.random(n) < 0.015)
        new_status = emp.copy()
        new_status[lose | lose_inf] = np.where(
            rng.random(int((lose | lose_inf).sum())) < 0.45, Emp.UNEMPLOYED_REGISTERED, Emp.UNEMPLOYED
        )
        new_status[find] = np.where(rng.random(int(find.sum())) < 0.8, Emp.EMPLOYEE, Emp.SELF_EMPLOYED)
        new_status[find_informal] = Emp.INFORMAL
        new_status[register] = Emp.UNEMPLOYED_REGISTERED
        new_status[come_of_age] = Emp.STUDENT
        new_status[grad | carer_back] = Emp.UNEMPLOYED
        new_status[retire_now] = Emp.PENSIONER
        changed = np.flatnonzero(new_status != emp)
        P.emp[t, changed] = new_status[changed]
        self._set_incomes(t, changed, new_status[changed], z[changed], sett[changed], rural[changed])
        # wage drift for the rest
        stay = live & (new_status == emp) & (emp == Emp.EMPLOYEE)
        P.wage[t, : p.n][stay] *= np.float32(1.004)
        self.in_programme[:n] &= P.emp[t, :n] == Emp.UNEMPLOYED_REGISTERED
        enrol_p = benefits()["employment_programme"]["monthly_enrolment_of_registered_unemployed"]
        enrol = (
            live
            & (P.emp[t, :n] == Emp.UNEMPLOYED_REGISTERED)
            & ~self.in_programme[:n]
            & (rng.random(n) < enrol_p)
        )
        self.in_programme[:n] |= enrol
        idx = np.flatnonzero(self.in_programme[:n])
        if len(idx):
            self._pay(
                t, fam[idx], idx, "employment_programme", np.zeros(len(idx)), effect=np.full(len(idx), upl)
            )

    def _health(self, t: int) -> None:
        rng, P, p = self.rng, self.w.panels, self.w.persons
        n = p.n
        live = P.family[t, :n] >= 0
        age = self.age(t)
        onset = live & ~P.chronic[t, :n] & (rng.random(n) < (0.0006 + 0.00004 * age))
        P.chronic[t, :n] |= onset
        dis_on = (
            live
            & (P.disability[t, :n] == 0)
            & (rng.random(n) < np.where(age < 18, 0.00005, 0.00018 + 0.000006 * age))
        )
        grp = rng.choice([1, 2, 3], n, p=[0.12, 0.43, 0.45])
        P.disability[t, :n] = np.where(dis_on, np.where(age < 18, 4, grp), P.disability[t, :n])
        lifted = live & (P.disability[t, :n] == 3) & (rng.random(n) < 0.006)
        P.disability[t, :n] = np.where(lifted, 0, P.disability[t, :n])
        grown = live & (P.disability[t, :n] == 4) & (age >= 18)
        P.disability[t, :n] = np.where(grown, 2, P.disability[t, :n])
        self._insurance(t)

    def _insurance(self, t: int) -> None:
        P, p = self.w.panels, self.w.persons
        n = p.n
        live = P.family[t, :n] >= 0
        emp = P.emp[t, :n]
        age = self.age(t)
        state_paid = (
            (age < 18)
            | np.isin(emp, [Emp.PENSIONER, Emp.STUDENT, Emp.UNEMPLOYED_REGISTERED, Emp.CARER])
            | (P.disability[t, :n] > 0)
        )
        paid = np.isin(emp, [Emp.EMPLOYEE, Emp.SELF_EMPLOYED])
        foreign = p.migration[:n] >= Migration.PERMANENT_PERMIT
        voluntary = self._stable_u(p.n, 11) < 0.25
        P.insured[t, :n] = live & ~foreign & (state_paid | paid | voluntary)

    def _stable_u(self, n: int, salt: int) -> np.ndarray:
        """Per-person uniform numbers that stay the same month after month."""
        x = (np.arange(n, dtype=np.uint64) + np.uint64(self.w.chunk * 1_000_003 + salt)) * np.uint64(
            0x9E3779B97F4A7C15
        )
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
        return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def _school(self, t: int) -> None:
        rng, P, p = self.rng, self.w.panels, self.w.persons
        n = p.n
        fam = P.family[t, :n]
        live = fam >= 0
        age = self.age(t)
        z = np.where(live, self.z[np.maximum(fam, 0)], 0)
        s = P.school[t, :n]
        start_school = live & (age >= 6.5) & (age < 18) & np.isin(s, [0, 3])
        s = np.where(start_school, 1, s)
        drop = live & (s == 1) & (age >= 13) & (rng.random(n) < 0.0012 * np.exp(0.7 * z))
        back = live & (s == 2) & (rng.random(n) < 0.04)
        s = np.where(drop, 2, np.where(back, 1, s))
        s = np.where(live & (age >= 18), 0, s)
        pre = live & (s == 0) & (age >= 3) & (age < 6.5) & (rng.random(n) < 0.03)
        s = np.where(pre, 3, s)
        P.school[t, :n] = s

    def _debts(self, t: int) -> None:
        rng, P, p, F = self.rng, self.w.panels, self.w.persons, self.w.families
        n = p.n
        fam = P.family[t, :n]
        live = fam >= 0
        z = np.where(live, self.z[np.maximum(fam, 0)], 0)
        has = P.loan[t, :n] > 0
        no_income = (P.wage[t, :n] == 0) & (P.pension[t, :n] == 0)
        new_overdue = (
            live
            & has
            & ~P.overdue[t, :n]
            & (rng.random(n) < 0.003 * np.exp(0.4 * z) * np.where(no_income, 3, 1))
        )
        P.overdue[t, :n] |= new_overdue
        enforce = live & P.overdue[t, :n] & ~P.enforcement[t, :n] & (rng.random(n) < 0.04)
        P.enforcement[t, :n] |= enforce
        repaid = live & has & (rng.random(n) < 0.02)
        P.loan[t, :n] = np.where(repaid, 0, P.loan[t, :n])
        P.overdue[t, :n] &= ~repaid
        P.enforcement[t, :n] &= ~repaid
        borrow = live & ~has & (self.age(t) >= 21) & (rng.random(n) < 0.012)
        P.loan[t, :n] = np.where(borrow, rng.lognormal(np.log(500_000), 0.9, n), P.loan[t, :n])
        nf = F.n
        fz = self.z[:nf]
        onset = (F.utilities_debt[:nf] == 0) & (rng.random(nf) < 0.003 * np.exp(0.6 * fz))
        F.utilities_debt[:nf] = np.where(onset, rng.lognormal(np.log(40_000), 0.8, nf), F.utilities_debt[:nf])
        cleared = (F.utilities_debt[:nf] > 0) & (rng.random(nf) < 0.05)
        F.utilities_debt[:nf] = np.where(cleared, 0, F.utilities_debt[:nf] * 1.02)

    def _violence(self, t: int) -> None:
        w, rng, P, p = self.w, self.rng, self.w.panels, self.w.persons
        n = p.n
        fam = P.family[t, :n]
        age = self.age(t)
        women = np.flatnonzero((fam >= 0) & (p.sex[:n] == 2) & (self.spouse[:n] >= 0) & (age >= 18))
        z = self.z[fam[women]]
        hit = women[rng.random(len(women)) < 0.0012 * np.exp(0.6 * z)]
        if len(hit):
            day = self.day_in_month(t, len(hit))
            w.events.add("police", POLICE_DV, day, hit, self.spouse[hit])
            order = rng.random(len(hit)) < 0.5
            w.events.add(
                "police", POLICE_PROTECTIVE_ORDER, day[order] + 1, hit[order], self.spouse[hit[order]]
            )
            w.families.dv_last[fam[hit]] = t
        teens = np.flatnonzero((fam >= 0) & (age >= 14) & (age < 18))
        tz = self.z[fam[teens]]
        off = teens[rng.random(len(teens)) < 0.0004 * np.exp(0.6 * tz)]
        if len(off):
            w.events.add("police", POLICE_JUVENILE, self.day_in_month(t, len(off)), off, -1)

    # ---- support ---------------------------------------------------------------------------------
    def _pay(
        self,
        t: int,
        fam: np.ndarray,
        person: np.ndarray,
        measure: str,
        amount: np.ndarray,
        effect: np.ndarray | None = None,
    ) -> None:
        if not len(fam):
            return
        P = self.w.panels
        has_person = person >= 0
        P.benefits[t, person[has_person]] += amount[has_person].astype(np.float32)
        self.w.events.add(
            "support",
            t,
            fam,
            person,
            SUPPORT_CODES[measure],
            amount.astype(np.float64),
            np.full(len(fam), np.nan) if effect is None else effect.astype(np.float64),
        )

    def _support(self, t: int) -> None:
        _w, P, p, F = self.w, self.w.panels, self.w.persons, self.w.families
        b = benefits()
        n, nf = p.n, F.n
        pm, mrp = b["base"]["subsistence_minimum"], b["base"]["mrp"]
        fam = P.family[t, :n]
        live = fam >= 0
        age = self.age(t)
        fidx = np.maximum(fam, 0)
        # pensions
        pens = np.flatnonzero(live & (P.pension[t, :n] > 0))
        self._pay(t, fam[pens], pens, "pension", P.pension[t, pens].astype(np.float64))
        P.benefits[t, pens] -= P.pension[t, pens]  # pensions are counted as pension, not benefits
        # disability benefit
        dis = np.flatnonzero(live & (P.disability[t, :n] > 0))
        g = P.disability[t, dis]
        a = age[dis]
        d = b["disability"]
        child_amt = np.where(
            a < 7,
            d["child_under_7"],
            np.select([g == 1, g == 2], [d["child_7_18"]["1"], d["child_7_18"]["2"]], d["child_7_18"]["3"]),
        )
        gen_amt = np.select([g == 1, g == 2], [d["general"]["1"], d["general"]["2"]], d["general"]["3"])
        amt = np.where(g == 4, child_amt, gen_amt) * pm
        self._pay(t, fam[dis], dis, "disability", amt)
        # large families (4+ minor children living together)
        minors = np.bincount(fidx, weights=live & (age < 18), minlength=nf)
        large = np.flatnonzero(minors >= 4)
        take = self._stable_fam_u(large, 3) < b["large_family"]["take_up"]
        large = large[take]
        k = minors[large].astype(int)
        table = b["large_family"]["mrp_by_children"]
        mrp_amt = np.where(
            k <= 7,
            np.array([table.get(str(min(max(x, 4), 7)), 0) for x in k]),
            table["7"] + (k - 7) * b["large_family"]["mrp_per_child_beyond_7"],
        )
        self._pay(t, large, np.full(len(large), -1), "large_family", mrp_amt * mrp)
        # childcare to age 1.5 for non-working mothers
        babies = np.flatnonzero(live & (age < 1.5) & (p.mother[:n] >= 0))
        moms = p.mother[babies]
        nonworking = ~np.isin(P.emp[t, moms], [Emp.EMPLOYEE, Emp.SELF_EMPLOYED])
        babies, moms = babies[nonworking], moms[nonworking]
        order = np.clip(self._birth_order(moms), 1, 4).astype(int)
        cc = b["childcare"]["mrp_by_order"]
        self._pay(t, fam[babies], moms, "childcare", np.array([cc[str(o)] for o in order]) * mrp)
        # loss of breadwinner
        orph = np.flatnonzero(live & self.orphan_benefit[:n] & (age < 18))
        if len(orph):
            dep = np.bincount(fam[orph], minlength=nf)[fam[orph]]
            bw = b["breadwinner"]["pm_by_dependants"]
            share = np.array([bw[str(min(int(x), 6))] for x in dep]) * pm / dep
            self._pay(t, fam[orph], orph, "breadwinner", share)
        # targeted social assistance: assessed on registered income, assigned quarterly
        if t % b["tsa"]["assigned_every_months"] == 0:
            self.tsa = self._tsa_assignment(t, fam, live, age)
        if getattr(self, "tsa", None) is not None:
            fams, amounts = self.tsa
            still = np.bincount(fidx, weights=live, minlength=nf)[fams] > 0
            self._pay(t, fams[still], np.full(int(still.sum()), -1), "tsa", amounts[still])

    def _stable_fam_u(self, fams: np.ndarray, salt: int) -> np.ndarray:
        x = (fams.astype(np.uint64) + np.uint64(self.w.chunk * 7_000_003 + salt)) * np.uint64(
            0x9E3779B97F4A7C15
        )
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
        return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def _tsa_assignment(self, t, fam, live, age):
        P, F, b = self.w.panels, self.w.families, benefits()
        nf = F.n
        n = len(fam)
        fidx = np.maximum(fam, 0)
        registered = P.wage[t, :n] + P.pension[t, :n] + P.benefits[t, :n]
        inc = np.bincount(fidx, weights=np.where(live, registered, 0), minlength=nf)
        size = np.bincount(fidx, weights=live, minlength=nf)
        kids16 = np.bincount(fidx, weights=live & (age >= 1) & (age < 6), minlength=nf)
        per = np.where(size > 0, inc / np.maximum(size, 1), np.inf)
        line = poverty_line()
        elig = np.flatnonzero((size > 0) & (per < line))
        take = self._stable_fam_u(elig, 17 + t // 3) < b["tsa"]["take_up"]
        elig = elig[take]
        amount = (line - per[elig]) * size[elig] + kids16[elig] * b["tsa"]["child_1_6_supplement_mrp"] * b[
            "base"
        ]["mrp"]
        return elig, amount

    # ---- latent welfare and the true level -------------------------------------------------------
    def _latent(self, t: int) -> None:
        w, P, p, F = self.w, self.w.panels, self.w.persons, self.w.families
        n, nf = p.n, F.n
        fam = P.family[t, :n]
        live = fam >= 0
        fidx = np.maximum(fam, 0)
        age = self.age(t)
        pm = benefits()["base"]["subsistence_minimum"]
        income = P.wage[t, :n] + P.informal[t, :n] + P.pension[t, :n] + P.benefits[t, :n]
        support = np.zeros(nf)
        sup = w.events._blocks["support"]
        for blk in reversed(sup):
            if int(blk[0][0]) != t:
                break
            fams_b, person_b, amt = blk[1], blk[2], blk[4]
            no_person = person_b < 0
            np.add.at(support, fams_b[no_person], amt[no_person])
        inc_f = np.bincount(fidx, weights=np.where(live, income, 0), minlength=nf) + support
        adults = np.bincount(fidx, weights=live & (age >= 18), minlength=nf)
        kids = np.bincount(fidx, weights=live & (age < 18), minlength=nf)
        size = adults + kids
        eq = np.maximum(1 + 0.7 * np.maximum(adults - 1, 0) + 0.5 * kids, 1)
        r = inc_f / eq / pm
        severe = np.bincount(fidx, weights=live & np.isin(P.disability[t, :n], [1, 2, 4]), minlength=nf)
        chronic = np.bincount(fidx, weights=live & P.chronic[t, :n], minlength=nf)
        enforce = np.bincount(fidx, weights=live & P.enforcement[t, :n], minlength=nf)
        dropout = np.bincount(fidx, weights=live & (P.school[t, :n] == 2), minlength=nf)
        homeless = np.bincount(fidx, weights=live & (P.address[t, :n] < 0), minlength=nf)
        dv_recent = (t - F.dv_last[:nf]) <= 6
        L = (
            np.log(np.maximum(r, 0.05))
            + F.effect[:nf]
            - 0.30 * (severe > 0)
            - 0.08 * np.minimum(chronic, 3)
            - 0.45 * dv_recent
            - 0.30 * (enforce > 0)
            - 0.25 * (dropout > 0)
            - 0.5 * (homeless > 0)
            - 0.15 * (F.utilities_debt[:nf] > 0)
            - 0.15 * (~F.owns_home[:nf])
            + 0.10 * (F.vehicles[:nf] > 0)
        )
        level = np.select([L < -1.2, L < -0.35, L < 0.35, L < 1.0], [4, 3, 2, 1], 0).astype(np.int8)
        level = np.where(dv_recent & (kids > 0) & (level < 4), np.maximum(level, 3), level)
        level = np.where(size > 0, level, -1)
        w.latent[t, :nf] = np.where(size > 0, L, np.nan)
        w.level[t, :nf] = level
        # the true effect of this month's cash support on each family's latent score
        for blk in reversed(sup):
            if int(blk[0][0]) != t:
                break
            fams_b, amt, eff = blk[1], blk[4], blk[5]
            without = np.maximum(inc_f[fams_b] - amt, 0)
            cash = np.log(np.maximum(inc_f[fams_b] / eq[fams_b] / pm, 0.05)) - np.log(
                np.maximum(without / eq[fams_b] / pm, 0.05)
            )
            blk[5][:] = np.where(np.isnan(eff), cash, eff)


TWIN_BIRTHS = 0.015
