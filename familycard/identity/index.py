"""The identity stage: the person index built from every feed's person mentions.

:func:`run_identity` reads the current warehouse snapshot and writes a new one with

* ``persons``: one row per person: ``person_id``, ``person_no`` (the same id as a number,
  :func:`person_no`), ``iin`` (where known), ``surname``, ``given_name``,
  ``patronymic``, ``birth_date``, ``sex``, ``n_mentions``, ``source`` (``registry``: a civil-registry
  person; ``mentions``: a person the registry does not know, built from mentions alone);
* ``person_links``: one row per mention (``feed``, ``record_key``, ``role``): its ``person_id`` and
  ``person_no``, ``method`` (``iin``, ``linkage``, ``review``, ``new``), ``match_probability``,
  ``match_weight`` and ``uncertain`` (a link waiting for a reviewer);
* ``review_queue``: the links waiting for a reviewer, with both records' fields and the comparison
  levels the model saw.

How mentions become persons (``docs/methodology/identity.md`` says it in plain language):

1. **The civil registry is the reference.** Each registry record with a valid IIN is a person (one per
   IIN). Its ``person_id`` is a keyed hash of its registry record key, so it stays the same from run to
   run.
2. **Direct links.** A mention whose valid IIN is a registry person's links to that person (``iin``),
   unless the registry person disagrees strongly: another birth date (or none on either side) *and* both
   surname and given name different (keys more than two edits apart). Such a mention goes to review.
3. **Linkage.** The other mentions (IIN missing, set aside as mistyped, unknown to the registry) are
   linked to registry persons by the Splink model (:mod:`familycard.identity.linkage`): at or above the
   link threshold ``linkage``, between the review and link thresholds ``review``.
4. **New persons.** Mentions still unlinked (people without an IIN, such as children of migrants born
   abroad) are clustered among themselves (``new``). A new person's id is a keyed hash of its earliest
   mention.
5. **Decisions.** A reviewer's decisions (:mod:`familycard.identity.decisions`) are applied: a rejected
   link is never made again, an accepted one always is (``review``, no longer uncertain).

Set-based work (mentions, registry persons, direct links, candidates, outputs) is SQL on the warehouse
engine; the model scores the small remainder in-process, so both engines give the same tables.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from familycard.identity.decisions import current_decisions, load_decisions, mention_parts
from familycard.identity.linkage import LINK_SCHEMA, LinkResult, empty_pairs, level_labels, link_records
from familycard.identity.mentions import KEYED_MENTIONS_SQL, build_mentions
from familycard.identity.model import (
    IIN_NEAR_LEVEL,
    LIST_BLOCKING_COLUMNS,
    LinkageModel,
    iin_digits_sql,
    iin_neighbours,
    load_model,
    near_iin_u,
    prepare_records,
)
from familycard.sources.catalogue import Catalogue, load_catalogue
from familycard.store.engine import Engine
from familycard.store.warehouse import Warehouse

REGISTRY = "civil_registry"
# The key of the keyed hash that makes person ids. A deployment sets its own (and keeps it: another key
# gives every person another id); ids are then not guessable from registry record numbers.
DEFAULT_ID_KEY = "familycard-person-id-v1"
# Unresolved mentions scored by the model at a time, and the memory its scoring may take (beside the
# warehouse engine's): nationally a few million mentions have some hundred million candidate pairs.
CHUNK_MENTIONS = 250_000
SPLINK_MEMORY_LIMIT = "4GB"
# Registry persons whose IINs' near misses are looked up to measure the near-miss level's u probability
# (model.IIN_NEAR_LEVEL): the first by person id, a keyed hash, so a fixed sample on either engine.
IIN_SAMPLE = 5_000
OUTPUT_TABLES = ("persons", "person_links", "review_queue")

LINKS_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("record_key", pa.string()),
        ("role", pa.string()),
        ("person_id", pa.string()),
        ("person_no", pa.int64()),
        ("method", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("uncertain", pa.bool_()),
    ]
)
_PERSON_FIELDS = ("iin", "iin_raw", "surname", "given_name", "patronymic", "birth_date", "sex", "kato")


@dataclass
class IdentityReport:
    """What one identity run did (also written to the run's metadata)."""

    run: str | None = None
    mentions: int = 0
    persons: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    review: int = 0
    decisions_applied: int = 0
    # The near-miss IIN level's u probability as measured on the registry: sampled persons, near-miss
    # IINs of theirs that someone holds, and the u probability the links to the registry used.
    iin_sampled: int = 0
    iin_near_found: int = 0
    iin_near_u: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mentions": self.mentions,
            "persons": self.persons,
            "methods": self.methods,
            "review": self.review,
            "decisions_applied": self.decisions_applied,
            "iin_near": {
                "sampled": self.iin_sampled,
                "found": self.iin_near_found,
                "u": self.iin_near_u,
            },
        }


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def person_id_sql(id_key: str, kind: str, expr: str) -> str:
    """SQL for a person id: ``P`` and 16 hex digits of MD5 over the key, the kind and the value."""
    return f"'P' || SUBSTR(MD5({_literal(f'{id_key}|{kind}|')} || {expr}), 1, 16)"


