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

How a history is stored, so that a run costs what it changes rather than what the feed holds: the
table's directory holds *closed* part files (``closed-<run>-NNNN.parquet``: versions with a valid-to,
written once by the run that closed them and never rewritten; later runs hard-link them) and *open*
part files (every other file: they hold the current versions, and ``open-*`` files written by this
module hold nothing else). A run computes only what it changes (:func:`change_sql`: the new versions
and the current versions of the keys it brings), appends the versions it closed as a new closed part,
and writes its new current versions as a new open part. The current versions it closes stay in their
open parts, which are written once too: the run lists them (``_key``, ``_seq``, ``_line``:
:func:`superseded_sql`)
in the table's ``_superseded`` directory, and every reader leaves them out
(:data:`familycard.store.engine.SUPERSEDED`). Only when the open parts have grown too many, or the list
too long, are they rewritten into one without the versions closed, and the list emptied; older tables
(a single ``part-*`` file holding every version) are read the same way, and their closed versions move
to a closed part the first time one of their versions is closed. Readers see one table either way.

A feed's first delivery has nothing to compare with: its rows are the versions. Staged in the history's
columns (:func:`staged_rows`), one delivery's file becomes the open part as it is; only keys that occur
more than once in it, or that a row deletes, go through the window that orders versions
(:func:`first_versions_sql`), and its rows that are not current versions are listed as superseded
(:func:`not_current_sql`). Several deliveries in one run go through the window whole
(:func:`first_history_sql`). A later run's one delivery that implies no deletions is kept the same way:
its staged file becomes a new open part, and only the keys it touches are compared
(:func:`touched_keys_sql`, :func:`direct_superseded_sql`).

All SQL here is DuckDB dialect within the subset both engines run (``familycard.store.engine``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from familycard.sources.catalogue import FeedSpec

HISTORY_META_SCHEMA = pa.schema(
    [
        ("_key", pa.string()),
        ("_op", pa.string()),
        ("_deleted", pa.bool_()),
        ("_seq", pa.int64()),
        ("_delivery", pa.string()),
        ("_period", pa.string()),
        ("_line", pa.int64()),
        ("_flagged", pa.bool_()),
        ("_valid_to_seq", pa.int64()),
        ("_valid_to_period", pa.string()),
    ]
)
"""The columns every history row has after its feed's stored fields, with their types."""
HISTORY_META = tuple(HISTORY_META_SCHEMA.names)
CLOSED_PART = "closed"  # part files of closed versions only: written once, never rewritten
OPEN_PART = "open"  # part files that hold current versions (rewritten when one of them is closed)


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


def staged_schema(spec: FeedSpec, fields: pa.Schema) -> pa.Schema:
    """The columns in which a delivery's accepted rows are staged: the history's (:func:`history_columns`),
    so that a feed's first delivery becomes its history's open part as it was staged. ``fields``: the
    validated rows' schema (each stored field's type)."""
    return pa.schema([fields.field(f) for f in stored_fields(spec)] + list(HISTORY_META_SCHEMA))


def staged_rows(spec: FeedSpec, rows: pa.Table, seq: int, delivery: str, period: str) -> pa.Table:
    """Validated rows of one delivery (with ``_line`` and ``_flagged``) in the staged columns
    (:func:`staged_schema`): the record's key as text (key fields joined by ``|``), the operation as the
    agency said it (its code mapped; ``update`` for an unmapped code, ``insert`` for a feed without
    operations), and the delivery that said it; the valid-to is open."""
    n = rows.num_rows
    texts = [pc.cast(rows[k], pa.string()) for k in spec.key]
    key = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, "|")
    if spec.op_field is None or not spec.ops:
        op = _repeated("insert", n)
    else:
        codes = sorted(spec.ops)
        named = pa.array([spec.ops[c] for c in codes] + ["update"], pa.string())
        index = pc.index_in(rows[spec.op_field], value_set=pa.array(codes, pa.string()))
        index = pc.fill_null(index, len(codes))
        op = pc.take(named, index)
    columns = {f: rows[f] for f in stored_fields(spec)}
    columns |= {
        "_key": key,
        "_op": op,
        "_deleted": pc.equal(op, "delete"),
        "_seq": pa.array(np.full(n, seq, np.int64)),
        "_delivery": _repeated(delivery, n),
        "_period": _repeated(period, n),
        "_line": rows["_line"],
        "_flagged": rows["_flagged"],
        "_valid_to_seq": pa.nulls(n, pa.int64()),
        "_valid_to_period": pa.nulls(n, pa.string()),
    }
    return pa.table(columns, schema=staged_schema(spec, rows.schema))


