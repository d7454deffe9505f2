"""The family stage: ``families``, ``family_members`` and ``family_changes`` as of a period.

It reads the identity contract (``persons``, ``person_links``) and the feeds' histories (``src_<feed>``)
and nothing else; every step is SQL on the chosen engine (:mod:`familycard.store.engine`), so DuckDB and
Spark build the same families. ``docs/methodology/families.md`` explains the rules.

Where the identity stage numbered its persons (``person_no``, the person id as a number in the same
order), the steps up to the households join and group by the numbers, cheaper than text on the hundred
million links of a nation; the members are then given their text ids once, and the ids, the changes and
the tables written use the text ids alone.

Tables written:

* ``families``: ``family_id``, ``head_person_id``, ``size``, ``adults``, ``minors``, ``kato``,
  ``confidence``, ``uncertain_members``, ``basis`` (how its members were placed), ``as_of``;
* ``family_members``: ``family_id``, ``person_id``, ``role``, ``iin`` (where known), ``uncertain``,
  ``basis``, ``confidence``, ``as_of``;
* ``family_changes`` (appended to, run after run): ``run``, ``as_of``, ``previous_as_of``, ``family_id``,
  ``change``, ``related_family_id``, ``person_id`` (see :mod:`familycard.families.ids`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from familycard.families import evidence, households, ids, members
from familycard.families.asof import check_period, period_end
from familycard.store.engine import Engine
from familycard.store.scope import stage_scope
from familycard.store.warehouse import Run, Warehouse

FEEDS_READ = (
    "civil_registry",
    "civil_acts",
    "address_registry",
    "migration",
    "health",
    "real_estate",
    "housing_utilities",
    "social_payments",
    "vehicles",
    "land_livestock",
)
"""The feeds whose histories the stage reads."""
INPUTS = ("persons", "person_links", *(f"src_{f}" for f in FEEDS_READ))
OUTPUTS = ("families", "family_members", "family_changes")

DEFAULT_ID_KEY = "familycard-family-id-v1"
ID_KEY_ENV = "FAMILYCARD_FAMILY_ID_KEY"
"""Environment variable holding the key of family ids (kept outside the warehouse); without it, a
fixed default key is used (set one in production)."""

_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR"}


@dataclass
class FamilyReport:
    """What one family build did."""

    run: str
    as_of: str
    families: int
    members: int
    previous_as_of: str | None
    changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def run_families(
    warehouse: Warehouse,
    engine: Engine,
    *,
    as_of: str | None = None,
    run: Run | None = None,
    id_key: str | None = None,
) -> FamilyReport:
    """Build the families as of ``as_of`` (a period ``YYYY-MM``; default: the address register's latest
    delivery) and write ``families``, ``family_members`` and ``family_changes``.

    With ``run`` (a run in progress, e.g. the pipeline's, after identity wrote ``persons`` and
    ``person_links`` into it) the tables are written into that run, inputs are read from it where it
    has them and from its base otherwise, and nothing is committed. Without ``run`` the stage starts a
    run on the current snapshot, carries every other table over and commits. Changes are measured
    against the families of the run's base snapshot. ``id_key`` keys the family ids (default: the
    ``FAMILYCARD_FAMILY_ID_KEY`` environment variable, else the default key).
    """
    t0 = time.perf_counter()
    key = id_key or os.environ.get(ID_KEY_ENV) or DEFAULT_ID_KEY
    with stage_scope(warehouse, engine, run, "families") as scope:
        for name in INPUTS:
            engine.register_parquet(name, scope.run.input_path(name))
            scope.views.append(name)
        numbered = _numbered(engine)
        if numbered:
            _number_persons(engine, scope.run.input_path("persons"), scope.views)
        period = check_period(as_of) if as_of else _latest(engine)
        report = _build(warehouse, engine, scope.run, period, key, numbered, scope.scratch, scope.views)
        scope.finish({"stage": "families", "engine": engine.name, "as_of": period})
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def register_positions(engine: Engine) -> None:
    """Register ``fam_positions``: the letter positions 1 … n of the longest surname in ``fam_migrant``,
    each of which ``fam_surname_typos`` deletes in turn."""
    longest = engine.fetch("SELECT MAX(LENGTH(surname)) AS n FROM fam_migrant").column("n")[0].as_py()
    positions = pa.array(range(1, (longest or 0) + 1), pa.int64())
    engine.register_arrow("fam_positions", pa.table({"i": positions}))


def _latest(engine: Engine) -> str:
    period = engine.fetch("SELECT MAX(_period) AS p FROM src_address_registry").column("p")[0].as_py()
    if period is None:
        raise ValueError("the address register has no delivery yet: there is nothing to build families from")
    return str(period)


def _build(
    warehouse: Warehouse,
    engine: Engine,
    run: Run,
    period: str,
    key: str,
    numbered: bool,
    scratch: Path,
    views: list[str],
) -> FamilyReport:
    end = period_end(period)

    def make(name: str, sql: str, order_by: Sequence[str] = ()) -> int:
        views.append(name)
        return engine.materialize(name, sql, scratch / name, order_by=order_by)

    # (written out, not a view over ``person_links``: at national size the civil acts' three joins to a
    # view of all the links did not fit DuckDB's 8 GB, while they do on this table)
    make("fam_links", evidence.links_sql(FEEDS_READ, "person_no" if numbered else "person_id"))
    for name, build in evidence.STEPS:
        make(name, build(period, end))
    # names compared across scripts in Python (a small table: unregistered migrants and their namesakes)
    fathers = evidence.fathers_by_patronymic(engine.fetch(evidence.FATHER_CANDIDATES_SQL))
    engine.register_arrow("fam_patronymic", fathers)
    views.append("fam_patronymic")
    make("fam_separated", households.SEPARATED_SQL)
    make("fam_apart", households.APART_SQL)
    make("fam_unions", households.UNIONS_SQL)
    make("fam_parent_reg", households.PARENT_REG_SQL)
    make("fam_elsewhere", households.ELSEWHERE_SQL)
    make("fam_assign_0", households.BASE_SQL)
    register_positions(engine)
    views.append("fam_positions")
    make("fam_surname_typos", households.SURNAME_TYPOS_SQL)
    make("fam_candidates", households.CANDIDATES_SQL)
    for r in range(1, households.ATTACH_ROUNDS + 1):
        make(f"fam_kept_{r}", households.attach_sql(r))
    make("fam_assign", households.final_sql())
    make("fam_hh", members.HOUSEHOLD_SQL)
    make("fam_rel", members.RELATIONS_SQL)
    make("fam_heads", members.HEADS_SQL)
    make("fam_members_grp", members.MEMBERS_SQL)
    make("fam_households", members.HOUSEHOLDS_SQL)

    held, people, dead, head = "fam_members_grp", "fam_people", "fam_dead", "h.head"
    head_join = ""
    if numbered:
        # the members with their text ids, once; from here on every step reads those
        make("fam_members_ids", _TEXT_MEMBERS_SQL)
        held, people, dead, head = "fam_members_ids", "fam_person_ids", "fam_dead_ids", "t.person_id"
        head_join = "JOIN fam_person_ids AS t ON t.person_no = h.head"
        views.append("fam_dead_ids")
        engine.register_query(
            "fam_dead_ids",
            "SELECT t.person_id FROM fam_dead AS d JOIN fam_person_ids AS t ON t.person_no = d.person_id",
        )
    person_type = "VARCHAR" if numbered else _person_type(engine)
    prev_period = _previous(warehouse, engine, run, person_type, views)
    make("fam_provisional", ids.provisional_sql(key, held))
    make("fam_ids", ids.ids_sql(period, held))

    n_families = engine.materialize(
        "families",
        f"""SELECT i.family_id, {head} AS head_person_id, h.size, h.adults, h.minors, h.kato, h.confidence,
                h.uncertain_members, h.basis, '{period}' AS as_of
            FROM fam_households AS h JOIN fam_ids AS i ON i.grp = h.grp {head_join}""",
        run.new_table("families"),
        order_by=["family_id"],
    )
    views.append("families")
    n_members = engine.materialize(
        "family_members",
        f"""SELECT i.family_id, m.person_id, m.role, m.iin, m.uncertain, m.how AS basis, m.confidence,
                '{period}' AS as_of
            FROM {held} AS m JOIN fam_ids AS i ON i.grp = m.grp""",
        run.new_table("family_members"),
        order_by=["family_id", "CAST(person_id AS VARCHAR)"],
    )
    views.append("family_members")
    counts: dict[str, int] = {}
    tables = {"members": held, "people": people, "dead": dead}
    if prev_period is None:
        sql = ids.changes_sql(period, "", end, run.id, person_type, **tables) + " WHERE 1 = 0"
    else:
        sql = ids.changes_sql(period, prev_period, period_end(prev_period), run.id, person_type, **tables)
    n_changes = make("fam_changes", sql, order_by=["family_id", "change", "CAST(person_id AS VARCHAR)"])
    if n_changes:
        got = engine.fetch("SELECT change, COUNT(*) AS n FROM fam_changes GROUP BY change ORDER BY change")
        counts = dict(zip(got.column("change").to_pylist(), got.column("n").to_pylist(), strict=True))
    _write_changes(warehouse, run, scratch / "fam_changes", n_changes)
    return FamilyReport(
        run=run.id,
        as_of=period,
        families=n_families,
        members=n_members,
        previous_as_of=prev_period,
        changes=counts,
    )


_TEXT_MEMBERS_SQL = """
    SELECT m.grp, t.person_id, m.iin, m.role, m.how, m.uncertain, m.confidence
    FROM fam_members_grp AS m JOIN fam_person_ids AS t ON t.person_no = m.person_id
