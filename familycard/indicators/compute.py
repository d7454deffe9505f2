"""SQL that turns facts into indicator values for one methodology (DuckDB dialect, run on either engine).

* ``family_indicators`` (:func:`family_indicators_sql`): per family, every indicator's value and
  deprivation: a person indicator's value is the number of deprived members, a family indicator's is its
  expression over family facts (NULL outside its population);
* ``indicator_sources`` (:func:`sources_sql`): for every deprivation, the agency records behind it: the
  records of the selections its facts come from, of the deprived members (person indicators) or of all
  members (family indicators).

Values are rounded to six decimals so that both engines write the same numbers.
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import sqlglot
from sqlglot import exp

from familycard.indicators.facts import FAMILY_FACT, PERSON_FACT, SELECTIONS, round6
from familycard.indicators.methodology import Indicator, Methodology, substitute


def _value(ind: Indicator, params: dict[str, float]) -> str:
    return substitute(ind.value, {}, params)


def _deprived(ind: Indicator, params: dict[str, float]) -> str:
    value = _value(ind, params)
    cut = substitute(ind.deprived, {"value": value}, params)
    if ind.population:
        return f"COALESCE(({substitute(ind.population, {}, params)}) AND ({cut}), FALSE)"
    return f"COALESCE({cut}, FALSE)"


def _population(ind: Indicator, params: dict[str, float]) -> str:
    return substitute(ind.population, {}, params) if ind.population else "TRUE"


def _guarded_value(ind: Indicator, params: dict[str, float]) -> str:
    value = round6(f"CAST({_value(ind, params)} AS DOUBLE)")
    if ind.population:
        return f"CASE WHEN {substitute(ind.population, {}, params)} THEN {value} END"
    return value


def family_indicators_sql(meth: Methodology, largest: int) -> str:
    """``family_indicators`` from ``family_facts`` and ``person_facts``: a person indicator's deprived and
    applicable members are counted per family in the same pass. ``largest`` is the most members any
    family has (:func:`largest_family_sql`): it sizes the packed counts (:func:`_counts`)."""
    params = meth.parameters
    person = [i for i in meth.indicators if i.unit == "person"]
    counters = [
        (f"{kind}_{i.id}", cond)
        for i in person
        for kind, cond in (("n", _deprived(i, params)), ("a", _population(i, params)))
    ]
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
            cols.append(f"{_guarded_value(ind, params)} AS v_{ind.id}")
            cols.append(f"{_deprived(ind, params)} AS d_{ind.id}")
    join = f"LEFT JOIN ({_counts(counters, largest)}) AS pv ON pv.family_id = f.family_id" if person else ""
    return f"SELECT f.family_id, {', '.join(cols)} FROM family_facts AS f {join}"


def largest_family_sql() -> str:
    """The most members any family of ``person_facts`` has (``n``; NULL without members)."""
    return "SELECT MAX(k) AS n FROM (SELECT COUNT(*) AS k FROM person_facts GROUP BY family_id) AS c"


def _per_word(width: int) -> int:
    """How many fields of ``width`` bits a packed word holds."""
    return max(1, BITS_PER_WORD // width)


def _packed(conds: list[str], width: int) -> list[list[str]]:
    """The terms of the words that pack ``conds`` (SQL conditions), a field of ``width`` bits each:
    condition ``k`` is field ``k % n`` of word ``k // n`` (``n`` fields to a word of
    :data:`BITS_PER_WORD` bits), and its term adds one to that field where the condition holds."""
    per_word = _per_word(width)
    return [
        [f"CASE WHEN {c} THEN {1 << (j * width)} ELSE 0 END" for j, c in enumerate(conds[k : k + per_word])]
        for k in range(0, len(conds), per_word)
    ]


def _counts(counters: list[tuple[str, str]], largest: int) -> str:
    """Per family of ``person_facts``, the members meeting each condition of ``counters`` (name, SQL),
    counted as fields of a few packed sums (:func:`_packed`), a field being wide enough for ``largest``
    members, so that one sum counts several conditions (a hash aggregate of a hundred sums took most of
    this query's time; its fields never carry into each other, and a word stays below ``2**62`` on
    either engine)."""
    width = max(1, largest.bit_length())
    per_word = _per_word(width)
    words = _packed([cond for _, cond in counters], width)
    sums = ", ".join(
        f"CAST(SUM(CAST({' + '.join(t)} AS BIGINT)) AS BIGINT) AS w{w}" for w, t in enumerate(words)
    )
    fields = ", ".join(
        f"(w{k // per_word} >> {(k % per_word) * width}) & {(1 << width) - 1} AS {name}"
        for k, (name, _) in enumerate(counters)
    )
    packed = f"SELECT family_id, {sums} FROM person_facts GROUP BY family_id"
    return f"SELECT family_id, {fields} FROM ({packed}) AS c"


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


BITS_PER_WORD = 62
"""Deprivation flags packed per 64-bit word (below the sign bit, so sums of distinct bits never
overflow on either engine)."""


def _backed(meth: Methodology) -> list[Indicator]:
    """The indicators with at least one selection behind them, in catalogue order; the position of each
    is its bit in the deprivation masks."""
    return [i for i in meth.indicators if selections_of(i)]


def source_map(meth: Methodology) -> pa.Table:
    """``ind_source_map``: which selections back each indicator (``indicator``, ``unit``, ``selection``),
    with the indicator's flag in the deprivation masks (``word``, ``bit``: the word's power of two)."""
    rows = [
        (i.id, i.unit, sel, k // BITS_PER_WORD, 1 << (k % BITS_PER_WORD))
        for k, i in enumerate(_backed(meth))
        for sel in selections_of(i)
    ]
    return pa.table(
        {
            "indicator": pa.array([r[0] for r in rows], pa.string()),
            "unit": pa.array([r[1] for r in rows], pa.string()),
            "selection": pa.array([r[2] for r in rows], pa.string()),
            "word": pa.array([r[3] for r in rows], pa.int64()),
            "bit": pa.array([r[4] for r in rows], pa.int64()),
        }
    )


def _words(meth: Methodology) -> int:
    return max(1, -(-len(_backed(meth)) // BITS_PER_WORD))


def masks_sql(meth: Methodology) -> str:
    """``ind_masks``: per family member, the flags of the deprivations backed by records packed into
    ``m0``, ``m1``, ... (bit ``k`` of the masks is the ``k``-th backed indicator): the member's own
    deprivations (person indicators) and the family's (family indicators). Members without any are
    kept (:func:`sources_sql` skips them): a filter on the masks here was evaluated with the join, the
    masks computed twice."""
    params = meth.parameters
    qualified = {name: f"pf.{name}" for name in PERSON_FACT}
    flags = [
        substitute(_deprived(ind, params), qualified, {}) if ind.unit == "person" else f"fi.d_{ind.id}"
        for ind in _backed(meth)
    ]
    # (one bit a flag, as ind_source_map says; one word of zero where nothing is backed, see _words)
    terms = _packed(flags, 1) or [["0"]]
    words = ", ".join(f"CAST({' + '.join(t)} AS BIGINT) AS m{w}" for w, t in enumerate(terms))
    return f"""
        SELECT pf.family_id, pf.person_id, {words}
        FROM person_facts AS pf JOIN family_indicators AS fi ON fi.family_id = pf.family_id
    """


def sources_sql(meth: Methodology) -> str:
    """``indicator_sources``: ``family_id``, ``indicator``, ``person_id``, ``feed``, ``record_key``,
    ``period`` (the delivery) for every deprivation that rests on agency records: the records of the
    deprived members (person indicators) or of all members (family indicators) in the selections behind
    the indicator (``ind_source_map``).

    One pass over the selections' records: each record meets its member's deprivation masks
    (``ind_masks``, one hash join on the person) and then the indicators its selection backs, kept where
    the indicator's bit is set. Testing a bit is one integer operation, whatever the number of
    indicators."""
    records = "\n        UNION ALL ".join(
        f"SELECT '{s.name}' AS selection, person_id, feed, record_key, delivery_period FROM ind_sel_{s.name}"
        for s in SELECTIONS
    )
    word = " ".join(f"WHEN {w} THEN k.m{w}" for w in range(_words(meth)))
    deprived = " OR ".join(f"m{w} <> 0" for w in range(_words(meth)))
    return f"""
        WITH records AS (
            {records}
        )
        SELECT k.family_id, m.indicator, r.person_id, r.feed, r.record_key, r.delivery_period AS period
        FROM records AS r
        JOIN (SELECT * FROM ind_masks WHERE {deprived}) AS k ON k.person_id = r.person_id
        JOIN ind_source_map AS m ON m.selection = r.selection
        WHERE ((CASE m.word {word} END) & m.bit) <> 0
    """


def facts_used(meth: Methodology) -> set[str]:
    """Every fact any indicator of ``meth`` reads."""
    return {f for i in meth.indicators for f in i.facts}
