"""The person linkage model: what Splink compares, how records are blocked, and the trained parameters.

The model is methodology, so it is data: ``methodology/linkage/person-linkage-v<N>.json`` holds the
Splink settings (comparisons with their trained m and u probabilities), the blocking keys, the
thresholds and a note of how the parameters were estimated. :func:`load_model` reads it; runs use the
stored parameters, so the links do not depend on the engine, the data's sample or the order of rows; the
one exception, the near-miss IIN level's u probability, is measured on each run's registry from a fixed
sample (:data:`IIN_NEAR_LEVEL`, :func:`near_iin_u`).
:func:`estimate_model` re-estimates the parameters (Splink on DuckDB, fixed seed) from a table of
mentions; ``python -m familycard.identity.model DATA OUT.json`` does so for a warehouse.

Records compared by the model have the columns of :data:`RECORD_COLUMNS` (see :func:`prepare_records`):

* ``surname_key``, ``given_name_key``, ``patronymic_key``: cross-script name keys, compared exactly and by
  Jaro-Winkler similarity (≥ 0.92: one typo; ≥ 0.80: a larger spelling difference);
* ``birth_date``: exact, or one of day, month or year differs, or day and month transposed;
* ``sex``: exact;
* ``iin_text``: the IIN as text, valid or not: exact, or one digit changed or two digits swapped (what a
  mistyped IIN is), or different;
* ``katos`` / ``districts``: the settlements (KATO codes) and districts (their first four digits) where a
  record places the person: same settlement, same district, or different.

Blocking keys (pairs are compared only when one of the keys is equal on both sides):
:data:`BLOCKING_KEYS`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LinkType = Literal["link_only", "link_and_dedupe", "dedupe_only"]
MODEL_DIR = Path(__file__).resolve().parents[2] / "methodology" / "linkage"
MODEL_VERSION = 3
MODEL_PATH = MODEL_DIR / f"person-linkage-v{MODEL_VERSION}.json"

RECORD_COLUMNS = (
    "uid",
    "surname_key",
    "given_name_key",
    "patronymic_key",
    "birth_date",
    "sex",
    "iin_text",
    "katos",
    "districts",
    "iin_head",
    "iin_tail",
    "iin_digits",
    "name_block",
)

# Each entry is one blocking rule: the columns that must be equal (for a list column, that share a value).
# Every rule but the IIN itself joins two names to a birth date or to a part of the IIN: nationally a
# birth date and one name are shared by about nine people (version 2 blocked on such pairs: about 22
# candidates for each record to link, growing with the population), two names and a birth date by about
# 1.25. A record with one name misspelt still meets the rule on its two other names.
# A mistyped IIN keeps its first or last six digits (``iin_head``, ``iin_tail``) when one digit changed,
# and its digits (``iin_digits``: how many of each) when two were swapped, wherever they are.
# ``name_block`` (surname and given name keys) is filled only for records with neither a birth date nor
# an IIN text, and for the reference: a name alone is too common a key at national scale to be used where
# better evidence exists, and even there it is used within a district (``districts``): nationally a name
# is shared by thousands, and a namesake known elsewhere cannot reach the review threshold (version 1
# blocked on the name alone: 1.4 billion pairs nationally, for no link).
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("iin_text",),
    ("birth_date", "surname_key", "given_name_key"),
    ("birth_date", "surname_key", "patronymic_key"),
    ("birth_date", "given_name_key", "patronymic_key"),
    ("iin_head", "surname_key", "given_name_key"),
    ("iin_tail", "surname_key", "given_name_key"),
    ("iin_digits", "surname_key", "given_name_key"),
    ("name_block", "districts"),
)
# Blocking columns that hold lists: a rule on one is met where the two lists share a value.
LIST_BLOCKING_COLUMNS = frozenset({"districts"})


def blocking_rule_sql(columns: tuple[str, ...]) -> str:
    """A blocking rule as Splink's SQL condition over the pair's ``l`` and ``r`` sides."""
    return " AND ".join(
        f'list_has_any(l."{c}", r."{c}")' if c in LIST_BLOCKING_COLUMNS else f'l."{c}" = r."{c}"'
        for c in columns
    )


# Rules for expectation maximisation: each leaves the comparisons it does not block on to be estimated.
TRAINING_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("iin_text",),
    ("birth_date", "surname_key", "given_name_key"),
)


@dataclass(frozen=True)
class LinkageModel:
    """A linkage model: Splink settings with trained parameters, blocking keys and thresholds.

    ``link_threshold``: a pair at or above this match probability is the same person;
    ``review_threshold``: a pair at or above this (and below ``link_threshold``) goes to review.
    """

    settings: dict[str, Any]
    link_threshold: float = 0.99
    review_threshold: float = 0.5
    blocking_keys: tuple[tuple[str, ...], ...] = BLOCKING_KEYS
    version: int = MODEL_VERSION
    estimated: dict[str, Any] = field(default_factory=dict)

    def settings_for(
        self, link_type: LinkType, *, prior: float | None = None, blocking: bool = True
    ) -> dict[str, Any]:
        """Splink settings for ``link_type`` (``link_only``, ``dedupe_only``, ``link_and_dedupe``), with
        the prior probability that two random records match set to ``prior`` where given."""
        from splink.blocking_rule_library import CustomRule

        settings = json.loads(json.dumps(self.settings))
        settings["link_type"] = link_type
        settings["unique_id_column_name"] = "uid"
        settings["retain_matching_columns"] = True
        settings["retain_intermediate_calculation_columns"] = True
        settings["blocking_rules_to_generate_predictions"] = (
            [
                CustomRule(blocking_rule_sql(cols), "duckdb").get_blocking_rule("duckdb").as_dict()
                for cols in self.blocking_keys
            ]
            if blocking
            else []
        )
        if prior is not None:
            settings["probability_two_random_records_match"] = min(max(prior, 1e-12), 0.5)
        return settings

    def with_u(self, comparison: str, label: str, u: float) -> LinkageModel:
        """The model with the u probability of one comparison level (named by its chart label) set to
        ``u``: a level whose chance agreement depends on the data linked (:func:`near_iin_u`)."""
        settings = json.loads(json.dumps(self.settings))
        levels = [
            level
            for c in settings["comparisons"]
            if c["output_column_name"] == comparison
            for level in c["comparison_levels"]
            if level.get("label_for_charts") == label
        ]
        if len(levels) != 1:
            raise KeyError(f"the model has no level {label!r} in its comparison {comparison!r}")
        levels[0]["u_probability"] = u
        return replace(self, settings=settings)

    def as_json(self) -> dict[str, Any]:
        """The model as stored in the methodology file."""
        return {
            "model": "person-linkage",
            "version": self.version,
            "link_threshold": self.link_threshold,
            "review_threshold": self.review_threshold,
            "blocking_keys": [list(k) for k in self.blocking_keys],
            "estimated": self.estimated,
            "splink": self.settings,
        }


# The IIN comparison's level for a mistyped IIN. Its u probability (that two different people's IINs are
# one digit or one swap apart) is no constant of the population, as a name's is: IINs are a birth date
# and a serial number within it, so the share of a person's near-miss IINs that belong to someone
# grows with the people born on each day, and the chance that a random other person holds one falls
# more slowly than one over the registry's size. The trained value (from a nation of 5,000 families)
# is right for that size only; each run measures it on its own registry (:func:`near_iin_u`).
IIN_NEAR_LEVEL = "one digit changed or two swapped"


def iin_neighbours(iins: Sequence[str]) -> pa.Table:
    """Every text one digit changed or two different digits swapped from each 12-digit IIN of ``iins``
    (what the model's :data:`IIN_NEAR_LEVEL` compares as a near miss), one row per ``(iin,
    neighbour)``."""
    left: list[str] = []
    right: list[str] = []
    for iin in iins:
        if iin is None or len(iin) != 12 or not iin.isdigit():
            continue
        near: set[str] = set()
        for i, digit in enumerate(iin):
            near.update(iin[:i] + d + iin[i + 1 :] for d in "0123456789" if d != digit)
            for j in range(i + 1, 12):
                if iin[j] != digit:
                    near.add(iin[:i] + iin[j] + iin[i + 1 : j] + digit + iin[j + 1 :])
        left.extend([iin] * len(near))
        right.extend(sorted(near))
    return pa.table({"iin": pa.array(left, pa.string()), "neighbour": pa.array(right, pa.string())})


def near_iin_u(found: int, sampled: int, population: int) -> float:
    """The u probability of :data:`IIN_NEAR_LEVEL` from ``found`` near-miss IINs held by someone among
    the neighbours of ``sampled`` people's IINs, in a registry of ``population``: the chance that a
    random other person's IIN is a near miss of one's own. One is added to ``found`` so that a sample
    without any (a small registry) does not make a near miss conclusive."""
    return (found + 1) / (max(sampled, 1) * max(population, 1))


def comparisons() -> list[Any]:
    """The model's comparisons (Splink comparison creators, DuckDB SQL), untrained."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def name(column: str) -> Any:
        return cl.JaroWinklerAtThresholds(column, [0.92, 0.80])

    def date_part(part: str, side: str) -> str:
        return f"{part}(birth_date_{side})"

    one_part = " OR ".join(
        [
            f"({date_part('year', 'l')} = {date_part('year', 'r')} AND "
            f"{date_part('month', 'l')} = {date_part('month', 'r')})",
            f"({date_part('year', 'l')} = {date_part('year', 'r')} AND "
            f"{date_part('day', 'l')} = {date_part('day', 'r')})",
            f"({date_part('month', 'l')} = {date_part('month', 'r')} AND "
            f"{date_part('day', 'l')} = {date_part('day', 'r')})",
            f"({date_part('year', 'l')} = {date_part('year', 'r')} AND "
            f"{date_part('month', 'l')} = {date_part('day', 'r')} AND "
            f"{date_part('day', 'l')} = {date_part('month', 'r')})",
        ]
    )
    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(f"({one_part})", label_for_charts="one of day, month, year differs"),
            cll.ElseLevel(),
        ],
    )
    # A mistyped IIN has one digit changed or two digits swapped: equal length, one or two positions
    # differ, and for two the same digits (sorted) on both sides.
    l_pad, r_pad = "rpad(iin_text_l, 12, 'x')", "rpad(iin_text_r, 12, 'x')"
    lengths = "length(iin_text_l) = 12 AND length(iin_text_r) = 12"
    one_digit = f"({lengths} AND hamming({l_pad}, {r_pad}) = 1)"
    swap = (
        f"({lengths} AND hamming({l_pad}, {r_pad}) = 2 AND "
        "list_sort(string_split(iin_text_l, '')) = list_sort(string_split(iin_text_r, '')))"
    )
    iin = cl.CustomComparison(
        output_column_name="iin_text",
        comparison_description="IIN as text",
        comparison_levels=[
            cll.NullLevel("iin_text"),
            cll.ExactMatchLevel("iin_text"),
            cll.CustomLevel(f"({one_digit} OR {swap})", label_for_charts=IIN_NEAR_LEVEL),
            cll.ElseLevel(),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="katos",
        comparison_description="settlement (KATO)",
        comparison_levels=[
            cll.CustomLevel(
                "(katos_l IS NULL OR katos_r IS NULL OR len(katos_l) = 0 OR len(katos_r) = 0)",
                label_for_charts="no address on one side",
            ).configure(is_null_level=True),
            cll.CustomLevel("list_has_any(katos_l, katos_r)", label_for_charts="same settlement"),
            cll.CustomLevel("list_has_any(districts_l, districts_r)", label_for_charts="same district"),
            cll.ElseLevel(),
        ],
    )
    return [
        name("surname_key"),
        name("given_name_key"),
        name("patronymic_key"),
        birth_date,
        cl.ExactMatch("sex"),
        iin,
        address,
    ]


def base_settings(link_type: LinkType = "dedupe_only") -> dict[str, Any]:
    """Untrained Splink settings of the model, as a dictionary (DuckDB dialect)."""
    from splink import SettingsCreator

    creator = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="uid",
        comparisons=comparisons(),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
    )
    return dict(creator.get_settings("duckdb").as_dict())


