"""Webhooks against the local stack with the dispatcher running: signed, exact, retried, isolated, SSRF-safe."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from core.models.events import EventType
from infra.local.harness import wait_until
from infra.local.receiver import Answer, Receiver
from tests.conftest import Api, create_account, make_key

SECRET = "s3cr3t-" + "x" * 20
# Small numbers so retries take seconds; the dispatcher reads them from the settings (read once per process).
WEBHOOK_ENV = {"WEBHOOK_RETRY_BASE_SECONDS": "0.2", "WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_TIMEOUT_SECONDS": "2"}
TIMEOUT = float(WEBHOOK_ENV["WEBHOOK_TIMEOUT_SECONDS"])


@pytest.fixture(scope="module", autouse=True)
def webhook_settings(runtime: Any) -> Iterator[None]:
    from infra.local.runtime import reset_process_caches

    saved = {name: os.environ.get(name) for name in WEBHOOK_ENV}
    os.environ.update(WEBHOOK_ENV)
    reset_process_caches()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_process_caches()


# --- a loopback receiver (infra/local/receiver.py) ---------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- helpers -----------------------------------------------------------------------------------------------

def new_tenant(root_api: Api) -> Api:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = root_api.post("/api-keys", json={"name": "admin", "role": "admin", "tenant": tenant})
    assert response.status_code == 201, response.text
    return root_api.with_key(response.json()["api_key"])


def tenant_of(account_id: str) -> str:
    from core.store.tables import AccountItem

    return str(AccountItem.get(account_id).tenant_id)


def publish(runtime: Any, account_id: str, kind: EventType = EventType.MESSAGE_RECEIVED,
            data: dict[str, Any] | None = None, event_id: str | None = None) -> str:
    """Publish like a browser host does; returns the exact message body (the JSON receivers must get)."""
    from core.store.queues import EventBus

    event = EventBus(runtime.env["EVENTS_QUEUE_URL"]).publish(
        kind, account_id, tenant_of(account_id), data or {"text": {"body": "hi"}, "n": uuid.uuid4().hex},
        event_id=event_id)
    return event.model_dump_json()


def deliveries(api: Api, account_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/accounts/{account_id}/webhook-deliveries", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def settled(api: Api, account_id: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    """Wait until the account has `count` deliveries and none is pending."""
    return list(wait_until(lambda: (items := deliveries(api, account_id)) and len(items) >= count
                           and all(d["state"] != "pending" for d in items) and items, timeout, "settled deliveries"))


def account_with_webhook(api: Api, url: str, **webhook: Any) -> str:
    return str(create_account(api, webhook={"url": url, "secret": SECRET, **webhook})["account_id"])


# --- tests -------------------------------------------------------------------------------------------------

def test_delivery_is_the_exact_event_signed_with_the_secret_once(tenant_admin: Api, runtime: Any,
                                                                 receiver: Receiver) -> None:
    # Given an account whose webhook points at the receiver
    account_id = account_with_webhook(tenant_admin, receiver.url("/signed"))

    # When an event is published twice with the same id (a host re-publishing it)
    event_id = f"evt_{uuid.uuid4().hex[:26]}"
    body = publish(runtime, account_id, event_id=event_id)
    publish(runtime, account_id, event_id=event_id)

    # Then it arrives once: the exact event bytes, signed over timestamp + "." + body, with no API key
    [seen] = wait_until(lambda: receiver.requests("/signed"), 20, "a delivery")
    [delivery] = settled(tenant_admin, account_id)
    assert seen.body == body.encode()
    headers = seen.headers
    expected = hmac.new(SECRET.encode(), headers["x-wagate-timestamp"].encode() + b"." + seen.body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-wagate-signature"], f"sha256={expected}")
    assert abs(int(headers["x-wagate-timestamp"]) - time.time()) < 60
    assert headers["content-type"] == "application/json" and headers["user-agent"] == "wagate-webhooks/1"
    assert headers["x-wagate-event-id"] == event_id and headers["x-wagate-delivery-id"] == delivery["delivery_id"]
    assert not {"x-api-key", "authorization"} & set(headers)
    assert delivery["state"] == "delivered" and delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["event_id"] == event_id and delivery["event_type"] == "message.received"
    assert delivery["target"] == "account" and delivery["last_latency_ms"] is not None
    time.sleep(1)
    assert len(receiver.requests("/signed")) == 1 and len(deliveries(tenant_admin, account_id)) == 1

    # When it is redelivered, Then the same bytes arrive again as attempt 2
    accepted = tenant_admin.post(f"/accounts/{account_id}/webhook-deliveries/{delivery['delivery_id']}/redeliver")
    assert accepted.status_code == 202 and accepted.json()["attempt"] == 2
    again = wait_until(lambda: len(r := receiver.requests("/signed")) == 2 and r, 20, "the redelivery")
    assert again[1].body == body.encode()
    assert wait_until(lambda: deliveries(tenant_admin, account_id)[0]["attempts"] == 2, 10, "2 attempts")


def test_a_500_is_retried_until_the_receiver_accepts(tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a receiver that fails once with 500, then accepts
    account_id = account_with_webhook(tenant_admin, receiver.script("/flaky", Answer(500), Answer(200)))

    # When an event is published
    publish(runtime, account_id)

    # Then it is delivered on the second attempt, and both attempts are logged
    [delivery] = settled(tenant_admin, account_id)
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2
    assert [(h["attempt"], h["status_code"]) for h in delivery["history"]] == [(1, 500), (2, 200)]
    assert delivery["history"][0]["error"] == "http_500" and delivery["last_error"] is None
    assert len(receiver.requests("/flaky")) == 2


def test_a_400_is_not_retried(tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    account_id = account_with_webhook(tenant_admin, receiver.script("/reject", Answer(400)))
    publish(runtime, account_id)
    [delivery] = settled(tenant_admin, account_id)
    assert delivery["state"] == "failed" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 400 and delivery["last_error"] == "http_400"
    time.sleep(1.5)  # a retry would have come by now (base 0.2 s)
    assert len(receiver.requests("/reject")) == 1
    assert deliveries(tenant_admin, account_id, state="failed")[0]["delivery_id"] == delivery["delivery_id"]
    assert deliveries(tenant_admin, account_id, state="delivered") == []


def test_retry_after_of_a_429_is_honoured(tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a receiver that answers 429 with Retry-After: 3 (backoff alone would wait at most 1 s here)
    url = receiver.script("/busy", Answer(429, {"Retry-After": "3"}), Answer(200))
    account_id = account_with_webhook(tenant_admin, url)

    # When an event is published
    publish(runtime, account_id)

    # Then the retry waits for the time the receiver asked for, and is then delivered
    pending = wait_until(lambda: (d := deliveries(tenant_admin, account_id)) and d[0]["next_retry_at"] and d[0], 20,
                         "a scheduled retry")
    assert pending["state"] == "pending" and pending["last_status_code"] == 429
    [delivery] = settled(tenant_admin, account_id)
    first, second = receiver.requests("/busy")
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2
    assert second.at - first.at >= 2.9


def test_unreachable_receiver_ends_failed_in_the_dlq_and_can_be_redelivered(tenant_admin: Api, runtime: Any) -> None:
    # Given an account whose webhook port has nothing listening
    port = closed_port()
    account_id = account_with_webhook(tenant_admin, f"http://127.0.0.1:{port}/down")

    # When an event is published
    body = publish(runtime, account_id)

    # Then after the configured attempts (3) the delivery failed with the reason ...
    [delivery] = settled(tenant_admin, account_id, timeout=30)
    assert delivery["state"] == "failed" and delivery["attempts"] == 3
    assert delivery["last_error"].startswith("gave up after 3 attempts: connection_error")
    assert [h["attempt"] for h in delivery["history"]] == [1, 2, 3]

    # ... and the event is in the events DLQ with the delivery id, url and reason
    sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    dlq = runtime.stack.refs["EventsDeadLetterQueue"]

    def dead_letter() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                           VisibilityTimeout=0).get("Messages", []):
            attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
            if attributes.get("delivery_id") == delivery["delivery_id"]:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                return {"body": message["Body"], **attributes}
        return None

    letter = wait_until(dead_letter, 10, "the event in the DLQ")
    assert letter["body"] == body and letter["url"] == f"http://127.0.0.1:{port}/down"
    assert letter["reason"].startswith("gave up after 3 attempts")

    # When the receiver is up and the delivery is redelivered, Then it is delivered (attempt 4)
    server = Receiver(port)
    try:
        response = tenant_admin.post(f"/accounts/{account_id}/webhook-deliveries/{delivery['delivery_id']}/redeliver")
        assert response.status_code == 202
        [redelivered] = wait_until(lambda: (d := deliveries(tenant_admin, account_id)) and d[0]["state"] == "delivered"
                                   and d, 20, "delivered after redelivery")
        assert redelivered["attempts"] == 4 and redelivered["last_status_code"] == 200
        assert server.requests("/down")[0].body == body.encode()
    finally:
        server.stop()


def test_the_event_filter_excludes_other_types(tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    account_id = account_with_webhook(tenant_admin, receiver.url("/status-only"), events=["message.status"])
    publish(runtime, account_id, EventType.MESSAGE_RECEIVED)
    publish(runtime, account_id, EventType.MESSAGE_STATUS, {"message_id": "msg_1", "status": "sent"})
    [delivery] = settled(tenant_admin, account_id)
    assert delivery["event_type"] == "message.status"
    time.sleep(1)
    assert [json.loads(s.body)["type"] for s in receiver.requests("/status-only")] == ["message.status"]


def test_a_tenant_webhook_gets_every_account_of_its_tenant_and_no_other(
        tenant_admin: Api, root_api: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a tenant webhook (all events) of tenant A with two accounts, and tenant B with an account
    created = tenant_admin.post("/webhooks", json={"url": receiver.url("/tenant"), "secret": SECRET,
                                                   "description": "all of A"})
    assert created.status_code == 201, created.text
    webhook_id = created.json()["webhook_id"]
    a1, a2 = (create_account(tenant_admin)["account_id"] for _ in range(2))
    other = new_tenant(root_api)
    b1 = create_account(other)["account_id"]

    # When each account has an event
    for account_id in (a1, a2, b1):
        publish(runtime, account_id)

    # Then the webhook receives A's two events, never B's; the deliveries name the webhook as target
    wait_until(lambda: len(receiver.requests("/tenant")) >= 2, 20, "two deliveries")
    time.sleep(1)
    assert sorted(json.loads(s.body)["account_id"] for s in receiver.requests("/tenant")) == sorted([a1, a2])
    assert settled(tenant_admin, a1)[0]["target"] == webhook_id
    assert deliveries(other, b1) == []
    # and B cannot see, change or delete A's webhook
    assert other.get(f"/webhooks/{webhook_id}").status_code == 404
    assert other.patch(f"/webhooks/{webhook_id}", json={"enabled": False}).status_code == 404
    assert other.delete(f"/webhooks/{webhook_id}").status_code == 404
    assert other.get("/webhooks").json()["items"] == []

    # When A disables it, Then new events are not delivered to it
    assert tenant_admin.patch(f"/webhooks/{webhook_id}", json={"enabled": False}).json()["enabled"] is False
    publish(runtime, a1)
    time.sleep(1.5)
    assert len(receiver.requests("/tenant")) == 2


def test_secrets_are_shown_once_and_stored_encrypted(tenant_admin: Api, runtime: Any) -> None:
    from core.store import secrets
    from core.store.accounts import plain
    from core.store.tables import AccountItem, WebhookItem

    # Given a tenant webhook created without a secret
    created = tenant_admin.post("/webhooks", json={"url": "https://example.com/hook", "events": ["account.status"]})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    webhook = created.json()
    secret = webhook["secret"]
    assert len(secret) >= 32 and webhook["has_secret"] is True

    # Then no later answer shows it
    webhook_id = webhook["webhook_id"]
    answers = [tenant_admin.get(f"/webhooks/{webhook_id}"), tenant_admin.get("/webhooks"),
               tenant_admin.patch(f"/webhooks/{webhook_id}", json={"description": "renamed"}),
               tenant_admin.patch(f"/webhooks/{webhook_id}", json={"secret": "rotated-" + "y" * 20})]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and "rotated-" not in answer.text and "secret_ciphertext" not in answer.text
    assert answers[0].json()["has_secret"] is True and answers[2].json()["description"] == "renamed"

    # And the table holds only KMS ciphertext
    item = WebhookItem.get(tenant_of(create_account(tenant_admin)["account_id"]), webhook_id)
    assert "rotated-" not in json.dumps(item.attribute_values, default=str)
    assert secrets.decrypt(item.secret_ciphertext) == "rotated-" + "y" * 20

    # Account webhooks too: encrypted at rest, a secret is required, kept when a PATCH omits it
    account_id = account_with_webhook(tenant_admin, "https://example.com/acc")
    stored = plain(AccountItem.get(account_id).webhook)
    assert "secret" not in stored and SECRET not in json.dumps(stored)
    assert secrets.decrypt(stored["secret_ciphertext"]) == SECRET
    missing = tenant_admin.post("/accounts", json={"account_name": "x", "webhook": {"url": "https://example.com/h"}})
    assert missing.status_code == 422 and missing.json()["details"][0]["loc"] == ["body", "webhook", "secret"]
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"webhook": {"url": "https://example.com/new"}})
    assert patched.status_code == 200 and patched.json()["webhook"]["has_secret"] is True
    assert secrets.decrypt(plain(AccountItem.get(account_id).webhook)["secret_ciphertext"]) == SECRET
    assert SECRET not in tenant_admin.get(f"/accounts/{account_id}").text


def test_roles_and_scopes_of_tenant_webhooks(tenant_admin: Api) -> None:
    created = tenant_admin.post("/webhooks", json={"url": "https://example.com/r", "secret": SECRET}).json()
    viewer = make_key(tenant_admin, "viewer")
    assert viewer.get("/webhooks").json()["items"][0]["webhook_id"] == created["webhook_id"]
    assert viewer.post("/webhooks", json={"url": "https://example.com/v"}).json()["code"] == "forbidden_role"
    assert viewer.delete(f"/webhooks/{created['webhook_id']}").status_code == 403
    operator = make_key(tenant_admin, "operator")
    assert operator.patch(f"/webhooks/{created['webhook_id']}", json={"events": ["account.qr"]}).status_code == 200
    account_id = create_account(tenant_admin)["account_id"]
    scoped = make_key(tenant_admin, "admin", [account_id])
    assert scoped.get("/webhooks").json()["code"] == "forbidden_scope"
    assert tenant_admin.patch(f"/webhooks/{created['webhook_id']}", json={}).json()["code"] == "empty_update"
    assert operator.delete(f"/webhooks/{created['webhook_id']}").status_code == 204
    assert tenant_admin.get(f"/webhooks/{created['webhook_id']}").json()["code"] == "webhook_not_found"
    missing = f"/accounts/{account_id}/webhook-deliveries/dlv_{'0' * 26}/redeliver"
    assert tenant_admin.post(missing).json()["code"] == "delivery_not_found"


def test_a_slow_receiver_does_not_delay_another_tenants_delivery(
        tenant_admin: Api, root_api: Api, runtime: Any, receiver: Receiver) -> None:
    # Given tenant A's webhook that sleeps past the timeout once, and tenant B's that answers at once
    slow = account_with_webhook(tenant_admin, receiver.script("/slow", Answer(200, sleep=TIMEOUT + 2), Answer(200)))
    other = new_tenant(root_api)
    fast = account_with_webhook(other, receiver.url("/fast"))

    # When both events arrive in the same batch (A's first)
    from core.store.queues import EventBus

    bus = EventBus("")  # builds the events without sending; sent below as one SQS batch
    entries = []
    for index, account_id in enumerate((slow, fast)):
        event = bus.publish(EventType.MESSAGE_RECEIVED, account_id, tenant_of(account_id), {"n": index})
        entries.append({"Id": str(index), "MessageBody": event.model_dump_json(), "MessageAttributes": {
            "type": {"DataType": "String", "StringValue": event.type.value},
            "account_id": {"DataType": "String", "StringValue": account_id},
            "tenant_id": {"DataType": "String", "StringValue": tenant_of(account_id)}}})
    sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    sqs.send_message_batch(QueueUrl=runtime.env["EVENTS_QUEUE_URL"], Entries=entries)

    # Then B is delivered while A's attempt is still waiting for its receiver (before A's timeout elapses)
    wait_until(lambda: receiver.requests("/slow") and receiver.requests("/fast"), 20, "both receivers called")
    a_start, b_at = receiver.requests("/slow")[0].at, receiver.requests("/fast")[0].at
    assert b_at - a_start < TIMEOUT, (b_at - a_start, TIMEOUT)
    assert settled(other, fast)[0]["state"] == "delivered"
    # and A's attempt timed out, was retried and then delivered
    [slow_delivery] = settled(tenant_admin, slow, timeout=30)
    assert slow_delivery["history"][0]["error"].startswith("timeout")
    assert slow_delivery["state"] == "delivered" and slow_delivery["attempts"] == 2


def test_ssrf_targets_are_refused_at_setup_and_at_delivery(tenant_admin: Api, runtime: Any,
                                                           receiver: Receiver) -> None:
    from core.ids import new_id
    from core.models.common import utcnow
    from core.store import secrets
    from core.store.tables import WebhookItem

    # Setting a webhook to the cloud metadata service is refused
    refused = tenant_admin.post("/webhooks", json={"url": "http://169.254.169.254/latest/meta-data", "secret": SECRET})
    assert refused.status_code == 400 and refused.json()["code"] == "webhook_url_not_allowed"

    # A stored webhook that points there (set before a policy change) is refused at delivery, not retried
    account_id = create_account(tenant_admin)["account_id"]
    tenant_id = tenant_of(account_id)
    stored = WebhookItem(tenant_id, new_id("whk"), url="http://169.254.169.254/latest/meta-data",
                         events=["message.received"], secret_ciphertext=secrets.encrypt(SECRET), enabled=True,
                         created_at=utcnow(), updated_at=utcnow())
    stored.save()
    publish(runtime, account_id)
    [delivery] = settled(tenant_admin, account_id)
    assert delivery["state"] == "failed" and delivery["attempts"] == 1
    assert delivery["last_error"].startswith("url_not_allowed") and "metadata" in delivery["last_error"]
    assert tenant_admin.delete(f"/webhooks/{stored.webhook_id}").status_code == 204

    # A receiver that redirects to a non-allow-listed address: refused (redirects are not followed)
    redirecting = account_with_webhook(tenant_admin, receiver.script(
        "/redirect", Answer(307, {"Location": "http://10.0.0.1/internal"})))
    publish(runtime, redirecting)
    [redirected] = settled(tenant_admin, redirecting)
    assert redirected["state"] == "failed" and redirected["attempts"] == 1
    assert redirected["last_error"].startswith("redirect_not_followed")
    assert len(receiver.requests("/redirect")) == 1


def test_webhook_tables_in_the_template_match_the_models() -> None:
    from core.config import get_settings
    from core.store import tables
    from infra.local.template import load_template

    tables.bind(get_settings())
    template = load_template()
    for logical_id, model in (("WebhooksTable", tables.WebhookItem),
                              ("WebhookDeliveriesTable", tables.WebhookDeliveryItem)):
        props = template["Resources"][logical_id]["Properties"]
        declared = sorted((k["AttributeName"], k["KeyType"]) for k in props["KeySchema"])
        schema = model._get_schema()
        assert declared == sorted((k["AttributeName"], k["KeyType"]) for k in schema["key_schema"])
        declared_indexes = sorted((g["IndexName"], sorted((k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]))
                                  for g in props.get("GlobalSecondaryIndexes", []))
        assert declared_indexes == sorted((g["index_name"], sorted((k["AttributeName"], k["KeyType"])
                                                                   for k in g["key_schema"]))
                                          for g in schema["global_secondary_indexes"])
