"""Calibrate a well-being methodology's weights and level thresholds on a synthetic calibration nation.

Not part of the test suite. Usage:

    .venv/bin/familycard synth --families 20000 --months 13 --seed 101 --out /tmp/cal/nation
    .venv/bin/familycard run --sources /tmp/cal/nation/sources --data /tmp/cal/data
    .venv/bin/python bench/calibrate.py --nation /tmp/cal/nation --data /tmp/cal/data [--blend 0.9]

It matches every family of the run to its true family (as ``familycard eval`` does), fits a logistic
regression of "truly in need" (true level D or E) on the family's deprivations with **non-negative**
coefficients (a deprivation may only raise a family's score), blends the fitted weights with the
catalogue's own (expert) weights so that every indicator keeps a voice (``--blend`` is the fitted share),
and places the thresholds: D where the errors are best balanced against the targets (exclusion ≤ 5 %,
inclusion ≤ 10 %), B and C at the truth's shares of A and B, E at the truth's share of E. It prints the
``[domains]``, ``[weights]`` and level thresholds to paste into ``methodology/wellbeing/v1.toml``, and the
in-sample errors, with those of an unconstrained logistic regression on the same deprivations (what the
data allow at best with these indicators). Evaluate on another nation (``familycard eval``), never on
this one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from familycard.indicators.methodology import load_methodology
from familycard.scoring import evaluate as ev
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse


def matched(data: Path, truth: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, float]]:
    """Deprivation matrix and true need of every family of the run, the indicator ids, truth level shares."""
    meth = load_methodology("v1")
    ids = [i.id for i in meth.indicators]
    wh = Warehouse(data)
    with open_engine("duckdb") as eng:
        for name in ("family_members", "family_scores", "family_indicators", "person_links"):
            eng.register_parquet(name, wh.table_path(name))
        period = str(eng.fetch("SELECT MAX(as_of) AS p FROM family_members").column(0)[0].as_py())
        eng.register_arrow(
            "t_records",
            pq.read_table(
                truth / "source_records.parquet", columns=["feed", "record_id", "role", "person_id"]
            ),
        )
        for t in ("family_spells", "family_levels", "families", "persons", "support"):
            eng.register_arrow(f"t_{t}", pq.read_table(truth / f"{t}.parquet"))
        eng.register_arrow("pmap", eng.fetch(ev._MAP_SQL))
        eng.register_arrow("built", eng.fetch(ev._built_families_sql(period)))
        eng.register_arrow("tf", eng.fetch(ev._true_families_sql(period)))
        cols = ", ".join(f"CAST(fi.d_{i} AS INTEGER) AS d_{i}" for i in ids)
        t = eng.fetch(
            f"""SELECT COALESCE(tf.need, FALSE) AS need, {cols} FROM built AS b
                LEFT JOIN tf ON tf.tfam = b.tfam JOIN family_indicators AS fi ON fi.family_id = b.bfam
                ORDER BY b.bfam"""
        )
        shares = {
            str(r["level"]): float(r["s"])
            for r in eng.fetch(
                f"""SELECT level, COUNT(*) * 1.0 / SUM(COUNT(*)) OVER () AS s FROM t_family_levels
                    WHERE from_period <= '{period}' AND to_period >= '{period}' GROUP BY level"""
            ).to_pylist()
        }
    x = np.column_stack([t.column(f"d_{i}").to_numpy(zero_copy_only=False).astype(float) for i in ids])
    y = t.column("need").to_numpy(zero_copy_only=False).astype(float)
    return x, y, ids, shares


def logistic(x: np.ndarray, y: np.ndarray, *, nonnegative: bool, steps: int = 4000) -> np.ndarray:
    """Logistic regression coefficients (no intercept returned) by Adam, projected on w ≥ 0 if asked."""
    w, b = np.full(x.shape[1], 0.1), -3.0
    m, v, mb, vb = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g, gb = x.T @ (p - y) / len(y) + 1e-3 * w, float((p - y).mean())
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        mb, vb = 0.9 * mb + 0.1 * gb, 0.999 * vb + 0.001 * gb * gb
        w -= 0.05 * m / (np.sqrt(v) + 1e-8)
        b -= 0.05 * mb / (np.sqrt(vb) + 1e-8)
        if nonnegative:
            w = np.maximum(w, 0)
    return w


def best_cut(score: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """The threshold that best balances exclusion/0.05 against inclusion/0.10: (cut, share, excl, incl)."""
    best: tuple[float, float, float, float, float] | None = None
    for q in np.linspace(0.80, 0.97, 171):
        cut = float(np.quantile(score, q))
        tg = score >= cut
        hit = float((tg & (y == 1)).sum())
        excl, incl = 1 - hit / y.sum(), 1 - hit / max(tg.sum(), 1)
        worst = max(excl / 0.05, incl / 0.10)
        if best is None or worst < best[0]:
            best = (worst, cut, float(tg.mean()), excl, incl)
    assert best is not None
    return best[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nation", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--blend", type=float, default=0.9, help="share of the fitted weights (the rest expert)")
    args = ap.parse_args()
    x, y, ids, shares = matched(args.data, args.nation / "truth")
    meth = load_methodology("v1")
    free = logistic(x, y, nonnegative=False)
    _, share, excl, incl = best_cut(x @ free, y)
    print(
        f"# unconstrained logistic (upper bound): targeted {share:.3f}, "
        f"exclusion {excl:.3f}, inclusion {incl:.3f}"
    )
    fitted = logistic(x, y, nonnegative=True)
    expert = np.array([meth.effective_weights()[i] for i in ids])
    eff = args.blend * fitted / fitted.sum() + (1 - args.blend) * expert
    score = x @ eff
    cut, share, excl, incl = best_cut(score, y)
    print(f"# calibrated weights: targeted {share:.3f}, exclusion {excl:.3f}, inclusion {incl:.3f}")
    need = shares.get("D", 0) + shares.get("E", 0)
    cuts = {
        "B": float(np.quantile(score, shares.get("A", 0.5))),
        "C": float(np.quantile(score, shares.get("A", 0.5) + shares.get("B", 0.25))),
        "D": cut,
        "E": float(np.quantile(score, 1 - shares.get("E", 0.05) * share / max(need, 1e-9))),
    }
    domains: dict[str, float] = {}
    for i, e in zip(meth.indicators, eff, strict=True):
        domains[i.domain] = domains.get(i.domain, 0.0) + float(e)
    print("\n[domains]")
    rounded = {d: round(w, 4) for d, w in domains.items()}
    last = max(rounded, key=lambda d: rounded[d])
    rounded[last] = round(1 - sum(w for d, w in rounded.items() if d != last), 4)
    for d, w in rounded.items():
        print(f"{d} = {w}")
    print("\n[weights]")
    for i, e in zip(ids, eff, strict=True):
        print(f"{i} = {float(e):.5f}")
    print("\n# level thresholds (min_score)")
    for k, v in cuts.items():
        print(f"# {k}: {v:.4f}")


if __name__ == "__main__":
    main()
