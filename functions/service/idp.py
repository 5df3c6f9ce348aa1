"""Tokens of a tenant's own identity provider: RS256/ES256 JWTs checked against the provider's JWKS.

The provider is read on every call (one GetItem, like an API key), so deleting it stops its tokens at once. Its
signing keys are fetched through core/net (the outbound rules, bounded time and size), kept per process for
`JWKS_TTL_SECONDS`, and fetched again when a token names a key the cache does not hold (at most once per
`JWKS_REFETCH_SECONDS`, so random `kid`s cannot make every call a fetch).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from core import net
from core.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from core.models.accounts import ACCOUNT_ID_PATTERN
from core.models.common import Principal, Role
from core.models.idp import IdentityProvider, IdentityProviderConfig
from core.observability import logger, metrics
from core.store.idp import IdentityProviderRepository, TrustedIssuer
from functions.service.context import Services

#: Never HS* (a public key must not become an HMAC secret), never `none`.
ALGORITHMS = ("RS256", "ES256")
JWKS_TTL_SECONDS = 300.0
JWKS_REFETCH_SECONDS = 3.0
JWKS_STALE_SECONDS = 3600.0  # keys kept while the provider cannot be reached
JWKS_TIMEOUT_SECONDS = 3.0
JWKS_MAX_BYTES = 256 * 1024
MAX_TOKEN_CHARS = 16 * 1024
LEEWAY_SECONDS = 30
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)
_SUBJECT = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII: it becomes a key id in logs and the audit log

providers = IdentityProviderRepository()


def _refuse(reason: str) -> Unauthorized:
    logger.info("identity provider token refused", extra={"reason": reason})
    return Unauthorized("invalid access token", code="unauthorized")


# --- the provider's keys ------------------------------------------------------------------------------------------

@dataclass
class _Keys:
    keys: dict[str, jwt.PyJWK]  # by kid ("" for a key without one)
    fetched_at: float


class JwksCache:
    """Signing keys per JWKS URL, per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Keys] = {}

    def key(self, url: str, kid: str, policy: net.OutboundPolicy) -> jwt.PyJWK:
        """The key `kid` names (Unauthorized when the provider has none such or cannot be reached)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(url)
        fresh = entry is not None and now - entry.fetched_at < JWKS_TTL_SECONDS
        if entry is None or not fresh or (kid not in entry.keys and now - entry.fetched_at >= JWKS_REFETCH_SECONDS):
            entry = self._refresh(url, policy, entry)
        found = entry.keys.get(kid)
        if found is None and not kid and len(entry.keys) == 1:
            found = next(iter(entry.keys.values()))
        if found is None:
            raise _refuse("unknown kid")
        return found

    def _refresh(self, url: str, policy: net.OutboundPolicy, stale: _Keys | None) -> _Keys:
        try:
            entry = _Keys(_fetch_keys(url, policy), time.monotonic())
        except (net.UnsafeUrl, net.FetchError, ValueError) as exc:
            metrics.add_metric(name="IdpJwksUnavailable", unit="Count", value=1)
            logger.warning("identity provider keys unavailable", extra={
                "error": type(exc).__name__, "code": getattr(exc, "code", ""), "detail": str(exc)[:200]})
            if stale is not None and time.monotonic() - stale.fetched_at < JWKS_STALE_SECONDS:
                return stale
            raise _refuse("jwks unavailable") from None
        with self._lock:
            self._entries[url] = entry
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _fetch_keys(url: str, policy: net.OutboundPolicy) -> dict[str, jwt.PyJWK]:
    result = net.fetch(url, policy, headers={"Accept": "application/json"}, max_bytes=JWKS_MAX_BYTES,
                       timeout=JWKS_TIMEOUT_SECONDS, max_redirects=2)
    if result.status != 200:
        raise ValueError(f"JWKS answered {result.status}")
    document = json.loads(result.body)
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS has no `keys` list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries[:100]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # a key we cannot use (another curve, a damaged entry): its tokens fail as unknown kid
        if key.algorithm_name in ALGORITHMS:
            keys[str(entry.get("kid") or "")] = key
    return keys


jwks = JwksCache()


# --- tokens -------------------------------------------------------------------------------------------------------

def unverified_issuer(token: str) -> str | None:
    """The `iss` a JWT claims (not verified: only to choose who verifies it)."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


