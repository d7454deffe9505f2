"""Generate a synthetic nation: simulate chunk after chunk of families, stream every agency's
deliveries to ``OUT/sources/`` and the ground truth to ``OUT/truth/``.

Memory is bounded by the chunk size, not the nation's: each chunk is simulated, written and dropped.
Files are written in chunk order with seeds derived from (seed, chunk), so the same settings give
byte-identical output.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from familycard.identity import iin as iinlib
from familycard.sources.formats import FileFormat, open_writer
from familycard.synth.config import SynthConfig
from familycard.synth.extracts import (
    Feed,
    Rows,
    apply_faults,
    delivery_fate,
    duplicate_mask,
    record_ids,
)
from familycard.synth.feeds import FEED_BY_NAME, FEEDS, Ctx
from familycard.synth.life import LEVELS, SUPPORT_CODES, Life
from familycard.synth.population import build_population
from familycard.synth.world import HARD_CASE_NAMES, Archetype, World

PARQUET = FileFormat(kind="parquet")
FAULT_FLAGS = ("iin_missing", "iin_mistyped", "name_typo", "name_variant", "date_format")

TRUTH_SCHEMAS: dict[str, pa.Schema] = {
    "persons": pa.schema(
        [
            ("person_id", pa.int64()),
            ("iin", pa.string()),
            ("surname", pa.string()),
            ("given_name", pa.string()),
            ("patronymic", pa.string()),
            ("sex", pa.string()),
            ("birth_date", pa.date32()),
            ("death_date", pa.date32()),
            ("migration_status", pa.string()),
            ("mother_id", pa.int64()),
            ("father_id", pa.int64()),
            ("phone", pa.string()),
        ]
    ),
    "family_spells": pa.schema(
        [
            ("person_id", pa.int64()),
            ("family_id", pa.int64()),
            ("role", pa.string()),
            ("from_period", pa.string()),
            ("to_period", pa.string()),
        ]
    ),
    "families": pa.schema(
        [
            ("family_id", pa.int64()),
            ("archetype", pa.string()),
            ("hard_cases", pa.string()),
            ("created_period", pa.string()),
            ("kato", pa.string()),
            ("region", pa.string()),
            ("rural", pa.bool_()),
        ]
    ),
    "family_levels": pa.schema(
        [
            ("family_id", pa.int64()),
            ("from_period", pa.string()),
            ("to_period", pa.string()),
            ("level", pa.string()),
            ("mean_latent", pa.float64()),
        ]
    ),
    "support": pa.schema(
        [
            ("period", pa.string()),
            ("family_id", pa.int64()),
            ("person_id", pa.int64()),
            ("measure", pa.string()),
            ("amount", pa.float64()),
            ("true_effect", pa.float64()),
        ]
    ),
    "source_records": pa.schema(
        [
            ("feed", pa.string()),
            ("record_id", pa.string()),
            ("role", pa.string()),
            ("person_id", pa.int64()),
            *[(f, pa.bool_()) for f in FAULT_FLAGS],
            ("duplicated", pa.bool_()),
        ]
    ),
}


@dataclass
class Summary:
    """What a run produced (printed by the command and stored in ``truth/run.json``)."""

    families: int = 0
    persons: int = 0
    deliveries: int = 0
    rows_by_feed: dict[str, int] = field(default_factory=dict)


@dataclass
class ChunkResult:
    """Everything one chunk contributes: rows per delivery, truth rows, and counts."""

    chunk: int
    deliveries: dict[tuple[str, int], list[pa.Table]]
    truth: dict[str, list[pa.Table]]
    rows_by_feed: dict[str, int]
    families: int
    persons: int


def simulate_chunk(cfg: SynthConfig, chunk: int) -> ChunkResult:
    """Simulate one chunk and render its part of every delivery and of the truth (no file I/O)."""
    n_f = min(cfg.chunk_families, cfg.families - chunk * cfg.chunk_families)
    rng = np.random.default_rng([cfg.seed, chunk])
    world = build_population(cfg, chunk, n_f, rng)
    Life(world, rng, cfg.faults.stale_address, cfg.n_chunks).run()
    ctx = Ctx(world, cfg)
    plan = delivery_plan(cfg)
    result = ChunkResult(
        chunk=chunk,
        deliveries={},
        truth={name: [] for name in TRUTH_SCHEMAS},
        rows_by_feed={},
        families=int(world.families.n),
        persons=int(world.persons.n),
    )
    for feed in FEEDS:
        result.rows_by_feed[feed.name] = _emit(feed, ctx, cfg, plan, result)
    _write_truth(world, cfg, result.truth)
    return result


def generate(
    cfg: SynthConfig,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Summary:
    """Generate the nation described by ``cfg`` into ``out`` (replacing ``sources/`` and ``truth/``).

    Chunks are simulated by ``workers`` processes (default: one per CPU, at most one per chunk) and
    written by this process in chunk order, so the output does not depend on the number of workers.
    """
    out = Path(out)
    for sub in ("sources", "truth"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    (out / "sources").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    plan = delivery_plan(cfg)
    writers = {
        k: open_writer(out / "sources" / d.path, FEED_BY_NAME[d.feed].fmt, FEED_BY_NAME[d.feed].schema())
        for k, d in plan.items()
    }
    truth = {
        name: open_writer(out / "truth" / f"{name}.parquet", PARQUET, schema)
        for name, schema in TRUTH_SCHEMAS.items()
    }
    summary = Summary(rows_by_feed={f.name: 0 for f in FEEDS})
    n_workers = max(1, min(workers or os.cpu_count() or 1, cfg.n_chunks))
    try:
        with _chunk_results(cfg, n_workers) as results:
            for res in results:
                for key, tables in res.deliveries.items():
                    for table in tables:
                        writers[key].write(table)
                for name, tables in res.truth.items():
                    for table in tables:
                        truth[name].write(table)
                for feed, rows in res.rows_by_feed.items():
                    summary.rows_by_feed[feed] += rows
                summary.families += res.families
                summary.persons += res.persons
                if progress:
                    progress(res.chunk + 1, cfg.n_chunks)
    except BaseException:
        for w in [*writers.values(), *truth.values()]:
            w.abort()
        raise
    for w in truth.values():
        w.close()
    manifest = []
    for key, d in plan.items():
        rows = writers[key].close()
        path = out / "sources" / d.path
        manifest.append(
            {
                "feed": d.feed,
                "period": d.period,
                "kind": d.kind,
                "file": str(d.path),
                "rows": rows,
                "sha256": _sha256(path),
                "due": d.due_day,
                "delivered": d.delivered,
            }
        )
    summary.deliveries = len(manifest)
    (out / "sources" / "manifest.json").write_text(
        json.dumps(
            {"deliveries": manifest, "feeds": [_feed_doc(f) for f in FEEDS]}, ensure_ascii=False, indent=1
        )
        + "\n",
        encoding="utf-8",
    )
    (out / "truth" / "run.json").write_text(
        json.dumps(
            {
                "config": cfg.as_dict(),
                "families": summary.families,
                "persons": summary.persons,
                "rows_by_feed": summary.rows_by_feed,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    return summary


@contextmanager
def _chunk_results(cfg: SynthConfig, workers: int) -> Iterator[Iterator[ChunkResult]]:
    if workers == 1:
        yield (simulate_chunk(cfg, c) for c in range(cfg.n_chunks))
        return
    ctx = mp.get_context("forkserver")
    with ctx.Pool(workers, maxtasksperchild=4) as pool:
        yield pool.imap(partial(simulate_chunk, cfg), range(cfg.n_chunks), chunksize=1)


def _feed_doc(f: Feed) -> dict[str, object]:
    return {
        "feed": f.name,
        "agency": f.agency,
        "title": f.title,
        "format": f.fmt.kind,
        "encoding": f.fmt.encoding,
        "delimiter": f.fmt.delimiter if f.fmt.kind == "csv" else None,
        "cadence_months": f.cadence,
        "mode": f.mode,
        "columns": list(f.columns),
        "id_column": f.id_column,
        "op_column": f.op_column,
        "widths": [list(w) for w in f.fmt.widths] or None,
        "date_style": f.date_style,
        "line_ending": "CRLF" if f.fmt.line_ending == "\r\n" else "LF",
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Planned:
    """One delivery that will be (or was) sent."""

    feed: str
    period: str
    t: int
    kind: str
    path: Path
    due_day: str
    delivered: str


def delivery_plan(cfg: SynthConfig) -> dict[tuple[str, int], Planned]:
    """Every delivery of every feed: due on the feed's cadence, some late, some never sent."""
    out: dict[tuple[str, int], Planned] = {}
    for feed in FEEDS:
        for t in range(cfg.months):
            if not feed.due(t):
                continue
            missing, late_days = delivery_fate(feed, t, cfg.faults, cfg.seed)
            if missing:
                continue
            kind = "full" if t == 0 else {"delta": "delta", "snapshot": "full", "events": "events"}[feed.mode]
            period = cfg.period(t)
            due = cfg.month_start_day(t + 1) + 5
            out[(feed.name, t)] = Planned(
                feed=feed.name,
                period=period,
                t=t,
                kind=kind,
                path=Path(feed.name) / f"{feed.name}_{period}_{kind}.{feed.fmt.extension}",
                due_day=str(np.datetime64(due, "D")),
                delivered=str(np.datetime64(due + late_days, "D")),
            )
    return out


