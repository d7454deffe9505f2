"""The fact vocabulary: what the feeds say about each family member and each family, as of a period.

Indicators (``methodology/wellbeing/indicators.toml``) are expressions over these facts, so the methodology
can change without code while every value still traces back to agency records:

* a **selection** picks the records of one feed that are valid at the end of the period (or, for events,
  that happened in a window before it) and links each to its person through the identity stage's
  ``person_links``; its records are the *provenance* of every fact computed from it;
* a **person fact** is an aggregate of one selection's records per person (``wage``: the sum of the
  salaries of the person's open employment contracts), or a fact of the member itself (``age``, ``sex``,
  ``role``);
* a **family fact** is an aggregate of its members' facts (``income_per_member``) or a fact of the
  family (``rural``, from the territory of its registered address).

Fact names are the only identifiers an indicator may use (with the methodology's parameters), so an
indicator cannot read anything the vocabulary does not declare. Some attributes exist in the feeds but are
**protected**: nationality, ethnicity and religion (and citizenship and migration status, which stand in
for them) are never facts, and :mod:`familycard.indicators.methodology` refuses any methodology that names
them.

All SQL here is DuckDB's dialect, run through :mod:`familycard.store.engine`, so it runs on Spark too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from familycard.families.asof import date_literal, previous_period, valid_at

PROTECTED = frozenset(
    {
        "nationality",
        "ethnicity",
        "ethnic_group",
        "religion",
        "confession",
        "citizenship",
        "migration_status",
        "kandas",
        "race",
        "language",
    }
)
"""Attributes that may never be an input to an indicator, a score or a level (FACTS.md: nationality,
ethnicity and religion; citizenship, migration status and repatriate status are their proxies)."""


@dataclass(frozen=True)
class Selection:
    """Records of one feed that count for a person as of a period.

    ``where`` filters the feed's history rows (alias ``x``; ``{valid}`` is replaced by the as-of
    condition, ``{end}`` by the period's last day, ``{year_ago}`` by the day a year before it,
    ``{from_period}`` by the period eleven months before, ``{period}`` by the period itself).
    ``columns`` are the record's fields the facts need, ``role`` the person mention to link.
    """

    name: str
    feed: str
    where: str
    columns: tuple[str, ...]
    role: str = "subject"
    date: str | None = None
    """The record's own date column shown with it in explanations (``_period`` is always kept)."""


@dataclass(frozen=True)
class Fact:
    """One fact: its name, SQL type, what it means, and how it is computed.

    A person fact from a selection has ``selection`` and ``sql`` (an aggregate over the selection's rows
    of one person); a member fact (``selection`` None) is an expression over the member row ``m``; a
    family fact has ``unit = "family"`` and ``sql`` over the family's ``person_facts`` rows (``p``) and
    the ``families`` row (``f``). ``feeds`` lists where its values come from, for explanations.
    """

    name: str
    type: str
    description: str
    sql: str
    unit: str = "person"
    selection: str | None = None
    default: str | None = None
    """Value when the person has no record in the selection (``FALSE`` for flags, ``0`` for counts)."""
    feeds: tuple[str, ...] = ()


LIVE = "{valid}"
LAST_YEAR = "{valid} AND x.{date} > {year_ago} AND x.{date} <= {end}"