def _repeated(text: str, n: int) -> pa.Array:
    """``text`` ``n`` times (built by Arrow: a Python list of a batch's rows costs about 20 times as
    much)."""
    return pa.repeat(pa.scalar(text, pa.string()), n)


def history_columns(spec: FeedSpec, alias: str = "") -> str:
    """The columns of a history table, in their stored order (every part file has exactly these)."""
    pre = f"{alias}." if alias else ""
    return ", ".join(f"{pre}{q(c)}" for c in [*stored_fields(spec), *HISTORY_META])


def is_closed_part(name: str) -> bool:
    """Whether a part file of a history table holds closed versions only (and is never rewritten)."""
    return name.startswith(CLOSED_PART + "-")


def _staged_rows(spec: FeedSpec, staged: str) -> str:
    """This run's accepted rows of a feed (staged with the history's columns, :func:`staged_schema`) as
    versions to compare, with their content hash."""
    fields = stored_fields(spec)
    cols = ", ".join(q(f) for f in fields)
    return (
        f"SELECT {cols}, _key, _op, _seq, _delivery, _period, "
        f"_line, _flagged, FALSE AS _base, {content_hash_sql(fields)} AS _h FROM {staged}"
    )


def _versions_ctes(spec: FeedSpec, *, staged: str, base: str | None, fulls: str | None) -> str:
    """``WITH`` clauses ending in ``v``: every version of the keys in ``staged`` (SQL of staged rows) and
    ``base`` (SQL of their current versions so far, or None), with ``_base`` (the version was already in
    the history) and its valid-to. ``fulls`` names the view of this run's deliveries that imply
    deletions (None: there are none)."""
    fields = stored_fields(spec)
    cols = ", ".join(q(f) for f in fields)
    implied = ""
    if fulls is not None and spec.mode != "events":
        # Tombstones implied by a full delivery carry no field values ("{field}": the field's SQL type).
        # The first full delivery after an occurrence of a key, and before its next occurrence, deletes it.
        tomb_fields = ", ".join(f"CAST(NULL AS {{{f}}}) AS {q(f)}" for f in fields)
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
    return f"""
        WITH s AS ({staged}),
        base AS ({base if base is not None else "SELECT * FROM s WHERE FALSE"}){implied},
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
        ),
        v AS (
            SELECT {cols}, _key, _op, _op = 'delete' AS _deleted, _seq, _delivery, _period, _line, _flagged,
                LEAD(_seq) OVER w2 AS _valid_to_seq, LEAD(_period) OVER w2 AS _valid_to_period, _base
            FROM kept
            WINDOW w2 AS (PARTITION BY _key ORDER BY _seq, _line)
        )
    """


def first_history_sql(spec: FeedSpec, *, staged: str, fulls: str | None, closed: bool) -> str:
    """The closed (``closed``) or open versions of a feed that has no history yet, from the staged rows
    of several deliveries in one run (a key may recur across them: every key goes through the window)."""
    ctes = _versions_ctes(spec, staged=_staged_rows(spec, staged), base=None, fulls=fulls)
    where = "IS NOT NULL" if closed else "IS NULL"
    return f"{ctes} SELECT {history_columns(spec)} FROM v WHERE _valid_to_seq {where}"


def first_versions_sql(spec: FeedSpec, *, staged: str, multi: str, fulls: str | None) -> str:
    """The versions of a feed's first delivery that need ordering (the run brings one delivery, whose
    staged rows become the history's open part as they are): those of the keys that recur in it or
    are deleted (``multi``, a view of ``_key``, as the reading processes found them:
    :mod:`familycard.sources.recurring`; a ``delete`` of a record never seen deletes nothing). Every
    other row is its record's only version, current."""
    ctes = _versions_ctes(spec, staged=_staged_rows(spec, of_keys(staged, multi)), base=None, fulls=fulls)
    return f"{ctes} SELECT {history_columns(spec)} FROM v"


def not_current_sql(staged: str, keys: str, versions: str) -> str:
    """The staged rows of the keys in view ``keys`` that are not current versions in ``versions`` (the
    keys' versions ordered: :func:`first_versions_sql`, :func:`change_sql`): earlier versions of a key
    that recurs in the delivery (their closed copies are in ``versions``), rows that repeat the current
    version, deletions of records never seen. As the superseded list names them (``_key``, ``_seq``,
    ``_line``), so that readers of an open part made of the staged file leave them out."""
    return f"""
        SELECT s._key, s._seq, s._line FROM {of_keys(staged, keys)}
        ANTI JOIN (SELECT _key, _seq, _line FROM {versions} WHERE _valid_to_seq IS NULL) AS v
          ON s._key = v._key AND s._seq = v._seq AND s._line = v._line
    """


