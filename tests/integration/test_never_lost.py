"""Finding 2 and 6: an accepted message is never stranded, and no stored record can break a read."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import boto3

from core.models.envelope import OUTBOUND_ADAPTER
from core.store.messages import MessageRepository
from core.store.queues import Nudges
from functions.service.messages import enqueue
from functions.service.sweeper import sweep
from tests.conftest import Api, create_account
from tests.integration.test_ingress import send, wait_for

TEXT = {"to": "15550001111", "type": "text", "text": {"body": "x"}}


def _principal(api: Api) -> Any:
    from core.models.common import Principal, Role

    tenant = str(api.get("/api-keys").json()["items"][0]["tenant_id"])
    return Principal(key_id="k", tenant_id=tenant, role=Role.ADMIN)


def test_a_queue_outage_after_acceptance_leaves_the_message_in_the_outbox(tenant_admin: Api, runtime: Any) -> None:
    # Given services whose nudge queue does not exist (SQS down between the write and the nudge)
    from functions.service.context import services

    account = create_account(tenant_admin)
    svc = services()
    broken = dataclasses.replace(svc, nudges=Nudges(svc.settings.control_queue_url + "-missing"))
    message = OUTBOUND_ADAPTER.validate_python(TEXT)

    # When a send is accepted, then retried with the same Idempotency-Key
    first = enqueue(broken, _principal(tenant_admin), account["account_id"], message, idempotency_key="k1",
                    correlation_id=None)
    again = enqueue(svc, _principal(tenant_admin), account["account_id"], message, idempotency_key="k1",
                    correlation_id=None)

    # Then it is one message, and it is in the outbox a host drains (not stranded behind a lost queue message)
    assert first.message.status == "queued" and again.replayed
    assert again.message.message_id == first.message.message_id
    pending = MessageRepository().pending(account["account_id"], "msg_")
    assert [m.message_id for m in pending] == [first.message.message_id]


def test_with_no_host_at_all_a_queued_message_still_ends_failed(tenant_admin: Api, runtime: Any) -> None:
    # Given a message accepted for an account that no host holds
    from functions.service.context import services

    account_id = create_account(tenant_admin)["account_id"]
    accepted = tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT).json()

    # When the sweeper runs after the not-connected timeout
    svc = services()
    result = sweep(svc, now=time.time() + svc.settings.not_connected_timeout + 5)

    # Then the message is failed with the reason, visible through the API
    assert result.failed >= 1
    stored = tenant_admin.get(f"/accounts/{account_id}/messages/{accepted['message_id']}").json()
    assert stored["status"] == "failed" and stored["error"]["code"] == "account_not_connected"
    assert MessageRepository().pending(account_id, "msg_") == []


def test_a_huge_malformed_ingress_message_cannot_break_reading_the_account(tenant_admin: Api, runtime: Any) -> None:
    # Given a 200 KB non-ASCII body that fails validation, for a known account
    account_id = create_account(tenant_admin)["account_id"]
    body = json.dumps({"account_id": account_id, "to": "nope", "type": "text",
                       "text": {"body": "ü€😀" * 50_000}}, ensure_ascii=False)
    assert len(body.encode()) > 200_000

    # When the ingress function rejects it (signed by a producer of the account's tenant)
    send(runtime, body, tenant_admin.register_producer())
    failed = wait_for(lambda: tenant_admin.get(f"/accounts/{account_id}/messages").json().get("items"), 30)

    # Then the account's messages still read (200), with a bounded, valid record of what was refused
    assert failed[0]["status"] == "failed" and failed[0]["error"]["code"] == "validation_error"
    assert failed[0]["content"]["truncated"] is True and failed[0]["content"]["size_bytes"] == len(body.encode())
    one = tenant_admin.get(f"/accounts/{account_id}/messages/{failed[0]['message_id']}")
    assert one.status_code == 200


def test_a_corrupt_stored_record_reads_as_such_not_as_a_500(tenant_admin: Api, runtime: Any) -> None:
    # Given a message row written by something else with broken JSON and an unknown status
    account_id = create_account(tenant_admin)["account_id"]
    table = boto3.resource("dynamodb", endpoint_url=runtime.endpoint_url, region_name="us-east-1").Table(
        runtime.stack.refs["MessagesTable"])
    table.put_item(Item={"account_id": account_id, "message_id": "msg_0000000000000000000000000z",
                         "tenant_id": "x", "direction": "sideways", "status": "bogus", "type": "text",
                         "content": '{"cut": "off', "status_history": [{"nope": 1}],
                         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})

    # When the account's messages are listed and the record is read
    listing = tenant_admin.get(f"/accounts/{account_id}/messages")
    one = tenant_admin.get(f"/accounts/{account_id}/messages/msg_0000000000000000000000000z")

    # Then both answer 200 and say the content is unreadable
    assert listing.status_code == 200 and one.status_code == 200, (listing.text, one.text)
    assert one.json()["content"] == {"unreadable": True}