SELECTIONS: tuple[Selection, ...] = (
    Selection("address", "address_registry", LIVE, ("kato",)),
    Selection("contracts", "employment_contracts", LIVE, ("salary", "start_date"), date="start_date"),
    Selection(
        "contributions",
        "pension_contributions",
        "{valid} AND x.period >= '{from_period}' AND x.period <= '{period}'",
        ("period", "amount", "payer_type"),
        date="period",
    ),
    Selection(
        "declared_income",
        "tax",
        "{valid} AND x.period >= '{from_period}' AND x.period <= '{period}'",
        ("period", "declared_income"),
        date="period",
    ),
    Selection(
        "pensions",
        "pension_payments",
        "{valid} AND x.period = (SELECT MAX(pp.period) FROM src_pension_payments AS pp "
        "WHERE pp.period <= '{period_compact}')",
        ("period", "amount"),
        date="period",
    ),
    Selection(
        "benefits",
        "social_payments",
        "{valid} AND x.payment_kind <> 'ЕДИНОВР_РОЖД' AND x.period = (SELECT MAX(sp.period) "
        "FROM src_social_payments AS sp WHERE sp.period <= '{period}')",
        ("period", "payment_kind", "amount"),
        role="recipient",
        date="period",
    ),
    Selection(
        "birth_grants",
        "social_payments",
        "{valid} AND x.payment_kind = 'ЕДИНОВР_РОЖД' AND x.period >= '{from_period}' "
        "AND x.period <= '{period}'",
        ("period", "amount"),
        role="recipient",
        date="period",
    ),
    Selection("unemployment", "unemployment", LIVE, ("registration_date",), date="registration_date"),
    Selection(
        "disability",
        "disability",
        "{valid} AND (x.valid_to IS NULL OR x.valid_to >= {end})",
        ("disability_group", "valid_from", "valid_to"),
        date="valid_from",
    ),
    Selection("insurance", "health", "{valid} AND x.record_type = 'insurance'", ("insured",)),
    Selection("attachment", "health", "{valid} AND x.record_type = 'attachment'", ("clinic_id",)),
    Selection("dispensary", "health", "{valid} AND x.record_type = 'dispensary'", ("icd_chapter",)),
    Selection("schooling", "education", LIVE, ("status", "grade", "special_needs", "special_needs_support")),
    Selection("dwellings", "real_estate", LIVE, ("property_kind", "area_m2", "rooms", "share"), role="owner"),
    Selection("vehicles", "vehicles", LIVE, ("manufacture_year",), role="owner"),
    Selection(
        "land", "land_livestock", "{valid} AND x.record_type = 'land_plot'", ("area_ha",), role="owner"
    ),
    Selection(
        "livestock",
        "land_livestock",
        "{valid} AND x.record_type = 'livestock'",
        ("sheep_equivalent_heads",),
        role="owner",
    ),
    Selection("loans", "debts", "{valid} AND x.record_type = 'loan'", ("amount", "overdue_days")),
    Selection("enforcement", "debts", "{valid} AND x.record_type = 'enforcement'", ("amount",)),
    Selection(
        "violence_victim",
        "police",
        "{valid} AND x.person_role = 'victim' AND x.report_kind = 'domestic_violence_report' "
        "AND x.report_date > {year_ago} AND x.report_date <= {end}",
        ("report_date",),
        role="person",
        date="report_date",
    ),
    Selection(
        "protective_order",
        "police",
        "{valid} AND x.person_role = 'victim' AND x.report_kind = 'protective_order' "
        "AND x.report_date > {year_ago} AND x.report_date <= {end}",
        ("report_date",),
        role="person",
        date="report_date",
    ),
    Selection(
        "violence_offender",
        "police",
        "{valid} AND x.report_kind IN ('domestic_violence_report', 'protective_order') "
        "AND x.report_date > {year_ago} AND x.report_date <= {end}",
        ("report_date",),
        role="other",
        date="report_date",
    ),
    Selection(
        "juvenile_offence",
        "police",
        "{valid} AND x.report_kind = 'juvenile_offence' AND x.report_date > {year_ago} "
        "AND x.report_date <= {end}",
        ("report_date",),
        role="person",
        date="report_date",
    ),
    Selection(
        "housing_queue",
        "housing_utilities",
        "{valid} AND x.record_type = 'очередь_на_жилье'",
        ("queue_date",),
        "head",
    ),
    Selection(
        "utility_debt", "housing_utilities", "{valid} AND x.record_type = 'долг_ЖКУ'", ("amount",), "head"
    ),
    Selection("phone", "mobile_numbers", LIVE, ("operator",)),
    Selection(
        "divorce",
        "civil_acts",
        "{valid} AND x.act_type = 'расторжение_брака' AND x.act_date > {year_ago} AND x.act_date <= {end}",
        ("act_date",),
        role="person1",
        date="act_date",
    ),
    Selection(
        "divorce_partner",
        "civil_acts",
        "{valid} AND x.act_type = 'расторжение_брака' AND x.act_date > {year_ago} AND x.act_date <= {end}",
        ("act_date",),
        role="person2",
        date="act_date",
    ),
    Selection(
        "guardianship",
        "civil_acts",
        "{valid} AND x.act_type = 'опека' AND x.act_date <= {end}",
        ("act_date",),
        role="person1",
        date="act_date",
    ),
)
SELECTION = {s.name: s for s in SELECTIONS}

_Y = "CASE WHEN COUNT(*) > 0 THEN TRUE ELSE FALSE END"


def _pf(
    name: str, type_: str, selection: str, sql: str, description: str, default: str | None = None
) -> Fact:
    return Fact(name, type_, description, sql, "person", selection, default, (SELECTION[selection].feed,))


def _mf(name: str, type_: str, sql: str, description: str) -> Fact:
    return Fact(name, type_, description, sql, "person", None, None, ("civil_registry",))