def change_sql(spec: FeedSpec, *, staged: str, prev: str, fulls: str | None) -> str:
    """What this run changes in a feed's history: its new versions and the current versions it closes
    (with their valid-to), nothing else. ``prev`` holds the current versions so far (its rows with a
    valid-to are ignored). Only the current versions of keys in ``staged`` are compared, unless a
    delivery in ``fulls`` implies deletions (then every current key is affected)."""
    fields = stored_fields(spec)
    cols = ", ".join(q(f) for f in fields)
    meta = "_key, _op, _seq, _delivery, _period, _line, _flagged"
    source = f"SELECT * FROM {prev} WHERE _valid_to_seq IS NULL"
    if fulls is None or spec.mode == "events":
        source = (
            f"SELECT p.* FROM {prev} AS p SEMI JOIN (SELECT DISTINCT _key FROM s) AS k ON p._key = k._key "
            "WHERE p._valid_to_seq IS NULL"
        )
    base = f"SELECT {cols}, {meta}, TRUE AS _base, {content_hash_sql(fields)} AS _h FROM ({source}) AS p"
    ctes = _versions_ctes(spec, staged=_staged_rows(spec, staged), base=base, fulls=fulls)
    return f"{ctes} SELECT {history_columns(spec)} FROM v WHERE NOT _base OR _valid_to_seq IS NOT NULL"


def touched_keys_sql(staged: str, multi: str, prev: str) -> str:
    """The keys of a run's one delivery (``staged``) whose versions need ordering: those that recur in it
    or that a row deletes (``multi``: :mod:`familycard.sources.recurring`) and those the history already
    holds as current (``prev``; ``_held`` is 1 for these). Every other staged row is its record's first
    version, current as it was staged."""
    return f"""
        SELECT _key, MAX(_held) AS _held FROM (
            SELECT _key, 0 AS _held FROM {multi}
            UNION ALL
            SELECT s._key, 1 AS _held FROM {staged} AS s
            SEMI JOIN (SELECT _key FROM {prev} WHERE _valid_to_seq IS NULL) AS p ON s._key = p._key
        ) AS t GROUP BY _key
    """


def of_keys(staged: str, keys: str, *, among: bool = True) -> str:
    """The rows of ``staged`` whose key is (``among``) or is not in the view ``keys``, as a subquery."""
    join = "SEMI" if among else "ANTI"
    return f"(SELECT s.* FROM {staged} AS s {join} JOIN {keys} AS k ON s._key = k._key) AS s"


def direct_superseded_sql(changes: str, first_seq: int, staged: str, touched: str) -> str:
    """The rows a run adds to the superseded list when its one delivery's staged rows become an open part
    as they are (:func:`touched_keys_sql`): the current versions it closes, and the staged rows of
    touched keys that are not current versions in ``changes`` (:func:`not_current_sql`)."""
    return (
        f"SELECT _key, _seq, _line FROM {changes} WHERE _seq < {int(first_seq)} "
        f"UNION ALL {not_current_sql(staged, touched, changes)}"
    )


def change_counts_sql(spec: FeedSpec, changes: str, first_seq: int) -> str:
    """One row about a feed's changes (:func:`change_sql` in view ``changes``): rows, current versions it
    closes (``_seq`` before this run's first delivery ``first_seq``) and closed versions."""
    return (
        f"SELECT '{spec.name}' AS feed, COUNT(*) AS n, "
        f"COUNT(*) FILTER (WHERE _seq < {int(first_seq)}) AS closes, "
        f"COUNT(*) FILTER (WHERE _valid_to_seq IS NOT NULL) AS closed FROM {changes}"
    )


def closed_part_sql(spec: FeedSpec, changes: str, prev: str | None = None) -> str:
    """The closed versions of a run (from ``changes``), with those of rewritten part files ``prev``."""
    hist = history_columns(spec)
    sql = f"SELECT {hist} FROM {changes} WHERE _valid_to_seq IS NOT NULL"
    if prev is not None:
        sql += f" UNION ALL SELECT {hist} FROM {prev} WHERE _valid_to_seq IS NOT NULL"
    return sql