def person_id(id_key: str, kind: str, value: str) -> str:
    """The person id :func:`person_id_sql` computes, in Python."""
    return "P" + hashlib.md5(f"{id_key}|{kind}|{value}".encode()).hexdigest()[:16]


_HEX = "0123456789abcdef"


def person_no(pid: str) -> int:
    """A person id as a signed 64-bit number: its 16 hex digits less 2**63. The two are one-to-one and
    in the same order, so a stage that joins millions of links (the family stage) compares numbers, which
    is cheaper than comparing text, and breaks ties as the text would; the text stays the public id.

    >>> person_no("P0000000000000000"), person_no("Pffffffffffffffff")
    (-9223372036854775808, 9223372036854775807)
    """
    if len(pid) != 17 or pid[0] != "P" or any(c not in _HEX for c in pid[1:]):
        raise ValueError(f"not a person id made by the identity stage: {pid!r}")
    return int(pid[1:], 16) - 2**63


def person_no_sql(expr: str) -> str:
    """SQL for :func:`person_no` of the person id ``expr``, portable to every engine: two halves of eight
    hex digits, each a sum of digit values (no engine-specific hex parsing), ``(high - 2**31) * 2**32 +
    low``, which never leaves the range of ``BIGINT``."""

    def half(start: int) -> str:
        digits = (
            f"CAST(INSTR('{_HEX}', SUBSTR({expr}, {start + i}, 1)) - 1 AS BIGINT) * {16 ** (7 - i)}"
            for i in range(8)
        )
        return "(" + " + ".join(digits) + ")"

    return f"(({half(2)} - 2147483648) * 4294967296 + {half(10)})"


REGISTRY_COLUMNS = (
    "person_id", "iin", "record_key", "surname", "given_name", "patronymic", "birth_date", "sex",
    "surname_key", "given_name_key", "patronymic_key", "first_seq",
)  # fmt: skip
REGISTRY_SQL = f"""
    SELECT *, {person_no_sql("person_id")} AS person_no FROM (
        SELECT {{pid}} AS person_id, {", ".join(REGISTRY_COLUMNS[1:])}
        FROM id_mentions WHERE feed = {{registry}} AND iin IS NOT NULL
        QUALIFY ROW_NUMBER() OVER (PARTITION BY iin ORDER BY first_seq, record_key) = 1
    ) AS r
"""

# Two name keys "differ" when both are known and more than two edits apart (keys are ASCII, so
# LEVENSHTEIN means the same on both engines).
_DIFFER = "({a} IS NOT NULL AND {b} IS NOT NULL AND LEVENSHTEIN({a}, {b}) > 2)"
DIRECT_SQL = f"""
    SELECT m.feed, m.record_key, m.role, m.kato, r.person_id, r.person_no,
        -- (CASE, not AND: the names are compared only where the birth dates differ, or either is missing;
        -- an AND computed both edit distances for every mention, two fifths of this step)
        CASE WHEN m.birth_date IS NULL OR r.birth_date IS NULL OR m.birth_date <> r.birth_date
             THEN {_DIFFER.format(a="ks.key", b="r.surname_key")}
                  AND {_DIFFER.format(a="kg.key", b="r.given_name_key")}
             ELSE FALSE END AS disagree,
        j.person_id IS NOT NULL AS rejected
    FROM id_mentions_raw AS m
    JOIN id_registry AS r ON r.iin = m.iin
    LEFT JOIN id_mentions_keys AS ks ON ks.name = m.surname
    LEFT JOIN id_mentions_keys AS kg ON kg.name = m.given_name
    LEFT JOIN id_rejected AS j
        ON j.feed = m.feed AND j.record_key = m.record_key AND j.role = m.role AND j.person_id = r.person_id
"""
"""``id_direct``: each mention whose valid IIN is a registry person's, read from the mentions as delivered
(in their order: by feed and role), with the two name keys the check needs looked up on the way; a
mention is named by its feed, record key and role (no mention id is made for the 98 % linked here)."""

