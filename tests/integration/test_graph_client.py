"""The Graph API client (core/cloud.py) against the fake Graph API (infra/local/fake_graph.py) over loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from core.cloud import GraphClient, GraphError, MediaTooLarge, outcome, to_graph_body
from infra.local import meta_payloads
from infra.local.fake_graph import FakeGraph
from infra.local.receiver import Receiver

PHONE_ID = "106540352242922"
TOKEN = "EAAG-test-token"
VERSION = "v27.0"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph() as graph:
        graph.add_number(PHONE_ID, TOKEN, "+1 555-010-0100", verified_name="Acme")
        yield graph


@pytest.fixture
def client(fake: FakeGraph) -> GraphClient:
    return GraphClient(fake.base_url, VERSION, TOKEN, timeout=5)


def test_phone_number_check(fake: FakeGraph, client: GraphClient) -> None:
    assert client.phone_number(PHONE_ID) == {"verified_name": "Acme", "display_phone_number": "+1 555-010-0100",
                                             "id": PHONE_ID, "quality_rating": "GREEN"}
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"

    with pytest.raises(GraphError) as expired:
        GraphClient(fake.base_url, VERSION, "wrong").phone_number(PHONE_ID)
    assert (expired.value.code, expired.value.http_status) == (190, 401)
    assert outcome(expired.value).action == "fail_account"

    with pytest.raises(GraphError) as unknown:
        client.phone_number("999")
    assert (unknown.value.code, unknown.value.subcode, unknown.value.http_status) == (100, 33, 400)


SENDS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"to": "15551234567", "type": "text", "text": {"body": "hello", "preview_url": False}},
     {"type": "text", "text": {"preview_url": False, "body": "hello"}}),
    ({"to": "15551234567", "type": "image", "image": {"link": "https://cdn.example.com/cat.jpg", "caption": "cat"}},
     {"type": "image", "image": {"link": "https://cdn.example.com/cat.jpg", "caption": "cat"}}),
    ({"to": "15551234567", "type": "template",
      "template": {"name": "hello_world", "language": {"code": "en_US"}}},
     {"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
    ({"to": "15551234567", "type": "location",
      "location": {"latitude": 37.48, "longitude": -122.15, "name": "HQ", "address": "1 Hacker Way"}},
     {"type": "location",
      "location": {"latitude": 37.48, "longitude": -122.15, "name": "HQ", "address": "1 Hacker Way"}}),
    ({"to": "15551234567", "type": "contacts", "contacts": [{
        "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
        "phones": [{"phone": "+1 555 0101", "type": "WORK", "wa_id": "15550101"}],
        "emails": [], "urls": [], "addresses": []}]},
     {"type": "contacts", "contacts": [{
         "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
         "phones": [{"phone": "+1 555 0101", "type": "WORK", "wa_id": "15550101"}]}]}),
    ({"to": "15551234567", "type": "reaction", "reaction": {"message_id": "msg_1", "emoji": "\U0001F44D"}},
     {"type": "reaction", "reaction": {"message_id": "wamid.ORIGINAL", "emoji": "\U0001F44D"}}),
    ({"to": "15551234567", "type": "text", "text": {"body": "re"}, "context": {"message_id": "msg_1"}},
     {"type": "text", "context": {"message_id": "wamid.ORIGINAL"}, "text": {"preview_url": False, "body": "re"}}),
]


@pytest.mark.parametrize("envelope, expected", SENDS, ids=[e["type"] + ("+reply" if "context" in e else "")
                                                           for e, _ in SENDS])
def test_send_records_metas_documented_body(fake: FakeGraph, client: GraphClient, envelope: dict[str, Any],
                                            expected: dict[str, Any]) -> None:
    wamid = client.send(PHONE_ID, to_graph_body(envelope, message_ids={"msg_1": "wamid.ORIGINAL"}))

    assert wamid.startswith("wamid.")
    request = fake.requests[-1]
    assert request.path == f"/{VERSION}/{PHONE_ID}/messages"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
                            **expected}


def test_image_by_uploaded_id(fake: FakeGraph, client: GraphClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    graph_id = client.upload_media(PHONE_ID, png, "image/png", "cat.png")
    envelope = {"to": "15551234567", "type": "image",
                "image": {"id": "med_1", "mime_type": "image/png", "size_bytes": len(png), "caption": "cat"}}

    client.send(PHONE_ID, to_graph_body(envelope, {"med_1": graph_id}))

    assert fake.media[graph_id].data == png
    assert fake.media[graph_id].filename == "cat.png"
    assert fake.sent()[-1]["image"] == {"id": graph_id, "caption": "cat"}


def test_media_round_trip(fake: FakeGraph, client: GraphClient) -> None:
    data = bytes(range(256)) * 40
    media_id = client.upload_media(PHONE_ID, data, "application/pdf", "doc.pdf")

    info = client.media_info(media_id)
    assert {k: info[k] for k in ("id", "mime_type", "file_size", "sha256", "messaging_product")} == {
        "id": media_id, "mime_type": "application/pdf", "file_size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "messaging_product": "whatsapp"}
    assert client.download(info["url"], max_bytes=len(data)) == data
    with pytest.raises(MediaTooLarge):
        client.download(info["url"], max_bytes=100)
    with pytest.raises(GraphError) as other:
        GraphClient(fake.base_url, VERSION, "wrong").media_info(media_id)
    assert other.value.code == 190


@pytest.mark.parametrize("code, status, action, ours", [
    (130429, None, "retry", "rate_limited"),
    (131056, None, "retry", "rate_limited"),
    (80007, None, "retry", "rate_limited"),
    (131026, None, "fail_message", "invalid_recipient"),
    (131047, None, "fail_message", "outside_window"),
    (190, None, "fail_account", "token_expired"),
    (100, None, "fail_message", "invalid_request"),
    (131000, 500, "retry", "graph_unavailable"),
    (1, 503, "retry", "graph_unavailable"),
])
def test_each_meta_error_has_its_outcome(fake: FakeGraph, client: GraphClient, code: int, status: int | None,
                                         action: str, ours: str) -> None:
    fake.fail_next(code, http_status=status)
    body = to_graph_body({"to": "15551234567", "type": "text", "text": {"body": "x"}})

    with pytest.raises(GraphError) as raised:
        client.send(PHONE_ID, body)
    assert raised.value.code == code
    assert (outcome(raised.value).action, outcome(raised.value).code) == (action, ours)
    assert client.send(PHONE_ID, body).startswith("wamid.")  # the failure was for one send only
    assert len(fake.sent()) == 1


def test_failures_through_the_http_control_and_retry_after(fake: FakeGraph, client: GraphClient) -> None:
    fake.fail_next(130429, retry_after=7)
    body = to_graph_body({"to": "15551234567", "type": "text", "text": {"body": "x"}})
    with pytest.raises(GraphError) as limited:
        client.send(PHONE_ID, body)
    assert outcome(limited.value).retry_after == 7.0

    control = urllib.request.Request(  # the control endpoint a non-Python harness would use
        f"{fake.base_url}/__fake/fail", data=json.dumps({"code": 131026, "times": 2}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(control, timeout=5) as answer:
        assert answer.status == 200
    for _ in range(2):
        with pytest.raises(GraphError) as undeliverable:
            client.send(PHONE_ID, body)
        assert undeliverable.value.code == 131026
    assert client.send(PHONE_ID, body).startswith("wamid.")


def test_unreachable_graph_is_a_retry() -> None:
    with FakeGraph() as gone:
        url = gone.base_url
    with pytest.raises(GraphError) as raised:
        GraphClient(url, VERSION, TOKEN, timeout=2).phone_number(PHONE_ID)
    assert raised.value.transport and outcome(raised.value).action == "retry"


def test_signed_webhooks_verify_with_the_app_secret(fake: FakeGraph) -> None:
    receiver = Receiver()
    try:
        inbound = meta_payloads.inbound_text(PHONE_ID, "15550100100", "15551234567", "hi there", name="Ann")
        failed = meta_payloads.message_status(PHONE_ID, "15550100100", "wamid.X", "15551234567", "failed",
                                              error_code=131047, biz_opaque_callback_data="order-7")

        assert fake.deliver_webhook(receiver.url("/webhooks/meta"), "app-secret", inbound) == 200
        assert fake.deliver_webhook(receiver.url("/webhooks/meta"), "app-secret", failed) == 200

        for seen, payload in zip(receiver.requests("/webhooks/meta"), (inbound, failed), strict=True):
            expected = "sha256=" + hmac.new(b"app-secret", seen.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(seen.headers["x-hub-signature-256"], expected)
            assert json.loads(seen.body) == payload
    finally:
        receiver.stop()
    value = inbound["entry"][0]["changes"][0]["value"]
    assert inbound["object"] == "whatsapp_business_account"
    assert value["metadata"] == {"display_phone_number": "15550100100", "phone_number_id": PHONE_ID}
    assert value["contacts"] == [{"profile": {"name": "Ann"}, "wa_id": "15551234567"}]
    assert value["messages"][0]["text"] == {"body": "hi there"}
    status = failed["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["errors"][0]["code"] == 131047 and status["biz_opaque_callback_data"] == "order-7"


def test_payload_builders_for_statuses_and_images() -> None:
    image = meta_payloads.inbound_image(PHONE_ID, "15550100100", "15551234567", "4490709327384033",
                                        mime_type="image/jpeg", sha256="abc", caption="look")
    message = image["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["type"] == "image"
    assert message["image"] == {"caption": "look", "mime_type": "image/jpeg", "sha256": "abc",
                                "id": "4490709327384033"}
    for kind in ("sent", "delivered", "read"):
        payload = meta_payloads.message_status(PHONE_ID, "15550100100", "wamid.X", "15551234567", kind)
        status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
        assert status["status"] == kind and status["recipient_id"] == "15551234567"
        assert ("pricing" in status) == (kind != "read")
