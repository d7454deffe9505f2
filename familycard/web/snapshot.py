"""The web's read-only view of the warehouse: the published snapshot, never a run in progress.

Each call resolves the published run once and reads its Parquet files through a fresh in-memory DuckDB
connection, so a pipeline writing the next run never blocks or changes what a request sees. Family and
person ids never leave this module unpseudonymised except through :meth:`Snapshot.identities`, which
only the purpose-bound re-identification endpoint calls.

Pseudonym maps (pseudonym → internal id) are computed once per snapshot and key version and kept as
Parquet under ``DATA/pseudonyms`` (HMAC is one-way, so resolving a pseudonym is a lookup).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from familycard.security.pseudonyms import KeyRing, UnknownPseudonym
from familycard.store.duck import table_sql
from familycard.store.warehouse import Warehouse

TABLES = (
    "families",
    "family_members",
    "family_scores",
    "family_situations",
    "person_facts",
    "persons",
    "person_links",
    "src_mobile_numbers",
    "quality",
)


_PHONES = """FROM person_links AS l
    JOIN src_mobile_numbers AS n ON CAST(n._key AS VARCHAR) = CAST(l.record_key AS VARCHAR)
    WHERE l.feed = 'mobile_numbers' AND NOT n._deleted AND n._valid_to_seq IS NULL"""
"""The mobile numbers currently registered, by linked person (add ``AND l.person_id = …``)."""


class NoSnapshot(LookupError):
    """Nothing has been published yet."""


@dataclass(frozen=True)
class FamilyRow:
    family_id: str
    level: str
    score: float
    kato: str
    rural: bool
    size: int
    adults: int
    minors: int
    targeted: bool
    uncertain_members: int


def scope_clause(column: str, territory: str) -> str:
    """SQL keeping rows whose KATO code starts with ``territory`` (digits only, checked)."""
    if territory and not territory.isdigit():
        raise ValueError(f"a territory is KATO digits, not {territory!r}")
    return f"starts_with({column}, '{territory}')" if territory else "TRUE"


class Snapshot:
    """The published snapshot of a data directory, with pseudonyms from ``keys``."""

    def __init__(self, data: Path, keys: KeyRing) -> None:
        self.data = data
        self.keys = keys
        self.warehouse = Warehouse(data)
        self._lock = threading.Lock()
        self._views: tuple[str, duckdb.DuckDBPyConnection] | None = None

    def run(self) -> str:
        run = self.warehouse.published() or self.warehouse.current()
        if run is None or "family_scores" not in self.warehouse.tables(run):
            raise NoSnapshot(f"no assessed families published in {self.data}: run `familycard run` first")
        return run

    def _catalogue(self, run: str) -> duckdb.DuckDBPyConnection:
        """One in-memory connection per published run, holding a view per table (built once)."""
        with self._lock:
            if self._views is not None and self._views[0] == run:
                return self._views[1]
            con = duckdb.connect(":memory:", config={"threads": 1})
            have = set(self.warehouse.tables(run))
            for name in TABLES:
                if name in have:
                    # (less the rows a feed history's superseded list names: no longer current versions)
                    con.execute(f"CREATE VIEW {name} AS {table_sql(self.warehouse.table_path(name, run))}")
            # An earlier run's connection is left to the garbage collector: requests may still hold its
            # cursors, which must finish on the snapshot they started with.
            self._views = (run, con)
        return con

    @contextmanager
    def connect(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A cursor over the published run's views (a cursor per call: safe across threads)."""
        run = self.run()
        cur = self._catalogue(run).cursor()
        try:
            yield cur, run
        finally:
            cur.close()

    # --- pseudonyms ---------------------------------------------------------------------------------

    def _map_path(self, run: str, kind: str, version: int) -> Path:
        return self.data / "pseudonyms" / run / f"{kind}-k{version}-{self.keys.fingerprint(version)}.parquet"

    def pseudonym_map(self, kind: str, version: int) -> Path:
        """Parquet of (id, pseudonym) for every family or person of the snapshot under key ``version``."""
        run = self.run()
        path = self._map_path(run, kind, version)
        with self._lock:
            if not path.exists():
                table = "families" if kind == "family" else "persons"
                column = "family_id" if kind == "family" else "person_id"
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = path.with_suffix(".tmp")
                schema = pa.schema([("id", pa.string()), ("pseudonym", pa.string())])
                # In batches: at national size (20 M persons) whole lists of ids would cost gigabytes.
                with pq.ParquetWriter(tmp, schema) as out:
                    for part in self.warehouse.parts(table, run):
                        for batch in pq.ParquetFile(part).iter_batches(batch_size=200_000, columns=[column]):
                            values = [str(v) for v in batch.column(0).to_pylist()]
                            pseud = [self.keys.pseudonym(kind, v, version) for v in values]
                            out.write_table(pa.table({"id": values, "pseudonym": pseud}, schema=schema))
                tmp.replace(path)
        return path

    def warm(self) -> None:
        """Build the current key's pseudonym maps now (a server calls this at start, in the background)."""
        for kind in ("family", "person"):
            self.pseudonym_map(kind, self.keys.current)

    def resolve(self, kind: str, pseudonym: str) -> str:
        """The internal id behind a pseudonym of this snapshot (:class:`UnknownPseudonym` if none)."""
        version = self.keys.parse(pseudonym, kind)
        path = self.pseudonym_map(kind, version)
        with duckdb.connect(":memory:") as con:
            got = con.execute(
                f"SELECT id FROM read_parquet('{path}') WHERE pseudonym = ?", [pseudonym]
            ).fetchall()
        if not got:
            raise UnknownPseudonym(f"no {kind} {pseudonym} in the published snapshot")
        return str(got[0][0])

    def pseudonym(self, kind: str, internal_id: str) -> str:
        return self.keys.pseudonym(kind, internal_id)

    # --- reads --------------------------------------------------------------------------------------

    _FAMILY_ROW = """SELECT s.family_id, s.level, s.score, s.kato, s.rural, f.size, f.adults, f.minors,
            s.targeted, s.uncertain_members
        FROM family_scores AS s JOIN families AS f USING (family_id)"""

    @staticmethod
    def _family_row(r: tuple[Any, ...]) -> FamilyRow:
        return FamilyRow(
            str(r[0]), str(r[1]), float(r[2]), str(r[3]), bool(r[4]),
            int(r[5]), int(r[6]), int(r[7]), bool(r[8]), int(r[9] or 0),
        )  # fmt: skip

    def families(
        self, territory: str, *, level: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[FamilyRow]]:
        """Families in ``territory`` (most deprived first): the total and one page."""
        where = scope_clause("s.kato", territory)
        params: list[Any] = []
        if level:
            where += " AND s.level = ?"
            params.append(level)
        with self.connect() as (con, _run):
            total = con.execute(f"SELECT COUNT(*) FROM family_scores AS s WHERE {where}", params).fetchone()
            # The page first, then its 50 families' sizes: joining all families first costs 6x at 6 M.
            rows = con.execute(
                f"""WITH s AS (SELECT * FROM family_scores AS s WHERE {where}
                        ORDER BY s.score DESC, s.family_id LIMIT ? OFFSET ?)
                    {self._FAMILY_ROW.replace("FROM family_scores AS s", "FROM s")}
                    ORDER BY s.score DESC, s.family_id""",
                [*params, limit, offset],
            ).fetchall()
        return int(total[0] if total else 0), [self._family_row(r) for r in rows]

    def family(self, family_id: str, territory: str) -> FamilyRow | None:
        """One family, if it lies in ``territory``."""
        with self.connect() as (con, _run):
            r = con.execute(
                f"{self._FAMILY_ROW} WHERE s.family_id = ? AND {scope_clause('s.kato', territory)}",
                [family_id],
            ).fetchone()
        return None if r is None else self._family_row(r)

    def members(self, family_id: str) -> list[dict[str, Any]]:
        """Members by role, with age and sex (no identifiers)."""
        with self.connect() as (con, _run):
            rows = con.execute(
                """SELECT CAST(m.person_id AS VARCHAR), m.role, m.uncertain, p.age, p.sex
                   FROM family_members AS m LEFT JOIN person_facts AS p
                     ON p.person_id = m.person_id AND p.family_id = m.family_id
                   WHERE m.family_id = ? ORDER BY p.age DESC NULLS LAST, m.person_id""",
                [family_id],
            ).fetchall()
        return [
            {"person_id": r[0], "role": str(r[1] or ""), "uncertain": bool(r[2]), "age": r[3], "sex": r[4]}
            for r in rows
        ]

    def situations(self, family_id: str) -> list[str]:
        with self.connect() as (con, _run):
            rows = con.execute(
                "SELECT situation FROM family_situations WHERE family_id = ? ORDER BY situation", [family_id]
            ).fetchall()
        return [str(r[0]) for r in rows]

    def levels_by_area(self, territory: str, digits: int) -> list[tuple[str, str, int]]:
        """(area code prefix of ``digits`` digits, level, families) inside ``territory``."""
        with self.connect() as (con, _run):
            rows = con.execute(
                f"""SELECT substr(kato, 1, {int(digits)}) AS area, level, COUNT(*) AS n
                    FROM family_scores WHERE {scope_clause("kato", territory)}
                    GROUP BY ALL ORDER BY area, level"""
            ).fetchall()
        return [(str(a), str(lv), int(n)) for a, lv, n in rows]

    def identities(self, family_id: str) -> list[dict[str, Any]]:
        """Who the members are: IIN, names, birth date, mobile numbers (re-identification only)."""
        with self.connect() as (con, _run):
            has_phones = "src_mobile_numbers" in {
                r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
            }
            phones = (
                f"(SELECT list(DISTINCT n.phone ORDER BY n.phone) {_PHONES} AND l.person_id = m.person_id)"
                if has_phones
                else "[]"
            )
            rows = con.execute(
                f"""SELECT CAST(m.person_id AS VARCHAR), m.role, p.iin, p.surname, p.given_name, p.patronymic,
                        CAST(p.birth_date AS VARCHAR), p.sex, {phones}
                    FROM family_members AS m LEFT JOIN persons AS p ON p.person_id = m.person_id
                    WHERE m.family_id = ? ORDER BY p.birth_date NULLS LAST, m.person_id""",
                [family_id],
            ).fetchall()
        return [
            {
                "person_id": r[0],
                "role": str(r[1] or ""),
                "iin": r[2],
                "surname": r[3],
                "given_name": r[4],
                "patronymic": r[5],
                "birth_date": r[6],
                "sex": r[7],
                "phones": list(r[8] or []),
            }
            for r in rows
        ]

    def person_by_iin(self, iin: str) -> tuple[str, str | None, str | None]:
        """(person id, family id, mobile number) of the person with ``iin``; LookupError if unknown."""
        with self.connect() as (con, _run):
            got = con.execute(
                "SELECT CAST(person_id AS VARCHAR) FROM persons WHERE iin = ?", [iin]
            ).fetchone()
            if got is None:
                raise LookupError("unknown IIN")
            person = str(got[0])
            fam = con.execute(
                "SELECT family_id FROM family_members WHERE person_id = ? LIMIT 1", [person]
            ).fetchone()
            phone = con.execute(
                f"SELECT n.phone {_PHONES} AND l.person_id = ? "
                "ORDER BY n.activation_date DESC NULLS LAST LIMIT 1",
                [person],
            ).fetchone()
        return person, (str(fam[0]) if fam else None), (str(phone[0]) if phone else None)

    def quality(self) -> list[dict[str, Any]]:
        with self.connect() as (con, _run):
            cur = con.execute("SELECT * FROM quality ORDER BY feed")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
