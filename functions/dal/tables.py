"""PynamoDB models of the tables in template.yaml; `bind()` points them at the configured tables."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from functions.shared.config import Settings


class _Meta:
    table_name = "unbound"
    region = "us-east-1"
    host: str | None = None


class TenantIndex(GlobalSecondaryIndex["AccountItem"]):
    class Meta:
        index_name = "tenant-index"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class TenantStatusIndex(GlobalSecondaryIndex["AccountItem"]):
    class Meta:
        index_name = "tenant-status-index"
        projection = AllProjection()

    tenant_status = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DesiredStateIndex(GlobalSecondaryIndex["AccountItem"]):
    class Meta:
        index_name = "desired-state-index"
        projection = AllProjection()

    desired_state = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute(range_key=True)


class AccountItem(Model):
    """One WhatsApp account. `tenant_status` mirrors `tenant_id#connection_status` for the status filter."""

    class Meta(_Meta):
        pass

    account_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    account_name = UnicodeAttribute()
    phone_number = UnicodeAttribute(null=True)
    provider = UnicodeAttribute(default="web")
    connection_status = UnicodeAttribute()
    tenant_status = UnicodeAttribute()
    status_reason = UnicodeAttribute(null=True)
    desired_state = UnicodeAttribute()
    pending_action = UnicodeAttribute(null=True)
    action_requested_at = UnicodeAttribute(null=True)
    metadata = MapAttribute[str, Any](default=dict)
    webhook = MapAttribute[str, Any](null=True)
    status_history = ListAttribute[Any](default=list)
    qr = MapAttribute[str, Any](null=True)
    pairing = MapAttribute[str, Any](null=True)
    host_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    deleted_at = UnicodeAttribute(null=True)
    version = VersionAttribute()

    tenant_index = TenantIndex()
    tenant_status_index = TenantStatusIndex()
    desired_state_index = DesiredStateIndex()


class WaMessageIndex(GlobalSecondaryIndex["MessageItem"]):
    class Meta:
        index_name = "wa-message-index"
        projection = AllProjection()

    wa_message_id = UnicodeAttribute(hash_key=True)


class MessageItem(Model):
    """One message of an account; `message_id` sorts by creation time."""

    class Meta(_Meta):
        pass

    account_id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)
    tenant_id = UnicodeAttribute()
    direction = UnicodeAttribute()
    status = UnicodeAttribute()
    type = UnicodeAttribute()
    to = UnicodeAttribute(null=True)
    from_number = UnicodeAttribute(null=True)
    content = UnicodeAttribute()  # JSON text: envelopes keep floats and nesting exactly
    client_reference = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    wa_message_id = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    status_history = ListAttribute[Any](default=list)
    attempts = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds

    wa_message_index = WaMessageIndex()


class ApiKeyTenantIndex(GlobalSecondaryIndex["ApiKeyItem"]):
    class Meta:
        index_name = "tenant-index"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ApiKeyItem(Model):
    """An API key: only the SHA-256 of its secret is stored."""

    class Meta(_Meta):
        pass

    key_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute()
    account_ids = UnicodeSetAttribute(null=True)
    key_hash = UnicodeAttribute()
    prefix = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)

    tenant_index = ApiKeyTenantIndex()


class IdempotencyItem(Model):
    """Remembers an Idempotency-Key: which message it created and a hash of the body."""

    class Meta(_Meta):
        pass

    id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expiration = NumberAttribute()  # TTL, epoch seconds


def bind(settings: Settings) -> None:
    """Point every model at the configured table names, region and endpoint."""
    names: dict[type[Model], str] = {
        AccountItem: settings.accounts_table,
        MessageItem: settings.messages_table,
        ApiKeyItem: settings.api_keys_table,
        IdempotencyItem: settings.idempotency_table,
    }
    for model, name in names.items():
        model.Meta.table_name = name
        model.Meta.region = settings.region
        model.Meta.host = settings.endpoint_url
        model._connection = None  # rebuilt lazily with the new settings
        for index in model._indexes.values():
            index.Meta.model = model
