"""Cloud API bots on a WhatsApp Web number: buttons and lists as numbered text whose numeric answers come back
as Meta's interactive replies, and a read receipt that shows the contact "typing…" (API → host → wa_sim's phone)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from infra.local.host_process import HostProcess
from infra.local.receiver import Receiver
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, link_by_qr, wait_until

BUTTONS = {"type": "button", "header": {"type": "text", "text": "Order 42"},
           "body": {"text": "Your parcel is ready. When should we deliver it?"}, "footer": {"text": "Acme"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "today", "title": "Today"}},
                                  {"type": "reply", "reply": {"id": "tomorrow", "title": "Tomorrow"}}]}}
LIST = {"type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots", "sections": [
    {"title": "Morning", "rows": [{"id": "m9", "title": "9:00"}, {"id": "m11", "title": "11:00"}]},
    {"title": "Afternoon", "rows": [{"id": "a3", "title": "15:00", "description": "with Bob"}]}]}}


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def send(api: Api, account_id: str, body: dict[str, Any]) -> str:
    response = api.post(f"/accounts/{account_id}/messages", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def wait_sent(api: Api, account_id: str, message_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        message = dict(api.get(f"/accounts/{account_id}/messages/{message_id}").json())
        assert message["status"] != "failed", message["error"]
        return message if message["status"] in ("sent", "delivered", "read") else None
    return wait_until(check, 45, f"{message_id} sent")


def received(api: Api, account_id: str, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored inbound messages of what the phone sent (in that order), once all of them are stored."""
    def check() -> list[dict[str, Any]] | None:
        items = api.get(f"/accounts/{account_id}/messages", params={"direction": "inbound", "limit": 50}).json()
        by_key = {m["wa_message_id"]: m for m in items["items"]}
        found = [by_key.get(s["key"]) for s in sent]
        return [m for m in found if m] if all(found) else None
    return wait_until(check, 30, f"{len(sent)} inbound messages")


def on_phone(phone: Phone, contact: str, body_starts: str) -> dict[str, Any]:
    return wait_until(lambda: next((m for m in phone.received(contact) if str(m["body"]).startswith(body_starts)),
                                   None), 30, f"{body_starts!r} on the phone")


def test_buttons_go_as_numbered_text_and_a_number_comes_back_as_the_button_reply(
    tenant_admin: Api, phone: Phone, host: HostProcess, tenant_webhook: str, receiver: Receiver,
) -> None:
    # Given a linked web account without the fallback
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "buttons")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    message = {"to": contact, "type": "interactive", "interactive": BUTTONS}

    # When it sends buttons, then a clear error (like templates: 400); once the option is set (PATCH), they go
    refused = tenant_admin.post(f"/accounts/{account_id}/messages", json=message)
    assert refused.status_code == 400 and refused.json()["code"] == "interactive_not_supported", refused.text
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"options": {"interactive_fallback": "numbered_text"}})
    assert patched.status_code == 200, patched.text
    ours = send(tenant_admin, account_id, message)
    sent = wait_sent(tenant_admin, account_id, ours)

    # Then the phone shows numbered text, and the message is stored as the interactive message it was
    shown = on_phone(phone, contact, "*Order 42*")
    assert shown["body"] == ("*Order 42*\n\nYour parcel is ready. When should we deliver it?\n\n1. Today\n"
                             "2. Tomorrow\n\n_Acme_\n\nReply with the number of your choice.")
    assert sent["type"] == "interactive" and sent["content"]["interactive"] == BUTTONS

    # When the contact answers "2.", then says hello, then a number that is no choice
    sent_texts = [phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": text})
                  for text in (" 2. ", "hello", "7")]
    reply, hello, seven = received(tenant_admin, account_id, sent_texts)

    # Then the answer is Meta's button_reply to our message; other texts stay texts
    assert reply["type"] == "interactive" and reply["from"] == contact
    assert reply["content"]["interactive"] == {"type": "button_reply",
                                               "button_reply": {"id": "tomorrow", "title": "Tomorrow"}}
    assert reply["content"]["context"] == {"message_id": ours, "wa_message_id": sent["wa_message_id"]}
    assert (hello["type"], hello["content"]["text"]["body"]) == ("text", "hello")
    assert (seven["type"], seven["content"]["text"]["body"]) == ("text", "7")
    event = wait_until(lambda: next((e for e in receiver.events(account_id=account_id, type="message.received")
                                     if e["data"]["type"] == "interactive"), None), 20, "message.received")
    assert event["data"]["interactive"]["button_reply"]["id"] == "tomorrow"
    assert event["data"]["context"]["message_id"] == ours


def test_list_answers_and_a_read_receipt_with_typing_indicator(
    tenant_admin: Api, phone: Phone, host: HostProcess,
) -> None:
    # Given a web account created with the fallback, which sent a list the contact answered with "3"
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "lists", options={"interactive_fallback": "numbered_text"})["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    ours = send(tenant_admin, account_id, {"to": contact, "type": "interactive", "interactive": LIST})
    wait_sent(tenant_admin, account_id, ours)
    assert on_phone(phone, contact, "Pick a slot")["body"] == (
        "Pick a slot\n\nMorning\n1. 9:00\n2. 11:00\nAfternoon\n3. 15:00 — with Bob\n\n"
        "Reply with the number of your choice.")
    (reply,) = received(tenant_admin, account_id, [phone.post(f"/sim/contacts/{contact}/send",
                                                              {"to": business, "text": "3"})])
    assert reply["content"]["interactive"] == {
        "type": "list_reply", "list_reply": {"id": "a3", "title": "15:00", "description": "with Bob"}}
    assert reply["content"]["context"]["message_id"] == ours

    # When the business marks it read with Meta's typing indicator
    before = time.time()
    send(tenant_admin, account_id, {"messaging_product": "whatsapp", "status": "read",
                                    "message_id": reply["message_id"], "typing_indicator": {"type": "text"}})

    # Then the contact sees its message read and the business typing for 25 s
    wait_until(lambda: all(m["status"] == "read" for m in phone.call(
        "GET", f"/sim/contacts/{contact}/messages?direction=sent")[1]["messages"]), 30, "read on the phone")
    typing = wait_until(lambda: phone.call("GET", f"/sim/contacts/{contact}/typing")[1]["typing"], 30, "typing…")
    assert typing[0]["account"] == business and typing[0]["state"] == "composing"
    assert before - 1 < typing[0]["since"] and abs(typing[0]["until"] - typing[0]["since"] - 25) < 0.5

    # When the business answers, the typing indicator ends
    send(tenant_admin, account_id, {"to": contact, "type": "text", "text": {"body": "Booked for 15:00"}})
    on_phone(phone, contact, "Booked")
    assert phone.call("GET", f"/sim/contacts/{contact}/typing")[1]["typing"] == []