PERSON_FACTS: tuple[Fact, ...] = (
    _mf("age", "INTEGER", "m.age", "Age in full years at the end of the period."),
    _mf("sex", "VARCHAR", "m.sex", "Sex as the civil registry records it: M or F."),
    _mf("role", "VARCHAR", "m.role", "Role in the family: head, spouse, partner, child, parent, ..."),
    _mf("is_head", "BOOLEAN", "m.role = 'head'", "The family's head (principal recipient)."),
    _mf("minor", "BOOLEAN", "COALESCE(m.age < 18, FALSE)", "Under 18."),
    _mf("uncertain", "BOOLEAN", "m.uncertain", "The person's place in the family is uncertain."),
    _pf("registered", "BOOLEAN", "address", _Y, "Has a registered address.", "FALSE"),
    _pf(
        "wage",
        "DOUBLE",
        "contracts",
        "SUM(s.salary)",
        "Monthly salary of open employment contracts (₸).",
        "0",
    ),
    _pf("contracts", "INTEGER", "contracts", "COUNT(*)", "Open employment contracts.", "0"),
    _pf(
        "contribution_months",
        "INTEGER",
        "contributions",
        # (the months as bits of one integer, counted: a distinct count of periods per person was a
        # third of the person facts' CPU; a month's bit is its number modulo 62, one bit per month of
        # any window shorter than 62 months)
        "BIT_COUNT(BIT_OR(CAST(POWER(2, (CAST(SUBSTR(s.period, 1, 4) AS BIGINT) * 12 "
        "+ CAST(SUBSTR(s.period, 6, 2) AS BIGINT)) % 62) AS BIGINT)))",
        "Months with a mandatory pension contribution in the last 12.",
        "0",
    ),
    _pf(
        "self_employed",
        "BOOLEAN",
        "contributions",
        "BOOL_OR(s.payer_type = 'ИП')",
        "Paid contributions as an individual entrepreneur in the last 12 months.",
        "FALSE",
    ),
    _pf(
        "declared_income",
        "DOUBLE",
        "declared_income",
        "SUM(s.declared_income) / 12.0",
        "Income declared to the tax office in the last 12 months, per month (₸).",
        "0",
    ),
    _pf("pension", "DOUBLE", "pensions", "SUM(s.amount)", "Pension paid in the latest month (₸).", "0"),
    _pf(
        "benefits",
        "DOUBLE",
        "benefits",
        "SUM(s.amount)",
        "Social benefits paid in the latest month (₸).",
        "0",
    ),
    _pf(
        "tsa",
        "BOOLEAN",
        "benefits",
        "BOOL_OR(s.payment_kind = 'АСП')",
        "Receives targeted social assistance.",
        "FALSE",
    ),
    _pf(
        "large_family_allowance",
        "BOOLEAN",
        "benefits",
        "BOOL_OR(s.payment_kind = 'МНОГОДЕТ')",
        "Receives the large-family allowance.",
        "FALSE",
    ),
    _pf(
        "childcare_benefit",
        "BOOLEAN",
        "benefits",
        "BOOL_OR(s.payment_kind = 'УХОД_ДО_1_5')",
        "Receives the childcare benefit (child under 1½).",
        "FALSE",
    ),
    _pf(
        "disability_benefit",
        "BOOLEAN",
        "benefits",
        "BOOL_OR(s.payment_kind = 'ИНВАЛИДНОСТЬ')",
        "Receives a disability benefit.",
        "FALSE",
    ),
    _pf(
        "breadwinner_benefit",
        "BOOLEAN",
        "benefits",
        "BOOL_OR(s.payment_kind = 'ПОТЕРЯ_КОРМИЛЬЦА')",
        "Receives the loss-of-breadwinner benefit.",
        "FALSE",
    ),
    _pf(
        "birth_grant", "BOOLEAN", "birth_grants", _Y, "Received a birth grant in the last 12 months.", "FALSE"
    ),
    _pf("unemployed", "BOOLEAN", "unemployment", _Y, "Registered as unemployed.", "FALSE"),
    _pf(
        "unemployed_months",
        "INTEGER",
        "unemployment",
        "MAX(DATE_SUB('month', s.registration_date, {end}))",
        "Months since registration as unemployed.",
    ),
    _pf(
        "disability_group",
        "INTEGER",
        "disability",
        "MIN(CASE s.disability_group WHEN 'I' THEN 1 WHEN 'II' THEN 2 WHEN 'III' THEN 3 ELSE 4 END)",
        "Disability group: 1, 2, 3 (adults), 4 (a child with a disability); empty when none.",
    ),
    _pf(
        "insured",
        "BOOLEAN",
        "insurance",
        "BOOL_OR(s.insured)",
        "Covered by compulsory health insurance (empty when the fund has no record).",
    ),
    _pf("attached", "BOOLEAN", "attachment", _Y, "Attached to a primary-care clinic.", "FALSE"),
    _pf(
        "chronic_conditions",
        "INTEGER",
        "dispensary",
        "COUNT(DISTINCT s.icd_chapter)",
        "Chronic conditions on a dispensary register (by disease chapter).",
        "0",
    ),
    _pf(
        "school_status",
        "VARCHAR",
        "schooling",
        "MAX(CASE s.status WHEN 'обучается' THEN 'enrolled' WHEN 'не_обучается' THEN 'not_attending' "
        "ELSE 'preschool' END)",
        "School status: enrolled, not_attending or preschool; empty when no record.",
    ),
    _pf("grade", "INTEGER", "schooling", "MAX(s.grade)", "School grade."),
    _pf(
        "special_needs",
        "BOOLEAN",
        "schooling",
        "BOOL_OR(s.special_needs = 'да')",
        "Special educational needs recorded.",
        "FALSE",
    ),
    _pf(
        "special_needs_support",
        "BOOLEAN",
        "schooling",
        "BOOL_OR(s.special_needs_support = 'да')",
        "Receives special-needs support.",
        "FALSE",
    ),
    _pf("owns_dwelling", "BOOLEAN", "dwellings", _Y, "Owns (a share of) a dwelling.", "FALSE"),
    _pf(
        "dwelling_area",
        "DOUBLE",
        "dwellings",
        "SUM(s.area_m2 * COALESCE(s.share, 1))",
        "Area of owned dwellings, by share (m²).",
        "0",
    ),
    _pf(
        "dwelling_rooms", "INTEGER", "dwellings", "MAX(s.rooms)", "Rooms of the largest owned dwelling.", "0"
    ),
    _pf("vehicles", "INTEGER", "vehicles", "COUNT(*)", "Registered vehicles.", "0"),
    _pf("land_ha", "DOUBLE", "land", "SUM(s.area_ha)", "Land plots (hectares).", "0"),
    _pf(
        "livestock",
        "DOUBLE",
        "livestock",
        "SUM(s.sheep_equivalent_heads)",
        "Livestock in sheep equivalents.",
        "0",
    ),
    _pf("loan_amount", "DOUBLE", "loans", "SUM(s.amount)", "Outstanding consumer loans (₸).", "0"),
    _pf("overdue_days", "INTEGER", "loans", "MAX(s.overdue_days)", "Longest arrears on a loan (days).", "0"),
    _pf("enforcement", "BOOLEAN", "enforcement", _Y, "Open enforcement proceedings.", "FALSE"),
    _pf(
        "violence_victim",
        "INTEGER",
        "violence_victim",
        "COUNT(*)",
        "Domestic-violence reports as the victim in the last 12 months.",
        "0",
    ),
    _pf(
        "recent_violence_victim",
        "BOOLEAN",
        "violence_victim",
        "MAX(s.report_date) > {half_year_ago}",
        "A domestic-violence report as the victim in the last 6 months.",
        "FALSE",
    ),
    _pf(
        "protective_order",
        "BOOLEAN",
        "protective_order",
        _Y,
        "Protected by a protective order issued in the last 12 months.",
        "FALSE",
    ),
    _pf(
        "violence_offender",
        "INTEGER",
        "violence_offender",
        "COUNT(*)",
        "Named as the other party in a domestic-violence report or order in the last 12 months.",
        "0",
    ),
    _pf(
        "juvenile_offence",
        "BOOLEAN",
        "juvenile_offence",
        _Y,
        "Named in a juvenile-offence report in the last 12 months.",
        "FALSE",
    ),
    _pf("housing_queue", "BOOLEAN", "housing_queue", _Y, "On the local housing queue.", "FALSE"),
    _pf(
        "housing_queue_years",
        "INTEGER",
        "housing_queue",
        "MAX(DATE_SUB('year', s.queue_date, {end}))",
        "Years on the housing queue.",
    ),
    _pf(
        "utility_debt", "DOUBLE", "utility_debt", "SUM(s.amount)", "Debt for housing and utilities (₸).", "0"
    ),
    _pf("has_phone", "BOOLEAN", "phone", _Y, "Has a registered mobile number.", "FALSE"),
    _pf(
        "divorced_recently",
        "BOOLEAN",
        "divorce",
        _Y,
        "Party to a divorce registered in the last 12 months.",
        "FALSE",
    ),
    _pf(
        "divorced_recently_partner",
        "BOOLEAN",
        "divorce_partner",
        _Y,
        "Party (second) to a divorce registered in the last 12 months.",
        "FALSE",
    ),
    _pf(
        "under_guardianship",
        "BOOLEAN",
        "guardianship",
        _Y,
        "A guardianship act names the person as the ward.",
        "FALSE",
    ),
)


