"""Signed SQS producer messages of every type reach the contact's phone through a browser host, and their status
events reach the producer's reply queue."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, link_by_qr, wait_until
from tests.e2e.test_message_types import pdf, png, sha, status_of, upload_media, webp
from tests.integration.test_ingress import send


def test_every_type_from_a_signed_producer_reaches_the_phone(tenant_admin: Api, runtime: Any, phone: Phone,
                                                             host: HostProcess) -> None:
    # Given a linked account, and a producer of its tenant with a reply queue
    business, contact = "1555" + str(uuid.uuid4().int)[:7], "1555" + str(uuid.uuid4().int)[:7]
    account_id = create_account(tenant_admin, "ingress-e2e")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    reply_queue = sqs.create_queue(QueueName=f"crm-replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    producer = tenant_admin.register_producer("crm", [reply_queue])
    image, sticker, document = png(20_000), webp(), pdf(300_000)
    document_id = upload_media(tenant_admin, document, "application/pdf")

    def put(ref: str, **body: Any) -> None:
        send(runtime, json.dumps({"account_id": account_id, "to": contact, "client_reference": ref,
                                  "reply_to": reply_queue, **body}), producer)

    # When the producer puts one message of each type on the ingress queue
    put("text", type="text", text={"body": "Your order shipped"})
    put("image", type="image", image={"data": base64.b64encode(image).decode(), "mime_type": "image/png",
                                      "caption": "label"})
    put("document", type="document", document={"id": document_id, "filename": "invoice.pdf"})
    put("sticker", type="sticker", sticker={"data": base64.b64encode(sticker).decode(), "mime_type": "image/webp"})
    put("location", type="location", location={"latitude": 1.5, "longitude": 2.5, "name": "Depot"})
    put("contacts", type="contacts", contacts=[{"name": {"formatted_name": "Desk"},
                                                "phones": [{"wa_id": "15557770000"}]}])
    put("poll", type="poll", poll={"question": "Rate us", "options": ["good", "bad"]})

    # Then each is sent, and the phone shows exactly what was sent
    def by_reference() -> dict[str, dict[str, Any]]:
        items = tenant_admin.get(f"/accounts/{account_id}/messages", params={"limit": 50}).json()["items"]
        return {m["client_reference"]: m for m in items}
    sent = wait_until(lambda: len(m := by_reference()) == 7 and all(x["status"] == "sent" for x in m.values())
                      and m, 60, "seven messages sent")
    shown = {m["key"]: m for m in phone.received(contact)}
    on_phone = {ref: shown[message["wa_message_id"]] for ref, message in sent.items()}
    assert on_phone["text"]["body"] == "Your order shipped"
    assert (on_phone["image"]["sha256"], on_phone["image"]["caption"]) == (sha(image), "label")
    assert (on_phone["document"]["sha256"], on_phone["document"]["filename"]) == (sha(document), "invoice.pdf")
    assert on_phone["sticker"]["sha256"] == sha(sticker)
    assert (on_phone["location"]["latitude"], on_phone["location"]["name"]) == (1.5, "Depot")
    assert "15557770000" in on_phone["contacts"]["vcard"]
    assert on_phone["poll"]["poll"]["options"] == ["good", "bad"]

    # When the producer reacts to and replies to its text, Then both reach the phone
    text_id = sent["text"]["message_id"]
    put("reaction", type="reaction", reaction={"message_id": text_id, "emoji": "✅"})
    put("reply", type="text", text={"body": "Tracking: 42"}, context={"message_id": text_id})
    reply = wait_until(lambda: (m := by_reference().get("reply")) and m["status"] == "sent" and m, 30, "reply")
    assert shown_of(phone, contact, reply["wa_message_id"])["quoted_id"] == sent["text"]["wa_message_id"].split("_")[-1]
    wait_until(lambda: status_of(tenant_admin, account_id, text_id)["reactions"] == {"me": "✅"}, 30, "reaction")

    # And every message's `sent` status event is on the producer's reply queue
    events: list[dict[str, Any]] = []

    def drained() -> bool:
        for m in sqs.receive_message(QueueUrl=reply_queue, MaxNumberOfMessages=10).get("Messages", []):
            events.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=reply_queue, ReceiptHandle=m["ReceiptHandle"])
        return {e["data"]["client_reference"] for e in events if e["data"]["status"] == "sent"} >= set(sent)
    wait_until(drained, 30, "status events on the reply queue")
    assert all(e["type"] == "message.status" and e["account_id"] == account_id for e in events)
    sqs.delete_queue(QueueUrl=reply_queue)


def shown_of(phone: Phone, contact: str, key: str) -> dict[str, Any]:
    return next(m for m in phone.received(contact) if m["key"] == key)
