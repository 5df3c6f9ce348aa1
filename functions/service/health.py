"""`GET /health`: ready or not (public); `GET /health/details`: the stack's health for its operator, and the rules
that judge it (`wagate doctor`)."""

from __future__ import annotations

import time
from collections import Counter

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from core.errors import DependencyFailure, Forbidden
from core.models.accounts import ConnectionStatus
from core.models.common import Principal, Role, epoch_of, utcnow
from core.models.health import (
    AccountsHealth,
    DeadLetterHealth,
    DeadLetterSample,
    Finding,
    HealthDetails,
    HealthLevel,
    HostHealth,
    QueueHealth,
    StuckAccount,
)
from core.store.accounts import RUNNING
from core.store.health import QueueGauge, account_census, epoch_ms_iso, plain_history
from core.store.leases import HostInfo, now_ms
from core.store.tables import AccountItem
from functions.service.context import Services

STUCK_LISTED = 50
#: States a running account passes through on its way to WORKING; lingering in one is being stuck.
ON_THE_WAY = {ConnectionStatus.STOPPED.value, ConnectionStatus.STARTING.value, ConnectionStatus.SCAN_QR_CODE.value}


#: A process that found the stack ready says so without asking again for this long (`/health` is public: an
#: anonymous caller costs at most one read per function instance and this period).
READY_REMEMBERED_SECONDS = 30.0
_ready_until = 0.0


def require_ready(svc: Services) -> None:
    """DependencyFailure (503, code `not_ready`) unless an authenticated request can be served now: the API keys
    table answers and the bootstrap tenant has a key (locally it is written a moment after the API listens)."""
    global _ready_until
    if time.monotonic() < _ready_until:
        return
    try:
        has_key = svc.api_keys.any_for_tenant(svc.settings.bootstrap_tenant)
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        raise DependencyFailure("the stack cannot read its tables yet", code="not_ready",
                                details={"waiting_for": "tables", "error": type(exc).__name__}) from exc
    if not has_key:
        raise DependencyFailure("no API key can be used yet: the bootstrap key is not written", code="not_ready",
                                details={"waiting_for": "bootstrap_key"})
    _ready_until = time.monotonic() + READY_REMEMBERED_SECONDS


def forget_readiness() -> None:
    """Ask again on the next `/health` (tests that empty the tables)."""
    global _ready_until
    _ready_until = 0.0


def require_operator(svc: Services, principal: Principal) -> None:
    """Only unscoped admins of the bootstrap tenant: the answer shows every tenant's numbers and the fleet."""
    if principal.tenant_id != svc.settings.bootstrap_tenant:
        raise Forbidden("only admins of the bootstrap tenant read the stack's health", code="forbidden_tenant")
    if principal.role is not Role.ADMIN:
        raise Forbidden("only admin keys read the stack's health", code="forbidden_role")
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot read the stack's health", code="forbidden_scope")


def details(svc: Services, principal: Principal, gauge: QueueGauge | None = None) -> HealthDetails:
    """Hosts, accounts, queues and dead letters, and what looks wrong with them."""
    require_operator(svc, principal)
    gauge = gauge or QueueGauge()
    now = now_ms()
    findings: list[Finding] = []
    queues = _queues(svc, gauge, findings)
    dlqs = _dead_letters(svc, gauge, findings)
    registered = svc.leases.hosts()
    census = account_census()
    alive = {h.host_id: h for h in registered if h.alive(now)}
    accounts = _accounts(svc, census.accounts, census.truncated, registered, alive, now, findings)
    assigned = Counter(i.host_id for i in census.accounts if i.host_id and not i.deleted_at)
    hosts = [HostHealth(host_id=h.host_id, alive=h.host_id in alive, registered_until=epoch_ms_iso(h.expires_at),
                        pid=h.pid, accounts=h.accounts, capacity=h.capacity, assigned=assigned[h.host_id])
             for h in sorted(registered, key=lambda h: h.host_id)]
    status = max((f.level for f in findings), key=lambda level: level.rank, default=HealthLevel.OK)
    return HealthDetails(status=status, checked_at=utcnow(), findings=findings, hosts=hosts, accounts=accounts,
                         queues=queues, dead_letter_queues=dlqs)


def _queues(svc: Services, gauge: QueueGauge, findings: list[Finding]) -> list[QueueHealth]:
    s = svc.settings
    found = []
    for name, url in (("control", s.control_queue_url), ("ingress", s.ingress_queue_url),
                      ("events", s.events_queue_url), ("realtime", s.realtime_queue_url),
                      ("webhook_retries", s.webhook_retry_queue_url), ("cloud_outbox", s.cloud_outbox_queue_url)):
        if not url:
            found.append(QueueHealth(name=name, configured=False))
            continue
        try:
            depth = gauge.depth(url)
        except (ClientError, BotoCoreError) as exc:
            findings.append(Finding(level=HealthLevel.PROBLEM, code="queue_unreadable",
                                    message=f"the {name} queue cannot be read ({type(exc).__name__})"))
            found.append(QueueHealth(name=name, error=type(exc).__name__))
            continue
        if depth.visible > s.health_queue_backlog:
            findings.append(Finding(level=HealthLevel.WARNING, code="queue_backlog",
                                    message=f"{depth.visible} messages wait in the {name} queue"))
        found.append(QueueHealth(name=name, visible=depth.visible, in_flight=depth.in_flight, delayed=depth.delayed))
    return found