# The mentions with no direct link (no IIN of a registry person), and those whose direct link disagrees
# or was rejected, with their name keys. (Not a join of every mention to every direct link: nationally
# both are about 180 M rows, and that join spilled more than the disk holds; the registry's IINs and the
# few doubtful direct links are small, and only the mentions they leave are keyed.)
_DOUBTFUL = "(SELECT feed, record_key, role, person_id, disagree FROM id_direct WHERE disagree OR rejected)"
_SAME_MENTION = "d.feed = m.feed AND d.record_key = m.record_key AND d.role = m.role"
_UNLINKED = "(SELECT m.* FROM id_mentions_raw AS m ANTI JOIN id_registry AS r ON r.iin = m.iin)"
_DOUBTED = f"(SELECT m.* FROM id_mentions_raw AS m SEMI JOIN {_DOUBTFUL} AS d ON {_SAME_MENTION})"
UNRESOLVED_SQL = f"""
    SELECT * FROM (
        SELECT m.*, CAST(NULL AS VARCHAR) AS iin_person, FALSE AS disagree
        FROM ({KEYED_MENTIONS_SQL.format(raw=_UNLINKED, keys="id_mentions_keys")}) AS m
        UNION ALL
        SELECT m.*, d.person_id AS iin_person, d.disagree
        FROM ({KEYED_MENTIONS_SQL.format(raw=_DOUBTED, keys="id_mentions_keys")}) AS m
        JOIN {_DOUBTFUL} AS d ON {_SAME_MENTION}
    ) AS u
    ORDER BY mention_id
"""

# The registry persons' blocking columns, as model.prepare_records makes them for a reference table.
REGISTRY_KEYS_SQL = f"""
    SELECT person_id, birth_date, surname_key, given_name_key, patronymic_key, iin AS iin_text,
        SUBSTR(iin, 1, 6) AS iin_head, SUBSTR(iin, 7, 6) AS iin_tail, {iin_digits_sql("iin")} AS iin_digits,
        surname_key || ' ' || given_name_key AS name_block
    FROM id_registry
"""


# A list blocking column of the registry persons, one row per person and value (``value``), from their
# trusted direct links as the model sees them (CANDIDATE_KATOS_SQL, model.prepare_records).
REGISTRY_LIST_SQL = {
    "districts": """
        SELECT DISTINCT person_id, SUBSTR(kato, 1, 4) AS value
        FROM id_direct WHERE kato IS NOT NULL AND NOT disagree AND NOT rejected
    """,
}


def _list_keys_sql(columns: tuple[str, ...]) -> str:
    """For a blocking rule with a list column, the registry persons' keys with that column unnested (one
    row per value), for the persons that share the rule's other columns with an unresolved mention."""
    lists = [c for c in columns if c in LIST_BLOCKING_COLUMNS]
    equal = [c for c in columns if c not in LIST_BLOCKING_COLUMNS]
    if len(lists) != 1 or not equal:
        raise ValueError(f"blocking rule {columns}: one list column and at least one other is supported")
    on = " AND ".join(f"k.{c} = r.{c}" for c in equal)
    return f"""
        SELECT r.person_id, {", ".join(f"r.{c}" for c in equal)}, v.value AS {lists[0]}
        FROM (SELECT * FROM id_registry_keys AS r SEMI JOIN id_block_keys AS k ON {on}) AS r
        JOIN ({REGISTRY_LIST_SQL[lists[0]]}) AS v ON v.person_id = r.person_id
    """


def _candidates_sql(blocking_keys: tuple[tuple[str, ...], ...]) -> str:
    """For each chunk of unresolved mentions, the registry persons that share at least one blocking key
    with a mention of the chunk (a person near mentions of several chunks is listed once per chunk)."""
    hits = []
    for i, cols in enumerate(blocking_keys):
        keys = f"id_list_keys_{i}" if set(cols) & LIST_BLOCKING_COLUMNS else "id_registry_keys"
        on = " AND ".join(f"k.{c} = r.{c}" for c in cols)
        hits.append(f"SELECT k.chunk, r.person_id FROM {keys} AS r JOIN id_block_keys AS k ON {on}")
    return f"""
        SELECT c.chunk, {", ".join(f"g.{c}" for c in REGISTRY_COLUMNS)}
        FROM id_registry AS g
        JOIN ({" UNION ".join(hits)}) AS c ON c.person_id = g.person_id
    """


