"""PynamoDB models of the tables in template.yaml; `bind()` points them at the configured tables."""

from __future__ import annotations

import math
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from core.config import Settings


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
    # provider `cloud`: Graph ids, display info and KMS-encrypted secrets (`*_ciphertext`); see functions/service/cloud.
    cloud = MapAttribute[str, Any](null=True)
    options = MapAttribute[str, Any](null=True)
    # provider `web`: `server` and KMS-encrypted `credentials_ciphertext` (hosts decrypt it); see core/proxies.py.
    proxy = MapAttribute[str, Any](null=True)
    host_id = UnicodeAttribute(null=True)
    # Fencing: the token of the lease the current (or last) owner holds; only grows. Host writes require it.
    lease_token = NumberAttribute(null=True)
    host_inbox = UnicodeAttribute(null=True)  # the owner's inbox queue: where the API nudges it
    # Credentials of a migrated legacy row (session_data, unknown columns): KMS ciphertext that no API returns.
    legacy_secrets = UnicodeAttribute(null=True)
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


class PendingIndex(GlobalSecondaryIndex["MessageItem"]):
    """Sparse: messages not yet terminal, by shard and age (the sweeper's view)."""

    class Meta:
        index_name = "pending-index"
        projection = KeysOnlyProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)


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
    # Lease token of the last host that wrote this message; a host with an older token cannot write it.
    fence = NumberAttribute(null=True)
    pending_shard = UnicodeAttribute(null=True)  # set while not terminal (pending-index)
    reply_to = UnicodeAttribute(null=True)  # SQS producers: a queue that also gets this message's status events
    from_lid = UnicodeAttribute(null=True)
    # Present (empty) from creation on, so a reaction or an edit is one nested update.
    reactions = MapAttribute[str, Any](default=dict, null=True)  # reacting number (or "me") → emoji
    edits = ListAttribute[Any](default=list, null=True)  # [{body, at}] later versions, oldest first
    revoked_at = UnicodeAttribute(null=True)
    scheduled_at = UnicodeAttribute(null=True)  # held back by pacing until then
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds

    wa_message_index = WaMessageIndex()
    pending_index = PendingIndex()


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
    rate_per_second = NumberAttribute(null=True)  # its own rate limit (else its role's)
    rate_burst = NumberAttribute(null=True)

    tenant_index = ApiKeyTenantIndex()


class SigningKeyItem(Model):
    """The JWT signing key, an item of the api-keys table (no `tenant_id`: never in a tenant's key list)."""

    class Meta(_Meta):
        pass

    key_id = UnicodeAttribute(hash_key=True)
    kid = UnicodeAttribute()
    ciphertext = UnicodeAttribute()  # core/store/secrets.py, purpose JWT_KEY_PURPOSE
    created_at = UnicodeAttribute()


class IdentityProviderItem(Model):
    """A tenant's identity provider (core/store/idp.py), an item of the api-keys table keyed `idp#<sha256(issuer)>`,
    plus one `idp-tenant#<tenant>` item naming it. `owner_tenant`, not `tenant_id`: never in a tenant's key list."""

    class Meta(_Meta):
        pass

    key_id = UnicodeAttribute(hash_key=True)
    owner_tenant = UnicodeAttribute()
    issuer_key = UnicodeAttribute(null=True)  # on the tenant's item: the key of its provider's item
    config = MapAttribute[str, Any](null=True)  # IdentityProviderConfig as JSON-compatible values
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)


class IdempotencyItem(Model):
    """Remembers an Idempotency-Key: which message it created and a hash of the body."""

    class Meta(_Meta):
        pass

    id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expiration = NumberAttribute()  # TTL, epoch seconds


class LeaseItem(Model):
    """`account#<id>`: which host drives an account, until when, with which fencing token.
    `hosts`: the live hosts (id → inbox queue, pid, capacity, expiry), renewed by each host."""

    class Meta(_Meta):
        pass

    lease_id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    token = NumberAttribute(default=0)
    expires_at = NumberAttribute(default=0)  # epoch milliseconds
    # Account leases: the oldest message id the owner may still have to deliver (where a new owner starts).
    pending_from = UnicodeAttribute(null=True)
    members = MapAttribute[str, Any](null=True)  # the `hosts` item: host id → registration


