"""One WhatsApp account on this host: its lease, browser context and page, status and events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError

from browser_host.config import HostConfig
from browser_host.contacts import answer_checks
from browser_host.contexts import open_context
from browser_host.inbound import Inbound
from browser_host.outbox import Outbox
from browser_host.page import WhatsAppPage
from browser_host.state import Backoff, InvalidTransition, StatusMachine
from browser_host.store import HostStore
from core.errors import LeaseLost
from core.ids import event_id, id_floor
from core.models.accounts import ConnectionStatus as S
from core.models.events import EventType
from core.models.messages import MessageStatus
from core.proxies import ProxyRefused
from core.store.accounts import STOPPED, AccountChange, pacing_of, plain
from core.store.leases import Lease
from core.store.tables import AccountItem

log = logging.getLogger("browser_host.account")
QR_TTL_SECONDS = 20
# Status transitions that are host actions of the audit log (start and logout are recorded where they happen).
AUDITED: dict[S, str] = {S.WORKING: "host.linked", S.FAILED: "host.failure"}


@dataclass
class HostParts:
    """What every account runner shares with its host."""

    config: HostConfig
    store: HostStore
    snapshot_api: Any  # the browser_host.snapshot module, or None without snapshots
    on_lost: Callable[[str], None]
    metrics: dict[str, float] = field(default_factory=dict)

    def count(self, name: str, value: float = 1) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccountRunner:
    """Keeps one account's WhatsApp Web page alive while this host holds its lease."""

    def __init__(self, parts: HostParts, lease: Lease, account: AccountItem, browser: Browser) -> None:
        self.parts = parts
        self.cfg = parts.config
        self.store = parts.store
        self.lease = lease
        # Renewal only counts from when it was asked for: a lease is trusted for less than its TTL.
        self.lease_deadline = time.monotonic() + parts.config.lease_ttl * 0.8
        self.account_id = account.account_id
        self.tenant_id = account.tenant_id
        self.phone_number = account.phone_number
        # Read once: a changed proxy takes effect when the account next starts (a restart makes a new runner).
        self.proxy_setting = plain(account.proxy) if getattr(account, "proxy", None) else None
        self.browser = browser
        self.context: BrowserContext | None = None
        self.page: WhatsAppPage | None = None
        # Start from what the item says, so the move to STARTING is recorded even after a host crash.
        self.machine = StatusMachine(S(account.connection_status))
        self.handled_action_at = account.action_requested_at
        self.handled_pairing_at: str | None = None
        self.failed = False  # gave up after max recoveries: only a new action restarts it
        self.lost = False
        self.deleted_pending = False  # the account is being deleted: its messages fail, none go out
        self.recoveries = 0
        self.backoff = Backoff(self.cfg.recovery_backoff, self.cfg.recovery_backoff_max)
        self.pacing = pacing_of(account)
        self.outbox = Outbox(self, lease.pending_from or _floor_of(account.created_at))
        self.inbound = Inbound(self)
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._recovering = asyncio.Lock()
        self._closing = False
        self._logout_reason: str | None = None
        self.last_snapshot = 0.0

    # --- lease ----------------------------------------------------------------------------------------------

    def lease_valid(self) -> bool:
        return not self.lost and time.monotonic() < self.lease_deadline

    async def _renew_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.cfg.lease_ttl / 3)
            asked = time.monotonic()
            try:
                renewed = await self.store.renew(self.lease, self.cfg.lease_ttl, self.outbox.pending_from)
            except Exception as exc:  # noqa: BLE001 - AWS unreachable: keep trying until the lease runs out
                log.warning("account %s: lease renewal failed: %s", self.account_id, type(exc).__name__)
                if time.monotonic() >= self.lease_deadline:
                    self.abandon("the lease could not be renewed in time")
                    return
                continue
            if renewed is None:
                self.abandon("another host holds the lease now")
                return
            self.lease = renewed
            self.lease_deadline = asked + self.cfg.lease_ttl * 0.8

    def abandon(self, why: str) -> None:
        """The lease is gone: close the page at once and write nothing more about this account."""
        if self.lost:
            return
        log.warning("account %s: lease lost (%s); closing its page", self.account_id, why)
        self.lost = True
        self._closing = True
        self.parts.count("leases_lost")
        self.parts.on_lost(self.account_id)
        asyncio.get_running_loop().create_task(self._close(), name=f"abandon-{self.account_id}")

    # --- lifecycle ------------------------------------------------------------------------------------------

    @property
    def status(self) -> S:
        return self.machine.status

    def is_working(self) -> bool:
        return self.status is S.WORKING and self.page is not None and not self.page.closed and self.lease_valid()

    async def start(self, reason: str = "starting the browser page") -> None:
        """Open the context and page; the status follows from what the page shows."""
        self._writer = asyncio.create_task(self._write_loop(), name=f"writes-{self.account_id}")
        self._tasks.append(asyncio.create_task(self._renew_loop(), name=f"lease-{self.account_id}"))
        self._set_status(S.STARTING, reason)
        self.store.audit("host.start", self.tenant_id, self.account_id, reason=reason)
        try:
            await self._open_context()
        except ProxyRefused as exc:  # never open it without its proxy: FAILED with why, until started again
            self._give_up(str(exc))
        else:
            await self._open_page()
            self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat-{self.account_id}"))
        self._tasks.append(asyncio.create_task(self.outbox.run(), name=f"outbox-{self.account_id}"))

    async def _open_context(self) -> None:
        self.context, rejected = await open_context(self.browser, self.parts.snapshot_api, self.store, self.cfg,
                                                    self.account_id, self.proxy_setting, self._on_binding)
        if rejected:  # altered or misplaced: never used; the next link replaces it
            self.store.audit("host.failure", self.tenant_id, self.account_id, reason=rejected, failed=True)
            self._logout_reason = f"{rejected}; link the phone again"

    async def _open_page(self) -> None:
        assert self.context is not None
        raw = await self.context.new_page()
        raw.on("crash", lambda _: self._schedule_recover("renderer crashed"))
        self.page = WhatsAppPage(raw, self.cfg.send_timeout)
        try:
            state = await self.page.open(self.cfg.wa_url, self.cfg.page_ready_timeout)
        except PlaywrightError as exc:
            if self.proxy_setting is None or "net::ERR_" not in str(exc):
                raise
            # Say where it failed: a refused proxy login reads as a bare HTTP error otherwise.
            raise PlaywrightError(f"proxy_error: through proxy {self.proxy_setting.get('server')}: "
                                  f"{str(exc).splitlines()[0][:200]}") from exc
        if state["authenticated"] and state["mainReady"]:
            await self._on_working(state.get("me"))
        elif state.get("code"):
            await self._on_qr(state["code"])

    async def stop(self, *, reason: str = "stop requested", save: bool = True, final_status: S | None = S.STOPPED,
                   hand_over: bool = False) -> None:
        """Finish the send in flight, snapshot a linked account, close the page, record the final status and
        let the lease go (at once, so another host can take the account without waiting for expiry)."""
        self._closing = True
        await self.outbox.stop(self.cfg.send_timeout + 5)
        if save and self.status is S.WORKING and self.lease_valid():
            await self.save_snapshot()
        await self._close()
        if self.lost:
            return
        with contextlib.suppress(Exception):
            await self.store.detach(self.lease, final_status, reason)
            if final_status is not None and final_status is not self.status:
                await self.publish(EventType.ACCOUNT_STATUS, {"status": final_status.value, "reason": reason})
        with contextlib.suppress(Exception):
            await self.store.release(self.lease)
        if hand_over:
            await self.store.nudge_fleet(self.account_id, "hand-over")

    async def _close(self) -> None:
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.context is not None:
            with contextlib.suppress(PlaywrightError):
                await self.context.close()
        self.context = self.page = None
        await self._writes.put(None)
        if self._writer is not None and self._writer is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._writer, timeout=10)

    async def logout(self, reason: str = "logged out by request") -> None:
        """Unlink the device from the phone (a new QR is needed) and forget its snapshot."""
        # Set first: the logout the page reports (its status, audit entry and the QR after it) gives this reason.
        self._logout_reason = reason
        if self.page is not None and not self.page.closed:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                if await self.page.wait_linked(self.cfg.page_ready_timeout / 2):
                    await self.page.logout()
        await self.store.delete_snapshot(self.account_id)

    async def request_pairing_code(self, phone_number: str) -> str:
        """Ask WhatsApp Web for the 8-character code to type on the phone."""
        if self.page is None:
            raise RuntimeError("page not open")
        return await self.page.pairing_code(phone_number)

    def check_contacts(self) -> None:
        """Answer the API's pending "is this number on WhatsApp?" checks (in the background)."""
        if self.page is not None and self.is_working() and not self._closing:
            task = asyncio.get_running_loop().create_task(self._guard(answer_checks(self), "contact checks"))
            self._tasks[:] = [t for t in self._tasks if not t.done()]
            self._tasks.append(task)

    # --- events from the page -------------------------------------------------------------------------------

    def _on_binding(self, _source: Any, name: str, payload: Any) -> None:
        handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            "conn.auth_code_change": lambda p: self._on_qr(p["fullCode"]) if p else _noop(),
            "conn.main_ready": lambda _: self._on_main_ready(),
            "conn.logout": lambda _: self._on_logout(),
            "conn.logout_reason": self._on_logout_reason,
            "conn.qrcode_idle": lambda _: self._on_qr_idle(),
            "chat.new_message": self.inbound.message,
            "chat.msg_ack_change": self._on_ack,
            "chat.new_reaction": self.inbound.reaction,
            "chat.msg_edited": self.inbound.edited,
            "chat.msg_revoke": self.inbound.revoked,
        }
        handler = handlers.get(name)
        if handler is not None and not self._closing:
            task = asyncio.get_running_loop().create_task(self._guard(handler(payload), name))
            self._tasks[:] = [t for t in self._tasks if not t.done()]
            self._tasks.append(task)

    async def _guard(self, coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except LeaseLost:
            self.abandon(f"a write for {what} was refused")
        except Exception:
            log.exception("account %s: handling %s failed", self.account_id, what)

    async def _on_qr(self, code: str) -> None:
        reason = self._logout_reason or "waiting for the QR code to be scanned"
        qr = {"value": code, "expires_at": iso_in(QR_TTL_SECONDS)}
        self._set_status(S.SCAN_QR_CODE, reason, AccountChange(qr=qr))
        self._enqueue_write(lambda: self.publish(EventType.ACCOUNT_QR, qr))

    async def _on_main_ready(self) -> None:
        me = None
        if self.page is not None:
            with contextlib.suppress(PlaywrightError):
                me = (await self.page.state()).get("me")
        await self._on_working(me)

    async def _on_working(self, me: str | None) -> None:
        self._logout_reason = None
        self.recoveries = 0
        phone = me.split("@")[0].split(":")[0] if me else None
        self.phone_number = phone or self.phone_number
        change = AccountChange(qr=None, pairing=None)
        if phone:
            change.phone_number = phone
        self._set_status(S.WORKING, "connected to WhatsApp", change)
        self.outbox.wake()
        await self.save_snapshot()

    async def _on_logout(self) -> None:
        self._logout_reason = self._logout_reason or "logged out from the phone"
        if self.status is S.WORKING:
            self._set_status(S.SCAN_QR_CODE, self._logout_reason, AccountChange(qr=None))
            self.store.audit("host.logout", self.tenant_id, self.account_id, reason=self._logout_reason)
        await self.store.delete_snapshot(self.account_id)

    async def _on_logout_reason(self, reason: Any) -> None:
        if reason and not self._logout_reason:
            self._logout_reason = f"logged out ({reason})"

    async def _on_qr_idle(self) -> None:
        # Nobody scanned: stop here instead of rotating QR codes forever; `start` asks again.
        self._set_status(S.FAILED, "qr_timeout: the QR code was not scanned in time",
                         AccountChange(qr=None, desired_state=STOPPED))
        self.failed = True

    async def _on_ack(self, event: dict[str, Any]) -> None:
        await self.outbox.on_ack(int(event.get("ack", 0)), [str(i) for i in event.get("ids") or []])

    async def publish_message_status(self, message_id: str, status: MessageStatus, reference: str | None,
                                     error: dict[str, Any] | None = None, reply_to: str | None = None) -> None:
        payload: dict[str, Any] = {"message_id": message_id, "status": status.value, "client_reference": reference}
        if error:
            payload["error"] = error
        await self.store.publish(EventType.MESSAGE_STATUS, self.account_id, self.tenant_id, payload,
                                 event_id(message_id, status.value), reply_to)

    # --- status writes (ordered per account, fenced by the lease) -------------------------------------------

    def _set_status(self, status: S, reason: str | None, change: AccountChange | None = None) -> None:
        try:
            changed = self.machine.set(status, reason)
        except InvalidTransition:
            # The page is the truth: record what happened, but make the surprise visible.
            log.warning("account %s: unexpected %s → %s (%s)", self.account_id, self.status, status, reason)
            self.machine.status, changed = status, True
        if changed and status in AUDITED and not self.lost:
            self.store.audit(AUDITED[status], self.tenant_id, self.account_id, reason=reason,
                             failed=status is S.FAILED)
        if not changed and not change:
            return
        self._enqueue_write(lambda: self._write_status(status, reason, change, changed))

    async def _write_status(self, status: S, reason: str | None, change: AccountChange | None, changed: bool) -> None:
        await self.store.set_status(self.lease, status, reason, change)
        if changed:
            await self.publish(EventType.ACCOUNT_STATUS, {"status": status.value, "reason": reason})

    async def publish(self, kind: EventType, data: dict[str, Any], event_id: str | None = None) -> None:
        # The runner knows its account and tenant: no read of the account item per event.
        await self.store.publish(kind, self.account_id, self.tenant_id, data, event_id)

    def _enqueue_write(self, write: Callable[[], Awaitable[None]]) -> None:
        if not self.lost:
            self._writes.put_nowait(write)

    async def _write_loop(self) -> None:
        while (write := await self._writes.get()) is not None:
            if self.lost:
                continue
            try:
                await write()
            except LeaseLost:
                self.abandon("a status write was refused")
            except Exception:
                log.exception("account %s: state write failed", self.account_id)

    # --- liveness -------------------------------------------------------------------------------------------

    async def save_snapshot(self) -> None:
        """Encrypted browser state to S3, so another host (or this one after a crash) needs no new QR."""
        api = self.parts.snapshot_api
        if api is None or self.context is None or not self.lease_valid():
            return
        try:
            state = await api.capture_state(self.context)
            await self.store.save_snapshot(self.account_id, state)
            self.last_snapshot = time.monotonic()
        except Exception:
            log.exception("account %s: snapshot failed", self.account_id)

    async def _heartbeat_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.cfg.heartbeat_interval)
            page = self.page
            if page is None or self._recovering.locked():
                continue
            try:
                await page.heartbeat(self.cfg.heartbeat_timeout)
            except (TimeoutError, PlaywrightError) as exc:
                await self.recover(f"page unresponsive: {type(exc).__name__}")
                continue
            if self.status is S.WORKING and time.monotonic() - self.last_snapshot > self.cfg.snapshot_interval:
                await self.save_snapshot()

    def _give_up(self, reason: str) -> None:
        """FAILED with `reason`; only a new start (or restart) tries again."""
        log.warning("account %s: %s", self.account_id, reason)
        self._set_status(S.FAILED, reason)
        self.failed = True

    def _schedule_recover(self, reason: str) -> None:
        if not self._closing:
            self._tasks.append(asyncio.get_running_loop().create_task(self.recover(reason)))

    async def recover(self, reason: str) -> None:
        """Replace a dead page in the same context (storage intact), with capped backoff; FAILED after N tries."""
        if self._recovering.locked() or self._closing:
            return
        async with self._recovering:
            while not self._closing:
                self.recoveries += 1
                if self.recoveries > self.cfg.max_recoveries:
                    self._set_status(S.FAILED, f"gave up after {self.cfg.max_recoveries} recoveries: {reason}")
                    self.failed = True
                    return
                log.warning("account %s: recovering (%s), try %d", self.account_id, reason, self.recoveries)
                await asyncio.sleep(self.backoff.delay(self.recoveries - 1))
                try:
                    if self.page is not None:
                        with contextlib.suppress(PlaywrightError):
                            await self.page.page.close()
                    self._set_status(S.STARTING, f"recovering: {reason}")
                    if self.context is None:
                        await self._open_context()
                    await self._open_page()
                    return
                except ProxyRefused as exc:
                    self._give_up(str(exc))
                    return
                except LeaseLost:
                    raise
                except Exception as exc:  # noqa: BLE001 - the page, or storage/KMS unreachable: the next try
                    reason = f"recovery failed: {(str(exc) or type(exc).__name__).splitlines()[0][:200]}"


def _floor_of(created_at: str | None) -> str:
    """The smallest message id of the account's creation time: where a first owner's outbox scan starts."""
    try:
        millis = int(datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        millis = 0
    return id_floor("msg", millis - 60_000)


async def _noop() -> None:
    return None
