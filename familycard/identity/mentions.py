"""Person mentions: every person every feed's records name, one row per record key and person role.

A feed's ``[[persons]]`` entries in the source catalogue say which fields describe each person a record
names; nothing else is read, so a new feed needs no code here. For each record key and role the mention
comes from the record's latest version that names the person (any of its fields filled). Tombstones are
never read, but a deleted record's earlier versions still count: the person was named.

What a mention holds (:data:`MENTION_COLUMNS`):

* ``feed``, ``record_key``, ``role``, ``mention_id`` (``feed|record_key|role``), ``first_seq`` (the delivery
  that first named the person in this record) and ``last_seq`` (the version read);
* ``iin`` (a valid IIN) and ``iin_raw`` (the delivered text of an IIN that failed validation), and
  ``iin_text``: whichever of the two is there, digits only, for comparing IINs as text;
* ``surname``, ``given_name``, ``patronymic`` as delivered; where a feed has only a full name it is split
  into SURNAME GIVEN PATRONYMIC (the patronymic is everything after the second word);
* ``birth_date``; ``sex`` normalised to ``M``/``F`` from the feed's codes (Latin, Russian or Kazakh);
* ``kato``: the feed's address KATO code where it has one (a column of type ``kato`` holding an
  address), a weak hint of where the person lives;
* ``surname_key``, ``given_name_key``, ``patronymic_key``: cross-script matching keys
  (:func:`familycard.identity.normalize.normalize_name`), made ASCII by :func:`name_key`.

Name keys cannot be computed in SQL, so the distinct names are fetched, normalised in Python and
registered back as a lookup table: the same code serves both engines, and the work grows with the number
of distinct spellings, not of records.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from familycard.identity.normalize import normalize_name
from familycard.sources.catalogue import Catalogue, FeedSpec, PersonRef
from familycard.store.engine import Engine

MENTION_COLUMNS = (
    "feed",
    "record_key",
    "role",
    "mention_id",
    "first_seq",
    "last_seq",
    "iin",
    "iin_raw",
    "iin_text",
    "surname",
    "given_name",
    "patronymic",
    "birth_date",
    "sex",
    "kato",
    "surname_key",
    "given_name_key",
    "patronymic_key",
)

# Codes agencies use for sex, upper-cased: Latin, Russian (М/Ж, муж/жен) and Kazakh (Е/Ә, ер/әйел).
_MALE = ("M", "М", "MALE", "МУЖ", "МУЖСКОЙ", "Е", "ЕР", "1")
_FEMALE = ("F", "Ж", "FEMALE", "ЖЕН", "ЖЕНСКИЙ", "Ә", "ӘЙЕЛ", "W", "2")
# One or more spaces; no backslash classes, whose escaping differs between the SQL dialects.
_SPACES = "[ ]+"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def name_key(name: str | None) -> str:
    """The ASCII matching key of one name part: :func:`normalize_name`, with any letter that has no Latin
    form (a script the normaliser does not know) written as its hexadecimal code point, so that keys can
    be compared by byte-counting SQL functions on every engine. ``None`` gives ``""``.

    >>> name_key("Нұрлан") == name_key("NURLAN") == "nurlan"
    True
    """
    if not name:
        return ""
    key = normalize_name(name)
    if key.isascii():
        return key
    return "".join(c if c.isascii() else f"{ord(c):x}" for c in key)


def name_keys_table(names: pa.Array | pa.ChunkedArray) -> pa.Table:
    """A lookup table ``(name, key)`` for distinct names (empty keys become null)."""
    values = [v for v in names.to_pylist() if v is not None]
    keys = [name_key(v) or None for v in values]
    return pa.table({"name": pa.array(values, pa.string()), "key": pa.array(keys, pa.string())})


def _col(spec_field: str | None, cast: str = "VARCHAR") -> str:
    return q(spec_field) if spec_field else f"CAST(NULL AS {cast})"


def _clean(expr: str) -> str:
    """Trimmed text with runs of spaces collapsed; empty becomes null. (The expression is only run where
    two spaces meet: the rest is unchanged by it, and nationally that is some 500 M names.)"""
    spaced = f"REGEXP_REPLACE({expr}, '{_SPACES}', ' ', 'g')"
    collapsed = f"CASE WHEN {expr} LIKE '%  %' THEN {spaced} ELSE {expr} END"
    return f"NULLIF(TRIM({collapsed}), '')"


def _address_field(spec: FeedSpec) -> str | None:
    fields = [c.field for c in spec.columns if c.type == "kato" and c.personal == "address"]
    return fields[0] if len(fields) == 1 else None


def _sex_sql(expr: str) -> str:
    """``M``, ``F`` or null from the sex code ``expr`` (a SQL expression)."""
    value = f"UPPER(TRIM({expr}))"
    male = ", ".join(f"'{c}'" for c in _MALE)
    female = ", ".join(f"'{c}'" for c in _FEMALE)
    return f"CASE WHEN {value} IN ({male}) THEN 'M' WHEN {value} IN ({female}) THEN 'F' END"


THIN_COLUMNS = (
    "feed", "record_key", "role", "first_seq", "last_seq", "iin", "iin_raw", "surname_in", "given_in",
    "patronymic_in", "full_in", "birth_date", "sex_in", "kato",
)  # fmt: skip
"""The columns of a *thin* mention: what the record delivered, names and sex not yet cleaned
(:func:`cleaned_sql` cleans them). A feed with a full name has it in ``full_in`` and no name parts."""


def thin_mentions_sql(spec: FeedSpec, person: PersonRef, table: str) -> str:
    """The thin mentions (:data:`THIN_COLUMNS`) of one person role of one feed, from its history table
    ``table``: the fields as delivered, so that a reader that needs the cleaned names of a few mentions
    cleans only those."""
    iin_raw = f"{person.iin}_raw" if person.iin else None
    stored = {c.field for c in spec.columns}
    has_raw = person.iin is not None and spec.column(person.iin).type == "iin"
    parts = (None, None, None) if person.full_name else (person.surname, person.given_name, person.patronymic)
    filled = [
        q(f)
        for f in (person.iin, person.surname, person.given_name, person.patronymic, person.full_name)
        if f and f in stored
    ]
    if has_raw:
        filled.append(q(iin_raw or ""))
    named = " OR ".join(f"{f} IS NOT NULL" for f in filled) or "FALSE"
    address = _address_field(spec)
    raw_sql = q(iin_raw) if has_raw and iin_raw else "CAST(NULL AS VARCHAR)"
    birth = f"CAST({q(person.birth_date)} AS DATE)" if person.birth_date else "CAST(NULL AS DATE)"
    fields = (*parts, person.full_name)
    columns_in = ("surname_in", "given_in", "patronymic_in", "full_in")
    names = ", ".join(f"CAST({_col(f)} AS VARCHAR) AS {c}" for f, c in zip(fields, columns_in, strict=True))
    columns = f"""'{spec.name}' AS feed, _key AS record_key, '{person.role}' AS role,
            {{first_seq}} AS first_seq, _seq AS last_seq,
            CAST({_col(person.iin)} AS VARCHAR) AS iin, CAST({raw_sql} AS VARCHAR) AS iin_raw,
            {names}, {birth} AS birth_date, CAST({_col(person.sex)} AS VARCHAR) AS sex_in,
            CAST({_col(address)} AS VARCHAR) AS kato"""
    # A record's mention is its latest version that is not deleted and names someone, seen since the
    # first such version. Most records have one version: the current one (no valid-to), and no closed
    # version; only records with a closed version go through the window that finds their latest.
    multi = f"(SELECT DISTINCT _key FROM {table} WHERE _valid_to_seq IS NOT NULL)"
    return f"""
        SELECT {columns.format(first_seq="_seq")}
        FROM {table} AS h ANTI JOIN {multi} AS k ON h._key = k._key
        WHERE h._valid_to_seq IS NULL AND NOT h._deleted AND ({named})
        UNION ALL
        SELECT * FROM (
            SELECT {columns.format(first_seq="MIN(_seq) OVER (PARTITION BY _key)")}
            FROM {table} AS h SEMI JOIN {multi} AS k ON h._key = k._key
            WHERE NOT h._deleted AND ({named})
            QUALIFY ROW_NUMBER() OVER (PARTITION BY _key ORDER BY _seq DESC, _line DESC) = 1
        ) AS w
    """


def cleaned_sql(m: str) -> dict[str, str]:
    """The cleaned name parts and sex of the thin mention ``m`` (an alias), by mention column: names
    trimmed with runs of spaces collapsed (a full name split into SURNAME GIVEN PATRONYMIC, the patronymic
    everything after the second word), sex normalised to ``M``/``F``. Cleaning a cleaned mention changes
    nothing."""
    full = _clean(f"{m}.full_in")
    first, second = f"SPLIT_PART({full}, ' ', 1)", f"SPLIT_PART({full}, ' ', 2)"
    # (the cleaned name has single spaces and no space at its ends)
    split = {
        "surname": f"NULLIF({first}, '')",
        "given_name": f"NULLIF({second}, '')",
        "patronymic": f"NULLIF(SUBSTRING({full}, LENGTH({first}) + LENGTH({second}) + 3), '')",
    }
    parts = {"surname": "surname_in", "given_name": "given_in", "patronymic": "patronymic_in"}
    # (a thin mention has a full name or name parts, never both; COALESCE, not a CASE on which it has:
    # DuckDB evaluates the nested CASE of the cleaning seven times as slowly inside another CASE)
    out = {c: f"COALESCE({split[c]}, {_clean(f'{m}.{parts[c]}')})" for c in parts}
    out["sex"] = _sex_sql(f"{m}.sex_in")
    return out


def thin_union_sql(
    catalogue: Catalogue, tables: dict[str, str] | None = None, *, given: dict[str, str] | None = None
) -> str:
    """Every feed's thin mentions, in the order of the catalogue's feeds and roles; ``tables`` maps a feed
    to its history view (default ``src_<feed>``), ``given`` to a query of its thin mentions made already
    (read instead of its history)."""
    parts: list[str] = []
    for spec in catalogue:
        if given and spec.name in given:
            parts.append(given[spec.name])
            continue
        table = (tables or {}).get(spec.name, f"src_{spec.name}")
        parts.extend(thin_mentions_sql(spec, person, table) for person in spec.persons)
    if not parts:
        raise ValueError("no feed in the catalogue declares [[persons]]")
    return "\nUNION ALL\n".join(f"SELECT * FROM ({p}) AS m{i}" for i, p in enumerate(parts))


def raw_mentions_sql(catalogue: Catalogue, tables: dict[str, str] | None = None) -> str:
    """Every feed's person mentions (names cleaned, not yet keyed); ``tables`` maps a feed to its history
    view (default ``src_<feed>``)."""
    clean = cleaned_sql("t")
    return f"""
        SELECT t.feed, t.record_key, t.role, t.first_seq, t.last_seq, t.iin, t.iin_raw,
            {clean["surname"]} AS surname, {clean["given_name"]} AS given_name,
            {clean["patronymic"]} AS patronymic, t.birth_date, {clean["sex"]} AS sex, t.kato
        FROM ({thin_union_sql(catalogue, tables)}) AS t
    """


DISTINCT_NAMES_SQL = """
    SELECT DISTINCT name FROM (
        SELECT surname AS name FROM {raw} UNION ALL SELECT given_name AS name FROM {raw}
        UNION ALL SELECT patronymic AS name FROM {raw}
    ) AS n WHERE name IS NOT NULL ORDER BY name
