"""SQL that turns facts into indicator values for one methodology (DuckDB dialect, run on either engine).

* ``ind_person_values`` (:func:`person_values_sql`): per member, each person indicator's value (NULL when
  the member is outside its population) and whether the member is deprived (``v_<id>``, ``d_<id>``);
* ``family_indicators`` (:func:`family_indicators_sql`): per family, every indicator's value and
  deprivation: a person indicator's value is the number of deprived members, a family indicator's is its
  expression over family facts (NULL outside its population);
* ``indicator_sources`` (:data:`SOURCES_SQL`): for every deprivation, the agency records behind it: the
  records of the selections its facts come from, of the deprived members (person indicators) or of all
  members (family indicators).

Values are rounded to six decimals so that both engines write the same numbers.
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import sqlglot
from sqlglot import exp

from familycard.indicators.facts import FAMILY_FACT, PERSON_FACT, SELECTIONS
from familycard.indicators.methodology import Indicator, Methodology, substitute


def _value(ind: Indicator, params: dict[str, float]) -> str:
    return substitute(ind.value, {}, params)


def _deprived(ind: Indicator, params: dict[str, float]) -> str:
    value = _value(ind, params)
    cut = substitute(ind.deprived, {"value": value}, params)
    if ind.population:
        return f"COALESCE(({substitute(ind.population, {}, params)}) AND ({cut}), FALSE)"
    return f"COALESCE({cut}, FALSE)"


def _guarded_value(ind: Indicator, params: dict[str, float]) -> str:
    value = f"ROUND(CAST({_value(ind, params)} AS DOUBLE), 6)"
    if ind.population:
        return f"CASE WHEN {substitute(ind.population, {}, params)} THEN {value} END"
    return value


def person_values_sql(meth: Methodology) -> str:
    """``ind_person_values`` from ``person_facts``."""
    cols = []
    for ind in meth.indicators:
        if ind.unit == "person":
            cols.append(f"{_guarded_value(ind, meth.parameters)} AS v_{ind.id}")
            cols.append(f"{_deprived(ind, meth.parameters)} AS d_{ind.id}")
    body = ", ".join(cols) if cols else "TRUE AS d__none"
    return f"SELECT family_id, person_id, {body} FROM person_facts"


def family_indicators_sql(meth: Methodology) -> str:
    """``family_indicators`` from ``family_facts`` and ``ind_person_values``."""
    person = [i for i in meth.indicators if i.unit == "person"]
    agg = ", ".join(
        f"SUM(CASE WHEN d_{i.id} THEN 1 ELSE 0 END) AS n_{i.id}, "
        f"SUM(CASE WHEN v_{i.id} IS NOT NULL THEN 1 ELSE 0 END) AS a_{i.id}"
        for i in person
    )
    cols = []
    for ind in meth.indicators:
        if ind.unit == "person":
            cols.append(
                f"CASE WHEN COALESCE(pv.a_{ind.id}, 0) > 0 "
                f"THEN CAST(COALESCE(pv.n_{ind.id}, 0) AS DOUBLE) END "
                f"AS v_{ind.id}"
            )
            cols.append(f"COALESCE(pv.n_{ind.id}, 0) >= {ind.min_members} AS d_{ind.id}")
        else:
            cols.append(f"{_guarded_value(ind, meth.parameters)} AS v_{ind.id}")
            cols.append(f"{_deprived(ind, meth.parameters)} AS d_{ind.id}")
    join = (
        f"LEFT JOIN (SELECT family_id, {agg} FROM ind_person_values GROUP BY family_id) AS pv "
        "ON pv.family_id = f.family_id"
        if person
        else ""
    )
    return f"SELECT f.family_id, {', '.join(cols)} FROM family_facts AS f {join}"


@cache
def family_fact_inputs(name: str) -> frozenset[str]:
    """The person facts a family fact is computed from (through derived facts too)."""
    fact = FAMILY_FACT[name]
    tree = sqlglot.parse_one(fact.sql.replace("{pension_age}", "63"), read="duckdb")
    out: set[str] = set()
    for col in tree.find_all(exp.Column):
        if col.table == "p" and col.name in PERSON_FACT:
            out.add(col.name)
        elif not col.table and col.name in FAMILY_FACT and col.name != name:
            out |= family_fact_inputs(col.name)
    return frozenset(out)


def selections_of(ind: Indicator) -> list[str]:
    """The selections whose records back ``ind`` (sorted)."""
    persons: set[str] = set()
    for f in ind.facts:
        if ind.unit == "person":
            persons.add(f)
        else:
            persons |= family_fact_inputs(f)
    return sorted({s for p in persons if (s := PERSON_FACT[p].selection) is not None})


def source_map(meth: Methodology) -> pa.Table:
    """``ind_source_map``: which selections back each indicator (``indicator``, ``unit``, ``selection``)."""
    rows = [(i.id, i.unit, sel) for i in meth.indicators for sel in selections_of(i)]
    return pa.table(
        {
            "indicator": pa.array([r[0] for r in rows], pa.string()),
            "unit": pa.array([r[1] for r in rows], pa.string()),
            "selection": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def records_sql() -> str:
    """``ind_records``: the records of every selection in one table (``selection``, ``person_id``,
    ``feed``, ``record_key``, ``delivery_period``)."""
    return "\nUNION ALL\n".join(
        f"SELECT '{s.name}' AS selection, person_id, feed, record_key, delivery_period FROM ind_sel_{s.name}"
        for s in SELECTIONS
    )


def person_deprivations_sql(meth: Methodology) -> str:
    """``ind_person_deps``: one row per deprived member and person indicator."""
    parts = [
        f"SELECT family_id, person_id, '{i.id}' AS indicator FROM ind_person_values WHERE d_{i.id}"
        for i in meth.indicators
        if i.unit == "person"
    ]
    return "\nUNION ALL\n".join(parts) or (
        "SELECT CAST(NULL AS VARCHAR) AS family_id, CAST(NULL AS VARCHAR) AS person_id, "
        "CAST(NULL AS VARCHAR) AS indicator WHERE FALSE"
    )


SOURCES_SQL = """
    SELECT d.family_id, d.indicator, r.person_id, r.feed, r.record_key, r.delivery_period AS period
    FROM ind_person_deps AS d
    JOIN ind_source_map AS m ON m.indicator = d.indicator AND m.unit = 'person'
    JOIN ind_records AS r ON r.selection = m.selection AND r.person_id = d.person_id
    UNION ALL
    SELECT d.family_id, d.indicator, r.person_id, r.feed, r.record_key, r.delivery_period AS period
    FROM family_deprivations AS d
    JOIN ind_source_map AS m ON m.indicator = d.indicator AND m.unit = 'family'
    JOIN person_facts AS pf ON pf.family_id = d.family_id
    JOIN ind_records AS r ON r.selection = m.selection AND r.person_id = pf.person_id
"""
"""``indicator_sources``: ``family_id``, ``indicator``, ``person_id``, ``feed``, ``record_key``, ``period``
(the delivery) for every deprivation that rests on agency records: the records of the deprived members
(person indicators) or of all members (family indicators) in the selections behind the indicator."""


def facts_used(meth: Methodology) -> set[str]:
    """Every fact any indicator of ``meth`` reads."""
    return {f for i in meth.indicators for f in i.facts}
