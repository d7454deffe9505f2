"""The plain-language documentation of the indicator catalogue, generated from the catalogue and the fact
vocabulary, so it cannot drift from what is computed.

``docs/methodology/indicators.md`` is :func:`render` ``("en")`` and ``docs/methodology/indicators.ru.md``
is :func:`render` ``("ru")``; ``python -m familycard.indicators.docs`` rewrites both. The Russian text
uses the catalogue's Russian names and descriptions and :data:`FACT_RU` for the facts.
"""

from __future__ import annotations

from pathlib import Path

import sqlglot
from sqlglot import exp

from familycard.indicators.compute import family_fact_inputs
from familycard.indicators.facts import (
    DERIVED_FACTS,
    FAMILY_FACT,
    FAMILY_FACTS,
    PERSON_FACT,
    PERSON_FACTS,
    Fact,
)
from familycard.indicators.methodology import DOMAINS, Indicator, Methodology, load_methodology

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "methodology"
PATHS = {"en": DOCS_DIR / "indicators.md", "ru": DOCS_DIR / "indicators.ru.md"}

FACT_RU: dict[tuple[str, str], str] = {
    # person facts
    ("person", "age"): "Возраст в полных годах на конец периода.",
    ("person", "sex"): "Пол по данным гражданского регистра: M или F.",
    ("person", "role"): "Роль в семье: head (глава), spouse (супруг), partner (партнёр), child (ребёнок), "
    "parent (родитель) и т. д.",
    ("person", "is_head"): "Глава семьи (основной получатель).",
    ("person", "minor"): "Младше 18 лет.",
    ("person", "uncertain"): "Место человека в семье не установлено надёжно.",
    ("person", "registered"): "Имеет зарегистрированное место жительства.",
    ("person", "wage"): "Месячная зарплата по открытым трудовым договорам (₸).",
    ("person", "contracts"): "Число открытых трудовых договоров.",
    ("person", "contribution_months"): "Число месяцев с обязательным пенсионным взносом за последние 12.",
    ("person", "self_employed"): "Платил взносы как индивидуальный предприниматель за последние 12 месяцев.",
    ("person", "declared_income"): "Доход, задекларированный в налоговых органах за последние 12 месяцев, "
    "в среднем за месяц (₸).",
    ("person", "pension"): "Пенсия, выплаченная в последнем месяце (₸).",
    ("person", "benefits"): "Социальные пособия, выплаченные в последнем месяце (₸).",
    ("person", "tsa"): "Получает адресную социальную помощь.",
    ("person", "large_family_allowance"): "Получает пособие многодетным семьям.",
    ("person", "childcare_benefit"): "Получает пособие по уходу за ребёнком (до полутора лет).",
    ("person", "disability_benefit"): "Получает пособие по инвалидности.",
    ("person", "breadwinner_benefit"): "Получает пособие по случаю потери кормильца.",
    ("person", "birth_grant"): "Получил единовременное пособие на рождение за последние 12 месяцев.",
    ("person", "unemployed"): "Зарегистрирован безработным.",
    ("person", "unemployed_months"): "Месяцев с регистрации безработным.",
    ("person", "disability_group"): "Группа инвалидности: 1, 2, 3 (взрослые), 4 (ребёнок с инвалидностью); "
    "пусто, если инвалидности нет.",
    ("person", "insured"): "Застрахован в системе обязательного социального медицинского страхования "
    "(пусто, если в фонде нет записи).",
    ("person", "attached"): "Прикреплён к организации первичной медико-санитарной помощи.",
    ("person", "chronic_conditions"): "Число хронических заболеваний на диспансерном учёте (по классам МКБ).",
    ("person", "school_status"): "Статус обучения: enrolled (обучается), not_attending (не обучается) или "
    "preschool (дошкольная организация); пусто, если записи нет.",
    ("person", "grade"): "Класс в школе.",
    ("person", "special_needs"): "Зафиксированы особые образовательные потребности.",
    ("person", "special_needs_support"): "Получает поддержку при особых образовательных потребностях.",
    ("person", "owns_dwelling"): "Владеет жильём (или долей в жилье).",
    ("person", "dwelling_area"): "Площадь жилья в собственности с учётом долей (м²).",
    ("person", "dwelling_rooms"): "Число комнат самого большого жилья в собственности.",
    ("person", "vehicles"): "Число зарегистрированных транспортных средств.",
    ("person", "land_ha"): "Земельные участки (гектары).",
    ("person", "livestock"): "Скот в пересчёте на условные головы овец.",
    ("person", "loan_amount"): "Непогашенные потребительские кредиты (₸).",
    ("person", "overdue_days"): "Самая длительная просрочка по кредиту (дней).",
    ("person", "enforcement"): "Открытое исполнительное производство.",
    ("person", "violence_victim"): "Сообщения о бытовом насилии, где человек — потерпевший, "
    "за последние 12 месяцев.",
    ("person", "recent_violence_victim"): "Сообщение о бытовом насилии, где человек — потерпевший, "
    "за последние 6 месяцев.",
    ("person", "protective_order"): "Под защитой защитного предписания, вынесенного за последние 12 месяцев.",
    ("person", "violence_offender"): "Назван второй стороной в сообщении о бытовом насилии или в защитном "
    "предписании за последние 12 месяцев.",
    ("person", "juvenile_offence"): "Упомянут в сообщении о правонарушении несовершеннолетнего "
    "за последние 12 месяцев.",
    ("person", "housing_queue"): "Состоит в местной очереди на жильё.",
    ("person", "housing_queue_years"): "Лет в очереди на жильё.",
    ("person", "utility_debt"): "Задолженность за жилищно-коммунальные услуги (₸).",
    ("person", "has_phone"): "Имеет зарегистрированный номер мобильной связи.",
    ("person", "divorced_recently"): "Сторона расторжения брака, зарегистрированного "
    "за последние 12 месяцев.",
    ("person", "divorced_recently_partner"): "Вторая сторона расторжения брака, зарегистрированного "
    "за последние 12 месяцев.",
    ("person", "under_guardianship"): "Назван подопечным в акте об опеке.",
    # family facts
    ("family", "size"): "Число членов семьи.",
    ("family", "adults"): "Члены семьи 18 лет и старше.",
    ("family", "minors"): "Члены семьи младше 18 лет.",
    ("family", "under3"): "Дети младше 3 лет.",
    ("family", "under7"): "Дети младше 7 лет.",
    ("family", "school_age"): "Дети от 7 до 17 лет.",
    ("family", "elderly"): "Члены семьи пенсионного возраста.",
    ("family", "working_age"): "Члены семьи трудоспособного возраста.",
    ("family", "women_working_age"): "Женщины трудоспособного возраста.",
    ("family", "earners"): "Члены семьи с зарплатой или задекларированным предпринимательским доходом.",
    ("family", "with_official_income"): "Члены семьи с любым официальным доходом (зарплата, "
    "задекларированный доход, пенсия, пособие или пенсионные взносы).",
    ("family", "income"): "Зарегистрированный ежемесячный доход семьи: зарплаты, задекларированный "
    "предпринимательский доход, пенсии и пособия (₸).",
    ("family", "earned_income"): "Зарплаты и задекларированный предпринимательский доход (₸ в месяц).",
    ("family", "equivalent_size"): "Число эквивалентных взрослых (модифицированная шкала ОЭСР: 1 для первого "
    "взрослого, 0,7 для каждого следующего, 0,5 на ребёнка).",
    ("family", "owns_dwelling"): "Член семьи владеет жильём.",
    ("family", "dwelling_area"): "Площадь жилья членов семьи (м²).",
    ("family", "dwelling_rooms"): "Число комнат самого большого жилья.",
    ("family", "vehicles"): "Транспортные средства, зарегистрированные на членов семьи.",
    ("family", "land_ha"): "Земля (гектары).",
    ("family", "livestock"): "Скот (условные головы овец).",
    ("family", "loan_amount"): "Непогашенные потребительские кредиты (₸).",
    ("family", "overdue_days"): "Самая длительная просрочка среди членов семьи (дней).",
    ("family", "utility_debt"): "Задолженность за жилищно-коммунальные услуги (₸).",
    ("family", "housing_queue"): "Состоит в очереди на жильё.",
    ("family", "housing_queue_years"): "Лет в очереди на жильё.",
    ("family", "has_phone"): "У члена семьи есть зарегистрированный номер мобильной связи.",
    ("family", "tsa"): "Семья получает адресную социальную помощь.",
    ("family", "breadwinner_benefit"): "Член семьи получает пособие по случаю потери кормильца.",
    ("family", "recent_violence"): "Член семьи — потерпевший в сообщении о бытовом насилии "
    "за последние 6 месяцев.",
    ("family", "couple"): "Глава семьи живёт с супругом или партнёром.",
    ("family", "head_sex"): "Пол главы семьи.",
    ("family", "head_age"): "Возраст главы семьи.",
    ("family", "rural"): "Населённый пункт регистрации семьи — сельский.",
    ("family", "uncertain_members"): "Члены семьи, чьё место в семье не установлено надёжно.",
    ("family", "pension_income"): "Пенсии, выплаченные членам семьи в последнем месяце (₸).",
    ("family", "benefit_income"): "Социальные пособия, выплаченные членам семьи в последнем месяце (₸).",
    ("family", "own_minor_children"): "Дети и пасынки (падчерицы) главы семьи младше 18 лет.",
    ("family", "minors_without_parents"): "Члены семьи младше 18 лет, не являющиеся детьми главы (внуки, "
    "другие родственники), в семье, где нет взрослых детей главы или их супругов, которые могли бы быть "
    "их родителями.",
    ("family", "unemployed_parents"): "Глава семьи и его супруг или партнёр, зарегистрированные "
    "безработными (0, 1 или 2).",
    ("family", "severely_disabled"): "Члены семьи с инвалидностью I или II группы или дети с инвалидностью.",
    ("family", "women_not_working"): "Женщины трудоспособного возраста без зарплаты, задекларированного "
    "дохода и пенсионных взносов за последние 12 месяцев.",
    ("family", "young_mothers"): "Женщины младше 20 лет — глава семьи или супруга (партнёрша) главы — "
    "в семье, где есть ребёнок главы младше 18 лет.",
    ("family", "recent_divorce"): "Член семьи — сторона расторжения брака, зарегистрированного "
    "за последние 12 месяцев.",
    ("family", "large_family_allowance"): "Член семьи получает пособие многодетным семьям.",
    # derived family facts
    ("family", "income_per_member"): "Зарегистрированный ежемесячный доход на члена семьи (₸).",
    ("family", "income_per_equivalent"): "Зарегистрированный ежемесячный доход на эквивалентного "
    "взрослого (₸).",
    ("family", "dependants_per_earner"): "Члены семьи без заработка на одного работающего (все члены семьи, "
    "если никто не работает).",
    ("family", "area_per_member"): "Площадь жилья в собственности на члена семьи (м²; 0 без жилья).",
    ("family", "members_per_room"): "Членов семьи на комнату самого большого жилья в собственности "
    "(пусто без жилья).",
}
"""The Russian description of every fact, by (unit, name): person and family facts share some names."""

