"""Real time (WebSocket API): tickets, connect/subscribe/disconnect, replay, and the fan-out of events.

Scope is enforced twice: at subscribe time (an account outside the key's tenant or scope answers
`account_not_found`) and at fan-out (each event goes only to its tenant's connections whose key covers the
account). Every message to a client goes through the management API, so `subscribed` and replayed events
reach the client before live ones.
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from core.errors import NotFound
from core.models.common import Principal
from core.models.events import Event, EventType
from core.models.realtime import RealtimeError, ReplayIncomplete, Subscribe, Subscribed, Subscription, TicketCreated
from core.observability import logger
from core.store.realtime import PostResult, iso
from functions.service.accounts import LINKERS, load
from functions.service.context import Services

# --- tickets and connections ------------------------------------------------------------------------------


def create_ticket(svc: Services, principal: Principal) -> TicketCreated:
    """A one-time ticket for one WebSocket connection with this key's tenant, role and account scope (any role)."""
    ticket, expires = svc.realtime.issue_ticket(principal, svc.settings.realtime_ticket_seconds)
    return TicketCreated(ticket=ticket, url=f"{svc.settings.realtime_url}?ticket={ticket}", expires_at=iso(expires))


def connect(svc: Services, connection_id: str, ticket: str | None) -> bool:
    """$connect: redeem the ticket (once); False refuses the connection."""
    principal = svc.realtime.redeem_ticket(ticket or "")
    if principal is None:
        logger.info("websocket refused: unknown, used or expired ticket", extra={"connection_id": connection_id})
        return False
    svc.realtime.connect(connection_id, principal)
    logger.info("websocket connected", extra={"connection_id": connection_id, "tenant_id": principal.tenant_id,
                                              "key_id": principal.key_id})
    return True


def disconnect(svc: Services, connection_id: str) -> None:
    svc.realtime.disconnect(connection_id)


def _send(svc: Services, connection_id: str, message: BaseModel | str) -> bool:
    data = message if isinstance(message, str) else message.model_dump_json()
    result = svc.connections.post(connection_id, data)
    if result is PostResult.GONE:
        svc.realtime.disconnect(connection_id)
    return result is PostResult.SENT


def _error(svc: Services, connection_id: str, code: str, message: str) -> None:
    _send(svc, connection_id, RealtimeError(code=code, message=message))


def unknown_action(svc: Services, connection_id: str, body: str) -> None:
    """$default: a message that is not JSON or names no known action."""
    try:
        json.loads(body)
    except ValueError:
        _error(svc, connection_id, "invalid_json", "messages are JSON objects with an `action`")
        return
    _error(svc, connection_id, "unknown_action", "the only action is `subscribe`")


# --- subscribe and replay ---------------------------------------------------------------------------------


def subscribe(svc: Services, connection_id: str, body: str) -> None:
    """Check the request against the key's tenant and scope, answer `subscribed`, replay what the client missed
    (`since`), then make the subscription live; a new subscribe replaces the previous one."""
    principal = svc.realtime.principal(connection_id)
    if principal is None:
        _error(svc, connection_id, "unauthorized", "this connection is no longer known; reconnect with a new ticket")
        return
    try:
        request = Subscribe.model_validate_json(body)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        _error(svc, connection_id, "validation_error", errors)
        return
    account_ids = None if request.account_ids is None else list(dict.fromkeys(request.account_ids))
    for account_id in account_ids or ():
        try:
            load(svc, principal, account_id)
        except NotFound:
            _error(svc, connection_id, "account_not_found", f"account {account_id} not found")
            return
    events = None if request.events is None else list(dict.fromkeys(request.events))
    if principal.role not in LINKERS:  # account.qr carries the QR: viewers may not link a phone (as GET …/qr)
        events = [e for e in (events or EventType) if e is not EventType.ACCOUNT_QR]
    subscription = Subscription(connection_id=connection_id, tenant_id=principal.tenant_id,
                                scope=principal.account_ids,
                                account_ids=None if account_ids is None else tuple(account_ids),
                                events=None if events is None else tuple(e.value for e in events))
    answer = Subscribed(account_ids=account_ids, events=events)
    if not request.since:
        # Live before the answer: whatever is published once the client holds `subscribed` reaches it.
        svc.realtime.subscribe(connection_id, principal, subscription.account_ids, subscription.events)
        _send(svc, connection_id, answer)
    else:
        # Nothing live while the answer and the replay go out, so they come first.
        svc.realtime.unsubscribe(connection_id, principal.tenant_id)
        if not _send(svc, connection_id, answer):
            return
        last = _replay(svc, subscription, request.since)
        svc.realtime.subscribe(connection_id, principal, subscription.account_ids, subscription.events)
        if last is not None:
            # Events recorded between the replay and the subscription going live (a live copy of one of them
            # may come too; clients de-duplicate on the event id).
            _send_matching(svc, subscription, svc.recent_events.after(principal.tenant_id, last))
    logger.info("websocket subscribed", extra={"connection_id": connection_id, "tenant_id": principal.tenant_id,
                                               "account_ids": account_ids, "since": request.since})