def _emit(
    feed: Feed, ctx: Ctx, cfg: SynthConfig, plan: dict[tuple[str, int], Planned], result: ChunkResult
) -> int:
    """Write one chunk's part of every delivery of ``feed``; returns rows written."""
    written = 0
    last: Rows | None = None
    last_hash: np.ndarray | None = None
    last_t = -(10**6)  # the first delivery carries the whole history
    for t in range(cfg.months):
        if (feed.name, t) not in plan:
            continue
        sink = result.deliveries.setdefault((feed.name, t), [])
        if feed.mode == "events":
            rows = feed.build(ctx, last_t, t)
            last_t = t
            parts = [(rows, np.arange(len(rows)), "I")]
            new_records = parts
        else:
            rows = feed.build(ctx, t)
            h = rows.row_hash()
            if last is None:
                parts = [(rows, np.arange(len(rows)), "I")]
                new_records = parts
            else:
                assert last_hash is not None
                changes = _delta(last, last_hash, rows, h)
                new_records = changes[:1]
                parts = [(rows, np.arange(len(rows)), "I")] if feed.mode == "snapshot" else changes
            last, last_hash = rows, h
        new_keys = np.concatenate([src.key[sel] for src, sel, _ in new_records]) if new_records else None
        for src, sel, op in parts:
            if len(sel):
                is_new = np.isin(src.key[sel], new_keys) if op == "I" and new_keys is not None else None
                written += _write_part(
                    feed, ctx, cfg, sink, src, sel, op, t, is_new, result.truth["source_records"]
                )
    return written


