"""Generate a synthetic nation: simulate chunk after chunk of families, stream every agency's
deliveries to ``OUT/sources/`` and the ground truth to ``OUT/truth/``.

Memory is bounded by the chunk size, not the nation's: each chunk is simulated, written and dropped.
Worker processes simulate chunks and encode their part of every file as *fragments* (``OUT/.chunks/``);
the main process splices the fragments into the files in chunk order while the workers go on with the
next chunks. Seeds derive from (seed, chunk), so the same settings give byte-identical output whatever
the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from familycard.geo.territory import REGIONS, build_territory
from familycard.identity import iin as iinlib
from familycard.sources.formats import FeedWriter, FileFormat, encode_fragment, open_writer
from familycard.synth.config import SynthConfig
from familycard.synth.extracts import (
    Column,
    Feed,
    Rows,
    apply_faults,
    delivery_fate,
    duplicate_mask,
    fault_columns,
    format_dates,
    record_ids,
    text,
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
            ("period", pa.string()),
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
    """What one chunk contributed: its fragments, in one file, and counts."""

    chunk: int
    bundle: Path
    segments: list[tuple[str, int, int, int]]
    """(delivery ``feed_t`` or ``truth_<table>``, offset, length, rows) of every fragment, in order"""
    rows_by_feed: dict[str, int]
    families: int
    persons: int


class _Fragments:
    """A chunk's part of every file, encoded and appended to one bundle file (one file per chunk keeps
    the file system out of the way)."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle
        self.fh = open(bundle, "wb")  # noqa: SIM115 - closed in close()
        self.segments: list[tuple[str, int, int, int]] = []
        self.offset = 0

    def write(self, name: str, fmt: FileFormat, schema: pa.Schema, table: pa.Table) -> None:
        if not table.num_rows:
            return
        data, rows = encode_fragment(fmt, schema, table, name)
        self.fh.write(data)
        self.segments.append((name, self.offset, len(data), rows))
        self.offset += len(data)

    def close(self) -> None:
        self.fh.close()

    def abort(self) -> None:
        self.fh.close()
        self.bundle.unlink(missing_ok=True)


def simulate_chunk(cfg: SynthConfig, chunk: int, parts: Path) -> ChunkResult:
    """Simulate one chunk and encode its part of every delivery and of the truth into the fragment
    bundle ``parts/<chunk>.bin``."""
    n_f = min(cfg.chunk_families, cfg.families - chunk * cfg.chunk_families)
    rng = np.random.default_rng([cfg.seed, chunk])
    world = build_population(cfg, chunk, n_f, rng)
    Life(world, rng, cfg.faults.stale_address, cfg.n_chunks).run()
    ctx = Ctx(world, cfg)
    plan = delivery_plan(cfg)
    parts.mkdir(parents=True, exist_ok=True)
    sink = _Fragments(parts / f"{chunk:06d}.bin")
    rows_by_feed: dict[str, int] = {}
    try:
        for feed in FEEDS:
            rows_by_feed[feed.name] = _emit(feed, ctx, cfg, plan, sink)
        for name, table in _truth_tables(world, cfg).items():
            sink.write(f"truth_{name}", PARQUET, TRUTH_SCHEMAS[name], table)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return ChunkResult(
        chunk=chunk,
        bundle=sink.bundle,
        segments=sink.segments,
        rows_by_feed=rows_by_feed,
        families=int(world.families.n),
        persons=int(world.persons.n),
    )


