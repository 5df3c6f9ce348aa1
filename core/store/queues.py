"""Queues: host inboxes and the control queue (nudges), the events queue and dead letters."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.aws import client
from core.config import Settings
from core.ids import new_id
from core.models.common import utcnow
from core.models.events import Event, EventType
from core.observability import logger


def inbox_name(prefix: str, host_id: str) -> str:
    """The SQS name of a host's inbox (80 characters of letters, digits, - and _ at most)."""
    return (prefix + re.sub(r"[^A-Za-z0-9_-]", "-", host_id))[:80]


class Nudges:
    """"Look at this account now": to the owner's inbox, or to the control queue when no host holds it.

    A nudge carries no state (the account and message items are the truth), so losing one costs the
    next reconcile or sweep pass, never a message or a command.
    """

    def __init__(self, control_queue_url: str) -> None:
        self.control_queue_url = control_queue_url

    def send(self, account_id: str, reason: str, inbox_url: str | None) -> bool:
        """True when the nudge was queued; failures are logged, not raised."""
        url = inbox_url or self.control_queue_url
        if not url:
            return False
        try:
            client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"account_id": account_id,
                                                                             "reason": reason}))
        except (ClientError, BotoCoreError) as exc:
            logger.warning("nudge not sent; the host finds the work on its next pass",
                           extra={"account_id": account_id, "reason": reason, "error": type(exc).__name__})
            return False
        return True


class CloudOutbox:
    """Cloud API accounts' messages on their way to the cloud sender: a FIFO queue, one message group per
    account (its messages leave in order, one at a time). Like a nudge it only names the message row (the
    truth); a lost one costs the sweeper's next pass, never the message."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, account_id: str, message_id: str, *, again: bool = False) -> bool:
        """Queue `message_id` for sending; `again` (a re-nudge) bypasses the queue's 5-minute de-duplication of
        the first one. False (logged) when SQS refused it."""
        if not self.queue_url:
            return False
        dedup = f"{message_id}.{time.time_ns()}" if again else message_id
        params: dict[str, Any] = {"QueueUrl": self.queue_url,
                                  "MessageBody": json.dumps({"account_id": account_id, "message_id": message_id})}
        if self.queue_url.endswith(".fifo"):
            params.update(MessageGroupId=account_id, MessageDeduplicationId=dedup[:128])
        try:
            client("sqs").send_message(**params)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("cloud outbox message not sent; the sweeper queues it again",
                           extra={"account_id": account_id, "message_id": message_id, "error": type(exc).__name__})
            return False
        return True

    def postpone(self, receipt_handle: str, seconds: float) -> None:
        """Make a received message visible again in `seconds` (a retry; its group waits meanwhile)."""
        client("sqs").change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle,
                                                VisibilityTimeout=max(0, min(int(seconds + 0.999), 43_200)))


class HostInbox:
    """A host's own queue: nudges for the accounts it holds. Created at start, deleted at a clean exit."""

    def __init__(self, prefix: str, host_id: str) -> None:
        self.name = inbox_name(prefix, host_id)
        self.url: str | None = None

    def create(self) -> str:
        response = client("sqs").create_queue(QueueName=self.name, Attributes={
            "MessageRetentionPeriod": "3600", "VisibilityTimeout": "30", "SqsManagedSseEnabled": "true"})
        self.url = str(response["QueueUrl"])
        return self.url

    def delete(self) -> None:
        if self.url:
            delete_queue(self.url)

    def receive(self, wait_seconds: int, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Nudges from this inbox (or from `queue_url`, e.g. the control queue), deleted on receipt."""
        url = queue_url or self.url
        if not url:
            return []
        sqs = client("sqs", long_poll=wait_seconds)
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        messages = list(response.get("Messages", []))
        if messages:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        nudges = []
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("account_id"), str):
                nudges.append(body)
        return nudges


def delete_queue(url: str) -> None:
    """Delete a host inbox (ours at exit, or a dead host's); a queue that is already gone is fine."""
    try:
        client("sqs").delete_queue(QueueUrl=url)
    except ClientError as exc:
        if "NonExistentQueue" not in str(exc):
            raise


class EventBus:
    """Publishes events: to the events topic (its subscribers: the webhook dispatcher's queue and the WebSocket
    fan-out's queue, each gets every event) or, without a topic, straight to the events queue."""

    def __init__(self, queue_url: str, topic_arn: str = "") -> None:
        self.queue_url = queue_url
        self.topic_arn = topic_arn

    @classmethod
    def from_settings(cls, settings: Settings) -> EventBus:
        return cls(settings.events_queue_url, settings.events_topic_arn)

    def publish(self, kind: EventType, account_id: str, tenant_id: str, data: dict[str, Any],
                event_id: str | None = None) -> Event:
        """Publish one event; `event_id` (see `core.ids.event_id`) makes a re-publication the same event.
        The tenant rides as a message attribute: routing needs it, receivers do not."""
        event = Event(id=event_id or new_id("evt"), type=kind, created_at=utcnow(), account_id=account_id,
                      data=data)
        attributes = {"type": {"DataType": "String", "StringValue": kind.value},
                      "account_id": {"DataType": "String", "StringValue": account_id},
                      "tenant_id": {"DataType": "String", "StringValue": tenant_id}}
        if self.topic_arn:
            # Subscriptions use raw message delivery: queues receive this body and these attributes as sent.
            client("sns").publish(TopicArn=self.topic_arn, Message=event.model_dump_json(),
                                  MessageAttributes=attributes)
        elif self.queue_url:
            client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=event.model_dump_json(),
                                       MessageAttributes=attributes)
        return event


class DeadLetters:
    """Sends a rejected queue message to a DLQ with the reason attached."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    #: Of the rejected message's own attributes, at most this many are kept (SQS allows ten in all).
    KEPT_ATTRIBUTES = 8

    def send(self, body: str, code: str, details: Any, attributes: Mapping[str, str | None] | None = None) -> None:
        """`attributes`: the rejected message's own string attributes (a producer's id and signature), kept on
        the copy so it stays attributable and verifiable, and can be moved back once what refused it is fixed."""
        text = json.dumps(details, default=str)[:4000]
        kept = {name: {"DataType": "String", "StringValue": value}
                for name, value in (attributes or {}).items()
                if value and name not in ("error_code", "error_details")}
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body or "<empty>",
            "MessageAttributes": {
                **dict(list(kept.items())[:self.KEPT_ATTRIBUTES]),
                "error_code": {"DataType": "String", "StringValue": code},
                "error_details": {"DataType": "String", "StringValue": text or "-"},
            },
        }
        if self.queue_url.endswith(".fifo"):
            params["MessageGroupId"] = "rejected"
            params["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        client("sqs").send_message(**params)