def _delta(old: Rows, old_h: np.ndarray, new: Rows, new_h: np.ndarray) -> list[tuple[Rows, np.ndarray, str]]:
    if not len(old.key):
        return [(new, np.arange(len(new.key)), "I")]
    o = np.argsort(old.key, kind="stable")
    ok = old.key[o]
    pos_c = np.minimum(np.searchsorted(ok, new.key), len(ok) - 1)
    found = ok[pos_c] == new.key
    inserted = np.flatnonzero(~found)
    changed = np.flatnonzero(found & (old_h[o][pos_c] != new_h))
    gone = np.flatnonzero(~np.isin(old.key, new.key))
    return [(new, inserted, "I"), (new, changed, "U"), (old, gone, "D")]


def _write_part(
    feed: Feed,
    ctx: Ctx,
    cfg: SynthConfig,
    sink: list[pa.Table],
    rows: Rows,
    sel: np.ndarray,
    op: str,
    t: int,
    is_new: np.ndarray | None,
    truth: list[pa.Table],
) -> int:
    """Render, fault and collect one part of a delivery; records seen for the first time go to the truth
    with the faults they really carry."""
    keys = rows.key[sel]
    cols = rows.render(sel)
    rid = record_ids(cfg.seed, feed.salt, keys)
    cols[feed.id_column] = (
        rid if feed.types.get(feed.id_column) == pa.int64() else rid.astype(str).astype(object)
    )
    if feed.op_column:
        cols[feed.op_column] = np.full(len(sel), op, dtype=object)
    cols, applied = apply_faults(feed, cols, keys, cfg.faults, cfg.seed)
    dup = duplicate_mask(feed, keys, cfg.faults, cfg.seed, t)
    order = np.concatenate([np.arange(len(sel)), np.flatnonzero(dup)])
    order.sort(kind="stable")
    table = pa.table({c: _arrow(_take(cols[c], order), feed.types.get(c, pa.string())) for c in feed.columns})
    sink.append(table)
    if is_new is not None and is_new.any():
        parts = []
        for role, who in rows.persons.items():
            w = who[sel]
            m = (w >= 0) & is_new
            if not m.any():
                continue
            part = {
                "feed": np.full(int(m.sum()), feed.name, dtype=object),
                "record_id": rid[m].astype(str).astype(object),
                "role": np.full(int(m.sum()), role, dtype=object),
                "person_id": ctx.world.pid(w[m]),
            }
            for f in FAULT_FLAGS:
                part[f] = applied[f][m]
            part["duplicated"] = dup[m]
            parts.append(pa.table(part, schema=TRUTH_SCHEMAS["source_records"]))
        if parts:
            truth.append(pa.concat_tables(parts))
    return len(order)


