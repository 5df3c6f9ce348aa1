"""Meta's webhooks for a Cloud API account: verification handshake, signature check (401, nothing stored),
received messages (media fetched with the token into the bucket) and statuses of sent messages."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import requests

from infra.local import meta_payloads as meta
from infra.local.fake_graph import Media
from infra.local.harness import wait_until
from infra.local.receiver import Receiver
from tests.conftest import Api
from tests.integration.test_cloud_provider import cloud_account, final, send

APP_SECRET = "app-secret-123456"
DISPLAY = "+1 555-010-0000"


def hook_url(runtime: Any, account_id: str) -> str:
    return f"{runtime.api_url}/webhooks/meta/{account_id}"


def test_metas_subscription_handshake_echoes_the_challenge_for_the_right_token(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    url = hook_url(runtime, account_id)

    good = requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me-123",
                                     "hub.challenge": "1158201444"}, timeout=10)
    wrong = requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                      "hub.challenge": "1158201444"}, timeout=10)

    assert (good.status_code, good.text) == (200, "1158201444")  # no API key: Meta calls it
    assert wrong.status_code == 403 and "1158201444" not in wrong.text
    assert requests.get(hook_url(runtime, "acc_nope"), timeout=10).status_code == 404


def test_a_badly_signed_webhook_is_refused_and_stores_nothing(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    payload = meta.inbound_text(pnid, DISPLAY, "15550007777", "forged")

    forged = fake_graph.deliver_webhook(hook_url(runtime, account_id), "not-the-app-secret", payload)
    unsigned = requests.post(hook_url(runtime, account_id), json=payload, timeout=10)

    assert (forged, unsigned.status_code) == (401, 401)
    assert tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"] == []


def test_a_received_text_is_stored_once_and_announced(
        runtime: Any, tenant_admin: Api, fake_graph: Any, receiver: Receiver) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    hook = tenant_admin.post("/webhooks", json={"url": receiver.url(), "secret": "s" * 24,
                                                "events": ["message.received"]})
    assert hook.status_code == 201, hook.text
    payload = meta.inbound_text(pnid, DISPLAY, "15550007777", "hello from the cloud", name="Ann")

    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, payload) == 200
    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, payload) == 200  # Meta retries

    [stored] = tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"]
    assert stored["direction"] == "inbound" and stored["type"] == "text" and stored["from"] == "15550007777"
    assert stored["content"]["text"] == {"body": "hello from the cloud"}
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert stored["wa_message_id"] == wamid
    seen = wait_until(lambda: receiver.seen, what="the message.received event")
    event = json.loads(seen[0].body)
    assert event["type"] == "message.received" and event["data"]["message_id"] == stored["message_id"]
    assert event["data"]["profile_name"] == "Ann" and event["account_id"] == account_id
    time.sleep(1)
    assert len(receiver.seen) == 1  # the repeat changed nothing


def test_received_media_is_fetched_with_the_token_into_the_bucket(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    jpeg = b"\xff\xd8\xff\xe0" + b"picture" * 50
    fake_graph.media["1037543291543636"] = Media("1037543291543636", pnid, jpeg, "image/jpeg", None)
    payload = meta.inbound_image(pnid, DISPLAY, "15550008888", "1037543291543636", caption="look",
                                 sha256=hashlib.sha256(jpeg).hexdigest())

    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, payload) == 200

    [stored] = tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"]
    media = stored["content"]["media"]
    assert stored["type"] == "image" and media["mime_type"] == "image/jpeg" and media["caption"] == "look"
    assert media["sha256"] == hashlib.sha256(jpeg).hexdigest() and media["size_bytes"] == len(jpeg)
    assert requests.get(media["url"], timeout=10).content == jpeg
    # and a Cloud API client reads it back by the id Meta-format webhooks give it (message id . account id)
    bearer = {"Authorization": f"Bearer {tenant_admin.key}"}
    info = requests.get(f"{runtime.api_url}/v27.0/{stored['message_id']}.{account_id}", headers=bearer, timeout=10)
    assert info.status_code == 200, info.text
    assert info.json()["mime_type"] == "image/jpeg" and info.json()["file_size"] == len(jpeg)
    assert requests.get(info.json()["url"], timeout=10).content == jpeg
    unknown = requests.get(f"{runtime.api_url}/v27.0/{stored['message_id']}.acc_other", headers=bearer, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"]["error_subcode"] == 33


def test_statuses_from_meta_move_a_sent_message_to_delivered_and_read(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    message_id = send(tenant_admin, account_id, {"to": "15550009999", "type": "text", "text": {"body": "hi"}})
    wamid = final(tenant_admin, account_id, message_id, "sent")["wa_message_id"]
    url = hook_url(runtime, account_id)

    for status in ("delivered", "read", "delivered"):  # a late "delivered" never moves it back
        assert fake_graph.deliver_webhook(url, APP_SECRET, meta.message_status(
            pnid, DISPLAY, wamid, "15550009999", status)) == 200

    shown = tenant_admin.get(f"/accounts/{account_id}/messages/{message_id}").json()
    assert shown["status"] == "read"
    assert [h["status"] for h in shown["status_history"]] == ["queued", "sending", "sent", "delivered", "read"]


def test_a_failed_status_carries_metas_error(runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    message_id = send(tenant_admin, account_id, {"to": "15550009999", "type": "text", "text": {"body": "hi"}})
    wamid = final(tenant_admin, account_id, message_id, "sent")["wa_message_id"]

    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, meta.message_status(
        pnid, DISPLAY, wamid, "15550009999", "failed", error_code=131026)) == 200

    shown = tenant_admin.get(f"/accounts/{account_id}/messages/{message_id}").json()
    assert shown["status"] == "failed" and shown["error"]["code"] == "invalid_recipient"


def test_another_numbers_payload_is_not_stored_under_this_account(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    payload = meta.inbound_text("111111111111111", DISPLAY, "15550007777", "not for you")

    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, payload) == 200
    assert tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"] == []


def test_a_read_receipt_with_typing_reaches_meta_for_a_received_message(
        runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, pnid = account["account_id"], account["cloud"]["phone_number_id"]
    payload = meta.inbound_text(pnid, DISPLAY, "15550007777", "are you there?")
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert fake_graph.deliver_webhook(hook_url(runtime, account_id), APP_SECRET, payload) == 200
    [received] = tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"]

    read = tenant_admin.post(f"/accounts/{account_id}/messages", json={
        "messaging_product": "whatsapp", "status": "read", "message_id": received["message_id"],
        "typing_indicator": {"type": "text"}})

    assert read.status_code == 202, read.text
    final(tenant_admin, account_id, read.json()["message_id"], "sent")
    assert [r.json for r in fake_graph.requests if r.json and r.json.get("status") == "read"
            and r.json.get("message_id") == wamid] == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": wamid,
         "typing_indicator": {"type": "text"}}]
