"""Message storage, idempotency records and the outbound queue."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from functions.dal.accounts import _is_conditional, decode_cursor, encode_cursor
from functions.dal.tables import IdempotencyItem, MessageItem
from functions.models.common import utcnow
from functions.models.messages import MessageStatus, OutboundQueueMessage
from functions.shared.aws import client
from functions.shared.errors import Conflict, DependencyFailure, NotFound


class MessageRepository:
    """Messages of an account, newest first."""

    def get(self, account_id: str, message_id: str) -> MessageItem:
        try:
            return MessageItem.get(account_id, message_id, consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"message {message_id} not found", code="message_not_found") from None

    def find(self, account_id: str, message_id: str) -> MessageItem | None:
        try:
            return MessageItem.get(account_id, message_id, consistent_read=True)
        except DoesNotExist:
            return None

    def create(self, item: MessageItem) -> None:
        """Insert; an existing id is a conflict (the caller decides whether that is a replay)."""
        try:
            item.save(condition=MessageItem.message_id.does_not_exist())
        except PutError as exc:
            if _is_conditional(exc):
                raise Conflict(f"message {item.message_id} exists", code="message_exists") from exc
            raise

    def list_page(
        self, account_id: str, *, direction: str | None, limit: int, cursor: str | None
    ) -> tuple[list[MessageItem], str | None]:
        """Newest-first page, optionally one direction."""
        condition = MessageItem.direction == direction if direction else None
        items: list[MessageItem] = []
        last = decode_cursor(cursor)
        while True:
            result = MessageItem.query(
                account_id, filter_condition=condition, scan_index_forward=False,
                limit=limit - len(items), last_evaluated_key=last,
            )
            items.extend(result)
            last = result.last_evaluated_key
            if not last or len(items) >= limit:
                return items, encode_cursor(last)

    def transition(
        self, item: MessageItem, status: MessageStatus, *, allowed_from: set[MessageStatus],
        reason: str | None = None, extra: list[Any] | None = None,
    ) -> bool:
        """Move to `status` only if the stored status is one of `allowed_from`; False if it was not."""
        now = utcnow()
        actions: list[Any] = [
            MessageItem.status.set(status.value),
            MessageItem.updated_at.set(now),
            MessageItem.status_history.set(
                MessageItem.status_history.append([{"status": status.value, "at": now, "reason": reason}])
            ),
            *(extra or []),
        ]
        try:
            item.update(actions=actions, condition=MessageItem.status.is_in(*[s.value for s in allowed_from]))
        except UpdateError as exc:
            if _is_conditional(exc):
                return False
            raise
        return True

    @staticmethod
    def expiry(ttl_days: int) -> int:
        return int(time.time()) + ttl_days * 86400


class IdempotencyRepository:
    """Idempotency-Key records: the first request with a key wins."""

    def claim(self, record_id: str, message_id: str, body_hash: str, ttl_hours: int) -> IdempotencyItem | None:
        """Store the record; return the existing one instead when the key was used before."""
        item = IdempotencyItem(record_id, message_id=message_id, body_hash=body_hash,
                               expiration=int(time.time()) + ttl_hours * 3600)
        try:
            item.save(condition=IdempotencyItem.id.does_not_exist())
            return None
        except PutError as exc:
            if not _is_conditional(exc):
                raise
        try:
            existing = IdempotencyItem.get(record_id, consistent_read=True)
        except DoesNotExist:  # expired between the two calls: treat as new
            return self.claim(record_id, message_id, body_hash, ttl_hours)
        if existing.expiration < time.time():
            existing.delete()
            return self.claim(record_id, message_id, body_hash, ttl_hours)
        return existing

    def release(self, record_id: str) -> None:
        """Forget a key whose request failed, so a retry with it starts afresh."""
        IdempotencyItem(record_id).delete()


class OutboundQueue:
    """The outbound FIFO queue: one message group per account keeps each account's order."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, message: OutboundQueueMessage) -> str:
        try:
            response = client("sqs").send_message(
                QueueUrl=self.queue_url,
                MessageBody=message.model_dump_json(),
                MessageGroupId=message.account_id,
                MessageDeduplicationId=message.message_id,
                MessageAttributes={
                    "tenant_id": {"DataType": "String", "StringValue": message.tenant_id},
                    **({"correlation_id": {"DataType": "String", "StringValue": message.correlation_id}}
                       if message.correlation_id else {}),
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyFailure("could not enqueue the message; retry") from exc
        return str(response["MessageId"])


class DeadLetters:
    """Sends a rejected queue message to a DLQ with the reason attached."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, body: str, code: str, details: Any) -> None:
        text = json.dumps(details, default=str)[:4000]
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body or "<empty>",
            "MessageAttributes": {
                "error_code": {"DataType": "String", "StringValue": code},
                "error_details": {"DataType": "String", "StringValue": text or "-"},
            },
        }
        if self.queue_url.endswith(".fifo"):
            params["MessageGroupId"] = "rejected"
            params["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        client("sqs").send_message(**params)
