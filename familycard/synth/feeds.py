"""The agency extracts of the synthetic nation, one declaration per feed.

Each feed reads the simulated world the way its agency sees it: the civil registry knows IINs, names
and acts; the address register knows registrations, not where people really live; the pension fund
knows contributions, not informal work. Formats, encodings, header languages and date styles differ
as they do between real agencies. ``docs/synthetic-nation.md`` lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from familycard.geo.territory import Territory, build_territory
from familycard.identity import iin as iinlib
from familycard.sources.formats import FileFormat
from familycard.synth.config import SynthConfig
from familycard.synth.extracts import Column, DateStyle, Feed, Rows, Script, format_dates, in_script, text
from familycard.synth.life import POLICE_DV, POLICE_JUVENILE, POLICE_PROTECTIVE_ORDER, SUPPORT_CODES
from familycard.synth.names import kk_to_ru
from familycard.synth.world import ALIVE, Act, Emp, Migration, World

CSV_SEMI_UTF8 = FileFormat(kind="csv", delimiter=";")
CSV_SEMI_1251 = FileFormat(
    kind="csv", delimiter=";", encoding="cp1251", unencodable="replace", line_ending="\r\n"
)
CSV_PIPE = FileFormat(kind="csv", delimiter="|")
CSV_COMMA = FileFormat(kind="csv", delimiter=",")
JSONL = FileFormat(kind="jsonl")
PARQUET = FileFormat(kind="parquet")

_NULL = pa.scalar(None, pa.string())
_SPACE = pa.scalar(" ", pa.string())


@dataclass
class Ctx:
    """The world of one chunk, with the lookups every feed needs.

    Person columns (IINs, names in each script, birth dates in each style) are rendered once per chunk
    as Arrow arrays with a trailing null that serves index -1, so a feed renders them with one ``take``.
    """

    world: World
    cfg: SynthConfig
    _cache: dict[tuple[str, str], pa.Array] = field(default_factory=dict, repr=False)
    _heads: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _events: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _runs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @cached_property
    def terr(self) -> Territory:
        return build_territory()

    @cached_property
    def month_starts(self) -> np.ndarray:
        return np.array([self.cfg.month_start_day(t) for t in range(self.cfg.months + 1)], np.int64)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Simulation month of a day (-1 before the start)."""
        return np.searchsorted(self.month_starts, day, side="right") - 1

    def end_day(self, t: int) -> int:
        return int(self.month_starts[t + 1] - 1)

    def pid(self, idx: np.ndarray) -> np.ndarray:
        return self.world.pid(idx)

    @cached_property
    def _periods(self) -> pa.Array:
        return pa.array([self.cfg.period(t) for t in range(self.cfg.months)], pa.string())

    def periods(self, t: np.ndarray, sep: str = "-") -> pa.Array:
        """``YYYY-MM`` (or with another separator) of months ``t``."""
        key = ("period", sep)
        if key not in self._cache:
            self._cache[key] = pc.replace_substring(self._periods, "-", sep) if sep != "-" else self._periods
        return self._cache[key].take(pa.array(t))

    def _person_column(self, key: tuple[str, str]) -> pa.Array:
        if key not in self._cache:
            p = self.world.persons
            n = p.n
            kind, arg = key
            if kind == "iin":
                values: Column = iinlib.format_array(p.iin[:n])
            elif kind in ("surname", "given", "patronymic"):
                raw = {"surname": p.surname, "given": p.given, "patronymic": p.patronymic}[kind]
                values = in_script(raw[:n].astype(object), cast(Script, arg))
            elif kind == "full":
                s, g, pt = (self._person_column((k, arg)) for k in ("surname", "given", "patronymic"))
                values = pc.binary_join_element_wise(s, g, pt, _SPACE, null_handling="skip").slice(0, n)
            else:
                values = format_dates(p.birth[:n], cast(DateStyle, arg))
            self._cache[key] = pa.concat_arrays([text(values).slice(0, n), pa.nulls(1, pa.string())])
        return self._cache[key]

    def take(self, column: pa.Array, idx: np.ndarray) -> pa.Array:
        """``column[idx]`` of a per-person column, null where ``idx`` is -1."""
        last = len(column) - 1
        return column.take(pa.array(np.where(idx >= 0, idx, last)))

    def iin(self, idx: np.ndarray) -> pa.Array:
        return self.take(self._person_column(("iin", "")), idx)

    def names(self, idx: np.ndarray, script: Script) -> tuple[pa.Array, pa.Array, pa.Array]:
        i = pa.array(np.where(idx >= 0, idx, self.world.persons.n))
        s, g, pt = (self._person_column((k, script)) for k in ("surname", "given", "patronymic"))
        return s.take(i), g.take(i), pt.take(i)

    def full_name(self, idx: np.ndarray, script: Script) -> pa.Array:
        return self.take(self._person_column(("full", script)), idx)

    def birth(self, idx: np.ndarray, style: DateStyle) -> pa.Array:
        return self.take(self._person_column(("birth", style)), idx)

    @cached_property
    def _kato(self) -> pa.Array:
        return pa.concat_arrays([text(self.terr.settlement_kato.astype(object)), pa.nulls(1, pa.string())])

    def kato(self, addr: np.ndarray) -> pa.Array:
        a = self.world.addresses
        s = np.where(addr >= 0, a.settlement[np.maximum(addr, 0)], len(self._kato) - 1)
        return self._kato.take(pa.array(s))

    def street(self, addr: np.ndarray, script: Script = "kk") -> pa.Array:
        prefix = "көше " if script == "kk" else kk_to_ru("көше ")
        return _join(prefix, _str(self.world.addresses.street[addr]), "")

    def bins(self, employer: np.ndarray) -> pa.Array:
        """Business numbers of employers (computed once per distinct employer)."""
        enc = pa.array(employer).dictionary_encode()
        return pa.array(_bins(enc.dictionary.to_numpy()), pa.string()).take(enc.indices)

    def events(self, kind: str) -> dict[str, np.ndarray]:
        """One of the world's event tables (assembled once per chunk)."""
        if kind not in self._events:
            self._events[kind] = self.world.events.table(kind)
        return self._events[kind]

    def run_start(self, panel: str) -> np.ndarray:
        """Per month and person, the first month of the run of equal values of a panel that the month
        belongs to (0 for a run that began at or before the start), computed once per chunk."""
        if panel not in self._runs:
            values = getattr(self.world.panels, panel)
            start = np.zeros(values.shape, np.int16)
            for t in range(1, values.shape[0]):
                start[t] = np.where(values[t] == values[t - 1], start[t - 1], t)
            self._runs[panel] = start
        return self._runs[panel]

    @cached_property
    def ever_enrolled(self) -> np.ndarray:
        """Per month and person, whether they were ever enrolled in school up to that month."""
        return np.logical_or.accumulate(self.world.panels.school == 1, axis=0)

    def alive_idx(self, t: int) -> np.ndarray:
        return np.flatnonzero(self.world.panels.family[t, : self.world.persons.n] >= 0)

    def heads(self, t: int) -> np.ndarray:
        """Head of every family in month ``t`` (-1 when the family has no member then)."""
        if t not in self._heads:
            self._heads[t] = _heads_at(self, t)
        return self._heads[t]


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation; plain strings are constants, the last part separates."""
    return pc.binary_join_element_wise(
        *(pa.scalar(x, pa.string()) if isinstance(x, str) else x for x in parts)
    )


def _str(a: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(a), pa.string())


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _label(labels: Sequence[str] | np.ndarray, codes: np.ndarray) -> pa.Array:
    """``labels[code]`` for every code."""
    return pa.array(list(labels), pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def _where(cond: np.ndarray, a: pa.Array | str, b: pa.Array | str | None = None) -> pa.Array:
    """``a`` where ``cond``, else ``b`` (null when None)."""

    def arg(x: pa.Array | str | None) -> pa.Array | pa.Scalar:
        return _NULL if x is None else pa.scalar(x, pa.string()) if isinstance(x, str) else x

    return pc.if_else(pa.array(cond, pa.bool_()), arg(a), arg(b))


def _money(a: np.ndarray) -> pa.Array:
    """Amounts with two decimals (``1234.50``), from whole cents so no float formatting is needed."""
    cents = np.rint(np.asarray(a, np.float64) * 100).astype(np.int64)
    neg = cents < 0
    cents = np.abs(cents)
    out = _join(_str(cents // 100), pc.utf8_lpad(_str(cents % 100), 2, "0"), ".")
    return _where(neg, _join("-", out, ""), out) if neg.any() else out


def _sex_ru(idx: np.ndarray, ctx: Ctx) -> pa.Array:
    return _where(ctx.world.persons.sex[idx] == 1, "М", "Ж")


# ---- civil registry ------------------------------------------------------------------------------


def build_persons(ctx: Ctx, t: int) -> Rows:
    p = ctx.world.persons
    end = ctx.end_day(t)
    idx = np.flatnonzero((p.iin[: p.n] >= 0) & (p.birth[: p.n] <= end) & (p.created_t[: p.n] <= t))
    death = np.where(p.death[idx] <= end, p.death[idx], -1)
    state = {"death": death, "mig": p.migration[idx]}

    def render(r: np.ndarray) -> dict[str, Column]:
        i = idx[r]
        s, g, pt = ctx.names(i, "kk")
        cit = _where(p.migration[i] >= Migration.PERMANENT_PERMIT, "ИНОСТРАНЕЦ", "KZ")
        return {
            "ИИН": ctx.iin(i),
            "Фамилия": s,
            "Имя": g,
            "Отчество": pt,
            "Дата_рождения": ctx.birth(i, "dmy"),
            "Пол": _sex_ru(i, ctx),
            "Гражданство": cit,
            "Дата_смерти": format_dates(np.where(death[r] >= 0, death[r], -(10**9)), "dmy"),
        }

    return Rows(key=ctx.pid(idx), state=state, persons={"subject": idx}, render=render)


def build_acts(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    acts = ctx.events("acts")
    m = ctx.month_of(acts["day"])
    sel = np.flatnonzero((m > t_from) & (m <= t_to))
    typ, day, a, b, c = (acts[k][sel] for k in ("type", "day", "a", "b", "c"))
    key = ctx.world.chunk * 100_000_000 + sel
    kind = {
        Act.BIRTH: "рождение",
        Act.MARRIAGE: "брак",
        Act.DIVORCE: "расторжение_брака",
        Act.DEATH: "смерть",
        Act.ADOPTION: "усыновление",
        Act.GUARDIANSHIP: "опека",
    }
    # birth: a child, b mother, c father; marriage/divorce: a husband, b wife; death: a;
    # guardianship: a ward, b guardian
    # old paper records were digitised without the parents' IINs
    old = (typ == Act.BIRTH) & (day < -5 * 365)
    month = m[sel]

    labels = ["", *(kind[Act(k)] for k in range(1, max(Act) + 1))]

    def render(r: np.ndarray) -> dict[str, Column]:
        out: dict[str, Column] = {
            # act_id is filled by the writer from the record id
            "act_type": _label(labels, typ[r]),
            "act_date": format_dates(day[r], "iso"),
            "registry_office_kato": ctx.kato(
                ctx.world.panels.address[np.clip(month[r], 0, None), np.maximum(a[r], 0)]
            ),
        }
        for label, who in (("person1", a[r]), ("person2", b[r]), ("person3", c[r])):
            s, g, pt = ctx.names(who, "kk")
            iin = ctx.iin(who)
            if label != "person1":
                iin = _where(old[r], None, iin)
            out[f"{label}_iin"] = iin
            out[f"{label}_surname"] = s
            out[f"{label}_name"] = g
            out[f"{label}_patronymic"] = pt
            out[f"{label}_birth_date"] = ctx.birth(who, "iso")
        return out

    return Rows(
        key=key, state={"day": day}, persons={"person1": a, "person2": b, "person3": c}, render=render
    )


# ---- addresses -----------------------------------------------------------------------------------


def build_addresses(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    idx = ctx.alive_idx(t)
    reg = P.reg_address[t, idx]
    idx, reg = idx[reg >= 0], reg[reg >= 0]
    A = ctx.world.addresses
    since = _registration_since(ctx, t, idx)

    def render(r: np.ndarray) -> dict[str, Column]:
        i, ad = idx[r], reg[r]
        s, g, pt = ctx.names(i, "ru")
        return {
            "ИИН": ctx.iin(i),
            "Фамилия": s,
            "Имя": g,
            "Отчество": pt,
            "Дата_рождения": ctx.birth(i, "dmy"),
            "КАТО": ctx.kato(ad),
            "Улица": ctx.street(ad, "ru"),
            "Дом": _str(A.house[ad]),
            "Квартира": _where(A.flat[ad] > 0, _str(A.flat[ad])),
            "Дата_регистрации": format_dates(since[r], "dmy"),
        }

    return Rows(key=ctx.pid(idx), state={"addr": reg}, persons={"subject": idx}, render=render)


def _registration_since(ctx: Ctx, t: int, idx: np.ndarray) -> np.ndarray:
    """Day each person's current registration began (first month of the current address)."""
    cur = ctx.world.panels.reg_address[t, idx]
    first = ctx.run_start("reg_address")[t, idx]
    start = ctx.month_starts[first] + 3
    at_start = first == 0
    # registrations older than the simulation: a day derived from the person and address
    b = ctx.world.persons.birth[idx].astype(np.int64)
    old = np.maximum(b + 18 * 365, ctx.month_starts[0] - 400 - (idx * 37 + cur) % 5000)
    return np.where(at_start, np.minimum(old, ctx.month_starts[0] - 1), start)


