"""One message from POST /accounts/{id}/messages to the simulated phone and back as an event."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

from infra.local.host_process import HostProcess
from infra.local.receiver import Receiver
from tests.conftest import Api, create_account
from tests.e2e.conftest import WEBHOOK_SECRET, Phone, account_status, link_by_qr, wait_until


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


SECRET = WEBHOOK_SECRET


def test_link_send_ack_and_receive(tenant_admin: Api, runtime: Any, phone: Phone, host: HostProcess,
                                   receiver: Receiver, tenant_webhook: str) -> None:
    # Given a tenant webhook, and an account linked by scanning its QR code with the phone
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "e2e")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    account = tenant_admin.get(f"/accounts/{account_id}").json()
    assert account["phone_number"] == business
    assert [h["to"] for h in account["status_history"]][-3:] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    assert tenant_admin.get(f"/accounts/{account_id}/qr").status_code == 409  # linked: no QR any more

    # When a text message is sent through the API
    sent = tenant_admin.post(f"/accounts/{account_id}/messages",
                             json={"to": contact, "type": "text", "text": {"body": "Your order shipped"}}).json()

    # Then the contact's phone receives exactly that text, once, and the status becomes sent
    received = wait_until(lambda: phone.received(contact), 30, "the message on the phone")
    assert [m["body"] for m in received] == ["Your order shipped"]
    message_url = f"/accounts/{account_id}/messages/{sent['message_id']}"
    wait_until(lambda: tenant_admin.get(message_url).json()["status"] == "sent", 15, "status sent")

    # When the contact reads it, Then the API shows read with the whole history
    phone.post(f"/sim/contacts/{contact}/ack", {"message_id": received[0]["key"], "ack": "read"})
    final = wait_until(lambda: (m := tenant_admin.get(message_url).json())["status"] == "read" and m, 15, "read")
    assert [h["status"] for h in final["status_history"]] == ["queued", "sending", "sent", "read"]

    # When the contact writes back, Then it is stored as inbound and published as an event
    phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "Thanks!"})
    inbound = wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/messages",
                                                  params={"direction": "inbound"}).json()["items"], 15, "inbound")
    assert inbound[0]["from"] == contact and inbound[0]["content"]["text"] == {"body": "Thanks!"}
    assert inbound[0]["status"] == "received"
    wait_until(lambda: receiver.events(account_id=account_id, type="message.received"), 20,
               "message.received webhook")
    assert all(r.signed_by(SECRET) for r in receiver.requests())
    seen = receiver.events(account_id=account_id)
    received_event = next(e for e in seen if e["type"] == "message.received")
    assert received_event["data"]["text"] == {"body": "Thanks!"}
    assert received_event["data"]["message_id"] == inbound[0]["message_id"]
    kinds = {e["type"] for e in seen}
    assert {"account.status", "account.qr", "message.status"} <= kinds
    assert account_status(tenant_admin, account_id) == "WORKING"

    # And the host's Prometheus metrics count it
    with urllib.request.urlopen(host.health_url.replace("/health", "/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    assert 'wagate_accounts{status="WORKING"}' in metrics
    sent = next(line for line in metrics.splitlines() if line.startswith("wagate_messages_sent "))
    assert float(sent.split()[1]) >= 1


def test_a_burst_arrives_once_and_in_order(tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given a linked account
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "burst")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)

    # When 15 messages are sent back to back
    bodies = [f"line {i:02d}" for i in range(15)]
    for body in bodies:
        assert tenant_admin.post(f"/accounts/{account_id}/messages", json={
            "to": contact, "type": "text", "text": {"body": body}}).status_code == 202

    # Then the phone shows each once, in the order they were sent
    wait_until(lambda: len(phone.received(contact)) >= len(bodies), 60, "all deliveries")
    assert [m["body"] for m in phone.received(contact)] == bodies
