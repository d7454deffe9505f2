"""Who lives with whom: households from registrations, corrected by acts and witness registers.

The address register says where people are registered, not where they live; the civil registry says
who married, divorced, was born to whom or is under whose guardianship, never who lives with whom.
A household is built in four passes (``docs/methodology/families.md`` explains each rule):

1. **Registered together.** People registered at the same address form one household.
2. **Acts newer than registrations.** A husband still registered with the wife he divorced, where his
   registration predates the divorce, lives elsewhere (``fam_separated``); a married couple registered
   at two addresses that both predate the marriage lives together, with their joint minor children
   (``fam_unions``).
3. **Witness registers.** An adult whose registration the health register (another clinic), the
   real-estate register (a grown child's own home elsewhere) or the housing lists (head of a family of
   one) contradict, at least as recently as the registration, lives elsewhere (``fam_elsewhere``).
4. **People with no registration** join kin (``fam_candidates``, :func:`attach_sql`): a spouse; for a
   minor, a guardian, then a parent; for an adult, their minor children or wards, then a parent, then an
   adult child; for a migrant without an IIN, a migrant of the same surname in the same settlement (the
   father named by the patronymic first). Whoever has none of these lives alone. Attachments follow
   chains (a baby of an unregistered mother) in a few rounds.

Each person ends with a household key (``grp``), how they were placed (``how``) and whether that rests
on an uncertain link or an ambiguous choice (``uncertain``).
"""

from __future__ import annotations

ATTACH_ROUNDS = 4
"""Rounds of attachment: enough for chains such as baby → unregistered mother → husband."""

SEPARATED_SQL = """
    SELECT c.husband AS person_id, MIN(c.act_key) AS act_key, BOOL_OR(c.uncertain) AS uncertain
    FROM fam_couples AS c
    JOIN fam_reg AS h ON h.person_id = c.husband
    JOIN fam_reg AS w ON w.person_id = c.wife
    WHERE c.state = 'divorced' AND h.addr_key = w.addr_key
      AND (h.registration_date IS NULL OR h.registration_date <= c.state_since)
    GROUP BY c.husband
"""
"""``fam_separated``: husbands still registered with the wife they divorced since."""

PARENT_REG_SQL = """
    SELECT pr.child, pr.parent, COALESCE(k.minor, FALSE) AS child_minor, c.addr_key AS child_addr,
        q.addr_key AS parent_addr
    FROM fam_parent AS pr
    LEFT JOIN fam_people AS k ON k.person_id = pr.child
    LEFT JOIN fam_reg AS c ON c.person_id = pr.child
    LEFT JOIN fam_reg AS q ON q.person_id = pr.parent
"""
"""``fam_parent_reg``: each (child, parent) with both registered addresses. (Comparing the two addresses
after the join, not in it: joined on the address, DuckDB paired everyone registered at one address first,
four times as many rows as there are people.)"""

