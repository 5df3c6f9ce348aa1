"""Drains the outbound FIFO queue: each account's messages in order, never sent twice, always terminal."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import ValidationError

from browser_host.account import AccountRunner, HostServices, PermanentSendError, TransientSendError
from browser_host.state import Backoff, ack_status
from browser_host.store import wa_message_id
from functions.dal.tables import MessageItem
from functions.models.messages import MessageStatus, OutboundQueueMessage
from functions.shared.aws import client

log = logging.getLogger("browser_host.outbound")
DONE = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED}


class OutboundConsumer:
    """Long-polls the queue; FIFO groups (= accounts) keep order, different accounts run concurrently."""

    def __init__(self, services: HostServices, runner_for: Callable[[str], AccountRunner | None],
                 metrics: dict[str, float], max_in_flight: int = 200) -> None:
        self.svc = services
        self.cfg = services.config
        self.queue_url = services.config.settings.outbound_queue_url
        self.runner_for = runner_for
        self.metrics = metrics
        self.backoff = Backoff(base=2.0, cap=60.0)
        self._stop = asyncio.Event()
        self._capacity = asyncio.Semaphore(max_in_flight)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """One receiver; each account's messages go to its own worker, so accounts never wait on each other."""
        while not self._stop.is_set():
            await self._capacity.acquire()
            self._capacity.release()
            try:
                messages = await self.svc.run(self._receive)
            except Exception:
                log.exception("receiving from the outbound queue failed")
                await asyncio.sleep(2)
                continue
            # A FIFO receive lists each group's messages in order (do not sort by SequenceNumber: moto's are random).
            for message in messages:
                group = message.get("Attributes", {}).get("MessageGroupId", "")
                await self._capacity.acquire()
                queue = self._queues.get(group)
                if queue is None:
                    queue = self._queues[group] = asyncio.Queue()
                    self._workers[group] = asyncio.create_task(self._worker(group, queue), name=f"outbound-{group}")
                queue.put_nowait(message)
        for worker in self._workers.values():
            worker.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def _worker(self, group: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Process one account's messages in order; a message that must wait holds back the ones after it."""
        held_back = False
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), timeout=60)
            except TimeoutError:
                if queue.empty():  # idle: let the worker go (a new one starts with the next message)
                    self._queues.pop(group, None)
                    self._workers.pop(group, None)
                    return
                continue
            try:
                if held_back:
                    await self.svc.run(self._delay, message, 1)
                else:
                    held_back = not await self.process(message)
            except Exception:
                log.exception("processing an outbound message failed")
                held_back = True
            finally:
                self._capacity.release()
            if queue.empty():
                held_back = False  # what was held back comes again from SQS, in order

    def _receive(self) -> list[dict[str, Any]]:
        response = client("sqs").receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.cfg.outbound_wait_seconds,
            VisibilityTimeout=self.cfg.outbound_visibility_timeout,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    async def process(self, message: dict[str, Any]) -> bool:
        """Handle one queue message; True when it is finished (deleted), False when it will come back."""
        attributes = message.get("Attributes", {})
        receives = int(attributes.get("ApproximateReceiveCount", "1"))
        enqueued = int(attributes.get("SentTimestamp", "0")) / 1000 or time.time()
        try:
            body = OutboundQueueMessage.model_validate_json(message["Body"])
        except ValidationError:
            log.error("dropping an outbound message that is not ours")  # producers go through the API/ingress
            await self.svc.run(self._delete, message)
            return True
        store = self.svc.store
        item = await self.svc.run(store.get_message, body.account_id, body.message_id)
        if item is None or MessageStatus(item.status) in DONE:
            await self.svc.run(self._delete, message)  # deleted account or a redelivery of finished work
            return True
        runner = self.runner_for(body.account_id)
        if runner is None or not runner.is_working():
            # Only off the hot path: a working runner means the account exists.
            if await self.svc.run(store.get_account, body.account_id) is None:
                return await self._fail(message, item, "account_not_found", "the account was deleted")
            waited = time.time() - enqueued
            if waited >= self.cfg.not_connected_timeout:
                return await self._fail(message, item, "account_not_connected",
                                        f"the account was not connected within {self.cfg.not_connected_timeout:.0f}s")
            log.info("message %s waits: account %s is not connected", body.message_id, body.account_id)
            await self.svc.run(self._delay, message, self._recheck_after(waited))
            return False
        if receives > self.cfg.outbound_max_attempts:
            return await self._fail(message, item, "send_failed", f"gave up after {receives - 1} attempts")
        wa_serialized = _expected_wa_id(body)
        await self.svc.run(store.transition, item, MessageStatus.SENDING,
                           {MessageStatus.QUEUED, MessageStatus.SENDING}, None,
                           [MessageItem.wa_message_id.set(wa_serialized), MessageItem.attempts.add(1)])
        # Waiting for WhatsApp's ack can outlast the visibility timeout: extend it in short steps, so a host
        # that dies here gives the message (and the rest of its account's queue) back within one step.
        keepalive = asyncio.create_task(self._keep_invisible(message))
        try:
            wa_id, ack = await runner.send(body.message_id, body.envelope)
        except PermanentSendError as exc:
            return await self._fail(message, item, exc.code, str(exc))
        except TransientSendError as exc:
            log.warning("message %s: %s (attempt %d)", body.message_id, exc, receives)
            keepalive.cancel()
            await self.svc.run(self._delay, message, int(self.backoff.delay(receives - 1)) + 1)
            return False
        finally:
            keepalive.cancel()
        if wa_id != wa_serialized:  # WhatsApp chose another id: acks will name that one
            await self.svc.run(partial(item.update, actions=[MessageItem.wa_message_id.set(wa_id)]))
        # `item` holds what the `sending` write returned; the status writes below are conditional, so an ack
        # event that got there first simply wins.
        status = ack_status(ack)
        if status is MessageStatus.FAILED:
            return await self._fail(message, item, "send_failed", "WhatsApp reported the message as failed")
        if status in {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ} \
                and await self.svc.run(store.transition, item, status, {MessageStatus.SENDING}, f"ack {ack}"):
            await runner.publish_message_status(body.message_id, status, item.client_reference)
        log.info("message %s sent (ack %d, attempt %d, correlation %s)", body.message_id, ack, receives,
                 body.correlation_id)
        self.metrics["messages_sent"] = self.metrics.get("messages_sent", 0) + 1
        self.metrics["queue_lag_seconds"] = max(0.0, time.time() - enqueued)
        await self.svc.run(self._delete, message)
        return True

    async def _keep_invisible(self, message: dict[str, Any]) -> None:
        step = self.cfg.outbound_visibility_timeout
        while True:
            await asyncio.sleep(step / 2)
            await self.svc.run(self._delay, message, step)

    def _recheck_after(self, waited: float) -> int:
        remaining = self.cfg.not_connected_timeout - waited
        return int(max(1, min(remaining + 1, 10, self.cfg.not_connected_timeout / 4)))

    async def _fail(self, message: dict[str, Any], item: MessageItem, code: str, text: str) -> bool:
        log.info("message %s failed: %s", item.message_id, code)
        if await self.svc.run(self.svc.store.fail, item, code, text):
            self.metrics["messages_failed"] = self.metrics.get("messages_failed", 0) + 1
            runner = self.runner_for(item.account_id)
            if runner is not None:
                await runner.publish_message_status(item.message_id, MessageStatus.FAILED, item.client_reference)
        await self.svc.run(self._delete, message)
        return True

    def _delete(self, message: dict[str, Any]) -> None:
        client("sqs").delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _delay(self, message: dict[str, Any], seconds: int) -> None:
        client("sqs").change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                VisibilityTimeout=max(0, min(seconds, 43200)))


def _expected_wa_id(body: OutboundQueueMessage) -> str:
    to = str(body.envelope.get("to", ""))
    chat = to if to.endswith("@g.us") else f"{to}@c.us"
    return f"true_{chat}_{wa_message_id(body.message_id)}"
