# ruff: noqa: E501  (KNOWN_UNUSED is generated data: one line per table)
"""What each principal of template.yaml calls on AWS, read from the code: the table the IAM-usage test holds the
template's grants to (tests/integration/test_iam_usage.py). `python -m infra.iam_usage` prints the differences.

Resources are named the way `granted()` normalises the template's: a logical id (table, queue, topic), `X/index`
(its indexes), `MediaBucket` (ListBucket), `MediaBucket/<prefix>/*` (objects), `SnapshotKey#<encryption context>`
(`#wagate-secret`, `#wagate-jwt-key`, `#wagate-proxy-secret`: the purpose; `#account_id`: snapshot data keys; `#via-s3`: SSE-KMS asked by
S3), `host-inboxes` (`<stack>-host-*` queues), `reply-queues` (SQS producers' queues tagged for the stack) and
`RealtimeApi/connections`.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Usage = dict[str, dict[str, set[str]]]  # principal → resource → actions

_DDB_READ = {"dynamodb:GetItem"}
_AUDIT = {"AuditTable": {"dynamodb:PutItem"}}
_MEDIA_READ_WRITE = {"MediaBucket/media/*": {"s3:PutObject", "s3:GetObject"}, "MediaBucket": {"s3:ListBucket"}}

# --- the table ----------------------------------------------------------------------------------------------------
# Derived from the store verbs each principal's code reaches (core/store/*: PynamoDB and boto3 calls), e.g.
# AccountRepository.get → GetItem, list_for_tenant → Query on the indexes, request → GetItem + UpdateItem,
# remove/purge → DeleteItem; MessageRepository.record_inbound and the hosts' contact writes → a fenced
# TransactWrite (ConditionCheckItem on the account, PutItem/UpdateItem on the row); MediaStore.head → GetObject;
# presign_get/new_upload sign with the caller's credentials, so the URL needs GetObject/PutObject too.
# Events go to the events topic (EVENTS_TOPIC_ARN is always set by the template), never straight to the queue.
USAGE: Usage = {
    "AuthorizerFunction": {
        **_AUDIT,  # auth.refused (functions/api/audit.py)
        "ApiKeysTable": {"dynamodb:GetItem"},  # the key by id; the JWT signing key; identity providers by issuer
        "SnapshotKey#wagate-jwt-key": {"kms:Decrypt"},
    },
    "ApiFunction": {  # accounts, messages, contacts (functions/service/accounts|cloud_accounts|messages|contacts)
        "RateLimitsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},  # the key's token bucket (every request)
        **_AUDIT,
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "AccountsTable/index": {"dynamodb:Query"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
        "MessagesTable/index": {"dynamodb:Query"},  # find_ref by WhatsApp id
        "IdempotencyTable": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"},
        "ContactsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "SnapshotKey#wagate-secret": {"kms:Encrypt", "kms:Decrypt"},
        "SnapshotKey#wagate-proxy-secret": {"kms:Encrypt"},  # account proxy credentials (core/proxies.py)
        "HostControlQueue": {"sqs:SendMessage"}, "host-inboxes": {"sqs:SendMessage"},
        "CloudOutboxQueue": {"sqs:SendMessage"},
        **_MEDIA_READ_WRITE, "MediaBucket/inbound/*": {"s3:GetObject"},
    },
    "LegacyApiFunction": {  # /sessions: the accounts and messages routes under old names
        "RateLimitsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},  # the key's token bucket (every request)
        **_AUDIT,
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "AccountsTable/index": {"dynamodb:Query"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
        "MessagesTable/index": {"dynamodb:Query"},
        "IdempotencyTable": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"},
        "SnapshotKey#wagate-secret": {"kms:Encrypt", "kms:Decrypt"},
        "SnapshotKey#wagate-proxy-secret": {"kms:Encrypt"},  # account proxy credentials (core/proxies.py)
        "HostControlQueue": {"sqs:SendMessage"}, "host-inboxes": {"sqs:SendMessage"},
        "CloudOutboxQueue": {"sqs:SendMessage"},
        **_MEDIA_READ_WRITE, "MediaBucket/inbound/*": {"s3:GetObject"},
    },
    "IntegrationsApiFunction": {  # keys, tokens, producers, webhooks, deliveries, media, tickets, audit, health
        "RateLimitsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},  # the key's token bucket (every request)
        "AuditTable": {"dynamodb:PutItem", "dynamodb:Query"}, "AuditTable/index": {"dynamodb:Query"},
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:Scan"},  # scope checks; the health census
        "AccountsTable/index": {"dynamodb:Query"},
        "ApiKeysTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "ApiKeysTable/index": {"dynamodb:Query"},
        "ProducersTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "ProducersTable/index": {"dynamodb:Query"},
        "WebhooksTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                          "dynamodb:Query"},
        "WebhookDeliveriesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "WebhookDeliveriesTable/index": {"dynamodb:Query"},
        "RealtimeTable": {"dynamodb:PutItem"},  # tickets
        "LeasesTable": {"dynamodb:GetItem"},  # the hosts' registrations
        "SnapshotKey#wagate-secret": {"kms:Encrypt", "kms:Decrypt"},
        "SnapshotKey#wagate-jwt-key": {"kms:Encrypt", "kms:Decrypt"},
        "WebhookRetryQueue": {"sqs:SendMessage", "sqs:GetQueueAttributes"},
        "HostControlQueue": {"sqs:GetQueueAttributes"}, "IngressQueue": {"sqs:GetQueueAttributes"},
        "EventsQueue": {"sqs:GetQueueAttributes"}, "RealtimeQueue": {"sqs:GetQueueAttributes"},
        "CloudOutboxQueue": {"sqs:GetQueueAttributes"},
        "IngressDeadLetterQueue": {"sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
        "EventsDeadLetterQueue": {"sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
        "CloudOutboxDeadLetterQueue": {"sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
        **_MEDIA_READ_WRITE,
    },
    "GraphApiFunction": {  # Cloud API compatibility (functions/service/graph_compat.py, messages, media)
        "RateLimitsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},  # the key's token bucket (every request)
        **_AUDIT,
        "AccountsTable": {"dynamodb:GetItem"}, "AccountsTable/index": {"dynamodb:Query"},
        "ApiKeysTable": {"dynamodb:GetItem"},
        "SnapshotKey#wagate-jwt-key": {"kms:Decrypt"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
        "MessagesTable/index": {"dynamodb:Query"},
        "IdempotencyTable": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"},
        "HostControlQueue": {"sqs:SendMessage"}, "host-inboxes": {"sqs:SendMessage"},
        "CloudOutboxQueue": {"sqs:SendMessage"},
        "MediaBucket/media/*": {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}, "MediaBucket": {"s3:ListBucket"},
    },
    "DashboardFunction": {},  # static files: no AWS access
    "SweeperFunction": {  # functions/service/sweeper.py, and cleanup.py (give_up, tombstones, leftovers, leases)
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                          "dynamodb:Scan"},  # Scan: the census behind the AccountsWorking/... metrics
        "AccountsTable/index": {"dynamodb:Query"},  # failing / tombstones (desired-state-index)
        "LeasesTable": {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"}, "MessagesTable/index": {"dynamodb:Query"},
        "ContactsTable": {"dynamodb:Query", "dynamodb:DeleteItem"}, "RealtimeTable": {"dynamodb:Scan", "dynamodb:UpdateItem"},
        **_AUDIT,  # account.give_up
        "MediaBucket": {"s3:ListBucket"}, "MediaBucket/inbound/*": {"s3:DeleteObject"},
        "MediaBucket/snapshots/*": {"s3:DeleteObject"},
        "HostControlQueue": {"sqs:SendMessage"}, "host-inboxes": {"sqs:SendMessage"},  # the give-up's stop nudge
        "CloudOutboxQueue": {"sqs:SendMessage"}, "EventsTopic": {"sns:Publish"}, "reply-queues": {"sqs:SendMessage"},
    },
    "CloudSenderFunction": {  # functions/service/cloud_send.py
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"}, "MessagesTable/index": {"dynamodb:Query"},
        "MediaBucket/media/*": {"s3:GetObject"}, "MediaBucket": {"s3:ListBucket"},
        "SnapshotKey#wagate-secret": {"kms:Decrypt"},
        "CloudOutboxQueue": {"sqs:ChangeMessageVisibility"}, "CloudOutboxDeadLetterQueue": {"sqs:SendMessage"},
        "EventsTopic": {"sns:Publish"}, "reply-queues": {"sqs:SendMessage"},
    },
    "MetaWebhookFunction": {  # functions/service/meta_inbound.py
        "AccountsTable": {"dynamodb:GetItem"},
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "MessagesTable/index": {"dynamodb:Query"},
        "ContactsTable": {"dynamodb:UpdateItem"},  # the per-account webhook budget
        "MediaBucket/inbound/*": {"s3:PutObject", "s3:GetObject"},
        "SnapshotKey#wagate-secret": {"kms:Decrypt"},
        "EventsTopic": {"sns:Publish"}, "reply-queues": {"sqs:SendMessage"},
    },
    "IngressFunction": {  # functions/service/ingress.py, messages.py, producers.py
        "AccountsTable": {"dynamodb:GetItem"}, "ProducersTable": {"dynamodb:GetItem"},
        "MessagesTable": {"dynamodb:PutItem"},
        "IdempotencyTable": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"},
        "SnapshotKey#wagate-secret": {"kms:Decrypt"},
        "HostControlQueue": {"sqs:SendMessage"}, "host-inboxes": {"sqs:SendMessage"},
        "CloudOutboxQueue": {"sqs:SendMessage"}, "IngressDeadLetterQueue": {"sqs:SendMessage"},
        **_MEDIA_READ_WRITE,
    },
    "WebhookFunction": {  # functions/service/webhook_delivery.py
        "AccountsTable": {"dynamodb:GetItem"}, "WebhooksTable": {"dynamodb:GetItem", "dynamodb:Query"},
        "WebhookDeliveriesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "MessagesTable": {"dynamodb:GetItem"},
        "SnapshotKey#wagate-secret": {"kms:Decrypt"},
        "WebhookRetryQueue": {"sqs:SendMessage"}, "EventsDeadLetterQueue": {"sqs:SendMessage"},
    },
    "RealtimeFunction": {  # functions/service/realtime.py: tickets, connections, subscriptions, replay
        "RealtimeTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "RecentEventsTable": {"dynamodb:GetItem", "dynamodb:Query"},
        "AccountsTable": {"dynamodb:GetItem"},
        "RealtimeApi/connections": {"execute-api:ManageConnections"},
    },
    "RealtimeFanoutFunction": {
        "RealtimeTable": {"dynamodb:Query", "dynamodb:DeleteItem"},
        "RecentEventsTable": {"dynamodb:BatchWriteItem"},
        "RealtimeApi/connections": {"execute-api:ManageConnections"},
    },
    "BrowserHostTaskRole": {  # browser_host/store.py over core/store; browser_host/crypto.py, media.py
        "AccountsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                          "dynamodb:ConditionCheckItem"},
        "AccountsTable/index": {"dynamodb:Query"},  # needing_a_host
        "MessagesTable": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "MessagesTable/index": {"dynamodb:Query"},  # by_wa_id
        "LeasesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "ContactsTable": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"},
        **_AUDIT,
        "HostControlQueue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"},
        "host-inboxes": {"sqs:CreateQueue", "sqs:DeleteQueue", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
        "EventsTopic": {"sns:Publish"}, "reply-queues": {"sqs:SendMessage"},
        "MediaBucket/snapshots/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        "MediaBucket/media/*": {"s3:GetObject"},
        "MediaBucket/inbound/*": {"s3:PutObject", "s3:GetObject"},
        "MediaBucket": {"s3:ListBucket"},
        "SnapshotKey#account_id": {"kms:GenerateDataKey", "kms:Decrypt"},
        "SnapshotKey#via-s3": {"kms:GenerateDataKey", "kms:Decrypt"},
        "SnapshotKey#wagate-proxy-secret": {"kms:Decrypt"},  # account proxy credentials (core/proxies.py)
    },
}

# Grants of SAM policy templates (DynamoDBCrudPolicy/ReadPolicy) the code does not use yet: a ratchet. The test
# requires this to be exactly (granted - used), so it can only shrink: replace a policy template with a statement
# of the used actions and delete its entry here.
def _ddb(*actions: str) -> set[str]:
    return {f"dynamodb:{a}" for a in actions}


KNOWN_UNUSED: Usage = {
    "ApiFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "ApiKeysTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "ApiKeysTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "ContactsTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'PutItem', 'Query', 'Scan'),
        "ContactsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "IdempotencyTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "IdempotencyTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'Scan', 'UpdateItem'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "AuthorizerFunction": {
        "ApiKeysTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "ApiKeysTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
    },
    "CloudSenderFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'PutItem', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "EventsQueue": {'sqs:SendMessage', 'sqs:SendMessageBatch'},
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'PutItem', 'Query', 'Scan'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "GraphApiFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Scan'),
        "ApiKeysTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "ApiKeysTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "IdempotencyTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "IdempotencyTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'Scan', 'UpdateItem'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "IngressFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "IdempotencyTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "IdempotencyTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'Query', 'Scan', 'UpdateItem'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "ProducersTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "ProducersTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
    },
    "IntegrationsApiFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Scan'),
        "ApiKeysTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "ApiKeysTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "LeasesTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "LeasesTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "ProducersTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "ProducersTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "RealtimeTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'Query', 'Scan', 'UpdateItem'),
        "RealtimeTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "WebhookDeliveriesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'PutItem', 'Query', 'Scan'),
        "WebhookDeliveriesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "WebhooksTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Scan'),
        "WebhooksTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
    },
    "LegacyApiFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "IdempotencyTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "IdempotencyTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'Scan', 'UpdateItem'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "MetaWebhookFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "ContactsTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan'),
        "ContactsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "EventsQueue": {'sqs:SendMessage', 'sqs:SendMessageBatch'},
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'Query', 'Scan'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "RealtimeFanoutFunction": {
        "RealtimeTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
        "RealtimeTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "RecentEventsTable": _ddb('BatchGetItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "RecentEventsTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
    },
    "RealtimeFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "RealtimeTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DescribeTable', 'Query', 'Scan', 'UpdateItem'),
        "RealtimeTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "RecentEventsTable": _ddb('BatchGetItem', 'DescribeTable', 'Scan'),
        "RecentEventsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
    },
    "SweeperFunction": {
        "AccountsTable": _ddb('DescribeTable', 'Query'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Scan'),
        "EventsQueue": {'sqs:SendMessage', 'sqs:SendMessageBatch'},
        "LeasesTable": _ddb('BatchGetItem', 'DescribeTable', 'Query'),
        "LeasesTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "MessagesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'PutItem', 'Query', 'Scan'),
        "MessagesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Scan', 'UpdateItem'),
    },
    "WebhookFunction": {
        "AccountsTable": _ddb('BatchGetItem', 'DescribeTable', 'Query', 'Scan'),
        "AccountsTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
        "WebhookDeliveriesTable": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'Query', 'Scan'),
        "WebhookDeliveriesTable/index": _ddb('BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'),
        "WebhooksTable": _ddb('BatchGetItem', 'DescribeTable', 'Scan'),
        "WebhooksTable/index": _ddb('BatchGetItem', 'DescribeTable', 'GetItem', 'Query', 'Scan'),
    },
}

# --- the template's grants, normalised -------------------------------------------------------------------------
_TABLE = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
SAM_POLICY_TEMPLATES: dict[str, tuple[str, set[str]]] = {  # name → (parameter, actions), from SAM's definitions
    "DynamoDBCrudPolicy": ("TableName", {
        "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
        "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem"}),
    "DynamoDBReadPolicy": ("TableName", {
        "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"}),
    "DynamoDBWritePolicy": ("TableName", {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}),
    "SQSSendMessagePolicy": ("QueueName", {"sqs:SendMessage", "sqs:SendMessageBatch"}),  # sqs:SendMessage*
    "SNSPublishMessagePolicy": ("TopicName", {"sns:Publish"}),
}
# Batch twins the code does not call are part of `sqs:SendMessage*`; counted as used with their single call.
_IMPLIED = {"sqs:SendMessageBatch": "sqs:SendMessage"}


def _logical(ref: Any) -> str:
    if isinstance(ref, dict) and "Ref" in ref:
        return str(ref["Ref"])
    if isinstance(ref, dict) and "Fn::GetAtt" in ref:
        return str(ref["Fn::GetAtt"][0])
    return repr(ref)


def resource_key(resource: Any, condition: dict[str, Any] | None = None) -> str:
    """The table's name for one Resource entry of a statement (with the statement's Condition)."""
    condition = condition or {}
    if isinstance(resource, dict) and ("Fn::GetAtt" in resource or "Ref" in resource):
        name = _logical(resource)
        if name == "SnapshotKey":
            purpose = condition.get("StringEquals", {}).get("kms:EncryptionContext:purpose")
            if purpose:
                return f"SnapshotKey#{purpose}"
            if condition.get("Null", {}).get("kms:EncryptionContext:account_id") == "false":
                return "SnapshotKey#account_id"
            if "kms:ViaService" in condition.get("StringEquals", {}):
                return "SnapshotKey#via-s3"
        return name
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
    text = text[0] if isinstance(text, list) else text
    if not isinstance(text, str):
        return repr(resource)
    if match := re.fullmatch(r"\$\{(\w+)\.Arn\}/index/\*", text):
        return f"{match.group(1)}/index"
    if match := re.fullmatch(r"\$\{(\w+)\.Arn\}/(.+)", text):
        return f"{match.group(1)}/{match.group(2)}"
    if text.endswith(":${AWS::StackName}-host-*"):
        return "host-inboxes"
    if text == "arn:${AWS::Partition}:sqs:${AWS::Region}:*:*":
        tagged = "aws:ResourceTag/wagate-reply-queue" in condition.get("StringEquals", {})
        return "reply-queues" if tagged else "any-queue (no tag condition)"
    if match := re.search(r"\$\{(\w+)\}/\$\{StageName\}/\*/@connections/\*$", text):
        return f"{match.group(1)}/connections"
    return text


def _add(found: Usage, principal: str, resource: str, actions: set[str]) -> None:
    found.setdefault(principal, {}).setdefault(resource, set()).update(actions)


def _statements(found: Usage, principal: str, statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"]
        actions = {actions} if isinstance(actions, str) else set(actions)
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            _add(found, principal, resource_key(resource, statement.get("Condition")), actions)


def granted(template: dict[str, Any]) -> Usage:
    """What the template grants the functions (their Policies) and the browser host's task role."""
    found: Usage = {}
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            found.setdefault(lid, {})
            for policy in props.get("Policies", []):
                if not isinstance(policy, dict):
                    raise ValueError(f"{lid}: managed policy {policy!r} cannot be checked; use a statement")
                for name, spec in policy.items():
                    if name == "Statement":
                        _statements(found, lid, spec)
                    elif name in SAM_POLICY_TEMPLATES:
                        parameter, actions = SAM_POLICY_TEMPLATES[name]
                        target = _logical(spec[parameter])
                        _add(found, lid, target, actions)
                        if name.startswith("DynamoDB"):
                            _add(found, lid, f"{target}/index", actions)
                    else:
                        raise ValueError(f"{lid}: SAM policy template {name} has no expansion in infra/iam_usage.py")
        elif lid == "BrowserHostTaskRole":
            for policy in props.get("Policies", []):
                _statements(found, lid, policy["PolicyDocument"]["Statement"])
    return found


