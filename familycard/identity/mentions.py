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


def _sex_sql(field: str | None) -> str:
    if not field:
        return "CAST(NULL AS VARCHAR)"
    value = f"UPPER(TRIM({q(field)}))"
    male = ", ".join(f"'{c}'" for c in _MALE)
    female = ", ".join(f"'{c}'" for c in _FEMALE)
    return f"CASE WHEN {value} IN ({male}) THEN 'M' WHEN {value} IN ({female}) THEN 'F' END"


def person_mentions_sql(spec: FeedSpec, person: PersonRef, table: str) -> str:
    """The mentions of one person role of one feed, from its history table ``table``."""
    iin_raw = f"{person.iin}_raw" if person.iin else None
    stored = {c.field for c in spec.columns}
    has_raw = person.iin is not None and spec.column(person.iin).type == "iin"
    if person.full_name:
        full = _clean(q(person.full_name))
        surname = f"NULLIF(SPLIT_PART({full}, ' ', 1), '')"
        given = f"NULLIF(SPLIT_PART({full}, ' ', 2), '')"
        # everything after the second word (the cleaned name has single spaces and no space at its ends)
        after = f"LENGTH(SPLIT_PART({full}, ' ', 1)) + LENGTH(SPLIT_PART({full}, ' ', 2)) + 3"
        patronymic = f"NULLIF(SUBSTRING({full}, {after}), '')"
    else:
        surname = _clean(_col(person.surname))
        given = _clean(_col(person.given_name))
        patronymic = _clean(_col(person.patronymic))
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
    columns = f"""'{spec.name}' AS feed, _key AS record_key, '{person.role}' AS role,
            {{first_seq}} AS first_seq, _seq AS last_seq,
            CAST({_col(person.iin)} AS VARCHAR) AS iin, CAST({raw_sql} AS VARCHAR) AS iin_raw,
            {surname} AS surname, {given} AS given_name, {patronymic} AS patronymic,
            {birth} AS birth_date, {_sex_sql(person.sex)} AS sex,
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


def raw_mentions_sql(catalogue: Catalogue, tables: dict[str, str] | None = None) -> str:
    """Every feed's person mentions (names not yet keyed); ``tables`` maps a feed to its history view
    (default ``src_<feed>``)."""
    parts: list[str] = []
    for spec in catalogue:
        table = (tables or {}).get(spec.name, f"src_{spec.name}")
        parts.extend(person_mentions_sql(spec, person, table) for person in spec.persons)
    if not parts:
        raise ValueError("no feed in the catalogue declares [[persons]]")
    return "\nUNION ALL\n".join(f"SELECT * FROM ({p}) AS m{i}" for i, p in enumerate(parts))


DISTINCT_NAMES_SQL = """
    SELECT DISTINCT name FROM (
        SELECT surname AS name FROM {raw} UNION ALL SELECT given_name AS name FROM {raw}
        UNION ALL SELECT patronymic AS name FROM {raw}
    ) AS n WHERE name IS NOT NULL ORDER BY name
"""

KEYED_MENTIONS_SQL = """
    SELECT m.feed, m.record_key, m.role, m.feed || '|' || m.record_key || '|' || m.role AS mention_id,
        m.first_seq, m.last_seq, m.iin, m.iin_raw,
        COALESCE(m.iin, NULLIF(REGEXP_REPLACE(m.iin_raw, '[^0-9]', '', 'g'), '')) AS iin_text,
        m.surname, m.given_name, m.patronymic, m.birth_date, m.sex, m.kato,
        ks.key AS surname_key, kg.key AS given_name_key, kp.key AS patronymic_key
    FROM {raw} AS m
    LEFT JOIN {keys} AS ks ON ks.name = m.surname
    LEFT JOIN {keys} AS kg ON kg.name = m.given_name
    LEFT JOIN {keys} AS kp ON kp.name = m.patronymic
"""


def build_mentions(
    engine: Engine,
    catalogue: Catalogue,
    staging: Path,
    *,
    name: str = "id_mentions",
    tables: dict[str, str] | None = None,
    keyed_view: bool = False,
) -> int:
    """Materialise every person mention as the view ``name`` (files under ``staging``); the feeds'
    history tables must be registered (``src_<feed>``, or as ``tables`` says). Returns the row count.

    With ``keyed_view``, only the mentions as delivered are written (``{name}_raw``, in the order of the
    catalogue's feeds and roles), the name keys are registered as ``{name}_keys`` (``name``, ``key``),
    and ``name`` is a view that joins the two (:data:`KEYED_MENTIONS_SQL`): a reader that needs the keys
    of a few mentions does not pay for writing every mention twice. The caller drops the three views.
    """
    raw = f"{name}_raw"
    keys = f"{name}_keys"
    n = engine.materialize(raw, raw_mentions_sql(catalogue, tables), staging / raw)
    names = engine.fetch(DISTINCT_NAMES_SQL.format(raw=raw))
    engine.register_arrow(keys, name_keys_table(names["name"]))
    if keyed_view:
        engine.register_query(name, KEYED_MENTIONS_SQL.format(raw=raw, keys=keys))
        return n
    # (unordered: every reader of the mentions orders what it needs, and sorting 18 M mentions at a tenth
    # of the national size took half of this step)
    n = engine.materialize(name, KEYED_MENTIONS_SQL.format(raw=raw, keys=keys), staging / name)
    engine.drop(keys)
    engine.drop(raw)
    return n
