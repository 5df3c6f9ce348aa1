"""API key storage: lookups by id, listing by tenant; the JWT signing key."""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError

from core.errors import NotFound
from core.ids import ulid
from core.models.common import utcnow
from core.store import secrets
from core.store.conditions import is_conditional
from core.store.tables import ApiKeyItem, SigningKeyItem

#: The signing key's item in the api-keys table (API keys are `key_<ulid>`, so the ids never meet).
SIGNING_KEY_ID = "jwt#signing-key"


class ApiKeyRepository:
    def get(self, key_id: str) -> ApiKeyItem | None:
        try:
            return ApiKeyItem.get(key_id, consistent_read=True)
        except DoesNotExist:
            return None

    def put(self, item: ApiKeyItem) -> None:
        item.save(condition=ApiKeyItem.key_id.does_not_exist())

    def list_for_tenant(self, tenant_id: str) -> list[ApiKeyItem]:
        return list(ApiKeyItem.tenant_index.query(tenant_id, scan_index_forward=False))

    def delete(self, key_id: str, tenant_id: str) -> None:
        item = self.get(key_id)
        if item is None or item.tenant_id != tenant_id:
            raise NotFound(f"api key {key_id} not found", code="api_key_not_found")
        item.delete()

    def any_for_tenant(self, tenant_id: str) -> bool:
        return any(True for _ in ApiKeyItem.tenant_index.query(tenant_id, limit=1))


@dataclass(frozen=True)
class SigningKey:
    """The HS256 key of access tokens; `kid` names it in every token's header."""

    kid: str
    secret: bytes


class SigningKeyRepository:
    """One key of 256 random bits, made on first use, stored KMS-encrypted, held decrypted for `cache_seconds`.

    Deleting its item rotates it: tokens signed with the old key stop verifying once the caches expire, and the
    next `POST /auth/token` makes a new key.
    """

    def __init__(self, cache_seconds: float = 60.0) -> None:
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[SigningKey | None, float] = (None, 0.0)

    def get(self, kid: str | None = None) -> SigningKey | None:
        """The current key (None if none was made yet, or if it is not `kid`)."""
        with self._lock:
            key, until = self._cached
        if key is None or until <= time.monotonic() or (kid is not None and key.kid != kid):
            key = self._read()
        return key if key is not None and (kid is None or key.kid == kid) else None

    def ensure(self) -> SigningKey:
        """The current key, made now if there is none (when two callers race, both use the one stored first)."""
        key = self.get()
        if key is not None:
            return key
        secret = os.urandom(32)
        item = SigningKeyItem(SIGNING_KEY_ID, kid=ulid(), created_at=utcnow(), ciphertext=secrets.encrypt(
            base64.b64encode(secret).decode(), purpose=secrets.JWT_KEY_PURPOSE))
        try:
            item.save(condition=SigningKeyItem.key_id.does_not_exist())
        except PutError as exc:
            if not is_conditional(exc):
                raise
            stored = self._read()
            if stored is None:
                raise
            return stored
        return self._remember(SigningKey(item.kid, secret))

    def _read(self) -> SigningKey | None:
        try:
            item = SigningKeyItem.get(SIGNING_KEY_ID, consistent_read=True)
        except DoesNotExist:
            with self._lock:
                self._cached = (None, 0.0)
            return None
        secret = base64.b64decode(secrets.decrypt(item.ciphertext, purpose=secrets.JWT_KEY_PURPOSE))
        return self._remember(SigningKey(item.kid, secret))

    def _remember(self, key: SigningKey) -> SigningKey:
        with self._lock:
            self._cached = (key, time.monotonic() + self.cache_seconds)
        return key