def _pairs(usage: Usage) -> set[tuple[str, str, str]]:
    return {(p, r, a) for p, resources in usage.items() for r, actions in resources.items() for a in actions}


def differences(template: dict[str, Any], usage: Usage = USAGE,
                known_unused: Usage = KNOWN_UNUSED) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(granted but not used, used but not granted) as (principal, resource, action), after the ratchet."""
    grants = _pairs(granted(template))
    used = _pairs(usage)
    used |= {(p, r, a) for p, r, a in grants if a in _IMPLIED and (p, r, _IMPLIED[a]) in used}
    return grants - used - _pairs(known_unused), used - grants


# --- the code's AWS calls (an AST inventory) --------------------------------------------------------------------
# boto3 client operations the code may call, and PynamoDB operations (on a model class `...Item`, its index, an
# item, a batch or a transaction). A call of one of these names that is not in CALL_SITES fails the test.
BOTO3_OPERATIONS = frozenset({
    "send_message", "send_message_batch", "receive_message", "delete_message", "delete_message_batch",
    "change_message_visibility", "create_queue", "delete_queue", "get_queue_url", "get_queue_attributes",
    "set_queue_attributes", "purge_queue", "publish", "publish_batch", "put_object", "get_object", "head_object",
    "delete_object", "delete_objects", "copy_object", "list_objects_v2", "upload_fileobj", "upload_file",
    "download_fileobj", "generate_presigned_url", "generate_presigned_post", "encrypt", "decrypt",
    "generate_data_key", "re_encrypt", "post_to_connection", "delete_connection", "get_connection",
    "put_item", "get_item", "update_item", "delete_item", "transact_write_items", "batch_write_item", "scan",
})
PYNAMODB_CLASS_OPERATIONS = frozenset({"get", "query", "scan", "count", "batch_get", "batch_write"})
PYNAMODB_ITEM_OPERATIONS = frozenset({"save", "delete", "refresh", "condition_check"})
SCANNED = ("core", "functions", "browser_host")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in {"TransactWrite", "TransactGet"}:
        return func.id
    if not isinstance(func, ast.Attribute):
        return None
    op, owner = func.attr, func.value
    owner_name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
    if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id.endswith("Item"):
        owner_name = f"{owner.value.id}.{owner.attr}"  # an index: AccountItem.tenant_index.query
    if op in PYNAMODB_CLASS_OPERATIONS and owner_name.split(".")[0].endswith("Item"):
        return f"{owner_name}.{op}"
    if owner_name in {"router", "app"}:  # route decorators (@router.delete)
        return None
    if op in PYNAMODB_ITEM_OPERATIONS or (op == "update" and any(k.arg == "actions" for k in node.keywords)):
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id.endswith("Item"):
            return f"{owner.func.id}().{op}"
        return f"item.{op}"
    if op in BOTO3_OPERATIONS and _is_client(owner, owner_name):
        return op
    return None


def _is_client(owner: ast.expr, name: str) -> bool:
    """A boto3 client: `client("sqs")`, `presigner()`, or a variable/attribute named like one (`self.s3`, `kms`)."""
    if isinstance(owner, ast.BoolOp):  # `(kms or client("kms")).encrypt`
        return any(_is_client(value, "") for value in owner.values)
    if isinstance(owner, ast.Call):
        func = owner.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return called in {"client", "presigner", "_management_client", "_client"}
    return name.lstrip("_") in {"s3", "kms", "sqs", "sns", "ddb", "client"} or name.endswith(("s3", "kms"))


def call_sites(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Module path → how many times it calls each AWS operation (see `_call_name`)."""
    found: dict[str, dict[str, int]] = {}
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            counts = Counter(name for node in ast.walk(tree) if isinstance(node, ast.Call)
                             if (name := _call_name(node)) is not None)
            if counts:
                found[path.relative_to(root).as_posix()] = dict(sorted(counts.items()))
    return found