# ------------------------------------------------------------------------------------------ records


def _text(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        column = table[name].cast(pa.string())
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def iin_digits(text: str | None) -> str | None:
    """How many of each digit a 12-character IIN text holds (``"0301..."``: three 0s, one 1, ...); a
    swap of two digits leaves it unchanged. None for other texts."""
    if text is None or len(text) != 12:
        return None
    return "".join(f"{text.count(d):02d}" for d in "0123456789")


def iin_digits_array(texts: pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`iin_digits` of every text, vectorised (null where a text is not 12 characters long)."""
    counts = [
        pc.utf8_lpad(pc.cast(pc.count_substring(texts, pattern=d), pa.string()), 2, "0") for d in "0123456789"
    ]
    joined = pc.binary_join_element_wise(*counts, "")
    return pc.if_else(pc.equal(pc.utf8_length(texts), 12), joined, pa.scalar(None, pa.string()))


def iin_digits_sql(column: str) -> str:
    """:func:`iin_digits` in portable SQL, for a column of valid IINs."""
    counts = [
        f"LPAD(CAST(LENGTH({column}) - LENGTH(REPLACE({column}, '{d}', '')) AS VARCHAR), 2, '0')"
        for d in "0123456789"
    ]
    return " || ".join(counts)


def _districts(katos: pa.ChunkedArray) -> pa.ListArray:
    """Each row's districts: the distinct first four digits of its KATO codes, sorted; null where a row
    has none. (Vectorised: nationally the candidates are millions of rows, and a Python loop over them
    was most of the time spent preparing records.)"""
    lists = katos.combine_chunks()
    n = len(lists)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    pairs = pa.table(
        {
            "row": np.repeat(np.arange(n, dtype=np.int64), lengths),  # (a null list's values are skipped)
            "district": pc.utf8_slice_codeunits(pc.list_flatten(lists), 0, 4),
        }
    ).filter(pc.is_valid(pc.field("district")))
    pairs = pairs.take(pc.sort_indices(pairs, [("row", "ascending"), ("district", "ascending")]))
    row = pairs["row"].to_numpy()
    district = pairs["district"].combine_chunks()
    first = np.ones(len(row), dtype=bool)  # the first of each run of equal (row, district)
    if len(row) > 1:
        same = pc.equal(district.slice(1), district.slice(0, len(row) - 1)).to_numpy(zero_copy_only=False)
        first[1:] = ~((row[1:] == row[:-1]) & same)
    return _lists(np.bincount(row[first], minlength=n), district.filter(pa.array(first)))


def _lists(counts: np.ndarray, values: pa.Array) -> pa.ListArray:
    """A list per row, row ``i`` holding the next ``counts[i]`` of ``values``; null where it holds none."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


def prepare_records(table: pa.Table, *, uid: str = "uid", reference: bool = False) -> pa.Table:
    """The columns the model compares (:data:`RECORD_COLUMNS`), from a table of person records.

    The table has a unique ``uid`` column and any of ``surname_key``, ``given_name_key``,
    ``patronymic_key`` (name keys, see :func:`familycard.identity.mentions.name_key`), ``birth_date``,
    ``sex`` (``M``/``F``), ``iin_text`` (or ``iin``), and ``katos`` (a list of KATO codes) or ``kato``.
    ``reference`` marks the table records are linked *to*: its names are blocked on even where a
    birth date or IIN exists.
    """
    n = table.num_rows
    surname, given = _text(table, "surname_key"), _text(table, "given_name_key")
    iin_text = _text(table, "iin_text") if "iin_text" in table.column_names else _text(table, "iin")
    birth = (
        table["birth_date"].cast(pa.date32())
        if "birth_date" in table.column_names
        else pa.chunked_array([pa.nulls(n, pa.date32())])
    )
    if "katos" in table.column_names:
        katos = table["katos"].cast(pa.list_(pa.string()))
    else:
        kato = _text(table, "kato").combine_chunks()  # a list of the one code; null where there is none
        known = pc.is_valid(kato).to_numpy(zero_copy_only=False).astype(np.int32)
        katos = pa.chunked_array([_lists(known, kato.drop_null())])
    districts = _districts(katos)
    full_iin = pc.equal(pc.utf8_length(iin_text), 12)
    head = pc.if_else(full_iin, pc.utf8_slice_codeunits(iin_text, 0, 6), pa.scalar(None, pa.string()))
    tail = pc.if_else(full_iin, pc.utf8_slice_codeunits(iin_text, 6, 12), pa.scalar(None, pa.string()))
    digits = iin_digits_array(iin_text)
    names = pc.binary_join_element_wise(surname, given, " ")
    if not reference:
        weak = pc.and_(pc.is_null(birth), pc.is_null(iin_text))
        names = pc.if_else(weak, names, pa.scalar(None, pa.string()))
    return pa.table(
        {
            "uid": table[uid].cast(pa.string()),
            "surname_key": surname,
            "given_name_key": given,
            "patronymic_key": _text(table, "patronymic_key"),
            "birth_date": birth,
            "sex": _text(table, "sex"),
            "iin_text": iin_text,
            "katos": katos,
            "districts": districts,
            "iin_head": head,
            "iin_tail": tail,
            "iin_digits": digits,
            "name_block": names,
        }
    )


# ----------------------------------------------------------------------------------- load and save


def load_model(path: Path | None = None) -> LinkageModel:
    """The linkage model stored at ``path`` (default: the current methodology file)."""
    path = Path(path or MODEL_PATH)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the linkage model: {exc}") from exc
    for key in ("splink", "link_threshold", "review_threshold", "blocking_keys"):
        if key not in data:
            raise ValueError(f"{path}: {key}: is required")
    link, review = float(data["link_threshold"]), float(data["review_threshold"])
    if not 0 < review <= link < 1:
        raise ValueError(f"{path}: thresholds: need 0 < review_threshold <= link_threshold < 1")
    return LinkageModel(
        settings=data["splink"],
        link_threshold=link,
        review_threshold=review,
        blocking_keys=tuple(tuple(k) for k in data["blocking_keys"]),
        version=int(data.get("version", MODEL_VERSION)),
        estimated=dict(data.get("estimated", {})),
    )


def save_model(model: LinkageModel, path: Path) -> None:
    """Write ``model`` as a methodology file (JSON, stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------- training


def estimate_model(
    records: pa.Table,
    *,
    seed: int = 1,
    max_pairs: float = 5e6,
    link_threshold: float = 0.99,
    review_threshold: float = 0.5,
    note: str = "",
) -> LinkageModel:
    """Estimate the model's parameters from person records (:func:`prepare_records` columns), with
    Splink on DuckDB: u probabilities by random sampling (seeded), m probabilities by expectation
    maximisation over :data:`TRAINING_BLOCKS`, and the prior from pairs that share a valid IIN. The
    same records and seed give the same parameters."""
    import logging

    from splink import DuckDBAPI, Linker, block_on

    model = LinkageModel(settings=base_settings())
    settings = model.settings_for("dedupe_only", blocking=False)
    db_api = DuckDBAPI()
    db_api.duckdb_con.execute("SET threads = 1")  # one thread: sums in a fixed order, so a fixed result
    frame = db_api.register(records.sort_by("uid"), dataset_display_name="records")
    linker = Linker(frame, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        ["l.iin_text = r.iin_text AND length(l.iin_text) = 12"], recall=0.98
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for cols in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*cols), estimate_without_term_frequencies=True
        )
    trained = _floored(json.loads(json.dumps(linker.misc.save_model_to_json())))
    for key in ("blocking_rules_to_generate_predictions", "linker_uid"):
        trained.pop(key, None)
    return LinkageModel(
        settings=trained,
        link_threshold=link_threshold,
        review_threshold=review_threshold,
        estimated={
            "method": "Splink on DuckDB: u by random sampling, m by expectation maximisation",
            "seed": seed,
            "max_pairs": max_pairs,
            "training_blocks": [list(b) for b in TRAINING_BLOCKS],
            "records": records.num_rows,
            "date": dt.date.today().isoformat(),
            "note": note,
        },
    )


def _floored(settings: dict[str, Any], floor: float = 1e-6) -> dict[str, Any]:
    """``settings`` with every m and u probability at least ``floor``: a level never seen among matches
    (or non-matches) in the training data (its probability zero or not estimated) still happens in real
    data, and must not veto (or force) a link by itself beyond ``log2(1 / floor)`` bits."""
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            for key in ("m_probability", "u_probability"):
                value = level.get(key)
                level[key] = max(float(value), floor) if isinstance(value, float | int) else floor
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m familycard.identity.model DATA OUT.json [NOTE]``: estimate the model from the person
    mentions of the warehouse at ``DATA`` (its current run) and write it to ``OUT.json``."""
    import tempfile

    from familycard.identity.mentions import build_mentions
    from familycard.sources.catalogue import load_catalogue
    from familycard.store.engine import open_engine
    from familycard.store.warehouse import Warehouse

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        sys.stderr.write(main.__doc__ or "")
        return 2
    wh = Warehouse(Path(args[0]))
    catalogue = load_catalogue()
    with tempfile.TemporaryDirectory() as tmp, open_engine("duckdb", temp_dir=Path(tmp) / "t") as eng:
        for spec in catalogue:
            eng.register_parquet(f"src_{spec.name}", wh.table_path(f"src_{spec.name}"))
        build_mentions(eng, catalogue, Path(tmp) / "s")
        mentions = eng.fetch("SELECT * FROM id_mentions ORDER BY mention_id")
    records = prepare_records(
        mentions.rename_columns(["uid" if c == "mention_id" else c for c in mentions.column_names])
    )
    model = estimate_model(records, note=args[2] if len(args) == 3 else "")
    numbered = re.fullmatch(r"person-linkage-v(\d+)\.json", Path(args[1]).name)
    if numbered:  # the version its file name gives
        model = replace(model, version=int(numbered.group(1)))
    save_model(model, Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