def generate(
    cfg: SynthConfig,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Summary:
    """Generate the nation described by ``cfg`` into ``out`` (replacing ``sources/`` and ``truth/``).

    Chunks are simulated by ``workers`` processes (default: one per CPU, at most one per chunk) and
    spliced into the files by this process in chunk order, so the output does not depend on the number
    of workers.
    """
    out = Path(out)
    parts = out / ".chunks"
    for sub in ("sources", "truth", ".chunks"):
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
        with _chunk_results(cfg, n_workers, parts) as results:
            for res in results:
                _splice(res, writers, truth)
                for feed, rows in res.rows_by_feed.items():
                    summary.rows_by_feed[feed] += rows
                summary.families += res.families
                summary.persons += res.persons
                if progress:
                    progress(res.chunk + 1, cfg.n_chunks)
        for w in truth.values():
            w.close()
        manifest = []
        for key, d in plan.items():
            rows = writers[key].close()
            manifest.append(
                {
                    "feed": d.feed,
                    "period": d.period,
                    "kind": d.kind,
                    "file": str(d.path),
                    "rows": rows,
                    "sha256": writers[key].sha256,
                    "due": d.due_day,
                    "delivered": d.delivered,
                }
            )
    except BaseException:
        for w in [*writers.values(), *truth.values()]:
            w.abort()
        raise
    finally:
        shutil.rmtree(parts, ignore_errors=True)
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


def _splice(
    res: ChunkResult, writers: dict[tuple[str, int], FeedWriter], truth: dict[str, FeedWriter]
) -> None:
    """Append a chunk's fragments to the files, in the order they were made, and drop its bundle."""
    with open(res.bundle, "rb") as fh:
        for name, offset, length, rows in res.segments:
            if name.startswith("truth_"):
                writer = truth[name.removeprefix("truth_")]
            else:
                feed, t = name.rsplit("_", 1)
                writer = writers[(feed, int(t))]
            data = os.pread(fh.fileno(), length, offset)
            if len(data) != length:
                raise OSError(f"short read of {res.bundle} at {offset}")
            writer.splice(data, rows)
    res.bundle.unlink()


#: Chunks a worker simulates before it is replaced by a fresh process (returns fragmented memory).
_TASKS_PER_WORKER = 16


@contextmanager
def _chunk_results(cfg: SynthConfig, workers: int, parts: Path) -> Iterator[Iterator[ChunkResult]]:
    """Chunk results in chunk order. With several workers, at most two chunks per worker are under way
    or waiting to be spliced, so the fragments on disk stay bounded while no worker waits for work."""
    if workers == 1:
        yield (simulate_chunk(cfg, c, parts) for c in range(cfg.n_chunks))
        return
    ctx = mp.get_context("forkserver")
    # workers start with numpy, Arrow, the model and its per-process tables loaded
    ctx.set_forkserver_preload(["familycard.synth.warm"])

    with ctx.Pool(workers, maxtasksperchild=_TASKS_PER_WORKER) as pool:

        def ordered() -> Iterator[ChunkResult]:
            pending: deque[AsyncResult[ChunkResult]] = deque()
            submitted = 0
            while submitted < cfg.n_chunks or pending:
                while submitted < cfg.n_chunks and len(pending) < 2 * workers:
                    pending.append(pool.apply_async(simulate_chunk, (cfg, submitted, parts)))
                    submitted += 1
                yield pending.popleft().get()

        yield ordered()


def warm_caches() -> None:
    """Fill the per-process tables every chunk uses (territory, dates in every style)."""
    build_territory()
    for style in ("iso", "dmy", "dmy_slash", "ymd"):
        format_dates(np.zeros(1, np.int64), style)


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
    feed: Feed, ctx: Ctx, cfg: SynthConfig, plan: dict[tuple[str, int], Planned], sink: _Fragments
) -> int:
    """Encode one chunk's part of every delivery of ``feed``; returns rows written."""
    written = 0
    last: Rows | None = None
    last_hash: np.ndarray | None = None
    last_t = -(10**6)  # the first delivery carries the whole history
    schema = feed.schema()
    for t in range(cfg.months):
        if (feed.name, t) not in plan:
            continue
        # (rows, positions, operation, whether those rows are records seen for the first time)
        parts: list[tuple[Rows, np.ndarray, str, np.ndarray | bool]]
        if feed.mode == "events":
            rows = feed.build(ctx, last_t, t)
            last_t = t
            parts = [(rows, np.arange(len(rows)), "I", True)]
        else:
            rows = feed.build(ctx, t)
            h = rows.row_hash()
            if last is None:
                parts = [(rows, np.arange(len(rows)), "I", True)]
            else:
                assert last_hash is not None
                inserted, changed, gone = _delta(last, last_hash, rows, h)
                if feed.mode == "snapshot":
                    first_seen = np.zeros(len(rows), bool)
                    first_seen[inserted] = True
                    parts = [(rows, np.arange(len(rows)), "I", first_seen)]
                else:
                    parts = [
                        (rows, inserted, "I", True),
                        (rows, changed, "U", False),
                        (last, gone, "D", False),
                    ]
            last, last_hash = rows, h
        name = f"{feed.name}_{t:03d}"
        for src, sel, op, is_new in parts:
            if len(sel):
                table = _render_part(feed, ctx, cfg, sink, src, sel, op, t, is_new)
                sink.write(name, feed.fmt, schema, table)
                written += table.num_rows
    return written


