"""SQL that keeps every feed's history: each record's versions with the delivery that said it.

A feed's history table holds one row per *version* of a record: the canonical fields, ``_key`` (the
record's key), ``_op`` (``insert``/``update``/``delete`` as the agency said it, or implied), ``_deleted``
(a tombstone: the record was deleted), ``_seq``/``_delivery``/``_period``/``_line`` (which delivery and line
said it; ``_period`` is the delivery's period, the version's *valid-from*), and ``_valid_to_seq``/
``_valid_to_period`` (the delivery that superseded it; null while current).

How deliveries become versions, whatever the feed's mode:

- a row whose content equals the record's current version changes nothing (a re-sent record, a duplicate);
- a row with new content opens a new version and closes the previous one;
- a ``delete`` operation closes the current version and opens a tombstone; a deletion of a record that is
  not current changes nothing;
- a *full* delivery of a snapshot or delta feed states everything the agency holds, so a record absent from
  it is deleted as of that delivery; in a partial (delta) delivery absence means "unchanged";
- events feeds never imply deletions: each event is its own record, and a re-sent event with other content
  is a correction (a new version).

All SQL here is DuckDB dialect within the subset both engines run (``familycard.store.engine``).
"""

from __future__ import annotations

from familycard.sources.catalogue import FeedSpec

HISTORY_META = (
    "_key",
    "_op",
    "_deleted",
    "_seq",
    "_delivery",
    "_period",
    "_line",
    "_flagged",
    "_valid_to_seq",
    "_valid_to_period",
)


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def stored_fields(spec: FeedSpec) -> list[str]:
    """Canonical fields kept in history (the operation column becomes ``_op``)."""
    out = []
    for c in spec.columns:
        if c.field == spec.op_field:
            continue
        out.append(c.field)
        if c.type == "iin":
            out.append(c.field + "_raw")
    return out


def key_sql(spec: FeedSpec, alias: str = "") -> str:
    pre = f"{alias}." if alias else ""
    parts = [f"CAST({pre}{q(k)} AS VARCHAR)" for k in spec.key]
    return parts[0] if len(parts) == 1 else " || '|' || ".join(parts)


def op_sql(spec: FeedSpec) -> str:
    """The operation of a staged row: the agency's op code mapped, or ``insert``."""
    if spec.op_field is None or not spec.ops:
        return "'insert'"
    whens = " ".join(f"WHEN '{code}' THEN '{op}'" for code, op in sorted(spec.ops.items()))
    return f"CASE {q(spec.op_field)} {whens} ELSE 'update' END"


def merge_sql(
    spec: FeedSpec, *, has_previous: bool, views: tuple[str, str, str] = ("prev", "staged", "fulls")
) -> str:
    """The feed's new history from views ``prev`` (its history so far, if ``has_previous``), ``staged``
    (this run's accepted rows with ``_seq``, ``_delivery``, ``_period``, ``_line``, ``_flagged``) and
    ``fulls`` (``_seq``, ``_delivery``, ``_period`` of this run's deliveries that imply deletions); ``views``
    renames the three."""
    prev, staged_view, fulls = views
    fields = stored_fields(spec)
    cols = ", ".join(q(f) for f in fields)
    meta = "_key, _op, _seq, _delivery, _period, _line, _flagged"
    base = (
        f"SELECT {cols}, {meta}, TRUE AS _base, {content_hash_sql(fields)} AS _h FROM {prev} "
        "WHERE _valid_to_seq IS NULL"
        if has_previous
        else "SELECT * FROM s WHERE FALSE"
    )
    staged = (
        f"SELECT {cols}, {key_sql(spec)} AS _key, {op_sql(spec)} AS _op, _seq, _delivery, _period, "
        f"_line, _flagged, FALSE AS _base, {content_hash_sql(fields)} AS _h FROM {staged_view}"
    )
    # Tombstones implied by a full delivery carry no field values; "{field}" placeholders take SQL types.
    tomb_fields = ", ".join(f"CAST(NULL AS {{{f}}}) AS {q(f)}" for f in fields)
    implied = ""
    if spec.mode != "events":
        # The first full delivery after an occurrence of a key, and before its next occurrence, deletes it.
        implied = f"""
        , occ AS (
            SELECT _key, _seq, LEAD(_seq) OVER (PARTITION BY _key ORDER BY _seq, _line) AS _next
            FROM (SELECT _key, _seq, _line FROM base UNION ALL SELECT _key, _seq, _line FROM s) AS u
        ), gone AS (
            SELECT o._key, MIN(f._seq) AS _seq
            FROM occ AS o JOIN {fulls} AS f ON f._seq > o._seq AND (o._next IS NULL OR f._seq < o._next)
            GROUP BY o._key, o._seq
        ), tomb AS (
            SELECT {tomb_fields}, g._key,
                'delete' AS _op, g._seq, f._delivery, f._period, CAST(NULL AS BIGINT) AS _line,
                FALSE AS _flagged, FALSE AS _base, CAST(NULL AS VARCHAR) AS _h
            FROM gone AS g JOIN {fulls} AS f ON f._seq = g._seq
        )"""
    union = "SELECT * FROM base UNION ALL SELECT * FROM s" + (
        " UNION ALL SELECT * FROM tomb" if implied else ""
    )
    closed = (
        f"UNION ALL SELECT {cols}, {', '.join(HISTORY_META)} FROM {prev} WHERE _valid_to_seq IS NOT NULL"
        if has_previous
        else ""
    )
    return f"""
        WITH s AS ({staged}),
        base AS ({base}){implied},
        allv AS ({union}),
        marked AS (
            SELECT *, ROW_NUMBER() OVER w AS _rn, LAG(_op) OVER w AS _prev_op, LAG(_h) OVER w AS _prev_h
            FROM allv
            WINDOW w AS (PARTITION BY _key ORDER BY _seq, _line)
        ),
        kept AS (
            SELECT * FROM marked
            WHERE _base
               OR (_op = 'delete' AND _rn > 1 AND _prev_op <> 'delete')
               OR (_op <> 'delete' AND (_rn = 1 OR _prev_op = 'delete' OR _h <> _prev_h))
        )
        SELECT {cols}, _key, _op, _op = 'delete' AS _deleted, _seq, _delivery, _period, _line, _flagged,
            LEAD(_seq) OVER w2 AS _valid_to_seq, LEAD(_period) OVER w2 AS _valid_to_period
        FROM kept
        WINDOW w2 AS (PARTITION BY _key ORDER BY _seq, _line)
        {closed}
    """


