"""The WhatsApp Web page driver: every WPP call the host makes, over the bridge in `bridge.py`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from browser_host import bridge


class PermanentSendError(Exception):
    """The message can never be sent as it is (bad recipient, unsupported type)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransientSendError(Exception):
    """Worth retrying later (page busy, crashed, reloading); WhatsApp Web did not take the message."""


def wa_message_id(message_id: str) -> str:
    """The WhatsApp message id wagate asks the page to use: stable, so a retry finds the first try and
    WhatsApp's server, which keeps one message per id, never gets a second copy."""
    return "3EB0" + hashlib.sha256(message_id.encode()).hexdigest()[:16].upper()


def chat_id(to: str) -> str:
    return to if to.endswith("@g.us") else f"{to}@c.us"


def serialized_id(message_id: str, to: str) -> str:
    """The serialized key (`true_<chat>_<id>`) the page reports for our message."""
    return f"true_{chat_id(to)}_{wa_message_id(message_id)}"


@dataclass(frozen=True)
class Delivery:
    """What the page did with a message: its WhatsApp key, whether this call handed it over (an attempt),
    and the server's ack (None: the page has it but WhatsApp's server has not confirmed it yet)."""

    serialized: str
    attempted: bool
    ack: int | None


class WhatsAppPage:
    """One account's WhatsApp Web page."""

    def __init__(self, page: Page, send_timeout: float) -> None:
        self.page = page
        self.send_timeout = send_timeout
        # Sends the page has not answered yet: WhatsApp Web may still carry them out (a new chat waits for the
        # network, for instance), so they are awaited again, never repeated and never given up on.
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    @property
    def closed(self) -> bool:
        return self.page.is_closed()

    async def open(self, url: str, timeout: float) -> dict[str, Any]:
        """Navigate and wait for WPP; returns the connection state (authenticated, mainReady, code, me)."""
        await self.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        await self.page.wait_for_function(bridge.READY, timeout=timeout * 1000)
        return await self.state()

    async def state(self) -> dict[str, Any]:
        return dict(await self.page.evaluate(bridge.STATE))

    async def heartbeat(self, timeout: float) -> None:
        """Raises TimeoutError or PlaywrightError when the page does not answer."""
        await asyncio.wait_for(self.page.evaluate(bridge.HEARTBEAT), timeout)

    async def pairing_code(self, phone_number: str) -> str:
        return str(await self.page.evaluate(bridge.PAIRING_CODE, phone_number))

    async def logout(self) -> None:
        """Unlink this device from the phone (WhatsApp forgets it; a new QR is needed)."""
        await self.page.evaluate(bridge.LOGOUT)

    async def wait_linked(self, timeout: float) -> bool:
        """True once the page is logged in and connected; False when it shows a QR (no device to log out)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            state = await self.state()
            if state["authenticated"] and state["mainReady"]:
                return True
            if not state["authenticated"] and state.get("code"):
                return False
            if asyncio.get_running_loop().time() >= deadline:
                return bool(state["authenticated"])
            await asyncio.sleep(0.2)

    async def find(self, serialized: str) -> int | None:
        """The ack of a message the page has, or None when it does not have it."""
        found = await asyncio.wait_for(self.page.evaluate(bridge.FIND_MESSAGE, serialized), self.send_timeout)
        return None if found is None else int(found.get("ack") or 0)

    async def deliver(self, message_id: str, to: str, call: str, args: list[Any],
                      before_send: Callable[[], Awaitable[None]]) -> Delivery:
        """Make sure WhatsApp Web has the message (look first, send only if absent), then wait for the ack.

        `call` and `args` name one of `bridge.SEND`'s wa-js calls (see compose.py). `before_send` runs before a
        real hand-over (it counts the attempt, and raises to refuse one). Raises PermanentSendError when the
        message can never go out, TransientSendError when the page did not take it this time.
        """
        serialized = serialized_id(message_id, to)
        timeout = self.send_timeout
        attempted = False
        try:
            ack = await self.find(serialized)
            if ack is None:
                task = self._inflight.get(serialized)
                if task is None:
                    await before_send()
                    attempted = True
                    task = asyncio.ensure_future(self.page.evaluate(bridge.SEND, [call, args]))
                    task.add_done_callback(_retrieve)
                    self._inflight[serialized] = task
                try:
                    result = await asyncio.wait_for(asyncio.shield(task), timeout)
                except TimeoutError:
                    return Delivery(serialized, attempted, None)  # still with WhatsApp Web: not a failure
                finally:
                    if task.done():
                        self._inflight.pop(serialized, None)
                _raise_error(result, to)
                serialized = str(result.get("id") or serialized)
            if ack is None or ack == 0:
                waited = await asyncio.wait_for(
                    self.page.evaluate(bridge.WAIT_FOR_ACK, [serialized, timeout * 1000]), timeout + 5)
                ack = None if waited is None else int(waited)
        except TimeoutError as exc:
            raise TransientSendError("WhatsApp Web did not answer in time") from exc
        except PlaywrightError as exc:
            raise TransientSendError(str(exc).splitlines()[0][:300]) from exc
        return Delivery(serialized, attempted, ack)

    async def operate(self, call: str, args: list[Any], before_send: Callable[[], Awaitable[None]]) -> dict[str, Any]:
        """Carry out a reaction, edit, revoke or read receipt (`bridge.OPERATE`): idempotent, so a retry after
        a crash repeats it harmlessly. Raises like `deliver`."""
        await before_send()
        try:
            result = await asyncio.wait_for(self.page.evaluate(bridge.OPERATE, [call, args]), self.send_timeout)
        except TimeoutError as exc:
            raise TransientSendError("WhatsApp Web did not answer in time") from exc
        except PlaywrightError as exc:
            raise TransientSendError(str(exc).splitlines()[0][:300]) from exc
        _raise_error(result, "")
        return dict(result)

    async def typing(self, chat: str, seconds: float) -> None:
        """Show "typing…" in the chat for `seconds`, then return (a chat the page does not know yet shows nothing:
        wa-js refuses it, and the message creates the chat)."""
        with contextlib.suppress(Exception):
            await self.page.evaluate(bridge.TYPING, [chat, int(seconds * 1000)])
        await asyncio.sleep(seconds)

    async def download_media(self, serialized: str) -> bytes:
        """The bytes of a media message the page has (`WPP.chat.downloadMedia`)."""
        encoded = await asyncio.wait_for(self.page.evaluate(bridge.DOWNLOAD_MEDIA, serialized), self.send_timeout * 4)
        if not isinstance(encoded, str):
            raise TransientSendError(f"media download failed: {encoded!r}"[:300])
        return base64.b64decode(encoded)

    async def phone_of_lid(self, lid: str) -> str | None:
        """The phone number behind a `…@lid` sender (`WPP.contact.getPnLidEntry`), or None."""
        with contextlib.suppress(PlaywrightError, TimeoutError):
            entry = await asyncio.wait_for(self.page.evaluate(bridge.PN_LID_ENTRY, lid), self.send_timeout)
            phone = (entry or {}).get("phoneNumber")
            if phone:
                return str(phone).split("@")[0]
        return None

    async def query_exists(self, phone: str) -> dict[str, Any] | None:
        """`WPP.contact.queryExists`: `{wid, lid, biz}` when the number is on WhatsApp, else None."""
        result = await asyncio.wait_for(self.page.evaluate(bridge.QUERY_EXISTS, f"{phone}@c.us"), self.send_timeout)
        if isinstance(result, dict) and result.get("error"):
            raise TransientSendError(str(result["error"])[:300])
        return dict(result) if result else None


def _raise_error(result: dict[str, Any], to: str) -> None:
    error = result.get("error")
    if error:
        if error.get("code") in bridge.PERMANENT_ERRORS:
            what = f"{to} is not a WhatsApp user" if to else "WhatsApp Web refused it"
            raise PermanentSendError(bridge.PERMANENT_ERRORS[error["code"]],
                                     f"{what} ({error['code']}: {str(error.get('message'))[:200]})")
        raise TransientSendError(f"{error.get('code')}: {str(error.get('message'))[:300]}")


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A send whose page closed meanwhile fails with nobody awaiting it: that is expected, not an error."""
    if not task.cancelled():
        task.exception()
