"""SQS producer storage: lookups by id, listing by tenant; the secret only ever as KMS ciphertext."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from core.errors import NotFound
from core.store.tables import ProducerItem


class ProducerRepository:
    def get(self, producer_id: str) -> ProducerItem | None:
        try:
            return ProducerItem.get(producer_id, consistent_read=True)
        except DoesNotExist:
            return None

    def put(self, item: ProducerItem) -> None:
        item.save(condition=ProducerItem.producer_id.does_not_exist())

    def get_for_tenant(self, producer_id: str, tenant_id: str) -> ProducerItem:
        """The tenant's producer; another tenant's is simply not found."""
        item = self.get(producer_id)
        if item is None or item.tenant_id != tenant_id:
            raise NotFound(f"producer {producer_id} not found", code="producer_not_found")
        return item

    def list_for_tenant(self, tenant_id: str) -> list[ProducerItem]:
        return list(ProducerItem.tenant_index.query(tenant_id, scan_index_forward=False))

    def delete(self, producer_id: str, tenant_id: str) -> None:
        """Revoke: the item goes, so its signatures stop verifying (within the functions' cache time)."""
        self.get_for_tenant(producer_id, tenant_id).delete()
