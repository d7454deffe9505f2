"""What every request can reach: settings, the two stores, keys and the policy (one per application)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from familycard.geo.territory import Territory, build_territory
from familycard.outreach.sms import Gateway, gateway_for
from familycard.security.policy import Policy, load_policy
from familycard.security.pseudonyms import KeyRing
from familycard.security.secrets import named_secret
from familycard.settings import Settings
from familycard.store.operational import OperationalStore, open_store
from familycard.web.snapshot import Snapshot


@dataclass
class AppContext:
    settings: Settings
    store: OperationalStore
    snapshot: Snapshot
    keys: KeyRing
    policy: Policy
    otp_key: bytes
    sms: Gateway

    @classmethod
    def open(cls, settings: Settings) -> AppContext:
        keys = KeyRing(settings.secrets)
        return cls(
            settings=settings,
            store=open_store(settings.store),
            snapshot=Snapshot(settings.data, keys),
            keys=keys,
            policy=load_policy(),
            otp_key=named_secret(settings.secrets, "one-time-codes"),
            sms=gateway_for(settings),
        )


@cache
def territory() -> Territory:
    return build_territory()


def area_name(kato: str, lang: str) -> str:
    """The name of the unit a KATO prefix stands for ("" for the nation)."""
    if not kato:
        return {"kk": "Қазақстан Республикасы", "ru": "Республика Казахстан", "en": "Republic of Kazakhstan"}[
            lang
        ]
    code = kato.ljust(9, "0")
    t = territory()
    return t.name(code, lang) if t.exists(code) else kato  # type: ignore[arg-type]
