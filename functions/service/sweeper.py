"""The sweeper's rules: which pending messages can no longer be delivered, and why; then the cleanup
(functions/service/cleanup.py)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from core.ids import id_floor
from core.models.accounts import ConnectionStatus
from core.models.messages import MessageStatus
from core.observability import logger
from core.store.health import account_census
from core.store.tables import AccountItem, MessageItem
from functions.service import cloud_accounts as cloud
from functions.service.cleanup import CleanupResult, cleanup
from functions.service.cloud_send import UNCONFIRMED_AFTER_SECONDS, seconds_since
from functions.service.context import Services
from functions.service.messages import publish_status

#: A queued Cloud API message is retried (rate limits, Meta's 5xx) for this long, then fails.
CLOUD_RETRY_WINDOW = 3600.0
#: A queued Cloud API message nothing happened to for this long lost its queue message: it is queued again.
IDLE_BEFORE_REQUEUE = 300.0


@dataclass(frozen=True)
class SweepResult:
    checked: int
    failed: int


def run(svc: Services, now: float | None = None) -> tuple[SweepResult, CleanupResult | None]:
    """One scheduled run: the sweep, then the cleanup (None when it failed: logged, and tried again next run;
    it never holds up the sweep)."""
    swept = sweep(svc, now)
    try:
        return swept, cleanup(svc, now)
    except Exception:  # noqa: BLE001 - AWS trouble or a bug in one rule: the next run starts over
        logger.exception("cleanup failed")
        return swept, None


#: CloudWatch metric of each connection status (the fleet dashboard's "accounts by status").
STATUS_METRICS = {status: "Accounts" + status.value.title().replace("_", "") for status in ConnectionStatus}


def accounts_by_status() -> dict[ConnectionStatus, int]:
    """How many accounts (deleted ones aside) are in each connection status: one projected scan per run."""
    counts = dict.fromkeys(ConnectionStatus, 0)
    for item in account_census().accounts:
        if not item.deleted_at and item.connection_status in ConnectionStatus.__members__:
            counts[ConnectionStatus(item.connection_status)] += 1
    return counts


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
        account = svc.accounts.read(account_id)
        deleted = account is None or bool(account.deleted_at)
        if not deleted and account is not None and cloud.is_cloud(account):
            checked += len(message_ids)
            failed += _sweep_cloud(svc, account, message_ids, now)
            continue
        if svc.leases.holder(account_id) is not None:
            continue
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
    publish_status(svc, item, MessageStatus.FAILED, error={"code": item.error_code, "message": item.error_message})


def _sweep_cloud(svc: Services, account: AccountItem, message_ids: list[str], now: float) -> int:
    """A Cloud API account's old pending messages: a queue message may have been lost (re-queued, while the
    account works and the message is younger than CLOUD_RETRY_WINDOW); older ones, or any of an account that
    does not work, fail; a claimed send with no outcome fails as unconfirmed. Returns how many failed."""
    working = account.connection_status == ConnectionStatus.WORKING.value
    failed = 0
    for message_id in message_ids:
        item = svc.messages.find(account.account_id, message_id)
        if item is None:
            continue
        idle = seconds_since(item.updated_at, now)
        if item.status == MessageStatus.SENDING.value:
            if idle >= UNCONFIRMED_AFTER_SECONDS:
                failed += _fail(svc, item, "send_unconfirmed", "the Cloud API call was interrupted before Meta "
                                "answered: the message may or may not have been sent, and is not sent again",
                                frozenset({MessageStatus.SENDING}))
        elif not working:
            failed += _fail(svc, item, "account_not_connected",
                            f"the Cloud API account is {account.connection_status} "
                            f"({account.status_reason or 'no reason'})", frozenset({MessageStatus.QUEUED}))
        elif seconds_since(item.created_at, now) >= CLOUD_RETRY_WINDOW:
            failed += _fail(svc, item, "retries_exhausted",
                            f"the Cloud API did not take it within {CLOUD_RETRY_WINDOW:.0f}s of retries",
                            frozenset({MessageStatus.QUEUED}))
        elif idle >= IDLE_BEFORE_REQUEUE:
            svc.cloud_outbox.send(account.account_id, message_id, again=True)
    return failed


def _fail(svc: Services, item: MessageItem, code: str, message: str, allowed: frozenset[MessageStatus]) -> int:
    if not svc.messages.fail(item, code, message, allowed_from=allowed):
        return 0
    publish_status(svc, item, MessageStatus.FAILED, error={"code": code, "message": message})
    return 1
