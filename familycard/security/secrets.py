"""Secrets kept in the deployment's secrets directory (mode 0700; files 0600), never in the repository."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def named_secret(secrets_dir: Path, name: str, nbytes: int = 32) -> bytes:
    """The secret ``name`` (created at random on first use)."""
    path = secrets_dir / f"{name}.key"
    if not path.exists():
        write_private(path, secrets.token_hex(nbytes))
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())
