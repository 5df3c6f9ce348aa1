"""An account's outbox: its pending message rows, delivered in order by the host that holds its lease.

The messages table is the outbox (the API's `queued` row is the acceptance), so nothing rides only in a
queue: a nudge wakes the owner at once, and every `sweep_interval` the owner re-reads the account's
pending rows anyway. Per-account order is message-id order, one message at a time; a message that must
wait (account not connected, WhatsApp's server has not confirmed it yet) holds back the ones after it.
Only real hand-overs to WhatsApp Web count as attempts, so waiting never fails a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from browser_host.compose import MediaBytes, Outgoing, compose, interactive_body, target_of
from browser_host.media import MediaError, load_outbound
from browser_host.pacing import DAY, Pacer, typing_seconds
from browser_host.page import PermanentSendError, TransientSendError, chat_id, serialized_id
from browser_host.state import Backoff, ack_status
from core.errors import LeaseLost
from core.ids import id_floor
from core.models.accounts import Pacing
from core.models.choices import ChoiceMenu
from core.models.common import iso_of
from core.models.envelope import MEDIA_TYPES
from core.models.messages import STATUS_RANK, MessageStatus
from core.store.messages import PENDING
from core.store.tables import MessageItem

if TYPE_CHECKING:
    from browser_host.runner import AccountRunner

log = logging.getLogger("browser_host.outbox")
# Message ids are made before the row is written; a row may appear up to this long after its id's time.
WRITE_DELAY_MS = 60_000
SENT = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ})
PAGE = 50  # pending rows read at once


class Outbox:
    def __init__(self, runner: AccountRunner, pending_from: str) -> None:
        self.runner = runner
        self.store = runner.store
        self.cfg = runner.cfg
        self.pending_from = pending_from
        self.backoff = Backoff(base=1.0, cap=30.0)
        self._wake = asyncio.Event()
        self._busy = asyncio.Lock()
        self._stopping = False
        self.sent_ids: dict[str, str] = {}  # WhatsApp key → our message id (acks name the former)
        self.recorded: dict[str, MessageStatus] = {}  # message id → the furthest status already written
        self.references: dict[str, str | None] = {}  # message id → client reference (for the events)
        self.replies: dict[str, str] = {}  # message id → its SQS producer's reply queue (status events go there too)
        self.created: dict[str, float] = {}  # message id → accepted at (epoch seconds)
        self.pacer = Pacer(runner.pacing)
        self.counted: dict[str, bool] = {}  # message ids already counted against the daily cap

    def wake(self) -> None:
        self._wake.set()

    def repace(self, pacing: Pacing) -> None:
        """The account's pacing changed (PATCH): held messages get new slots under it, at once."""
        if pacing != self.pacer.pacing:
            self.pacer.pacing = pacing
            self.pacer.slots.clear()
            self._wake.set()

    async def run(self) -> None:
        self._wake.set()  # a new owner looks at once: the previous one may have left work
        pacing = self.pacer.pacing
        if (pacing.min_gap_seconds or pacing.jitter_seconds) and self.pacer.last_sent is None:
            # The gap counts from the last hand-over by any host, so a takeover does not send early.
            try:
                self.pacer.last_sent = await self.store.last_handed_over(self.runner.account_id)
            except Exception:  # unknown: no gap to keep for the first message, as before
                log.warning("account %s: last hand-over not read", self.runner.account_id, exc_info=True)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.sweep_interval)
            self._wake.clear()
            if self._stopping or not self.runner.lease_valid():
                continue
            try:
                async with self._busy:
                    await self._drain()
            except LeaseLost:
                self.runner.abandon("a message write was refused")
                return
            except Exception:
                log.exception("account %s: outbox pass failed", self.runner.account_id)

    async def stop(self, timeout: float) -> None:
        """No new pass; wait (bounded) for the message in flight to finish."""
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._busy.acquire(), timeout)
            self._busy.release()

    async def _drain(self) -> None:
        since = self.pending_from
        while not self._stopping:
            items = await self.store.pending(self.runner.account_id, since, PAGE)
            if not items:
                break
            for item in items:
                if self._stopping or not self.runner.lease_valid():
                    return
                if not await self._deliver(item):
                    self._advance(item.message_id)
                    return
            if len(items) < PAGE:
                break  # that was all of it; a message written meanwhile wakes the outbox again
            since = items[-1].message_id + "0"  # just past the last one (ids have one length)
        self._advance(id_floor("msg", int(time.time() * 1000) - WRITE_DELAY_MS))

    def _advance(self, message_id: str) -> None:
        """Where the next scan (and a next owner) starts; never past a row that may still be written."""
        floor = id_floor("msg", int(time.time() * 1000) - WRITE_DELAY_MS)
        candidate = min(message_id, floor)
        if candidate > self.pending_from:
            self.pending_from = candidate

    async def _deliver(self, item: MessageItem) -> bool:
        """True when the message needs nothing more now; False when it (and those after it) must wait."""
        runner = self.runner
        if runner.deleted_pending:
            await self._fail(item, "account_deleted", "the account was deleted before sending")
            return True
        if not runner.is_working():
            age = time.time() - _created(item)
            if item.status == MessageStatus.QUEUED.value and age >= self.cfg.not_connected_timeout:
                await self._fail(item, "account_not_connected",
                                 f"the account was not connected within {self.cfg.not_connected_timeout:.0f}s")
                return True
            return False
        try:
            envelope: dict[str, Any] = json.loads(item.content)
            str(envelope["to"])
        except (ValueError, TypeError, KeyError):
            # A stored row nobody can send must not block the account's queue behind it.
            await self._fail(item, "invalid_message", "the stored message cannot be read")
            return True
        try:
            outgoing, target_id = await self._prepare(item, envelope)
        except PermanentSendError as exc:
            await self._fail(item, exc.code, str(exc))
            return True
        except TransientSendError as exc:
            log.warning("message %s: %s; again in %.1fs", item.message_id, exc, self.cfg.sweep_interval)
            return False
        lease = runner.lease
        to = str(envelope.get("to", ""))
        serialized = serialized_id(item.message_id, to)
        current = [item]
        # Numbered-text buttons and lists: what the numbers mean is stored before the text can reach the chat.
        menu = ChoiceMenu.of(item.message_id, serialized, interactive_body(envelope)) \
            if envelope.get("type") == "interactive" else None

        async def take(attempt: bool) -> None:
            """queued → sending (fenced) as this message is handed over; one write, the attempt counted in it."""
            message = current[0]
            if message.status == MessageStatus.QUEUED.value:
                if await self.store.mark_sending(message, serialized, lease, attempt):
                    return
                fresh = await self.store.find_message(message.account_id, message.message_id)
                if fresh is None or MessageStatus(fresh.status) not in PENDING:
                    raise _Finished
                if fresh.fence is not None and int(fresh.fence) > lease.token:
                    raise LeaseLost(message.account_id)
                current[0] = message = fresh
            if attempt and not await self.store.count_attempt(message, lease):
                raise LeaseLost(message.account_id)

        async def before_send() -> None:
            if int(current[0].attempts or 0) >= self.cfg.outbound_max_attempts:
                raise PermanentSendError("send_failed",
                                         f"WhatsApp Web did not take it in {current[0].attempts} attempts")
            if not runner.lease_valid():
                raise TransientSendError("the lease is not confirmed")
            await take(attempt=True)
            if menu is not None:
                await self.store.remember_choices(lease, to, menu)  # LeaseLost when no longer ours

        page = runner.page
        if page is None:
            return False
        if outgoing.is_operation:
            return await self._operate(item, envelope, outgoing, target_id, before_send, current)
        if self.pacer.pacing.active and item.status == MessageStatus.QUEUED.value:
            if await self._held_back(item):
                return False
            if self.pacer.pacing.typing and outgoing.call == "text":
                await page.typing(chat_id(to), typing_seconds(str(outgoing.args[1])))
        # Known before the hand-over: WhatsApp's ack can arrive before `deliver` returns.
        self._remember(serialized, item)
        try:
            delivery = await page.deliver(item.message_id, to, outgoing.call, outgoing.args, before_send)
            if not delivery.attempted:
                await take(attempt=False)  # the page had it already (a previous owner handed it over)
        except _Finished:
            return True
        except PermanentSendError as exc:
            await self._fail(current[0], exc.code, str(exc))
            return True
        except TransientSendError as exc:
            return self._later(current[0], exc)
        item = current[0]
        self.pacer.sent(item.message_id, time.time())
        self._remember(delivery.serialized, item)
        if delivery.serialized != item.wa_message_id:
            await self.store.set_wa_id(item, delivery.serialized, lease)
        if delivery.ack is None:
            # WhatsApp Web has it but the server has not confirmed it (offline?): it stays `sending` and goes
            # out when the connection returns; it is never failed while the page may still send it.
            log.info("message %s waits for WhatsApp's server", item.message_id)
            asyncio.get_running_loop().call_later(self.cfg.send_timeout / 2, self._wake.set)
            return False
        status = ack_status(delivery.ack)
        if status is MessageStatus.FAILED:
            await self._fail(item, "send_failed", "WhatsApp reported the message as failed")
        elif status in SENT:
            await self._advance_to(item, status, f"ack {delivery.ack}")
        log.info("message %s sent (ack %s, attempt %s, correlation %s)", item.message_id, delivery.ack,
                 item.attempts, item.correlation_id)
        return True

    async def _held_back(self, item: MessageItem) -> bool:
        """Pacing: True when the message must wait (its `scheduled_at` written once, the outbox woken at that
        time); the daily cap is counted when the message's slot comes."""
        pacing, now = self.pacer.pacing, time.time()
        at = self.pacer.slot(item.message_id, now)
        if at <= now and pacing.daily_cap and item.message_id not in self.counted:
            wait = await self.store.take_daily(self.runner.account_id, pacing.daily_cap, now)
            if wait:  # spent: the next UTC day (the budget's windows start at 00:00 UTC)
                at = self.pacer.postpone(item.message_id, (now // DAY + 1) * DAY)
            else:
                self.counted[item.message_id] = True
                if len(self.counted) > 1000:
                    del self.counted[next(iter(self.counted))]
        if at <= now:
            return False
        scheduled = iso_of(at)
        if item.scheduled_at != scheduled:
            if not await self.store.schedule(item, scheduled, self.runner.lease):
                fresh = await self.store.find_message(item.account_id, item.message_id)
                if fresh is not None and fresh.fence is not None and int(fresh.fence) > self.runner.lease.token:
                    raise LeaseLost(item.account_id)
            log.info("message %s paced until %s", item.message_id, scheduled)
        asyncio.get_running_loop().call_later(at - now, self._wake.set)
        return True

    async def _prepare(self, item: MessageItem, envelope: dict[str, Any]) -> tuple[Outgoing, str | None]:
        """The page's call, and the id of the message it quotes or acts on: besides the envelope, the page needs
        that message's WhatsApp key and the bytes of the media (loaded per attempt: nothing large is kept)."""
        target_key = target_id = None
        ref = target_of(envelope)
        if ref:
            target = await self.store.find_ref(self.runner.account_id, ref)
            if target is None or not target.wa_message_id:
                raise PermanentSendError("message_not_found", f"message {ref} has no WhatsApp id in this account")
            target_key, target_id = str(target.wa_message_id), target.message_id
        media = None
        kind = str(envelope.get("type"))
        if kind in MEDIA_TYPES:
            try:
                loaded = await load_outbound(self.store.settings, self.runner.tenant_id, dict(envelope[kind]),
                                             kind=kind)
            except MediaError as exc:
                if exc.permanent:
                    raise PermanentSendError(exc.code, exc.message) from exc
                raise TransientSendError(f"{exc.code}: {exc.message}") from exc
            media = MediaBytes(loaded.data, loaded.mime_type, loaded.filename)
        return compose(item.message_id, envelope, target_key=target_key, media=media), target_id

    async def _operate(self, item: MessageItem, envelope: dict[str, Any], outgoing: Outgoing, target_id: str | None,
                       before_send: Callable[[], Awaitable[None]], current: list[MessageItem]) -> bool:
        """A reaction, edit, revoke or read receipt: done when WhatsApp Web has done it (`sent`), and the message
        it acted on shows the change."""
        page = self.runner.page
        assert page is not None
        try:
            await page.operate(outgoing.call, outgoing.args, before_send)
        except _Finished:
            return True
        except PermanentSendError as exc:
            await self._fail(current[0], exc.code, str(exc))
            return True
        except TransientSendError as exc:
            return self._later(current[0], exc)
        if target_id and outgoing.call == "edit":
            await self.store.annotate_edit(self.runner.lease, target_id, str(envelope["text"]["body"]))
        elif target_id and outgoing.call == "revoke":
            await self.store.annotate_revoke(self.runner.lease, target_id)
        elif target_id and outgoing.call == "reaction":
            await self.store.annotate_reaction(self.runner.lease, target_id, "me",
                                               str(envelope["reaction"].get("emoji") or ""))
        self.references[item.message_id] = item.client_reference
        await self._advance_to(current[0], MessageStatus.SENT, f"{outgoing.call} done")
        return True

    def _later(self, item: MessageItem, exc: TransientSendError) -> bool:
        """WhatsApp Web did not take it this time: wake again after a backoff by attempts made (False: wait)."""
        delay = self.backoff.delay(int(item.attempts or 1) - 1)
        log.warning("message %s: %s (attempt %s); again in %.1fs", item.message_id, exc, item.attempts, delay)
        asyncio.get_running_loop().call_later(delay, self._wake.set)
        return False

    async def _fail(self, item: MessageItem, code: str, text: str) -> None:
        if await self.store.fail(item, code, text, self.runner.lease):
            log.info("message %s failed: %s", item.message_id, code)
            self.runner.parts.count("messages_failed")
            await self.runner.publish_message_status(item.message_id, MessageStatus.FAILED, item.client_reference,
                                                     {"code": code, "message": text}, item.reply_to)

    async def fail_all(self, code: str, text: str) -> int:
        """Fail every pending message (the account is being deleted)."""
        failed = 0
        for item in await self.store.pending(self.runner.account_id, self.pending_from):
            await self._fail(item, code, text)
            failed += 1
        return failed

    async def on_ack(self, ack: int, ids: list[str]) -> None:
        """WhatsApp's server reported progress (sent, delivered, read, failed) for messages of this account."""
        status = ack_status(ack)
        if status is None:
            return
        for serialized in ids:
            message_id = self.sent_ids.get(serialized)
            if message_id is not None and status is not MessageStatus.FAILED:
                # Ours: a key-only item is enough for the conditional write; no read.
                await self._advance_to(MessageItem(self.runner.account_id, message_id), status, f"ack {ack}")
                continue
            item = await self.store.by_wa_id(serialized)  # sent by an earlier owner of the account
            if item is None or item.direction != "outbound" or item.account_id != self.runner.account_id:
                continue
            if status is MessageStatus.FAILED:
                await self._fail(item, "send_failed", "WhatsApp reported the message as failed")
            else:
                self.references[item.message_id] = item.client_reference
                await self._advance_to(item, status, f"ack {ack}")

    async def _advance_to(self, item: MessageItem, status: MessageStatus, reason: str) -> None:
        """Write a forward status once, whichever of the send's answer and the ack event comes first."""
        known = self.recorded.get(item.message_id)
        if known is not None and STATUS_RANK[status] <= STATUS_RANK[known]:
            return
        self._record(item.message_id, status)  # claimed before the await: the other path skips it
        try:
            moved = await self.store.advance(item, status, self.runner.lease, reason)
        except Exception:
            self.recorded.pop(item.message_id, None)
            raise
        if moved:
            await self.runner.publish_message_status(item.message_id, status,
                                                     self.references.get(item.message_id, item.client_reference),
                                                     reply_to=self.replies.get(item.message_id, item.reply_to))
            if known is None:  # first forward move from `sending`
                self.runner.parts.count("messages_sent")
                created = self.created.get(item.message_id)
                if created is not None:
                    self.runner.parts.metrics["queue_lag_seconds"] = max(0.0, time.time() - created)

    def _remember(self, serialized: str, item: MessageItem) -> None:
        """What an ack needs later without a read: our id for WhatsApp's key, the client reference, the age."""
        self.sent_ids[serialized] = item.message_id
        self.references[item.message_id] = item.client_reference
        self.created[item.message_id] = _created(item)
        if item.reply_to:
            self.replies[item.message_id] = item.reply_to
        for table in (self.sent_ids, self.references, self.created, self.replies):
            if len(table) > 5000:  # acks of older messages are found through the wa-message index
                del table[next(iter(table))]

    def _record(self, message_id: str, status: MessageStatus) -> None:
        self.recorded[message_id] = status
        if len(self.recorded) > 5000:
            del self.recorded[next(iter(self.recorded))]


class _Finished(Exception):
    """Another writer already finished the message (it is terminal): nothing to do."""


def _created(item: MessageItem) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(item.created_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