"""
"""``fam_members_ids``: the households' members (``fam_members_grp``) with their text person ids."""


def _numbered(engine: Engine) -> bool:
    """Whether the identity stage numbered the persons (``person_no`` in ``persons`` and their links)."""
    tables = ("persons", "person_links")
    return all("person_no" in engine.fetch(f"SELECT * FROM {t} LIMIT 0").column_names for t in tables)


def _number_persons(engine: Engine, persons: Path, views: list[str]) -> None:
    """Make ``persons`` a view with the numbers as ``person_id`` and register ``fam_person_ids``
    (``person_no``, ``person_id``), which gives the text ids back."""
    views += ["fam_persons_in", "fam_person_ids"]
    engine.register_parquet("fam_persons_in", persons)
    engine.register_query(
        "persons",
        """SELECT person_no AS person_id, iin, surname, given_name, patronymic, birth_date, sex
           FROM fam_persons_in""",
    )
    engine.register_query("fam_person_ids", "SELECT person_no, person_id, birth_date FROM fam_persons_in")


def _person_type(engine: Engine) -> str:
    schema = engine.fetch("SELECT person_id FROM persons LIMIT 0").schema
    kind = schema.field("person_id").type
    if kind not in _TYPES:
        raise TypeError(f"persons.person_id must be an integer or text, not {kind}")
    return _TYPES[kind]