def authenticate_token(svc: Services, token: str, issuer: str) -> Principal:
    """The principal of a token of a tenant's identity provider, or Unauthorized (401 for every failure: the
    authorizer can only allow or refuse)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise _refuse("token too long")
    trusted = providers.for_issuer(issuer)
    if trusted is None:
        raise _refuse("unknown issuer")
    config = trusted.config
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse("malformed header") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise _refuse("algorithm not allowed")
    key = jwks.key(config.jwks_url, str(header.get("kid") or ""), net.OutboundPolicy.from_settings(svc.settings))
    if key.algorithm_name != algorithm:
        raise _refuse("algorithm does not match the key")
    try:
        claims = jwt.decode(token, key.key, algorithms=[algorithm], audience=config.audience, issuer=config.issuer,
                            leeway=LEEWAY_SECONDS, options={"require": ["exp", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise _refuse("expired") from None
    except jwt.PyJWTError as exc:
        raise _refuse(type(exc).__name__) from None
    return _principal(trusted, claims)


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _principal(trusted: TrustedIssuer, claims: dict[str, Any]) -> Principal:
    config = trusted.config
    subject = claims.get(config.subject_claim)
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise _refuse("subject claim missing or not printable ASCII")
    roles = [config.roles[v] for v in _strings(claims.get(config.role_claim)) or [] if v in config.roles]
    if not roles:
        raise _refuse("no role mapping matches")
    accounts: tuple[str, ...] = ()
    if config.accounts_claim and config.accounts_claim in claims:
        listed = _strings(claims[config.accounts_claim])
        if not listed or len(listed) > 100 or not all(_ACCOUNT_ID.fullmatch(a) for a in listed):
            raise _refuse("accounts claim empty or malformed")
        accounts = tuple(sorted(set(listed)))
    return Principal(key_id=f"idp:{subject}", tenant_id=trusted.tenant_id, role=max(roles, key=ROLE_RANK.__getitem__),
                     account_ids=accounts, credential="idp")


# --- configuration (admins of the tenant) -------------------------------------------------------------------------

def _require_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise Forbidden("only admins configure the identity provider", code="forbidden_role")
    if principal.account_ids:
        raise Forbidden("account-scoped credentials cannot configure the identity provider", code="forbidden_scope")


def put_provider(svc: Services, principal: Principal, body: IdentityProviderConfig) -> IdentityProvider:
    """`PUT /identity-provider`: trust (or re-configure) the tenant's identity provider."""
    _require_admin(principal)
    try:
        net.check_url(body.jwks_url, net.OutboundPolicy.from_settings(svc.settings))
    except net.UnresolvedHost:
        pass  # checked again at every fetch: until it resolves, its tokens are refused
    except net.UnsafeUrl as exc:
        raise InvalidRequest(f"jwks_url is not allowed: {exc}", code="jwks_url_not_allowed") from None
    return providers.put(principal.tenant_id, body, principal.key_id)


def get_provider(svc: Services, principal: Principal) -> IdentityProvider:
    _require_admin(principal)
    found = providers.for_tenant(principal.tenant_id)
    if found is None:
        raise NotFound("no identity provider is configured", code="identity_provider_not_found")
    return found


def delete_provider(svc: Services, principal: Principal) -> None:
    """`DELETE /identity-provider`: its tokens are refused from the next call on (idempotent)."""
    _require_admin(principal)
    providers.delete(principal.tenant_id)
