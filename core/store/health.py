"""Read-only looks at the stack for the operator's health check: queue depths, DLQ samples, an account census."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.aws import client
from core.store.tables import AccountItem

#: The attributes of an account the census reads (never credentials, QR codes or metadata).
CENSUS_ATTRIBUTES = ["account_id", "tenant_id", "connection_status", "desired_state", "provider", "pending_action",
                     "action_requested_at", "host_id", "deleted_at", "status_history", "status_reason",
                     "created_at"]


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int
    delayed: int


@dataclass(frozen=True)
class Sample:
    sent_at: str | None
    reason: str | None


class QueueGauge:
    """SQS counts (GetQueueAttributes) and a peek at dead letters."""

    def depth(self, queue_url: str) -> QueueDepth:
        attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return QueueDepth(int(attributes.get("ApproximateNumberOfMessages", 0)),
                          int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                          int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)))

    def peek(self, queue_url: str, count: int = 3) -> list[Sample]:
        """A few messages of a DLQ, left where they are (visibility timeout 0): when they came and why."""
        response = client("sqs").receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max(1, min(count, 10)), VisibilityTimeout=0, WaitTimeSeconds=0,
            MessageAttributeNames=["error_code", "reason"], MessageSystemAttributeNames=["SentTimestamp"])
        samples = []
        for message in response.get("Messages", []):
            attributes = message.get("MessageAttributes") or {}
            reason = (attributes.get("error_code") or attributes.get("reason") or {}).get("StringValue")
            sent = (message.get("Attributes") or {}).get("SentTimestamp")
            samples.append(Sample(epoch_ms_iso(int(sent)) if sent else None, reason[:200] if reason else None))
        return samples


@dataclass(frozen=True)
class Census:
    accounts: list[AccountItem]
    truncated: bool


def account_census(limit: int = 10_000) -> Census:
    """Every account item (tombstones included) with the attributes the health rules need, at most `limit`.

    A scan: fine for the operator's occasional look at thousands of accounts; past `limit` the counts are partial.
    """
    found: list[AccountItem] = []
    result = AccountItem.scan(attributes_to_get=CENSUS_ATTRIBUTES, page_size=1000)
    for item in result:
        if len(found) >= limit:
            return Census(found, True)
        found.append(item)
    return Census(found, False)


def epoch_ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain_history(item: AccountItem) -> list[dict[str, Any]]:
    """The status history as plain dicts."""
    entries = item.status_history or []
    return [e.as_dict() if hasattr(e, "as_dict") else dict(e) for e in entries]