ELSEWHERE_SQL = """
    WITH reg AS (
        SELECT r.person_id, r.addr_key, r.home_key, r.reg_period, p.minor
        FROM fam_reg AS r
        JOIN fam_people AS p ON p.person_id = r.person_id
        ANTI JOIN fam_unions AS u ON u.person_id = r.person_id
        ANTI JOIN fam_separated AS s ON s.person_id = r.person_id
    ),
    -- (people registered at the addresses of those the housing lists name as living alone, counted for
    -- those addresses only: counting every address cost more than the rest of the step)
    alone_addr AS (SELECT r.addr_key FROM fam_reg AS r SEMI JOIN fam_alone AS a ON a.person_id = r.person_id),
    sizes AS (
        SELECT f.addr_key, COUNT(*) AS n FROM fam_reg AS f
        SEMI JOIN alone_addr AS k ON k.addr_key = f.addr_key
        GROUP BY f.addr_key
    ),
    clinics AS (
        SELECT r.person_id, r.addr_key, c.clinic_id, c.since, c.uncertain, r.reg_period, r.minor
        FROM reg AS r JOIN fam_clinic AS c ON c.person_id = r.person_id
    ),
    clinic_counts AS (SELECT addr_key, clinic_id, COUNT(*) AS n FROM clinics GROUP BY addr_key, clinic_id),
    top_clinic AS (
        SELECT addr_key, clinic_id, n, SUM(n) OVER (PARTITION BY addr_key) AS total FROM clinic_counts
        QUALIFY ROW_NUMBER() OVER (PARTITION BY addr_key ORDER BY n DESC, clinic_id) = 1
    ),
    by_clinic AS (
        SELECT c.person_id, 'clinic' AS signal, c.uncertain FROM clinics AS c
        JOIN top_clinic AS t ON t.addr_key = c.addr_key
        WHERE NOT c.minor AND 2 * t.n > t.total AND c.clinic_id <> t.clinic_id
          AND (c.reg_period IS NULL OR c.since >= c.reg_period)
    ),
    grown_children AS (
        -- unmarried adults registered with a parent and with no minor child of their own registered there
        SELECT r.person_id FROM reg AS r
        SEMI JOIN (SELECT child FROM fam_parent_reg WHERE child_addr = parent_addr) AS wp
            ON wp.child = r.person_id
        ANTI JOIN (SELECT husband AS person_id FROM fam_couples WHERE state = 'married'
                   UNION ALL SELECT wife AS person_id FROM fam_couples WHERE state = 'married') AS m
            ON m.person_id = r.person_id
        ANTI JOIN (SELECT parent FROM fam_parent_reg WHERE child_minor AND child_addr = parent_addr) AS op
            ON op.parent = r.person_id
        WHERE NOT r.minor
    ),
    by_home AS (
        SELECT r.person_id, 'own_home' AS signal, BOOL_AND(h.uncertain) AS uncertain FROM reg AS r
        SEMI JOIN grown_children AS g ON g.person_id = r.person_id
        JOIN fam_homes AS h ON h.person_id = r.person_id AND h.home_key <> r.home_key
            AND (r.reg_period IS NULL OR h.since >= r.reg_period)
        ANTI JOIN fam_homes AS same ON same.person_id = r.person_id AND same.home_key = r.home_key
        GROUP BY r.person_id
    ),
    by_housing AS (
        SELECT r.person_id, 'lives_alone' AS signal, a.uncertain FROM reg AS r
        JOIN fam_alone AS a ON a.person_id = r.person_id AND (r.reg_period IS NULL OR a.since >= r.reg_period)
        JOIN sizes AS z ON z.addr_key = r.addr_key AND z.n > 1
        WHERE NOT r.minor
    ),
    signals AS (
        SELECT * FROM by_clinic UNION ALL SELECT * FROM by_home UNION ALL SELECT * FROM by_housing
    )
    SELECT person_id, STRING_AGG(signal, ',' ORDER BY signal) AS signals,
        -- uncertain only when every witness rests on an uncertain link
        BOOL_AND(uncertain) AS uncertain
    FROM signals GROUP BY person_id
"""
"""``fam_elsewhere``: adults whose registration another register contradicts, at least as recently as
they registered: a clinic other than the one most people registered with them attend (the health
register follows moves the address register misses); a grown child who owns a home at another
address; a head of a family of one in the housing and utilities lists while registered with others."""

APART_SQL = """
    SELECT c.husband, c.wife, c.act_key, c.uncertain, h.addr_key AS h_addr, w.addr_key AS w_addr
    FROM fam_couples AS c
    JOIN fam_reg AS h ON h.person_id = c.husband
    JOIN fam_reg AS w ON w.person_id = c.wife
    WHERE c.state = 'married' AND h.addr_key <> w.addr_key
      AND (h.registration_date IS NULL OR h.registration_date <= c.married_on)
      AND (w.registration_date IS NULL OR w.registration_date <= c.married_on)
"""
"""``fam_apart``: married couples registered apart since before their marriage. (A table of its own, a
few per 100,000 people: as a subquery of ``fam_unions`` DuckDB expected billions of rows and paired
every child with both parents first, two thirds of the family stage's time in that step.)"""

UNIONS_SQL = """
    WITH joint AS (
        SELECT a.act_key, m.child AS person_id, m.uncertain OR f.uncertain AS uncertain
        FROM fam_apart AS a
        JOIN fam_parent AS m ON m.parent = a.wife
        JOIN fam_parent AS f ON f.parent = a.husband AND f.child = m.child
        JOIN fam_people AS k ON k.person_id = m.child AND k.minor
        LEFT JOIN fam_reg AS r ON r.person_id = m.child
        WHERE r.person_id IS NULL OR r.addr_key = a.h_addr OR r.addr_key = a.w_addr
    )
    SELECT husband AS person_id, act_key, uncertain FROM fam_apart
    UNION ALL SELECT wife AS person_id, act_key, uncertain FROM fam_apart
    UNION ALL SELECT person_id, act_key, uncertain FROM joint
"""
"""``fam_unions``: the couples of ``fam_apart`` with their joint minor children: each becomes a household
of its own."""

