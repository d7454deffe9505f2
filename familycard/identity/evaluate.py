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
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from familycard.store.duck import table_sql
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


def _pairs_sql(n: str) -> str:
    """SQL: the pairs among ``n`` mentions, summed."""
    return f"SUM({n} * ({n} - 1) // 2)"


def _score(row: dict[str, int], suffix: str = "") -> PairScore:
    """A pair score from the sums of :data:`PAIRS_SQL` (``suffix`` ``_0``: among unflagged mentions)."""
    return PairScore(int(row[f"p{suffix}"] or 0), int(row[f"t{suffix}"] or 0), int(row[f"c{suffix}"] or 0))


# ``ev_cells``: the mentions counted by (index person, true person, link method), with how many carry no
# flag of each fault (``n0_<fault>``): every figure is a sum over these cells, so the evaluation holds
# about a cell per person, not a row per mention, and DuckDB spills what does not fit its memory limit.
CELLS_SQL = f"""
    WITH flags AS (
        SELECT feed, CAST(record_id AS VARCHAR) AS record_key, role, MAX(person_id) AS truth,
            {", ".join(f"COALESCE(BOOL_OR({f}), FALSE) AS {f}" for f in FAULTS)}
        FROM read_parquet({{records}}) GROUP BY feed, record_id, role
    )
    SELECT CAST(l.person_id AS VARCHAR) AS pred, CAST(f.truth AS BIGINT) AS truth, l.method, COUNT(*) AS n,
        {", ".join(f"COUNT(*) FILTER (WHERE NOT f.{f}) AS n0_{f}" for f in FAULTS)}
    FROM ({{links}}) AS l
    JOIN flags AS f ON f.feed = l.feed AND f.record_key = l.record_key AND f.role = l.role
    GROUP BY ALL
"""
_COUNTS = ["n", *(f"n0_{f}" for f in FAULTS)]
PAIRS_SQL = f"""
    WITH pg AS (SELECT pred, {", ".join(f"SUM({c}) AS {c}" for c in _COUNTS)} FROM ev_cells GROUP BY pred),
    tg AS (SELECT truth, {", ".join(f"SUM({c}) AS {c}" for c in _COUNTS)} FROM ev_cells GROUP BY truth),
    cg AS (SELECT pred, truth, {", ".join(f"SUM({c}) AS {c}" for c in _COUNTS)} FROM ev_cells GROUP BY ALL)
    SELECT * FROM
        (SELECT {", ".join(f"{_pairs_sql(c)} AS p{c[1:]}" for c in _COUNTS)} FROM pg),
        (SELECT {", ".join(f"{_pairs_sql(c)} AS t{c[1:]}" for c in _COUNTS)} FROM tg),
        (SELECT {", ".join(f"{_pairs_sql(c)} AS c{c[1:]}" for c in _COUNTS)} FROM cg)
"""
# Index person -> true person: through the IIN where the index person has one that a true person holds,
# else the true person most of its mentions belong to (the smallest on ties); then the mentions linked
# to their true person, by method.
ACCURACY_SQL = """
    WITH by_iin AS (
        SELECT CAST(p.person_id AS VARCHAR) AS pred, CAST(t.person_id AS BIGINT) AS truth
        FROM ({persons}) AS p JOIN read_parquet({true_persons}) AS t ON t.iin = p.iin
        WHERE p.iin IS NOT NULL AND p.iin <> ''
        QUALIFY ROW_NUMBER() OVER (PARTITION BY p.person_id ORDER BY t.person_id) = 1
    ),
    votes AS (
        SELECT c.pred, c.truth, SUM(c.n) AS n FROM ev_cells AS c
        ANTI JOIN by_iin AS b ON b.pred = c.pred GROUP BY c.pred, c.truth
    ),
    identity AS (
        SELECT pred, truth FROM by_iin
        UNION ALL
        SELECT pred, truth FROM votes QUALIFY ROW_NUMBER() OVER (PARTITION BY pred ORDER BY n DESC, truth) = 1
    )
    SELECT c.method, SUM(c.n) AS mentions, SUM(CASE WHEN i.truth = c.truth THEN c.n ELSE 0 END) AS correct
    FROM ev_cells AS c LEFT JOIN identity AS i ON i.pred = c.pred
    GROUP BY c.method ORDER BY c.method
"""


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def evaluate_identity(
    data: Path, truth: Path, *, run: str | None = None, memory_limit: str = "8GB"
) -> IdentityScore:
    """Score the person index of the warehouse at ``data`` (current or given run) against the truth
    directory ``truth`` of the synthetic nation it was built from. The work is SQL on DuckDB, capped at
    ``memory_limit`` and spilling to a temporary directory under ``data``, so a national index (some 180 M
    mentions) is scored on a laptop."""
    wh = Warehouse(Path(data))
    truth = Path(truth)
    tmp = Path(tempfile.mkdtemp(prefix="eval-", dir=Path(data)))
    # (warehouse tables as the DuckDB engine reads them; the truth's files as they lie)
    links = table_sql(wh.table_path("person_links", run))
    records = _literal(truth / "source_records.parquet")
    try:
        with duckdb.connect(":memory:") as con:
            con.execute(f"SET temp_directory = {_literal(tmp)}")
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"CREATE TABLE ev_cells AS {CELLS_SQL.format(records=records, links=links)}")
            mentions, fault_counts = _totals(con)
            n_links = _count(con, f"SELECT COUNT(*) FROM ({links})")
            distinct = f"SELECT DISTINCT feed, record_id, role FROM read_parquet({records})"
            n_flags = _count(con, f"SELECT COUNT(*) FROM ({distinct})")
            cursor = con.execute(PAIRS_SQL)
            names = [d[0] for d in cursor.description]
            sums = dict(zip(names, cursor.fetchone() or (), strict=True))
            persons = table_sql(wh.table_path("persons", run))
            true_persons = _literal(truth / "persons.parquet")
            accuracy_rows = con.execute(
                ACCURACY_SQL.format(persons=persons, true_persons=true_persons)
            ).fetchall()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    overall = _score(sums)
    by_fault = {}
    for f in FAULTS:
        without = _score(sums, f"0_{f}")
        by_fault[f] = PairScore(
            overall.predicted_pairs - without.predicted_pairs,
            overall.true_pairs - without.true_pairs,
            overall.correct_pairs - without.correct_pairs,
        )
    by_method = {
        str(method): {"mentions": int(n), "accuracy": round(int(ok) / int(n), 6)}
        for method, n, ok in accuracy_rows
    }
    correct = sum(int(ok) for _, _, ok in accuracy_rows)
    return IdentityScore(
        mentions=mentions,
        pairs=overall,
        by_fault=by_fault,
        fault_mentions=fault_counts,
        mention_accuracy=correct / mentions if mentions else 1.0,
        by_method=by_method,
        unmatched={"links_without_truth": n_links - mentions, "truth_without_link": n_flags - mentions},
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _totals(con: duckdb.DuckDBPyConnection) -> tuple[int, dict[str, int]]:
    """The mentions scored, and how many carry each fault."""
    sums = ", ".join(f"SUM(n - n0_{f})" for f in FAULTS)
    row = con.execute(f"SELECT SUM(n), {sums} FROM ev_cells").fetchone() or ()
    values = [int(v or 0) for v in row] or [0] * (len(FAULTS) + 1)
    return values[0], dict(zip(FAULTS, values[1:], strict=True))


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
