"""Staff accounts, sign-in with lock-out and rate limits, and sessions.

Sessions are server-side: the cookie carries a random 256-bit token and the store keeps only its
SHA-256, so a copy of the store cannot be replayed as a cookie. A session ends after
``session_minutes`` idle or ``session_max_hours`` in all, and at sign-out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from familycard.security.passwords import check_strength, hash_password, needs_rehash, verify_password
from familycard.security.policy import PolicyError, load_policy
from familycard.settings import Settings
from familycard.store.models import Account, LoginAttempt, LoginSession


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _has_control(text: str) -> bool:
    """True when ``text`` holds a control character (a NUL cannot even be stored in PostgreSQL)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def _printable(text: str) -> str:
    """``text`` without control characters, as a sign-in attempt records the name that was typed."""
    return "".join(ch for ch in text if not _has_control(ch))


class LoginRefused(Exception):
    """Sign-in refused; ``reason`` is one of ``invalid``, ``locked``, ``rate``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def create_account(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: str,
    territory: str = "",
    measure: str | None = None,
    password: str | None = None,
    oidc_subject: str | None = None,
) -> Account:
    """A new active account; refuses an unknown role, a territory the role cannot have, a weak password."""
    policy = load_policy()
    policy.check_territory(role, territory)
    if policy.role(role).needs_measure and not measure:
        raise PolicyError(f"a {role} account needs the support measure it decides on")
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"a user name is letters, digits, '.', '-' or '_', not {username!r}")
    if _has_control(display_name) or _has_control(measure or ""):
        raise ValueError("a display name or a measure cannot hold control characters")
    if session.scalar(select(Account).where(Account.username == username)) is not None:
        raise ValueError(f"the user name {username!r} is taken")
    if password is not None:
        check_strength(password, username)
    account = Account(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password) if password is not None else None,
        oidc_subject=oidc_subject,
        role=role,
        territory=territory,
        measure=measure,
        active=True,
        failed_logins=0,
        created_at=utc_now(),
    )
    session.add(account)
    session.flush()
    return account


def _rate_limited(session: Session, settings: Settings, client: str, kind: str) -> bool:
    since = utc_now() - dt.timedelta(minutes=1)
    recent = session.scalar(
        select(func.count()).where(
            LoginAttempt.client == client, LoginAttempt.kind == kind, LoginAttempt.at >= since
        )
    )
    return int(recent or 0) >= settings.login_rate_per_minute


def authenticate(session: Session, settings: Settings, username: str, password: str, client: str) -> Account:
    """The account whose password this is; :class:`LoginRefused` otherwise (every attempt recorded)."""
    if _rate_limited(session, settings, client, "staff"):
        session.add(
            LoginAttempt(
                at=utc_now(), client=client, username=_printable(username)[:64], kind="staff", success=False
            )
        )
        raise LoginRefused("rate")
    # A name with a control character is nobody's (and PostgreSQL refuses a NUL even in a query).
    account = (
        None
        if _has_control(username)
        else session.scalar(select(Account).where(Account.username == username))
    )
    now = utc_now()
    ok = verify_password(account.password_hash if account else None, password)
    session.add(
        LoginAttempt(at=now, client=client, username=_printable(username)[:64], kind="staff", success=ok)
    )
    if account is None or not account.active:
        raise LoginRefused("invalid")
    if account.locked_until is not None and _aware(account.locked_until) > now:
        raise LoginRefused("locked")
    if not ok:
        account.failed_logins += 1
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = now + dt.timedelta(minutes=settings.login_lock_minutes)
            account.failed_logins = 0
            raise LoginRefused("locked")
        raise LoginRefused("invalid")
    account.failed_logins = 0
    account.locked_until = None
    assert account.password_hash is not None
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def note_citizen_attempt(session: Session, settings: Settings, client: str, success: bool) -> None:
    """Record a citizen sign-in step; :class:`LoginRefused` ``rate`` when the client is too busy."""
    if _rate_limited(session, settings, client, "citizen"):
        raise LoginRefused("rate")
    session.add(LoginAttempt(at=utc_now(), client=client, username="", kind="citizen", success=success))


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, settings: Settings, *, account_id: int | None = None, person_id: str | None = None
) -> NewSession:
    """A new session for a staff account or a citizen (a person id)."""
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utc_now()
    session.add(
        LoginSession(
            token_hash=_digest(token),
            kind="staff" if account_id is not None else "citizen",
            account_id=account_id,
            person_id=person_id,
            csrf=csrf,
            created_at=now,
            last_seen=now,
            expires_at=now + dt.timedelta(hours=settings.session_max_hours),
        )
    )
    # Sessions of the past go when new ones start: the table holds only live ones.
    session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    return NewSession(token, csrf)


def find_session(session: Session, settings: Settings, token: str | None) -> LoginSession | None:
    """The live session of ``token`` (its idle clock restarted), or None."""
    if not token or len(token) > 100:
        return None
    found = session.get(LoginSession, _digest(token))
    if found is None:
        return None
    now = utc_now()
    idle_end = _aware(found.last_seen) + dt.timedelta(minutes=settings.session_minutes)
    if _aware(found.expires_at) <= now or idle_end <= now:
        session.delete(found)
        return None
    if found.account_id is not None:
        account = session.get(Account, found.account_id)
        if account is None or not account.active:
            session.delete(found)
            return None
    found.last_seen = now
    return found


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(token)))