BASE_SQL = """
    WITH u AS (
        SELECT person_id, MIN(act_key) AS act_key, BOOL_OR(uncertain) AS uncertain
        FROM fam_unions GROUP BY person_id
    )
    SELECT p.person_id,
        CASE WHEN u.person_id IS NOT NULL THEN 'U:' || u.act_key
             WHEN s.person_id IS NOT NULL OR e.person_id IS NOT NULL THEN 'S:' || CAST(p.person_id AS VARCHAR)
             WHEN r.person_id IS NOT NULL THEN 'A:' || r.addr_key END AS grp,
        CASE WHEN u.person_id IS NOT NULL THEN 'marriage'
             WHEN s.person_id IS NOT NULL THEN 'separated'
             WHEN e.person_id IS NOT NULL THEN 'lives_elsewhere'
             WHEN r.person_id IS NOT NULL THEN 'registered' END AS how,
        COALESCE(r.uncertain, FALSE) OR COALESCE(u.uncertain, FALSE) OR COALESCE(s.uncertain, FALSE)
            OR COALESCE(e.uncertain, FALSE) AS uncertain,
        COALESCE(r.match_probability, 1.0) AS match_probability
    FROM fam_people AS p
    LEFT JOIN fam_reg AS r ON r.person_id = p.person_id
    LEFT JOIN u ON u.person_id = p.person_id
    LEFT JOIN fam_separated AS s ON s.person_id = p.person_id
    LEFT JOIN fam_elsewhere AS e ON e.person_id = p.person_id
"""
"""``fam_assign_0``: households from registrations and acts; ``grp`` is null for the unregistered."""

SURNAME_TYPOS_SQL = """
    WITH s AS (
        SELECT DISTINCT kato, surname FROM fam_migrant WHERE REGEXP_MATCHES(surname, '^[A-Z]+$')
    ),
    k AS (
        SELECT kato, surname, surname AS k FROM s
        UNION ALL
        SELECT s.kato, s.surname, SUBSTR(s.surname, 1, p.i - 1) || SUBSTR(s.surname, p.i + 1) AS k
        FROM s JOIN fam_positions AS p ON p.i <= LENGTH(s.surname)
    )
    SELECT DISTINCT a.kato, a.surname, b.surname AS other
    FROM k AS a JOIN k AS b ON b.kato = a.kato AND b.k = a.k
    WHERE LENGTH(a.surname) >= 5 AND a.surname <> b.surname AND LEVENSHTEIN(a.surname, b.surname) <= 1
"""
"""``fam_surname_typos``: the surnames (plain Latin, five letters or more) of the migrants of each
settlement, with every other surname there one typing error away (``LEVENSHTEIN`` 1). Two words one edit
apart share a word made by deleting at most one letter from each (a letter changed: the same position
deleted from both; a letter added: the longer word less that letter is the shorter), so only surnames that
share such a deletion (``fam_positions`` numbers the letters) are compared: pairs of surnames, not of
people, and only near ones, where comparing every pair in a city grew with the square of its migrants.
"""

