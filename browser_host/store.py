"""The host's async facade over the domain store: named verbs, each one blocking AWS call off the event loop."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.aws import client
from core.config import Settings
from core.models.accounts import ConnectionStatus
from core.models.audit import Actor, ActorType, Target
from core.models.choices import ChoiceMenu
from core.models.common import epoch_of, utcnow
from core.models.events import EventType
from core.models.messages import Direction, MessageStatus
from core.store import replies, tables
from core.store.accounts import AccountChange, AccountRepository
from core.store.audit import AuditRepository
from core.store.contacts import ContactRepository
from core.store.leases import HostInfo, Lease, LeaseRepository
from core.store.messages import MessageRepository
from core.store.queues import EventBus, HostInbox, Nudges, delete_queue
from core.store.tables import AccountItem, MessageItem


class HostStore:
    """Accounts, leases, messages, queues, events and snapshots as one browser host uses them."""

    def __init__(self, settings: Settings, host_id: str, snapshots: Any = None) -> None:
        tables.bind(settings)
        self.settings = settings
        self.host_id = host_id
        self.accounts = AccountRepository()
        self.leases = LeaseRepository()
        self.messages = MessageRepository()
        self.contacts = ContactRepository()
        self.events = EventBus.from_settings(settings)
        self.nudges = Nudges(settings.control_queue_url)
        self.inbox = HostInbox(settings.host_queue_prefix, host_id)
        self.snapshots = snapshots  # browser_host.crypto.SnapshotStore, or None without a bucket and key
        self.audit_log = AuditRepository(settings.audit_retention_days)
        # Audit writes wait on threads of their own: a slow audit table never holds up the store's other calls.
        self._audit_writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit")
        self._audit_writes: set[asyncio.Future[Any]] = set()

    # --- accounts -------------------------------------------------------------------------------------------

    async def accounts_needing_a_host(self) -> list[AccountItem]:
        return await asyncio.to_thread(self.accounts.needing_a_host)

    async def read_account(self, account_id: str) -> AccountItem | None:
        return await asyncio.to_thread(self.accounts.read, account_id)

    async def attach(self, lease: Lease) -> AccountItem | None:
        # Read first: an item that still names another host means that host died holding it (a takeover).
        before = await asyncio.to_thread(self.accounts.read, lease.account_id)
        fresh = await asyncio.to_thread(self.accounts.attach, lease.account_id, self.host_id, lease.token,
                                        self.inbox.url)
        if fresh is not None and before is not None and before.host_id and before.host_id != self.host_id:
            self.audit("host.takeover", fresh.tenant_id, lease.account_id,
                       reason=f"host {before.host_id} let its lease expire")
        return fresh

    async def set_status(self, lease: Lease, status: ConnectionStatus, reason: str | None,
                         change: AccountChange | None = None) -> None:
        await asyncio.to_thread(self.accounts.set_status, lease.account_id, lease.token, status, reason, change)

    async def set_pairing_code(self, lease: Lease, requested_at: str | None, code: str, expires_at: str) -> None:
        await asyncio.to_thread(self.accounts.set_pairing_code, lease.account_id, lease.token, requested_at, code,
                                expires_at)

    async def clear_pending_action(self, lease: Lease, requested_at: str | None,
                                   then: AccountChange | None = None) -> None:
        await asyncio.to_thread(self.accounts.clear_pending_action, lease.account_id, lease.token, requested_at,
                                then)

    async def detach(self, lease: Lease, status: ConnectionStatus | None, reason: str | None) -> None:
        await asyncio.to_thread(self.accounts.detach, lease.account_id, lease.token, status, reason)

    async def purge(self, lease: Lease) -> None:
        await asyncio.to_thread(self.accounts.purge, lease.account_id, lease.token)

    # --- leases and hosts -----------------------------------------------------------------------------------

    async def claim(self, account_id: str, ttl: float) -> Lease | None:
        return await asyncio.to_thread(self.leases.claim, account_id, self.host_id, ttl)

    async def renew(self, lease: Lease, ttl: float, pending_from: str | None = None) -> Lease | None:
        return await asyncio.to_thread(self.leases.renew, lease, ttl, pending_from)

    async def release(self, lease: Lease) -> bool:
        return await asyncio.to_thread(self.leases.release, lease)

    async def register(self, pid: int, capacity: int, accounts: int, ttl: float) -> None:
        await asyncio.to_thread(self.leases.register_host, self.host_id, self.inbox.url, pid, capacity, accounts,
                                ttl)

    async def hosts(self) -> list[HostInfo]:
        return await asyncio.to_thread(self.leases.hosts)

    async def forget_host(self, host: HostInfo) -> None:
        """Remove a dead host's registration and its inbox (only nudges were in it)."""
        if await asyncio.to_thread(self.leases.forget_host, host) and host.inbox_url:
            await asyncio.to_thread(delete_queue, host.inbox_url)

    # --- queues ---------------------------------------------------------------------------------------------

    async def open_inbox(self) -> str:
        return await asyncio.to_thread(self.inbox.create)

    async def close_inbox(self) -> None:
        await asyncio.to_thread(self.inbox.delete)

    async def receive_nudges(self, wait_seconds: int, control: bool = False) -> list[dict[str, Any]]:
        url = self.settings.control_queue_url if control else None
        return await asyncio.to_thread(self.inbox.receive, wait_seconds, url)

    async def nudge_fleet(self, account_id: str, reason: str) -> None:
        """Tell any free host about an account (after letting it go)."""
        await asyncio.to_thread(self.nudges.send, account_id, reason, None)

    async def publish(self, kind: EventType, account_id: str, tenant_id: str, data: dict[str, Any],
                      event_id: str | None = None, reply_to: str | None = None) -> None:
        """Publish an event; a message's status event also goes to its SQS producer's reply queue."""
        event = await asyncio.to_thread(self.events.publish, kind, account_id, tenant_id, data, event_id)
        if reply_to:
            await asyncio.to_thread(replies.send_status, reply_to, event.model_dump_json())

    # --- messages -------------------------------------------------------------------------------------------

    async def pending(self, account_id: str, since_id: str, limit: int = 50) -> list[MessageItem]:
        return await asyncio.to_thread(self.messages.pending, account_id, since_id, limit)

    async def last_handed_over(self, account_id: str) -> float | None:
        """Epoch seconds of the account's latest hand-over to WhatsApp, by any host (None: none found)."""
        return epoch_of(await asyncio.to_thread(self.messages.last_handed_over, account_id))

    async def find_message(self, account_id: str, message_id: str) -> MessageItem | None:
        return await asyncio.to_thread(self.messages.find, account_id, message_id)

    async def mark_sending(self, item: MessageItem, serialized: str, lease: Lease, attempt: bool) -> bool:
        return await asyncio.to_thread(self.messages.mark_sending, item, serialized, lease.token, attempt)

    async def schedule(self, item: MessageItem, at: str, lease: Lease) -> bool:
        return await asyncio.to_thread(self.messages.schedule, item, at, lease.token)

    async def take_daily(self, account_id: str, cap: int, now: float) -> int:
        """One message of the account's daily cap: 0, or the seconds until the next UTC day."""
        return await asyncio.to_thread(self.contacts.take_budget, account_id, "daily", cap, window=86_400, now=now)

    async def count_attempt(self, item: MessageItem, lease: Lease) -> bool:
        return await asyncio.to_thread(self.messages.count_attempt, item, lease.token)

    async def set_wa_id(self, item: MessageItem, serialized: str, lease: Lease) -> bool:
        return await asyncio.to_thread(self.messages.set_wa_id, item, serialized, lease.token)

    async def advance(self, item: MessageItem, status: MessageStatus, lease: Lease | None,
                      reason: str | None = None) -> bool:
        return await asyncio.to_thread(self.messages.advance, item, status, lease.token if lease else None, reason)

    async def fail(self, item: MessageItem, code: str, text: str, lease: Lease | None) -> bool:
        return await asyncio.to_thread(self.messages.fail, item, code, text, lease.token if lease else None)

    async def find_ref(self, account_id: str, ref: str) -> MessageItem | None:
        return await asyncio.to_thread(self.messages.find_ref, account_id, ref)

    async def by_wa_id(self, serialized: str) -> MessageItem | None:
        return await asyncio.to_thread(self.messages.by_wa_id, serialized)

    async def record_inbound(self, lease: Lease, tenant_id: str, phone_number: str | None, *, message_id: str,
                             wa_id: str, kind: str, content: dict[str, Any], from_number: str | None,
                             from_lid: str | None) -> MessageItem | None:
        """Store an inbound message once (fenced by the lease); None when it was stored before."""
        now = utcnow()
        item = MessageItem(
            lease.account_id, message_id, tenant_id=tenant_id, direction=Direction.INBOUND.value,
            status=MessageStatus.RECEIVED.value, type=kind, to=phone_number, from_number=from_number,
            from_lid=from_lid, content=json.dumps(content, separators=(",", ":")), wa_message_id=wa_id,
            status_history=[{"status": MessageStatus.RECEIVED.value, "at": now, "reason": None}],
            created_at=now, updated_at=now, expires_at=self.messages.expiry(self.settings.message_ttl_days),
        )
        stored = await asyncio.to_thread(self.messages.record_inbound, item, lease.account_id, lease.token)
        return item if stored else None

    async def annotate_reaction(self, lease: Lease, message_id: str, sender: str, emoji: str) -> bool:
        return await asyncio.to_thread(self.messages.record_reaction, lease.account_id, message_id, sender, emoji,
                                       lease.token)

    async def annotate_edit(self, lease: Lease, message_id: str, body: str) -> bool:
        return await asyncio.to_thread(self.messages.record_edit, lease.account_id, message_id, body, lease.token)

    async def annotate_revoke(self, lease: Lease, message_id: str) -> bool:
        return await asyncio.to_thread(self.messages.record_revoke, lease.account_id, message_id, lease.token)

    # --- contacts -------------------------------------------------------------------------------------------

    async def pending_contact_checks(self, account_id: str) -> list[str]:
        return [item.contact for item in await asyncio.to_thread(self.contacts.pending, account_id)]

    async def record_contact_check(self, lease: Lease, phone: str, result: dict[str, Any] | None) -> bool:
        return await asyncio.to_thread(
            self.contacts.record_check, lease.account_id, phone, lease.token, on_whatsapp=result is not None,
            wa_id=(result or {}).get("wid"), lid=(result or {}).get("lid"), business=bool((result or {}).get("biz")),
            ttl_hours=self.settings.contact_cache_hours)

    async def remember_lid(self, lease: Lease, phone: str, lid: str) -> bool:
        return await asyncio.to_thread(self.contacts.remember_lid, lease.account_id, phone, lid, lease.token,
                                       self.settings.contact_cache_hours)

    async def remember_choices(self, lease: Lease, chat: str, menu: ChoiceMenu) -> bool:
        return await asyncio.to_thread(self.contacts.remember_choices, lease.account_id, chat, menu, lease.token)

    async def choice_menu(self, account_id: str, chat: str) -> ChoiceMenu | None:
        return await asyncio.to_thread(self.contacts.choices, account_id, chat)

    # --- audit log ------------------------------------------------------------------------------------------

    def audit(self, action: str, tenant_id: str, account_id: str, *, reason: str | None = None,
              failed: bool = False) -> None:
        """Record a host action (`host.start`, `host.linked`, `host.logout`, `host.takeover`, `host.failure`) in
        the audit log in the background: returns at once, and a failed write is only logged."""
        write = asyncio.get_running_loop().run_in_executor(
            self._audit_writer, lambda: self.audit_log.record(
                tenant_id, action, Actor(type=ActorType.HOST, id=self.host_id), Target(type="account", id=account_id),
                result="failed" if failed else "ok", account_id=account_id, reason=reason))
        self._audit_writes.add(write)
        write.add_done_callback(self._audit_writes.discard)

    # --- snapshots ------------------------------------------------------------------------------------------

    async def load_snapshot(self, account_id: str) -> bytes | None:
        return await self.snapshots.load_async(account_id) if self.snapshots else None

    async def save_snapshot(self, account_id: str, state: bytes) -> None:
        if self.snapshots:
            await self.snapshots.save_async(account_id, state)

    async def delete_snapshot(self, account_id: str) -> None:
        if self.snapshots:
            await self.snapshots.delete_async(account_id)


def s3_and_kms() -> tuple[Any, Any]:
    return client("s3"), client("kms")
