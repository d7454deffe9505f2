"""Sign-in through an OpenID Connect provider: the authorization code flow with PKCE (S256), state and nonce.

:class:`OidcClient` reads the provider's discovery document (``ISSUER/.well-known/openid-configuration``,
kept for an hour), builds the authorization URL, exchanges the code at the token endpoint
(``client_secret_basic`` or ``client_secret_post`` when a secret is set, a public client with PKCE
otherwise) and validates the ID token: its signature against the provider's JWKS (fetched again once when
the token names a key the cached set lacks), ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` and
``nonce``. Every failure is an :class:`OidcError` saying what went wrong; :class:`TokenRejected` when the
provider answered but refused the code, or its ID token does not prove who signed in.

The request waiting for the provider's answer (:class:`Pending`: the state, the PKCE verifier, the nonce,
who signs in and where to go next) is kept in the operational store, only the state's hash as its key:
:func:`begin` writes it, :func:`take` removes it on the callback (single use) and refuses it after
:data:`PENDING_MINUTES`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from familycard.settings import OidcProvider
from familycard.store.models import OidcRequest

log = logging.getLogger(__name__)

PENDING_MINUTES = 10
DISCOVERY_SECONDS = 3600
LEEWAY_SECONDS = 60
# Asymmetric signatures only: never "none", and no HMAC keyed with the client secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class OidcError(Exception):
    """The sign-in through the identity provider failed; the message says why."""


class TokenRejected(OidcError):
    """The provider answered, but not with a sign-in: it refused the code, or its ID token does not hold."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_challenge(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _check_url(url: object, what: str) -> str:
    """``url`` if it is https (or http to this machine, for tests and local providers)."""
    if not isinstance(url, str) or not url:
        raise OidcError(f"the identity provider's discovery document has no {what}")
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return url
    raise OidcError(f"the identity provider's {what} {url!r} is not an https URL")


