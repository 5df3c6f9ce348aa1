"""One page's WebSocket session: the simulated WhatsApp server side of a linked or linking page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from .network import Frame, Network, SimError, normalize_phone

log = logging.getLogger(__name__)
#: WebSocket close code of a connection replaced by a newer login of the same device ("conflict").
CLOSE_REPLACED = 4002
#: How long a login waits for the device's older connection to answer a liveness probe (plus the
#: account's latency both ways). A page that answers is live: it is replaced and a conflict counted.
PROBE_TIMEOUT = 1.5
_CLOSE = {"type": "__close__"}  # sender-queue marker: close the socket after the frames before it


class PageSession:
    """Server end of one page connection (implements `network.PageLink`)."""

    def __init__(self, network: Network, ws: web.WebSocketResponse) -> None:
        self.network = network
        self.config = network.config
        self.page_id = secrets.token_hex(6)
        self.phone: str | None = None
        self.device_id: int | None = None
        self.ref: str | None = None
        self.full_code: str | None = None
        self.old_refs: set[str] = set()
        self._ws = ws
        self._nonce = secrets.token_bytes(16)
        self._out: asyncio.Queue[tuple[float, Frame]] = asyncio.Queue()
        self._rotation: asyncio.Task[None] | None = None
        self._dropped = False
        self._probes: dict[str, asyncio.Future[bool]] = {}

    # -- PageLink -----------------------------------------------------------------------------
    def send(self, frame: Frame) -> None:
        """Queue a frame; while the account is "slow" it leaves after the added latency."""
        if self._dropped:
            return
        loop = asyncio.get_running_loop()
        self._out.put_nowait((loop.time() + self.network.latency_for(self.phone), frame))

    def drop(self, code: int, reason: str) -> None:
        """Cut the connection (network down, reset); the page will try to reconnect."""
        if self._dropped:
            return
        self._gone()
        asyncio.get_running_loop().create_task(self._ws.close(code=code, message=reason.encode()))

    async def probe(self, timeout: float) -> bool:
        """Whether the page behind this connection answers now (False: closed, gone or hung)."""
        if self._dropped:
            return False
        token = secrets.token_hex(4)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._probes[token] = fut
        self.send({"type": "probe", "id": token})
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        finally:
            self._probes.pop(token, None)

    def replace(self) -> None:
        """A newer connection of the same device logged in: tell the page, then close (no reconnect).

        Frames queued before go out first (receipts of sends the server took); later ones are dropped.
        """
        if self._dropped:
            return
        self.send({"type": "conflict", "reason": "replaced"})
        self._gone()
        loop = asyncio.get_running_loop()
        self._out.put_nowait((loop.time() + self.network.latency_for(self.phone), _CLOSE))

    def _gone(self) -> None:
        """Stop serving this connection: off the network, no more frames either way."""
        self._dropped = True
        self.network.pages.pop(self.page_id, None)
        self._stop_rotation()
        for fut in self._probes.values():
            if not fut.done():
                fut.set_result(False)

    def linked(self, phone: str, device_id: int) -> None:
        """The page is now logged in as `phone`/`device_id`."""
        self._stop_rotation()
        self.phone, self.device_id = phone, device_id
        if self.ref:
            self.old_refs.add(self.ref)
        self.ref = self.full_code = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the page until it disconnects."""
        self.network.pages[self.page_id] = self
        sender = asyncio.create_task(self._sender())
        self.send({"type": "challenge", "nonce": self._nonce.hex(), "page_id": self.page_id})
        try:
            async for msg in self._ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                latency = self.network.latency_for(self.phone)
                if latency:
                    await asyncio.sleep(latency)
                if self._dropped:
                    break
                await self._dispatch(msg.data)
        finally:
            self._gone()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _sender(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            at, frame = await self._out.get()
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if frame is _CLOSE:
                    await self._ws.close(code=CLOSE_REPLACED, message=b"replaced by a newer login")
                    return
                await self._ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError):
                return

    async def _dispatch(self, raw: str) -> None:
        frame: dict[str, Any] = {}
        try:
            frame = json.loads(raw)
            handler = getattr(self, f"_on_{frame.get('type')}", None)
            if handler is None:
                raise SimError(400, "unknown_frame", f"unknown frame type {frame.get('type')!r}")
            result = handler(frame)
            if asyncio.iscoroutine(result):
                await result
        except SimError as exc:
            self.send({"type": "error", "req": frame.get("req"), "code": exc.code, "message": exc.message})
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad frame from page %s: %s", self.page_id, exc)

    # -- QR rotation --------------------------------------------------------------------------
    def _start_rotation(self) -> None:
        self._stop_rotation()
        self._rotation = asyncio.get_running_loop().create_task(self._rotate())

    def _stop_rotation(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
            self._rotation = None

    async def _rotate(self) -> None:
        for _ in range(max(1, self.config.qr_max_rotations)):
            if self.ref:
                self.old_refs.add(self.ref)
            self.ref = "2@" + base64.b64encode(secrets.token_bytes(60)).decode()
            self.full_code = None
            self.send({"type": "ref", "ref": self.ref, "ttl": self.config.qr_interval})
            await asyncio.sleep(self.config.qr_interval)
        # Like WhatsApp Web: after a few codes the QR stops until the user asks for a new one.
        if self.ref:
            self.old_refs.add(self.ref)
        self.ref = self.full_code = None
        self.send({"type": "qr_idle"})

    # -- frames from the page -----------------------------------------------------------------
    async def _on_login(self, frame: Frame) -> None:
        phone = normalize_phone(frame["wid"])
        device_id = int(frame["device_id"])
        device = self.network.device(phone, device_id)
        if device is None:
            self.send({"type": "login_failed", "reason": "device_removed"})
            return
        expected = hmac.new(device.secret, self._nonce, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(frame.get("proof", ""))):
            self.send({"type": "login_failed", "reason": "bad_credentials"})
            return
        await self._take_over(phone, device_id)
        # Checked again after waiting: the device, the network or this page may have changed.
        device = self.network.device(phone, device_id)
        if self._dropped:
            return
        if device is None:
            self.send({"type": "login_failed", "reason": "device_removed"})
            return
        if self.network.accounts[phone].network == "down":
            self.drop(4000, "network down")
            return
        # No await from the last _take_over check to here: one live connection per device.
        self.linked(phone, device.device_id)
        self.send({"type": "login_ok", "wid": f"{phone}@c.us", "device_id": device.device_id,
                   "push_name": self.network.accounts[phone].push_name})
        for fid in sorted(device.pending):
            self.send(device.pending[fid])

    async def _take_over(self, phone: str, device_id: int) -> None:
        """One linked device has one live connection: replace the device's other connections.

        Each older connection is probed first. One that answers is a live page (another tab or host
        with the same credentials): that is a conflict, counted on the device. One that closes or
        stays silent (a reloaded, closed or crashed page whose socket has not closed yet) is just
        replaced, without counting.
        """
        while True:
            if self._dropped or phone not in self.network.accounts:
                return
            others = [p for p in self.network.online_pages(phone, device_id) if p is not self]
            if not others:
                return
            timeout = PROBE_TIMEOUT + 2 * self.network.latency_for(phone)
            answers = await asyncio.gather(*(p.probe(timeout) for p in others))
            for page, alive in zip(others, answers, strict=True):
                if page.page_id not in self.network.pages:
                    continue  # closed meanwhile: it was gone
                if alive:
                    self.network.record_conflict(phone, device_id)
                    log.info("device %s:%s logged in again: page %s replaced (conflict)",
                             phone, device_id, page.page_id)
                else:
                    log.info("device %s:%s logged in again: silent page %s replaced (not a conflict)",
                             phone, device_id, page.page_id)
                page.replace()

    def _on_qr_request(self, frame: Frame) -> None:
        if self.phone is None:
            self._start_rotation()

    _on_refresh_qr = _on_qr_request

    def _on_auth_code(self, frame: Frame) -> None:
        if frame.get("ref") == self.ref and self.ref:
            self.full_code = str(frame["full_code"])

    def _on_pair_request(self, frame: Frame) -> None:
        if self.phone is not None:
            raise SimError(409, "cannot_get_code_for_already_authenticated", "already authenticated")
        phone = normalize_phone(frame["phone"])
        # Choosing "link with phone number" replaces the QR, as in WhatsApp Web.
        self._stop_rotation()
        if self.ref:
            self.old_refs.add(self.ref)
        self.ref = self.full_code = None
        code = self.network.new_pairing_code(self.page_id, phone)
        self.send({"type": "pair_code", "req": frame.get("req"), "code": code})

    def _require_login(self) -> str:
        if self.phone is None:
            raise SimError(401, "not_authenticated", "page is not logged in")
        return self.phone

    def _on_send(self, frame: Frame) -> None:
        phone = self._require_login()
        msg = frame["msg"]
        try:
            try:
                ack = self.network.outbound(phone, msg)
            except (ValueError, KeyError, TypeError) as exc:
                raise SimError(400, "invalid_message", f"malformed message: {exc}") from exc
            self.send({**ack, "req": frame.get("req")})
        except SimError as exc:
            self.send({"type": "send_error", "req": frame.get("req"), "id": msg.get("id"),
                       "code": exc.code, "message": exc.message})

    def _on_react(self, frame: Frame) -> None:
        self.network.account_react(self._require_login(), frame)
        self.send({"type": "done", "req": frame.get("req"), "id": frame.get("id")})

    def _on_edit(self, frame: Frame) -> None:
        self.network.account_edit(self._require_login(), frame)
        self.send({"type": "done", "req": frame.get("req"), "id": frame.get("id")})

    def _on_revoke(self, frame: Frame) -> None:
        self.network.account_revoke(self._require_login(), frame)
        self.send({"type": "done", "req": frame.get("req"), "id": frame.get("id")})

    def _on_exists(self, frame: Frame) -> None:
        self.send({"type": "exists_result", "req": frame.get("req"),
                   **self.network.exists(frame.get("wid") or frame.get("user"))})

    def _on_read(self, frame: Frame) -> None:
        phone = self._require_login()
        contact, _ = self.network.resolve_contact(frame["chat"])
        self.network.mark_read(phone, contact)

    def _on_presence(self, frame: Frame) -> None:
        phone = self._require_login()
        contact, _ = self.network.resolve_contact(frame["chat"])
        duration = frame.get("duration")
        self.network.account_presence(phone, contact, str(frame.get("state")),
                                      float(duration) / 1000 if isinstance(duration, int | float) else None)

    def _on_got(self, frame: Frame) -> None:
        if self.phone is not None and self.device_id is not None:
            self.network.confirm(self.phone, self.device_id, int(frame["fid"]))

    def _on_logout(self, frame: Frame) -> None:
        phone = self._require_login()
        self.network.unlink(phone, self.device_id, reason="user_logout")

    def _on_ping(self, frame: Frame) -> None:
        self.send({"type": "pong", "req": frame.get("req")})

    def _on_probe_ack(self, frame: Frame) -> None:
        fut = self._probes.get(str(frame.get("id")))
        if fut is not None and not fut.done():
            fut.set_result(True)
