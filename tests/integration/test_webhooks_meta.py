"""Meta-format tenant webhooks against the local stack with the dispatcher running: Meta's payloads signed with
X-Hub-Signature-256, statuses naming the send's message id, events Meta has no word for skipped, the hub.challenge
handshake."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest

from core.meta import business_scoped_user_id
from core.models.events import EventType
from infra.local.harness import wait_until
from infra.local.receiver import Answer, Receiver, Seen, meta_verification
from tests.conftest import Api, create_account
from tests.integration.test_webhooks import deliveries, settled, tenant_of

SECRET = "meta-app-secret-" + "x" * 16
VERIFY_TOKEN = "my-verify-token"


def publish(runtime: Any, account_id: str, kind: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """Publish like a browser host does; returns the event."""
    from core.store.queues import EventBus

    event = EventBus(runtime.env["EVENTS_QUEUE_URL"]).publish(kind, account_id, tenant_of(account_id), data)
    return dict(json.loads(event.model_dump_json()))


def meta_webhook(api: Api, url: str, **extra: Any) -> dict[str, Any]:
    response = api.post("/webhooks", json={"url": url, "secret": SECRET, "format": "meta", **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def hub_signature_ok(seen: Seen, secret: str) -> bool:
    """Meta's check, written out: HMAC-SHA256 of the raw body keyed by the (app) secret."""
    expected = "sha256=" + hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(seen.headers.get("x-hub-signature-256", ""), expected)


def linked_account(api: Api, phone_number: str = "+1 (555) 123-4567") -> str:
    """A web account with a phone number (as if linked)."""
    from core.store.tables import AccountItem

    account_id = str(create_account(api)["account_id"])
    AccountItem.get(account_id).update(actions=[AccountItem.phone_number.set(phone_number)])
    return account_id


def sent_message(account_id: str, to: str, wa_message_id: str) -> str:
    """An outbound message WhatsApp accepted (what the host stores before it publishes statuses)."""
    from core.ids import new_id
    from core.models.common import utcnow
    from core.store.messages import MessageRepository
    from core.store.tables import MessageItem

    now = utcnow()
    item = MessageItem(account_id, new_id("msg"), tenant_id=tenant_of(account_id), direction="outbound",
                       status="sent", type="text", to=to, content=json.dumps({"text": {"body": "order shipped"}}),
                       wa_message_id=wa_message_id, created_at=now, updated_at=now)
    MessageRepository().create(item)
    return str(item.message_id)


RECEIVED = {"message_id": "msg_01jc7q4k5y0s6b3f1x8m2n9v0a", "wa_message_id": "false_15551234567@c.us_3EB0C0FFEE",
            "from": "15551234567", "from_lid": None, "profile_name": "Ann", "timestamp": 1777629600,
            "type": "text", "text": {"body": "Hi!"}}


# --- tests -------------------------------------------------------------------------------------------------

def test_a_received_message_arrives_as_metas_payload_signed_with_the_secret(
        tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a linked web account, a Meta-format tenant webhook and a wagate-format one
    account_id = linked_account(tenant_admin)
    webhook = meta_webhook(tenant_admin, receiver.url("/bot"))
    assert webhook["format"] == "meta" and webhook["has_verify_token"] is False
    plain = tenant_admin.post("/webhooks", json={"url": receiver.url("/plain"), "secret": SECRET})
    assert plain.status_code == 201 and plain.json()["format"] == "wagate"

    # When a message arrives
    event = publish(runtime, account_id, EventType.MESSAGE_RECEIVED, RECEIVED)

    # Then the Meta-format webhook gets Meta's whatsapp_business_account payload ...
    [seen] = wait_until(lambda: receiver.requests("/bot"), 20, "a Meta-format delivery")
    payload = json.loads(seen.body)
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    assert entry["id"] == tenant_of(account_id)
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "15551234567", "phone_number_id": account_id}
    assert value["contacts"] == [{"profile": {"name": "Ann"}, "wa_id": "15551234567",
                                  "user_id": business_scoped_user_id(account_id, "15551234567")}]
    assert value["messages"] == [{"from": "15551234567", "id": RECEIVED["wa_message_id"], "timestamp": "1777629600",
                                  "type": "text", "text": {"body": "Hi!"}}]
    # ... signed over the raw body the way Meta signs (the webhook's secret as the app secret)
    assert hub_signature_ok(seen, SECRET)
    assert not hub_signature_ok(seen, "another-secret-" + "y" * 16)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-wagate-event-id"] == event["id"]  # for de-duplication, as with wagate's format
    # and the wagate-format webhook still gets the event itself
    [other] = wait_until(lambda: receiver.requests("/plain"), 20, "a wagate-format delivery")
    assert json.loads(other.body) == event and "x-hub-signature-256" not in other.headers
    by_target = {d["target"]: d for d in settled(tenant_admin, account_id, count=2)}
    assert by_target[webhook["webhook_id"]]["state"] == "delivered"
    assert by_target[webhook["webhook_id"]]["event_type"] == "message.received"


