"""Citizens' one-time sign-in codes (the demo's stand-in for the state identity provider).

A six-digit code is sent to the person's registered mobile number through the SMS outbox. Only an
HMAC of it is stored; it lasts ``otp_minutes``, allows ``otp_max_attempts`` tries, and a person gets at
most ``otp_per_hour`` codes an hour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from familycard.security.accounts import LoginRefused, _aware, utc_now
from familycard.settings import Settings
from familycard.store.models import OneTimeCode, SmsMessage


def _digest(key: bytes, person_id: str, code: str) -> str:
    return hmac.new(key, f"{person_id}|{code}".encode(), hashlib.sha256).hexdigest()


def issue_code(
    session: Session, settings: Settings, key: bytes, person_id: str, phone: str, text: str
) -> None:
    """Store a new code for ``person_id`` and put its SMS (``text`` with ``{code}``) in the outbox."""
    now = utc_now()
    recent = session.scalar(
        select(func.count()).where(
            OneTimeCode.person_id == person_id, OneTimeCode.created_at >= now - dt.timedelta(hours=1)
        )
    )
    if int(recent or 0) >= settings.otp_per_hour:
        raise LoginRefused("rate")
    code = f"{secrets.randbelow(10**6):06d}"
    otp = OneTimeCode(
        person_id=person_id,
        code_hash=_digest(key, person_id, code),
        created_at=now,
        expires_at=now + dt.timedelta(minutes=settings.otp_minutes),
        attempts=0,
        used=False,
    )
    session.add(otp)
    session.flush()
    session.add(SmsMessage(key=f"otp:{otp.id}", phone=phone, text=text.format(code=code), created_at=now))


def check_code(session: Session, settings: Settings, key: bytes, person_id: str, code: str) -> bool:
    """True (and the code spent) when ``code`` is the person's live code."""
    now = utc_now()
    otp = session.scalars(
        select(OneTimeCode)
        .where(OneTimeCode.person_id == person_id, OneTimeCode.used.is_(False))
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    ).first()
    if otp is None or _aware(otp.expires_at) <= now or otp.attempts >= settings.otp_max_attempts:
        return False
    otp.attempts += 1
    if hmac.compare_digest(otp.code_hash, _digest(key, person_id, code.strip())):
        otp.used = True
        return True
    return False