CANDIDATES_SQL = """
    WITH x AS (
        SELECT a.person_id, p.minor, p.iin IS NULL AS no_iin
        FROM fam_assign_0 AS a JOIN fam_people AS p ON p.person_id = a.person_id
        WHERE a.grp IS NULL
    ),
    divorced AS (
        SELECT husband AS a, wife AS b FROM fam_couples WHERE state = 'divorced'
        UNION ALL SELECT wife AS a, husband AS b FROM fam_couples WHERE state = 'divorced'
    ),
    parent_x AS (
        -- the parent links of unplaced adults: the only parents whose minors are read below (not the
        -- nation's 1.6 M links per 600,000 families, which cost half of this query)
        SELECT pr.* FROM fam_parent AS pr SEMI JOIN x ON x.person_id = pr.parent AND NOT x.minor
    ),
    other_parent_home AS (
        -- (parent, child) where the child lives with its other parent, divorced from this one
        -- (households looked up by person and compared after: see fam_rel)
        SELECT pr.parent, pr.child FROM parent_x AS pr
        JOIN fam_parent AS o ON o.child = pr.child AND o.parent <> pr.parent
        JOIN divorced AS c ON c.a = pr.parent AND c.b = o.parent
        LEFT JOIN fam_assign_0 AS ka ON ka.person_id = pr.child
        LEFT JOIN fam_assign_0 AS oa ON oa.person_id = o.parent
        WHERE COALESCE(ka.grp, '?') = COALESCE(oa.grp, '!')
        UNION ALL
        -- a child under another person's guardianship is not in this parent's care
        SELECT pr.parent, pr.child FROM parent_x AS pr
        JOIN fam_guard AS g ON g.ward = pr.child AND g.guardian <> pr.parent
    ),
    own_minors AS (
        SELECT pr.parent, pr.child, pr.uncertain FROM parent_x AS pr
        JOIN fam_people AS k ON k.person_id = pr.child AND k.minor
        ANTI JOIN other_parent_home AS d ON d.parent = pr.parent AND d.child = pr.child
    ),
    absent_parents AS (
        -- parents whose minor child is under someone else's guardianship live apart from their kin
        SELECT DISTINCT pr.parent AS person_id FROM fam_parent AS pr
        JOIN fam_guard AS g ON g.ward = pr.child AND g.guardian <> pr.parent
    ),
    kin AS (
        SELECT x.person_id, 2 AS priority, 0 AS rank, g.guardian AS target, 'guardian' AS via, g.uncertain
        FROM x JOIN fam_guard AS g ON g.ward = x.person_id
        UNION ALL
        SELECT x.person_id, 3 AS priority, CASE WHEN pr.kind = 'father' THEN 1 ELSE 0 END AS rank,
            pr.parent AS target, 'parent' AS via, pr.uncertain
        FROM x JOIN fam_parent AS pr ON pr.child = x.person_id WHERE x.minor
        UNION ALL
        SELECT x.person_id, 5 AS priority, 0 AS rank, m.child AS target, 'child' AS via, m.uncertain
        FROM x JOIN own_minors AS m ON m.parent = x.person_id WHERE NOT x.minor
        UNION ALL
        SELECT x.person_id, 5 AS priority, 0 AS rank, g.ward AS target, 'ward' AS via, g.uncertain
        FROM x JOIN fam_guard AS g ON g.guardian = x.person_id WHERE NOT x.minor
        UNION ALL
        SELECT x.person_id, 6 AS priority, CASE WHEN pr.kind = 'father' THEN 1 ELSE 0 END AS rank,
            pr.parent AS target, 'parent' AS via, pr.uncertain
        FROM x JOIN fam_parent AS pr ON pr.child = x.person_id WHERE NOT x.minor
        UNION ALL
        SELECT x.person_id, 8 AS priority, 0 AS rank, pr.child AS target, 'child' AS via, pr.uncertain
        FROM x JOIN fam_parent AS pr ON pr.parent = x.person_id
        JOIN fam_people AS k ON k.person_id = pr.child AND NOT k.minor WHERE NOT x.minor
        UNION ALL
        -- a man of the same surname and settlement whose given name the patronymic is made from
        SELECT x.person_id, 9 AS priority, 0 AS rank, f.father AS target, 'surname_settlement' AS via,
            mx.uncertain OR mo.uncertain AS uncertain
        FROM x JOIN fam_patronymic AS f ON f.child = x.person_id
        JOIN fam_migrant AS mx ON mx.person_id = x.person_id
        JOIN fam_migrant AS mo ON mo.person_id = f.father
        WHERE x.minor OR x.no_iin
        UNION ALL
        SELECT x.person_id, 10 AS priority,
            CASE WHEN NOT o.minor AND o.sex = 'M' THEN 0 WHEN NOT o.minor THEN 1 ELSE 2 END AS rank,
            mo.person_id AS target, 'surname_settlement' AS via, mx.uncertain OR mo.uncertain AS uncertain
        FROM x JOIN fam_migrant AS mx ON mx.person_id = x.person_id
        JOIN fam_migrant AS mo
            ON mo.surname = mx.surname AND mo.kato = mx.kato AND mo.person_id <> x.person_id
        JOIN fam_people AS o ON o.person_id = mo.person_id
        WHERE x.minor OR x.no_iin
        UNION ALL
        -- one typing error apart (passport spellings are plain Latin, where LEVENSHTEIN is portable)
        SELECT x.person_id, 11 AS priority,
            CASE WHEN NOT o.minor AND o.sex = 'M' THEN 0 WHEN NOT o.minor THEN 1 ELSE 2 END AS rank,
            mo.person_id AS target, 'surname_settlement' AS via, TRUE AS uncertain
        FROM x JOIN fam_migrant AS mx ON mx.person_id = x.person_id
        JOIN fam_surname_typos AS t ON t.kato = mx.kato AND t.surname = mx.surname
        JOIN fam_migrant AS mo ON mo.kato = t.kato AND mo.surname = t.other
        JOIN fam_people AS o ON o.person_id = mo.person_id
        WHERE x.minor OR x.no_iin
    ),
    spouse AS (
        SELECT x.person_id, 1 AS priority, 0 AS rank, cp.wife AS target, 'spouse' AS via, cp.uncertain
        FROM x JOIN fam_couples AS cp ON cp.state = 'married' AND cp.husband = x.person_id
        UNION ALL
        SELECT x.person_id, 1 AS priority, 0 AS rank, cp.husband AS target, 'spouse' AS via, cp.uncertain
        FROM x JOIN fam_couples AS cp ON cp.state = 'married' AND cp.wife = x.person_id
    )
    SELECT * FROM spouse
    UNION ALL
    SELECT k.* FROM kin AS k ANTI JOIN absent_parents AS a ON a.person_id = k.person_id
"""
"""``fam_candidates``: for each unregistered person, the people they may live with: ``priority`` orders
the kinds of tie, ``rank`` the people within one kind (the mother before the father; among namesakes,
men before women before children)."""


