"""Real time (WebSocket API): one-time tickets, connections and their subscriptions, each tenant's recent events,
and the API Gateway management API that posts to connections."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from core.models.common import Principal, Role
from core.models.events import Event
from core.models.realtime import Subscription
from core.store.conditions import is_conditional
from core.store.tables import RealtimeItem, RecentEventItem

TICKET_PREFIX = "wgt_"
#: API Gateway closes a WebSocket after 2 hours at most; connection items outlive that a little.
CONNECTION_TTL_SECONDS = 3 * 3600


def _ticket_key(ticket: str) -> str:
    return "ticket#" + hashlib.sha256(ticket.encode()).hexdigest()


def iso(epoch: float) -> str:
    """Epoch seconds as our ISO 8601 form (milliseconds, Z): events' created_at sorts the same way."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RealtimeRepository:
    """Tickets, connections and live subscriptions (the realtime table)."""

    def issue_ticket(self, principal: Principal, ttl_seconds: int) -> tuple[str, float]:
        """A new one-time ticket carrying the principal (stored as a SHA-256 only); (ticket, expires epoch)."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        expires = time.time() + ttl_seconds
        RealtimeItem(_ticket_key(ticket), "ticket", tenant_id=principal.tenant_id, role=principal.role.value,
                     key_id=principal.key_id, scope=list(principal.account_ids), created_at=iso(time.time()),
                     expires_at=int(expires) + 1).save()
        return ticket, expires

    def redeem_ticket(self, ticket: str) -> Principal | None:
        """The ticket's principal, once: the conditional delete makes a second redemption (or a race) fail.
        None for an unknown, used or expired ticket."""
        if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
            return None
        key = _ticket_key(ticket)
        try:
            item = RealtimeItem.get(key, "ticket", consistent_read=True)
        except DoesNotExist:
            return None
        try:
            item.delete(condition=RealtimeItem.pk.exists() & (RealtimeItem.expires_at > int(time.time())))
        except DeleteError as exc:
            if is_conditional(exc):
                return None
            raise
        return Principal(key_id=item.key_id or "", tenant_id=item.tenant_id or "", role=Role(item.role),
                         account_ids=tuple(item.scope or ()))

    def connect(self, connection_id: str, principal: Principal) -> None:
        """Remember who a new connection is (it receives nothing until it subscribes)."""
        RealtimeItem(f"conn#{connection_id}", "conn", tenant_id=principal.tenant_id, role=principal.role.value,
                     key_id=principal.key_id, scope=list(principal.account_ids), connection_id=connection_id,
                     created_at=iso(time.time()), expires_at=int(time.time()) + CONNECTION_TTL_SECONDS).save()

    def principal(self, connection_id: str) -> Principal | None:
        """Who opened the connection; None when it is unknown (closed, or dropped by the fan-out)."""
        try:
            item = RealtimeItem.get(f"conn#{connection_id}", "conn", consistent_read=True)
        except DoesNotExist:
            return None
        return Principal(key_id=item.key_id or "", tenant_id=item.tenant_id or "", role=Role(item.role),
                         account_ids=tuple(item.scope or ()))

    def subscribe(self, connection_id: str, principal: Principal, account_ids: Iterable[str] | None,
                  events: Iterable[str] | None) -> None:
        """The connection's live subscription (replacing any earlier one)."""
        RealtimeItem(f"tenant#{principal.tenant_id}", f"conn#{connection_id}", tenant_id=principal.tenant_id,
                     connection_id=connection_id, scope=list(principal.account_ids),
                     account_ids=None if account_ids is None else list(account_ids),
                     events=None if events is None else list(events), created_at=iso(time.time()),
                     expires_at=int(time.time()) + CONNECTION_TTL_SECONDS).save()

    def unsubscribe(self, connection_id: str, tenant_id: str) -> None:
        RealtimeItem(f"tenant#{tenant_id}", f"conn#{connection_id}").delete()

    def subscribers(self, tenant_id: str) -> list[Subscription]:
        """Every live subscription of the tenant (strongly consistent: a client that was told `subscribed`
        is in it)."""
        found = []
        for item in RealtimeItem.query(f"tenant#{tenant_id}", consistent_read=True):
            found.append(Subscription(
                connection_id=item.connection_id or item.sk.removeprefix("conn#"), tenant_id=tenant_id,
                scope=tuple(item.scope or ()),
                account_ids=None if item.account_ids is None else tuple(item.account_ids),
                events=None if item.events is None else tuple(item.events)))
        return found

    def forget_accounts(self, account_ids: list[str]) -> int:
        """Take deleted accounts out of the live subscriptions naming them (a scan: connections are few and their
        items expire); each update is conditional on the list as read. Returns how many subscriptions changed."""
        if not account_ids:
            return 0
        gone = set(account_ids)
        naming: Any = None
        for account_id in account_ids:
            part = RealtimeItem.account_ids.contains(account_id)
            naming = part if naming is None else naming | part
        changed = 0
        for item in RealtimeItem.scan(RealtimeItem.pk.startswith("tenant#") & naming):
            before = list(item.account_ids or [])
            try:
                item.update(actions=[RealtimeItem.account_ids.set([a for a in before if a not in gone])],
                            condition=RealtimeItem.account_ids == before)
            except UpdateError as exc:
                if not is_conditional(exc):
                    raise
                continue  # resubscribed meanwhile: the next run looks again
            changed += 1
        return changed

    def disconnect(self, connection_id: str, tenant_id: str | None = None) -> None:
        """Forget a connection and its subscription (at $disconnect, or when the fan-out found it gone)."""
        if tenant_id is None:
            principal = self.principal(connection_id)
            tenant_id = principal.tenant_id if principal else None
        if tenant_id:
            self.unsubscribe(connection_id, tenant_id)
        RealtimeItem(f"conn#{connection_id}", "conn").delete()