def _ff(name: str, type_: str, sql: str, description: str, feeds: tuple[str, ...] = ()) -> Fact:
    return Fact(name, type_, description, sql, "family", None, None, feeds)


_INCOME_FEEDS = ("employment_contracts", "tax", "pension_payments", "social_payments")
_WORKING_AGE = "p.age >= 18 AND p.age < {pension_age}"
_OFFICIAL = (
    "(p.wage > 0 OR p.declared_income > 0 OR p.pension > 0 OR p.benefits > 0 OR p.contribution_months > 0)"
)
FAMILY_FACTS: tuple[Fact, ...] = (
    _ff("size", "INTEGER", "COUNT(*)", "Members.", ("civil_registry",)),
    _ff("adults", "INTEGER", "SUM(CASE WHEN NOT p.minor THEN 1 ELSE 0 END)", "Members aged 18 or over."),
    _ff("minors", "INTEGER", "SUM(CASE WHEN p.minor THEN 1 ELSE 0 END)", "Members under 18."),
    _ff("under3", "INTEGER", "SUM(CASE WHEN p.age < 3 THEN 1 ELSE 0 END)", "Children under 3."),
    _ff("under7", "INTEGER", "SUM(CASE WHEN p.age < 7 THEN 1 ELSE 0 END)", "Children under 7."),
    _ff(
        "school_age",
        "INTEGER",
        "SUM(CASE WHEN p.age >= 7 AND p.age < 18 THEN 1 ELSE 0 END)",
        "Children aged 7 to 17.",
    ),
    _ff(
        "elderly",
        "INTEGER",
        "SUM(CASE WHEN p.age >= {pension_age} THEN 1 ELSE 0 END)",
        "Members of pension age.",
    ),
    _ff(
        "working_age",
        "INTEGER",
        f"SUM(CASE WHEN {_WORKING_AGE} THEN 1 ELSE 0 END)",
        "Members of working age.",
    ),
    _ff(
        "women_working_age",
        "INTEGER",
        f"SUM(CASE WHEN {_WORKING_AGE} AND p.sex = 'F' THEN 1 ELSE 0 END)",
        "Women of working age.",
    ),
    _ff(
        "earners",
        "INTEGER",
        "SUM(CASE WHEN p.wage > 0 OR p.declared_income > 0 THEN 1 ELSE 0 END)",
        "Members with a wage or declared business income.",
        ("employment_contracts", "tax"),
    ),
    _ff(
        "with_official_income",
        "INTEGER",
        f"SUM(CASE WHEN {_OFFICIAL} THEN 1 ELSE 0 END)",
        "Members with any official income (wage, declared income, pension, benefit or contributions).",
        (*_INCOME_FEEDS, "pension_contributions"),
    ),
    _ff(
        "income",
        "DOUBLE",
        "SUM(p.wage + p.declared_income + p.pension + p.benefits)",
        "Registered monthly income of the family: wages, declared business income, pensions and "
        "benefits (₸).",
        _INCOME_FEEDS,
    ),
    _ff(
        "earned_income",
        "DOUBLE",
        "SUM(p.wage + p.declared_income)",
        "Wages and declared business income (₸ a month).",
        ("employment_contracts", "tax"),
    ),
    _ff(
        "equivalent_size",
        "DOUBLE",
        "1 + 0.7 * GREATEST(SUM(CASE WHEN NOT p.minor THEN 1 ELSE 0 END) - 1, 0) "
        "+ 0.5 * SUM(CASE WHEN p.minor THEN 1 ELSE 0 END)",
        "Equivalent adults (OECD-modified scale: 1 for the first adult, 0.7 for each other, 0.5 per child).",
    ),
    _ff(
        "owns_dwelling", "BOOLEAN", "BOOL_OR(p.owns_dwelling)", "A member owns a dwelling.", ("real_estate",)
    ),
    _ff(
        "dwelling_area",
        "DOUBLE",
        "SUM(p.dwelling_area)",
        "Area of the members' dwellings (m²).",
        ("real_estate",),
    ),
    _ff(
        "dwelling_rooms",
        "INTEGER",
        "MAX(p.dwelling_rooms)",
        "Rooms of the largest dwelling.",
        ("real_estate",),
    ),
    _ff("vehicles", "INTEGER", "SUM(p.vehicles)", "Vehicles registered to members.", ("vehicles",)),
    _ff("land_ha", "DOUBLE", "SUM(p.land_ha)", "Land (hectares).", ("land_livestock",)),
    _ff("livestock", "DOUBLE", "SUM(p.livestock)", "Livestock (sheep equivalents).", ("land_livestock",)),
    _ff("loan_amount", "DOUBLE", "SUM(p.loan_amount)", "Outstanding consumer loans (₸).", ("debts",)),
    _ff(
        "overdue_days", "INTEGER", "MAX(p.overdue_days)", "Longest arrears of any member (days).", ("debts",)
    ),
    _ff(
        "utility_debt",
        "DOUBLE",
        "SUM(p.utility_debt)",
        "Housing and utility debt (₸).",
        ("housing_utilities",),
    ),
    _ff(
        "housing_queue",
        "BOOLEAN",
        "BOOL_OR(p.housing_queue)",
        "On the housing queue.",
        ("housing_utilities",),
    ),
    _ff(
        "housing_queue_years",
        "INTEGER",
        "MAX(p.housing_queue_years)",
        "Years on the housing queue.",
        ("housing_utilities",),
    ),
    _ff(
        "has_phone",
        "BOOLEAN",
        "BOOL_OR(p.has_phone)",
        "A member has a registered mobile number.",
        ("mobile_numbers",),
    ),
    _ff(
        "tsa",
        "BOOLEAN",
        "BOOL_OR(p.tsa)",
        "The family receives targeted social assistance.",
        ("social_payments",),
    ),
    _ff(
        "breadwinner_benefit",
        "BOOLEAN",
        "BOOL_OR(p.breadwinner_benefit)",
        "A member receives the loss-of-breadwinner benefit.",
        ("social_payments",),
    ),
    _ff(
        "recent_violence",
        "BOOLEAN",
        "BOOL_OR(p.recent_violence_victim)",
        "A member was the victim in a domestic-violence report in the last 6 months.",
        ("police",),
    ),
    _ff(
        "couple",
        "BOOLEAN",
        "BOOL_OR(p.role IN ('spouse', 'partner'))",
        "The head lives with a spouse or partner.",
        ("civil_acts",),
    ),
    _ff(
        "head_sex",
        "VARCHAR",
        "MAX(CASE WHEN p.is_head THEN p.sex END)",
        "Sex of the head.",
        ("civil_registry",),
    ),
    _ff(
        "head_age",
        "INTEGER",
        "MAX(CASE WHEN p.is_head THEN p.age END)",
        "Age of the head.",
        ("civil_registry",),
    ),
    _ff(
        "rural",
        "BOOLEAN",
        "MAX(f.rural)",
        "The family's registered settlement is rural.",
        ("address_registry",),
    ),
    _ff(
        "uncertain_members",
        "INTEGER",
        "SUM(CASE WHEN p.uncertain THEN 1 ELSE 0 END)",
        "Members whose place in the family is uncertain.",
    ),
    _ff(
        "pension_income",
        "DOUBLE",
        "SUM(p.pension)",
        "Pensions paid to members in the latest month (₸).",
        ("pension_payments",),
    ),
    _ff(
        "benefit_income",
        "DOUBLE",
        "SUM(p.benefits)",
        "Social benefits paid to members in the latest month (₸).",
        ("social_payments",),
    ),
    _ff(
        "own_minor_children",
        "INTEGER",
        "SUM(CASE WHEN p.minor AND p.role IN ('child', 'stepchild') THEN 1 ELSE 0 END)",
        "Children and stepchildren of the head under 18.",
        ("civil_registry",),
    ),
    _ff(
        "minors_without_parents",
        "INTEGER",
        "CASE WHEN SUM(CASE WHEN p.role IN ('adult_child', 'child_in_law') THEN 1 ELSE 0 END) = 0 "
        "THEN SUM(CASE WHEN p.minor AND p.role NOT IN ('head', 'spouse', 'partner', 'child', 'stepchild') "
        "THEN 1 ELSE 0 END) ELSE 0 END",
        "Members under 18 who are not the head's (step)children (grandchildren, other relatives), in a "
        "family where no adult child or child-in-law of the head, who could be their parent, lives.",
        ("civil_registry",),
    ),
    _ff(
        "unemployed_parents",
        "INTEGER",
        "SUM(CASE WHEN p.unemployed AND p.role IN ('head', 'spouse', 'partner') THEN 1 ELSE 0 END)",
        "The head and the head's spouse or partner registered as unemployed (0, 1 or 2).",
        ("unemployment",),
    ),
    _ff(
        "severely_disabled",
        "INTEGER",
        "SUM(CASE WHEN p.disability_group IN (1, 2, 4) THEN 1 ELSE 0 END)",
        "Members with disability group I or II, or children with a disability.",
        ("disability",),
    ),
    _ff(
        "women_not_working",
        "INTEGER",
        f"SUM(CASE WHEN {_WORKING_AGE} AND p.sex = 'F' AND p.wage = 0 AND p.declared_income = 0 "
        "AND p.contribution_months = 0 THEN 1 ELSE 0 END)",
        "Women of working age with no wage, no declared income and no pension contribution in the last "
        "12 months.",
        ("employment_contracts", "tax", "pension_contributions"),
    ),
    _ff(
        "young_mothers",
        "INTEGER",
        "CASE WHEN SUM(CASE WHEN p.minor AND p.role IN ('child', 'stepchild') THEN 1 ELSE 0 END) > 0 "
        "THEN SUM(CASE WHEN p.sex = 'F' AND p.age < 20 AND p.role IN ('head', 'spouse', 'partner') "
        "THEN 1 ELSE 0 END) ELSE 0 END",
        "Women under 20 who head the family or are the head's spouse or partner, in a family with a "
        "child of the head under 18.",
        ("civil_registry",),
    ),
    _ff(
        "recent_divorce",
        "BOOLEAN",
        "BOOL_OR(p.divorced_recently OR p.divorced_recently_partner)",
        "A member is a party to a divorce registered in the last 12 months.",
        ("civil_acts",),
    ),
    _ff(
        "large_family_allowance",
        "BOOLEAN",
        "BOOL_OR(p.large_family_allowance)",
        "A member receives the large-family allowance.",
        ("social_payments",),
    ),
)
"""Family facts. Derived ones (``income_per_member``, ...) are computed from these in
:data:`DERIVED_FACTS`."""

