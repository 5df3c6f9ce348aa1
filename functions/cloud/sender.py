"""Lambda entry point of the cloud sender: drains the cloud outbox FIFO queue (one message group per account)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import DomainError
from core.observability import logger, metrics, tracer
from core.store.queues import DeadLetters
from functions.service import cloud_send
from functions.service.context import services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Send each named message; a retry postpones its queue message (its account's later ones wait behind it:
    a FIFO group is blocked while one of its messages is in flight)."""
    svc = services()
    failures: list[dict[str, str]] = []
    held: set[str] = set()
    for record in event.get("Records", []):
        group = str((record.get("attributes") or {}).get("MessageGroupId") or "")
        if group and group in held:  # an earlier message of this account waits: keep the order
            # Back on the queue at once (the group stays locked while the earlier one is in flight, so order
            # holds): left in flight, it would hold the account's group for the queue's whole visibility timeout.
            svc.cloud_outbox.postpone(record["receiptHandle"], 0)
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        try:
            body = json.loads(record.get("body") or "")
            account_id, message_id = str(body["account_id"]), str(body["message_id"])
        except (ValueError, KeyError, TypeError):
            DeadLetters(svc.settings.cloud_outbox_dlq_url).send(record.get("body") or "", "malformed",
                                                                 "not {account_id, message_id}")
            continue
        try:
            result = cloud_send.send(svc, account_id, message_id)
        except DomainError as exc:  # DynamoDB or KMS unavailable: the same message again soon
            logger.warning("cloud send deferred", extra={"account_id": account_id, "message_id": message_id,
                                                         "error": exc.code})
            result = cloud_send.Result(False, 10.0, exc.code)
        if not result.done:
            svc.cloud_outbox.postpone(record["receiptHandle"], result.delay)
            failures.append({"itemIdentifier": record["messageId"]})
            if group:
                held.add(group)
    return {"batchItemFailures": failures}
