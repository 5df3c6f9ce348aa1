"""SQS producers: valid messages are queued like API sends, malformed ones land on the DLQ with the reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

from tests.conftest import Api, create_account
from tests.integration.test_messages_api import drain


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def send(runtime: Any, body: str) -> str:
    sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    return str(sqs.send_message(QueueUrl=runtime.stack.refs["IngressQueue"], MessageBody=body)["MessageId"])


def test_valid_ingress_message_is_queued_for_sending(tenant_admin: Api, runtime: Any) -> None:
    # Given an account and a producer message naming it
    drain(runtime)
    account_id = create_account(tenant_admin)["account_id"]
    sqs_id = send(runtime, json.dumps({"account_id": account_id, "to": "15550001111", "type": "text",
                                       "text": {"body": "from the CRM"}, "client_reference": "crm-1"}))

    # When the ingress function has run
    items = wait_for(lambda: tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"])

    # Then the message is queued (in the outbox hosts drain), readable through the API, and a host is nudged
    assert len(items) == 1 and items[0]["status"] == "queued"
    assert items[0]["client_reference"] == "crm-1" and items[0]["content"]["text"]["body"] == "from the CRM"
    from core.store.messages import MessageRepository

    assert [m.correlation_id for m in MessageRepository().pending(account_id, "msg_")] == [sqs_id]
    nudges = wait_for(lambda: drain(runtime))
    assert json.loads(nudges[0]["Body"]) == {"account_id": account_id, "reason": "message"}


def test_malformed_ingress_messages_go_to_the_dlq_with_the_reason(tenant_admin: Api, runtime: Any) -> None:
    # Given a known account
    drain(runtime, "IngressDeadLetterQueue")
    account_id = create_account(tenant_admin)["account_id"]

    # When producers send a bad body for it, garbage, and a message for an unknown account
    send(runtime, json.dumps({"account_id": account_id, "to": "nope", "type": "text", "text": {"body": "x"}}))
    send(runtime, "this is not json")
    send(runtime, json.dumps({"account_id": "acc_missing", "to": "15550001111", "type": "text",
                              "text": {"body": "x"}}))

    # Then all three are on the DLQ with a machine-readable reason
    rejected: list[dict[str, Any]] = []
    wait_for(lambda: rejected.extend(drain(runtime, "IngressDeadLetterQueue")) or len(rejected) >= 3)
    reasons = sorted(m["MessageAttributes"]["error_code"]["StringValue"] for m in rejected)
    assert reasons == ["account_not_found", "validation_error", "validation_error"]
    bad_to = next(m for m in rejected if account_id in m["Body"])
    assert "to" in bad_to["MessageAttributes"]["error_details"]["StringValue"]

    # And the known account shows a failed message with the reason; nothing was sent
    failed = wait_for(lambda: tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"])
    assert failed[0]["status"] == "failed" and failed[0]["error"]["code"] == "validation_error"
    assert drain(runtime) == []


def test_redelivered_ingress_message_is_sent_once(tenant_admin: Api, runtime: Any) -> None:
    # Given one accepted ingress message
    from functions.service.context import services
    from functions.service.ingress import accept_ingress

    drain(runtime)
    account_id = create_account(tenant_admin)["account_id"]
    body = json.dumps({"account_id": account_id, "to": "15550001111", "type": "text", "text": {"body": "once"}})

    # When SQS delivers the same message twice (same SQS message id)
    first = accept_ingress(services(), body, "sqs-message-1")
    second = accept_ingress(services(), body, "sqs-message-1")

    # Then it is one message, queued once
    assert first is not None and second is not None
    assert second.message.message_id == first.message.message_id and second.replayed
    assert len(drain(runtime)) == 1