DERIVED_FACTS: tuple[Fact, ...] = (
    _ff(
        "income_per_member",
        "DOUBLE",
        "income / size",
        "Registered monthly income per member (₸).",
        _INCOME_FEEDS,
    ),
    _ff(
        "income_per_equivalent",
        "DOUBLE",
        "income / equivalent_size",
        "Registered monthly income per equivalent adult (₸).",
        _INCOME_FEEDS,
    ),
    _ff(
        "dependants_per_earner",
        "DOUBLE",
        "(size - earners) / GREATEST(earners, 1)",
        "Members without earnings per earner (all members when nobody earns).",
        ("employment_contracts", "tax"),
    ),
    _ff(
        "area_per_member",
        "DOUBLE",
        "dwelling_area / size",
        "Owned dwelling area per member (m²; 0 without an owned dwelling).",
        ("real_estate",),
    ),
    _ff(
        "members_per_room",
        "DOUBLE",
        "CASE WHEN dwelling_rooms > 0 THEN size * 1.0 / dwelling_rooms END",
        "Members per room of the largest owned dwelling (empty without one).",
        ("real_estate",),
    ),
)

FACT = {f.name: f for f in (*PERSON_FACTS, *FAMILY_FACTS, *DERIVED_FACTS)}
PERSON_FACT = {f.name: f for f in PERSON_FACTS}
FAMILY_FACT = {f.name: f for f in (*FAMILY_FACTS, *DERIVED_FACTS)}


