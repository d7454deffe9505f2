"""A family's head, each member's role and how sure the placement is.

**Head (principal recipient).** The adult most registers treat as the family's principal: family-level
social payments (targeted social assistance, the large-family allowance), the housing and utilities
lists and the registers of homes, vehicles, land and livestock name the head. Without such records,
the adult with the most minor dependants in the family (own children, a spouse's or partner's
children, wards) heads it; then a married or partnered man (of the younger generation where two
couples live together); then the eldest adult.

**Roles** are relative to the head, in the generator's vocabulary: ``head``, ``spouse``, ``partner``
(a co-parent without a marriage act), ``child`` (minor), ``adult_child``, ``stepchild``, ``parent``,
``grandchild``, ``child_in_law`` and ``relative`` (any other member).

**Confidence** of a member starts from how they were placed (``PLACEMENT_CONFIDENCE``), is scaled by the
probability of the identity link of their registration, drops to at most ``STALE_CONFIDENCE`` where the
health register places them in another settlement than their household, and to at most
``UNCERTAIN_CONFIDENCE`` where the placement rests on an uncertain identity link or an ambiguous choice.
A family's confidence is its least confident member's.
"""

from __future__ import annotations

PLACEMENT_CONFIDENCE: dict[str, float] = {
    "registered": 0.95,
    "marriage": 0.85,
    "separated": 0.85,
    "lives_elsewhere": 0.8,
    "spouse": 0.85,
    "guardian": 0.85,
    "parent": 0.8,
    "child": 0.75,
    "ward": 0.75,
    "surname_settlement": 0.65,
    "alone": 0.6,
}
"""How sure a placement is, by how it was made (``fam_assign.how``)."""
STALE_CONFIDENCE = 0.7
UNCERTAIN_CONFIDENCE = 0.5

ROLES = (
    "head",
    "spouse",
    "partner",
    "child",
    "adult_child",
    "stepchild",
    "parent",
    "grandchild",
    "child_in_law",
    "relative",
)

HOUSEHOLD_SQL = """
    SELECT a.grp, a.person_id, a.how, a.uncertain, a.match_probability, p.sex, p.birth_date, p.minor, p.iin
    FROM fam_assign AS a JOIN fam_people AS p ON p.person_id = a.person_id
"""
"""``fam_hh``: every placed person with what the head and role rules need."""

RELATIONS_SQL = """
    WITH spouse AS (
        SELECT husband AS a, wife AS b FROM fam_couples WHERE state = 'married'
        UNION ALL SELECT wife AS a, husband AS b FROM fam_couples WHERE state = 'married'
    ),
    coparent AS (
        SELECT DISTINCT x.parent AS a, y.parent AS b FROM fam_parent AS x
        JOIN fam_parent AS y ON y.child = x.child AND y.parent <> x.parent
    ),
    mates AS (SELECT a, b FROM spouse UNION SELECT a, b FROM coparent),
    r AS (
        SELECT a, b, 1 AS rank, 'spouse' AS role FROM spouse
        UNION ALL SELECT c.a, c.b, 2 AS rank, 'partner' AS role FROM coparent AS c
            ANTI JOIN spouse AS s ON s.a = c.a AND s.b = c.b
        UNION ALL SELECT parent AS a, child AS b, 3 AS rank, 'child' AS role FROM fam_parent
        UNION ALL SELECT m.a, pr.child AS b, 4 AS rank, 'stepchild' AS role FROM mates AS m
            JOIN fam_parent AS pr ON pr.parent = m.b
        UNION ALL SELECT child AS a, parent AS b, 5 AS rank, 'parent' AS role FROM fam_parent
        UNION ALL SELECT x.parent AS a, y.child AS b, 6 AS rank, 'grandchild' AS role FROM fam_parent AS x
            JOIN fam_parent AS y ON y.parent = x.child
        UNION ALL SELECT guardian AS a, ward AS b, 6 AS rank, 'grandchild' AS role FROM fam_guard
        UNION ALL SELECT pr.parent AS a, s.b AS b, 7 AS rank, 'child_in_law' AS role FROM fam_parent AS pr
            JOIN spouse AS s ON s.a = pr.child
    )
    SELECT r.a, r.b, r.rank, r.role
    FROM r LEFT JOIN fam_hh AS ha ON ha.person_id = r.a LEFT JOIN fam_hh AS hb ON hb.person_id = r.b
    WHERE r.a <> r.b AND COALESCE(ha.grp, -1) = COALESCE(hb.grp, -2)
"""
"""``fam_rel``: kinship between two people of the same household: ``b`` is ``a``'s ``role``. (Each side's
household is looked up by person and the two compared after: joined on the household, DuckDB paired
all members of every household first, more rows than there are kinship ties.)"""

