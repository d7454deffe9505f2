"""Stable family ids and the changes between two runs.

**Ids.** A family found for the first time gets a keyed hash of its sorted member ids
(``F`` and 20 hex digits of ``MD5(key | ids)``): the same members give the same id in every run and on
every engine, and without the key the id does not reveal who the members are. A family that continues
a family of the previous run keeps that family's id, even where its membership changed (a birth, a
death, a member who left): a household continues the previous family it shares the most members with,
provided that previous family shares the most members with it too (ties go to the smaller id). Case
files and offers that point at a family id so survive a birth or a divorce.

**Changes** (``family_changes``), for each family of this run against the previous run's families:

| change | meaning | ``related_family_id`` | ``person_id`` |
|---|---|---|---|
| ``birth`` | a child born since the last as-of joined a continuing family | child's last family | the child |
| ``joined`` | someone else joined a continuing family | their last family | the person |
| ``death`` | a member died | | the person |
| ``left`` | a member left a continuing family | their family now | the person |
| ``new`` | a family whose members belonged to no previous family | | |
| ``split`` | a new family whose members came from one previous family | that family | |
| ``merge`` | a new family of members of several previous families (a row each) | a source family | |
| ``dissolved`` | a previous family that no longer exists | | |

The first run of a warehouse records no changes: there is nothing to compare with.
"""

from __future__ import annotations

import datetime as dt

from familycard.families.asof import date_literal

ID_DIGITS = 20


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def provisional_sql(key: str, members: str = "fam_members_grp") -> str:
    """``fam_provisional``: each household's id from its sorted member ids (the table ``members``),
    keyed with ``key``."""
    return f"""
        SELECT grp,
            'F' || SUBSTRING(MD5({_literal(key)} || '|' || STRING_AGG(CAST(person_id AS VARCHAR), ','
                ORDER BY CAST(person_id AS VARCHAR))), 1, {ID_DIGITS}) AS provisional
        FROM {members} GROUP BY grp
    """


def ids_sql(period: str, members: str = "fam_members_grp") -> str:
    """``fam_ids``: each household's family id, continued from the previous run where it can be."""
    return f"""
        WITH ov AS (
            SELECT m.grp, p.family_id, COUNT(*) AS n
            FROM {members} AS m JOIN prev_members AS p ON p.person_id = m.person_id
            GROUP BY m.grp, p.family_id
        ),
        ovp AS (
            SELECT ov.grp, ov.family_id, ov.n, pr.provisional
            FROM ov JOIN fam_provisional AS pr ON pr.grp = ov.grp
        ),
        best_prev AS (
            SELECT grp, family_id FROM ovp
            QUALIFY ROW_NUMBER() OVER (PARTITION BY grp ORDER BY n DESC, family_id) = 1
        ),
        best_cur AS (
            SELECT family_id, grp FROM ovp
            QUALIFY ROW_NUMBER() OVER (PARTITION BY family_id ORDER BY n DESC, provisional) = 1
        ),
        inherit AS (
            SELECT bp.grp, bp.family_id FROM best_prev AS bp
            JOIN best_cur AS bc ON bc.family_id = bp.family_id AND bc.grp = bp.grp
        )
        SELECT pr.grp,
            CASE WHEN i.family_id IS NOT NULL THEN i.family_id
                 -- a new family whose member hash is already taken by a continuing family
                 WHEN pr.provisional IN (SELECT family_id FROM inherit)
                     THEN 'F' || SUBSTRING(MD5(pr.provisional || '|{period}'), 1, {ID_DIGITS})
                 ELSE pr.provisional END AS family_id,
            i.family_id IS NOT NULL AS continued
        FROM fam_provisional AS pr LEFT JOIN inherit AS i ON i.grp = pr.grp
    """


def changes_sql(
    period: str,
    previous_period: str,
    previous_end: dt.date,
    run_id: str,
    person_type: str,
    members: str = "fam_members_grp",
    people: str = "fam_people",
    dead: str = "fam_dead",
) -> str:
    """``fam_changes``: what changed since the previous run's families (see the module docstring), from
    the households' ``members``, their birth dates (``people``) and who died (``dead``)."""
    nothing = f"CAST(NULL AS {person_type})"
    return f"""
        WITH cur AS (
            SELECT i.family_id, m.person_id FROM {members} AS m JOIN fam_ids AS i ON i.grp = m.grp
        ),
        continued AS (SELECT family_id FROM fam_ids WHERE continued),
        fresh AS (SELECT family_id FROM fam_ids WHERE NOT continued),
        joined AS (
            SELECT c.family_id, c.person_id, p2.family_id AS related FROM cur AS c
            SEMI JOIN continued AS k ON k.family_id = c.family_id
            LEFT JOIN prev_members AS p ON p.family_id = c.family_id AND p.person_id = c.person_id
            LEFT JOIN prev_members AS p2 ON p2.person_id = c.person_id
            WHERE p.person_id IS NULL
        ),
        gone_members AS (
            SELECT p.family_id, p.person_id, c2.family_id AS related FROM prev_members AS p
            SEMI JOIN continued AS k ON k.family_id = p.family_id
            LEFT JOIN cur AS c ON c.family_id = p.family_id AND c.person_id = p.person_id
            LEFT JOIN cur AS c2 ON c2.person_id = p.person_id
            WHERE c.person_id IS NULL
        ),
        sources AS (
            SELECT DISTINCT c.family_id, p.family_id AS source FROM cur AS c
            SEMI JOIN fresh AS f ON f.family_id = c.family_id
            JOIN prev_members AS p ON p.person_id = c.person_id
        ),
        n_sources AS (SELECT family_id, COUNT(*) AS n FROM sources GROUP BY family_id),
        dissolved AS (
            SELECT DISTINCT p.family_id FROM prev_members AS p ANTI JOIN cur AS c ON c.family_id = p.family_id
        ),
        events AS (
            SELECT j.family_id,
                CASE WHEN pe.birth_date > {date_literal(previous_end)} THEN 'birth' ELSE 'joined' END
                    AS change,
                j.related AS related_family_id, j.person_id
            FROM joined AS j LEFT JOIN {people} AS pe ON pe.person_id = j.person_id
            UNION ALL
            SELECT g.family_id, CASE WHEN d.person_id IS NOT NULL THEN 'death' ELSE 'left' END AS change,
                g.related AS related_family_id, g.person_id
            FROM gone_members AS g LEFT JOIN {dead} AS d ON d.person_id = g.person_id
            UNION ALL
            SELECT s.family_id, CASE WHEN n.n > 1 THEN 'merge' ELSE 'split' END AS change,
                s.source AS related_family_id, {nothing} AS person_id
            FROM sources AS s JOIN n_sources AS n ON n.family_id = s.family_id
            UNION ALL
            SELECT f.family_id, 'new' AS change, CAST(NULL AS VARCHAR) AS related_family_id,
                {nothing} AS person_id
            FROM fresh AS f ANTI JOIN sources AS s ON s.family_id = f.family_id
            UNION ALL
            SELECT family_id, 'dissolved' AS change, CAST(NULL AS VARCHAR) AS related_family_id,
                {nothing} AS person_id
            FROM dissolved
        )
        SELECT '{run_id}' AS run, '{period}' AS as_of, '{previous_period}' AS previous_as_of,
            family_id, change, related_family_id, person_id
        FROM events
    """
