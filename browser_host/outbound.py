"""Drains the outbound FIFO queue: each account's messages in order, never sent twice, always terminal."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
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
                 metrics: dict[str, float]) -> None:
        self.svc = services
        self.cfg = services.config
        self.queue_url = services.config.settings.outbound_queue_url
        self.runner_for = runner_for
        self.metrics = metrics
        self.backoff = Backoff(base=2.0, cap=60.0)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = await self.svc.run(self._receive)
            except Exception:
                log.exception("receiving from the outbound queue failed")
                await asyncio.sleep(2)
                continue
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for message in messages:
                groups[message.get("Attributes", {}).get("MessageGroupId", "")].append(message)
            await asyncio.gather(*(self._process_group(batch) for batch in groups.values()))

    def _receive(self) -> list[dict[str, Any]]:
        response = client("sqs").receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.cfg.outbound_wait_seconds,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    async def _process_group(self, batch: list[dict[str, Any]]) -> None:
        for index, message in enumerate(batch):
            try:
                done = await self.process(message)
            except Exception:
                log.exception("processing an outbound message failed")
                done = False
            if not done:
                # Keep the account's order: the rest of its batch comes back after this one.
                for later in batch[index + 1:]:
                    await self.svc.run(self._delay, later, 1)
                return

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
        account = await self.svc.run(store.get_account, body.account_id)
        if account is None:
            return await self._fail(message, item, "account_not_found", "the account was deleted")
        runner = self.runner_for(body.account_id)
        if runner is None or not runner.is_working():
            waited = time.time() - enqueued
            if waited >= self.cfg.not_connected_timeout:
                return await self._fail(message, item, "account_not_connected",
                                        f"the account was not connected within {self.cfg.not_connected_timeout:.0f}s")
            await self.svc.run(self._delay, message, self._recheck_after(waited))
            return False
        if receives > self.cfg.outbound_max_attempts:
            return await self._fail(message, item, "send_failed", f"gave up after {receives - 1} attempts")
        wa_serialized = _expected_wa_id(body)
        await self.svc.run(store.transition, item, MessageStatus.SENDING,
                           {MessageStatus.QUEUED, MessageStatus.SENDING}, None,
                           [MessageItem.wa_message_id.set(wa_serialized), MessageItem.attempts.add(1)])
        try:
            wa_id, ack = await runner.send(body.message_id, body.envelope)
        except PermanentSendError as exc:
            return await self._fail(message, item, exc.code, str(exc))
        except TransientSendError as exc:
            log.warning("message %s: %s (attempt %d)", body.message_id, exc, receives)
            await self.svc.run(self._delay, message, int(self.backoff.delay(receives - 1)) + 1)
            return False
        fresh = await self.svc.run(store.get_message, body.account_id, body.message_id)
        if fresh is not None and wa_id != wa_serialized:
            await self.svc.run(store.transition, fresh, MessageStatus.SENDING, {MessageStatus.SENDING}, None,
                               [MessageItem.wa_message_id.set(wa_id)])
        status = ack_status(ack)
        if fresh is not None and status in {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}:
            if await self.svc.run(store.transition, fresh, status, {MessageStatus.SENDING}, f"ack {ack}"):
                await runner.publish_message_status(body.message_id, status, fresh.client_reference)
        self.metrics["messages_sent"] = self.metrics.get("messages_sent", 0) + 1
        self.metrics["queue_lag_seconds"] = max(0.0, time.time() - enqueued)
        await self.svc.run(self._delete, message)
        return True

    def _recheck_after(self, waited: float) -> int:
        remaining = self.cfg.not_connected_timeout - waited
        return int(max(1, min(remaining + 1, 10, self.cfg.not_connected_timeout / 4)))

    async def _fail(self, message: dict[str, Any], item: MessageItem, code: str, text: str) -> bool:
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
