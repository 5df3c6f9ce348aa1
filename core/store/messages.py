"""Message storage (also the outbox hosts drain) and idempotency records."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition

from core.errors import Conflict, NotFound
from core.models.common import utcnow
from core.models.messages import STATUS_RANK, Direction, MessageStatus
from core.store.conditions import PageQuery, decode_cursor, encode_cursor, fenced_write, is_conditional
from core.store.tables import IdempotencyItem, MessageItem

PENDING = frozenset({MessageStatus.QUEUED, MessageStatus.SENDING})
PENDING_SHARDS = 4


def pending_shard(message_id: str) -> str:
    """Spreads the sparse pending index over a few partitions (no hot key on AWS)."""
    return str(int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16) % PENDING_SHARDS)


def _fence_ok(token: int | None) -> Condition | None:
    """A host write is allowed unless a newer owner (higher lease token) already wrote the message."""
    if token is None:
        return None
    condition: Condition = MessageItem.fence.does_not_exist() | (MessageItem.fence <= token)
    return condition


class MessageRepository:
    """Messages of an account, newest first; the outbound ones are also the outbox hosts drain."""

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
        if item.status in PENDING:
            item.pending_shard = pending_shard(item.message_id)
        try:
            item.save(condition=MessageItem.message_id.does_not_exist())
        except PutError as exc:
            if is_conditional(exc):
                raise Conflict(f"message {item.message_id} exists", code="message_exists") from exc
            raise

    def list_page(
        self, account_id: str, *, direction: str | None, limit: int, cursor: str | None
    ) -> tuple[list[MessageItem], str | None]:
        """Newest-first page, optionally one direction."""
        condition = MessageItem.direction == direction if direction else None
        items: list[MessageItem] = []
        last = decode_cursor(cursor, PageQuery(MessageItem, account_id))
        while True:
            result = MessageItem.query(
                account_id, filter_condition=condition, scan_index_forward=False,
                limit=limit - len(items), last_evaluated_key=last,
            )
            items.extend(result)
            last = result.last_evaluated_key
            if not last or len(items) >= limit:
                return items, encode_cursor(last)

    # --- the outbox ---------------------------------------------------------------------------------------

    def pending(self, account_id: str, since_id: str, limit: int = 50) -> list[MessageItem]:
        """An account's outbound messages not yet handed over (queued) or not yet confirmed (sending),
        oldest first, from `since_id` on (a key-range read of the account's own partition)."""
        condition = MessageItem.status.is_in(*[s.value for s in PENDING])
        return list(MessageItem.query(account_id, MessageItem.message_id >= since_id, filter_condition=condition,
                                      consistent_read=True, scan_index_forward=True, limit=limit))

    def last_handed_over(self, account_id: str, look_at: int = 100) -> str | None:
        """When the account's latest outbound message was handed to WhatsApp (its `sending` time), from its newest
        `look_at` messages (None: none of them was): where a new owner's pacing gap counts from."""
        # No filter expression: `look_at` bounds what is read, inbound messages included (a filter would read on
        # through an account's whole inbound history to find outbound ones).
        for item in MessageItem.query(account_id, scan_index_forward=False, limit=look_at, page_size=50):
            if item.direction != Direction.OUTBOUND.value:
                continue
            handed = [str(h["at"]) for h in item.status_history or [] if isinstance(h, dict)
                      and h.get("status") == MessageStatus.SENDING.value and h.get("at")]
            if handed:
                return str(max(handed))
        return None

    def stale_pending(self, before_id: str) -> list[tuple[str, str]]:
        """(account_id, message_id) of messages still pending that were created before `before_id`."""
        keys: list[tuple[str, str]] = []
        for shard in range(PENDING_SHARDS):
            for item in MessageItem.pending_index.query(str(shard), MessageItem.message_id < before_id):
                keys.append((item.account_id, item.message_id))
        return keys

    def transition(
        self, item: MessageItem, status: MessageStatus, *, allowed_from: set[MessageStatus] | frozenset[MessageStatus],
        reason: str | None = None, extra: list[Any] | None = None, token: int | None = None,
    ) -> bool:
        """Move to `status` only if the stored status is one of `allowed_from` (and, for a host, its lease
        token is not older than the message's fence); False if it was not."""
        now = utcnow()
        actions: list[Any] = [
            MessageItem.status.set(status.value),
            MessageItem.updated_at.set(now),
            MessageItem.status_history.set(
                MessageItem.status_history.append([{"status": status.value, "at": now, "reason": reason}])
            ),
            *(extra or []),
        ]
        if status not in PENDING:
            actions.append(MessageItem.pending_shard.remove())
        if token is not None:
            actions.append(MessageItem.fence.set(token))
        condition = MessageItem.status.is_in(*[s.value for s in allowed_from])
        fence = _fence_ok(token)
        if fence is not None:
            condition = condition & fence
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def mark_sending(self, item: MessageItem, wa_message_id: str, token: int, attempt: bool = True) -> bool:
        """queued → sending, fenced (only the owner moves a message on), counting the hand-over it is about
        to make as an attempt; False if it was not queued."""
        extra: list[Any] = [MessageItem.wa_message_id.set(wa_message_id)]
        if attempt:
            extra.append(MessageItem.attempts.add(1))
        return self.transition(item, MessageStatus.SENDING, allowed_from={MessageStatus.QUEUED}, extra=extra,
                               token=token)

    def schedule(self, item: MessageItem, at: str, token: int) -> bool:
        """Pacing holds a queued message back until `at` (fenced; a message no longer queued is left alone)."""
        try:
            item.update(actions=[MessageItem.scheduled_at.set(at), MessageItem.fence.set(token),
                                 MessageItem.updated_at.set(utcnow())],
                        condition=MessageItem.status.is_in(MessageStatus.QUEUED.value) & _fence_ok(token))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        item.scheduled_at = at
        return True

    def count_attempt(self, item: MessageItem, token: int) -> bool:
        """One more hand-over to WhatsApp Web (only real attempts count; waiting does not)."""
        try:
            item.update(actions=[MessageItem.attempts.add(1), MessageItem.fence.set(token)],
                        condition=MessageItem.status.is_in(MessageStatus.SENDING.value) & _fence_ok(token))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def set_wa_id(self, item: MessageItem, wa_message_id: str, token: int) -> bool:
        try:
            item.update(actions=[MessageItem.wa_message_id.set(wa_message_id)], condition=_fence_ok(token))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def advance(self, item: MessageItem, status: MessageStatus, token: int | None, reason: str | None = None) -> bool:
        """Move an outbound message forward to `status` (sent, delivered, read); acks never move it back."""
        earlier = {s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]}
        return self.transition(item, status, allowed_from=earlier, reason=reason or f"ack {status.value}",
                               token=token)

    def fail(self, item: MessageItem, code: str, message: str, token: int | None = None,
             allowed_from: frozenset[MessageStatus] = PENDING) -> bool:
        """Terminal failure with a machine-readable reason, only from a non-terminal status."""
        return self.transition(item, MessageStatus.FAILED, allowed_from=allowed_from, reason=code,
                               extra=[MessageItem.error_code.set(code), MessageItem.error_message.set(message[:2000])],
                               token=token)

    def find_ref(self, account_id: str, ref: str) -> MessageItem | None:
        """A message of this account named by its wagate id (`msg_…`) or its WhatsApp id (what replies,
        reactions, read receipts, edits and revokes point at)."""
        item = self.find(account_id, ref) if ref.startswith("msg_") else self.by_wa_id(ref)
        return item if item is not None and item.account_id == account_id else None

    def by_wa_id(self, wa_message_id: str) -> MessageItem | None:
        for item in MessageItem.wa_message_index.query(wa_message_id, limit=1):
            return self.find(item.account_id, item.message_id)
        return None

    def record_inbound(self, item: MessageItem, account_id: str, token: int) -> bool:
        """Store an inbound message once (its id is deterministic), only while `token` still owns the account."""
        return fenced_write(account_id, token, save=(item, MessageItem.message_id.does_not_exist()))

    def annotate(self, account_id: str, message_id: str, actions: list[Any], token: int | None) -> bool:
        """Record what happened to a stored message later (a reaction, an edit, a revoke), only while `token`
        still owns the account; False when the message is not stored (expired, or never seen). `token` None:
        a Cloud API account's write (no host, no lease: its webhook function writes)."""
        if token is None:
            try:
                MessageItem(account_id, message_id).update(actions=actions, condition=MessageItem.message_id.exists())
            except UpdateError as exc:
                if is_conditional(exc):
                    return False
                raise TransactWriteError(str(exc)) from exc  # as a fenced write would (e.g. a missing map)
            return True
        return fenced_write(account_id, token, update=(MessageItem(account_id, message_id), actions,
                                                       MessageItem.message_id.exists()))

    def record_reaction(self, account_id: str, message_id: str, sender: str, emoji: str, token: int | None) -> bool:
        """`sender` reacted with `emoji` ("" removes the reaction)."""
        now = utcnow()
        reactions = MessageItem.reactions
        action = reactions[sender].set(emoji) if emoji else reactions[sender].remove()
        try:
            return self.annotate(account_id, message_id, [action, MessageItem.updated_at.set(now)], token)
        except TransactWriteError:  # a row stored before `reactions` existed: start its map
            if not emoji:
                return False
            return self.annotate(account_id, message_id, [reactions.set({sender: emoji}),
                                                          MessageItem.updated_at.set(now)], token)

    def record_edit(self, account_id: str, message_id: str, body: str, token: int) -> bool:
        """A later version of the message's text (oldest first in `edits`)."""
        now = utcnow()
        entry = [{"body": body, "at": now}]
        try:
            return self.annotate(account_id, message_id, [
                MessageItem.edits.set(MessageItem.edits.append(entry)), MessageItem.updated_at.set(now)], token)
        except TransactWriteError:  # a row stored before `edits` existed
            return self.annotate(account_id, message_id, [MessageItem.edits.set(entry),
                                                          MessageItem.updated_at.set(now)], token)

    def record_revoke(self, account_id: str, message_id: str, token: int) -> bool:
        now = utcnow()
        return self.annotate(account_id, message_id, [MessageItem.revoked_at.set(now),
                                                      MessageItem.updated_at.set(now)], token)

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
            if not is_conditional(exc):
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