def _dead_letters(svc: Services, gauge: QueueGauge, findings: list[Finding]) -> list[DeadLetterHealth]:
    s = svc.settings
    found = []
    for name, url in (("ingress", s.ingress_dlq_url), ("events", s.events_dlq_url),
                      ("cloud_outbox", s.cloud_outbox_dlq_url)):
        if not url:
            found.append(DeadLetterHealth(name=name, configured=False))
            continue
        try:
            depth = gauge.depth(url)
            count = depth.visible + depth.in_flight + depth.delayed
            samples = gauge.peek(url) if count else []
        except (ClientError, BotoCoreError) as exc:
            findings.append(Finding(level=HealthLevel.PROBLEM, code="queue_unreadable",
                                    message=f"the {name} DLQ cannot be read ({type(exc).__name__})"))
            found.append(DeadLetterHealth(name=name, error=type(exc).__name__))
            continue
        if count:
            findings.append(Finding(level=HealthLevel.WARNING, code="dlq_not_empty",
                                    message=f"{count} message(s) in the {name} DLQ"))
        found.append(DeadLetterHealth(name=name, messages=count, samples=[
            DeadLetterSample(sent_at=x.sent_at, reason=x.reason) for x in samples]))
    return found


def _accounts(svc: Services, items: list[AccountItem], truncated: bool, registered: list[HostInfo],
              alive: dict[str, HostInfo], now: int, findings: list[Finding]) -> AccountsHealth:
    live = [i for i in items if not i.deleted_at]
    limit_ms = svc.settings.health_stuck_seconds * 1000
    known = {h.host_id: h for h in registered}
    stuck = [s for s in (_stuck(i, known, alive, now, limit_ms) for i in items) if s is not None]
    stuck.sort(key=lambda s: s.since)
    if stuck:
        waiting = [s for s in stuck if s.connection_status in ON_THE_WAY and s.desired_state == RUNNING]
        if waiting and not alive:
            findings.append(Finding(level=HealthLevel.PROBLEM, code="no_live_host",
                                    message=f"{len(waiting)} account(s) wait to start and no browser host is alive"))
        elif waiting and all(h.accounts >= h.capacity for h in alive.values()):
            findings.append(Finding(level=HealthLevel.PROBLEM, code="fleet_full",
                                    message=f"{len(waiting)} account(s) wait to start and every host is full"))
        findings.append(Finding(level=HealthLevel.WARNING, code="accounts_stuck",
                                message=f"{len(stuck)} account(s) stuck in a state for more than "
                                        f"{svc.settings.health_stuck_seconds} s"))
    if truncated:
        findings.append(Finding(level=HealthLevel.WARNING, code="census_truncated",
                                message=f"only the first {len(items)} accounts were read: counts are partial"))
    return AccountsHealth(total=len(live), by_status=dict(Counter(i.connection_status for i in live)),
                          by_desired_state=dict(Counter(i.desired_state for i in live)),
                          pending_deletion=len(items) - len(live), stuck=stuck[:STUCK_LISTED], truncated=truncated)


def _stuck(item: AccountItem, known: dict[str, HostInfo], alive: dict[str, HostInfo], now: int,
           limit_ms: int) -> StuckAccount | None:
    """The account, if it has been in a state it should have left for longer than `limit_ms`."""
    history = plain_history(item)
    changed = str(history[-1].get("at") or item.created_at) if history else str(item.created_at)
    reason: str | None = None
    since = changed
    if item.pending_action and item.action_requested_at and _age(item.action_requested_at, now) > limit_ms:
        reason, since = f"{item.pending_action} requested but not done", str(item.action_requested_at)
    elif item.deleted_at:
        return None
    elif item.host_id and item.host_id not in alive:
        gone = known.get(item.host_id)
        since = epoch_ms_iso(gone.expires_at) if gone else changed
        if _age(since, now) > limit_ms:
            reason = f"held by host {item.host_id}, which is gone"
    elif item.desired_state == RUNNING and _age(changed, now) > limit_ms:
        if item.connection_status in ON_THE_WAY:
            reason = f"{item.connection_status} while it should run"
        elif item.connection_status == ConnectionStatus.FAILED.value:
            reason = f"FAILED: {item.status_reason or 'no reason given'}"
    if reason is None:
        return None
    return StuckAccount(account_id=item.account_id, tenant_id=item.tenant_id,
                        connection_status=item.connection_status, desired_state=item.desired_state,
                        pending_action=item.pending_action, since=since, host_id=item.host_id, reason=reason)


def _age(iso: str, now: int) -> int:
    """Milliseconds since `iso` (0 when it cannot be read)."""
    at = epoch_of(iso)
    return 0 if at is None else now - int(at * 1000)