# ---- pensions and contributions ------------------------------------------------------------------


def _monthly(ctx: Ctx, t_from: int, t_to: int, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(month, person) pairs with a non-zero monthly value in (t_from, t_to] (month 0 at the start)."""
    lo = max(t_from + 1, 0)
    ms, ps = [], []
    n = ctx.world.persons.n
    for t in range(lo, t_to + 1):
        i = np.flatnonzero(value[t, :n] > 0)
        ms.append(np.full(len(i), t, np.int64))
        ps.append(i)
    return np.concatenate(ms) if ms else np.zeros(0, np.int64), np.concatenate(ps) if ps else np.zeros(
        0, np.int64
    )


def build_contributions(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    """One row per contributor and employer per month paid, delivered quarterly."""
    P = ctx.world.panels
    m, i = _monthly(ctx, t_from, t_to, P.wage)
    amount = np.round(P.wage[m, i].astype(np.float64) * 0.10, 2)
    employer = P.employer[m, i].astype(np.int64)
    self_emp = P.emp[m, i] == Emp.SELF_EMPLOYED

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = i[r]
        return {
            "iin": ctx.iin(ii),
            "full_name": ctx.full_name(ii, "ru_upper"),
            "birth_date": _date32(ctx.world.persons.birth[ii]),
            "period": ctx.periods(m[r]),
            "employer_bin": _where(self_emp[r], None, ctx.bins(employer[r])),
            "payer_type": _where(self_emp[r], "ИП", "агент"),
            "amount": amount[r],
        }

    return Rows(key=ctx.pid(i) * 128 + m, state={"a": amount}, persons={"subject": i}, render=render)


def _bins(employer: np.ndarray) -> np.ndarray:
    """12-digit business numbers (BINs) for synthetic employers, one per employer number: registration
    year and month (``YYMM``, from January 1994, one month per 100,000 employers), 4 (a resident legal
    entity), an attribute digit (0, a head office; 1, 2 or 4 where 0 gives no check digit), a five-digit
    serial and the check digit."""
    e = np.maximum(employer, 0).astype(np.int64)
    month = e // 100_000
    yymm = ((94 + month // 12) % 100) * 100 + month % 12 + 1
    base = yymm * 10**7 + 4 * 10**6 + e % 100_000  # the first 11 digits with attribute 0
    first11 = np.full(len(e), -1, np.int64)
    for attribute in (0, 1, 2, 4):
        candidate = base + attribute * 10**5
        c = iinlib.check_digits_array(iinlib.digits_array(candidate * 10)[:, :11])
        take = (first11 < 0) & (c >= 0)
        first11 = np.where(take, candidate * 10 + c, first11)
    return np.char.zfill(first11.astype(str), 12)


def _date32(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


PENSION_WIDTHS = (("IIN", 12), ("FIO", 60), ("DR", 8), ("VID", 3), ("SUMMA", 12), ("PERIOD", 6), ("KATO", 9))


def build_pensions(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    P = ctx.world.panels
    m, i = _monthly(ctx, t_from, t_to, P.pension)
    amount = P.pension[m, i].astype(np.float64)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii, mm = i[r], m[r]
        return {
            "IIN": ctx.iin(ii),
            "FIO": pc.utf8_slice_codeunits(ctx.full_name(ii, "ru_upper"), 0, 60),
            "DR": ctx.birth(ii, "ymd"),
            "VID": _const("ПВ", len(r)),
            "SUMMA": _money(amount[r]),
            "PERIOD": ctx.periods(mm, ""),
            "KATO": ctx.kato(P.reg_address[mm, ii]),
        }

    return Rows(key=ctx.pid(i) * 128 + m, state={"a": amount}, persons={"subject": i}, render=render)


# ---- social payments -----------------------------------------------------------------------------

_PAYMENT_CODE = {
    "tsa": "АСП",
    "large_family": "МНОГОДЕТ",
    "birth_grant": "ЕДИНОВР_РОЖД",
    "childcare": "УХОД_ДО_1_5",
    "disability": "ИНВАЛИДНОСТЬ",
    "breadwinner": "ПОТЕРЯ_КОРМИЛЬЦА",
}


def build_social_payments(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    sup = ctx.events("support")
    codes = {v: k for k, v in SUPPORT_CODES.items()}
    keep = np.isin(sup["measure"], [SUPPORT_CODES[k] for k in _PAYMENT_CODE])
    sel = np.flatnonzero(keep & (sup["month"] > t_from) & (sup["month"] <= t_to))
    month, fam, person, measure, amount = (
        sup[k][sel] for k in ("month", "family", "person", "measure", "amount")
    )
    # family-level payments go to the family's principal recipient (the head in that month)
    recipient = np.where(person >= 0, person, _head_of(ctx, month, fam))
    ok = recipient >= 0
    sel, month, fam, recipient, measure, amount = (
        sel[ok],
        month[ok],
        fam[ok],
        recipient[ok],
        measure[ok],
        amount[ok],
    )

    labels = [_PAYMENT_CODE.get(codes.get(k, ""), "") for k in range(max(codes) + 1)]

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = recipient[r]
        return {
            "ИИН_получателя": ctx.iin(ii),
            "ФИО": ctx.full_name(ii, "ru"),
            "Дата_рождения": ctx.birth(ii, "dmy"),
            "Вид_выплаты": _label(labels, measure[r]),
            "Сумма": _money(amount[r]),
            "Период": ctx.periods(month[r]),
        }

    return Rows(
        key=ctx.world.chunk * 1_000_000_000 + sel,
        state={"a": amount},
        persons={"recipient": recipient},
        render=render,
    )


def _head_of(ctx: Ctx, month: np.ndarray, fam: np.ndarray) -> np.ndarray:
    out = np.full(len(fam), -1, np.int64)
    for t in np.unique(month).tolist():
        m = month == t
        out[m] = ctx.heads(t)[fam[m]]
    return out


def _heads_at(ctx: Ctx, t: int) -> np.ndarray:
    """Head of every family in month ``t``: the member with the head role, else its last adult."""
    P, n = ctx.world.panels, ctx.world.persons.n
    f = P.family[t, :n]
    role = P.role[t, :n]
    age = (ctx.month_starts[t] - ctx.world.persons.birth[:n]) / 365.25
    head = np.full(ctx.world.families.n, -1, np.int64)
    adults = np.flatnonzero((f >= 0) & (age >= 18))
    head[f[adults]] = adults
    heads = np.flatnonzero((f >= 0) & (role == 1))
    head[f[heads]] = heads
    return head


# ---- tax, employment, unemployment ---------------------------------------------------------------


def build_tax(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    P = ctx.world.panels
    n = ctx.world.persons.n
    lo = max(t_from + 1, 0)
    quarters = [t for t in range(lo, t_to + 1) if t % 3 == 2 or t == t_to]
    rows_i: list[np.ndarray] = []
    rows_q: list[np.ndarray] = []
    rows_a: list[np.ndarray] = []
    for qt in quarters:
        months = range(max(qt - 2, lo), qt + 1)
        inc = sum(np.where(P.emp[t, :n] == Emp.SELF_EMPLOYED, P.wage[t, :n], 0) for t in months)
        who = np.flatnonzero(np.asarray(inc) > 0)
        rows_i.append(who)
        rows_q.append(np.full(len(who), qt))
        rows_a.append(np.asarray(inc)[who])
    i: np.ndarray = np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64)
    q: np.ndarray = np.concatenate(rows_q) if rows_q else np.zeros(0, np.int64)
    a: np.ndarray = np.concatenate(rows_a).astype(np.float64) if rows_a else np.zeros(0)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = i[r]
        return {
            "iin": ctx.iin(ii),
            "taxpayer_name": ctx.full_name(ii, "ru_upper"),
            "form": _const("910.00", len(r)),
            "tax_period": ctx.periods(q[r]),
            "declared_income": _money(a[r]),
            "tax_paid": _money(a[r] * 0.03),
        }

    return Rows(key=ctx.pid(i) * 128 + q, state={"a": a}, persons={"subject": i}, render=render)


def build_contracts(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    idx = np.flatnonzero(P.employer[t, : ctx.world.persons.n] >= 0)
    idx = idx[P.family[t, idx] >= 0]
    emp = P.employer[t, idx].astype(np.int64)
    start = ctx.run_start("employer")[t, idx]  # the month the current contract began
    start_day = np.where(
        start == 0, ctx.month_starts[0] - 30 - (idx * 53) % 3000, ctx.month_starts[start] + 1
    )
    wage = np.round(P.wage[t, idx].astype(np.float64), -3)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        s, g, pt = ctx.names(ii, "kk")
        return {
            "employee_iin": ctx.iin(ii),
            "employee_surname": s,
            "employee_name": g,
            "employee_patronymic": pt,
            "employee_birth_date": ctx.birth(ii, "iso"),
            "employer_bin": ctx.bins(emp[r]),
            "start_date": format_dates(start_day[r], "iso"),
            "salary": _money(wage[r]),
        }

    return Rows(
        key=ctx.pid(idx) * 1_000 + emp % 997,
        state={"e": emp, "s": start_day},
        persons={"subject": idx},
        render=render,
    )


def build_unemployment(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    n = ctx.world.persons.n
    idx = np.flatnonzero((P.emp[t, :n] == Emp.UNEMPLOYED_REGISTERED) & (P.family[t, :n] >= 0))
    since = ctx.run_start("emp")[t, idx]
    day = ctx.month_starts[since] + 7 - np.where(since == 0, (idx * 13) % 200, 0)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        return {
            "ИИН": ctx.iin(ii),
            "ФИО": ctx.full_name(ii, "ru"),
            "Дата_рождения": ctx.birth(ii, "dmy"),
            "Дата_регистрации": format_dates(day[r], "dmy"),
            "Статус": _const("безработный", len(r)),
        }

    return Rows(key=ctx.pid(idx), state={"d": day}, persons={"subject": idx}, render=render)


# ---- disability, health, education ----------------------------------------------------------------

_GROUP = {1: "I", 2: "II", 3: "III", 4: "ребенок-инвалид"}


def build_disability(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    n = ctx.world.persons.n
    idx = np.flatnonzero((P.disability[t, :n] > 0) & (P.family[t, :n] >= 0))
    grp = P.disability[t, idx]
    since = ctx.run_start("disability")[t, idx]
    day = np.where(since == 0, ctx.month_starts[0] - 60 - (idx * 29) % 2500, ctx.month_starts[since] + 10)
    until = day + np.where(grp == 3, 365, np.where(grp == 2, 730, 1825))

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        s, g, pt = ctx.names(ii, "ru")
        return {
            "ИИН": ctx.iin(ii),
            "Фамилия": s,
            "Имя": g,
            "Отчество": pt,
            "Дата_рождения": ctx.birth(ii, "dmy_slash"),
            "Группа": _label(["", *(_GROUP[k] for k in range(1, 5))], grp[r]),
            "Дата_установления": format_dates(day[r], "dmy_slash"),
            "Срок_до": format_dates(until[r], "dmy_slash"),
        }

    return Rows(key=ctx.pid(idx), state={"g": grp, "d": day}, persons={"subject": idx}, render=render)


def build_health(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    idx = ctx.alive_idx(t)
    idx = idx[ctx.world.persons.iin[idx] >= 0]
    # attachment to a clinic: everyone with an IIN; insurance status; dispensary register
    everyone = np.ones(len(idx), bool)
    pos, kinds = _rows_by(everyone, everyone, P.chronic[t, idx])
    who = idx[pos]
    clinic = ctx.world.addresses.settlement[np.maximum(P.address[t, who], 0)].astype(np.int64) % 5000 + 10_000
    insured = P.insured[t, who]
    value = np.where(kinds == 0, clinic, np.where(kinds == 1, insured, 1))
    diag = (who * 31 + 7) % 7

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = who[r]
        s, g, pt = ctx.names(ii, "ru")
        k = kinds[r]
        return {
            "record_type": _label(("attachment", "insurance", "dispensary"), k),
            "iin": ctx.iin(ii),
            "surname": s,
            "name": g,
            "patronymic": pt,
            "birth_date": _date32(ctx.world.persons.birth[ii]),
            "clinic_id": _str(clinic[r]),
            "insured": pa.array(insured[r], pa.bool_(), mask=k != 1),
            "icd_chapter": _where(k == 2, _label(list("IEJKMNG"), diag[r])),
        }

    return Rows(key=ctx.pid(who) * 4 + kinds, state={"v": value}, persons={"subject": who}, render=render)


_SCHOOL_STATUS = {1: "обучается", 2: "не_обучается", 3: "дошкольная_организация"}


def build_education(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    p = ctx.world.persons
    n = p.n
    idx = np.flatnonzero((P.school[t, :n] > 0) & (P.family[t, :n] >= 0))
    # a child who never enrolled is unknown to the education register; one who dropped out is known
    ever = ctx.ever_enrolled[t, idx]
    st = P.school[t, idx]
    keep = (st != 2) | ever
    idx, st = idx[keep], st[keep]
    age = (ctx.month_starts[t] - p.birth[idx]) / 365.25
    grade = np.clip(np.floor(age - 6).astype(np.int64), 0, 11)
    support = p.special_needs[idx] & (((idx * 7) % 10) < 6)
    org = ctx.world.addresses.settlement[np.maximum(P.address[t, idx], 0)].astype(np.int64) * 3 + (idx % 3)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        s, g, pt = ctx.names(ii, "ru")
        return {
            "ИИН": ctx.iin(ii),
            "Фамилия": s,
            "Имя": g,
            "Отчество": pt,
            "Дата_рождения": ctx.birth(ii, "dmy"),
            "Организация": _join("ОО-", _str(org[r]), ""),
            "Класс": _where(st[r] != 3, _str(grade[r])),
            "Статус": _label(["", *(_SCHOOL_STATUS[k] for k in range(1, 4))], st[r]),
            "ООП": _where(p.special_needs[ii], "да", "нет"),
            "Поддержка_ООП": _where(support[r], "да", "нет"),
        }

    return Rows(
        key=ctx.pid(idx), state={"s": st, "g": grade, "o": org}, persons={"subject": idx}, render=render
    )


# ---- property: real estate, vehicles, land and livestock -------------------------------------------


def _rows_by(*has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner position, kind) of one row per owner and kind ``k`` where ``has[k]`` is set, ordered by
    owner, then kind: with owners in ascending order the record keys ``owner * K + kind`` come sorted,
    which keeps comparing deliveries cheap."""
    pos, kind = np.nonzero(np.stack(has, axis=1))
    return pos, kind.astype(np.int64)


def _family_heads(ctx: Ctx, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(family, head person) for every family alive in month t."""
    head = ctx.heads(t)
    fams = np.flatnonzero(head >= 0)
    return fams, head[fams]


def build_real_estate(ctx: Ctx, t: int) -> Rows:
    F = ctx.world.families
    fams, head = _family_heads(ctx, t)
    owns = F.owns_home[fams]
    fams, head = fams[owns], head[owns]
    addr = ctx.world.panels.address[t, head]
    fams, head, addr = fams[addr >= 0], head[addr >= 0], addr[addr >= 0]
    A = ctx.world.addresses
    area = F.rooms[fams].astype(np.int64) * 17 + 12 + (addr % 9)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii, ad = head[r], addr[r]
        return {
            "owner_iin": ctx.iin(ii),
            "owner_name": ctx.full_name(ii, "ru_upper"),
            "kato": ctx.kato(ad),
            "address": _join(ctx.street(ad), _str(A.house[ad]), ", "),
            "kind": _where(A.flat[ad] > 0, "квартира", "жилой дом"),
            "area_m2": area[r].astype(np.float64),
            "rooms": F.rooms[fams[r]].astype(np.int64),
            "share": np.full(len(r), 1.0),
        }

    return Rows(key=ctx.world.aid(addr), state={"h": head, "a": area}, persons={"owner": head}, render=render)


_MAKES = np.array(
    [
        "Toyota Camry",
        "Lada Granta",
        "Hyundai Accent",
        "Chevrolet Cobalt",
        "Kia Rio",
        "Lada Niva",
        "Volkswagen Polo",
        "Toyota Land Cruiser",
        "Daewoo Nexia",
        "Audi 80",
    ],
    dtype=object,
)


def build_vehicles(ctx: Ctx, t: int) -> Rows:
    F = ctx.world.families
    fams, head = _family_heads(ctx, t)
    k = F.vehicles[fams].astype(np.int64)
    fams, head = np.repeat(fams, k), np.repeat(head, k)
    nth = np.arange(len(fams)) - np.repeat(np.cumsum(k) - k, k)
    vkey = ctx.world.fid(fams) * 4 + nth
    region = ctx.terr.settlement_region[
        ctx.world.addresses.settlement[np.maximum(ctx.world.panels.address[t, head], 0)]
    ]
    year = 1995 + (vkey * 7) % 30

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = head[r]
        v = vkey[r]
        letters = np.array(list("ABCEHKMOPTXY"), dtype=object)
        plate = [
            f"{int(a) % 1000:03d}{letters[a % 12]}{letters[(a // 12) % 12]}{letters[(a // 144) % 12]}"
            f"{int(reg) + 1:02d}"
            for a, reg in zip(v.tolist(), region[r].tolist(), strict=True)
        ]
        return {
            "ГРНЗ": pa.array(plate, pa.string()),
            "ИИН_владельца": ctx.iin(ii),
            "ФИО_владельца": ctx.full_name(ii, "ru"),
            "Марка_модель": _label(_MAKES, v % len(_MAKES)),
            "Год_выпуска": _str(year[r]),
            "Дата_регистрации": format_dates(ctx.month_starts[0] - 100 - (v % 3000), "dmy"),
        }

    return Rows(key=vkey, state={"h": head}, persons={"owner": head}, render=render)


def build_land(ctx: Ctx, t: int) -> Rows:
    F = ctx.world.families
    fams, head = _family_heads(ctx, t)
    pos, kind = _rows_by(F.land_ha[fams] > 0, F.livestock[fams] > 0)
    f2, h2 = fams[pos], head[pos]
    value = np.where(
        kind == 0, np.round(F.land_ha[f2].astype(np.float64), 4), F.livestock[f2].astype(np.float64)
    )

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = h2[r]
        s, g, _pt = ctx.names(ii, "kz2021")
        k = kind[r]
        return {
            "record_type": _where(k == 0, "land_plot", "livestock"),
            "owner_iin": ctx.iin(ii),
            "owner_surname": s,
            "owner_name": g,
            "kato": ctx.kato(ctx.world.panels.address[t, ii]),
            "area_ha": pa.array(value[r], pa.float64(), mask=k != 0),
            "sheep_equivalent_heads": pa.array(value[r], pa.float64(), mask=k != 1),
        }

    return Rows(
        key=ctx.world.fid(f2) * 2 + kind, state={"v": value, "h": h2}, persons={"owner": h2}, render=render
    )


# ---- debts, police, migration, mobile, housing -----------------------------------------------------


def build_debts(ctx: Ctx, t: int) -> Rows:
    P = ctx.world.panels
    n = ctx.world.persons.n
    live = P.family[t, :n] >= 0
    loan, enf = live & (P.loan[t, :n] > 0), live & P.enforcement[t, :n]
    debtors = np.flatnonzero(loan | enf)
    pos, kind = _rows_by(loan[debtors], enf[debtors])
    who = debtors[pos]
    amount = np.round(P.loan[t, who].astype(np.float64), -2)
    overdue = np.where(P.overdue[t, who], 90 + (who * 11) % 300, 0)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = who[r]
        return {
            "record_type": _where(kind[r] == 0, "loan", "enforcement"),
            "iin": ctx.iin(ii),
            "full_name": ctx.full_name(ii, "ru_upper"),
            "birth_date": _date32(ctx.world.persons.birth[ii]),
            "amount": amount[r],
            "overdue_days": overdue[r].astype(np.int64),
        }

    return Rows(
        key=ctx.pid(who) * 2 + kind,
        state={"a": amount, "o": overdue},
        persons={"subject": who},
        render=render,
    )


_POLICE_KIND = {
    POLICE_DV: "domestic_violence_report",
    POLICE_PROTECTIVE_ORDER: "protective_order",
    POLICE_JUVENILE: "juvenile_offence",
}


def build_police(ctx: Ctx, t_from: int, t_to: int) -> Rows:
    ev = ctx.events("police")
    m = ctx.month_of(ev["day"])
    sel = np.flatnonzero((m > t_from) & (m <= t_to))
    kind, day, person, other = ev["kind"][sel], ev["day"][sel], ev["person"][sel], ev["other"][sel]

    labels = [_POLICE_KIND.get(k, "") for k in range(max(_POLICE_KIND) + 1)]

    def render(r: np.ndarray) -> dict[str, Column]:
        ii, oo = person[r], other[r]
        s, g, _ = ctx.names(ii, "ru")
        os_, og, _ = ctx.names(oo, "ru")
        return {
            "kind": _label(labels, kind[r]),
            "date": format_dates(day[r], "iso"),
            "kato": ctx.kato(ctx.world.panels.address[np.clip(m[sel][r], 0, None), ii]),
            "person_role": _where(kind[r] == POLICE_JUVENILE, "offender", "victim"),
            "person_iin": ctx.iin(ii),
            "person_surname": s,
            "person_name": g,
            "person_birth_date": ctx.birth(ii, "iso"),
            "other_iin": ctx.iin(oo),
            "other_surname": os_,
            "other_name": og,
        }

    key = ctx.world.chunk * 100_000_000 + sel
    return Rows(key=key, state={"d": day}, persons={"person": person, "other": other}, render=render)


_CITIZENSHIP = np.array(["UZB", "TJK", "KGZ", "RUS", "CHN", "TKM", "MNG"], dtype=object)


def build_migration(ctx: Ctx, t: int) -> Rows:
    p = ctx.world.persons
    idx = ctx.alive_idx(t)
    idx = idx[p.migration[idx] != Migration.CITIZEN]
    status = p.migration[idx]
    valid_to = p.migration_since[idx] + np.where(status == Migration.TEMPORARY_PERMIT, 3 * 365, 10 * 365)

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        s, g, _ = ctx.names(ii, "passport")
        st = status[r]
        return {
            "doc_number": _join("N", pc.utf8_lpad(_str(ctx.pid(ii) % 10**8), 8, "0"), ""),
            "iin": ctx.iin(ii),
            "surname": s,
            "name": g,
            "birth_date": ctx.birth(ii, "iso"),
            "sex": _where(p.sex[ii] == 1, "M", "F"),
            "citizenship": _where(st == Migration.KANDAS, "KAZ", _label(_CITIZENSHIP, ctx.pid(ii) % 7)),
            "status": _label(("", "kandas", "permanent_residence", "temporary_residence"), st),
            "valid_from": format_dates(p.migration_since[ii], "iso"),
            "valid_to": format_dates(valid_to[r], "iso"),
            "kato": ctx.kato(ctx.world.panels.address[t, ii]),
        }

    return Rows(key=ctx.pid(idx), state={"s": status}, persons={"subject": idx}, render=render)


_OPERATORS = {
    700: "Altel",
    701: "Kcell",
    702: "Kcell",
    705: "Beeline",
    707: "Tele2",
    708: "Altel",
    747: "Tele2",
    771: "Beeline",
    775: "Kcell",
    776: "Beeline",
    777: "Beeline",
    778: "Kcell",
}


def build_mobile(ctx: Ctx, t: int) -> Rows:
    p = ctx.world.persons
    idx = ctx.alive_idx(t)
    idx = idx[p.phone[idx] >= 0]
    age = (ctx.month_starts[t] - p.birth[idx]) / 365.25
    idx = idx[age >= 16]
    idx = idx[np.argsort(p.phone[idx], kind="stable")]  # in number order, as operators list them
    phone = p.phone[idx]

    operators = [_OPERATORS.get(k, "") for k in range(max(_OPERATORS) + 1)]

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = idx[r]
        s, g, _ = ctx.names(ii, "passport")
        ph = phone[r]
        return {
            "msisdn": _join("+7", _str(ph), ""),
            "subscriber_iin": ctx.iin(ii),
            "subscriber_name": _join(s, g, " "),
            "operator": _label(operators, ph // 10_000_000),
            "activated": format_dates(ctx.month_starts[0] - 30 - (ph % 2000), "iso"),
        }

    return Rows(key=phone, state={"p": ctx.pid(idx)}, persons={"subject": idx}, render=render)


def build_housing(ctx: Ctx, t: int) -> Rows:
    F = ctx.world.families
    fams, head = _family_heads(ctx, t)
    pos, kind = _rows_by(F.housing_queue[fams], F.utilities_debt[fams] > 0)
    f2, h2 = fams[pos], head[pos]
    amount = np.where(kind == 1, np.round(F.utilities_debt[f2].astype(np.float64), 0), 0)
    since = ctx.month_starts[0] - 200 - (f2 * 17) % 3000

    def render(r: np.ndarray) -> dict[str, Column]:
        ii = h2[r]
        ad = ctx.world.panels.address[t, ii]
        k = kind[r]
        return {
            "Тип": _where(k == 0, "очередь_на_жилье", "долг_ЖКУ"),
            "ИИН": ctx.iin(ii),
            "ФИО": ctx.full_name(ii, "ru"),
            "КАТО": ctx.kato(ad),
            "Дата_постановки": _where(k == 0, format_dates(since[r], "dmy")),
            "Сумма_долга": _where(k == 1, _money(amount[r])),
            "Состав_семьи": _str(_family_size(ctx, t, f2[r])),
        }

    amount_state = amount + kind * 0.5
    return Rows(
        key=ctx.world.fid(f2) * 2 + kind,
        state={"a": amount_state, "h": h2},
        persons={"head": h2},
        render=render,
    )


def _family_size(ctx: Ctx, t: int, fams: np.ndarray) -> np.ndarray:
    f = ctx.world.panels.family[t, : ctx.world.persons.n]
    size = np.bincount(np.maximum(f, 0), weights=f >= 0, minlength=ctx.world.families.n).astype(np.int64)
    return size[fams]


# ---- the catalogue ---------------------------------------------------------------------------------

_P = ("ИИН", "Фамилия", "Имя", "Отчество", "Дата_рождения")
_ACT_PEOPLE = tuple(
    f"{p}_{f}"
    for p in ("person1", "person2", "person3")
    for f in ("iin", "surname", "name", "patronymic", "birth_date")
)

FEEDS: tuple[Feed, ...] = (
    Feed(
        "civil_registry",
        "Ministry of Justice",
        "State database of individuals (persons)",
        CSV_SEMI_UTF8,
        1,
        "delta",
        ("Номер_записи", *_P, "Пол", "Гражданство", "Дата_смерти", "Операция"),
        build_persons,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН",),
        name_columns=("Фамилия", "Имя", "Отчество"),
        date_columns=("Дата_рождения", "Дата_смерти"),
        date_style="dmy",
        iin_authority=True,
        salt=1,
    ),
    Feed(
        "civil_acts",
        "Ministry of Justice",
        "Civil-status acts: births, marriages, divorces, deaths, guardianship",
        JSONL,
        1,
        "events",
        ("act_id", "act_type", "act_date", "registry_office_kato", *_ACT_PEOPLE),
        build_acts,
        "act_id",
        iin_columns=("person1_iin", "person2_iin", "person3_iin"),
        name_columns=(
            "person1_surname",
            "person1_name",
            "person2_surname",
            "person2_name",
            "person3_surname",
            "person3_name",
        ),
        date_columns=("act_date", "person1_birth_date", "person2_birth_date", "person3_birth_date"),
        salt=2,
    ),
    Feed(
        "address_registry",
        "Ministry of Internal Affairs",
        "Registration at the place of residence",
        CSV_SEMI_1251,
        1,
        "delta",
        ("Номер_записи", *_P, "КАТО", "Улица", "Дом", "Квартира", "Дата_регистрации", "Операция"),
        build_addresses,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН",),
        name_columns=("Фамилия", "Имя", "Отчество"),
        name_script="ru",
        date_columns=("Дата_рождения", "Дата_регистрации"),
        date_style="dmy",
        salt=3,
    ),
    Feed(
        "pension_contributions",
        "Unified Accumulative Pension Fund",
        "Mandatory pension contributions",
        PARQUET,
        3,
        "events",
        ("record_id", "iin", "full_name", "birth_date", "period", "employer_bin", "payer_type", "amount"),
        build_contributions,
        "record_id",
        iin_columns=("iin",),
        name_columns=("full_name",),
        name_script="ru_upper",
        types={"birth_date": pa.date32(), "amount": pa.float64(), "record_id": pa.int64()},
        salt=4,
    ),
    Feed(
        "pension_payments",
        "State Centre for Pension Payments",
        "Pension payments (legacy fixed-width export)",
        FileFormat(
            kind="fixed",
            encoding="cp866",
            line_ending="\r\n",
            unencodable="replace",
            widths=(("NZAP", 16), *PENSION_WIDTHS),
        ),
        1,
        "events",
        ("NZAP", *[c for c, _ in PENSION_WIDTHS]),
        build_pensions,
        "NZAP",
        iin_columns=("IIN",),
        name_columns=("FIO",),
        name_script="ru_upper",
        date_columns=("DR",),
        date_style="ymd",
        salt=5,
    ),
    Feed(
        "social_payments",
        "State Centre for Pension Payments",
        "Social benefits paid",
        CSV_SEMI_1251,
        1,
        "events",
        ("Номер_записи", "ИИН_получателя", "ФИО", "Дата_рождения", "Вид_выплаты", "Сумма", "Период"),
        build_social_payments,
        "Номер_записи",
        iin_columns=("ИИН_получателя",),
        name_columns=("ФИО",),
        name_script="ru",
        date_columns=("Дата_рождения",),
        date_style="dmy",
        salt=6,
    ),
    Feed(
        "tax",
        "State Revenue Committee",
        "Declared income of individual entrepreneurs",
        CSV_PIPE,
        3,
        "events",
        ("record_id", "iin", "taxpayer_name", "form", "tax_period", "declared_income", "tax_paid"),
        build_tax,
        "record_id",
        iin_columns=("iin",),
        name_columns=("taxpayer_name",),
        name_script="ru_upper",
        salt=7,
    ),
    Feed(
        "employment_contracts",
        "Ministry of Labour (ESUTD)",
        "Employment contracts",
        JSONL,
        1,
        "delta",
        (
            "contract_id",
            "employee_iin",
            "employee_surname",
            "employee_name",
            "employee_patronymic",
            "employee_birth_date",
            "employer_bin",
            "start_date",
            "salary",
            "op",
        ),
        build_contracts,
        "contract_id",
        "op",
        iin_columns=("employee_iin",),
        name_columns=("employee_surname", "employee_name", "employee_patronymic"),
        date_columns=("employee_birth_date", "start_date"),
        salt=8,
    ),
    Feed(
        "unemployment",
        "Ministry of Labour (Enbek)",
        "Registered unemployed",
        CSV_SEMI_UTF8,
        1,
        "delta",
        ("Номер_записи", "ИИН", "ФИО", "Дата_рождения", "Дата_регистрации", "Статус", "Операция"),
        build_unemployment,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН",),
        name_columns=("ФИО",),
        name_script="ru",
        date_columns=("Дата_рождения", "Дата_регистрации"),
        date_style="dmy",
        salt=9,
    ),
    Feed(
        "disability",
        "Ministry of Labour (medical and social expertise)",
        "Disability assessments",
        CSV_SEMI_UTF8,
        3,
        "delta",
        ("Номер_записи", *_P, "Группа", "Дата_установления", "Срок_до", "Операция"),
        build_disability,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН",),
        name_columns=("Фамилия", "Имя", "Отчество"),
        name_script="ru",
        date_columns=("Дата_рождения", "Дата_установления", "Срок_до"),
        date_style="dmy_slash",
        salt=10,
    ),
    Feed(
        "health",
        "Ministry of Health",
        "Clinic attachment, health insurance status and dispensary registers",
        PARQUET,
        3,
        "delta",
        (
            "record_id",
            "record_type",
            "iin",
            "surname",
            "name",
            "patronymic",
            "birth_date",
            "clinic_id",
            "insured",
            "icd_chapter",
            "op",
        ),
        build_health,
        "record_id",
        "op",
        iin_columns=("iin",),
        name_columns=("surname", "name", "patronymic"),
        name_script="ru",
        types={"birth_date": pa.date32(), "insured": pa.bool_(), "record_id": pa.int64()},
        salt=11,
    ),
    Feed(
        "education",
        "Ministry of Education (NOBD)",
        "School and pre-school enrolment, special educational needs",
        CSV_SEMI_1251,
        3,
        "delta",
        ("Номер_записи", *_P, "Организация", "Класс", "Статус", "ООП", "Поддержка_ООП", "Операция"),
        build_education,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН",),
        name_columns=("Фамилия", "Имя", "Отчество"),
        name_script="ru",
        date_columns=("Дата_рождения",),
        date_style="dmy",
        salt=12,
    ),
    Feed(
        "real_estate",
        "Ministry of Justice (real-estate register)",
        "Registered ownership of dwellings",
        PARQUET,
        3,
        "delta",
        (
            "property_id",
            "owner_iin",
            "owner_name",
            "kato",
            "address",
            "kind",
            "area_m2",
            "rooms",
            "share",
            "op",
        ),
        build_real_estate,
        "property_id",
        "op",
        iin_columns=("owner_iin",),
        name_columns=("owner_name",),
        name_script="ru_upper",
        types={
            "area_m2": pa.float64(),
            "rooms": pa.int64(),
            "share": pa.float64(),
            "property_id": pa.int64(),
        },
        salt=13,
    ),
    Feed(
        "vehicles",
        "Ministry of Internal Affairs",
        "Registered vehicles",
        CSV_SEMI_1251,
        3,
        "delta",
        (
            "Номер_записи",
            "ГРНЗ",
            "ИИН_владельца",
            "ФИО_владельца",
            "Марка_модель",
            "Год_выпуска",
            "Дата_регистрации",
            "Операция",
        ),
        build_vehicles,
        "Номер_записи",
        "Операция",
        iin_columns=("ИИН_владельца",),
        name_columns=("ФИО_владельца",),
        name_script="ru",
        date_columns=("Дата_регистрации",),
        date_style="dmy",
        salt=14,
    ),
    Feed(
        "land_livestock",
        "Ministry of Agriculture",
        "Land plots and livestock identification",
        JSONL,
        3,
        "delta",
        (
            "record_id",
            "record_type",
            "owner_iin",
            "owner_surname",
            "owner_name",
            "kato",
            "area_ha",
            "sheep_equivalent_heads",
            "op",
        ),
        build_land,
        "record_id",
        "op",
        iin_columns=("owner_iin",),
        name_columns=("owner_surname", "owner_name"),
        name_script="kz2021",
        types={"area_ha": pa.float64(), "sheep_equivalent_heads": pa.float64()},
        salt=15,
    ),
    Feed(
        "debts",
        "Credit bureau and enforcement registry",
        "Consumer loans and enforcement proceedings",
        PARQUET,
        1,
        "delta",
        ("record_id", "record_type", "iin", "full_name", "birth_date", "amount", "overdue_days", "op"),
        build_debts,
        "record_id",
        "op",
        iin_columns=("iin",),
        name_columns=("full_name",),
        name_script="ru_upper",
        types={
            "birth_date": pa.date32(),
            "amount": pa.float64(),
            "overdue_days": pa.int64(),
            "record_id": pa.int64(),
        },
        salt=16,
    ),
    Feed(
        "police",
        "Committee on Legal Statistics",
        "Domestic-violence reports, protective orders, juvenile offences",
        JSONL,
        3,
        "events",
        (
            "report_id",
            "kind",
            "date",
            "kato",
            "person_role",
            "person_iin",
            "person_surname",
            "person_name",
            "person_birth_date",
            "other_iin",
            "other_surname",
            "other_name",
        ),
        build_police,
        "report_id",
        iin_columns=("person_iin", "other_iin"),
        name_columns=("person_surname", "person_name", "other_surname", "other_name"),
        name_script="ru",
        date_columns=("date", "person_birth_date"),
        salt=17,
    ),
    Feed(
        "migration",
        "Ministry of Internal Affairs (migration service)",
        "Residence permits and repatriate status",
        CSV_SEMI_UTF8,
        3,
        "delta",
        (
            "record_no",
            "doc_number",
            "iin",
            "surname",
            "name",
            "birth_date",
            "sex",
            "citizenship",
            "status",
            "valid_from",
            "valid_to",
            "kato",
            "op",
        ),
        build_migration,
        "record_no",
        "op",
        iin_columns=("iin",),
        name_columns=("surname", "name"),
        name_script="passport",
        date_columns=("birth_date", "valid_from", "valid_to"),
        salt=18,
    ),
    Feed(
        "mobile_numbers",
        "Mobile operators",
        "Subscribers' registered numbers",
        CSV_COMMA,
        1,
        "delta",
        ("record_id", "msisdn", "subscriber_iin", "subscriber_name", "operator", "activated", "op"),
        build_mobile,
        "record_id",
        "op",
        iin_columns=("subscriber_iin",),
        name_columns=("subscriber_name",),
        name_script="passport",
        date_columns=("activated",),
        salt=19,
    ),
    Feed(
        "housing_utilities",
        "Local executive bodies (akimats)",
        "Housing queue and utility-debt lists",
        CSV_SEMI_1251,
        3,
        "snapshot",
        ("Номер_записи", "Тип", "ИИН", "ФИО", "КАТО", "Дата_постановки", "Сумма_долга", "Состав_семьи"),
        build_housing,
        "Номер_записи",
        iin_columns=("ИИН",),
        name_columns=("ФИО",),
        name_script="ru",
        date_columns=("Дата_постановки",),
        date_style="dmy",
        salt=20,
    ),
)
"""Every feed the synthetic nation emits. The questionnaires of social workers join as a feed once the
social-worker app exists; they are not simulated here."""

FEED_BY_NAME = {f.name: f for f in FEEDS}

__all__ = ["ALIVE", "FEEDS", "FEED_BY_NAME", "Ctx"]