_T = {
    "en": {
        "title": "Well-being indicators, facts and difficult life situations",
        "intro": (
            "This page is generated from `methodology/wellbeing/indicators.toml`, "
            "`methodology/wellbeing/situations.toml` and `familycard/indicators/facts.py` by "
            "`familycard.indicators.docs` (`python -m familycard.indicators.docs` rewrites it); do not edit "
            "it by hand.\n\n"
            "A family's well-being score is the weighted share of the indicators on which it is deprived "
            "(Alkire–Foster). Each indicator belongs to one domain; the methodology version "
            "(`methodology/wellbeing/v1.toml`) gives each domain its weight, shared among the domain's "
            "indicators in proportion to the weights below (1 = mild, 4 = most severe) unless the version "
            "sets its own; the share of each indicator in v1's score is given in brackets.\n\n"
            "* **Person indicators** are evaluated for every family member in the *population* (for example "
            "children aged 7–17); the family's value is the number of deprived members, and the family is "
            "deprived when at least *min. members* of them are (1 unless stated).\n"
            "* **Family indicators** are evaluated once per family over the family facts.\n"
            "* The *cut-off* is the condition on `value` that makes a deprivation. Names in the expressions "
            "are facts (below) or parameters of the methodology: `subsistence_minimum`, `poverty_line`, "
            "`minimum_wage`, `mrp` (monthly calculation index) and `pension_age`. Working age is 18 to "
            "pension age.\n"
            "* *Feeds* are the agency extracts the indicator's facts come from; every deprivation keeps the "
            "records behind it."
        ),
        "count": "The catalogue (version {version}) has {n} indicators.",
        "indicators": "Indicators",
        "domain_count": "{n} indicators.",
        "cols": "| id | name | what is computed | feeds | unit, population | value | cut-off | weight |",
        "person": "person",
        "family": "family",
        "all": "all",
        "min": "min. members",
        "facts": "Facts",
        "facts_intro": (
            "Facts are the only names an indicator may read. Person facts are computed for every member from "
            "the records of one feed valid at the end of the period (or from the member's own civil "
            "record); family facts aggregate the members' facts; derived facts are computed from family "
            "facts. Protected attributes (nationality, ethnicity, religion, and citizenship and migration "
            "status, which stand for them) are never facts, and a methodology that names them is refused."
        ),
        "person_facts": "Person facts",
        "family_facts": "Family facts",
        "derived_facts": "Derived family facts",
        "fact_cols": "| fact | type | meaning | feeds |",
        "situations": "Difficult life situations",
        "situations_intro": (
            "The legal grounds of a difficult life situation (Social Code of the Republic of Kazakhstan, "
            "2023). A situation applies to a family when its condition over indicators holds; a situation "
            "with no condition cannot be seen in agency data and is recorded by a social worker."
        ),
        "sit_cols": "| id | situation | legal basis | when |",
        "unobservable": "not observable: recorded by a social worker",
    },
    "ru": {
        "title": "Индикаторы благополучия, факты и трудные жизненные ситуации",
        "intro": (
            "Эта страница создаётся из `methodology/wellbeing/indicators.toml`, "
            "`methodology/wellbeing/situations.toml` и `familycard/indicators/facts.py` модулем "
            "`familycard.indicators.docs` (`python -m familycard.indicators.docs` перезаписывает её); "
            "не редактируйте её вручную.\n\n"
            "Оценка благополучия семьи — взвешенная доля индикаторов, по которым семья находится в "
            "депривации (метод Алкире–Фостер). Каждый индикатор относится к одной сфере; версия методики "
            "(`methodology/wellbeing/v1.toml`) задаёт вес каждой сферы, который делится между её "
            "индикаторами пропорционально весам ниже (1 — лёгкая, 4 — самая тяжёлая депривация), если версия "
            "не задаёт свои; в скобках — доля индикатора в балле версии v1.\n\n"
            "* **Персональные индикаторы** вычисляются для каждого члена семьи из *совокупности* (например, "
            "детей 7–17 лет); значение для семьи — число членов семьи в депривации, а семья находится в "
            "депривации, если таких не меньше *мин. членов* (1, если не указано иное).\n"
            "* **Семейные индикаторы** вычисляются один раз на семью по семейным фактам.\n"
            "* *Порог* — условие на `value`, при котором наступает депривация. Имена в выражениях — факты "
            "(ниже) или параметры методики: `subsistence_minimum` (прожиточный минимум), `poverty_line` "
            "(черта бедности), `minimum_wage` (минимальная заработная плата), `mrp` (месячный расчётный "
            "показатель) и `pension_age` (пенсионный возраст). Трудоспособный возраст — от 18 лет до "
            "пенсионного возраста.\n"
            "* *Источники* — выгрузки ведомств, из которых берутся факты индикатора; для каждой депривации "
            "сохраняются записи, на которых она основана."
        ),
        "count": "В каталоге (версия {version}) {n} индикаторов.",
        "indicators": "Индикаторы",
        "domain_count": "Индикаторов: {n}.",
        "cols": (
            "| id | название | что вычисляется | источники | единица, совокупность | значение | порог | вес |"
        ),
        "person": "член семьи",
        "family": "семья",
        "all": "все",
        "min": "мин. членов",
        "facts": "Факты",
        "facts_intro": (
            "Факты — единственные имена, которые может читать индикатор. Персональные факты вычисляются для "
            "каждого члена семьи по записям одного источника, действующим на конец периода (или по его "
            "собственной записи гражданского регистра); семейные факты агрегируют факты членов семьи; "
            "производные факты вычисляются из семейных. Защищённые признаки (национальность, этническая "
            "принадлежность, религия, а также гражданство и миграционный статус, которые их заменяют) "
            "никогда не являются фактами, и методика, в которой они названы, отклоняется."
        ),
        "person_facts": "Персональные факты",
        "family_facts": "Семейные факты",
        "derived_facts": "Производные семейные факты",
        "fact_cols": "| факт | тип | значение | источники |",
        "situations": "Трудные жизненные ситуации",
        "situations_intro": (
            "Правовые основания трудной жизненной ситуации (Социальный кодекс Республики Казахстан, 2023). "
            "Ситуация относится к семье, когда выполняется её условие над индикаторами; ситуацию без условия "
            "нельзя увидеть в данных ведомств, её фиксирует социальный работник."
        ),
        "sit_cols": "| id | ситуация | правовое основание | когда |",
        "unobservable": "не наблюдается в данных: фиксирует социальный работник",
    },
}