class ProducerTenantIndex(GlobalSecondaryIndex["ProducerItem"]):
    class Meta:
        index_name = "tenant-index"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ProducerItem(Model):
    """An SQS producer of a tenant: its signing secret is stored encrypted with KMS, never in plaintext."""

    class Meta(_Meta):
        pass

    producer_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    secret_ciphertext = UnicodeAttribute()
    reply_queue_urls = ListAttribute[Any](default=list)  # SQS queue URLs (strings)
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)

    tenant_index = ProducerTenantIndex()


class WebhookItem(Model):
    """A tenant-wide webhook: receives the events of every account of its tenant (secret KMS-encrypted)."""

    class Meta(_Meta):
        pass

    tenant_id = UnicodeAttribute(hash_key=True)
    webhook_id = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute()
    events = ListAttribute[str](default=list)  # event types
    secret_ciphertext = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    enabled = BooleanAttribute(default=True)
    format = UnicodeAttribute(null=True)  # "meta": Meta's Cloud API payloads; absent: wagate's events
    verify_token_ciphertext = UnicodeAttribute(null=True)  # the hub.verify_token of the handshake, KMS-encrypted
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class DeliveryTimeIndex(GlobalSecondaryIndex["WebhookDeliveryItem"]):
    """An account's deliveries by creation time (the ids are hashes, so that a re-published event finds its own)."""

    class Meta:
        index_name = "account-time-index"
        projection = AllProjection()

    account_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class WebhookDeliveryItem(Model):
    """One event to one webhook (the account's or a tenant webhook): attempts, outcome, the event bytes."""

    class Meta(_Meta):
        pass

    account_id = UnicodeAttribute(hash_key=True)
    delivery_id = UnicodeAttribute(range_key=True)  # dlv_<hash of event id + target>
    tenant_id = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    target = UnicodeAttribute()  # "account" or a webhook id
    url = UnicodeAttribute()
    state = UnicodeAttribute()  # pending | delivered | failed
    attempts = NumberAttribute(default=0)
    attempt_started_at = NumberAttribute(null=True)  # epoch seconds of the attempt in flight (stall detection)
    last_status_code = NumberAttribute(null=True)
    last_latency_ms = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    next_retry_at = UnicodeAttribute(null=True)
    event = UnicodeAttribute()  # the event's exact JSON text (what is POSTed unless `body` is set)
    format = UnicodeAttribute(null=True)  # "meta": `body` is Meta's payload, signed with X-Hub-Signature-256
    body = UnicodeAttribute(null=True)  # the exact text POSTed when it is not the event (the Meta format)
    history = ListAttribute[Any](default=list)  # the last attempts: at, attempt, status_code, latency_ms, error
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds

    account_time_index = DeliveryTimeIndex()


class ContactItem(Model):
    """What an account knows about a phone number: whether it is on WhatsApp (checked on request, cached), its
    LID; under `#rate#<minute>` keys, the account's number checks per minute; under `#choices#<chat>` keys, what
    the numbers of the last numbered-text interactive message to that chat mean."""

    class Meta(_Meta):
        table_name = "wagate-contacts"

    account_id = UnicodeAttribute(hash_key=True)
    contact = UnicodeAttribute(range_key=True)  # phone digits, or `#rate#<epoch minute>`
    state = UnicodeAttribute(null=True)  # pending | done
    on_whatsapp = BooleanAttribute(null=True)
    wa_id = UnicodeAttribute(null=True)
    lid = UnicodeAttribute(null=True)
    business = BooleanAttribute(null=True)
    requested_at = UnicodeAttribute(null=True)
    checked_at = UnicodeAttribute(null=True)
    checks = NumberAttribute(null=True)  # under a `#rate#` key: checks made that minute
    choices = UnicodeAttribute(null=True)  # under a `#choices#` key: a ChoiceMenu as JSON
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds


