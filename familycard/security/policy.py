"""The access policy (``policy.toml``) as typed objects: roles, permissions, purposes, categories.

The policy decides three things, always the same way for pages and the API:

- **what** a role may do (``permissions``: see aggregates, see pseudonymised families, re-identify, …);
- **where**: an account's territory is a KATO prefix of a length its role allows; it sees families
  whose KATO code starts with that prefix, and nothing outside it exists for it (404, not 403);
- **why**: a value in a sensitive category (health, disability, violence, police) is shown only when
  the reader declared a purpose that allows that category, and the role allows that purpose.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from familycard.indicators.facts import SELECTION
from familycard.indicators.methodology import Methodology

POLICY = Path(__file__).with_name("policy.toml")
LANGS = ("kk", "ru", "en")
PERMISSIONS = frozenset(
    {
        "view_aggregates",
        "view_families",
        "reidentify",
        "view_quality",
        "view_audit",
        "manage_accounts",
        "rotate_keys",
    }
)


class PolicyError(ValueError):
    """The policy file is inconsistent (the message names the file and key)."""


@dataclass(frozen=True)
class Category:
    id: str
    feeds: frozenset[str]
    indicators: frozenset[str]
    name: dict[str, str]


@dataclass(frozen=True)
class Purpose:
    id: str
    categories: frozenset[str]
    reidentify: bool
    name: dict[str, str]


@dataclass(frozen=True)
class Role:
    id: str
    permissions: frozenset[str]
    purposes: tuple[str, ...]
    territory_digits: frozenset[int]
    needs_measure: bool
    name: dict[str, str]


@dataclass(frozen=True)
class Policy:
    version: str
    categories: dict[str, Category]
    purposes: dict[str, Purpose]
    roles: dict[str, Role]

    def role(self, role_id: str) -> Role:
        try:
            return self.roles[role_id]
        except KeyError:
            raise PolicyError(f"unknown role {role_id!r}; roles: {', '.join(self.roles)}") from None

    def allows(self, role_id: str, permission: str) -> bool:
        return role_id in self.roles and permission in self.roles[role_id].permissions

    def purpose_allowed(self, role_id: str, purpose: str | None) -> bool:
        return purpose is not None and role_id in self.roles and purpose in self.roles[role_id].purposes

    def readable(self, role_id: str, purpose: str | None) -> frozenset[str]:
        """The sensitive categories a role may read under a declared purpose (none without one)."""
        if not self.purpose_allowed(role_id, purpose):
            return frozenset()
        assert purpose is not None
        return self.purposes[purpose].categories

    def can_reidentify(self, role_id: str, purpose: str | None) -> bool:
        return (
            self.allows(role_id, "reidentify")
            and self.purpose_allowed(role_id, purpose)
            and self.purposes[str(purpose)].reidentify
        )

    def check_territory(self, role_id: str, territory: str) -> None:
        role = self.role(role_id)
        if not territory.isdigit() and territory != "":
            raise PolicyError(f"a territory is a KATO prefix of digits, not {territory!r}")
        if len(territory) not in role.territory_digits:
            allowed = ", ".join(str(d) for d in sorted(role.territory_digits))
            raise PolicyError(f"a {role_id} works on a territory of {allowed} KATO digits, not {territory!r}")

    def indicator_categories(self, methodology: Methodology) -> dict[str, frozenset[str]]:
        """Each indicator's sensitive categories (empty for an ordinary indicator)."""
        from familycard.indicators import compute

        out: dict[str, frozenset[str]] = {}
        for ind in methodology.indicators:
            feeds = {SELECTION[s].feed for s in compute.selections_of(ind)}
            out[ind.id] = frozenset(
                c.id for c in self.categories.values() if feeds & c.feeds or ind.id in c.indicators
            )
        return out

    def situation_categories(self, methodology: Methodology) -> dict[str, frozenset[str]]:
        by_ind = self.indicator_categories(methodology)
        return {
            s.id: frozenset().union(*(by_ind.get(i, frozenset()) for i in s.indicators))
            for s in methodology.situations
        }


def _names(where: str, raw: dict[str, object]) -> dict[str, str]:
    name = raw.get("name")
    if not isinstance(name, dict) or any(not name.get(lang) for lang in LANGS):
        raise PolicyError(f"{POLICY.name}: {where}.name needs kk, ru and en")
    return {k: str(v) for k, v in name.items()}


@cache
def load_policy(path: Path = POLICY) -> Policy:
    """Read and check the policy: every name in three languages, every reference defined."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    cats = {
        cid: Category(
            cid,
            frozenset(c.get("feeds", [])),
            frozenset(c.get("indicators", [])),
            _names(f"categories.{cid}", c),
        )
        for cid, c in raw.get("categories", {}).items()
    }
    purposes = {}
    for pid, p in raw.get("purposes", {}).items():
        unknown = set(p.get("categories", [])) - set(cats)
        if unknown:
            raise PolicyError(f"{path.name}: purposes.{pid}.categories: unknown {sorted(unknown)}")
        purposes[pid] = Purpose(
            pid, frozenset(p.get("categories", [])), bool(p.get("reidentify")), _names(f"purposes.{pid}", p)
        )
    roles = {}
    for rid, r in raw.get("roles", {}).items():
        perms = set(r.get("permissions", []))
        if perms - PERMISSIONS:
            raise PolicyError(f"{path.name}: roles.{rid}.permissions: unknown {sorted(perms - PERMISSIONS)}")
        if set(r.get("purposes", [])) - set(purposes):
            raise PolicyError(f"{path.name}: roles.{rid}.purposes: unknown purpose")
        roles[rid] = Role(
            rid,
            frozenset(perms),
            tuple(r.get("purposes", [])),
            frozenset(int(d) for d in r.get("territory_digits", [0])),
            bool(r.get("needs_measure")),
            _names(f"roles.{rid}", r),
        )
    return Policy(str(raw.get("version", "")), cats, purposes, roles)