DOMAIN_NAMES = {
    "en": {
        "economic": "Economic situation",
        "employment": "Employment",
        "housing": "Housing",
        "health": "Health and disability",
        "education": "Education",
        "social": "Social well-being and safety",
        "gender": "Gender equality",
    },
    "ru": {
        "economic": "Экономическое положение",
        "employment": "Занятость",
        "housing": "Жилищные условия",
        "health": "Здоровье и инвалидность",
        "education": "Образование",
        "social": "Социальное благополучие и безопасность",
        "gender": "Гендерное равенство",
    },
}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(sql: str) -> str:
    return f"`{_cell(sql)}`"


def _family_deps(name: str) -> set[str]:
    """The family facts ``name`` is computed from, itself included (through derived facts)."""
    tree = sqlglot.parse_one(FAMILY_FACT[name].sql.replace("{pension_age}", "63"), read="duckdb")
    out = {name}
    for col in tree.find_all(exp.Column):
        if not col.table and col.name in FAMILY_FACT and col.name != name:
            out |= _family_deps(col.name)
    return out


def _feeds_of_fact(fact: Fact) -> set[str]:
    """Where a fact's values come from: its own feeds, and for a family fact those of the family facts and
    person facts it is computed from."""
    if fact.unit != "family":
        return set(fact.feeds)
    feeds: set[str] = set()
    for name in _family_deps(fact.name):
        feeds |= set(FAMILY_FACT[name].feeds)
    for p in family_fact_inputs(fact.name):
        feeds |= set(PERSON_FACT[p].feeds)
    return feeds


