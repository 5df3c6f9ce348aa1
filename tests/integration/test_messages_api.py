"""Sending: validation of every content type, idempotent acceptance into the outbox, reading status back."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest

from tests.conftest import Api, create_account


def drain(runtime: Any, queue: str = "HostControlQueue") -> list[dict[str, Any]]:
    """Every message now on a queue (deleted as read), with its attributes."""
    sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    url = runtime.stack.refs[queue]
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return found
        found += batch
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])


TEXT = {"to": "+1 555 000 1111", "type": "text", "text": {"body": "hello from wagate"}}


def test_accepted_message_is_in_the_outbox_and_a_host_is_nudged(tenant_admin: Api, runtime: Any) -> None:
    # Given an account
    drain(runtime)
    account_id = create_account(tenant_admin, phone_number="15559990000")["account_id"]

    # When a text message is sent
    response = tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT,
                                 headers={"X-Correlation-Id": "corr-123"})

    # Then it is accepted, stored queued (the outbox a host drains) and a free host is nudged
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["account_id"] == account_id
    assert response.headers["Location"] == f"/accounts/{account_id}/messages/{accepted['message_id']}"
    stored = tenant_admin.get(f"/accounts/{account_id}/messages/{accepted['message_id']}").json()
    assert stored["status"] == "queued" and stored["direction"] == "outbound"
    assert stored["to"] == "15550001111" and stored["from"] == "15559990000"
    assert stored["content"]["text"] == {"body": "hello from wagate", "preview_url": False}
    assert [h["status"] for h in stored["status_history"]] == ["queued"]
    from core.store.messages import MessageRepository

    pending = MessageRepository().pending(account_id, "msg_")
    assert [(m.message_id, m.correlation_id) for m in pending] == [(accepted["message_id"], "corr-123")]
    nudges = [json.loads(m["Body"]) for m in drain(runtime)]
    assert nudges == [{"account_id": account_id, "reason": "message"}]


def test_idempotency_key_same_body_same_message_different_body_409(tenant_admin: Api, runtime: Any) -> None:
    drain(runtime)
    account_id = create_account(tenant_admin)["account_id"]
    headers = {"Idempotency-Key": "order-42"}

    first = tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT, headers=headers)
    replay = tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT, headers=headers)
    changed = tenant_admin.post(f"/accounts/{account_id}/messages",
                                json={**TEXT, "text": {"body": "other"}}, headers=headers)

    assert first.status_code == replay.status_code == 202
    assert replay.json()["message_id"] == first.json()["message_id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert changed.status_code == 409 and changed.json()["code"] == "idempotency_key_reused"
    assert len(drain(runtime)) == 1
    assert len(tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"]) == 1
    # The same key on another account is another message
    other = create_account(tenant_admin)["account_id"]
    assert tenant_admin.post(f"/accounts/{other}/messages", json=TEXT, headers=headers).json()["message_id"] \
        != first.json()["message_id"]
    drain(runtime)


VALID_BODIES: list[dict[str, Any]] = [
    {"type": "text", "text": {"body": "hi", "preview_url": True}},
    {"type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "cat"}},
    {"type": "image", "image": {"data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode(),
                                "mime_type": "image/png"}},
    {"type": "video", "video": {"link": "https://example.com/a.mp4", "caption": "clip"}},
    {"type": "audio", "audio": {"link": "https://example.com/a.ogg", "voice": True}},
    {"type": "document", "document": {"link": "https://example.com/a.pdf", "filename": "a.pdf", "caption": "x"}},
    {"type": "sticker", "sticker": {"link": "https://example.com/s.webp"}},
    {"type": "location", "location": {"latitude": 52.52, "longitude": 13.405, "name": "Berlin"}},
    {"type": "contacts", "contacts": [{"name": {"formatted_name": "Ada L"}, "phones": [{"phone": "+4912345"}]}]},
    {"type": "reaction", "reaction": {"message_id": "$EARLIER", "emoji": "👍"}},
    {"type": "text", "text": {"body": "reply"}, "context": {"message_id": "$EARLIER"},
     "biz_opaque_callback_data": "ticket-7"},
    {"type": "poll", "poll": {"question": "When?", "options": ["today", "tomorrow"], "max_selections": 2}},
]


@pytest.mark.parametrize("body", VALID_BODIES, ids=lambda b: b["type"])
def test_every_content_type_is_accepted(tenant_admin: Api, runtime: Any, body: dict[str, Any]) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    if "$EARLIER" in json.dumps(body):  # replies and reactions point at a message of the account
        earlier = tenant_admin.post(f"/accounts/{account_id}/messages",
                                    json={"to": "15550001111", "type": "text", "text": {"body": "first"}})
        body = json.loads(json.dumps(body).replace("$EARLIER", earlier.json()["message_id"]))
    response = tenant_admin.post(f"/accounts/{account_id}/messages", json={"to": "15550001111", **body})
    assert response.status_code == 202, response.text
    stored = tenant_admin.get(f"/accounts/{account_id}/messages/{response.json()['message_id']}").json()
    assert stored["type"] == body["type"]
    if "biz_opaque_callback_data" in body:
        assert stored["client_reference"] == "ticket-7"
    drain(runtime)


INVALID_BODIES: list[tuple[str, Any, str]] = [
    ("missing to", {"type": "text", "text": {"body": "x"}}, "missing"),
    ("bad to", {"to": "hello", "type": "text", "text": {"body": "x"}}, "value_error"),
    ("unknown type", {"to": "15550001111", "type": "sticker_pack", "sticker_pack": {}}, "union_tag_invalid"),
    ("poll of one", {"to": "15550001111", "type": "poll", "poll": {"question": "q", "options": ["a"]}},
     "too_short"),
    ("read without id", {"status": "read"}, "missing"),
    ("no type", {"to": "15550001111", "text": {"body": "x"}}, "union_tag_not_found"),
    ("body key mismatch", {"to": "15550001111", "type": "image", "text": {"body": "x"}}, "missing"),
    ("empty text", {"to": "15550001111", "type": "text", "text": {"body": ""}}, "string_too_short"),
    ("long text", {"to": "15550001111", "type": "text", "text": {"body": "x" * 4097}}, "string_too_long"),
    ("ftp link", {"to": "15550001111", "type": "image", "image": {"link": "ftp://x.com/a.jpg"}}, "value_error"),
    ("two sources", {"to": "15550001111", "type": "image", "image": {"link": "https://x.com/a", "id": "m1"}},
     "value_error"),
    ("bad base64", {"to": "15550001111", "type": "image", "image": {"data": "@@@", "mime_type": "image/png"}},
     "value_error"),
    ("data without mime", {"to": "15550001111", "type": "image", "image": {"data": "aGk="}}, "value_error"),
    ("caption on audio", {"to": "15550001111", "type": "audio", "audio": {"id": "m1", "caption": "x"}},
     "extra_forbidden"),
    ("latitude", {"to": "15550001111", "type": "location", "location": {"latitude": 91, "longitude": 0}},
     "less_than_equal"),
    ("no contacts", {"to": "15550001111", "type": "contacts", "contacts": []}, "too_short"),
    ("reaction without id", {"to": "15550001111", "type": "reaction", "reaction": {"emoji": "x"}}, "missing"),
    ("unknown field", {"to": "15550001111", "type": "text", "text": {"body": "x"}, "extra": 1}, "extra_forbidden"),
    ("wrong product", {"messaging_product": "sms", "to": "15550001111", "type": "text", "text": {"body": "x"}},
     "literal_error"),
    ("array body", [1, 2], "model_attributes_type"),
]


@pytest.mark.parametrize(("name", "body", "error_type"), INVALID_BODIES, ids=[c[0] for c in INVALID_BODIES])
def test_invalid_messages_get_422_with_details(tenant_admin: Api, name: str, body: Any, error_type: str) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    response = tenant_admin.post(f"/accounts/{account_id}/messages", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["code"] == "validation_error" and payload["request_id"]
    assert error_type in {d["type"] for d in payload["details"]}, payload["details"]
    assert tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"] == []


def test_list_messages_paginates_and_filters_direction(tenant_admin: Api, runtime: Any) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    sent = [tenant_admin.post(f"/accounts/{account_id}/messages",
                              json={**TEXT, "text": {"body": f"m{i}"}}).json()["message_id"] for i in range(5)]
    time.sleep(0.01)
    page1 = tenant_admin.get(f"/accounts/{account_id}/messages", params={"limit": 2}).json()
    page2 = tenant_admin.get(f"/accounts/{account_id}/messages",
                             params={"limit": 10, "cursor": page1["next_cursor"]}).json()
    assert [m["message_id"] for m in page1["items"] + page2["items"]] == list(reversed(sent))
    assert tenant_admin.get(f"/accounts/{account_id}/messages",
                            params={"direction": "inbound"}).json()["items"] == []
    assert tenant_admin.get(f"/accounts/{account_id}/messages/msg_unknown").json()["code"] == "message_not_found"
    drain(runtime)


def test_a_plain_http_media_link_is_refused_unless_its_host_is_allow_listed(tenant_admin: Api) -> None:
    # The test stack allow-lists loopback only (as `make run` does): http elsewhere is refused before queueing
    account_id = create_account(tenant_admin)["account_id"]
    response = tenant_admin.post(f"/accounts/{account_id}/messages", json={
        "to": "15550001111", "type": "image", "image": {"link": "http://x.com/a.jpg"}})
    assert response.status_code == 400 and response.json()["code"] == "media_url_not_allowed", response.text
    assert tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"] == []