# The settlements each candidate is known at (from its trusted direct links), by chunk: a list as text,
# in order, split in Arrow.
CANDIDATE_KATOS_SQL = """
    SELECT chunk, person_id, STRING_AGG(kato, ',' ORDER BY kato) AS katos
    FROM (
        SELECT DISTINCT c.chunk, d.person_id, d.kato
        FROM id_direct AS d
        JOIN id_candidates AS c ON c.person_id = d.person_id
        WHERE d.kato IS NOT NULL AND NOT d.disagree AND NOT d.rejected
    ) AS k
    GROUP BY chunk, person_id
"""

# (direct links carry their mention's record, and so do the others, so that no link is joined back to
# the mentions)
LINKS_SQL = f"""
    SELECT feed, record_key, role, person_id, person_no, 'iin' AS method,
        CAST(1.0 AS DOUBLE) AS match_probability, CAST(NULL AS DOUBLE) AS match_weight, FALSE AS uncertain
    FROM id_direct WHERE NOT disagree AND NOT rejected
    UNION ALL
    SELECT feed, record_key, role, person_id, {person_no_sql("person_id")} AS person_no, method,
        match_probability, match_weight, uncertain
    FROM id_other
"""

COUNTS_SQL = "SELECT person_no, COUNT(*) AS n_mentions FROM person_links GROUP BY person_no"
"""``id_person_counts``: how many mentions each person has. (A table of its own: as a subquery of
``persons`` the count shared DuckDB's memory with the join and the sort and spilled, 50 s nationally
against 13 s alone.)"""

PERSONS_SQL = f"""
    SELECT p.person_id, p.person_no, p.iin, p.surname, p.given_name, p.patronymic, p.birth_date, p.sex,
        COALESCE(c.n_mentions, 0) AS n_mentions, p.source
    FROM (
        SELECT person_id, person_no, iin, surname, given_name, patronymic, birth_date, sex,
            'registry' AS source
        FROM id_registry
        UNION ALL
        SELECT person_id, {person_no_sql("person_id")} AS person_no, iin, surname, given_name, patronymic,
            birth_date, sex, 'mentions' AS source
        FROM id_new_persons
    ) AS p
    LEFT JOIN id_person_counts AS c ON c.person_no = p.person_no
"""

NEW_PERSON_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("iin", pa.string()),
        ("surname", pa.string()),
        ("given_name", pa.string()),
        ("patronymic", pa.string()),
        ("birth_date", pa.date32()),
        ("sex", pa.string()),
    ]
)
OTHER_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("record_key", pa.string()),
        ("role", pa.string()),
        ("person_id", pa.string()),
        ("method", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("uncertain", pa.bool_()),
    ]
)


def run_identity(
    warehouse: Warehouse,
    engine: Engine,
    *,
    catalogue: Catalogue | None = None,
    model: LinkageModel | None = None,
    registry: str = REGISTRY,
    id_key: str = DEFAULT_ID_KEY,
    progress: Callable[[str, int, int], None] | None = None,
) -> IdentityReport:
    """Build the person index from the current snapshot of ``warehouse`` and commit it as a new run
    (``persons``, ``person_links``, ``review_queue``; every other table carried over). Reviewers'
    decisions are read from ``DATA/decisions/link_decisions.parquet``. ``registry`` names the feed whose
    records are the reference persons; ``id_key`` keys the hash that makes person ids."""
    catalogue = catalogue or load_catalogue()
    model = model or load_model()
    tick = progress or (lambda _what, _done, _total: None)
    base = warehouse.current()
    if base is None:
        raise KeyError(f"the warehouse {warehouse.data} has no snapshot yet: ingest the sources first")
    present = set(warehouse.tables())
    feeds = [spec for spec in catalogue if spec.persons and f"src_{spec.name}" in present]
    if registry not in {spec.name for spec in feeds}:
        raise KeyError(f"the warehouse has no history of the reference feed {registry!r}")
    run = warehouse.begin()
    staging = warehouse.data / "staging" / run.id
    views = [f"src_{spec.name}" for spec in feeds]
    report = IdentityReport(run=run.id)
    try:
        for spec in feeds:
            engine.register_parquet(f"src_{spec.name}", warehouse.table_path(f"src_{spec.name}"))
        tick("mentions", 0, 4)
        views += ["id_mentions", "id_mentions_raw", "id_mentions_keys"]
        report.mentions = build_mentions(engine, Catalogue(tuple(feeds)), staging, keyed_view=True)
        decided = current_decisions(load_decisions(warehouse.data))
        built = _build(engine, staging, model, registry, id_key, decided, report, tick, views)
        tick("write", 3, 4)
        _write(engine, run, built, report, views, staging)
        run.carry_rest()
        run.commit(
            {
                "stage": "identity",
                "engine": engine.name,
                "model": {
                    "version": model.version,
                    "link": model.link_threshold,
                    "review": model.review_threshold,
                },
                "identity": report.as_dict(),
            }
        )
        tick("write", 4, 4)
    except BaseException:
        run.abort()
        raise
    finally:
        for view in views:
            engine.drop(view)
        shutil.rmtree(staging, ignore_errors=True)
    return report