def indicator_feeds(ind: Indicator) -> list[str]:
    """The feeds the indicator's facts come from (sorted)."""
    table = PERSON_FACT if ind.unit == "person" else FAMILY_FACT
    out: set[str] = set()
    for name in ind.facts:
        out |= _feeds_of_fact(table[name])
    return sorted(out)


def _fact_description(fact: Fact, lang: str) -> str:
    return FACT_RU[(fact.unit, fact.name)] if lang == "ru" else fact.description


def _indicator_rows(meth: Methodology, domain: str, lang: str) -> list[str]:
    t = _T[lang]
    rows = [t["cols"], "|---|---|---|---|---|---|---|---|"]
    for ind in meth.indicators:
        if ind.domain != domain:
            continue
        unit = t[ind.unit]
        scope = f"{unit}: {_code(ind.population)}" if ind.population else f"{unit}: {t['all']}"
        if ind.min_members != 1:
            scope += f"; {t['min']} {ind.min_members}"
        feeds = ", ".join(f"`{f}`" for f in indicator_feeds(ind))
        share = meth.effective_weights()[ind.id] * 100
        weight = f"{ind.catalogue_weight:g} ({share:.2f} %)"
        rows.append(
            f"| `{ind.id}` | {_cell(ind.name.get(lang))} | {_cell(ind.description.get(lang))} | {feeds} "
            f"| {scope} | {_code(ind.value)} | {_code(ind.deprived)} | {weight} |"
        )
    return rows