"""


def keyed_mentions_sql(raw: str, keys: str, *, more: str = "", join: str = "") -> str:
    """The mentions of ``raw`` (a table or a parenthesised query with the cleaned mention columns, as
    alias ``m``) with their ``mention_id``, ``iin_text`` and name keys looked up in ``keys``, as
    :data:`MENTION_COLUMNS`; ``more`` adds columns after them (``, expr AS name, ...``) and ``join`` more
    joins."""
    return f"""
        SELECT m.feed, m.record_key, m.role, m.feed || '|' || m.record_key || '|' || m.role AS mention_id,
            m.first_seq, m.last_seq, m.iin, m.iin_raw,
            COALESCE(m.iin, NULLIF(REGEXP_REPLACE(m.iin_raw, '[^0-9]', '', 'g'), '')) AS iin_text,
            m.surname, m.given_name, m.patronymic, m.birth_date, m.sex, m.kato,
            ks.key AS surname_key, kg.key AS given_name_key, kp.key AS patronymic_key{more}
        FROM {raw} AS m
        LEFT JOIN {keys} AS ks ON ks.name = m.surname
        LEFT JOIN {keys} AS kg ON kg.name = m.given_name
        LEFT JOIN {keys} AS kp ON kp.name = m.patronymic{join}
    """


def name_keys(engine: Engine, distinct_names_sql: str) -> pa.Table:
    """The lookup table ``(name, key)`` of the names ``distinct_names_sql`` selects (one column ``name``):
    fetched, then keyed in Python."""
    return name_keys_table(engine.fetch(distinct_names_sql)["name"])


def build_mentions(
    engine: Engine,
    catalogue: Catalogue,
    staging: Path,
    *,
    name: str = "id_mentions",
    tables: dict[str, str] | None = None,
) -> int:
    """Materialise every person mention (:data:`MENTION_COLUMNS`) as the view ``name`` (files under
    ``staging``); the feeds' history tables must be registered (``src_<feed>``, or as ``tables`` says).
    Returns the row count. (For reading mentions whole, e.g. to estimate the linkage model; the identity
    stage itself cleans and keys only the mentions an IIN does not settle.)"""
    raw = f"{name}_raw"
    keys = f"{name}_keys"
    engine.materialize(raw, raw_mentions_sql(catalogue, tables), staging / raw)
    engine.register_arrow(keys, name_keys(engine, DISTINCT_NAMES_SQL.format(raw=raw)))
    # (unordered: every reader of the mentions orders what it needs, and sorting 18 M mentions at a tenth
    # of the national size took half of this step)
    n = engine.materialize(name, keyed_mentions_sql(raw, keys), staging / name)
    engine.drop(keys)
    engine.drop(raw)
    return n
