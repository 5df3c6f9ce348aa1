"""The host's reads and writes: accounts, messages and events (sync boto3/PynamoDB, called via to_thread)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from functions.dal import tables
from functions.dal.accounts import _is_conditional
from functions.dal.messages import MessageRepository
from functions.dal.tables import AccountItem, MessageItem
from functions.models.accounts import ConnectionStatus
from functions.models.common import utcnow
from functions.models.events import Event, EventType
from functions.models.messages import STATUS_RANK, Direction, MessageStatus
from functions.service.accounts import status_actions
from functions.shared.aws import client
from functions.shared.config import Settings
from functions.shared.ids import _b32, new_id


def wa_message_id(message_id: str) -> str:
    """The WhatsApp message id wagate asks the page to use: stable, so a retry can find the first try."""
    return "3EB0" + hashlib.sha256(message_id.encode()).hexdigest()[:16].upper()


def inbound_message_id(wa_serialized: str, timestamp: int) -> str:
    """Time-ordered and deterministic, so a re-emitted inbound message is stored once."""
    digest = int(hashlib.sha256(wa_serialized.encode()).hexdigest()[:20], 16)
    return f"msg_{_b32(timestamp * 1000, 10)}{_b32(digest, 16)}"


class HostStore:
    """Accounts, messages and events as the browser host needs them."""

    def __init__(self, settings: Settings, ttl_days: int | None = None) -> None:
        tables.bind(settings)
        self.settings = settings
        self.ttl_days = ttl_days or settings.message_ttl_days
        self._messages = MessageRepository()

    # --- accounts ---------------------------------------------------------------------------------------

    def running_accounts(self) -> list[AccountItem]:
        return [a for a in AccountItem.desired_state_index.query("running") if not a.deleted_at]

    def get_account(self, account_id: str) -> AccountItem | None:
        try:
            item = AccountItem.get(account_id, consistent_read=True)
        except DoesNotExist:
            return None
        return None if item.deleted_at else item

    def update_account(self, account_id: str, build: Callable[[AccountItem], list[Any] | None]) -> AccountItem | None:
        """Apply `build(item)`'s actions; re-read and retry when the API changed the item meanwhile."""
        for _ in range(8):
            item = self.get_account(account_id)
            if item is None:
                return None
            actions = build(item)
            if not actions:
                return item
            try:
                item.update(actions=[*actions, AccountItem.updated_at.set(utcnow())],
                            condition=AccountItem.deleted_at.does_not_exist())
                return item
            except UpdateError as exc:
                if not _is_conditional(exc):
                    raise
        raise RuntimeError(f"account {account_id} kept changing; giving up this update")

    def set_status(self, account_id: str, status: ConnectionStatus, reason: str | None,
                   extra: list[Any] | None = None, host_id: str | None = None) -> AccountItem | None:
        """Record a status transition (and bounded history) unless the account is already there."""
        def build(item: AccountItem) -> list[Any] | None:
            actions = list(extra or [])
            if item.connection_status != status.value:
                actions += status_actions(item, status, reason)
            if host_id is not None and item.host_id != host_id:
                actions.append(AccountItem.host_id.set(host_id) if host_id else AccountItem.host_id.remove())
            return actions
        return self.update_account(account_id, build)

    def clear_pending_action(self, account_id: str, requested_at: str | None) -> None:
        def build(item: AccountItem) -> list[Any] | None:
            if item.action_requested_at != requested_at or not item.pending_action:
                return None  # a newer request arrived: leave it for the next reconcile
            return [AccountItem.pending_action.remove()]
        self.update_account(account_id, build)

    # --- messages ---------------------------------------------------------------------------------------

    def get_message(self, account_id: str, message_id: str) -> MessageItem | None:
        try:
            return MessageItem.get(account_id, message_id, consistent_read=True)
        except DoesNotExist:
            return None

    def transition(self, item: MessageItem, status: MessageStatus, allowed_from: set[MessageStatus],
                   reason: str | None = None, extra: list[Any] | None = None) -> bool:
        """Conditional status change (the API's own repository does it: one implementation)."""
        return self._messages.transition(item, status, allowed_from=allowed_from, reason=reason, extra=extra)

    def fail(self, item: MessageItem, code: str, message: str) -> bool:
        """Terminal failure with a machine-readable reason (only from a non-terminal status)."""
        return self.transition(item, MessageStatus.FAILED, {MessageStatus.QUEUED, MessageStatus.SENDING}, code,
                               [MessageItem.error_code.set(code), MessageItem.error_message.set(message[:2000])])

    def by_wa_id(self, wa_serialized: str) -> MessageItem | None:
        for item in MessageItem.wa_message_index.query(wa_serialized, limit=1):
            return self.get_message(item.account_id, item.message_id)
        return None

    def apply_ack(self, wa_serialized: str, status: MessageStatus) -> MessageItem | None:
        """Move an outbound message forward to `status`; acks never move it back."""
        item = self.by_wa_id(wa_serialized)
        if item is None or item.direction != Direction.OUTBOUND.value:
            return None
        if status is MessageStatus.FAILED:
            return item if self.fail(item, "send_failed", "WhatsApp reported the message as failed") else None
        earlier = {s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]}
        return item if self.transition(item, status, earlier, f"ack {status.value}") else None

    def record_inbound(self, account_id: str, tenant_id: str, phone_number: str | None,
                       msg: dict[str, Any]) -> MessageItem | None:
        """Store an inbound message once; None when it was already stored."""
        wa_id = str(msg["id"])
        now = utcnow()
        content = {"type": msg["type"], msg["type"]: msg["content"], "wa_message_id": wa_id}
        item = MessageItem(
            account_id, inbound_message_id(wa_id, int(msg.get("t") or 0)), tenant_id=tenant_id,
            direction=Direction.INBOUND.value, status=MessageStatus.RECEIVED.value, type=msg["type"],
            to=phone_number, from_number=msg.get("from"), content=json.dumps(content, separators=(",", ":")),
            wa_message_id=wa_id,
            status_history=[{"status": MessageStatus.RECEIVED.value, "at": now, "reason": None}],
            created_at=now, updated_at=now, expires_at=_expiry(self.ttl_days),
        )
        try:
            item.save(condition=MessageItem.message_id.does_not_exist())
        except PutError as exc:
            if _is_conditional(exc):
                return None
            raise
        return item

    # --- events -----------------------------------------------------------------------------------------

    def publish(self, kind: EventType, account_id: str, tenant_id: str, payload: dict[str, Any],
                correlation_id: str | None = None) -> Event:
        event = Event(event_id=new_id("evt"), type=kind, occurred_at=utcnow(), account_id=account_id,
                      tenant_id=tenant_id, correlation_id=correlation_id, payload=payload)
        client("sqs").send_message(
            QueueUrl=self.settings.events_queue_url, MessageBody=event.model_dump_json(),
            MessageAttributes={"type": {"DataType": "String", "StringValue": kind.value},
                               "account_id": {"DataType": "String", "StringValue": account_id}},
        )
        return event


def _expiry(days: int) -> int:
    import time

    return int(time.time()) + days * 86400
