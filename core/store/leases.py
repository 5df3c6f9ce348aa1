"""Leases: which host drives an account, until when, under which fencing token; and the live hosts.

A lease is `account#<id>` in the leases table: `owner`, `expires_at` (epoch ms) and `token`, which
grows by one on every claim and never goes back (release only expires the lease). The token is also
written on the account item when a host attaches, and every later host write about the account (status,
QR, pairing code, message status, inbound) is conditional on it: a host that lost its lease cannot
overwrite what the new owner wrote.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from core.store.conditions import is_conditional
from core.store.tables import LeaseItem


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Lease:
    """A lease this host holds."""

    account_id: str
    owner: str
    token: int
    expires_at: int
    pending_from: str | None = None


@dataclass(frozen=True)
class LeaseRow:
    """An account's lease row as stored (the sweeper's view: held or not)."""

    account_id: str
    owner: str | None
    token: int
    expires_at: int


@dataclass(frozen=True)
class HostInfo:
    host_id: str
    inbox_url: str | None
    expires_at: int
    pid: int | None
    capacity: int
    accounts: int

    def alive(self, at_ms: int | None = None) -> bool:
        return self.expires_at > (at_ms if at_ms is not None else now_ms())


class LeaseRepository:
    """Conditional writes on the leases table; a refused write means "someone else holds it"."""

    @staticmethod
    def _key(account_id: str) -> str:
        return f"account#{account_id}"

    def claim(self, account_id: str, host_id: str, ttl_seconds: float) -> Lease | None:
        """Take the account if nobody holds it (or the lease expired); the token grows by one. None if held."""
        now = now_ms()
        item = LeaseItem(self._key(account_id))
        condition = (LeaseItem.lease_id.does_not_exist() | (LeaseItem.expires_at < now)
                     | (LeaseItem.owner == host_id))
        try:
            item.update(actions=[LeaseItem.owner.set(host_id), LeaseItem.expires_at.set(now + int(ttl_seconds * 1000)),
                                 LeaseItem.token.add(1)], condition=condition)
        except UpdateError as exc:
            if is_conditional(exc):
                return None
            raise
        return Lease(account_id, host_id, int(item.token), int(item.expires_at), item.pending_from)

    def renew(self, lease: Lease, ttl_seconds: float, pending_from: str | None = None) -> Lease | None:
        """Extend a lease this host still holds under the same token; None when it was lost.
        `pending_from` records where the owner's outbox scan starts, for whoever owns it next."""
        item = LeaseItem(self._key(lease.account_id))
        expires = now_ms() + int(ttl_seconds * 1000)
        actions: list[Action] = [LeaseItem.expires_at.set(expires)]
        if pending_from:
            actions.append(LeaseItem.pending_from.set(pending_from))
        try:
            item.update(actions=actions,
                        condition=(LeaseItem.owner == lease.owner) & (LeaseItem.token == lease.token))
        except UpdateError as exc:
            if is_conditional(exc):
                return None
            raise
        return Lease(lease.account_id, lease.owner, lease.token, expires, pending_from or lease.pending_from)

    def release(self, lease: Lease) -> bool:
        """Expire the lease now so another host can claim it at once (the token is kept: it only grows)."""
        item = LeaseItem(self._key(lease.account_id))
        try:
            item.update(actions=[LeaseItem.expires_at.set(0)],
                        condition=(LeaseItem.owner == lease.owner) & (LeaseItem.token == lease.token))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def holder(self, account_id: str, at_ms: int | None = None) -> Lease | None:
        """The live lease of an account (at `at_ms`, default now), or None when nobody holds it."""
        try:
            item = LeaseItem.get(self._key(account_id), consistent_read=True)
        except DoesNotExist:
            return None
        if not item.owner or int(item.expires_at) <= (now_ms() if at_ms is None else at_ms):
            return None
        return Lease(account_id, item.owner, int(item.token), int(item.expires_at))

    # --- stale leases (the sweeper's cleanup): every write conditional on the exact row it read ------------

    def scan(self, segment: int = 0, segments: int = 1) -> list[LeaseRow]:
        """Every account lease row of one segment of the table (a parallel scan's share; the `hosts` item aside)."""
        rows = []
        for item in LeaseItem.scan(segment=segment, total_segments=segments, page_size=1000):
            if item.lease_id.startswith("account#"):
                rows.append(LeaseRow(item.lease_id.removeprefix("account#"), item.owner, int(item.token or 0),
                                     int(item.expires_at or 0)))
        return rows

    def forget_holder(self, row: LeaseRow, at_ms: int) -> bool:
        """Clear the owner of a lease that had expired at `at_ms`, if the row is still exactly as read. The row
        itself stays: its token must keep growing, since the account item records the last one and refuses an
        owner whose token is not greater."""
        try:
            LeaseItem(self._key(row.account_id)).update(
                actions=[LeaseItem.owner.remove()], condition=_exactly(row) & (LeaseItem.expires_at < at_ms))
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def remove(self, row: LeaseRow, at_ms: int) -> bool:
        """Delete the lease row of an account that no longer exists, if it is still exactly as read and expired
        at `at_ms`: a claim in between (a new token or expiry) wins."""
        try:
            LeaseItem(self._key(row.account_id)).delete(
                condition=_exactly(row) & (LeaseItem.expires_at < at_ms))
        except DeleteError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    # --- hosts ------------------------------------------------------------------------------------------
    # One item, `hosts`, maps each host id to its registration: reading the fleet is one GetItem, and each
    # host only ever updates its own key (hosts are few; the item holds thousands).

    def register_host(self, host_id: str, inbox_url: str | None, pid: int, capacity: int, accounts: int,
                      ttl_seconds: float) -> None:
        """Announce (or keep announcing) a live host; the registration expires unless renewed."""
        info = {"inbox_url": inbox_url, "pid": pid, "capacity": capacity, "accounts": accounts,
                "expires_at": now_ms() + int(ttl_seconds * 1000)}
        item = LeaseItem(HOSTS_ITEM)
        try:
            item.update(actions=[LeaseItem.members[host_id].set(info)],
                        condition=LeaseItem.members.exists())
        except UpdateError as exc:
            if not is_conditional(exc):
                raise
            with contextlib.suppress(PutError):  # another host created it first
                LeaseItem(HOSTS_ITEM, members={}).save(condition=LeaseItem.lease_id.does_not_exist())
            item.update(actions=[LeaseItem.members[host_id].set(info)])

    def hosts(self) -> list[HostInfo]:
        """Every registered host, live or not."""
        try:
            item = LeaseItem.get(HOSTS_ITEM, consistent_read=True)
        except DoesNotExist:
            return []
        found = []
        for host_id, info in (plain_map(item.members) or {}).items():
            found.append(HostInfo(host_id, info.get("inbox_url"), int(info.get("expires_at") or 0),
                                  int(info["pid"]) if info.get("pid") else None, int(info.get("capacity") or 0),
                                  int(info.get("accounts") or 0)))
        return found

    def forget_host(self, host: HostInfo) -> bool:
        """Remove a registration that is still the expired one we saw (another host may be cleaning too)."""
        try:
            LeaseItem(HOSTS_ITEM).update(
                actions=[LeaseItem.members[host.host_id].remove()],
                condition=LeaseItem.members[host.host_id]["expires_at"] == host.expires_at)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True


HOSTS_ITEM = "hosts"


def _exactly(row: LeaseRow) -> Any:
    """The row is still the one read: same token, same expiry, same owner (or none)."""
    owner = LeaseItem.owner.does_not_exist() if row.owner is None else LeaseItem.owner == row.owner
    return LeaseItem.lease_id.exists() & (LeaseItem.token == row.token) & (LeaseItem.expires_at == row.expires_at) \
        & owner


def plain_map(value: Any) -> dict[str, dict[str, Any]]:
    """The `members` map as plain dicts."""
    raw = value.as_dict() if hasattr(value, "as_dict") else value
    return {str(k): (v.as_dict() if hasattr(v, "as_dict") else dict(v)) for k, v in (raw or {}).items()}