class RealtimeItem(Model):
    """WebSocket state, one table: `ticket#<sha256>`/`ticket` (one-time tickets), `conn#<id>`/`conn` (who a
    connection is), `tenant#<tenant>`/`conn#<id>` (its live subscription: the fan-out's one query per tenant)."""

    class Meta(_Meta):
        table_name = "wagate-realtime"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant_id = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    key_id = UnicodeAttribute(null=True)
    scope = ListAttribute[str](default=list)  # the key's account_ids; empty = the whole tenant
    connection_id = UnicodeAttribute(null=True)
    account_ids = ListAttribute[str](null=True)  # subscription filter; absent = every account in scope
    events = ListAttribute[str](null=True)  # subscription filter; absent = every type
    created_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # TTL, epoch seconds (tickets: also checked on redemption)


class RecentEventItem(Model):
    """A tenant's events of the last minutes for replay: `<created_at>#<event id>` holds the event's exact JSON;
    `id#<event id>` points at it (a `since` id is found without scanning)."""

    class Meta(_Meta):
        table_name = "wagate-recent-events"

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute(null=True)
    position = UnicodeAttribute(null=True)  # on `id#` items: the event item's sk
    expires_at = NumberAttribute()  # TTL, epoch seconds


class AuditAccountIndex(GlobalSecondaryIndex["AuditItem"]):
    """Sparse: entries about an account, by time (`tenant_account` = `<tenant>#<account>`)."""

    class Meta:
        index_name = "account-index"
        projection = AllProjection()

    tenant_account = UnicodeAttribute(hash_key=True)
    audit_id = UnicodeAttribute(range_key=True)


class AuditItem(Model):
    """One audit log entry (core/store/audit.py); `audit_id` sorts by time. Only ever added, expired by TTL."""

    class Meta(_Meta):
        table_name = "wagate-audit"

    tenant_id = UnicodeAttribute(hash_key=True)
    audit_id = UnicodeAttribute(range_key=True)  # aud_<ulid>
    at = UnicodeAttribute()
    actor_type = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    action = UnicodeAttribute()
    target_type = UnicodeAttribute()
    target_id = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute(null=True)
    tenant_account = UnicodeAttribute(null=True)  # set with account_id (account-index)
    result = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    route = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # TTL, epoch seconds

    account_index = AuditAccountIndex()


class RateBucketItem(Model):
    """One token bucket of the API's rate limiter (core/store/rate_limits.py): its theoretical arrival time."""

    class Meta(_Meta):
        pass

    bucket = UnicodeAttribute(hash_key=True)
    tat_ms = NumberAttribute()  # when the bucket is full again, epoch milliseconds
    expires_at = NumberAttribute()  # TTL, epoch seconds: an idle bucket is full, its row is not needed


def bind(settings: Settings) -> None:
    """Point every model at the configured table names, region and endpoint."""
    names: dict[type[Model], str] = {
        AccountItem: settings.accounts_table,
        MessageItem: settings.messages_table,
        ApiKeyItem: settings.api_keys_table,
        SigningKeyItem: settings.api_keys_table,
        IdentityProviderItem: settings.api_keys_table,
        IdempotencyItem: settings.idempotency_table,
        LeaseItem: settings.leases_table,
        WebhookItem: settings.webhooks_table,
        WebhookDeliveryItem: settings.webhook_deliveries_table,
        ProducerItem: settings.producers_table,
        ContactItem: settings.contacts_table,
        RealtimeItem: settings.realtime_table,
        RecentEventItem: settings.recent_events_table,
        AuditItem: settings.audit_table,
        RateBucketItem: settings.rate_limits_table,
    }
    for model, name in names.items():
        model.Meta.table_name = name
        model.Meta.region = settings.region
        model.Meta.host = settings.endpoint_for("dynamodb")
        # Bounded like the boto3 clients (core/aws.py): a dead dependency is a 503, not a timeout.
        model.Meta.connect_timeout_seconds = math.ceil(settings.aws_connect_timeout)
        model.Meta.read_timeout_seconds = math.ceil(settings.aws_read_timeout)
        model.Meta.max_retry_attempts = settings.aws_max_attempts - 1
        model.Meta.max_pool_connections = 64  # a browser host calls from up to 64 worker threads
        model._connection = None  # rebuilt lazily with the new settings
        for index in model._indexes.values():
            index.Meta.model = model