class OidcClient:
    """One relying party at one provider (thread-safe; discovery and keys are cached)."""

    def __init__(
        self, provider: OidcProvider, http: httpx.Client | None = None, timeout: float = 10.0
    ) -> None:
        self.provider = provider
        self.issuer = _check_url(provider.issuer, "issuer")
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    # --- discovery and keys -----------------------------------------------------------------------

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider could not be reached for its {what}: {exc}") from exc
        if response.status_code != 200:
            raise OidcError(f"the identity provider answered {response.status_code} for its {what} ({url})")
        try:
            body = response.json()
        except ValueError as exc:
            raise OidcError(f"the identity provider's {what} is not JSON ({url})") from exc
        if not isinstance(body, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object ({url})")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched at most once an hour)."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < DISCOVERY_SECONDS:
                return self._metadata
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = self._get_json(url, "discovery document")
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
            raise OidcError(
                f"the discovery document at {url} names the issuer {meta.get('issuer')!r}, "
                f"not the configured {self.issuer!r}"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            _check_url(meta.get(name), name)
        methods = meta.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcError("the identity provider does not support PKCE with S256")
        with self._lock:
            self._metadata, self._metadata_at = meta, time.monotonic()
        return meta

    def keys(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (cached; ``refresh`` fetches them again)."""
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        body = self._get_json(str(self.metadata()["jwks_uri"]), "signing keys (JWKS)")
        try:
            keys = KeySet.import_key_set(
                {"keys": [k for k in body.get("keys", []) if isinstance(k, dict) and k.get("use") != "enc"]}
            )
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(f"the identity provider's signing keys cannot be read: {exc}") from exc
        with self._lock:
            self._keys = keys
        return keys

    # --- the flow ---------------------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser: the provider's sign-in page for this request."""
        endpoint = str(self.metadata()["authorization_endpoint"])
        scopes = self.provider.scopes.split()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes if "openid" in scopes else ["openid", *scopes]),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return endpoint + ("&" if "?" in endpoint else "?") + query

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer for ``code`` (it holds ``id_token``)."""
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json"}
        secret = self.provider.client_secret
        supported = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if secret and "client_secret_basic" not in supported and "client_secret_post" in supported:
            form |= {"client_id": self.provider.client_id, "client_secret": secret}
        elif secret:  # RFC 6749 2.3.1: both parts form-encoded before base64
            pair = f"{quote(self.provider.client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.provider.client_id
        try:
            response = self.http.post(str(meta["token_endpoint"]), data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider's token endpoint could not be reached: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            error = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
            raise TokenRejected(f"the identity provider refused the sign-in code: {error}")
        if not isinstance(body.get("id_token"), str):
            raise OidcError("the identity provider's token endpoint returned no ID token")
        return body

    def validate(self, id_token: str, nonce: str, now: int | None = None) -> dict[str, Any]:
        """The claims of ``id_token`` once signature, issuer, audience, lifetime and nonce hold."""
        meta = self.metadata()
        offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in ALGORITHMS if a in offered] or ["RS256"]
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider may have rotated its keys: fetch them once more
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=algorithms)
        except InvalidKeyIdError as exc:
            raise TokenRejected(
                "the ID token is signed with a key the identity provider does not publish"
            ) from exc
        except BadSignatureError as exc:
            raise TokenRejected("the ID token's signature does not verify") from exc
        except (JoseError, ValueError) as exc:
            raise TokenRejected(f"the ID token cannot be read: {exc}") from exc
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": str(meta["issuer"])},
            aud={"essential": True, "value": self.provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise TokenRejected("the ID token has expired") from exc
        except MissingClaimError as exc:
            raise TokenRejected(f"the ID token lacks the claim {exc.claim}") from exc
        except ClaimError as exc:
            raise TokenRejected(
                f"the ID token's claim {exc.claim!r} does not hold ({exc.description})"
            ) from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 and azp is None) or (azp is not None and azp != self.provider.client_id):
            raise TokenRejected("the ID token was issued to another client (azp)")
        return claims


# --- requests waiting for the provider ---------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A sign-in request on its way through the provider."""

    state: str
    audience: str  # staff | citizen
    code_verifier: str
    nonce: str
    next_url: str


def begin(session: Session, audience: str, next_url: str, now: dt.datetime | None = None) -> Pending:
    """A new pending request (fresh state, PKCE verifier and nonce), kept in the store."""
    now = now or dt.datetime.now(dt.UTC)
    pending = Pending(
        state=secrets.token_urlsafe(32),
        audience=audience,
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(32),
        next_url=next_url[:200],
    )
    # Requests never answered go when new ones start: the table holds only recent ones.
    session.execute(
        delete(OidcRequest).where(OidcRequest.created_at < now - dt.timedelta(minutes=PENDING_MINUTES))
    )
    session.add(
        OidcRequest(
            state_hash=_digest(pending.state),
            audience=audience,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            next_url=pending.next_url,
            created_at=now,
        )
    )
    return pending


def take(session: Session, state: str, now: dt.datetime | None = None) -> Pending:
    """The pending request of ``state``, removed (single use); OidcError if unknown, used or expired."""
    now = now or dt.datetime.now(dt.UTC)
    if not state or len(state) > 200:
        raise OidcError("the sign-in request is unknown or was already used")
    key = _digest(state)
    row = session.scalar(select(OidcRequest).where(OidcRequest.state_hash == key))
    if row is None:
        raise OidcError("the sign-in request is unknown or was already used")
    # The delete decides: of two callbacks racing with the same state, only one removes the row.
    removed = cast(
        "CursorResult[Any]", session.execute(delete(OidcRequest).where(OidcRequest.state_hash == key))
    )
    if removed.rowcount != 1:
        raise OidcError("the sign-in request is unknown or was already used")
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    if now - created > dt.timedelta(minutes=PENDING_MINUTES):
        raise OidcError("the sign-in request has expired")
    return Pending(state, row.audience, row.code_verifier, row.nonce, row.next_url)