class RecentEvents:
    """Each tenant's events of the last `window_seconds`, in `created_at` order, for replay after a reconnect."""

    def __init__(self, window_seconds: int) -> None:
        self.window_seconds = window_seconds

    def record(self, events: Iterable[tuple[str, Event, str]]) -> None:
        """Keep (tenant_id, event, exact JSON) triples; writing one twice is harmless."""
        expires = int(time.time()) + self.window_seconds + 60
        with RecentEventItem.batch_write() as batch:
            for tenant_id, event, body in events:
                position = f"{event.created_at}#{event.id}"
                batch.save(RecentEventItem(tenant_id, position, event=body, expires_at=expires))
                batch.save(RecentEventItem(tenant_id, f"id#{event.id}", position=position, expires_at=expires))

    def window_start(self) -> str:
        """The lowest position still inside the window."""
        return iso(time.time() - self.window_seconds)

    def position(self, tenant_id: str, event_id: str) -> str | None:
        """Where `event_id` sits in the tenant's window; None when it is unknown or older than the window."""
        try:
            item = RecentEventItem.get(tenant_id, f"id#{event_id}", consistent_read=True)
        except DoesNotExist:
            return None
        if not item.position or item.position < self.window_start():
            return None
        return str(item.position)

    def after(self, tenant_id: str, position: str, limit: int = 1000) -> list[tuple[str, str]]:
        """(position, exact JSON) of the tenant's events after `position` (exclusive), oldest first."""
        lower = max(position, self.window_start())
        # Positions start with a year ("2…"); the `id#…` pointers sort after "9" and stay out of the range.
        found = []
        for item in RecentEventItem.query(tenant_id, RecentEventItem.sk.between(lower, "9"), consistent_read=True,
                                          limit=limit + 1):
            if item.sk != position and item.event:
                found.append((str(item.sk), str(item.event)))
            if len(found) >= limit:
                break
        return found


class PostResult(StrEnum):
    SENT = "sent"
    GONE = "gone"  # the gateway no longer knows the connection (410)
    FAILED = "failed"  # timeout, throttling, 5xx: the connection is dropped rather than retried


class ConnectionPoster:
    """API Gateway's management API (`@connections`): post to a connection, close one. Short timeouts and no
    retries: a slow or dead connection costs one timeout, then it is dropped."""

    def __init__(self, endpoint_url: str, region: str, timeout_seconds: float) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.timeout_seconds = timeout_seconds

    def _client(self) -> Any:
        return _management_client(self.endpoint_url, self.region, self.timeout_seconds)

    def post(self, connection_id: str, data: str) -> PostResult:
        """Send one message; never raises."""
        if not self.endpoint_url:
            return PostResult.FAILED
        try:
            self._client().post_to_connection(ConnectionId=connection_id, Data=data.encode())
        except ClientError as exc:
            gone = exc.response.get("Error", {}).get("Code") == "GoneException"
            return PostResult.GONE if gone else PostResult.FAILED
        except BotoCoreError:
            return PostResult.FAILED
        return PostResult.SENT

    def close(self, connection_id: str) -> None:
        """Close a connection at the gateway (best effort: it may be gone already)."""
        if not self.endpoint_url:
            return
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client().delete_connection(ConnectionId=connection_id)


@cache
def _management_client(endpoint_url: str, region: str, timeout_seconds: float) -> Any:
    config = Config(connect_timeout=min(timeout_seconds, 2.0), read_timeout=timeout_seconds,
                    retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=256)
    return boto3.session.Session().client("apigatewaymanagementapi", endpoint_url=endpoint_url,
                                          region_name=region, config=config)
