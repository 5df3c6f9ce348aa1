"""SQS event-source mappings in-process: long-poll, invoke with a real SQS event, honour partial failures."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import boto3

from infra.local.lambda_runtime import LocalFunction
from infra.local.log import log
from infra.local.template import SqsMapping


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """receive_message's attribute shape → the Lambda event's lower-camel shape."""
    return {
        "stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
        "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String"),
    }


class SqsPoller:
    """One mapping: a thread that polls the queue and invokes the function with batches."""

    def __init__(self, mapping: SqsMapping, function: LocalFunction, queue_url: str, queue_arn: str, *,
                 region: str, endpoint_url: str | None, wait_seconds: int = 1) -> None:
        self.mapping = mapping
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.wait_seconds = wait_seconds
        self._sqs = boto3.session.Session().client("sqs", region_name=region, endpoint_url=endpoint_url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{mapping.function}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.wait_seconds + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a poller must outlive any single failure
                log(f"sqs mapping {self.mapping.function}: {exc!r}")
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive up to one batch and process it; returns how many records were received."""
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(self.mapping.batch_size, 10),
            WaitTimeSeconds=self.wait_seconds, AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {k: _attribute(v) for k, v in m.get("MessageAttributes", {}).items()},
            "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": self.region,
        } for m in messages]
        try:
            result = self.function.invoke({"Records": records})
        except Exception as exc:  # noqa: BLE001 - like Lambda: the whole batch returns to the queue
            log(f"sqs mapping {self.mapping.function}: batch failed: {exc!r}")
            return len(records)
        failed: set[str] = set()
        if self.mapping.report_failures and isinstance(result, dict):
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)])
        return len(records)
