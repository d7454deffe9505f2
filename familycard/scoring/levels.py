"""Scores, levels, deprivations and difficult life situations from indicator values (DuckDB SQL).

The score is the Alkire–Foster weighted deprivation score: the sum of the effective weights
(:meth:`Methodology.effective_weights`, which sum to 1) of the indicators on which the family is deprived,
so 0 is no deprivation and 1 deprivation on everything. The level is the worst level whose ``min_score``
the score reaches, raised to a floor's level where a floor applies. Every query reads
``family_indicators`` (and ``family_facts`` for the family's territory).
"""

from __future__ import annotations

from familycard.indicators.methodology import Methodology, substitute


def micro_weights(meth: Methodology) -> dict[str, int]:
    """Effective weights in millionths: scores are sums of integers, so every engine adds them exactly
    (a sum of floating-point weights depends on the order of addition)."""
    return {i: round(w * 1_000_000) for i, w in meth.effective_weights().items()}


def _flag(ind_id: str) -> str:
    return f"fi.d_{ind_id}"


def _over_indicators(expr: str, meth: Methodology) -> str:
    return substitute(expr, {i.id: _flag(i.id) for i in meth.indicators}, {})


def scores_sql(meth: Methodology) -> str:
    """``family_scores``: ``family_id``, ``methodology``, ``score``, ``deprivations``, ``score_level``
    (by score alone), ``level``, ``level_rank`` (0 = best), ``floor`` (the floor that raised the level,
    if any), ``targeted``, ``uncertain_members``, ``kato``, ``region``, ``rural``."""
    weights = micro_weights(meth)
    terms = " + ".join(f"CASE WHEN {_flag(i)} THEN {w} ELSE 0 END" for i, w in weights.items() if w > 0)
    count = " + ".join(f"CASE WHEN {_flag(i.id)} THEN 1 ELSE 0 END" for i in meth.indicators)
    levels = list(enumerate(meth.levels))
    by_score = (
        "CASE "
        + " ".join(f"WHEN score >= {lv.min_score!r} THEN {n}" for n, lv in reversed(levels) if n > 0)
        + " ELSE 0 END"
    )
    floors = [
        (meth.level_rank(f.level), _over_indicators(f.when, meth), n) for n, f in enumerate(meth.floors)
    ]
    floor_rank = (
        "GREATEST(" + ", ".join(f"CASE WHEN {w} THEN {r} ELSE 0 END" for r, w, _ in floors) + ")"
        if len(floors) > 1
        else (f"CASE WHEN {floors[0][1]} THEN {floors[0][0]} ELSE 0 END" if floors else "0")
    )
    floor_which = (
        "CASE " + " ".join(f"WHEN {w} THEN {n}" for r, w, n in sorted(floors, key=lambda x: -x[0])) + " END"
        if floors
        else "CAST(NULL AS INTEGER)"
    )
    code = "CASE " + " ".join(f"WHEN level_rank = {n} THEN '{lv.code}'" for n, lv in levels) + " END"
    targeted = ", ".join(str(n) for n, lv in levels if lv.targeted) or "-1"
    return f"""
        WITH s AS (
            SELECT fi.family_id, CAST({terms or "0"} AS DOUBLE) / 1000000 AS score, {count} AS deprivations,
                {floor_rank} AS floor_rank, {floor_which} AS floor_index
            FROM family_indicators AS fi
        ),
        r AS (
            SELECT s.*, {by_score} AS score_rank FROM s
        ),
        l AS (
            SELECT r.*, GREATEST(score_rank, floor_rank) AS level_rank FROM r
        )
        SELECT l.family_id, '{meth.id}' AS methodology, l.score, l.deprivations,
            {code.replace("level_rank", "l.score_rank")} AS score_level,
            {code.replace("level_rank", "l.level_rank")} AS level, l.level_rank,
            CASE WHEN l.floor_rank > l.score_rank THEN l.floor_index END AS floor,
            l.level_rank IN ({targeted}) AS targeted,
            ff.uncertain_members, ff.kato, ff.region, ff.rural
        FROM l JOIN family_facts AS ff ON ff.family_id = l.family_id
    """


def situations_sql(meth: Methodology) -> str:
    """``family_situations``: ``family_id``, ``situation`` for each observable situation that applies."""
    parts = [
        f"SELECT fi.family_id, '{s.id}' AS situation FROM family_indicators AS fi "
        f"WHERE {_over_indicators(s.when, meth)}"
        for s in meth.situations
        if s.when
    ]
    if not parts:
        return "SELECT CAST(NULL AS VARCHAR) AS family_id, CAST(NULL AS VARCHAR) AS situation WHERE FALSE"
    return "\nUNION ALL\n".join(parts)
