"""One WhatsApp account on this host: its browser context and page, status, sending and events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from browser_host import bridge
from browser_host.config import HostConfig
from browser_host.state import Backoff, InvalidTransition, StatusMachine, ack_status
from browser_host.store import HostStore, wa_message_id
from functions.dal.tables import AccountItem
from functions.models.accounts import ConnectionStatus as S
from functions.models.accounts import DesiredState
from functions.models.events import EventType
from functions.models.messages import MessageStatus

log = logging.getLogger("browser_host.account")
QR_TTL_SECONDS = 20


class PermanentSendError(Exception):
    """The message can never be sent as it is (bad recipient, unsupported type)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransientSendError(Exception):
    """Worth retrying later (page busy, crashed, reloading)."""


@dataclass
class HostServices:
    """What every account runner shares with the host."""

    config: HostConfig
    store: HostStore
    snapshots: Any  # browser_host.snapshot.SnapshotStore or None
    snapshot_api: Any  # the browser_host.snapshot module or None

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Blocking AWS calls off the event loop."""
        return await asyncio.to_thread(func, *args)


def _iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccountRunner:
    """Keeps one account's WhatsApp Web page alive and reports what happens on it."""

    def __init__(self, services: HostServices, account: AccountItem, browser: Browser) -> None:
        self.svc = services
        self.cfg = services.config
        self.account_id = account.account_id
        self.tenant_id = account.tenant_id
        self.phone_number = account.phone_number
        self.browser = browser
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        # Start from what the item says, so the move to STARTING is recorded even after a host crash
        # left the item at WORKING.
        self.machine = StatusMachine(S(account.connection_status))
        self.handled_action_at = account.action_requested_at
        self.handled_pairing_at: str | None = None
        self.failed = False  # gave up after max recoveries: only a new action restarts it
        self.recoveries = 0
        self.backoff = Backoff(self.cfg.recovery_backoff, self.cfg.recovery_backoff_max)
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._recovering = asyncio.Lock()
        self._closing = False
        self._logout_reason: str | None = None
        self.last_snapshot = 0.0

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def status(self) -> S:
        return self.machine.status

    def is_working(self) -> bool:
        return self.status is S.WORKING and self.page is not None and not self.page.is_closed()

    async def start(self, reason: str = "starting the browser page") -> None:
        """Open the context and page; the status follows from what the page shows."""
        self._tasks.append(asyncio.create_task(self._write_loop(), name=f"writes-{self.account_id}"))
        self._set_status(S.STARTING, reason)
        await self._open_context()
        await self._open_page()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat-{self.account_id}"))

    async def _open_context(self) -> None:
        state = await self.svc.run(self.svc.snapshots.load, self.account_id) if self.svc.snapshots else None
        if self.svc.snapshot_api is not None:
            self.context = await self.svc.snapshot_api.new_context_from_state(self.browser, state)
        else:
            self.context = await self.browser.new_context()
        if self.cfg.wajs_path:
            # WhatsApp's CSP blocks script tags: wa-js must come in as an init script, before the app.
            await self.context.add_init_script(path=Path(self.cfg.wajs_path))
        await self.context.add_init_script(bridge.EVENT_BRIDGE)
        await self.context.expose_binding(bridge.BINDING, self._on_binding)

    async def _open_page(self) -> None:
        assert self.context is not None
        page = await self.context.new_page()
        page.on("crash", lambda _: self._schedule_recover("renderer crashed"))
        self.page = page
        await page.goto(self.cfg.wa_url, wait_until="domcontentloaded", timeout=self.cfg.page_ready_timeout * 1000)
        await page.wait_for_function(bridge.READY, timeout=self.cfg.page_ready_timeout * 1000)
        state = await page.evaluate(bridge.STATE)
        if state["authenticated"] and state["mainReady"]:
            await self._on_working(state.get("me"))
        elif state.get("code"):
            await self._on_qr(state["code"])

    async def stop(self, *, reason: str = "stop requested", save: bool = True, final_status: S | None = S.STOPPED
                   ) -> None:
        """Close the page (snapshotting a linked account first) and record the final status."""
        self._closing = True
        if save and self.status is S.WORKING:
            await self.save_snapshot()
        for task in self._tasks[1:]:
            task.cancel()
        if self.context is not None:
            with contextlib.suppress(PlaywrightError):
                await self.context.close()
        self.context = self.page = None
        if final_status is not None:
            self._set_status(final_status, reason)
        await self._writes.put(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._tasks[0], timeout=10) if self._tasks else None

    async def logout(self) -> None:
        """Unlink the device (a new QR is needed) and forget its snapshot."""
        if self.page is not None and not self.page.is_closed():
            with contextlib.suppress(PlaywrightError):
                await self.page.evaluate(bridge.LOGOUT)
        self._logout_reason = "logged out by request"
        if self.svc.snapshots:
            await self.svc.run(self.svc.snapshots.delete, self.account_id)

    async def request_pairing_code(self, phone_number: str) -> str:
        """Ask WhatsApp Web for the 8-character code to type on the phone."""
        if self.page is None:
            raise TransientSendError("page not open")
        return str(await self.page.evaluate(bridge.PAIRING_CODE, phone_number))

    # --- sending ----------------------------------------------------------------------------------------

    async def send(self, message_id: str, envelope: dict[str, Any]) -> tuple[str, int]:
        """Hand one message to WhatsApp Web and wait until WhatsApp's server has it; (message id, ack).

        The WhatsApp id derives from ours, so a retry (after a timeout, a crash, a redelivery) first finds
        a message the page already has instead of sending it twice. Until the server acks, the queue
        message is kept: a host that dies in between leaves it to be retried, not lost.
        """
        kind = envelope.get("type")
        if kind != "text":
            raise PermanentSendError("unsupported_message_type",
                                     f"{kind} messages are not delivered by the web provider yet")
        to = str(envelope["to"])
        chat = to if to.endswith("@g.us") else f"{to}@c.us"
        wa_id = wa_message_id(message_id)
        page = self.page
        if page is None or page.is_closed() or not self.is_working():
            raise TransientSendError("account page is not ready")
        serialized = f"true_{chat}_{wa_id}"
        timeout = self.cfg.send_timeout
        try:
            found = await asyncio.wait_for(page.evaluate(bridge.FIND_MESSAGE, serialized), timeout)
            if found is None:
                text = envelope["text"]
                result = await asyncio.wait_for(
                    page.evaluate(bridge.SEND_TEXT, [chat, text["body"], wa_id, bool(text.get("preview_url"))]),
                    timeout)
                error = result.get("error")
                if error:
                    if error.get("code") in bridge.PERMANENT_ERRORS:
                        raise PermanentSendError("invalid_recipient",
                                                 f"{to} is not a WhatsApp user ({error['code']})")
                    raise TransientSendError(f"{error.get('code')}: {str(error.get('message'))[:300]}")
                serialized = str(result.get("id") or serialized)
            ack = await asyncio.wait_for(page.evaluate(bridge.WAIT_FOR_ACK, [serialized, timeout * 1000]),
                                         timeout + 5)
        except TimeoutError as exc:
            raise TransientSendError("WhatsApp Web did not answer in time") from exc
        except PlaywrightError as exc:
            raise TransientSendError(str(exc).splitlines()[0][:300]) from exc
        if ack is None:
            raise TransientSendError("WhatsApp has not acknowledged the message yet (offline?)")
        return serialized, int(ack)

    # --- events from the page ---------------------------------------------------------------------------

    def _on_binding(self, _source: Any, name: str, payload: Any) -> None:
        handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            "conn.auth_code_change": lambda p: self._on_qr(p["fullCode"]) if p else _noop(),
            "conn.main_ready": lambda _: self._on_main_ready(),
            "conn.logout": lambda _: self._on_logout(),
            "conn.logout_reason": self._on_logout_reason,
            "conn.qrcode_idle": lambda _: self._on_qr_idle(),
            "chat.new_message": self._on_message,
            "chat.msg_ack_change": self._on_ack,
        }
        handler = handlers.get(name)
        if handler is not None and not self._closing:
            task = asyncio.get_running_loop().create_task(self._guard(handler(payload), name))
            self._tasks.append(task)
            self._tasks[:] = [t for t in self._tasks if not t.done() or t is self._tasks[0]]

    async def _guard(self, coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except Exception:
            log.exception("account %s: handling %s failed", self.account_id, what)

    async def _on_qr(self, code: str) -> None:
        reason = self._logout_reason or "waiting for the QR code to be scanned"
        qr = {"value": code, "expires_at": _iso_in(QR_TTL_SECONDS)}
        self._set_status(S.SCAN_QR_CODE, reason, extra=[AccountItem.qr.set(qr)])
        self._enqueue_write(lambda: self._publish(EventType.ACCOUNT_QR, qr))

    async def _on_main_ready(self) -> None:
        me = None
        if self.page is not None:
            with contextlib.suppress(PlaywrightError):
                me = (await self.page.evaluate(bridge.STATE)).get("me")
        await self._on_working(me)

    async def _on_working(self, me: str | None) -> None:
        self._logout_reason = None
        self.recoveries = 0
        phone = me.split("@")[0].split(":")[0] if me else None
        self.phone_number = phone or self.phone_number
        extra: list[Any] = [AccountItem.qr.remove(), AccountItem.pairing.remove()]
        extra += [AccountItem.phone_number.set(phone)] if phone else []
        self._set_status(S.WORKING, "connected to WhatsApp", extra=extra)
        await self.save_snapshot()

    async def _on_logout(self) -> None:
        self._logout_reason = self._logout_reason or "logged out from the phone"
        if self.status is S.WORKING:
            self._set_status(S.SCAN_QR_CODE, self._logout_reason, extra=[AccountItem.qr.remove()])
        if self.svc.snapshots:
            await self.svc.run(self.svc.snapshots.delete, self.account_id)

    async def _on_logout_reason(self, reason: Any) -> None:
        if reason and not self._logout_reason:
            self._logout_reason = f"logged out ({reason})"

    async def _on_qr_idle(self) -> None:
        # Nobody scanned: stop here instead of rotating QR codes forever; `start` asks again.
        self._set_status(S.FAILED, "qr_timeout: the QR code was not scanned in time",
                         extra=[AccountItem.qr.remove(), AccountItem.desired_state.set(DesiredState.STOPPED.value)])
        self.failed = True

    async def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("fromMe") or msg.get("type") not in {"chat", "text"}:
            return
        inbound = {"id": msg["id"], "type": "text", "content": {"body": msg.get("body") or ""}, "t": msg.get("t"),
                   "from": str(msg.get("from") or "").split("@")[0]}
        item = await self.svc.run(self.svc.store.record_inbound, self.account_id, self.tenant_id,
                                  self.phone_number, inbound)
        if item is not None:
            await self._publish(EventType.MESSAGE_RECEIVED, {
                "message_id": item.message_id, "from": inbound["from"], "type": "text",
                "text": {"body": inbound["content"]["body"]}, "wa_message_id": msg["id"],
                "profile_name": msg.get("notifyName"), "timestamp": msg.get("t")})

    async def _on_ack(self, event: dict[str, Any]) -> None:
        status = ack_status(int(event.get("ack", 0)))
        if status is None:
            return
        for wa_id in event.get("ids") or []:
            item = await self.svc.run(self.svc.store.apply_ack, wa_id, status)
            if item is not None:
                await self.publish_message_status(item.message_id, status, item.client_reference)

    async def publish_message_status(self, message_id: str, status: MessageStatus, reference: str | None) -> None:
        await self._publish(EventType.MESSAGE_STATUS,
                            {"message_id": message_id, "status": status.value, "client_reference": reference})

    # --- status writes (ordered per account) ------------------------------------------------------------

    def _set_status(self, status: S, reason: str | None, extra: list[Any] | None = None) -> None:
        try:
            changed = self.machine.set(status, reason)
        except InvalidTransition:
            # The page is the truth: record what happened, but make the surprise visible.
            log.warning("account %s: unexpected %s → %s (%s)", self.account_id, self.status, status, reason)
            self.machine.status, changed = status, True
        if not changed and not extra:
            return
        self._enqueue_write(lambda: self._write_status(status, reason, extra, changed))

    async def _write_status(self, status: S, reason: str | None, extra: list[Any] | None, changed: bool) -> None:
        host = self.svc.config.host_id if status is not S.STOPPED else ""
        await self.svc.run(self.svc.store.set_status, self.account_id, status, reason, extra, host)
        if changed:
            await self._publish(EventType.ACCOUNT_STATUS, {"status": status.value, "reason": reason})

    async def _publish(self, kind: EventType, payload: dict[str, Any]) -> None:
        # The runner knows its account and tenant: no read of the account item per event.
        await self.svc.run(self.svc.store.publish, kind, self.account_id, self.tenant_id, payload)

    def _enqueue_write(self, write: Callable[[], Awaitable[None]]) -> None:
        self._writes.put_nowait(write)

    async def _write_loop(self) -> None:
        while (write := await self._writes.get()) is not None:
            try:
                await write()
            except Exception:
                log.exception("account %s: state write failed", self.account_id)

    # --- liveness ---------------------------------------------------------------------------------------

    async def save_snapshot(self) -> None:
        """Encrypted browser state to S3, so another host (or this one after a crash) needs no new QR."""
        if self.svc.snapshots is None or self.svc.snapshot_api is None or self.context is None:
            return
        try:
            state = await self.svc.snapshot_api.capture_state(self.context)
            await self.svc.run(self.svc.snapshots.save, self.account_id, state)
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
                await asyncio.wait_for(page.evaluate(bridge.HEARTBEAT), self.cfg.heartbeat_timeout)
            except (TimeoutError, PlaywrightError) as exc:
                await self.recover(f"page unresponsive: {type(exc).__name__}")
                continue
            if self.status is S.WORKING and time.monotonic() - self.last_snapshot > self.cfg.snapshot_interval:
                await self.save_snapshot()

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
                            await self.page.close()
                    if self.context is None:
                        await self._open_context()
                    self._set_status(S.STARTING, f"recovering: {reason}")
                    await self._open_page()
                    return
                except (PlaywrightError, TimeoutError) as exc:
                    reason = f"recovery failed: {str(exc).splitlines()[0][:200]}"


async def _noop() -> None:
    return None