@dataclass(frozen=True)
class Window:
    """The dates and periods a run's selections use."""

    period: str
    end: dt.date

    def substitutions(self) -> dict[str, str]:
        year_ago = self.end - dt.timedelta(days=365)
        half = self.end - dt.timedelta(days=182)
        return {
            "{end}": date_literal(self.end),
            "{year_ago}": date_literal(year_ago),
            "{half_year_ago}": date_literal(half),
            "{from_period}": previous_period(self.period, 11),
            "{period_compact}": self.period.replace("-", ""),
            "{period}": self.period,
        }

    def fill(self, sql: str) -> str:
        for k, v in self.substitutions().items():
            sql = sql.replace(k, v)
        return sql


def selection_sql(sel: Selection, window: Window) -> str:
    """``ind_sel_<name>``: the selection's records of family members (``ind_members``), with the person
    they name, their family and its bucket, the record key and the delivery period (the provenance of
    every fact computed from them)."""
    return Group(sel.feed, sel.role, (sel,)).sql(window)


def linked_sql(feed: str, role: str) -> str:
    """The records of ``feed`` that ``person_links`` links through ``role`` to the members of
    ``ind_members``: record key, person, family and bucket."""
    return f"""
        SELECT l.record_key, l.person_id, mm.family_id, mm.bucket
        FROM person_links AS l JOIN ind_members AS mm ON mm.person_id = l.person_id
        WHERE l.feed = '{feed}' AND l.role = '{role}'
        """


def _where(sel: Selection, window: Window) -> str:
    """The selection's condition on its feed's history rows (alias ``x``) as of ``window``."""
    return window.fill(
        sel.where.replace("{valid}", valid_at("x", window.period)).replace("{date}", sel.date or "")
    )


