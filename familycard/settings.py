"""The platform's settings: one typed object, read from ``FAMILYCARD_*`` environment variables.

Nothing else in the web platform reads the environment. Every setting has a default that runs the
embedded demo (SQLite beside the warehouse, secrets generated into ``DATA/secrets``); a production
deployment (``FAMILYCARD_ENVIRONMENT=production``) is refused at start-up while a setting is still
a development default that would be unsafe there (plain-HTTP cookies, the demo's one-time-code login for
citizens, an OIDC client secret left as a placeholder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "placeholder", "xxx"}


class OidcProvider(BaseSettings):
    """An OpenID Connect provider (authorization code flow with PKCE)."""

    model_config = SettingsConfigDict(extra="forbid")

    issuer: str = Field(
        description="Issuer URL; discovery is read from ISSUER/.well-known/openid-configuration"
    )
    client_id: str
    client_secret: str = Field(default="", description="Empty for a public client (PKCE only)")
    scopes: str = "openid profile"
    subject_claim: str = Field(
        default="sub", description="Claim naming the account (staff) or holding the IIN (citizens)"
    )


class Settings(BaseSettings):
    """Every setting of the web platform, with its default and meaning."""

    model_config = SettingsConfigDict(env_prefix="FAMILYCARD_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses unsafe development defaults"
    )
    data: Path = Field(default=Path("data"), description="Warehouse directory (the pipeline's DATA)")
    store_url: str = Field(
        default="",
        description="Operational store: a SQLAlchemy URL (sqlite:///… or postgresql+psycopg://…); "
        "empty: SQLite at DATA/operational.sqlite3",
    )
    secrets_dir: Path | None = Field(
        default=None, description="Where keys live (pseudonym keys); default DATA/secrets, created 0700"
    )
    cookie_secure: bool = Field(
        default=False, description="Send cookies only over HTTPS (__Host- prefix); required in production"
    )
    session_minutes: int = Field(default=30, description="Idle time after which a session ends")
    session_max_hours: int = Field(default=10, description="Absolute lifetime of a session")
    login_max_failures: int = Field(default=5, description="Failed logins before an account is locked")
    login_lock_minutes: int = Field(default=15, description="How long a locked account stays locked")
    login_rate_per_minute: int = Field(default=20, description="Login attempts per client address and minute")
    otp_minutes: int = Field(default=5, description="Lifetime of a citizen's one-time code")
    otp_max_attempts: int = Field(default=5, description="Wrong codes before a one-time code is void")
    otp_per_hour: int = Field(default=5, description="One-time codes sent to one person per hour")
    sms_gateway: Literal["outbox-file"] = Field(
        default="outbox-file",
        description="outbox-file writes messages to DATA/outbox/sms.jsonl (the demo's gateway)",
    )
    staff_oidc: OidcProvider | None = Field(default=None, description="Staff identity provider")
    citizen_oidc: OidcProvider | None = Field(default=None, description="Citizens' state identity provider")
    public_url: str = Field(default="", description="External base URL (for OIDC redirects)")

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if not self.cookie_secure:
            problems.append("FAMILYCARD_COOKIE_SECURE must be true (cookies over HTTPS only)")
        if self.citizen_oidc is None:
            problems.append(
                "citizens log in through the state identity provider: set FAMILYCARD_CITIZEN_OIDC__ISSUER "
                "and __CLIENT_ID (the one-time-code login is for the demo)"
            )
        for name, provider in (("STAFF_OIDC", self.staff_oidc), ("CITIZEN_OIDC", self.citizen_oidc)):
            if provider and provider.client_secret.lower() in PLACEHOLDERS - {""}:
                problems.append(f"FAMILYCARD_{name}__CLIENT_SECRET is a placeholder")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def store(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data / 'operational.sqlite3').resolve()}"

    @property
    def secrets(self) -> Path:
        return self.secrets_dir or self.data / "secrets"
