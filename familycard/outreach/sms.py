"""SMS through a transactional outbox: a message is a row written with the change that causes it,
then handed to the gateway once (``sent_at`` set in the same transaction as the hand-over is noted).

Gateways are an extension point: a deployment adds its operator's gateway by implementing
:class:`Gateway`. The embedded ``outbox-file`` gateway appends each message as a JSON line to
``DATA/outbox/sms.jsonl``, for the demo and the tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import select

from familycard.settings import Settings
from familycard.store.models import SmsMessage
from familycard.store.operational import OperationalStore


class Gateway(Protocol):
    def send(self, key: str, phone: str, text: str) -> None:
        """Hand one message to the operator; ``key`` lets the operator drop a repeated hand-over."""


class OutboxFile:
    """Appends messages to a JSON-lines file (one line per message, flushed to disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, key: str, phone: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps({"key": key, "phone": phone, "text": text}, ensure_ascii=False)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def messages(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x.strip()]


def gateway_for(settings: Settings) -> Gateway:
    return OutboxFile(settings.data / "outbox" / "sms.jsonl")


def deliver_pending(store: OperationalStore, gateway: Gateway, limit: int = 100) -> int:
    """Send the messages not yet sent (oldest first); the number sent."""
    sent = 0
    with store.transaction() as session:
        pending = session.scalars(
            select(SmsMessage).where(SmsMessage.sent_at.is_(None)).order_by(SmsMessage.id).limit(limit)
        ).all()
        for msg in pending:
            gateway.send(msg.key, msg.phone, msg.text)
            msg.sent_at = dt.datetime.now(dt.UTC)
            sent += 1
    return sent