def _take(values: np.ndarray | pa.Array, order: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, pa.Array):
        return values.take(pa.array(order))
    return np.asarray(values)[order]


def _arrow(values: np.ndarray | pa.Array, typ: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.cast(typ)
    if typ == pa.string():
        v = np.asarray(values, dtype=object)
        return pa.array(np.where(v == "", None, v), type=pa.string()) if len(v) else pa.array([], pa.string())
    return pa.array(values, type=typ, from_pandas=True)


# ---- truth -----------------------------------------------------------------------------------------

_ROLE_NAMES = {
    1: "head",
    2: "spouse",
    3: "partner",
    4: "child",
    5: "stepchild",
    6: "parent",
    7: "grandchild",
    8: "adult_child",
    9: "relative",
    10: "child_in_law",
}
_MIGRATION = np.array(["citizen", "kandas", "permanent_residence", "temporary_residence"], dtype=object)


def _write_truth(world: World, cfg: SynthConfig, truth: dict[str, list[pa.Table]]) -> None:
    p, P, F = world.persons, world.panels, world.families
    n, nf = p.n, F.n
    idx = np.arange(n)
    iins = iinlib.format_array(p.iin[:n]).astype(object)
    death = np.where(p.death[:n] == np.iinfo(np.int32).max, None, p.death[:n])
    truth["persons"].append(
        pa.table(
            {
                "person_id": world.pid(idx),
                "iin": np.where(iins == "", None, iins),
                "surname": p.surname[:n],
                "given_name": p.given[:n],
                "patronymic": np.where(p.patronymic[:n] == "", None, p.patronymic[:n]),
                "sex": np.where(p.sex[:n] == 1, "M", "F").astype(object),
                "birth_date": pa.array(p.birth[:n], pa.int32()).cast(pa.date32()),
                "death_date": pa.array(death, pa.int32()).cast(pa.date32()),
                "migration_status": _MIGRATION[p.migration[:n]],
                "mother_id": world.pid(p.mother[:n]),
                "father_id": world.pid(p.father[:n]),
                "phone": np.where(p.phone[:n] >= 0, np.char.add("+7", p.phone[:n].astype(str)), None).astype(
                    object
                ),
            },
            schema=TRUTH_SCHEMAS["persons"],
        )
    )
    periods = np.array([cfg.period(t) for t in range(cfg.months)], dtype=object)
    # membership spells: runs of the same (family, role) per person
    fam, role = P.family[:, :n], P.role[:, :n]
    change = np.ones((cfg.months, n), bool)
    change[1:] = (fam[1:] != fam[:-1]) | (role[1:] != role[:-1])
    ts, ps = np.nonzero(change)
    order = np.lexsort((ts, ps))
    ts, ps = ts[order], ps[order]
    end = np.empty(len(ts), np.int64)
    same_person_next = np.r_[ps[1:] == ps[:-1], False]
    end[:] = cfg.months - 1
    end[same_person_next] = ts[1:][same_person_next[:-1]] - 1 if len(ts) > 1 else end[same_person_next]
    f = fam[ts, ps]
    keep = f >= 0
    truth["family_spells"].append(
        pa.table(
            {
                "person_id": world.pid(ps[keep]),
                "family_id": world.fid(f[keep]),
                "role": np.array(
                    [_ROLE_NAMES.get(int(r), "member") for r in role[ts, ps][keep]], dtype=object
                ),
                "from_period": periods[ts[keep]],
                "to_period": periods[end[keep]],
            },
            schema=TRUTH_SCHEMAS["family_spells"],
        )
    )
    # families
    from familycard.geo.territory import REGIONS, build_territory

    terr = build_territory()
    first_member = np.full(nf, -1, np.int64)
    first_t = np.full(nf, -1, np.int64)
    for t in range(cfg.months - 1, -1, -1):
        f_t = fam[t]
        live = np.flatnonzero(f_t >= 0)
        first_member[f_t[live]] = live
        first_t[f_t[live]] = t
    exists = first_member >= 0
    fi = np.flatnonzero(exists)
    addr = P.address[first_t[fi], first_member[fi]]
    sett = np.where(addr >= 0, world.addresses.settlement[np.maximum(addr, 0)], 0)
    hard = F.hard[fi]
    hard_txt = np.array(
        [",".join(v for k, v in HARD_CASE_NAMES.items() if int(h) & int(k)) for h in hard.tolist()],
        dtype=object,
    )
    truth["families"].append(
        pa.table(
            {
                "family_id": world.fid(fi),
                "archetype": np.array(
                    [Archetype(int(a)).name.lower() for a in F.archetype[fi]], dtype=object
                ),
                "hard_cases": hard_txt,
                "created_period": np.where(
                    F.created_t[fi] >= 0, periods[np.maximum(F.created_t[fi], 0)], None
                ),
                "kato": terr.settlement_kato[sett].astype(object),
                "region": np.array([r.code for r in REGIONS], dtype=object)[terr.settlement_region[sett]],
                "rural": terr.settlement_rural[sett],
            },
            schema=TRUTH_SCHEMAS["families"],
        )
    )
    # level spells
    lv = world.level[:, :nf]
    lat = world.latent[:, :nf]
    chg = np.ones(lv.shape, bool)
    chg[1:] = lv[1:] != lv[:-1]
    ts, fs = np.nonzero(chg)
    order = np.lexsort((ts, fs))
    ts, fs = ts[order], fs[order]
    nxt = np.r_[fs[1:] == fs[:-1], False]
    end = np.full(len(ts), cfg.months - 1, np.int64)
    if len(ts) > 1:
        end[nxt] = ts[1:][nxt[:-1]] - 1
    keep = lv[ts, fs] >= 0
    ts, fs, end = ts[keep], fs[keep], end[keep]
    csum = np.nancumsum(np.nan_to_num(lat, nan=0.0), axis=0)
    total = csum[end, fs] - np.where(ts > 0, csum[np.maximum(ts - 1, 0), fs], 0)
    truth["family_levels"].append(
        pa.table(
            {
                "family_id": world.fid(fs),
                "from_period": periods[ts],
                "to_period": periods[end],
                "level": np.array(LEVELS, dtype=object)[lv[ts, fs]],
                "mean_latent": total / (end - ts + 1),
            },
            schema=TRUTH_SCHEMAS["family_levels"],
        )
    )
    sup = world.events.table("support")
    names = {v: k for k, v in SUPPORT_CODES.items()}
    truth["support"].append(
        pa.table(
            {
                "period": periods[sup["month"]],
                "family_id": world.fid(sup["family"]),
                "person_id": np.where(sup["person"] >= 0, world.pid(sup["person"]), None),
                "measure": np.array([names[int(m)] for m in sup["measure"]], dtype=object),
                "amount": sup["amount"],
                "true_effect": sup["effect"],
            },
            schema=TRUTH_SCHEMAS["support"],
        )
    )