def _kept_union(rounds: int) -> str:
    """The placements of the first ``rounds`` rounds of attachment (``fam_kept_<r>``), as one query."""
    return " UNION ALL ".join(f"SELECT * FROM fam_kept_{r}" for r in range(1, rounds + 1))


def attach_sql(round_: int) -> str:
    """Round ``round_`` of attachment (``fam_kept_<round_>``, from 1): unplaced people join the household
    of their best placed candidate. Only the round's placements are written (person, household, how,
    uncertain): the households of registration (``fam_assign_0``) and earlier rounds' placements are
    read, never rewritten.

    Within a kind of tie, a household where more of the person's brothers and sisters live comes first
    (an unregistered child of parents who live apart goes where the siblings are). A child placed by
    surname never joins a household with a child born 1 to 199 days apart from it (they cannot share
    a mother); of two such children placed in one round, the one with the weaker evidence waits for
    the next. Where the best candidates still point to different households, the placement is marked
    uncertain.
    """
    earlier = (
        _kept_union(round_ - 1)
        if round_ > 1
        else "SELECT person_id, grp, how, uncertain FROM fam_assign_0 WHERE FALSE"
    )
    return f"""
        WITH earlier AS ({earlier}),
        placed AS (
            SELECT person_id, grp, uncertain FROM fam_assign_0 WHERE grp IS NOT NULL
            UNION ALL SELECT person_id, grp, uncertain FROM earlier
        ),
        unplaced AS (
            SELECT a.person_id, a.uncertain FROM fam_assign_0 AS a
            ANTI JOIN earlier AS e ON e.person_id = a.person_id
            WHERE a.grp IS NULL
        ),
        cand AS (
            SELECT c.person_id, c.priority, c.rank, c.via, c.uncertain OR t.uncertain AS uncertain, t.grp
            FROM fam_candidates AS c
            JOIN placed AS t ON t.person_id = c.target
            SEMI JOIN unplaced AS u ON u.person_id = c.person_id
        ),
        clash AS (
            -- a household with a child born 1 to 199 days apart from this one holds no brother or
            -- sister of it: no mother gives birth twice within 200 days (twins share a birth day)
            SELECT DISTINCT c.person_id, c.grp FROM cand AS c
            JOIN fam_people AS px ON px.person_id = c.person_id
            JOIN placed AS ps ON ps.grp = c.grp AND ps.person_id <> c.person_id
            JOIN fam_people AS py ON py.person_id = ps.person_id AND py.minor
            WHERE c.via = 'surname_settlement'
              AND ABS(DATE_DIFF('day', px.birth_date, py.birth_date)) BETWEEN 1 AND 199
        ),
        siblings AS (
            SELECT c.person_id, c.grp, COUNT(DISTINCT s.child) AS n
            FROM (SELECT DISTINCT person_id, grp FROM cand) AS c
            -- (the candidates' parents picked first, by IN: with the join first, DuckDB paired every
            -- parent's children with each other, 4.2 M pairs at a tenth of the national size, before
            -- the round's few candidates narrowed them)
            JOIN (SELECT child, parent FROM fam_parent WHERE child IN (SELECT person_id FROM cand)) AS px
                ON px.child = c.person_id
            JOIN fam_parent AS s ON s.parent = px.parent AND s.child <> c.person_id
            JOIN placed AS ps ON ps.person_id = s.child AND ps.grp = c.grp
            GROUP BY c.person_id, c.grp
        ),
        scored AS (
            SELECT c.*, COALESCE(s.n, 0) AS siblings
            FROM cand AS c LEFT JOIN siblings AS s ON s.person_id = c.person_id AND s.grp = c.grp
            ANTI JOIN clash AS k ON k.person_id = c.person_id AND k.grp = c.grp
        ),
        top AS (
            SELECT * FROM scored
            QUALIFY RANK() OVER (PARTITION BY person_id ORDER BY priority, siblings DESC) = 1
        ),
        spread AS (SELECT person_id, COUNT(DISTINCT grp) AS groups FROM top GROUP BY person_id),
        best AS (
            SELECT t.person_id, t.grp, t.via, t.priority, t.uncertain OR s.groups > 1 AS uncertain
            FROM top AS t JOIN spread AS s ON s.person_id = t.person_id
            -- (ties on the household broken by the evidence: certain before uncertain, then its kind,
            -- so that the flag and the kind are the same on every run and engine)
            QUALIFY ROW_NUMBER() OVER (
                PARTITION BY t.person_id ORDER BY t.rank, t.grp, t.uncertain, t.via) = 1
        ),
        deferred AS (
            -- two children placed together by surname in one round who cannot be siblings: the one
            -- with the weaker evidence waits for the next round, which sees the other one placed
            SELECT DISTINCT b1.person_id FROM best AS b1
            JOIN best AS b2 ON b2.grp = b1.grp AND b2.person_id <> b1.person_id
            JOIN fam_people AS p1 ON p1.person_id = b1.person_id
            JOIN fam_people AS p2 ON p2.person_id = b2.person_id AND p2.minor
            WHERE b1.via = 'surname_settlement'
              AND ABS(DATE_DIFF('day', p1.birth_date, p2.birth_date)) BETWEEN 1 AND 199
              AND (b2.priority < b1.priority OR (b2.priority = b1.priority
                   AND b2.person_id < b1.person_id))
        ),
        kept AS (SELECT b.* FROM best AS b ANTI JOIN deferred AS d ON d.person_id = b.person_id)
        SELECT b.person_id, b.grp, b.via AS how, COALESCE(b.uncertain, u.uncertain) AS uncertain
        FROM kept AS b JOIN unplaced AS u ON u.person_id = b.person_id
    """


def final_sql(rounds: int = ATTACH_ROUNDS) -> str:
    """``fam_assign``: everyone's household, from registration or from a round of attachment; whoever is
    still unplaced lives alone. From here on a household is a number (``grp``, by the order of its text
    key): every later step joins and groups by it, and numbers are cheaper to compare than addresses."""
    return f"""
        WITH placed AS (
            SELECT a.person_id, COALESCE(a.grp, k.grp, 'P:' || CAST(a.person_id AS VARCHAR)) AS grp,
                COALESCE(a.how, k.how, 'alone') AS how,
                CASE WHEN a.grp IS NOT NULL OR k.person_id IS NULL THEN a.uncertain ELSE k.uncertain END
                    AS uncertain,
                a.match_probability
            FROM fam_assign_0 AS a LEFT JOIN ({_kept_union(rounds)}) AS k ON k.person_id = a.person_id
        )
        SELECT person_id, DENSE_RANK() OVER (ORDER BY grp) AS grp, how, uncertain, match_probability
        FROM placed
    """