def _is_sorted(keys: np.ndarray) -> bool:
    return len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1]))


def _delta(
    old: Rows, old_h: np.ndarray, new: Rows, new_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the rows inserted and changed in ``new`` and of those gone from ``old``."""
    if not len(old.key) or not len(new.key):
        return np.arange(len(new.key)), np.zeros(0, np.int64), np.arange(len(old.key))
    lo = min(int(old.key.min()), int(new.key.min()))
    span = max(int(old.key.max()), int(new.key.max())) - lo + 1
    if span <= 8 * (len(old.key) + len(new.key)):  # keys close together (persons'): direct lookup tables
        where_old = np.full(span, -1, np.int64)
        where_old[old.key - lo] = np.arange(len(old.key))
        pos = where_old[new.key - lo]
        found = pos >= 0
        in_new = np.zeros(span, bool)
        in_new[new.key - lo] = True
        still = in_new[old.key - lo]
    elif _is_sorted(old.key) and _is_sorted(new.key):
        pos = np.minimum(np.searchsorted(old.key, new.key), len(old.key) - 1)
        found = old.key[pos] == new.key
        still = new.key[np.minimum(np.searchsorted(new.key, old.key), len(new.key) - 1)] == old.key
    else:  # hash lookups: cheaper than sorting
        okeys, nkeys = pa.array(old.key), pa.array(new.key)
        pos = pc.fill_null(pc.index_in(nkeys, value_set=okeys), -1).to_numpy()
        found = pos >= 0
        still = pc.is_in(okeys, value_set=nkeys).to_numpy(zero_copy_only=False)
    inserted = np.flatnonzero(~found)
    changed = np.flatnonzero(found & (old_h[pos] != new_h))
    return inserted, changed, np.flatnonzero(~still)


def _render_part(
    feed: Feed,
    ctx: Ctx,
    cfg: SynthConfig,
    sink: _Fragments,
    rows: Rows,
    sel: np.ndarray,
    op: str,
    t: int,
    is_new: np.ndarray | bool,
) -> pa.Table:
    """Render and fault one part of a delivery; records seen for the first time go to the truth with
    the faults they really carry."""
    keys = rows.key[sel]
    n = len(sel)
    cols = rows.render(sel)
    rid = record_ids(cfg.seed, feed.salt, keys)
    rid_arr = pa.array(rid)
    cols[feed.id_column] = rid_arr  # cast to text by _arrow where the feed writes text
    if feed.op_column:
        cols[feed.op_column] = pa.repeat(pa.scalar(op, pa.string()), n)
    cols, applied = apply_faults(feed, cols, keys, cfg.faults, cfg.seed)
    dup = duplicate_mask(feed, keys, cfg.faults, cfg.seed, t)
    clean = fault_columns(feed)  # already text with nulls for empty values
    table = pa.table(
        {c: cols[c] if c in clean else _arrow(cols[c], feed.types.get(c, pa.string())) for c in feed.columns}
    )
    if dup.any():
        order = np.sort(np.concatenate([np.arange(n), np.flatnonzero(dup)]), kind="stable")
        table = table.take(pa.array(order))
    new = np.ones(n, bool) if is_new is True else np.zeros(n, bool) if is_new is False else is_new
    if new.any():
        # one row per person of each new record; compact in the fragment (ids as numbers, names as
        # dictionary codes): the main process casts them to the truth's text columns
        roles = list(rows.persons)
        sel_r, sel_i, codes = [], [], []
        for code, who in enumerate(rows.persons.values()):
            w = who[sel]
            m = np.flatnonzero((w >= 0) & new)
            sel_r.append(m)
            sel_i.append(w[m])
            codes.append(np.full(len(m), code, np.int8))
        r = np.concatenate(sel_r)
        if len(r):
            k = len(r)
            sink.write(
                "truth_source_records",
                PARQUET,
                TRUTH_SCHEMAS["source_records"],
                pa.table(
                    {
                        "feed": pa.DictionaryArray.from_arrays(
                            pa.array(np.zeros(k, np.int8)), pa.array([feed.name], pa.string())
                        ),
                        "record_id": pa.array(rid[r]),
                        "period": pa.repeat(pa.scalar(cfg.period(t), pa.string()), k),
                        "role": pa.DictionaryArray.from_arrays(
                            pa.array(np.concatenate(codes)), pa.array(roles, pa.string())
                        ),
                        "person_id": pa.array(ctx.world.pid(np.concatenate(sel_i))),
                        **{f: pa.array(applied[f][r]) for f in FAULT_FLAGS},
                        "duplicated": pa.array(dup[r]),
                    }
                ),
            )
    return table


def _arrow(values: Column, typ: pa.DataType) -> pa.Array:
    if typ == pa.string():
        return text(values)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.cast(typ)
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
_MIGRATION = ["citizen", "kandas", "permanent_residence", "temporary_residence"]


def _labels(labels: list[str], codes: np.ndarray) -> pa.Array:
    """``labels[code]`` for every code (one ``take``, no Python per row)."""
    return pa.array(labels, pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def _spells(change: np.ndarray, months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal state per column of a (months, n) panel, given where the state changes:
    (first month, column, last month) ordered by column, then month."""
    ts, cs = np.nonzero(change.T)[::-1]  # column-major: ordered by column, then month
    end = np.full(len(ts), months - 1, np.int64)
    if len(ts) > 1:
        same_next = cs[1:] == cs[:-1]
        end[:-1][same_next] = ts[1:][same_next] - 1
    return ts, cs, end


def _truth_tables(world: World, cfg: SynthConfig) -> dict[str, pa.Table]:
    p, P, F = world.persons, world.panels, world.families
    n, nf = p.n, F.n
    idx = np.arange(n)
    out: dict[str, pa.Table] = {}
    phone = p.phone[:n]
    out["persons"] = pa.table(
        {
            "person_id": world.pid(idx),
            "iin": text(iinlib.format_array(p.iin[:n])),
            "surname": pa.array(p.surname[:n], pa.string()),
            "given_name": pa.array(p.given[:n], pa.string()),
            "patronymic": text(p.patronymic[:n]),
            "sex": _labels(["F", "M"], p.sex[:n] == 1),
            "birth_date": pa.array(p.birth[:n], pa.int32()).cast(pa.date32()),
            "death_date": pa.array(p.death[:n], pa.int32(), mask=p.death[:n] == np.iinfo(np.int32).max).cast(
                pa.date32()
            ),
            "migration_status": _labels(_MIGRATION, p.migration[:n]),
            "mother_id": world.pid(p.mother[:n]),
            "father_id": world.pid(p.father[:n]),
            "phone": pc.binary_join_element_wise(
                pa.scalar("+7", pa.string()),
                pc.cast(pa.array(phone, mask=phone < 0), pa.string()),
                pa.scalar("", pa.string()),
            ),
        },
        schema=TRUTH_SCHEMAS["persons"],
    )
    periods = pa.array([cfg.period(t) for t in range(cfg.months)], pa.string())
    # membership spells: runs of the same (family, role) per person
    fam, role = P.family[:, :n], P.role[:, :n]
    change = np.ones((cfg.months, n), bool)
    change[1:] = (fam[1:] != fam[:-1]) | (role[1:] != role[:-1])
    ts, ps, end = _spells(change, cfg.months)
    f = fam[ts, ps]
    keep = f >= 0
    role_names = ["member", *(_ROLE_NAMES.get(r, "member") for r in range(1, 128))]
    out["family_spells"] = pa.table(
        {
            "person_id": world.pid(ps[keep]),
            "family_id": world.fid(f[keep]),
            "role": _labels(role_names, np.clip(role[ts, ps][keep], 0, 127)),
            "from_period": periods.take(pa.array(ts[keep])),
            "to_period": periods.take(pa.array(end[keep])),
        },
        schema=TRUTH_SCHEMAS["family_spells"],
    )
    # families
    terr = build_territory()
    first_member = np.full(nf, -1, np.int64)
    first_t = np.full(nf, -1, np.int64)
    for t in range(cfg.months - 1, -1, -1):
        f_t = fam[t]
        live = np.flatnonzero(f_t >= 0)
        first_member[f_t[live]] = live
        first_t[f_t[live]] = t
    fi = np.flatnonzero(first_member >= 0)
    addr = P.address[first_t[fi], first_member[fi]]
    sett = np.where(addr >= 0, world.addresses.settlement[np.maximum(addr, 0)], 0)
    hard, hard_inv = np.unique(F.hard[fi], return_inverse=True)
    hard_txt = [",".join(v for k, v in HARD_CASE_NAMES.items() if int(h) & int(k)) for h in hard.tolist()]
    out["families"] = pa.table(
        {
            "family_id": world.fid(fi),
            "archetype": _labels(
                ["", *(Archetype(a).name.lower() for a in range(1, max(Archetype) + 1))], F.archetype[fi]
            ),
            "hard_cases": _labels(hard_txt, hard_inv.reshape(-1)),
            "created_period": periods.take(
                pa.array(np.maximum(F.created_t[fi], 0), mask=F.created_t[fi] < 0)
            ),
            "kato": pa.array(terr.settlement_kato[sett].astype(object), pa.string()),
            "region": _labels([r.code for r in REGIONS], terr.settlement_region[sett]),
            "rural": terr.settlement_rural[sett],
        },
        schema=TRUTH_SCHEMAS["families"],
    )
    # level spells
    lv = world.level[:, :nf]
    lat = world.latent[:, :nf]
    chg = np.ones(lv.shape, bool)
    chg[1:] = lv[1:] != lv[:-1]
    ts, fs, end = _spells(chg, cfg.months)
    keep = lv[ts, fs] >= 0
    ts, fs, end = ts[keep], fs[keep], end[keep]
    csum = np.nancumsum(np.nan_to_num(lat, nan=0.0), axis=0)
    total = csum[end, fs] - np.where(ts > 0, csum[np.maximum(ts - 1, 0), fs], 0)
    out["family_levels"] = pa.table(
        {
            "family_id": world.fid(fs),
            "from_period": periods.take(pa.array(ts)),
            "to_period": periods.take(pa.array(end)),
            "level": _labels(list(LEVELS), lv[ts, fs]),
            "mean_latent": total / (end - ts + 1),
        },
        schema=TRUTH_SCHEMAS["family_levels"],
    )
    sup = world.events.table("support")
    names = {v: k for k, v in SUPPORT_CODES.items()}
    person = sup["person"]
    out["support"] = pa.table(
        {
            "period": periods.take(pa.array(sup["month"])),
            "family_id": world.fid(sup["family"]),
            "person_id": pa.array(world.pid(person), pa.int64(), mask=person < 0),
            "measure": _labels([names.get(k, "") for k in range(max(names) + 1)], sup["measure"]),
            "amount": sup["amount"],
            "true_effect": sup["effect"],
        },
        schema=TRUTH_SCHEMAS["support"],
    )
    return out
