"""API keys: random, shown once, stored as SHA-256; roles and tenants. Access tokens: short-lived JWTs of a key.

An access token is checked like its key on every call: a revoked (deleted) key's tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import jwt

from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from core.ids import ulid
from core.models.api_keys import AccessToken, ApiKey, ApiKeyCreate, ApiKeyCreated, RateLimit
from core.models.common import Principal, Role, utcnow
from core.store.tables import ApiKeyItem
from functions.service import idp
from functions.service.context import Services

KEY_PREFIX = "wgk"
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
#: Every claim `authenticate` relies on; a token without one of them is refused.
TOKEN_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "tenant", "role", "accounts")


def hash_key(api_key: str) -> str:
    """SHA-256 of the whole key: keys carry 256 random bits, so a slow hash adds nothing."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _key_id(api_key: str) -> str | None:
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 26 or len(parts[2]) < 32:
        return None
    return f"key_{parts[1]}"


def _view(item: ApiKeyItem) -> ApiKey:
    return ApiKey(
        key_id=item.key_id, name=item.name, role=Role(item.role), tenant_id=item.tenant_id,
        account_ids=sorted(item.account_ids or []), prefix=item.prefix, created_at=item.created_at,
        created_by=item.created_by,
        rate_limit=RateLimit(per_second=float(item.rate_per_second), burst=int(item.rate_burst or 1))
        if item.rate_per_second else None,
    )


def _principal(item: ApiKeyItem, credential: str) -> Principal:
    rate = f"{float(item.rate_per_second):g}/{int(item.rate_burst or 1)}" if item.rate_per_second else ""
    return Principal(key_id=item.key_id, tenant_id=item.tenant_id, role=Role(item.role),
                     account_ids=tuple(sorted(item.account_ids or [])),
                     credential="jwt" if credential == "jwt" else "key", rate_limit=rate)


def issue_key(
    svc: Services, *, tenant_id: str, name: str, role: Role, account_ids: list[str] | None,
    created_by: str | None, rate_limit: RateLimit | None = None,
) -> ApiKeyCreated:
    """Create and store a key; the returned model is the only place the secret ever appears."""
    key_ulid = ulid()
    api_key = f"{KEY_PREFIX}_{key_ulid}_{secrets.token_urlsafe(32)}"
    item = ApiKeyItem(
        f"key_{key_ulid}", tenant_id=tenant_id, name=name, role=role.value,
        account_ids=set(account_ids) if account_ids else None, key_hash=hash_key(api_key),
        prefix=api_key[:12], created_at=utcnow(), created_by=created_by,
        rate_per_second=rate_limit.per_second if rate_limit else None,
        rate_burst=rate_limit.burst if rate_limit else None,
    )
    svc.api_keys.put(item)
    return ApiKeyCreated(**_view(item).model_dump(), api_key=api_key)