def _fact_rows(facts: tuple[Fact, ...], lang: str) -> list[str]:
    rows = [_T[lang]["fact_cols"], "|---|---|---|---|"]
    for f in facts:
        feeds = ", ".join(f"`{x}`" for x in sorted(_feeds_of_fact(f)))
        rows.append(f"| `{f.name}` | {f.type} | {_cell(_fact_description(f, lang))} | {feeds} |")
    return rows


def render(lang: str = "en", methodology: str = "v1") -> str:
    """The indicator documentation in ``lang`` ("en" or "ru") as Markdown."""
    if lang not in _T:
        raise ValueError(f"no documentation language {lang!r}; known: {', '.join(_T)}")
    t = _T[lang]
    meth = load_methodology(methodology)
    out = [
        f"# {t['title']}",
        "",
        t["intro"],
        "",
        t["count"].format(version=meth.catalogue_version, n=len(meth.indicators)),
        "",
    ]
    out += [f"## {t['indicators']}", ""]
    for domain in DOMAINS:
        n = sum(1 for i in meth.indicators if i.domain == domain)
        if not n:
            continue
        out += [f"### {DOMAIN_NAMES[lang][domain]} (`{domain}`)", "", t["domain_count"].format(n=n), ""]
        out += [*_indicator_rows(meth, domain, lang), ""]
    out += [f"## {t['facts']}", "", t["facts_intro"], ""]
    for key, facts in (
        ("person_facts", PERSON_FACTS),
        ("family_facts", FAMILY_FACTS),
        ("derived_facts", DERIVED_FACTS),
    ):
        out += [f"### {t[key]}", "", *_fact_rows(facts, lang), ""]
    out += [f"## {t['situations']}", "", t["situations_intro"], "", t["sit_cols"], "|---|---|---|---|"]
    for s in meth.situations:
        when = _code(s.when) if s.when else t["unobservable"]
        basis = _cell(s.legal_basis.get(lang))
        out.append(f"| `{s.id}` | {_cell(s.name.get(lang))} | {basis} | {when} |")
    return "\n".join(out) + "\n"


def write() -> list[Path]:
    """Rewrite both documentation files; return their paths."""
    for lang, path in PATHS.items():
        path.write_text(render(lang), encoding="utf-8")
    return list(PATHS.values())


if __name__ == "__main__":
    for p in write():
        print(p)  # noqa: T201
