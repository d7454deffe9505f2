"""The operational store: SQLAlchemy over SQLite (embedded default) or PostgreSQL (production).

:func:`open_store` connects, brings the schema to the latest migration and checks that the database
keeps what it commits: SQLite runs in WAL mode with ``synchronous=FULL`` and foreign keys on, every
transaction taking the write lock at its start (``BEGIN IMMEDIATE``, so two writers queue rather than
fail half-way); PostgreSQL must have ``fsync``, ``full_page_writes`` and a synchronous commit, or the
platform refuses to start and says which setting is wrong.

Services never commit: the request (or the command) that does a unit of work opens one transaction
with :meth:`OperationalStore.transaction`, and the audit row of what it read or changed is written in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    """The operational store cannot be used as configured (the message says why and what to change)."""


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def check_durable(engine: Engine) -> dict[str, str]:
    """The settings that make commits durable, read from the server; :class:`StoreError` if unsafe."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            got = {
                "journal_mode": str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower(),
                "synchronous": str(conn.exec_driver_sql("PRAGMA synchronous").scalar()),
                "foreign_keys": str(conn.exec_driver_sql("PRAGMA foreign_keys").scalar()),
            }
            want = {"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"}
        elif engine.dialect.name == "postgresql":
            got = {
                name: str(conn.exec_driver_sql(f"SHOW {name}").scalar())
                for name in ("fsync", "full_page_writes", "synchronous_commit")
            }
            want = {"fsync": "on", "full_page_writes": "on"}
            if got["synchronous_commit"] == "off":
                want["synchronous_commit"] = "on"
        else:
            raise StoreError(
                f"unsupported operational store {engine.dialect.name!r}: use SQLite or PostgreSQL"
            )
    wrong = [f"{k} is {got[k]!r}, must be {v!r}" for k, v in want.items() if got[k] != v]
    if wrong:
        raise StoreError(f"the operational store at {engine.url!r} would lose commits: " + "; ".join(wrong))
    return got


class OperationalStore:
    """An open operational store: its engine and a way to run one unit of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        return ScriptDirectory.from_config(_alembic_config(self.engine)).get_current_head()

    def upgrade(self) -> None:
        """Apply every migration not yet applied (each in its own transaction)."""
        command.upgrade(_alembic_config(self.engine), "head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed if the block ends normally, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> OperationalStore:
    """Connect to the store at ``url``, check durability and (by default) migrate it to the latest schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _sqlite_events(engine)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True)
    else:
        raise StoreError(f"unsupported operational store URL {url!r}: use sqlite:/// or postgresql://")
    try:
        check_durable(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except StoreError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        raise StoreError(f"cannot open the operational store {parsed!r}: {exc}") from exc
    store = OperationalStore(engine)
    if upgrade:
        store.upgrade()
    elif store.revision() != store.head():
        raise StoreError(
            f"the operational store is at migration {store.revision()!r}, the code needs {store.head()!r}: "
            "run `familycard store upgrade`"
        )
    return store
