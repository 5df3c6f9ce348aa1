"""Automated cleanup, run by the sweeper: accounts FAILED for too long stop retrying, deleted accounts' leftovers
are removed, and stale leases expire.

Every pass is bounded (at most so many items per run; the rest next time) and idempotent, and every write is
conditional on what was read, so a host or an API request acting at the same moment wins and the sweeper looks
again on its next run. Time is `now` (epoch seconds), so tests need not wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.models.accounts import ConnectionStatus
from core.models.audit import Actor, ActorType, Target
from core.models.common import epoch_of
from core.models.events import EventType
from core.observability import logger
from core.store.accounts import plain
from core.store.audit import AuditRepository
from core.store.leases import LeaseRow
from core.store.media import inbound_prefix, snapshot_key
from core.store.tables import AccountItem
from functions.service import cloud_accounts as cloud
from functions.service.context import Services

#: The status reason's code when the sweeper stops retrying an account.
GAVE_UP = "gave_up_after_failures"
#: A deleted web account no host purged (no host runs, none has room) is cleaned without one after this long;
#: its device stays linked until it is unlinked from the phone (WhatsApp drops devices offline for ~14 days).
UNPURGED_GRACE_SECONDS = 24 * 3600.0
#: How long past its expiry a lease whose holder is no live host counts as stale (live hosts take over first).
STALE_AFTER_SECONDS = 300.0
#: The leases table is scanned in this many segments, one per run (the minute picks it): each run reads a tenth.
LEASE_SCAN_SEGMENTS = 10
MAX_GIVE_UPS = 25  # accounts stopped per run
MAX_ACCOUNTS = 10  # deleted accounts cleaned per run
MAX_ROWS = 500  # objects, and contacts rows, removed per account per run
MAX_STALE = 100  # stale holders forgotten per run
_SYSTEM = Actor(type=ActorType.SYSTEM, id="sweeper")
_PAGE_NEEDED = frozenset({ConnectionStatus.WORKING.value, ConnectionStatus.SCAN_QR_CODE.value})


@dataclass
class CleanupResult:
    gave_up: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # deleted accounts with nothing left behind
    objects_removed: int = 0
    rows_removed: int = 0
    leases_removed: int = 0
    leases_expired: int = 0


def cleanup(svc: Services, now: float | None = None, segment: int | None = None,
            segments: int = LEASE_SCAN_SEGMENTS) -> CleanupResult:
    """One run of every cleanup rule. `segment` of `segments` is the share of the leases table read this time
    (default: the current minute's)."""
    now = time.time() if now is None else now
    result = CleanupResult()
    give_up_failed(svc, now, result)
    clean_tombstones(svc, now, result)
    segment = int(now // 60) % segments if segment is None else segment
    clean_leases(svc, now, result, segment, segments)
    return result


# --- accounts that keep failing ----------------------------------------------------------------------------

def failing_since(item: AccountItem) -> float | None:
    """When the account's current run of failures began: its first FAILED since it last worked, or the last
    request a user made (a start is a new try), whichever is later."""
    started: str | None = None
    for entry in reversed([plain(e) for e in item.status_history or []]):
        if entry.get("to") == ConnectionStatus.WORKING.value:
            break
        if entry.get("to") == ConnectionStatus.FAILED.value:
            started = entry.get("at")
    moments = [epoch_of(started or item.updated_at), epoch_of(item.action_requested_at)]
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def give_up_failed(svc: Services, now: float, result: CleanupResult) -> None:
    """Accounts FAILED for longer than FAILED_GIVE_UP_HOURS while still meant to run (hosts reopen those after
    every restart or takeover; a Cloud API number with a dead token waits for nothing) are set stopped with why."""
    limit = svc.settings.failed_give_up_hours * 3600
    for item in svc.accounts.failing():
        if len(result.gave_up) >= MAX_GIVE_UPS:
            return
        since = failing_since(item)
        if since is None or now - since < limit:
            continue
        hours = f"{svc.settings.failed_give_up_hours:g}"
        reason = (f"{GAVE_UP}: FAILED for more than {hours} h ({item.status_reason or 'no reason given'}); "
                  f"start it again once the cause is fixed")[:500]
        if not svc.accounts.give_up(item, reason):
            continue  # changed meanwhile (a start, a host's write): theirs wins
        result.gave_up.append(item.account_id)
        if not cloud.is_cloud(item):
            svc.nudges.send(item.account_id, "stop", item.host_inbox)  # its host lets go now, not at its next look
        _announce(svc, item, ConnectionStatus.FAILED, reason)
        AuditRepository(svc.settings.audit_retention_days).record(
            item.tenant_id, "account.give_up", _SYSTEM, Target(type="account", id=item.account_id),
            account_id=item.account_id, reason=reason)
        logger.info("account gave up after failures", extra={"account_id": item.account_id, "since": since})


# --- deleted accounts ---------------------------------------------------------------------------------------

def clean_tombstones(svc: Services, now: float, result: CleanupResult) -> None:
    """Deleted accounts whose item is still there: Cloud API numbers at once (no device to log out); web
    accounts no host purged within UNPURGED_GRACE_SECONDS. Leftovers first, the item last: a run cut short
    finds the item, and so the work, again."""
    for item in svc.accounts.tombstones():
        if len(result.cleaned) >= MAX_ACCOUNTS:
            return
        deleted = epoch_of(item.deleted_at)
        if not cloud.is_cloud(item):
            if deleted is None or now - deleted < UNPURGED_GRACE_SECONDS:
                continue  # a host logs the device out and purges it
            if svc.leases.holder(item.account_id, int(now * 1000)) is not None:
                continue  # a host is at it
        if remove_leftovers(svc, item.account_id, result) and svc.accounts.remove_tombstone(item):
            result.cleaned.append(item.account_id)
            logger.info("deleted account cleaned", extra={"account_id": item.account_id, "purged_by": "sweeper"})


def remove_leftovers(svc: Services, account_id: str, result: CleanupResult) -> bool:
    """Remove what a deleted account leaves behind; True once nothing is left (else the rest goes next time).

    Its snapshot and received media (S3), its contacts rows (number checks, LIDs, budgets, numbered choices) and
    its id in live WebSocket subscriptions. Not: its messages (their TTL removes them; no route reads an
    account's messages once it is deleted), its webhook delivery records (TTL), uploaded and inline media (the
    tenant's: a media id is bound to the tenant, and the same bytes sent by two accounts are one object, so none
    belongs to one account alone; the bucket's lifecycle rule expires them), nudges already queued (SQS cannot
    delete by content; a host reads the account, finds none and does nothing)."""
    svc.media.delete(snapshot_key(account_id))
    objects, more_objects = svc.media.delete_prefix(inbound_prefix(account_id), MAX_ROWS)
    rows, more_rows = svc.contacts.forget_account(account_id, MAX_ROWS)
    svc.realtime.forget_accounts([account_id])
    result.objects_removed += objects
    result.rows_removed += rows
    return not (more_objects or more_rows)


# --- leases ---------------------------------------------------------------------------------------------------

def clean_leases(svc: Services, now: float, result: CleanupResult, segment: int, segments: int) -> None:
    """Lease rows of one segment. An account that no longer exists (a host purged it; the sweeper removed its
    tombstone): its leftovers, then the row. An existing account whose lease expired STALE_AFTER_SECONDS ago
    under a host that is gone: the holder is forgotten on the row and on the account (a WORKING or QR status
    that no page backs any more becomes STARTING); the row and its token stay for fencing."""
    now_ms = int(now * 1000)
    rows = [r for r in svc.leases.scan(segment, segments) if r.expires_at < now_ms]
    if not rows:
        return
    accounts = svc.accounts.existing([r.account_id for r in rows])
    alive = {h.host_id for h in svc.leases.hosts() if h.alive(now_ms)}
    for row in rows:
        item = accounts.get(row.account_id)
        if item is None:
            # Read again just before: a legacy id may be created anew (its leftovers would be the new account's).
            if len(result.cleaned) < MAX_ACCOUNTS and svc.accounts.read(row.account_id) is None \
                    and remove_leftovers(svc, row.account_id, result) and svc.leases.remove(row, now_ms):
                result.cleaned.append(row.account_id)
                result.leases_removed += 1
        elif row.owner and row.owner not in alive and row.expires_at < now_ms - STALE_AFTER_SECONDS * 1000 \
                and result.leases_expired < MAX_STALE:
            _forget_holder(svc, item, row, now_ms, result)


def _forget_holder(svc: Services, item: AccountItem, row: LeaseRow, now_ms: int, result: CleanupResult) -> None:
    if not svc.leases.forget_holder(row, now_ms):
        return  # claimed meanwhile
    result.leases_expired += 1
    if item.host_id != row.owner or item.lease_token is None or int(item.lease_token) != row.token:
        return  # the item names another (or no) holder: nothing stale on it
    page_gone = item.connection_status in _PAGE_NEEDED and not item.deleted_at
    reason = f"host_gone: host {row.owner} stopped without handing the account over; waiting for a host"
    status = ConnectionStatus.STARTING if page_gone else None
    if svc.accounts.let_go(item, row.owner, row.token, status, reason) and status is not None:
        _announce(svc, item, status, reason)


def _announce(svc: Services, item: AccountItem, status: ConnectionStatus, reason: str) -> None:
    """The `account.status` event of a change already stored: a failed publish is logged, the run goes on."""
    try:
        svc.events.publish(EventType.ACCOUNT_STATUS, item.account_id, item.tenant_id,
                           {"status": status.value, "reason": reason})
    except Exception as exc:  # noqa: BLE001 - SNS trouble: the change stands, only its event is missing
        logger.warning("account.status event not published", extra={"account_id": item.account_id,
                                                                     "error": type(exc).__name__})