@dataclass
class _Built:
    other: pa.Table  # OTHER_SCHEMA: links that are not direct IIN links
    new_persons: pa.Table  # NEW_PERSON_SCHEMA
    review: pa.Table


def _build(
    engine: Engine,
    staging: Path,
    model: LinkageModel,
    registry: str,
    id_key: str,
    decided: dict[tuple[str, str], str],
    report: IdentityReport,
    tick: Callable[[str, int, int], None],
    views: list[str],
) -> _Built:
    rejected = sorted(k for k, v in decided.items() if v == "reject")
    accepted = {m: p for (m, p), v in sorted(decided.items()) if v == "accept"}
    parts = [(*mention_parts(m), p) for m, p in rejected]
    names = ("feed", "record_key", "role", "person_id")
    engine.register_arrow(
        "id_rejected",
        pa.table({n: pa.array([row[i] for row in parts], pa.string()) for i, n in enumerate(names)}),
    )
    views += ["id_rejected", "id_registry", "id_direct"]
    pid = person_id_sql(id_key, "registry", "record_key")
    n_registry = engine.materialize(
        "id_registry", REGISTRY_SQL.format(pid=pid, registry=_literal(registry)), staging / "id_registry"
    )
    engine.materialize("id_direct", DIRECT_SQL, staging / "id_direct")
    to_model = _measured(engine, model, n_registry, report, views)
    tick("linkage", 1, 4)
    unresolved = engine.fetch(UNRESOLVED_SQL)
    records = unresolved.rename_columns(["uid" if c == "mention_id" else c for c in unresolved.column_names])
    # The mentions are scored a chunk at a time, each against the registry persons that share a blocking
    # key with one of its mentions: every pair the model would score is scored, so the links are those of
    # one pass, while memory holds one chunk's candidates (nationally, millions of registry persons).
    engine.register_arrow("id_block_keys", _block_keys(records, model))
    engine.materialize("id_registry_keys", REGISTRY_KEYS_SQL, staging / "id_registry_keys")
    views += ["id_block_keys", "id_registry_keys", "id_candidates", "id_candidate_katos"]
    for i, cols in enumerate(model.blocking_keys):
        if set(cols) & LIST_BLOCKING_COLUMNS:
            views.append(f"id_list_keys_{i}")
            engine.materialize(f"id_list_keys_{i}", _list_keys_sql(cols), staging / f"id_list_keys_{i}")
    engine.materialize(
        "id_candidates",
        _candidates_sql(model.blocking_keys),
        staging / "id_candidates",
        order_by=("chunk", "person_id"),
    )
    engine.materialize(
        "id_candidate_katos",
        CANDIDATE_KATOS_SQL,
        staging / "id_candidate_katos",
        order_by=("chunk", "person_id"),
    )
    exclude = [(m, p) for m, p in rejected]
    wanted = set(accepted.values())
    links: list[pa.Table] = []
    pairs: list[pa.Table] = []
    seen: list[pa.Table] = []  # the candidates a link, a review or an accepted decision may need
    known: set[str] = set()  # persons of accepted decisions that are still candidates
    n_chunks = -(-records.num_rows // CHUNK_MENTIONS)
    for chunk in range(n_chunks):
        part = records.slice(chunk * CHUNK_MENTIONS, CHUNK_MENTIONS)
        reference = _chunk_reference(engine, chunk)
        got = link_records(
            part,
            id_column="uid",
            reference=reference,
            reference_id_column="person_id",
            model=to_model,
            prior=1 / max(n_registry, 1),
            exclude=exclude,
            cluster_rest=False,
            memory_limit=SPLINK_MEMORY_LIMIT,
            temp_dir=staging / "splink",
        )
        links.append(got.links)
        pairs.append(got.pairs)
        near = pa.concat_arrays(
            [
                got.pairs["other"].combine_chunks().cast(pa.string()),
                part["iin_person"].combine_chunks().cast(pa.string()),
                pa.array(sorted(wanted), pa.string()),
            ]
        )
        kept = reference.filter(pc.is_in(reference["person_id"], value_set=near))
        seen.append(kept)
        known.update(p for p in kept["person_id"].to_pylist() if p in wanted)
        tick("linkage", 1, 4)
    to_registry = LinkResult(
        links=pa.concat_tables(links) if links else LINK_SCHEMA.empty_table(),
        pairs=pa.concat_tables(pairs) if pairs else empty_pairs(model),
    )
    reference = pa.concat_tables(seen) if seen else None
    tick("linkage", 2, 4)
    return _resolve(records, reference, known, to_registry, model, id_key, accepted, report, staging)


def _measured(
    engine: Engine, model: LinkageModel, n_registry: int, report: IdentityReport, views: list[str]
) -> LinkageModel:
    """The model for links to the registry: its near-miss IIN level's u probability measured on the
    registry (:func:`familycard.identity.model.near_iin_u`), from the near misses of a fixed sample of
    registry persons' IINs that other registry persons hold."""
    sample = engine.fetch(f"SELECT iin FROM id_registry ORDER BY person_id LIMIT {IIN_SAMPLE}")[
        "iin"
    ].to_pylist()
    views.append("id_iin_near")
    engine.register_arrow("id_iin_near", iin_neighbours(sample))
    found = engine.fetch(
        "SELECT COUNT(*) AS n FROM id_iin_near AS v JOIN id_registry AS r ON r.iin = v.neighbour"
    )["n"][0].as_py()
    report.iin_sampled, report.iin_near_found = len(sample), int(found)
    report.iin_near_u = near_iin_u(int(found), len(sample), n_registry)
    return model.with_u("iin_text", IIN_NEAR_LEVEL, report.iin_near_u)


def _chunk_reference(engine: Engine, chunk: int) -> pa.Table:
    """The registry persons that are candidates for a chunk of mentions, with their settlements."""
    columns = ", ".join(f"c.{c}" for c in REGISTRY_COLUMNS)
    got = engine.fetch(
        f"""
        SELECT {columns}, k.katos FROM id_candidates AS c
        LEFT JOIN id_candidate_katos AS k ON k.chunk = c.chunk AND k.person_id = c.person_id
        WHERE c.chunk = {chunk} ORDER BY c.person_id
        """
    )
    katos = pc.split_pattern(got["katos"], ",")
    return got.set_column(got.column_names.index("katos"), "katos", katos).append_column(
        "iin_text", got["iin"]
    )


def _block_keys(records: pa.Table, model: LinkageModel) -> pa.Table:
    """The blocking columns of the unresolved mentions, with each mention's ``chunk`` (its row number
    over :data:`CHUNK_MENTIONS`); a list column is unnested, one row per value (a row with a null where
    the list is empty)."""
    columns = sorted({c for cols in model.blocking_keys for c in cols})
    keys = prepare_records(records).select(columns)
    keys = keys.append_column("chunk", pa.array(np.arange(keys.num_rows, dtype=np.int64) // CHUNK_MENTIONS))
    for column in columns:
        if column in LIST_BLOCKING_COLUMNS:
            lists = keys[column].combine_chunks()
            lists = pc.if_else(
                pc.fill_null(pc.greater(pc.list_value_length(lists), 0), False),
                lists,
                pa.scalar([None], lists.type),
            )
            keys = keys.take(pc.list_parent_indices(lists))
            keys = keys.set_column(keys.column_names.index(column), column, pc.list_flatten(lists))
    return keys


def _resolve(
    records: pa.Table,
    reference: pa.Table | None,
    known: set[str],
    to_registry: LinkResult,
    model: LinkageModel,
    id_key: str,
    accepted: dict[str, str],
    report: IdentityReport,
    staging: Path,
) -> _Built:
    """Decide each unresolved mention's person: registry links, reviews, decisions, then new persons."""
    # Only the columns every mention needs become Python objects; whole rows only for the few that
    # become new persons or wait for review.
    rows = {
        uid: {"disagree": d, "iin_person": p, "first_seq": s}
        for uid, d, p, s in zip(
            records["uid"].to_pylist(),
            records["disagree"].to_pylist(),
            records["iin_person"].to_pylist(),
            records["first_seq"].to_pylist(),
            strict=True,
        )
    }
    out: dict[str, tuple[str, str, float | None, float | None, bool]] = {}
    for link in to_registry.links.to_pylist():
        uid = link["id"]
        row = rows[uid]
        if link["method"] in ("linkage", "review"):
            method = "review" if (row["disagree"] or link["method"] == "review") else "linkage"
            out[uid] = (
                link["person"],
                method,
                link["match_probability"],
                link["match_weight"],
                method == "review",
            )
        elif row["disagree"] and row["iin_person"]:
            out[uid] = (row["iin_person"], "review", None, None, True)
    # Accepted decisions hold whatever the model says now, if the person still exists.
    for uid, person in accepted.items():
        if uid in rows and (person in known or person == rows[uid]["iin_person"]):
            prior = out.get(uid)
            p, w = (prior[2], prior[3]) if prior and prior[0] == person else (None, None)
            out[uid] = (person, "review", p, w, False)
            report.decisions_applied += 1
    rest_ids = sorted(uid for uid in rows if uid not in out)
    rest = records.filter(pc.is_in(records["uid"], pa.array(rest_ids, pa.string())))
    clustered = (
        link_records(
            rest,
            id_column="uid",
            model=model,
            memory_limit=SPLINK_MEMORY_LIMIT,
            temp_dir=staging / "splink",
        )
        if rest.num_rows
        else None
    )
    new_persons: list[dict[str, Any]] = []
    if clustered is not None:
        rows.update({r["uid"]: r for r in rest.to_pylist()})
        members: dict[str, list[str]] = {}
        for link in clustered.links.to_pylist():
            members.setdefault(link["person"], []).append(link["id"])
        info = {r["id"]: r for r in clustered.links.to_pylist()}
        for ids in members.values():
            first = min(ids, key=lambda u: (rows[u]["first_seq"], u))
            pid = person_id(id_key, "mention", first)
            new_persons.append(_new_person(pid, [rows[u] for u in ids]))
            for u in ids:
                p, w = info[u]["match_probability"], info[u]["match_weight"]
                out[u] = (pid, "new", p, w, False)
    uids = sorted(out)
    where = pc.index_in(pa.array(uids, pa.string()), value_set=records["uid"].combine_chunks())
    named = records.select(["feed", "record_key", "role"]).take(where)
    other = pa.table(
        {
            "feed": named["feed"],
            "record_key": named["record_key"],
            "role": named["role"],
            "person_id": pa.array([out[u][0] for u in uids], pa.string()),
            "method": pa.array([out[u][1] for u in uids], pa.string()),
            "match_probability": pa.array([out[u][2] for u in uids], pa.float64()),
            "match_weight": pa.array([out[u][3] for u in uids], pa.float64()),
            "uncertain": pa.array([out[u][4] for u in uids], pa.bool_()),
        },
        schema=OTHER_SCHEMA,
    )
    review_ids = [u for u in sorted(out) if out[u][4]]
    waiting = records.filter(pc.is_in(records["uid"], pa.array(review_ids, pa.string())))
    rows.update({r["uid"]: r for r in waiting.to_pylist()})
    review = _review_queue(review_ids, out, rows, reference, to_registry.pairs, model)
    new_table = pa.Table.from_pylist(
        sorted(new_persons, key=lambda r: r["person_id"]), schema=NEW_PERSON_SCHEMA
    )
    return _Built(other=other, new_persons=new_table, review=review)


def _most_common(values: list[Any]) -> Any:
    """The most frequent non-null value (the smallest on ties), or None."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def _new_person(pid: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """A person known from mentions alone: each field its most frequent value among the mentions."""
    return {
        "person_id": pid,
        "iin": _most_common([m["iin"] for m in members]),
        "surname": _most_common([m["surname"] for m in members]),
        "given_name": _most_common([m["given_name"] for m in members]),
        "patronymic": _most_common([m["patronymic"] for m in members]),
        "birth_date": _most_common([m["birth_date"] for m in members]),
        "sex": _most_common([m["sex"] for m in members]),
    }


REVIEW_FIELDS = ("iin", "iin_raw", "surname", "given_name", "patronymic", "birth_date", "sex", "kato")


def _review_queue(
    ids: list[str],
    out: dict[str, tuple[str, str, float | None, float | None, bool]],
    rows: dict[str, dict[str, Any]],
    reference: pa.Table | None,
    pairs: pa.Table,
    model: LinkageModel,
) -> pa.Table:
    """The links waiting for a reviewer, with both records and the comparison levels."""
    levels = list(level_labels(model.settings))
    # (only the rows of the links under review become Python objects: the pairs and the reference
    # persons are millions of rows at national size, the queue a small share of them)
    wanted = pa.array(ids, pa.string()).cast(pairs.schema.field("id").type)
    pids = pa.array(sorted({out[uid][0] for uid in ids} - {None}), pa.string())
    pairs = pairs.filter(pc.is_in(pairs["id"], value_set=wanted))
    evidence = {(r["id"], r["other"]): r for r in pairs.to_pylist()}
    persons: dict[str, dict[str, Any]] = {}
    if reference is not None:
        pids = pids.cast(reference.schema.field("person_id").type)
        persons = {
            r["person_id"]: r
            for r in reference.filter(pc.is_in(reference["person_id"], value_set=pids)).to_pylist()
        }
    out_rows = []
    for uid in ids:
        m = rows[uid]
        pid = out[uid][0]
        p = persons.get(pid, {})
        ev = evidence.get((uid, pid), {})
        row: dict[str, Any] = {
            "feed": m["feed"],
            "record_key": m["record_key"],
            "role": m["role"],
            "person_id": pid,
            "match_probability": out[uid][2],
            "match_weight": out[uid][3],
            "reason": "iin_disagrees" if m["disagree"] else "between_thresholds",
        }
        for f in REVIEW_FIELDS:
            row[f"mention_{f}"] = m.get(f)
        for f in ("iin", "surname", "given_name", "patronymic", "birth_date", "sex"):
            row[f"person_{f}"] = p.get(f)
        row["person_katos"] = ",".join(p.get("katos") or []) or None
        for name in levels:
            row[f"level_{name}"] = ev.get(name)
        out_rows.append(row)
    return pa.Table.from_pylist(out_rows, schema=review_schema(levels))


def review_schema(levels: list[str]) -> pa.Schema:
    """Columns of ``review_queue``."""
    fields = [
        ("feed", pa.string()),
        ("record_key", pa.string()),
        ("role", pa.string()),
        ("person_id", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("reason", pa.string()),
    ]
    for f in REVIEW_FIELDS:
        fields.append((f"mention_{f}", pa.date32() if f == "birth_date" else pa.string()))
    for f in ("iin", "surname", "given_name", "patronymic", "birth_date", "sex"):
        fields.append((f"person_{f}", pa.date32() if f == "birth_date" else pa.string()))
    fields.append(("person_katos", pa.string()))
    fields += [(f"level_{name}", pa.string()) for name in levels]
    return pa.schema(fields)


def _write(
    engine: Engine, run: Any, built: _Built, report: IdentityReport, views: list[str], staging: Path
) -> None:
    engine.register_arrow("id_other", built.other)
    engine.register_arrow("id_new_persons", built.new_persons)
    views += ["id_other", "id_new_persons", "person_links", "id_person_counts", "persons"]
    # (not sorted: the direct links come in the mentions' order, which is the catalogue's feeds and roles,
    # so a reader of one feed's links still reads a few row groups; sorting them by feed and role took
    # half of this step at a tenth of the national size)
    engine.materialize("person_links", LINKS_SQL, run.new_table("person_links"))
    engine.materialize("id_person_counts", COUNTS_SQL, staging / "id_person_counts")
    report.persons = engine.materialize(
        "persons", PERSONS_SQL, run.new_table("persons"), order_by=("person_id",)
    )
    counts = engine.fetch("SELECT method, COUNT(*) AS n FROM person_links GROUP BY method ORDER BY method")
    report.methods = dict(zip(counts["method"].to_pylist(), counts["n"].to_pylist(), strict=True))
    report.review = built.review.num_rows
    pq.write_table(built.review, run.new_table("review_queue") / "part-0.parquet")