def _previous(
    warehouse: Warehouse, engine: Engine, run: Run, person_type: str, views: list[str]
) -> str | None:
    """Register the base run's members as ``prev_members``; return their as-of (None when there are none)."""
    views.append("prev_members")
    base = run.base
    arrow_type = pa.int64() if person_type == "BIGINT" else pa.string()
    if base is not None and "family_members" in warehouse.tables(base):
        engine.register_parquet("prev_members", warehouse.table_path("family_members", base))
        got = engine.fetch("SELECT person_id, as_of FROM prev_members ORDER BY as_of DESC LIMIT 1")
        # person ids of another kind (the identity stage changed its scheme) cannot be followed
        if got.num_rows and got.schema.field("person_id").type == arrow_type:
            return str(got.column("as_of")[0].as_py())
    empty = pa.table({"family_id": pa.array([], pa.string()), "person_id": pa.array([], arrow_type)})
    engine.register_arrow("prev_members", empty)
    return None


def _write_changes(warehouse: Warehouse, run: Run, written: Path, n: int) -> None:
    """Append this run's changes to ``family_changes`` (carried from the base run when there are none)."""
    base_has = run.base is not None and "family_changes" in warehouse.tables(run.base)
    parts = sorted(p for p in written.glob("*.parquet") if not p.name.startswith((".", "_")))
    if base_has and n == 0:
        run.carry("family_changes")
        return
    if not base_has:
        target = run.new_table("family_changes")
        for i, part in enumerate(parts):
            shutil.move(part, target / f"part-{run.id}-{i:04d}.parquet")
        return
    for part in parts:
        shutil.move(part, run.append("family_changes"))
