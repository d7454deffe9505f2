"""Probabilistic record linkage of person records with Splink: scoring, best links and clusters.

:func:`link_records` is the library entry point: it links any Arrow table of person records, either to a
reference table (each record to at most one reference person) or among themselves (records clustered
into persons), with the stored linkage model (:mod:`familycard.identity.model`). The identity stage
(:mod:`familycard.identity.index`) calls it for the mentions that carry no usable IIN.

Splink runs on its in-process DuckDB backend over the records given (the stage hands it only the
records to link and the reference persons that share a blocking key with them), with the model's stored
parameters: the result does not depend on the warehouse engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from familycard.identity.mentions import name_key
from familycard.identity.model import LinkageModel, LinkType, load_model, prepare_records

METHODS = ("iin", "linkage", "review", "new")

LINK_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("person", pa.string()),
        ("method", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
    ]
)


@dataclass(frozen=True)
class LinkResult:
    """What :func:`link_records` found.

    ``links``: one row per input record: ``id``; ``person`` (the reference id it links to, or for a
    record not linked to the reference, the smallest id of its cluster); ``method`` (``linkage``: linked
    at or above the link threshold; ``review``: best candidate between the two thresholds, waiting for a
    reviewer; ``new``: not linked to the reference, clustered with the records it matches);
    ``match_probability`` and ``match_weight`` of the link (null for a record alone in its cluster).

    ``pairs``: every scored candidate pair at or above the review threshold (among records clustered
    together: at or above the link threshold): ``id``, ``other`` (a
    reference id, or another record's id when clustering), ``match_probability``, ``match_weight`` and
    one column per comparison with the level the pair reached (e.g. ``surname_key``: ``Jaro-Winkler
    distance of surname_key >= 0.92``): the evidence a reviewer sees.
    """

    links: pa.Table
    pairs: pa.Table


def _keys(table: pa.Table) -> pa.Table:
    """Name keys from ``surname``/``given_name``/``patronymic`` where the table has no ``*_key`` column."""
    for part in ("surname", "given_name", "patronymic"):
        key = f"{part}_key"
        if key not in table.column_names and part in table.column_names:
            values = [name_key(v) or None for v in table[part].cast(pa.string()).to_pylist()]
            table = table.append_column(key, pa.array(values, pa.string()))
    return table


def level_labels(settings: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """For each comparison (by output column), its comparison vector values and their labels, numbered
    as Splink numbers them: null levels -1, the others from the most to the least similar, down to 0."""
    out: dict[str, dict[int, str]] = {}
    for comparison in settings["comparisons"]:
        levels = comparison["comparison_levels"]
        counter = sum(1 for lv in levels if not lv.get("is_null_level")) - 1
        labels: dict[int, str] = {}
        for lv in levels:
            label = str(lv.get("label_for_charts") or lv["sql_condition"])
            if lv.get("is_null_level"):
                labels[-1] = label
            else:
                labels[counter] = label
                counter -= 1
        out[comparison["output_column_name"]] = labels
    return out


def _predict(
    model: LinkageModel,
    records: pa.Table,
    reference: pa.Table | None,
    *,
    prior: float | None,
    threshold: float,
    cluster_threshold: float | None = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> tuple[pa.Table, pa.Table | None]:
    """Scored pairs at or above ``threshold`` (``id``, ``other``, weights, gammas) and, when
    ``cluster_threshold`` is given, the cluster of every record (``id``, ``cluster``)."""
    import duckdb
    from splink import DuckDBAPI, Linker

    # Scores are computed pair by pair and sorted afterwards, so threads do not change the result.
    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_dir)
    db_api = DuckDBAPI(connection=duckdb.connect(":memory:", config=config))
    link_type: LinkType = "dedupe_only" if reference is None else "link_only"
    if reference is None:
        frames = [db_api.register(records.sort_by("uid"), table_name="records")]
    else:
        frames = [
            db_api.register(reference.sort_by("uid"), table_name="reference"),
            db_api.register(records.sort_by("uid"), table_name="records"),
        ]
    settings = model.settings_for(link_type, prior=prior)
    linker = Linker(frames if len(frames) > 1 else frames[0], settings, log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    labels = level_labels(settings)
    gammas = ", ".join(f"gamma_{name}" for name in labels)
    if reference is None:
        # Both sides are records: each pair once, both directions listed.
        sql = f"""
            SELECT uid_l AS id, uid_r AS other, match_probability, match_weight, {gammas}
            FROM {predictions.physical_name}
            UNION ALL
            SELECT uid_r AS id, uid_l AS other, match_probability, match_weight, {gammas}
            FROM {predictions.physical_name}
        """
    else:
        sql = f"""
            SELECT CASE WHEN source_dataset_l = 'records' THEN uid_l ELSE uid_r END AS id,
                CASE WHEN source_dataset_l = 'records' THEN uid_r ELSE uid_l END AS other,
                match_probability, match_weight, {gammas}
            FROM {predictions.physical_name}
        """
    raw = db_api.duckdb_con.sql(sql).to_arrow_table()
    columns: dict[str, Any] = {
        "id": raw["id"].cast(pa.string()),
        "other": raw["other"].cast(pa.string()),
        "match_probability": raw["match_probability"].cast(pa.float64()),
        "match_weight": raw["match_weight"].cast(pa.float64()),
    }
    for name, by_value in labels.items():
        levels = pa.array(list(by_value), pa.int64())
        at = pc.index_in(raw[f"gamma_{name}"].cast(pa.int64()), value_set=levels)
        columns[name] = pc.take(pa.array(list(by_value.values()), pa.string()), at)
    pairs = pa.table(columns).sort_by([("id", "ascending"), ("other", "ascending")])
    clusters = None
    if cluster_threshold is not None:
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=cluster_threshold
        )
        got = db_api.duckdb_con.sql(
            f"SELECT uid AS id, cluster_id AS cluster FROM {clustered.physical_name}"
        ).to_arrow_table()
        clusters = pa.table({"id": got["id"].cast(pa.string()), "cluster": got["cluster"].cast(pa.string())})
    db_api.duckdb_con.close()
    return pairs, clusters


def _best(pairs: pa.Table, exclude: set[tuple[str, str]]) -> dict[str, tuple[str, float, float]]:
    """Each record's best candidate (highest match weight, then smallest id), skipping excluded pairs."""
    rows = zip(
        pairs["id"].to_pylist(),
        pairs["other"].to_pylist(),
        pairs["match_probability"].to_pylist(),
        pairs["match_weight"].to_pylist(),
        strict=True,
    )
    best: dict[str, tuple[str, float, float]] = {}
    for rid, other, p, w in sorted(rows, key=lambda r: (r[0], -r[3], r[1])):
        if rid not in best and (rid, other) not in exclude:
            best[rid] = (other, p, w)
    return best


def link_records(
    table: pa.Table,
    *,
    id_column: str = "id",
    reference: pa.Table | None = None,
    reference_id_column: str | None = None,
    model: LinkageModel | None = None,
    prior: float | None = None,
    exclude: Iterable[tuple[str, str]] = (),
    cluster_rest: bool = True,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> LinkResult:
    """Link person records with the stored Splink model.

    ``table`` holds one person record per row: a unique ``id_column`` and any of ``surname``,
    ``given_name``, ``patronymic`` (any script: they are turned into cross-script keys; or give the keys
    as ``surname_key``, ``given_name_key``, ``patronymic_key``), ``birth_date`` (date), ``sex``
    (``M``/``F``), ``iin`` or ``iin_text`` (an IIN as text, valid or not), and ``kato`` (a settlement
    code) or ``katos`` (a list of them).

    With a ``reference`` table (the same columns; its ids in ``reference_id_column``, default
    ``id_column``), each record is linked to its best reference candidate: ``linkage`` at or above the
    model's link threshold, ``review`` between the review and link thresholds. ``prior`` is the
    probability that a record and a random reference row are the same person (default: one over the
    reference's size, as each record is one person at most). Records left unlinked (and, without a
    reference, all records) are clustered among themselves at the link threshold (``cluster_rest``) with
    the model's trained prior, as ``new``. ``exclude`` lists ``(id, reference id)`` pairs a reviewer
    rejected: they are never linked.

    ``memory_limit`` (a size such as ``"4GB"``) caps the scoring's in-process DuckDB, which spills to
    ``temp_dir`` beyond it (default: DuckDB's own, 80 % of the machine's memory and no spill directory).

    Example:

    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> registry = pa.table({
    ...     "id": ["R1", "R2"],
    ...     "surname": ["Әбдірахманов", "Серікбаева"], "given_name": ["Нұрлан", "Айгүл"],
    ...     "patronymic": ["Серікұлы", "Нұрланқызы"],
    ...     "birth_date": [dt.date(1985, 3, 1), dt.date(1990, 7, 15)],
    ...     "iin": ["850301300011", "900715400012"],
    ... })
    >>> records = pa.table({
    ...     "id": ["a", "b"],
    ...     "surname": ["ABDIRAKHMANOV", "Серикбаева"], "given_name": ["NURLAN", "Айгуль"],
    ...     "patronymic": ["SERIKULY", None],
    ...     "birth_date": [dt.date(1985, 3, 1), dt.date(1990, 7, 15)],
    ...     "iin": ["850301300012", None],  # a mistyped IIN, and a missing one
    ... })
    >>> result = link_records(records, reference=registry)
    >>> [(r["id"], r["person"], r["method"]) for r in result.links.to_pylist()]
    [('a', 'R1', 'linkage'), ('b', 'R2', 'linkage')]
    """
    model = model or load_model()
    table = _keys(table)
    records = prepare_records(table, uid=id_column)
    if records.num_rows != len(set(records["uid"].to_pylist())):
        raise ValueError(f"{id_column!r} is not unique")
    excluded = set(exclude)
    linked: dict[str, tuple[str, str, float | None, float | None]] = {}
    pair_tables: list[pa.Table] = []
    if reference is not None and reference.num_rows and records.num_rows:
        ref = prepare_records(_keys(reference), uid=reference_id_column or id_column, reference=True)
        pairs, _ = _predict(
            model,
            records,
            ref,
            prior=prior if prior is not None else 1 / ref.num_rows,
            threshold=model.review_threshold,
            memory_limit=memory_limit,
            temp_dir=temp_dir,
        )
        pair_tables.append(pairs)
        for rid, (other, p, w) in _best(pairs, excluded).items():
            method = "linkage" if p >= model.link_threshold else "review"
            linked[rid] = (other, method, p, w)
    rest = records.filter(pc.invert(pc.is_in(records["uid"], pa.array(list(linked), pa.string()))))
    if reference is None or cluster_rest:
        linked.update(_cluster(model, rest, pair_tables, memory_limit=memory_limit, temp_dir=temp_dir))
    ids = records["uid"].to_pylist()
    out = [(i, *linked.get(i, (i, "new", None, None))) for i in ids]
    links = pa.table(
        {
            "id": pa.array([r[0] for r in out], pa.string()),
            "person": pa.array([r[1] for r in out], pa.string()),
            "method": pa.array([r[2] for r in out], pa.string()),
            "match_probability": pa.array([r[3] for r in out], pa.float64()),
            "match_weight": pa.array([r[4] for r in out], pa.float64()),
        },
        schema=LINK_SCHEMA,
    )
    pairs = pa.concat_tables(pair_tables) if pair_tables else empty_pairs(model)
    return LinkResult(links=links, pairs=pairs)


def _cluster(
    model: LinkageModel,
    records: pa.Table,
    pair_tables: list[pa.Table],
    *,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> dict[str, tuple[str, str, float | None, float | None]]:
    """Records clustered among themselves at the link threshold: record -> (cluster, 'new', p, w), where
    p and w are the record's strongest link inside its cluster (none for a record alone)."""
    if records.num_rows < 2:
        return {}
    pairs, clusters = _predict(
        model,
        records,
        None,
        prior=None,
        threshold=model.link_threshold,
        cluster_threshold=model.link_threshold,
        memory_limit=memory_limit,
        temp_dir=temp_dir,
    )
    assert clusters is not None
    pair_tables.append(pairs)
    cluster_of = dict(zip(clusters["id"].to_pylist(), clusters["cluster"].to_pylist(), strict=True))
    members: dict[str, list[str]] = {}
    for rid, c in cluster_of.items():
        members.setdefault(c, []).append(rid)
    label = {c: min(ids) for c, ids in members.items()}
    strongest: dict[str, tuple[float | None, float | None]] = {}
    for rid, other, p, w in zip(
        pairs["id"].to_pylist(),
        pairs["other"].to_pylist(),
        pairs["match_probability"].to_pylist(),
        pairs["match_weight"].to_pylist(),
        strict=True,
    ):
        if cluster_of.get(rid) == cluster_of.get(other) and (
            rid not in strongest or w > (strongest[rid][1] or 0)
        ):
            strongest[rid] = (p, w)
    out: dict[str, tuple[str, str, float | None, float | None]] = {}
    for rid, c in cluster_of.items():
        p, w = strongest.get(rid, (None, None))
        if len(members[c]) > 1:
            out[rid] = (label[c], "new", p, w)
    return out


def empty_pairs(model: LinkageModel) -> pa.Table:
    fields = [
        ("id", pa.string()),
        ("other", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
    ]
    fields += [(name, pa.string()) for name in level_labels(model.settings)]
    return pa.schema(fields).empty_table()
