"""Scoring the person index against a synthetic nation's ground truth (evaluation only: the pipeline
never reads ``truth/``).

**What is counted.** A *mention* is one person of one record: (``feed``, ``record_key``, ``role``).
``truth/source_records.parquet`` says which true person each mention is (``record_id`` is the record
key); ``person_links`` says which person of the index it was linked to.

**Pairwise precision and recall** (the headline figures). Two mentions put in the same index person form
a *predicted pair*; two mentions of the same true person form a *true pair*.

* precision = predicted pairs that are true pairs / predicted pairs: how rarely two different people are
  merged;
* recall = true pairs that are predicted pairs / true pairs: how rarely one person is split.

A link waiting for review counts as made (the stricter choice for precision). Counting pairs weighs a
person with many mentions more than one with few, as a family-building error through a person with many
records is more costly. Pairs are counted from the contingency table of (index person, true person), so
the cost grows with mentions, not pairs.

**By fault.** For a fault (``iin_missing``, ``iin_mistyped``, ``name_typo``, ``name_variant``), the same
figures over the pairs with at least one mention carrying that fault in the truth.

**Per mention.** An index person *is* the true person holding its IIN (registry persons), or else the
true person most of its mentions belong to. ``mention_accuracy`` is the share of mentions linked to the
index person that is their true person; it is also given per method.

A known limit of the truth: a record's truth row names the person the record was about when it first
appeared, while the index reads the record's latest version; a record handed to another person (a
dwelling or vehicle re-registered to an heir) counts as an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from familycard.store.warehouse import Warehouse

FAULTS = ("iin_missing", "iin_mistyped", "name_typo", "name_variant")


@dataclass
class PairScore:
    """Pairwise counts and their ratios."""

    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "predicted_pairs": self.predicted_pairs,
            "true_pairs": self.true_pairs,
            "correct_pairs": self.correct_pairs,
        }


@dataclass
class IdentityScore:
    """The index scored against the truth (see the module docstring)."""

    mentions: int
    pairs: PairScore
    by_fault: dict[str, PairScore]
    fault_mentions: dict[str, int]
    mention_accuracy: float
    by_method: dict[str, dict[str, float]] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.pairs.precision

    @property
    def recall(self) -> float:
        return self.pairs.recall

    def as_dict(self) -> dict[str, Any]:
        return {
            "mentions": self.mentions,
            **self.pairs.as_dict(),
            "mention_accuracy": round(self.mention_accuracy, 6),
            "by_fault": {
                f: {**s.as_dict(), "mentions": self.fault_mentions[f]} for f, s in self.by_fault.items()
            },
            "by_method": self.by_method,
            "unmatched": self.unmatched,
        }


def _pairs(counts: pa.Array) -> int:
    n = counts.to_numpy(zero_copy_only=False).astype("int64")
    return int((n * (n - 1) // 2).sum())


def _pair_counts(table: pa.Table) -> tuple[int, int, int]:
    """(predicted, true, correct) pairs among the mentions of ``table`` (``pred``, ``truth``)."""
    if table.num_rows == 0:
        return 0, 0, 0
    pred = table.group_by("pred").aggregate([("pred", "count")])["pred_count"]
    true = table.group_by("truth").aggregate([("truth", "count")])["truth_count"]
    both = table.group_by(["pred", "truth"]).aggregate([("pred", "count")])["pred_count"]
    return _pairs(pred), _pairs(true), _pairs(both)


def _score_subset(table: pa.Table, mask: pa.ChunkedArray | None) -> PairScore:
    p, t, c = _pair_counts(table)
    if mask is None:
        return PairScore(p, t, c)
    # Pairs with at least one flagged mention: all pairs less those among unflagged mentions.
    p0, t0, c0 = _pair_counts(table.filter(pc.invert(mask)))
    return PairScore(p - p0, t - t0, c - c0)


def evaluate_identity(data: Path, truth: Path, *, run: str | None = None) -> IdentityScore:
    """Score the person index of the warehouse at ``data`` (current or given run) against the truth
    directory ``truth`` of the synthetic nation it was built from."""
    wh = Warehouse(Path(data))
    links = wh.read("person_links", run).select(["feed", "record_key", "role", "person_id", "method"])
    persons = wh.read("persons", run).select(["person_id", "iin"])
    records = pq.read_table(Path(truth) / "source_records.parquet")
    true_persons = pq.read_table(Path(truth) / "persons.parquet").select(["person_id", "iin"])
    flags = records.group_by(["feed", "record_id", "role"]).aggregate(
        [("person_id", "max")] + [(f, "max") for f in FAULTS]
    )
    flags = flags.rename_columns(
        [
            {"record_id": "record_key", "person_id_max": "truth"}.get(c, c.removesuffix("_max"))
            for c in flags.column_names
        ]
    )
    joined = links.join(flags, ["feed", "record_key", "role"], join_type="inner")
    unmatched = {
        "links_without_truth": links.num_rows - joined.num_rows,
        "truth_without_link": flags.num_rows - joined.num_rows,
    }
    table = pa.table(
        {
            "pred": joined["person_id"],
            "truth": joined["truth"].cast(pa.int64()),
            "method": joined["method"],
            **{f: joined[f].fill_null(False) for f in FAULTS},
        }
    )
    overall = _score_subset(table, None)
    by_fault = {f: _score_subset(table, table[f]) for f in FAULTS}
    fault_mentions = {f: int(pc.sum(table[f].cast(pa.int64())).as_py() or 0) for f in FAULTS}
    identity = _identify(table, persons, true_persons)
    correct = pc.equal(
        pc.fill_null(pc.equal(_map(table["pred"], identity, pa.int64()), table["truth"]), False), True
    )
    by_method: dict[str, dict[str, float]] = {}
    methods = table["method"].to_pylist()
    hits = correct.to_pylist()
    for method in sorted(set(methods)):
        picked = [h for m, h in zip(methods, hits, strict=True) if m == method]
        by_method[method] = {"mentions": len(picked), "accuracy": round(sum(picked) / len(picked), 6)}
    accuracy = sum(hits) / len(hits) if hits else 1.0
    return IdentityScore(
        mentions=table.num_rows,
        pairs=overall,
        by_fault=by_fault,
        fault_mentions=fault_mentions,
        mention_accuracy=accuracy,
        by_method=by_method,
        unmatched=unmatched,
    )


def _map(keys: pa.ChunkedArray, mapping: dict[Any, Any], typ: pa.DataType) -> pa.Array:
    return pa.array([mapping.get(k) for k in keys.to_pylist()], typ)


def _identify(table: pa.Table, persons: pa.Table, true_persons: pa.Table) -> dict[str, int]:
    """Index person -> true person: through the IIN where the index person has one that a true person
    holds, else the true person most of its mentions belong to."""
    by_iin = {
        iin: pid
        for pid, iin in zip(
            true_persons["person_id"].to_pylist(), true_persons["iin"].to_pylist(), strict=True
        )
        if iin
    }
    out: dict[str, int] = {}
    for pid, iin in zip(persons["person_id"].to_pylist(), persons["iin"].to_pylist(), strict=True):
        if iin and iin in by_iin:
            out[pid] = by_iin[iin]
    counts = table.group_by(["pred", "truth"]).aggregate([("pred", "count")])
    best: dict[str, tuple[int, int]] = {}
    for pred, truth, n in zip(
        counts["pred"].to_pylist(), counts["truth"].to_pylist(), counts["pred_count"].to_pylist(), strict=True
    ):
        if pred in out:
            continue
        if pred not in best or (n, -truth) > (best[pred][1], -best[pred][0]):
            best[pred] = (truth, n)
    out.update({pred: truth for pred, (truth, _) in best.items()})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m familycard.identity.evaluate DATA TRUTH``: print the scores as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write(main.__doc__ or "")
        return 2
    score = evaluate_identity(Path(args[0]), Path(args[1]))
    sys.stdout.write(json.dumps(score.as_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
