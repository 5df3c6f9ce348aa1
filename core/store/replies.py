"""Reply queues: an SQS producer's own queue (`reply_to`) that also receives its messages' status events."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.aws import client
from core.observability import logger


def send_status(reply_to: str, event_json: str) -> bool:
    """Send one `message.status` event (the JSON published on the events queue) to a reply queue.

    True when sent. Failures (queue deleted, no permission, SQS down) are logged, not raised: the
    producer's queue is theirs, and its trouble must never stop a message's own transition.
    """
    params: dict[str, Any] = {"QueueUrl": reply_to, "MessageBody": event_json}
    try:
        event = json.loads(event_json)
    except ValueError:
        event = {}
    if not isinstance(event, dict):
        event = {}
    attributes = {name: str(event[name]) for name in ("type", "account_id") if event.get(name)}
    if attributes:
        params["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    if reply_to.endswith(".fifo"):
        # One group per message keeps its statuses in order; the event id makes a re-publication a duplicate.
        data = event["data"] if isinstance(event.get("data"), dict) else {}
        params["MessageGroupId"] = str(data.get("message_id") or event.get("account_id") or "wagate")[:128]
        params["MessageDeduplicationId"] = str(event.get("id") or hashlib.sha256(event_json.encode()).hexdigest())[:128]
    try:
        client("sqs").send_message(**params)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("status event not sent to the reply queue",
                       extra={"reply_to": reply_to, "error": type(exc).__name__})
        return False
    return True
