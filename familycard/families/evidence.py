"""What the feeds say about people as of a period: who is alive, where each is registered, and the
kinship the civil registry records (parents, marriages, divorces, guardianship).

Every query reads only the identity contract (``persons``, ``person_links``) and the feeds' histories
(``src_<feed>``). A person mention is linked through ``person_links`` on (feed, record key, role); the
link's ``uncertain`` flag travels with every fact drawn from it.

The queries are SQL in DuckDB's dialect (see :mod:`familycard.store.engine`) and each is materialised
as a small table the household step reads (:data:`STEPS` gives their order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa

from familycard.families.asof import date_literal, previous_period, valid_at
from familycard.identity.normalize import normalize_array

BIRTH, MARRIAGE, DIVORCE, DEATH, ADOPTION, GUARDIANSHIP = (
    "рождение",
    "брак",
    "расторжение_брака",
    "смерть",
    "усыновление",
    "опека",
)
FAMILY_PAYMENTS = ("АСП", "МНОГОДЕТ")
"""Social payments made to a family as a whole: they go to its principal recipient."""


def links_sql(feeds: tuple[str, ...], person: str = "person_id") -> str:
    """``fam_links``: the identity links of the records of ``feeds`` (the only ones the stage reads),
    each to the person its column ``person`` names (``person_id``, or the number ``person_no``)."""
    names = ", ".join(f"'{f}'" for f in feeds)
    return f"""
        SELECT feed, record_key, role, {person} AS person_id,
            COALESCE(uncertain, FALSE) AS uncertain,
            CAST(COALESCE(match_probability, 1.0) AS DOUBLE) AS match_probability
        FROM person_links WHERE {person} IS NOT NULL AND feed IN ({names})
    """


def _mention(feed: str, role: str, alias: str, link: str = "l") -> str:
    """Join the person a record names in ``role`` (the identity stage's link)."""
    return (
        f"JOIN fam_links AS {link} ON {link}.feed = '{feed}' AND {link}.role = '{role}' "
        f"AND {link}.record_key = {alias}._key"
    )


def dead_sql(period: str, end: dt.date) -> str:
    """``fam_dead``: people whose death the civil registry records on or before the end of ``period``."""
    d = date_literal(end)
    return f"""
        SELECT DISTINCT l.person_id FROM src_civil_registry AS c {_mention("civil_registry", "subject", "c")}
        WHERE {valid_at("c", period)} AND c.death_date IS NOT NULL AND c.death_date <= {d}
        UNION
        SELECT DISTINCT l.person_id FROM src_civil_acts AS x {_mention("civil_acts", "person1", "x")}
        WHERE {valid_at("x", period)} AND x.act_type = '{DEATH}' AND x.act_date <= {d}
    """


def people_sql(period: str, end: dt.date) -> str:
    """``fam_people``: everyone alive at the end of ``period`` whom the civil registry, the migration
    service or the address register knows then, with IIN, sex (``M``/``F``, whichever script the
    identity stage kept), birth date, age and minority."""
    d = date_literal(end)
    return f"""
        WITH known AS (
            SELECT l.person_id FROM src_civil_registry AS c {_mention("civil_registry", "subject", "c")}
            WHERE {valid_at("c", period)}
            UNION ALL
            SELECT l.person_id FROM src_migration AS m {_mention("migration", "subject", "m")}
            WHERE {valid_at("m", period)}
            UNION ALL
            SELECT l.person_id FROM src_address_registry AS a {_mention("address_registry", "subject", "a")}
            WHERE {valid_at("a", period)}
        )
        SELECT p.person_id, p.iin,
            CASE WHEN UPPER(p.sex) IN ('M', 'М') THEN 'M' WHEN UPPER(p.sex) IN ('F', 'Ж') THEN 'F' END AS sex,
            p.birth_date,
            CASE WHEN p.birth_date IS NULL THEN NULL ELSE DATE_SUB('year', p.birth_date, {d}) END AS age,
            COALESCE(p.birth_date IS NOT NULL AND DATE_SUB('year', p.birth_date, {d}) < 18, FALSE) AS minor
        FROM persons AS p
        SEMI JOIN known AS k ON k.person_id = p.person_id
        ANTI JOIN fam_dead AS dd ON dd.person_id = p.person_id
        WHERE p.birth_date IS NULL OR p.birth_date <= {d}
    """


def registrations_sql(period: str, end: dt.date) -> str:
    """``fam_reg``: each living person's registered address at the end of ``period`` (the latest
    registration where a person has several), as one comparable key."""
    return f"""
        SELECT l.person_id,
            COALESCE(a.kato, '?') || '|' || UPPER(TRIM(COALESCE(a.street, ''))) || '|'
                || UPPER(TRIM(COALESCE(a.house, ''))) || '|' || UPPER(TRIM(COALESCE(a.flat, ''))) AS addr_key,
            COALESCE(a.kato, '?') || '|' || COALESCE(REGEXP_EXTRACT(a.street, '([0-9]+)', 1), '') || '|'
                || UPPER(TRIM(COALESCE(a.house, ''))) AS home_key,
            a.kato, a.registration_date, STRFTIME(a.registration_date, '%Y-%m') AS reg_period,
            l.uncertain, l.match_probability
        FROM src_address_registry AS a {_mention("address_registry", "subject", "a")}
        SEMI JOIN fam_people AS p ON p.person_id = l.person_id
        WHERE {valid_at("a", period)}
        QUALIFY ROW_NUMBER() OVER (
            PARTITION BY l.person_id ORDER BY a.registration_date DESC NULLS LAST, a._key) = 1
    """


def acts_sql(period: str, end: dt.date) -> str:
    """``fam_acts``: civil acts dated on or before the end of ``period``, their people linked."""
    links = "\n".join(
        f"LEFT JOIN fam_links AS l{i} ON l{i}.feed = 'civil_acts' AND l{i}.role = 'person{i}' "
        f"AND l{i}.record_key = x._key"
        for i in (1, 2, 3)
    )
    return f"""
        SELECT x._key AS act_key, x.act_type, x.act_date, x.registry_office_kato AS kato,
            l1.person_id AS p1, l2.person_id AS p2, l3.person_id AS p3,
            COALESCE(l1.uncertain, FALSE) AS u1, COALESCE(l2.uncertain, FALSE) AS u2,
            COALESCE(l3.uncertain, FALSE) AS u3
        FROM src_civil_acts AS x
        {links}
        WHERE {valid_at("x", period)} AND x.act_date <= {date_literal(end)}
    """


def parents_sql(period: str, end: dt.date) -> str:
    """``fam_parent``: (child, parent) from birth and adoption acts; ``uncertain`` when every act that
    says so rests on an uncertain link."""
    return f"""
        WITH e AS (
            SELECT p1 AS child, p2 AS parent, 'mother' AS kind, u1 OR u2 AS uncertain FROM fam_acts
            WHERE act_type = '{BIRTH}' AND p2 IS NOT NULL
            UNION ALL
            SELECT p1 AS child, p3 AS parent, 'father' AS kind, u1 OR u3 AS uncertain FROM fam_acts
            WHERE act_type = '{BIRTH}' AND p3 IS NOT NULL
            UNION ALL
            SELECT p1 AS child, p2 AS parent, 'adoptive' AS kind, u1 OR u2 AS uncertain FROM fam_acts
            WHERE act_type = '{ADOPTION}' AND p2 IS NOT NULL
            UNION ALL
            SELECT p1 AS child, p3 AS parent, 'adoptive' AS kind, u1 OR u3 AS uncertain FROM fam_acts
            WHERE act_type = '{ADOPTION}' AND p3 IS NOT NULL
        )
        SELECT child, parent, MIN(kind) AS kind, BOOL_AND(uncertain) AS uncertain
        FROM e WHERE child IS NOT NULL AND child <> parent GROUP BY child, parent
    """


def couples_sql(period: str, end: dt.date) -> str:
    """``fam_couples``: every pair the registry married, with its state at the end of ``period``:
    ``married`` (the pair's latest act is a marriage and both are alive), ``divorced`` or ``widowed``.
    Where a person has two open marriages (a divorce never registered), only the latest stays open."""
    return f"""
        WITH pair_acts AS (
            SELECT p1 AS husband, p2 AS wife, act_type, act_date, act_key, u1 OR u2 AS uncertain
            FROM fam_acts
            WHERE act_type IN ('{MARRIAGE}', '{DIVORCE}') AND p1 IS NOT NULL AND p2 IS NOT NULL AND p1 <> p2
        ),
        last_act AS (
            SELECT * FROM pair_acts
            QUALIFY ROW_NUMBER() OVER (
                PARTITION BY husband, wife
                ORDER BY act_date DESC, CASE WHEN act_type = '{DIVORCE}' THEN 0 ELSE 1 END, act_key) = 1
        ),
        since AS (
            SELECT husband, wife, MAX(act_date) AS married_on FROM pair_acts
            WHERE act_type = '{MARRIAGE}' GROUP BY husband, wife
        ),
        state AS (
            SELECT a.husband, a.wife, a.act_key, a.act_date, s.married_on, a.uncertain,
                CASE WHEN a.act_type = '{DIVORCE}' THEN 'divorced'
                     WHEN h.person_id IS NULL OR w.person_id IS NULL THEN 'widowed'
                     ELSE 'married' END AS state
            FROM last_act AS a
            LEFT JOIN since AS s ON s.husband = a.husband AND s.wife = a.wife
            LEFT JOIN fam_people AS h ON h.person_id = a.husband
            LEFT JOIN fam_people AS w ON w.person_id = a.wife
        ),
        ranked AS (
            SELECT *,
                ROW_NUMBER() OVER (PARTITION BY husband, state = 'married'
                                   ORDER BY married_on DESC NULLS LAST, act_key) AS rank_h,
                ROW_NUMBER() OVER (PARTITION BY wife, state = 'married'
                                   ORDER BY married_on DESC NULLS LAST, act_key) AS rank_w
            FROM state
        )
        SELECT husband, wife, act_key, married_on, act_date AS state_since, uncertain,
            CASE WHEN state = 'married' AND (rank_h > 1 OR rank_w > 1) THEN 'superseded' ELSE state END
                AS state
        FROM ranked
    """


def guardians_sql(period: str, end: dt.date) -> str:
    """``fam_guard``: guardianship of living minors by living guardians (it ends at 18)."""
    return f"""
        SELECT x.p1 AS ward, x.p2 AS guardian, MAX(x.act_date) AS since, BOOL_AND(x.u1 OR x.u2) AS uncertain
        FROM fam_acts AS x
        JOIN fam_people AS w ON w.person_id = x.p1 AND w.minor
        JOIN fam_people AS g ON g.person_id = x.p2
        WHERE x.act_type = '{GUARDIANSHIP}'
        GROUP BY x.p1, x.p2
    """


def migrants_sql(period: str, end: dt.date) -> str:
    """``fam_migrant``: living people with a residence permit, with the surname and settlement the
    migration service records (its settlement is where they live, not where they are registered)."""
    return f"""
        SELECT l.person_id, m.kato, l.uncertain,
            -- a surname's stem: AKHMETOVA and AKHMETOV, VISHNEVSKAYA and VISHNEVSKIY are one family name
            REGEXP_REPLACE(UPPER(TRIM(m.surname)), '(SKAYA|SKIY|SKII|A)$', '', 'g') AS surname
        FROM src_migration AS m {_mention("migration", "subject", "m")}
        SEMI JOIN fam_people AS p ON p.person_id = l.person_id
        WHERE {valid_at("m", period)} AND m.surname IS NOT NULL AND m.kato IS NOT NULL
        QUALIFY ROW_NUMBER() OVER (PARTITION BY l.person_id ORDER BY m._period DESC, m._key) = 1
    """


def head_evidence_sql(period: str, end: dt.date) -> str:
    """``fam_head_evidence``: how many registers name a person as a family's principal: family-level
    social payments, the housing and utilities lists, owners of a home, a vehicle, land or livestock."""
    since = previous_period(period, 3)
    pays = ", ".join(f"'{k}'" for k in FAMILY_PAYMENTS)
    parts = [
        f"""SELECT l.person_id, 'social_payments' AS source FROM src_social_payments AS s
            {_mention("social_payments", "recipient", "s")}
            WHERE {valid_at("s", period)} AND s.payment_kind IN ({pays}) AND s.period > '{since}'""",
        f"""SELECT l.person_id, 'housing_utilities' AS source FROM src_housing_utilities AS h
            {_mention("housing_utilities", "head", "h")} WHERE {valid_at("h", period)}""",
        f"""SELECT l.person_id, 'real_estate' AS source FROM src_real_estate AS r
            {_mention("real_estate", "owner", "r")} WHERE {valid_at("r", period)}""",
        f"""SELECT l.person_id, 'vehicles' AS source FROM src_vehicles AS v
            {_mention("vehicles", "owner", "v")} WHERE {valid_at("v", period)}""",
        f"""SELECT l.person_id, 'land_livestock' AS source FROM src_land_livestock AS g
            {_mention("land_livestock", "owner", "g")} WHERE {valid_at("g", period)}""",
    ]
    union = "\nUNION ALL\n".join(parts)
    return f"""
        SELECT e.person_id, COUNT(DISTINCT e.source) AS sources
        FROM ({union}) AS e SEMI JOIN fam_people AS p ON p.person_id = e.person_id
        GROUP BY e.person_id
    """


def clinics_sql(period: str, end: dt.date) -> str:
    """``fam_clinic``: the clinic each living person is attached to, and the period the health register
    said so (it attaches people to a clinic where they live, so it can expose a stale registration)."""
    return f"""
        SELECT l.person_id, h.clinic_id, h._period AS since, l.uncertain
        FROM src_health AS h {_mention("health", "subject", "h")}
        SEMI JOIN fam_people AS p ON p.person_id = l.person_id
        WHERE {valid_at("h", period)} AND h.record_type = 'attachment' AND h.clinic_id IS NOT NULL
        QUALIFY ROW_NUMBER() OVER (PARTITION BY l.person_id ORDER BY h._period DESC, h._key) = 1
    """


def homes_sql(period: str, end: dt.date) -> str:
    """``fam_homes``: dwellings people own (settlement, street number, house), with the period the
    real-estate register said so."""
    return f"""
        SELECT l.person_id,
            COALESCE(r.kato, '?') || '|' || COALESCE(REGEXP_EXTRACT(r.address, '([0-9]+)', 1), '') || '|'
                || UPPER(TRIM(COALESCE(REGEXP_EXTRACT(r.address, ',([^,]*)$', 1), ''))) AS home_key,
            r._period AS since, l.uncertain
        FROM src_real_estate AS r {_mention("real_estate", "owner", "r")}
        SEMI JOIN fam_people AS p ON p.person_id = l.person_id
        WHERE {valid_at("r", period)} AND r.address IS NOT NULL
    """


def alone_sql(period: str, end: dt.date) -> str:
    """``fam_alone``: people the housing and utilities lists name as the head of a family of one."""
    return f"""
        SELECT l.person_id, MAX(h._period) AS since, BOOL_AND(l.uncertain) AS uncertain
        FROM src_housing_utilities AS h {_mention("housing_utilities", "head", "h")}
        SEMI JOIN fam_people AS p ON p.person_id = l.person_id
        WHERE {valid_at("h", period)} AND h.family_size = 1
        GROUP BY l.person_id
    """


FATHER_CANDIDATES_SQL = """
    SELECT x.person_id AS child, o.person_id AS father, px.patronymic, po.given_name
    FROM fam_migrant AS x
    JOIN fam_migrant AS o ON o.kato = x.kato AND o.surname = x.surname AND o.person_id <> x.person_id
    JOIN fam_people AS f ON f.person_id = o.person_id AND NOT f.minor AND f.sex = 'M'
    JOIN persons AS px ON px.person_id = x.person_id
    JOIN persons AS po ON po.person_id = o.person_id
    ANTI JOIN fam_reg AS r ON r.person_id = x.person_id
    WHERE px.patronymic IS NOT NULL AND po.given_name IS NOT NULL
"""
"""Unregistered migrants and the men of their surname in their settlement, with the names that tell
whether one is the other's father (a patronymic is made from the father's given name)."""


def fathers_by_patronymic(pairs: pa.Table) -> pa.Table:
    """``fam_patronymic`` (``child``, ``father``): the pairs of :data:`FATHER_CANDIDATES_SQL` whose
    patronymic begins with the man's given name, compared across scripts (``Асқарұлы`` and ``ASKAR``)."""
    patronymic = normalize_array(pairs.column("patronymic").to_pylist())
    given = normalize_array(pairs.column("given_name").to_pylist())
    keep = [len(g) >= 3 and p.startswith(g) for p, g in zip(patronymic, given, strict=True)]
    return pairs.select(["child", "father"]).filter(pa.array(keep, pa.bool_()))


STEPS: tuple[tuple[str, Callable[[str, dt.date], str]], ...] = (
    ("fam_dead", dead_sql),
    ("fam_people", people_sql),
    ("fam_reg", registrations_sql),
    ("fam_acts", acts_sql),
    ("fam_parent", parents_sql),
    ("fam_couples", couples_sql),
    ("fam_guard", guardians_sql),
    ("fam_migrant", migrants_sql),
    ("fam_head_evidence", head_evidence_sql),
    ("fam_clinic", clinics_sql),
    ("fam_homes", homes_sql),
    ("fam_alone", alone_sql),
)
"""The evidence tables in the order they are built (each may read the ones before it)."""
