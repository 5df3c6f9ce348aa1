"""SQS producers: signed messages are queued like API sends; unsigned, forged, revoked or cross-tenant ones land on
the DLQ with the reason and write nothing on anybody's account; malformed ones are refused with the reason."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from infra.local.harness import sign_ingress
from tests.conftest import Api, create_account, make_key
from tests.integration.test_messages_api import drain

Producer = tuple[str, str]  # (producer_id, secret)
TEXT = {"to": "15550001111", "type": "text", "text": {"body": "from the CRM"}}


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _sqs(runtime: Any) -> Any:
    return boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")


def send(runtime: Any, body: str, producer: Producer | None = None,
         attributes: dict[str, Any] | None = None) -> str:
    """Put a message on the ingress queue, signed by `producer` (or with exactly `attributes`)."""
    if attributes is None:
        attributes = sign_ingress(body, *producer) if producer else {}
    return str(_sqs(runtime).send_message(QueueUrl=runtime.stack.refs["IngressQueue"], MessageBody=body,
                                          MessageAttributes=attributes)["MessageId"])


def rejected(runtime: Any, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """`count` messages from the ingress DLQ (waits for them)."""
    found: list[dict[str, Any]] = []
    wait_for(lambda: found.extend(drain(runtime, "IngressDeadLetterQueue")) or len(found) >= count, timeout)
    return found


def reason(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["error_code"]["StringValue"])


def messages(api: Api, account_id: str) -> list[dict[str, Any]]:
    return list(api.get(f"/accounts/{account_id}/messages").json()["items"])


@pytest.fixture
def producer(tenant_admin: Api) -> Producer:
    return tenant_admin.register_producer("crm")


@pytest.fixture
def other_tenant(root_api: Api) -> Api:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = root_api.post("/api-keys", json={"name": "admin", "role": "admin", "tenant": tenant})
    assert response.status_code == 201, response.text
    return root_api.with_key(response.json()["api_key"])


@pytest.fixture
def reply_queue(runtime: Any) -> Any:
    sqs = _sqs(runtime)
    url = sqs.create_queue(QueueName=f"crm-replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


# --- registering producers -------------------------------------------------------------------------------


def test_a_producer_secret_is_shown_once_and_stored_only_encrypted(tenant_admin: Api, runtime: Any) -> None:
    # Given a producer registered by the tenant's admin
    created = tenant_admin.post("/producers", json={"name": "crm"})
    assert created.status_code == 201, created.text
    body = created.json()
    producer_id, secret = body["producer_id"], body["secret"]
    assert producer_id.startswith("prd_") and len(secret) >= 43 and body["reply_queue_urls"] == []

    # When it is read back and listed
    one = tenant_admin.get(f"/producers/{producer_id}")
    listing = tenant_admin.get("/producers")

    # Then no answer carries the secret again
    assert one.status_code == 200 and one.json()["name"] == "crm" and "secret" not in one.json()
    assert [p["producer_id"] for p in listing.json()["items"]] == [producer_id]
    assert secret not in one.text and secret not in listing.text

    # And the stored item holds only ciphertext
    table = boto3.resource("dynamodb", endpoint_url=runtime.endpoint_for("dynamodb"), region_name="us-east-1").Table(
        runtime.stack.refs["ProducersTable"])
    item = table.get_item(Key={"producer_id": producer_id})["Item"]
    assert secret not in json.dumps(item, default=str) and item["secret_ciphertext"]


def test_producers_are_tenant_scoped_and_admin_managed(tenant_admin: Api, other_tenant: Api) -> None:
    # Given a producer of one tenant
    producer_id, _ = tenant_admin.register_producer("crm")
    viewer, operator = make_key(tenant_admin, "viewer"), make_key(tenant_admin, "operator")

    # Then another tenant neither sees nor revokes it, a viewer reads it, only admins write
    assert other_tenant.get(f"/producers/{producer_id}").json()["code"] == "producer_not_found"
    assert other_tenant.get("/producers").json()["items"] == []
    assert other_tenant.delete(f"/producers/{producer_id}").status_code == 404
    assert viewer.get(f"/producers/{producer_id}").status_code == 200
    assert viewer.post("/producers", json={"name": "x"}).json()["code"] == "forbidden_role"
    assert operator.delete(f"/producers/{producer_id}").json()["code"] == "forbidden_role"
    assert tenant_admin.delete(f"/producers/{producer_id}").status_code == 204
    assert tenant_admin.get(f"/producers/{producer_id}").status_code == 404


def test_reply_queues_must_be_sqs_queues_outside_the_gateway(tenant_admin: Api, runtime: Any, reply_queue: str) -> None:
    # When a producer names the gateway's own events queue, a foreign host, or a non-queue URL
    for url in (runtime.stack.refs["EventsQueue"], "https://attacker.example/123456789012/q", "https://x/y"):
        response = tenant_admin.post("/producers", json={"name": "crm", "reply_queue_urls": [url]})
        # Then it is refused
        assert response.status_code in {400, 422}, (url, response.text)
    assert tenant_admin.post("/producers", json={"name": "crm", "reply_queue_urls": [reply_queue]}).status_code == 201


# --- signed messages -------------------------------------------------------------------------------------


def test_valid_signed_message_is_queued_for_sending(tenant_admin: Api, runtime: Any, producer: Producer) -> None:
    # Given an account and a signed producer message naming it
    drain(runtime)
    account_id = create_account(tenant_admin)["account_id"]
    sqs_id = send(runtime, json.dumps({"account_id": account_id, **TEXT, "client_reference": "crm-1"}), producer)

    # When the ingress function has run
    items = wait_for(lambda: messages(tenant_admin, account_id))

    # Then the message is queued (in the outbox hosts drain), readable through the API, and a host is nudged
    assert len(items) == 1 and items[0]["status"] == "queued"
    assert items[0]["client_reference"] == "crm-1" and items[0]["content"]["text"]["body"] == "from the CRM"
    from core.store.messages import MessageRepository

    assert [m.correlation_id for m in MessageRepository().pending(account_id, "msg_")] == [sqs_id]
    nudges = wait_for(lambda: drain(runtime))
    assert json.loads(nudges[0]["Body"]) == {"account_id": account_id, "reason": "message"}


def test_unsigned_forged_unknown_and_revoked_producers_are_refused(tenant_admin: Api, runtime: Any,
                                                                   producer: Producer) -> None:
    # Given an account, a revoked producer of its tenant, and a valid body naming the account
    drain(runtime, "IngressDeadLetterQueue")
    account_id = create_account(tenant_admin)["account_id"]
    revoked = tenant_admin.register_producer("old")
    assert tenant_admin.delete(f"/producers/{revoked[0]}").status_code == 204
    body = json.dumps({"account_id": account_id, **TEXT})
    good = sign_ingress(body, *producer)

    # When it arrives unsigned, with a signature by the wrong secret, with a signature of another body, signed by
    # a producer id that does not exist, and signed by the revoked producer
    send(runtime, body, attributes={})
    send(runtime, body, attributes=sign_ingress(body, producer[0], "not-the-secret"))
    send(runtime, body, attributes={**sign_ingress(body + " ", *producer), "wagate-producer": good["wagate-producer"]})
    send(runtime, body, attributes=sign_ingress(body, "prd_" + "0" * 26, producer[1]))
    send(runtime, body, revoked)

    # Then all five are on the DLQ as producer_unauthenticated, and nothing was written on the account
    assert sorted(reason(m) for m in rejected(runtime, 5)) == ["producer_unauthenticated"] * 5
    assert messages(tenant_admin, account_id) == []


def test_a_producer_cannot_send_from_another_tenants_account(tenant_admin: Api, other_tenant: Api,
                                                             runtime: Any) -> None:
    # Given tenant A's account and tenant B's producer
    drain(runtime, "IngressDeadLetterQueue")
    account_id = create_account(tenant_admin)["account_id"]
    b_producer = other_tenant.register_producer("b-crm")

    # When B's producer sends a valid message and a malformed one naming A's account, and one naming no account
    send(runtime, json.dumps({"account_id": account_id, **TEXT}), b_producer)
    send(runtime, json.dumps({"account_id": account_id, **TEXT, "to": "nope"}), b_producer)
    send(runtime, json.dumps({"account_id": "acc_" + "0" * 26, **TEXT}), b_producer)

    # Then another tenant's account reads exactly like one that does not exist, the malformed one is a
    # validation error, and A's account shows nothing at all
    found = rejected(runtime, 3)
    assert sorted(reason(m) for m in found) == ["account_not_in_tenant", "account_not_in_tenant", "validation_error"]
    assert messages(tenant_admin, account_id) == []


def test_malformed_signed_messages_go_to_the_dlq_with_the_reason(tenant_admin: Api, runtime: Any,
                                                                 producer: Producer) -> None:
    # Given a known account of the producer's tenant
    drain(runtime, "IngressDeadLetterQueue")
    account_id = create_account(tenant_admin)["account_id"]

    # When the producer sends a bad body for it, garbage, a wrong type, inline media over the limit (it fits
    # SQS's 256 KB but not the 100 KB inline limit) and a reply to a message the account does not have
    send(runtime, json.dumps({"account_id": account_id, "to": "nope", "type": "text", "text": {"body": "x"}}), producer)
    send(runtime, "this is not json", producer)
    send(runtime, json.dumps({"account_id": account_id, "to": "15550001111", "type": "template",
                              "template": {}}), producer)
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 150_000).decode()
    send(runtime, json.dumps({"account_id": account_id, "to": "15550001111", "type": "image",
                              "image": {"data": big, "mime_type": "image/png"}}), producer)
    send(runtime, json.dumps({"account_id": account_id, "to": "15550001111", "type": "text",
                              "text": {"body": "re"}, "context": {"message_id": "msg_unknown"}}), producer)

    # Then each is on the DLQ with a machine-readable reason
    found = rejected(runtime, 5)
    assert sorted(reason(m) for m in found) == ["message_not_found"] + ["validation_error"] * 4
    bad_to = next(m for m in found if '"nope"' in m["Body"])
    assert "to" in bad_to["MessageAttributes"]["error_details"]["StringValue"]
    too_big = next(m for m in found if big[:100] in m["Body"])
    assert "POST /media" in too_big["MessageAttributes"]["error_details"]["StringValue"]
    # each copy keeps the producer's own attributes: whose it was, and a signature anyone with the secret can check
    for message in found:
        assert {k: v["StringValue"] for k, v in message["MessageAttributes"].items() if k.startswith("wagate-")} \
            == {k: v["StringValue"] for k, v in sign_ingress(message["Body"], *producer).items()}

    # And the account shows each as failed with the reason (small records: the big body is summarised)
    failed = wait_for(lambda: len(m := messages(tenant_admin, account_id)) >= 4 and m)
    assert {m["status"] for m in failed} == {"failed"}
    assert sorted(m["error"]["code"] for m in failed) == ["message_not_found"] + ["validation_error"] * 3
    assert drain(runtime) == []


def test_redelivered_ingress_message_is_sent_once(tenant_admin: Api, runtime: Any, producer: Producer) -> None:
    # Given one accepted ingress message
    from functions.service.context import services
    from functions.service.ingress import accept_ingress

    drain(runtime)
    account_id = create_account(tenant_admin)["account_id"]
    body = json.dumps({"account_id": account_id, **TEXT})
    attributes = {k: v["StringValue"] for k, v in sign_ingress(body, *producer).items()}

    # When SQS delivers the same message twice (same SQS message id)
    first = accept_ingress(services(), body, "sqs-message-1", attributes)
    second = accept_ingress(services(), body, "sqs-message-1", attributes)

    # Then it is one message, queued once
    assert first is not None and second is not None
    assert second.message.message_id == first.message.message_id and second.replayed
    assert len(drain(runtime)) == 1


def test_ten_messages_of_a_producer_cost_one_kms_decrypt(tenant_admin: Api, runtime: Any, producer: Producer) -> None:
    # Given a producer whose secret nobody in this process has decrypted yet
    from core.aws import client
    from core.store import secrets
    from functions.service.context import services
    from functions.service.ingress import accept_ingress
    from functions.service.producers import forget_cached_producers

    account_id = create_account(tenant_admin)["account_id"]
    forget_cached_producers()
    secrets.forget()
    calls: list[str] = []

    def count(**_: Any) -> None:
        calls.append("decrypt")

    kms = client("kms")  # the process's KMS client, counted through botocore's own event hooks
    kms.meta.events.register("before-call.kms.Decrypt", count)
    try:
        # When ten messages of the producer are accepted
        for n in range(10):
            body = json.dumps({"account_id": account_id, **TEXT, "client_reference": f"n{n}"})
            attributes = {k: v["StringValue"] for k, v in sign_ingress(body, *producer).items()}
            assert accept_ingress(services(), body, f"batch-{n}", attributes) is not None
    finally:
        kms.meta.events.unregister("before-call.kms.Decrypt", count)

    # Then the secret was decrypted once
    assert calls == ["decrypt"]
    drain(runtime)


def test_a_mixed_batch_queues_the_good_and_refuses_each_bad_one_with_its_reason(
        tenant_admin: Api, other_tenant: Api, runtime: Any, producer: Producer, reply_queue: str) -> None:
    # Given an account of the producer's tenant and one of another tenant
    drain(runtime, "IngressDeadLetterQueue")
    account_id = create_account(tenant_admin)["account_id"]
    foreign_id = create_account(other_tenant)["account_id"]

    def entry(n: int, **fields: Any) -> tuple[str, dict[str, Any]]:
        body = json.dumps({"account_id": account_id, **TEXT, "client_reference": f"mix-{n}", **fields})
        return body, sign_ingress(body, *producer)

    good = [entry(n) for n in range(5)]
    unsigned_body = entry(5)[0]
    foreign = entry(6, account_id=foreign_id)
    invalid = entry(7, to="nope")
    not_allowed = entry(8, reply_to=reply_queue)
    forged_body, forged_attributes = entry(9)
    forged_attributes["wagate-signature"]["StringValue"] = "sha256=" + "0" * 64
    batch = [*good, (unsigned_body, {}), foreign, invalid, not_allowed, (forged_body, forged_attributes)]

    # When they arrive as one batch of ten
    _sqs(runtime).send_message_batch(QueueUrl=runtime.stack.refs["IngressQueue"], Entries=[
        {"Id": str(i), "MessageBody": body, "MessageAttributes": attributes}
        for i, (body, attributes) in enumerate(batch)])

    # Then the five good ones are queued, and each bad one is on the DLQ with its reason
    found = {json.loads(m["Body"])["client_reference"]: reason(m) for m in rejected(runtime, 5)}
    assert found == {"mix-5": "producer_unauthenticated", "mix-6": "account_not_in_tenant",
                     "mix-7": "validation_error", "mix-8": "reply_to_not_allowed",
                     "mix-9": "producer_unauthenticated"}
    items = wait_for(lambda: len(m := messages(tenant_admin, account_id)) >= 7 and m)
    queued = sorted(m["client_reference"] for m in items if m["status"] == "queued")
    failed = sorted((m["client_reference"] or "", m["error"]["code"]) for m in items if m["status"] == "failed")
    assert queued == [f"mix-{n}" for n in range(5)]
    # The invalid and the not-allowed reply_to were written as failed on the producer's own account only
    assert [code for _, code in failed] == sorted(["validation_error", "reply_to_not_allowed"])
    assert messages(other_tenant, foreign_id) == []
    drain(runtime)


# --- reply_to --------------------------------------------------------------------------------------------


def test_status_events_of_a_message_go_to_its_registered_reply_queue(tenant_admin: Api, runtime: Any,
                                                                     reply_queue: str) -> None:
    # Given a producer with a reply queue, and an account no browser host drives
    from functions.service.context import services
    from functions.service.sweeper import sweep

    producer = tenant_admin.register_producer("crm", [reply_queue])
    account_id = create_account(tenant_admin)["account_id"]

    # When it sends a message with reply_to, and the sweeper later finds no host could send it
    send(runtime, json.dumps({"account_id": account_id, **TEXT, "client_reference": "r-1", "reply_to": reply_queue}),
         producer)
    [message] = wait_for(lambda: messages(tenant_admin, account_id))
    assert message["status"] == "queued" and "reply_to" not in message["content"]
    sweep(services(), now=time.time() + services().settings.not_connected_timeout + 5)

    # Then its failed status event arrives on the reply queue
    sqs = _sqs(runtime)
    got = wait_for(lambda: sqs.receive_message(QueueUrl=reply_queue, MessageAttributeNames=["All"],
                                               WaitTimeSeconds=1).get("Messages"))
    event = json.loads(got[0]["Body"])
    assert event["type"] == "message.status" and event["account_id"] == account_id
    assert event["data"]["message_id"] == message["message_id"] and event["data"]["status"] == "failed"
    assert event["data"]["client_reference"] == "r-1"
    assert got[0]["MessageAttributes"]["type"]["StringValue"] == "message.status"
    drain(runtime)


def test_a_signed_message_for_a_cloud_account_goes_to_meta(tenant_admin: Api, runtime: Any, producer: Producer,
                                                          fake_graph: Any) -> None:
    from tests.integration.test_cloud_provider import cloud_account, final

    # Given a Cloud API account and a signed producer message naming it
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    send(runtime, json.dumps({"account_id": account_id, **TEXT, "client_reference": "crm-2"}), producer)

    # When the ingress function and the cloud sender have run, Then Meta got it as a Cloud API send
    [item] = wait_for(lambda: messages(tenant_admin, account_id))
    assert final(tenant_admin, account_id, item["message_id"], "sent")["client_reference"] == "crm-2"
    [body] = fake_graph.sent(phone_number_id)
    assert body["text"]["body"] == "from the CRM" and body["biz_opaque_callback_data"] == "crm-2"