def superseded_sql(changes: str, first_seq: int) -> str:
    """The current versions a run closes (from ``changes``: the history's versions before the run's first
    delivery ``first_seq``), as the superseded list names them: ``_key``, ``_seq`` and ``_line``."""
    return f"SELECT _key, _seq, _line FROM {changes} WHERE _seq < {int(first_seq)}"


def open_part_sql(
    spec: FeedSpec, changes: str, prev: str | None = None, first_seq: int = 0, untouched: str | None = None
) -> str:
    """The current versions after a run: the new ones in ``changes``, with (when the part files ``prev``
    are rewritten) the current versions of ``prev`` this run did not close, and the staged rows that
    are current as they are (``untouched``, a subquery: :func:`touched_keys_sql`)."""
    hist = history_columns(spec)
    sql = f"SELECT {hist} FROM {changes} WHERE _valid_to_seq IS NULL"
    if untouched is not None:
        sql += f" UNION ALL SELECT {history_columns(spec, 's')} FROM {untouched}"
    if prev is not None:
        sql += f"""
        UNION ALL
        SELECT {history_columns(spec, "p")} FROM {prev} AS p
        ANTI JOIN (SELECT _key FROM {changes} WHERE _seq < {int(first_seq)}) AS c ON p._key = c._key
        WHERE p._valid_to_seq IS NULL"""
    return sql


_SEP, _NULL = "\x1f", "\x1e"  # unit and record separators: characters no agency text holds


def content_hash_sql(fields: list[str]) -> str:
    """A hash of a row's content: two rows have the same hash when every field is equal (nulls included),
    so comparing versions compares one column instead of every field. ``{text:<field>}`` placeholders
    become each field's text form (:func:`with_types`)."""
    if not fields:
        return "''"
    sep = f" || '{_SEP}' || "
    return "MD5(" + sep.join(f"COALESCE({{text:{f}}}, '{_NULL}')" for f in fields) + ")"


def with_types(sql: str, spec: FeedSpec, types: dict[str, str]) -> str:
    """Fill ``{<field>}`` (the field's SQL type) and ``{text:<field>}`` (its text form) placeholders."""
    types = {**types, "_op": "VARCHAR"}
    for f in [*stored_fields(spec), "_op"]:
        sql = sql.replace("{" + f + "}", types[f])
        # Doubles as fixed-point text: both engines print a DECIMAL alike, not always a DOUBLE.
        text = (
            f"CAST(CAST({q(f)} AS DECIMAL(38, 9)) AS VARCHAR)"
            if types[f] == "DOUBLE"
            else f"CAST({q(f)} AS VARCHAR)"
        )
        sql = sql.replace("{text:" + f + "}", text)
    return sql


def duplicates_sql(
    spec: FeedSpec, types: dict[str, str], staged: str = "staged", multi: str | None = None
) -> str:
    """Warnings for rows of ``staged`` repeated within their delivery: exact duplicates, and keys that
    appear with different content (the later line is the later version). ``multi`` (a view of
    ``_key``, :mod:`familycard.sources.recurring`) restricts the comparison to the keys that occur more
    than once."""
    fields = [*stored_fields(spec), "_op"]
    if multi is not None:
        staged = f"(SELECT d.* FROM {staged} AS d SEMI JOIN {multi} AS m ON d._key = m._key) AS d"
    sql = f"""
        WITH h AS (
            SELECT _delivery, _seq, _line, _key, {content_hash_sql(fields)} AS _h FROM {staged}
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


def unreferenced_sql(sources: list[tuple[str, str, str]], target: str, target_field: str) -> str:
    """Rows of staged views whose reference is not found in the referenced feed's history view
    ``target``: ``sources`` are (feed, field, staged view) of every field that refers to
    ``target_field``. One anti-join probes all their rows against the referenced feed, which is read
    once; no value set needs to be made distinct first."""
    rows = " UNION ALL ".join(
        f"SELECT '{feed}' AS feed, '{field}' AS field, s._delivery, s._seq, s._line, s._key, "
        f"s.{q(field)} AS value FROM {staged} AS s WHERE s.{q(field)} IS NOT NULL"
        for feed, field, staged in sources
    )
    return (
        f"SELECT x.feed, x.field, x._delivery, x._seq, x._line, x._key, CAST(x.value AS VARCHAR) AS value "
        f"FROM ({rows}) AS x ANTI JOIN {target} AS t ON x.value = t.{q(target_field)}"
    )