_SEP, _NULL = "\x1f", "\x1e"  # unit and record separators: characters no agency text holds


def content_hash_sql(fields: list[str]) -> str:
    """A hash of a row's content: two rows have the same hash when every field is equal (nulls included),
    so comparing versions compares one column instead of every field. ``{text:<field>}`` placeholders
    become each field's text form (:func:`typed_merge_sql`)."""
    if not fields:
        return "''"
    sep = f" || '{_SEP}' || "
    return "MD5(" + sep.join(f"COALESCE({{text:{f}}}, '{_NULL}')" for f in fields) + ")"


def typed_merge_sql(
    spec: FeedSpec,
    types: dict[str, str],
    *,
    has_previous: bool,
    views: tuple[str, str, str] = ("prev", "staged", "fulls"),
) -> str:
    """:func:`merge_sql` with its type placeholders filled."""
    return with_types(merge_sql(spec, has_previous=has_previous, views=views), spec, types)


def with_types(sql: str, spec: FeedSpec, types: dict[str, str]) -> str:
    """Fill ``{<field>}`` (the field's SQL type) and ``{text:<field>}`` (its text form) placeholders."""
    for f in [*stored_fields(spec), *([spec.op_field] if spec.op_field else [])]:
        sql = sql.replace("{" + f + "}", types[f])
        # Doubles as fixed-point text: both engines print a DECIMAL alike, not always a DOUBLE.
        text = (
            f"CAST(CAST({q(f)} AS DECIMAL(38, 9)) AS VARCHAR)"
            if types[f] == "DOUBLE"
            else f"CAST({q(f)} AS VARCHAR)"
        )
        sql = sql.replace("{text:" + f + "}", text)
    return sql


def duplicates_sql(spec: FeedSpec, types: dict[str, str], staged: str = "staged") -> str:
    """Warnings for rows of ``staged`` repeated within their delivery: exact duplicates, and keys that
    appear with different content (the later line is the later version)."""
    fields = stored_fields(spec)
    if spec.op_field:
        fields.append(spec.op_field)
    key = key_sql(spec)
    sql = f"""
        WITH h AS (
            SELECT _delivery, _seq, _line, {key} AS _key, {content_hash_sql(fields)} AS _h FROM {staged}
        ),
        k AS (
            SELECT _delivery, _seq, _line, _key,
                ROW_NUMBER() OVER (PARTITION BY _seq, _key, _h ORDER BY _line) AS _rn,
                MIN(_line) OVER (PARTITION BY _seq, _key, _h) AS _first,
                COUNT(*) OVER (PARTITION BY _seq, _key) AS _n_key,
                COUNT(*) OVER (PARTITION BY _seq, _key, _h) AS _n_same,
                MIN(_line) OVER (PARTITION BY _seq, _key) AS _first_key
            FROM h
        )
        SELECT _delivery, _seq, _line, _key,
            CASE WHEN _rn > 1 THEN 'duplicate' ELSE 'repeated_key' END AS rule,
            CASE WHEN _rn > 1 THEN 'duplicate of line ' || CAST(_first AS VARCHAR)
                 ELSE 'the same key with other content at line ' || CAST(_first_key AS VARCHAR)
                      || ' (the later line is taken as the later version)' END AS reason
        FROM k
        WHERE _rn > 1 OR (_n_key > _n_same AND _line > _first_key AND _rn = 1)
    """
    return with_types(sql, spec, types)


def references_sql(spec: FeedSpec, field: str, target: str, target_field: str, staged: str = "staged") -> str:
    """Rows of ``staged`` whose ``field`` is not found in the target feed's history view ``target``."""
    return f"""
        SELECT s._delivery, s._seq, s._line, {key_sql(spec, "s")} AS _key, s.{q(field)} AS value
        FROM {staged} AS s
        LEFT JOIN (SELECT DISTINCT {q(target_field)} AS v FROM {target}) AS t ON s.{q(field)} = t.v
        WHERE s.{q(field)} IS NOT NULL AND t.v IS NULL
    """