def test_a_status_names_the_id_the_send_answered_with_and_the_recipient(
        tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a message WhatsApp accepted, and a Meta-format webhook
    account_id = linked_account(tenant_admin)
    wamid = "true_15557654321@c.us_3EB0FACADE"
    message_id = sent_message(account_id, "15557654321", wamid)
    meta_webhook(tenant_admin, receiver.url("/statuses"), events=["message.status"])

    # When it is delivered (wagate's status event names only wagate's message id)
    publish(runtime, account_id, EventType.MESSAGE_STATUS, {"message_id": message_id, "status": "delivered"})

    # Then the Meta status names the message id a send answered with (what a bot matches) and the recipient
    [seen] = wait_until(lambda: receiver.requests("/statuses"), 20, "a status delivery")
    assert hub_signature_ok(seen, SECRET)
    value = json.loads(seen.body)["entry"][0]["changes"][0]["value"]
    [status] = value["statuses"]
    assert status["id"] == message_id and status["recipient_id"] == "15557654321" and status["status"] == "delivered"
    assert status["timestamp"].isdigit() and "messages" not in value
    assert value["contacts"] == [{"wa_id": "15557654321", "user_id": status["recipient_user_id"]}]


def test_events_without_a_meta_equivalent_are_skipped_and_shown_so(
        tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    # Given a Meta-format webhook
    account_id = linked_account(tenant_admin)
    meta_webhook(tenant_admin, receiver.url("/bot"))

    # When the account's status changes (Meta's webhooks have nothing for it)
    event = publish(runtime, account_id, EventType.ACCOUNT_STATUS, {"status": "WORKING", "reason": "linked"})

    # Then the delivery is recorded as skipped, never POSTed, and cannot be redelivered
    [delivery] = settled(tenant_admin, account_id)
    assert delivery["state"] == "skipped" and delivery["attempts"] == 0
    assert delivery["event_id"] == event["id"] and delivery["event_type"] == "account.status"
    assert delivery["last_error"].startswith("not_in_meta_format")
    assert delivery["history"] == []
    assert [d["delivery_id"] for d in deliveries(tenant_admin, account_id, state="skipped")] == [
        delivery["delivery_id"]]
    again = tenant_admin.post(f"/accounts/{account_id}/webhook-deliveries/{delivery['delivery_id']}/redeliver")
    assert again.status_code == 409 and again.json()["code"] == "delivery_not_deliverable"
    time.sleep(1)
    assert receiver.requests("/bot") == []


def test_registration_with_verify_runs_metas_handshake(tenant_admin: Api, receiver: Receiver) -> None:
    # Given a receiver that answers Meta's handshake for its verify token, and one that answers "ok" to anything
    bot = receiver.handle("/bot", meta_verification(VERIFY_TOKEN))
    deaf = receiver.script("/deaf", Answer(200, body=b"ok"))

    # When a Meta-format webhook is registered with verify: true
    created = meta_webhook(tenant_admin, bot, verify=True, verify_token=VERIFY_TOKEN)

    # Then the URL got the handshake, and the token is stored but never shown
    [handshake] = receiver.requests("/bot", "GET")
    params = handshake.params
    assert params["hub.mode"] == "subscribe" and params["hub.verify_token"] == VERIFY_TOKEN
    assert params["hub.challenge"].isdigit()
    assert created["has_verify_token"] is True and "verify_token" not in created
    shown = tenant_admin.get(f"/webhooks/{created['webhook_id']}")
    assert VERIFY_TOKEN not in shown.text and shown.json()["has_verify_token"] is True

    # When a URL does not echo the challenge, or the token is wrong, Then 422 with what came back, nothing stored
    refused = tenant_admin.post("/webhooks", json={"url": deaf, "format": "meta", "verify": True,
                                                   "verify_token": VERIFY_TOKEN})
    assert refused.status_code == 422 and refused.json()["code"] == "webhook_verification_failed"
    assert refused.json()["details"] == {"status": 200, "body": "ok"}
    wrong = tenant_admin.post("/webhooks", json={"url": bot, "format": "meta", "verify": True,
                                                 "verify_token": "not-the-token"})
    assert wrong.status_code == 422 and wrong.json()["details"]["status"] == 403
    assert tenant_admin.post("/webhooks", json={"url": bot, "verify": True}).status_code == 422  # no token
    assert [w["webhook_id"] for w in tenant_admin.get("/webhooks").json()["items"]] == [created["webhook_id"]]

    # When the URL changes with verify: true, Then the stored token is used, and a failed handshake changes nothing
    moved = receiver.handle("/bot2", meta_verification(VERIFY_TOKEN))
    patched = tenant_admin.patch(f"/webhooks/{created['webhook_id']}", json={"url": moved, "verify": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["url"] == moved and len(receiver.requests("/bot2", "GET")) == 1
    failed = tenant_admin.patch(f"/webhooks/{created['webhook_id']}", json={"url": deaf, "verify": True})
    assert failed.status_code == 422 and failed.json()["code"] == "webhook_verification_failed"
    assert tenant_admin.get(f"/webhooks/{created['webhook_id']}").json()["url"] == moved


def test_pywa_accepts_the_handshake_and_the_signature(tenant_admin: Api, runtime: Any, receiver: Receiver) -> None:
    """An unmodified Cloud API library (pywa) answers the handshake and checks the signature with its own code."""
    pywa = pytest.importorskip("pywa")
    # Given a pywa bot (no server of its own: the receiver hands it the raw requests)
    account_id = linked_account(tenant_admin)
    bot = pywa.WhatsApp(phone_id=account_id, server=None, verify_token=VERIFY_TOKEN, app_secret=SECRET,
                        validate_updates=True)
    verdicts: list[tuple[str, int] | None] = []

    def pywa_endpoint(seen: Seen) -> Answer:
        if seen.method == "GET":
            text, status = bot.webhook_challenge_handler(seen.params.get("hub.verify_token"),
                                                         seen.params.get("hub.challenge"))
            return Answer(status, body=str(text).encode())
        verdicts.append(bot.webhook_update_validator(seen.body, seen.headers.get("x-hub-signature-256")))
        return Answer(200)

    url = receiver.handle(f"/pywa-{uuid.uuid4().hex[:6]}", pywa_endpoint)

    # When wagate registers the bot's URL with the handshake, and a message arrives
    meta_webhook(tenant_admin, url, verify=True, verify_token=VERIFY_TOKEN)
    publish(runtime, account_id, EventType.MESSAGE_RECEIVED, RECEIVED)

    # Then pywa's own signature check accepts the delivery (None: no error answer)
    wait_until(lambda: verdicts, 20, "a delivery to the pywa bot")
    assert verdicts == [None]


@pytest.mark.skipif(not hasattr(__import__("core.store.tables", fromlist=["AccountItem"]).AccountItem, "cloud"),
                    reason="accounts have no `cloud` attribute yet")
def test_a_cloud_account_names_its_own_graph_ids() -> None:
    from core.store.tables import AccountItem
    from functions.service.webhook_delivery import meta_metadata

    account = AccountItem("acc_1", tenant_id="t-1", phone_number="+15550001111",
                          cloud={"phone_number_id": "106540352242922", "waba_id": "102290129340398",
                                 "display_phone_number": "+1 555-000-1111"})
    assert meta_metadata(account, "acc_1", "t-1") == {"phone_number_id": "106540352242922",
                                                      "waba_id": "102290129340398",
                                                      "display_phone_number": "15550001111"}
    web = AccountItem("acc_2", tenant_id="t-1", phone_number=None)
    assert meta_metadata(web, "acc_2", "t-1") == {"phone_number_id": "acc_2", "display_phone_number": "",
                                                  "waba_id": "t-1"}
