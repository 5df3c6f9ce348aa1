"""The sweeper's rules: which pending messages can no longer be delivered, and why."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from core.ids import event_id, id_floor
from core.models.events import EventType
from core.models.messages import MessageStatus
from core.store import replies
from core.store.tables import MessageItem
from functions.service.context import Services


@dataclass(frozen=True)
class SweepResult:
    checked: int
    failed: int


def sweep(svc: Services, now: float | None = None) -> SweepResult:
    """Fail pending messages older than the not-connected timeout of accounts no host drives.

    A host that holds an account decides about its messages itself (it knows whether the page is
    connected), so accounts with a live lease are left alone. Without one: `queued` messages fail with
    `account_not_connected`; messages of deleted accounts fail with `account_deleted`. A `sending`
    message of a live account is kept for the next owner, who asks WhatsApp Web whether it went out.
    """
    now = time.time() if now is None else now
    before = id_floor("msg", int((now - svc.settings.not_connected_timeout) * 1000))
    by_account: dict[str, list[str]] = defaultdict(list)
    for account_id, message_id in svc.messages.stale_pending(before):
        by_account[account_id].append(message_id)
    checked = failed = 0
    for account_id, message_ids in by_account.items():
        if svc.leases.holder(account_id) is not None:
            continue
        account = svc.accounts.read(account_id)
        deleted = account is None or bool(account.deleted_at)
        for message_id in message_ids:
            item = svc.messages.find(account_id, message_id)
            checked += 1
            if item is None:
                continue
            if deleted:
                done = svc.messages.fail(item, "account_deleted", "the account was deleted before sending")
            elif item.status == MessageStatus.QUEUED.value:
                done = svc.messages.fail(
                    item, "account_not_connected",
                    f"no connected browser host sent it within {svc.settings.not_connected_timeout:.0f}s",
                    allowed_from=frozenset({MessageStatus.QUEUED}))
            else:
                continue
            if done:
                failed += 1
                _publish_failed(svc, item)
    return SweepResult(checked, failed)


def _publish_failed(svc: Services, item: MessageItem) -> None:
    event = svc.events.publish(EventType.MESSAGE_STATUS, item.account_id, item.tenant_id,
                               {"message_id": item.message_id, "status": MessageStatus.FAILED.value,
                                "client_reference": item.client_reference,
                                "error": {"code": item.error_code, "message": item.error_message}},
                               event_id=event_id(item.message_id, MessageStatus.FAILED.value))
    if item.reply_to:  # an SQS producer's reply queue gets its messages' status events too
        replies.send_status(item.reply_to, event.model_dump_json())
