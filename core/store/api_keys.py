"""API key storage: lookups by id, listing by tenant."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from core.errors import NotFound
from core.store.tables import ApiKeyItem


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