def _replay(svc: Services, subscription: Subscription, since: str) -> str | None:
    """Send the tenant's matching events after `since`; the position of the last one looked at."""
    position = svc.recent_events.position(subscription.tenant_id, since)
    if position is None:
        if not _send(svc, subscription.connection_id, ReplayIncomplete()):
            return None
        position = svc.recent_events.window_start()
    found = svc.recent_events.after(subscription.tenant_id, position)
    if not _send_matching(svc, subscription, found):
        return None
    return found[-1][0] if found else position


def _send_matching(svc: Services, subscription: Subscription, found: list[tuple[str, str]]) -> bool:
    for _, body in found:
        event = _parse(body)
        matching = event is not None and subscription.matches(event.type.value, event.account_id)
        if matching and not _send(svc, subscription.connection_id, body):
            return False
    return True


def _parse(body: str) -> Event | None:
    try:
        return Event.model_validate_json(body)
    except ValidationError:
        return None


# --- fan-out ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanOutResult:
    events: int
    sent: int
    dropped: int


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="realtime")


def fan_out(svc: Services, records: list[tuple[str, dict[str, str]]]) -> FanOutResult:
    """(exact JSON, message attributes) of published events → every matching connection of their tenant.

    Recorded for replay first (a failure raises: the batch comes back). Each connection gets its events in
    order; connections are posted to side by side, each post bounded by REALTIME_POST_TIMEOUT_SECONDS; a
    connection that is gone or fails is dropped (closed and forgotten), never retried.
    """
    parsed: list[tuple[str, Event, str]] = []
    for body, attributes in records:
        event, tenant_id = _parse(body), attributes.get("tenant_id", "")
        if event is None or not tenant_id:
            logger.warning("realtime: event without a tenant or not an event; skipped", extra={"body": body[:200]})
            continue
        parsed.append((tenant_id, event, body))
    if not parsed:
        return FanOutResult(0, 0, 0)
    svc.recent_events.record(parsed)
    outbox: dict[Subscription, list[str]] = defaultdict(list)
    by_tenant: dict[str, list[tuple[Event, str]]] = defaultdict(list)
    for tenant_id, event, body in parsed:
        by_tenant[tenant_id].append((event, body))
    for tenant_id, events in by_tenant.items():
        for subscription in svc.realtime.subscribers(tenant_id):
            for event, body in events:
                if subscription.matches(event.type.value, event.account_id):
                    outbox[subscription].append(body)
    pool = _pool(svc.settings.realtime_concurrency)
    results = list(pool.map(lambda job: _deliver(svc, *job), outbox.items()))
    sent = sum(n for n, _ in results)
    dropped = sum(1 for _, ok in results if not ok)
    return FanOutResult(len(parsed), sent, dropped)


def _deliver(svc: Services, subscription: Subscription, bodies: list[str]) -> tuple[int, bool]:
    """One connection's events in order; (sent, still healthy)."""
    for sent, body in enumerate(bodies):
        result = svc.connections.post(subscription.connection_id, body)
        if result is not PostResult.SENT:
            _drop(svc, subscription, result)
            return sent, False
    return len(bodies), True


def _drop(svc: Services, subscription: Subscription, result: PostResult) -> None:
    logger.info("websocket dropped", extra={"connection_id": subscription.connection_id,
                                            "tenant_id": subscription.tenant_id, "reason": result.value})
    if result is PostResult.FAILED:
        svc.connections.close(subscription.connection_id)
    try:
        svc.realtime.disconnect(subscription.connection_id, subscription.tenant_id)
    except Exception as exc:  # noqa: BLE001 - the item expires anyway; the other connections matter more
        logger.warning("realtime: dropped connection not forgotten", extra={"error": repr(exc)[:300]})


def describe(result: FanOutResult) -> dict[str, Any]:
    return {"events": result.events, "sent": result.sent, "dropped": result.dropped}
