"""Keyed pseudonyms for persons and families, with versioned keys and rotation.

A pseudonym is ``HMAC-SHA256(key, kind | internal id)``, cut to 100 bits and written in base 32 with
the key's version: ``fam-2-k3q…``. A plain hash would not do: there are only about 7×10⁸ possible IINs,
so anyone could hash them all; without the key a pseudonym reveals nothing and cannot be linked to
another data set.

Keys live in ``SECRETS/pseudonym-keys.json`` (created on first use, mode 0600, never in the warehouse
or the operational store). :meth:`KeyRing.rotate` adds a new version and makes it current: views show
new pseudonyms at once, and old pseudonyms (links, notes) still resolve until their version is retired.
Resolving a pseudonym back to a family is a lookup in the current snapshot (HMAC is one-way), done only
by the purpose-bound re-identification endpoint.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from familycard.security.secrets import write_private

KINDS = {"family": "fam", "person": "per"}
PSEUDONYM = re.compile(r"(fam|per)-(\d+)-([a-z2-7]{20})")
FILE = "pseudonym-keys.json"


class UnknownPseudonym(LookupError):
    """Not a pseudonym of any key in use (malformed, or of a retired key)."""


@dataclass(frozen=True)
class Key:
    version: int
    secret: bytes
    created: str
    retired: str | None = None


class KeyRing:
    """The pseudonym keys of a deployment (read from, and saved to, the secrets directory)."""

    def __init__(self, secrets_dir: Path) -> None:
        self.path = secrets_dir / FILE
        if not self.path.exists():
            self._keys: dict[int, Key] = {}
            self._save_new(1)
        self._load()

    def _load(self) -> None:
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        self._keys = {
            int(k["version"]): Key(
                int(k["version"]), bytes.fromhex(k["secret"]), k["created"], k.get("retired")
            )
            for k in raw["keys"]
        }
        self.current = int(raw["current"])

    def _save_new(self, version: int) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        keys = [*self._keys.values(), Key(version, secrets.token_bytes(32), now)]
        doc = {
            "current": version,
            "keys": [
                {"version": k.version, "secret": k.secret.hex(), "created": k.created, "retired": k.retired}
                for k in keys
            ],
        }
        write_private(self.path, json.dumps(doc, indent=1))

    def rotate(self, retire_older_than: int | None = None) -> int:
        """Add a key version and make it current; optionally retire versions below ``retire_older_than``."""
        self._load()
        if retire_older_than is not None:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self._keys = {
                v: (
                    Key(k.version, k.secret, k.created, now) if v < retire_older_than and not k.retired else k
                )
                for v, k in self._keys.items()
            }
        new = max(self._keys) + 1
        self._save_new(new)
        self._load()
        return new

    @property
    def versions(self) -> list[Key]:
        return [self._keys[v] for v in sorted(self._keys)]

    def usable(self) -> list[int]:
        return [v for v, k in sorted(self._keys.items()) if not k.retired]

    def pseudonym(self, kind: str, internal_id: str, version: int | None = None) -> str:
        v = self.current if version is None else version
        key = self._keys[v]
        prefix = KINDS[kind]
        mac = hmac.new(key.secret, f"{kind}|{internal_id}".encode(), hashlib.sha256).digest()
        return f"{prefix}-{v}-{base64.b32encode(mac[:13]).decode().lower()[:20]}"

    def fingerprint(self, version: int) -> str:
        """A short public name of a key version (names cache files; reveals nothing of the key)."""
        return hashlib.sha256(b"fingerprint|" + self._keys[version].secret).hexdigest()[:12]

    def parse(self, pseudonym: str, kind: str) -> int:
        """The key version of a well-formed pseudonym of ``kind`` whose key is in use."""
        m = PSEUDONYM.fullmatch(pseudonym)
        if not m or m.group(1) != KINDS[kind]:
            raise UnknownPseudonym(f"not a {kind} pseudonym: {pseudonym!r}")
        version = int(m.group(2))
        if version not in self.usable():
            raise UnknownPseudonym(f"pseudonym of a retired or unknown key version {version}")
        return version