def presented_key(headers: dict[str, str] | None) -> str | None:
    """The credential from `X-Api-Key`, else from `Authorization: Bearer <key or access token>` (what Cloud API
    SDKs send)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if lowered.get("x-api-key"):
        return lowered["x-api-key"].strip()
    scheme, _, token = (lowered.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(svc: Services, api_key: str | None) -> Principal:
    """The principal of a presented API key or access token, or Unauthorized (same answer for unknown and wrong
    keys). The one check of the authorizer and of the routes that authenticate themselves (Cloud API routes)."""
    if api_key and api_key.count(".") == 2:  # a JWT; API keys have no dots
        issuer = idp.unverified_issuer(api_key)
        if issuer is not None and issuer != svc.settings.jwt_issuer:  # the tenant's own identity provider's
            return idp.authenticate_token(svc, api_key, issuer)
        return _authenticate_token(svc, api_key)
    key_id = _key_id(api_key or "")
    item = svc.api_keys.get(key_id) if key_id else None
    if item is None or not hmac.compare_digest(item.key_hash, hash_key(api_key or "")):
        raise Unauthorized("missing or invalid API key", code="unauthorized")
    return _principal(item, "key")


def issue_token(svc: Services, principal: Principal, *, now: float | None = None) -> AccessToken:
    """`POST /auth/token`: a JWT of the calling key (key id, tenant, role, account scope), valid JWT_TTL_SECONDS.

    Only a key gets one: a token that could renew itself would outlive every expiry.
    """
    if principal.credential != "key":
        raise Forbidden("access tokens are issued for API keys: present the key itself", code="api_key_required")
    settings = svc.settings
    key = svc.signing_keys.ensure()
    issued = int(time.time() if now is None else now)
    expires = issued + settings.jwt_ttl_seconds
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": principal.key_id, "iat": issued,
        "exp": expires, "jti": ulid(), "tenant": principal.tenant_id, "role": principal.role.value,
        "accounts": list(principal.account_ids)}
    token = jwt.encode(claims, key.secret, algorithm=TOKEN_ALGORITHM, headers={"kid": key.kid})
    return AccessToken(access_token=token, expires_in=settings.jwt_ttl_seconds, expires_at=datetime.fromtimestamp(
        expires, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _authenticate_token(svc: Services, token: str) -> Principal:
    """A token signed with the current key, unexpired, whose key still exists with what the token says."""
    settings = svc.settings
    try:
        header = jwt.get_unverified_header(token)
        key = svc.signing_keys.get(str(header.get("kid") or "")) if header.get("alg") == TOKEN_ALGORITHM else None
        if key is None:
            raise Unauthorized("invalid access token", code="unauthorized")
        claims = jwt.decode(token, key.secret, algorithms=[TOKEN_ALGORITHM], audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, options={"require": list(TOKEN_CLAIMS)})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired: ask POST /auth/token for a new one", code="unauthorized") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid access token", code="unauthorized") from None
    item = svc.api_keys.get(str(claims["sub"]))  # every call: a revoked key's tokens stop at once
    if item is None or (item.tenant_id, item.role, sorted(item.account_ids or [])) != (
            claims["tenant"], claims["role"], claims["accounts"]):
        raise Unauthorized("invalid access token: its API key was revoked", code="unauthorized")
    return _principal(item, "jwt")


def _require_key_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise Forbidden("only admin keys manage API keys", code="forbidden_role")
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot manage API keys", code="forbidden_scope")


def create_key(svc: Services, principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """`POST /api-keys`: a key in the caller's tenant, or the first key of a new tenant."""
    _require_key_admin(principal)
    tenant_id = principal.tenant_id
    if body.tenant and body.tenant != principal.tenant_id:
        if principal.tenant_id != svc.settings.bootstrap_tenant:
            raise Forbidden("only bootstrap-tenant admins may create keys for another tenant",
                            code="forbidden_tenant")
        if svc.api_keys.any_for_tenant(body.tenant):
            raise Conflict(f"tenant {body.tenant} already has keys; ask its admins", code="tenant_exists")
        tenant_id = body.tenant
    if body.account_ids:
        if tenant_id != principal.tenant_id:
            raise InvalidRequest("a new tenant's first key cannot be account-scoped", code="invalid_scope")
        for account_id in body.account_ids:
            try:
                svc.accounts.get(account_id, tenant_id)
            except NotFound:
                raise InvalidRequest(f"account {account_id} not found in this tenant",
                                     code="unknown_account", details={"account_id": account_id}) from None
    return issue_key(svc, tenant_id=tenant_id, name=body.name, role=body.role,
                     account_ids=body.account_ids, created_by=principal.key_id, rate_limit=body.rate_limit)


def list_keys(svc: Services, principal: Principal) -> list[ApiKey]:
    _require_key_admin(principal)
    return [_view(item) for item in svc.api_keys.list_for_tenant(principal.tenant_id)]


def delete_key(svc: Services, principal: Principal, key_id: str) -> None:
    _require_key_admin(principal)
    svc.api_keys.delete(key_id, principal.tenant_id)


def ensure_bootstrap_key(svc: Services, api_key: str | None) -> tuple[str, bool]:
    """Make sure the bootstrap tenant has an admin key; returns (key, created).

    With `api_key` given (WAGATE_BOOTSTRAP_API_KEY) that exact key is stored if absent.
    """
    tenant = svc.settings.bootstrap_tenant
    if api_key:
        key_id = _key_id(api_key)
        if key_id is None:
            raise InvalidRequest("WAGATE_BOOTSTRAP_API_KEY must look like wgk_<26 chars>_<secret of 32+ chars>")
        existing = svc.api_keys.get(key_id)
        if existing is not None:
            return api_key, False
        svc.api_keys.put(ApiKeyItem(key_id, tenant_id=tenant, name="bootstrap", role=Role.ADMIN.value,
                                    key_hash=hash_key(api_key), prefix=api_key[:12], created_at=utcnow()))
        return api_key, True
    created = issue_key(svc, tenant_id=tenant, name="bootstrap", role=Role.ADMIN, account_ids=None,
                        created_by=None)
    return created.api_key, True


def new_key_string() -> str:
    """A fresh key in the wagate format (for WAGATE_BOOTSTRAP_API_KEY and tests)."""
    return f"{KEY_PREFIX}_{ulid()}_{secrets.token_urlsafe(32)}"