# Every AWS call of core/, functions/ and browser_host/ by module (operation → count), as the AST scan finds them.
# A call added or moved fails the test until its row here, and its grants in USAGE and template.yaml, follow.
CALL_SITES: dict[str, dict[str, int]] = {
    'core/store/accounts.py': {'AccountItem().delete': 1, 'AccountItem().update': 1, 'AccountItem.batch_get': 1, 'AccountItem.desired_state_index.query': 3, 'AccountItem.get': 2, 'AccountItem.tenant_index.query': 1, 'AccountItem.tenant_status_index.query': 1, 'item.delete': 1, 'item.save': 1, 'item.update': 5},
    'core/store/api_keys.py': {'ApiKeyItem.get': 1, 'ApiKeyItem.tenant_index.query': 2, 'SigningKeyItem.get': 1, 'item.delete': 1, 'item.save': 2},
    'core/store/audit.py': {'AuditItem().save': 1},
    'core/store/conditions.py': {'TransactWrite': 1, 'item.condition_check': 1, 'item.save': 1, 'item.update': 1},
    'core/store/contacts.py': {'ContactItem().update': 2, 'ContactItem.get': 1, 'ContactItem.query': 2, 'item.delete': 1},
    'core/store/health.py': {'AccountItem.scan': 1, 'get_queue_attributes': 1, 'receive_message': 1},
    'core/store/idp.py': {'IdentityProviderItem.get': 1, 'TransactWrite': 2, 'item.delete': 4, 'item.save': 2},
    'core/store/leases.py': {'LeaseItem().delete': 1, 'LeaseItem().save': 1, 'LeaseItem().update': 2, 'LeaseItem.get': 2, 'LeaseItem.scan': 1, 'item.update': 5},
    'core/store/media.py': {'delete_object': 1, 'delete_objects': 1, 'generate_presigned_url': 2, 'get_object': 2, 'head_object': 1, 'list_objects_v2': 1, 'put_object': 1},
    'core/store/messages.py': {'IdempotencyItem().delete': 1, 'IdempotencyItem.get': 1, 'MessageItem().update': 1, 'MessageItem.get': 2, 'MessageItem.pending_index.query': 1, 'MessageItem.query': 3, 'MessageItem.wa_message_index.query': 1, 'item.delete': 1, 'item.save': 2, 'item.update': 4},
    'core/store/producers.py': {'ProducerItem.get': 1, 'ProducerItem.tenant_index.query': 1, 'item.delete': 1, 'item.save': 1},
    'core/store/queues.py': {'change_message_visibility': 1, 'create_queue': 1, 'delete_message_batch': 1, 'delete_queue': 1, 'publish': 1, 'receive_message': 1, 'send_message': 4},
    'core/store/rate_limits.py': {'RateBucketItem().update': 1, 'RateBucketItem.get': 1, 'item.update': 1},
    'core/store/realtime.py': {'RealtimeItem().delete': 2, 'RealtimeItem().save': 3, 'RealtimeItem.get': 2, 'RealtimeItem.query': 1, 'RealtimeItem.scan': 1, 'RecentEventItem.batch_write': 1, 'RecentEventItem.get': 1, 'RecentEventItem.query': 1, 'delete_connection': 1, 'item.delete': 1, 'item.save': 2, 'item.update': 1, 'post_to_connection': 1},
    'core/store/replies.py': {'send_message': 1},
    'core/store/secrets.py': {'decrypt': 2, 'encrypt': 1, 'generate_data_key': 1},
    'core/store/webhooks.py': {'WebhookDeliveryItem.account_time_index.query': 1, 'WebhookDeliveryItem.get': 2, 'WebhookItem.get': 2, 'WebhookItem.query': 1, 'item.delete': 1, 'item.save': 2, 'item.update': 4, 'send_message': 2},
    'functions/api/graph.py': {'item.delete': 1},
    'functions/service/accounts.py': {'item.save': 1},
    'functions/service/api_keys.py': {'item.delete': 1},
    'functions/service/cleanup.py': {'item.delete': 1},
    'functions/service/idp.py': {'item.delete': 1},
    'functions/service/media.py': {'item.delete': 1},
    'functions/service/producers.py': {'item.delete': 1},
    'functions/service/webhooks.py': {'item.delete': 1},
    'browser_host/crypto.py': {'decrypt': 1, 'delete_object': 1, 'generate_data_key': 1, 'get_object': 1, 'put_object': 1},
}

if __name__ == "__main__":
    from infra.local.template import load_template

    unused, missing = differences(load_template())
    for label, rows in (("granted, not used", unused), ("used, not granted", missing)):
        print(f"{label}: {len(rows)}")
        for row in sorted(rows):
            print("  ", *row)
    for module, counts in call_sites().items():
        print(f"    {module!r}: {dict(sorted(counts.items()))},")