@dataclass(frozen=True)
class Group:
    """The selections that link the same feed's records through the same role: they are selected by one
    join of the feed's history to its links and the members (``ind_grp_<feed>_<role>``, each row flagged
    ``_in_<selection>`` for the selections it belongs to), so that a feed read by several selections is
    joined once; a group of one selection is the selection itself (``ind_sel_<name>``, no flag)."""

    feed: str
    role: str
    selections: tuple[Selection, ...]

    @property
    def table(self) -> str:
        if len(self.selections) == 1:
            return f"ind_sel_{self.selections[0].name}"
        return f"ind_grp_{self.feed}_{self.role}"

    def _columns(self, window: Window | None) -> list[str]:
        """The record's fields the group's selections need and, for a group of several, each selection's
        flag: its condition over the history row (``window``), or the flag column (``None``)."""
        columns = list(dict.fromkeys(f"x.{c}" for sel in self.selections for c in sel.columns))
        if len(self.selections) > 1:
            columns += [
                f"x._in_{sel.name}" if window is None else f"({_where(sel, window)}) AS _in_{sel.name}"
                for sel in self.selections
            ]
        return columns

    def _either(self, window: Window) -> str:
        """The condition a history row meets when some selection of the group takes it."""
        return " OR ".join(f"({_where(sel, window)})" for sel in self.selections)

    def rows_sql(self, window: Window) -> str:
        """The history rows of the group's feed that some selection of it takes as of ``window``: record
        key, delivery period, fields and flags (read by :meth:`sql` with ``rows``)."""
        return f"""
        SELECT x._key, x._period, {", ".join(self._columns(window))}
        FROM src_{self.feed} AS x
        WHERE {self._either(window)}
        """

    def sql(self, window: Window, *, linked: str | None = None, rows: str | None = None) -> str:
        """The group's records, of ``ind_members`` or, with ``linked`` (a table of :func:`linked_sql`),
        of the records it links; with ``rows`` (a table of :meth:`rows_sql`), read from those rows
        instead of the feed's history."""
        source = linked if linked is not None else f"({linked_sql(self.feed, self.role)})"
        if rows is None:
            table, columns, where = f"src_{self.feed}", self._columns(window), f"WHERE {self._either(window)}"
        else:
            table, columns, where = rows, self._columns(None), ""
        return f"""
        SELECT l.person_id, l.family_id, l.bucket, '{self.feed}' AS feed, x._key AS record_key,
            x._period AS delivery_period, {", ".join(columns)}
        FROM {table} AS x
        JOIN {source} AS l ON l.record_key = x._key
        {where}
        """

    def views(self) -> dict[str, str]:
        """``ind_sel_<name>`` of each selection of a group of several, as a query over the group's table."""
        if len(self.selections) == 1:
            return {}
        return {
            f"ind_sel_{sel.name}": (
                f"SELECT person_id, family_id, bucket, feed, record_key, delivery_period, "
                f"{', '.join(sel.columns)} FROM {self.table} WHERE _in_{sel.name}"
            )
            for sel in self.selections
        }


def selection_groups() -> list[Group]:
    """The selections grouped by feed and role, in the order of their first selection."""
    groups: dict[tuple[str, str], list[Selection]] = {}
    for sel in SELECTIONS:
        groups.setdefault((sel.feed, sel.role), []).append(sel)
    return [Group(feed, role, tuple(sels)) for (feed, role), sels in groups.items()]


def members_sql(window: Window, buckets: Sequence[str] = ("TRUE",)) -> str:
    """``ind_members``: every family member with sex, age, role, whether the placement is uncertain, and
    the number of the first of ``buckets`` (conditions on ``family_id``) its family is in."""
    end = date_literal(window.end)
    bucket = " ".join(f"WHEN {cond} THEN {b}" for b, cond in enumerate(buckets))
    return f"""
        SELECT m.*, CAST(CASE {bucket} ELSE {len(buckets)} END AS BIGINT) AS bucket FROM (
            SELECT fm.family_id, fm.person_id, fm.role, COALESCE(fm.uncertain, FALSE) AS uncertain,
                CASE WHEN p.sex IN ('M', 'М') THEN 'M' WHEN p.sex IN ('F', 'Ж') THEN 'F' END AS sex,
                CASE WHEN p.birth_date IS NULL THEN NULL ELSE DATE_SUB('year', p.birth_date, {end}) END AS age
            FROM family_members AS fm JOIN persons AS p ON p.person_id = fm.person_id
        ) AS m
    """


_CASTS = {"DOUBLE": "DOUBLE", "INTEGER": "BIGINT", "BOOLEAN": "BOOLEAN", "VARCHAR": "VARCHAR"}


def typed(fact: Fact, sql: str) -> str:
    """``sql`` cast to the fact's type; doubles rounded to six decimals, so that sums taken in another
    order (another engine, another partitioning) give the same value."""
    cast = f"CAST({sql} AS {_CASTS[fact.type]})"
    return round6(cast) if fact.type == "DOUBLE" else cast


def round6(sql: str) -> str:
    """``sql`` (a double) rounded half up to six decimals by integer arithmetic: engines implement
    ``ROUND`` of a double differently at exact halves, but agree on a floor."""
    return f"(FLOOR(({sql}) * CAST(1000000 AS DOUBLE) + CAST(0.5 AS DOUBLE)) / CAST(1000000 AS DOUBLE))"


