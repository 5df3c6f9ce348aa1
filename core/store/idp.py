"""Tenants' identity providers, in the api-keys table: one item per issuer (what the authorizer reads, by a key
derived from the token's `iss`) and one per tenant naming it (what `GET`/`DELETE /identity-provider` read).

Both items are written in one transaction, so the issuer's item never outlives or precedes its tenant's.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from core.errors import Conflict
from core.models.common import utcnow
from core.models.idp import IdentityProvider, IdentityProviderConfig
from core.store.conditions import is_conditional
from core.store.tables import IdentityProviderItem

ISSUER_PREFIX, TENANT_PREFIX = "idp#", "idp-tenant#"


def issuer_key(issuer: str) -> str:
    """The item key of an issuer: its SHA-256 (an issuer is up to 500 characters of anything a token says)."""
    return ISSUER_PREFIX + hashlib.sha256(issuer.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TrustedIssuer:
    """What the authorizer needs: whose provider an issuer is, and its configuration."""

    tenant_id: str
    config: IdentityProviderConfig


def _config(item: IdentityProviderItem) -> dict[str, Any]:
    return dict(item.config.as_dict()) if item.config is not None else {}  # type: ignore[no-untyped-call]


@functools.cache
def _connection(region: str, host: str | None) -> Connection:
    return Connection(region=region, host=host)


class IdentityProviderRepository:
    def for_issuer(self, issuer: str) -> TrustedIssuer | None:
        """The provider whose tokens carry `iss` == `issuer`, read now (a deleted provider stops at once)."""
        item = self._get(issuer_key(issuer))
        if item is None or item.config is None:
            return None
        config = IdentityProviderConfig.model_validate(_config(item))
        return TrustedIssuer(item.owner_tenant, config) if config.issuer == issuer else None

    def for_tenant(self, tenant_id: str) -> IdentityProvider | None:
        pointer = self._get(TENANT_PREFIX + tenant_id)
        item = self._get(pointer.issuer_key) if pointer is not None and pointer.issuer_key else None
        if item is None or item.owner_tenant != tenant_id or item.config is None:
            return None
        return IdentityProvider(**_config(item), tenant_id=tenant_id, created_at=item.created_at or "",
                                updated_at=item.updated_at or "", updated_by=item.updated_by)

    def put(self, tenant_id: str, config: IdentityProviderConfig, updated_by: str | None) -> IdentityProvider:
        """Set the tenant's provider (replacing its previous one); Conflict when another tenant has the issuer."""
        now = utcnow()
        current = self.for_tenant(tenant_id)
        key = issuer_key(config.issuer)
        created = current.created_at if current is not None else now
        stored = config.model_dump(mode="json", exclude_none=True)
        item = IdentityProviderItem(key, owner_tenant=tenant_id, config=stored,
                                    created_at=created, updated_at=now, updated_by=updated_by)
        pointer = IdentityProviderItem(TENANT_PREFIX + tenant_id, owner_tenant=tenant_id, issuer_key=key,
                                       created_at=created, updated_at=now, updated_by=updated_by)
        meta = IdentityProviderItem.Meta
        try:
            with TransactWrite(connection=_connection(meta.region, meta.host)) as tx:
                tx.save(item, condition=IdentityProviderItem.key_id.does_not_exist()
                        | (IdentityProviderItem.owner_tenant == tenant_id))
                tx.save(pointer)
                if current is not None and issuer_key(current.issuer) != key:
                    tx.delete(IdentityProviderItem(issuer_key(current.issuer)),
                              condition=IdentityProviderItem.owner_tenant == tenant_id)
        except TransactWriteError as exc:
            if is_conditional(exc):
                raise Conflict("another tenant already trusts this issuer", code="issuer_taken") from None
            raise
        return IdentityProvider(**config.model_dump(), tenant_id=tenant_id, created_at=created, updated_at=now,
                                updated_by=updated_by)

    def delete(self, tenant_id: str) -> bool:
        """Remove the tenant's provider (its tokens stop at the next call); False when it had none."""
        pointer = self._get(TENANT_PREFIX + tenant_id)
        if pointer is None:
            return False
        meta = IdentityProviderItem.Meta
        try:
            with TransactWrite(connection=_connection(meta.region, meta.host)) as tx:
                if pointer.issuer_key:
                    tx.delete(IdentityProviderItem(pointer.issuer_key),
                              condition=IdentityProviderItem.owner_tenant == tenant_id)
                tx.delete(pointer)
        except TransactWriteError as exc:
            if not is_conditional(exc):
                raise
            pointer.delete()  # the issuer's item is not this tenant's (any more): only the pointer is
        return True

    def _get(self, key: str) -> IdentityProviderItem | None:
        try:
            return IdentityProviderItem.get(key, consistent_read=True)
        except DoesNotExist:
            return None
