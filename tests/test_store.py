"""The operational store on SQLite and on PostgreSQL: migrations, durability, the audit chain, sign-in.

Every test runs on both: SQLite in a temporary directory, and PostgreSQL (``postgres`` marker) in a
database of its own, created on the server at 127.0.0.1:5432 (or ``FAMILYCARD_TEST_PG``) and dropped
afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, event, inspect, select, text
from typer.testing import CliRunner

from familycard.cli import app as cli
from familycard.security.accounts import (
    LoginRefused,
    authenticate,
    create_account,
    find_session,
    start_session,
    utc_now,
)
from familycard.security.audit import Access, record, verify
from familycard.security.otp import check_code, issue_code
from familycard.settings import Settings
from familycard.store.models import Account, AuditEvent, Base, LoginSession, OneTimeCode, SmsMessage
from familycard.store.operational import OperationalStore, StoreError, check_durable, open_store

PG = os.environ.get("FAMILYCARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "a long test passphrase 42"


@dataclass
class Backend:
    kind: str  # sqlite | postgresql
    url: str
    data: Path  # the DATA directory (SQLite's default store lives in it)
    database: str = ""

    def settings(self, **kw: object) -> Settings:
        return Settings(data=self.data, store_url=self.url, secrets_dir=self.data / "secrets", **kw)  # type: ignore[arg-type]


def _admin(sql: str) -> None:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{data / 'operational.sqlite3'}", data)
        return
    name = f"familycard_test_{secrets.token_hex(6)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG}: {exc}")
    base = PG.rsplit("/", 1)[0]
    try:
        yield Backend(
            "postgresql", f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}", data, name
        )
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(backend: Backend) -> Iterator[OperationalStore]:
    opened = open_store(backend.url)
    yield opened
    opened.close()


def access(n: int, actor: str = "worker") -> Access:
    return Access(
        actor=actor,
        role="social_worker",
        territory="2710",
        purpose="case_work",
        action="family.view",
        object_type="family",
        object_id=f"fam-1-{n:020d}",
        subject_family=f"F{n}",
        detail={"n": n},
    )


def append(store: OperationalStore, n: int, actor: str = "worker") -> None:
    with store.transaction() as db:
        record(db, access(n, actor))


# --- schema and durability -------------------------------------------------------------------------


def test_migrates_to_head_from_empty(backend: Backend) -> None:
    with pytest.raises(StoreError, match="store upgrade"):
        open_store(backend.url, upgrade=False)  # an empty database is not at the code's migration
    store = open_store(backend.url)
    try:
        assert store.revision() == store.head() is not None
        assert set(inspect(store.engine).get_table_names()) - {"alembic_version"} == set(Base.metadata.tables)
        for name, table in Base.metadata.tables.items():
            columns = {c["name"] for c in inspect(store.engine).get_columns(name)}
            assert columns == set(table.columns.keys()), name
        with store.transaction() as db:
            head = db.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        assert tuple(head) == (0, "0" * 64)
        store.upgrade()  # again: nothing to do
        assert verify(store).ok and verify(store).rows == 0
    finally:
        store.close()
    reopened = open_store(backend.url, upgrade=False)  # at head now: opens without migrating
    reopened.close()


def test_durability_settings(backend: Backend, store: OperationalStore) -> None:
    got = check_durable(store.engine)
    if backend.kind == "sqlite":
        assert got["journal_mode"] == "wal" and got["synchronous"] == "2" and got["foreign_keys"] == "1"
        with store.engine.connect() as conn:  # every pooled connection, not only the first
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() == "wal"
        fresh = create_engine(f"sqlite:///{backend.data / 'plain.sqlite3'}")  # no WAL: refused
        relaxed = create_engine(backend.url)  # the store's file, but a connection with synchronous=NORMAL
        event.listen(relaxed, "connect", lambda c, _r: c.execute("PRAGMA synchronous=NORMAL"))
        try:
            with pytest.raises(StoreError, match="journal_mode"):
                check_durable(fresh)
            with pytest.raises(StoreError, match="synchronous is '1', must be '2'"):
                check_durable(relaxed)
        finally:
            fresh.dispose()
            relaxed.dispose()
        return
    assert got["fsync"] == "on" and got["full_page_writes"] == "on" and got["synchronous_commit"] != "off"
    store.close()
    _admin(f'ALTER DATABASE "{backend.database}" SET synchronous_commit = off')
    with pytest.raises(StoreError, match="synchronous_commit"):
        open_store(backend.url)
    _admin(f'ALTER DATABASE "{backend.database}" SET synchronous_commit = local')  # durable on this server
    open_store(backend.url).close()


# --- the audit chain -------------------------------------------------------------------------------


def test_audit_chain_appends_and_verifies(store: OperationalStore) -> None:
    for n in range(1, 8):
        append(store, n)
    with store.transaction() as db:
        seqs = record(db, access(8), subjects=[("F8", "P1"), ("F8", "P2")])
    assert seqs == [8, 9, 10]
    result = verify(store)
    assert result.ok and result.rows == 10
    assert verify(store, batch=3).rows == 10  # the walk in batches sees the same chain
    with store.transaction() as db:
        rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [r.seq for r in rows] == list(range(1, 11))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


def test_a_failed_unit_of_work_leaves_no_audit_row(store: OperationalStore) -> None:
    append(store, 1)
    with pytest.raises(RuntimeError), store.transaction() as db:
        record(db, access(2))
        raise RuntimeError("the request failed after the row was written")
    append(store, 3)
    result = verify(store)
    assert result.ok and result.rows == 2


def cli_verify(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    if backend.kind == "sqlite":
        monkeypatch.delenv("FAMILYCARD_STORE_URL", raising=False)  # the default: DATA/operational.sqlite3
    else:
        monkeypatch.setenv("FAMILYCARD_STORE_URL", backend.url)
    monkeypatch.delenv("FAMILYCARD_DATA", raising=False)
    result = CliRunner().invoke(cli, ["audit", "verify", "--data", str(backend.data)])
    out = result.output + (
        getattr(result, "stderr", "") if result.output != getattr(result, "stderr", "") else ""
    )
    return result.exit_code, out


TAMPERING = {
    "edit": ("UPDATE audit_log SET purpose = 'statistics' WHERE seq = 4", 4),
    "edit-detail": ("UPDATE audit_log SET detail = '{\"n\":0}' WHERE seq = 2", 2),
    "delete": ("DELETE FROM audit_log WHERE seq = 3", 3),
    "truncate": ("DELETE FROM audit_log WHERE seq >= 5", 5),
    "reorder": ("UPDATE audit_log SET seq = seq + 100 WHERE seq = 6", 6),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_cli_names_the_tampered_row(
    backend: Backend, store: OperationalStore, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    for n in range(1, 7):
        append(store, n)
    code, out = cli_verify(backend, monkeypatch)
    assert code == 0 and "6 rows" in out, out
    sql, bad = TAMPERING[how]
    with store.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    result = verify(store)
    assert not result.ok and result.first_bad == bad, result
    code, out = cli_verify(backend, monkeypatch)
    assert code == 1, out
    named = re.findall(r"broken at row (\d+)", out)
    assert named == [str(bad)], out


def test_concurrent_appends_keep_the_chain(backend: Backend, store: OperationalStore) -> None:
    errors: list[BaseException] = []
    per_thread = 20

    def work(actor: str) -> None:
        try:
            for n in range(per_thread):
                append(store, n, actor)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    result = verify(store)
    assert result.ok and result.rows == 2 * per_thread, result
    with store.transaction() as db:
        actors = [r.actor for r in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actors.count("t0") == actors.count("t1") == per_thread


# --- sign-in ---------------------------------------------------------------------------------------


def attempt(store: OperationalStore, settings: Settings, username: str, password: str, client: str) -> str:
    """One sign-in as the login form makes it (the attempt is kept even when refused)."""
    with store.transaction() as db:
        try:
            authenticate(db, settings, username, password, client)
        except LoginRefused as refused:
            return refused.reason
    return "ok"


def add_worker(store: OperationalStore, username: str = "worker") -> int:
    with store.transaction() as db:
        return create_account(
            db, username=username, display_name="W", role="social_worker", territory="2710", password=PASSWORD
        ).id


def test_account_locks_after_failures(backend: Backend, store: OperationalStore) -> None:
    settings = backend.settings(login_max_failures=3, login_lock_minutes=15)
    add_worker(store)
    assert attempt(store, settings, "worker", PASSWORD, "c0") == "ok"
    assert [attempt(store, settings, "worker", "wrong password!", f"c{i}") for i in (1, 2, 3)] == [
        "invalid",
        "invalid",
        "locked",
    ]
    assert attempt(store, settings, "worker", PASSWORD, "c4") == "locked"  # even the right password
    assert attempt(store, settings, "nobody", PASSWORD, "c5") == "invalid"  # same answer shape
    with store.transaction() as db:
        account = db.scalar(select(Account).where(Account.username == "worker"))
        assert account is not None and account.locked_until is not None
        account.locked_until = utc_now() - dt.timedelta(seconds=1)
    assert attempt(store, settings, "worker", PASSWORD, "c6") == "ok"
    with store.transaction() as db:
        account = db.scalar(select(Account).where(Account.username == "worker"))
        assert account is not None and account.failed_logins == 0 and account.locked_until is None


def test_login_rate_limit_per_client(backend: Backend, store: OperationalStore) -> None:
    settings = backend.settings(login_rate_per_minute=4, login_max_failures=100)
    add_worker(store)
    got = [attempt(store, settings, f"guess{i}", "wrong password!", "10.0.0.1") for i in range(4)]
    assert got == ["invalid"] * 4
    assert attempt(store, settings, "worker", PASSWORD, "10.0.0.1") == "rate"  # even the right password
    assert attempt(store, settings, "worker", PASSWORD, "10.0.0.2") == "ok"  # another client is not held
    with store.engine.begin() as conn:  # a minute later
        conn.execute(text("UPDATE login_attempts SET at = :at"), {"at": utc_now() - dt.timedelta(minutes=2)})
    assert attempt(store, settings, "worker", PASSWORD, "10.0.0.1") == "ok"


def test_session_idle_and_absolute_expiry(backend: Backend, store: OperationalStore) -> None:
    settings = backend.settings(session_minutes=30, session_max_hours=10)
    account = add_worker(store)
    with store.transaction() as db:
        live, idle, old = (start_session(db, settings, account_id=account) for _ in range(3))
    with store.transaction() as db:
        for s in (live, idle, old):
            assert find_session(db, settings, s.token) is not None

    def age(token: str, **delta: float) -> None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with store.transaction() as db:
            row = db.get(LoginSession, digest)
            assert row is not None
            if "idle" in delta:
                row.last_seen = utc_now() - dt.timedelta(minutes=delta["idle"])
            if "expired" in delta:
                row.expires_at = utc_now() - dt.timedelta(minutes=delta["expired"])

    age(live.token, idle=29)
    age(idle.token, idle=31)
    age(old.token, expired=1)
    with store.transaction() as db:
        found = find_session(db, settings, live.token)
        assert found is not None and found.csrf == live.csrf
        assert find_session(db, settings, idle.token) is None
        assert find_session(db, settings, old.token) is None
        assert find_session(db, settings, "not a token") is None
    with store.transaction() as db:  # expired sessions are gone, the idle clock of the live one restarted
        assert db.scalar(select(LoginSession).where(LoginSession.csrf == idle.csrf)) is None
        assert find_session(db, settings, live.token) is not None
        account_row = db.get(Account, account)
        assert account_row is not None
        account_row.active = False
    with store.transaction() as db:
        assert find_session(db, settings, live.token) is None  # a deactivated account's session ends


def test_one_time_codes(backend: Backend, store: OperationalStore) -> None:
    settings = backend.settings(otp_minutes=5, otp_max_attempts=3, otp_per_hour=4)
    key = b"k" * 32

    def issue(person: str) -> str:
        with store.transaction() as db:
            issue_code(db, settings, key, person, "+77010000000", "code {code}")
        with store.transaction() as db:
            sms = db.scalars(select(SmsMessage).order_by(SmsMessage.id.desc())).first()
            assert sms is not None
            return sms.text.split()[-1]

    def check(person: str, code: str) -> bool:
        with store.transaction() as db:
            return check_code(db, settings, key, person, code)

    code = issue("P1")
    with store.transaction() as db:
        stored = db.scalars(select(OneTimeCode)).one()
        assert code not in stored.code_hash  # only a keyed hash is kept
    assert check("P1", code) and not check("P1", code)  # works once

    code = issue("P2")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert [check("P2", wrong) for _ in range(3)] == [False, False, False]
    assert not check("P2", code)  # the attempts are spent: the right code no longer works

    code = issue("P3")
    with store.transaction() as db:
        otp = db.scalars(select(OneTimeCode).where(OneTimeCode.person_id == "P3")).one()
        otp.expires_at = utc_now() - dt.timedelta(seconds=1)
    assert not check("P3", code)  # expired

    for _ in range(4):
        issue("P4")
    with pytest.raises(LoginRefused), store.transaction() as db:
        issue_code(db, settings, key, "P4", "+77010000000", "code {code}")
