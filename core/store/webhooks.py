"""Webhook storage: tenant webhooks, delivery records, the retry queue and the events dead-letter queue.

Every condition on a delivery lives here. A delivery attempt is *claimed* by moving `attempts` from n-1 to
n in one conditional write, so two copies of the same work (a redelivered SQS record, a retry racing a
manual redelivery) never POST the same attempt twice; an outcome is written only by the claim's holder.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from core.aws import client
from core.errors import NotFound
from core.models.common import utcnow
from core.store.conditions import PageQuery, decode_cursor, encode_cursor, is_conditional
from core.store.tables import WebhookDeliveryItem, WebhookItem

HISTORY_LIMIT = 10


class WebhookRepository:
    """A tenant's webhooks; another tenant's ids simply do not exist."""

    def get(self, tenant_id: str, webhook_id: str) -> WebhookItem:
        try:
            return WebhookItem.get(tenant_id, webhook_id, consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found") from None

    def find(self, tenant_id: str, webhook_id: str) -> WebhookItem | None:
        try:
            return WebhookItem.get(tenant_id, webhook_id)
        except DoesNotExist:
            return None

    def list_for_tenant(self, tenant_id: str) -> list[WebhookItem]:
        """Every webhook of the tenant, oldest first (ids are ULIDs)."""
        return list(WebhookItem.query(tenant_id))

    def create(self, item: WebhookItem) -> None:
        item.save(condition=WebhookItem.webhook_id.does_not_exist())

    def update(self, item: WebhookItem, changes: dict[str, Any]) -> WebhookItem:
        """Set the given attributes (None removes an optional one); a webhook deleted meanwhile is not found."""
        actions = [getattr(WebhookItem, name).remove() if value is None else getattr(WebhookItem, name).set(value)
                   for name, value in changes.items()]
        actions.append(WebhookItem.updated_at.set(utcnow()))
        try:
            item.update(actions=actions, condition=WebhookItem.webhook_id.exists())
        except UpdateError as exc:
            if is_conditional(exc):
                raise NotFound(f"webhook {item.webhook_id} not found", code="webhook_not_found") from exc
            raise
        return item

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        self.get(tenant_id, webhook_id).delete()


class DeliveryRepository:
    """Delivery records of an account; listed newest first through the account-time index."""

    def __init__(self, ttl_days: int = 7) -> None:
        self.ttl_seconds = ttl_days * 86400

    def get(self, account_id: str, delivery_id: str) -> WebhookDeliveryItem:
        try:
            return WebhookDeliveryItem.get(account_id, delivery_id, consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"delivery {delivery_id} not found", code="delivery_not_found") from None

    def find(self, account_id: str, delivery_id: str) -> WebhookDeliveryItem | None:
        try:
            return WebhookDeliveryItem.get(account_id, delivery_id, consistent_read=True)
        except DoesNotExist:
            return None

    def create(self, item: WebhookDeliveryItem) -> bool:
        """Insert a new record; False when one with this id exists (the same event and target seen again)."""
        now = utcnow()
        item.created_at = item.created_at or now
        item.updated_at = now
        item.expires_at = int(time.time()) + self.ttl_seconds
        try:
            item.save(condition=WebhookDeliveryItem.delivery_id.does_not_exist())
        except PutError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def list_page(self, account_id: str, *, state: str | None, limit: int,
                  cursor: str | None) -> tuple[list[WebhookDeliveryItem], str | None]:
        condition = WebhookDeliveryItem.state == state if state else None
        items: list[WebhookDeliveryItem] = []
        last = decode_cursor(cursor, PageQuery(WebhookDeliveryItem, account_id, WebhookDeliveryItem.account_time_index))
        while True:
            result = WebhookDeliveryItem.account_time_index.query(
                account_id, filter_condition=condition, scan_index_forward=False, limit=limit - len(items),
                last_evaluated_key=last)
            items.extend(result)
            last = result.last_evaluated_key
            if not last or len(items) >= limit:
                return items, encode_cursor(last)

    def claim(self, item: WebhookDeliveryItem, attempt: int, url: str) -> bool:
        """Take attempt number `attempt` (the record must be pending at attempt-1); False if someone else did."""
        condition: Condition = (WebhookDeliveryItem.attempts == attempt - 1) & (WebhookDeliveryItem.state == "pending")
        try:
            item.update(actions=[
                WebhookDeliveryItem.attempts.set(attempt), WebhookDeliveryItem.url.set(url),
                WebhookDeliveryItem.attempt_started_at.set(int(time.time())),
                WebhookDeliveryItem.next_retry_at.remove(), WebhookDeliveryItem.updated_at.set(utcnow()),
            ], condition=condition)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def record(self, item: WebhookDeliveryItem, attempt: int, *, state: str, status_code: int | None,
               latency_ms: int | None, error: str | None, next_retry_at: str | None) -> bool:
        """The outcome of attempt `attempt`, if it is still the latest one (False: a newer attempt took over)."""
        now = utcnow()
        entry: dict[str, Any] = {"at": now, "attempt": attempt, "status_code": status_code, "latency_ms": latency_ms,
                 "error": error}
        history = [*list(item.history or []), entry][-HISTORY_LIMIT:]
        actions: list[Any] = [
            WebhookDeliveryItem.state.set(state), WebhookDeliveryItem.history.set(history),
            WebhookDeliveryItem.attempt_started_at.remove(), WebhookDeliveryItem.updated_at.set(now),
        ]
        for number, value in ((WebhookDeliveryItem.last_status_code, status_code),
                              (WebhookDeliveryItem.last_latency_ms, latency_ms)):
            actions.append(number.remove() if value is None else number.set(value))
        for text, string in ((WebhookDeliveryItem.last_error, error),
                             (WebhookDeliveryItem.next_retry_at, next_retry_at)):
            actions.append(text.remove() if string is None else text.set(string))
        try:
            item.update(actions=actions, condition=WebhookDeliveryItem.attempts == attempt)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def reopen(self, item: WebhookDeliveryItem) -> bool:
        """Make a delivered or failed record pending again for a manual redelivery; False if it changed."""
        try:
            item.update(actions=[WebhookDeliveryItem.state.set("pending"),
                                 WebhookDeliveryItem.next_retry_at.set(utcnow()),
                                 WebhookDeliveryItem.updated_at.set(utcnow())],
                        condition=WebhookDeliveryItem.attempts == int(item.attempts))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True


class RetryQueue:
    """Where an attempt waits for its turn: `{delivery_id, account_id, attempt}` with SQS DelaySeconds."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def schedule(self, account_id: str, delivery_id: str, attempt: int, delay_seconds: int) -> None:
        body = json.dumps({"delivery_id": delivery_id, "account_id": account_id, "attempt": attempt})
        client("sqs").send_message(
            QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=max(0, min(900, int(delay_seconds))),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "webhook.retry"}})


class EventDeadLetters:
    """Events a webhook never accepted, on the events DLQ with what was tried and why it failed."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, event_json: str, *, delivery_id: str, url: str, reason: str, account_id: str,
             event_type: str) -> None:
        attributes = {"delivery_id": delivery_id, "url": url[:1000], "reason": reason[:1000] or "-",
                      "account_id": account_id, "type": event_type}
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=event_json, MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