HEADS_SQL = """
    WITH dependants AS (
        SELECT r.a AS person_id, COUNT(DISTINCT r.b) AS n
        FROM fam_rel AS r JOIN fam_hh AS k ON k.person_id = r.b AND k.minor
        WHERE r.role IN ('child', 'stepchild')
        GROUP BY r.a
    ),
    wards AS (
        SELECT g.guardian AS person_id, COUNT(*) AS n FROM fam_guard AS g
        JOIN fam_hh AS a ON a.person_id = g.guardian
        JOIN fam_hh AS b ON b.person_id = g.ward AND b.grp = a.grp
        GROUP BY g.guardian
    ),
    mated AS (SELECT DISTINCT a AS person_id FROM fam_rel WHERE role IN ('spouse', 'partner')),
    with_parent AS (SELECT DISTINCT a AS person_id FROM fam_rel WHERE role = 'parent')
    SELECT h.grp, h.person_id AS head
    FROM fam_hh AS h
    LEFT JOIN fam_head_evidence AS e ON e.person_id = h.person_id
    LEFT JOIN dependants AS d ON d.person_id = h.person_id
    LEFT JOIN wards AS w ON w.person_id = h.person_id
    LEFT JOIN mated AS m ON m.person_id = h.person_id
    LEFT JOIN with_parent AS wp ON wp.person_id = h.person_id
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY h.grp
        ORDER BY CASE WHEN h.minor THEN 1 ELSE 0 END,
            COALESCE(e.sources, 0) DESC,
            COALESCE(d.n, 0) + COALESCE(w.n, 0) DESC,
            CASE WHEN m.person_id IS NOT NULL AND h.sex = 'M' AND wp.person_id IS NOT NULL THEN 0
                 WHEN m.person_id IS NOT NULL AND h.sex = 'M' THEN 1 ELSE 2 END,
            h.birth_date NULLS LAST, h.person_id) = 1
"""
"""``fam_heads``: the head of every household (see the module docstring for the order of the rules)."""


def _confidence_case() -> str:
    cases = " ".join(f"WHEN '{how}' THEN {value}" for how, value in PLACEMENT_CONFIDENCE.items())
    return f"CASE h.how {cases} ELSE 0.6 END"


MEMBERS_SQL = f"""
    WITH clinic_counts AS (
        SELECT h.grp, c.clinic_id, COUNT(*) AS n
        FROM fam_hh AS h JOIN fam_clinic AS c ON c.person_id = h.person_id
        GROUP BY h.grp, c.clinic_id
    ),
    clinic_top AS (
        SELECT grp, clinic_id FROM clinic_counts
        QUALIFY ROW_NUMBER() OVER (PARTITION BY grp ORDER BY n DESC, clinic_id) = 1
    ),
    stale AS (
        SELECT h.person_id FROM fam_hh AS h
        JOIN fam_clinic AS c ON c.person_id = h.person_id
        JOIN clinic_top AS t ON t.grp = h.grp AND t.clinic_id <> c.clinic_id
    ),
    role_of AS (
        SELECT r.b AS person_id, r.role FROM fam_rel AS r JOIN fam_heads AS hd ON hd.head = r.a
        QUALIFY ROW_NUMBER() OVER (PARTITION BY r.b ORDER BY r.rank) = 1
    ),
    with_parents AS (SELECT DISTINCT child AS person_id FROM fam_parent),
    scored AS (
        SELECT h.grp, h.person_id, h.iin, h.how, h.uncertain, hd.head,
            CASE WHEN h.person_id = hd.head THEN 'head'
                 WHEN ro.role = 'child' AND NOT h.minor THEN 'adult_child'
                 WHEN ro.role IS NOT NULL THEN ro.role
                 WHEN h.minor AND wp.person_id IS NULL THEN 'child'
                 ELSE 'relative' END AS role,
            {_confidence_case()} * h.match_probability AS base,
            st.person_id IS NOT NULL AS stale
        FROM fam_hh AS h
        JOIN fam_heads AS hd ON hd.grp = h.grp
        LEFT JOIN role_of AS ro ON ro.person_id = h.person_id
        LEFT JOIN with_parents AS wp ON wp.person_id = h.person_id
        LEFT JOIN stale AS st ON st.person_id = h.person_id
    )
    SELECT grp, person_id, iin, role, how, uncertain, head,
        ROUND(LEAST(base, CASE WHEN stale THEN {STALE_CONFIDENCE} ELSE 1.0 END,
                    CASE WHEN uncertain THEN {UNCERTAIN_CONFIDENCE} ELSE 1.0 END), 2) AS confidence
    FROM scored
"""
"""``fam_members_grp``: every member of every household with role, placement, uncertainty and
confidence (households still keyed by ``grp``; the stable ids come later)."""

HOUSEHOLDS_SQL = """
    WITH kato_counts AS (
        SELECT m.grp, r.kato, MAX(CASE WHEN m.person_id = m.head THEN 1 ELSE 0 END) AS of_head, COUNT(*) AS n
        FROM fam_members_grp AS m JOIN fam_reg AS r ON r.person_id = m.person_id
        WHERE r.kato IS NOT NULL
        GROUP BY m.grp, r.kato
    ),
    kato_of AS (
        SELECT grp, kato FROM kato_counts
        QUALIFY ROW_NUMBER() OVER (PARTITION BY grp ORDER BY of_head DESC, n DESC, kato) = 1
    ),
    basis AS (
        SELECT grp, STRING_AGG(how, ',' ORDER BY how) AS basis
        FROM (SELECT DISTINCT grp, how FROM fam_members_grp) AS d GROUP BY grp
    ),
    migrant_kato AS (
        SELECT m.grp, MIN(x.kato) AS kato FROM fam_members_grp AS m
        JOIN fam_migrant AS x ON x.person_id = m.person_id GROUP BY m.grp
    )
    SELECT m.grp, MIN(m.head) AS head, COUNT(*) AS size,
        COUNT_IF(p.minor) AS minors, COUNT_IF(NOT p.minor) AS adults,
        COALESCE(MIN(k.kato), MIN(mk.kato)) AS kato,
        MIN(m.confidence) AS confidence, COUNT_IF(m.uncertain) AS uncertain_members,
        MIN(b.basis) AS basis
    FROM fam_members_grp AS m
    JOIN fam_people AS p ON p.person_id = m.person_id
    JOIN basis AS b ON b.grp = m.grp
    LEFT JOIN kato_of AS k ON k.grp = m.grp
    LEFT JOIN migrant_kato AS mk ON mk.grp = m.grp
    GROUP BY m.grp
"""
"""``fam_households``: one row per household: head, size, territory, confidence and basis."""