def person_facts_sql(window: Window) -> str:
    """``person_facts``: one row per family member with every person fact (the selections'
    aggregates joined to the member).

    The facts of the selections of one group (:class:`Group`) are aggregated in one pass over the
    group's table (:func:`_fact_sources`), each fact over its selection's rows only (:func:`flagged`),
    so that a group of several selections is read, grouped and joined once rather than once each; a
    fact is NULL for a person without a row of its selection, as a join to the selection alone would
    make it."""
    parts = [f"{typed(f, window.fill(f.sql))} AS {f.name}" for f in PERSON_FACTS if f.selection is None]
    by_sel: dict[str, list[Fact]] = {}
    for f in PERSON_FACTS:
        if f.selection is not None:
            by_sel.setdefault(f.selection, []).append(f)
    values: dict[str, str] = {}
    joins: list[str] = []
    for i, (table, sels) in enumerate(_fact_sources(by_sel)):
        aggs: list[str] = []
        for sel in sels:
            facts = by_sel[sel.name]
            if table == f"ind_sel_{sel.name}":
                aggs += [f"{window.fill(f.sql)} AS {f.name}" for f in facts]
                values |= {f.name: f"a{i}.{f.name}" for f in facts}
                continue
            flag = f"_in_{sel.name}"
            aggs.append(f"COUNT(CASE WHEN s.{flag} THEN 1 END) AS _n_{sel.name}")
            aggs += [f"{flagged(window.fill(f.sql), flag)} AS {f.name}" for f in facts]
            values |= {f.name: f"CASE WHEN a{i}._n_{sel.name} > 0 THEN a{i}.{f.name} END" for f in facts}
        joins.append(
            f"LEFT JOIN (SELECT s.person_id, {', '.join(aggs)} FROM {table} AS s GROUP BY s.person_id) "
            f"AS a{i} ON a{i}.person_id = m.person_id"
        )
    for facts in by_sel.values():
        for f in facts:
            filled = f"COALESCE({values[f.name]}, {f.default})" if f.default else values[f.name]
            parts.append(f"{typed(f, filled)} AS {f.name}")
    return f"SELECT m.family_id, m.person_id, {', '.join(parts)} FROM ind_members AS m\n" + "\n".join(joins)


def _fact_sources(by_sel: dict[str, list[Fact]]) -> list[tuple[str, list[Selection]]]:
    """The tables person facts are aggregated from, each with the selections whose facts it gives: a
    group's table for its selections, or a selection's own table where it is alone in its group or one
    of its facts counts distinct values (DuckDB computes a distinct aggregate apart from the others,
    over every row of the group: the dispensary's 0.55 M rows would become the health group's 4.4 M)."""
    out: list[tuple[str, list[Selection]]] = []
    for group in selection_groups():
        sels = [s for s in group.selections if s.name in by_sel]
        alone = [
            s
            for s in sels
            if len(group.selections) == 1 or any("DISTINCT" in f.sql.upper() for f in by_sel[s.name])
        ]
        together = [s for s in sels if s not in alone]
        out += [(f"ind_sel_{s.name}", [s]) for s in alone]
        if together:
            out.append((group.table, together))
    return out


def flagged(sql: str, flag: str) -> str:
    """``sql``, an expression of aggregates over one selection's rows (alias ``s``), computed over the
    rows of its group where the column ``flag`` is set: each aggregate's argument becomes ``CASE WHEN
    s.<flag> THEN <argument> END`` (``COUNT(*)`` counts the flagged rows), and aggregates skip NULLs.
    A column of ``s`` outside an aggregate, or an aggregate whose arguments are not understood, is
    refused rather than computed over the whole group."""
    tree = sqlglot.parse_one(sql, read="duckdb")

    def only(arg: exp.Expr) -> exp.Expr:
        return exp.Case(ifs=[exp.If(this=exp.column(flag, table="s"), true=arg)])

    for agg in list(tree.find_all(exp.AggFunc)):
        arg = agg.this
        if agg.expressions or arg is None or agg.find_ancestor(exp.AggFunc) is not None:
            raise ValueError(f"cannot restrict the aggregate {agg.sql('duckdb')} to a selection's rows")
        if isinstance(arg, exp.Star):
            agg.set("this", only(exp.Literal.number(1)))
        elif isinstance(arg, exp.Distinct):
            arg.set("expressions", [only(e) for e in arg.expressions])
        else:
            agg.set("this", only(arg))
    for col in tree.find_all(exp.Column):
        if col.table == "s" and col.name != flag and col.find_ancestor(exp.AggFunc) is None:
            raise ValueError(f"{sql!r} reads {col.sql('duckdb')} outside an aggregate")
    return tree.sql("duckdb")


def family_facts_sql(window: Window, pension_age: int) -> str:
    """``family_facts``: one row per family with every family fact, its territory (KATO, region) and
    whether its settlement is rural."""
    base = ", ".join(
        f"{typed(f, window.fill(f.sql).replace('{pension_age}', str(pension_age)))} AS {f.name}"
        for f in FAMILY_FACTS
    )
    derived = ", ".join(f"{typed(f, f.sql)} AS {f.name}" for f in DERIVED_FACTS)
    return f"""
        WITH fam AS (
            SELECT fa.family_id, fa.kato, SUBSTRING(fa.kato, 1, 2) AS region,
                COALESCE(t.rural, FALSE) AS rural
            FROM families AS fa LEFT JOIN ind_settlements AS t ON t.kato = fa.kato
        ),
        agg AS (
            SELECT p.family_id, MAX(f.kato) AS kato, MAX(f.region) AS region, {base}
            FROM person_facts AS p JOIN fam AS f ON f.family_id = p.family_id
            GROUP BY p.family_id
        )
        SELECT agg.*, {derived} FROM agg
    """
