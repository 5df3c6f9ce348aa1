"""Every message type both ways, as a business sees it: API → wa_sim's phone → acks → signed webhooks, and the
contact's messages, reactions, edits and revokes → stored messages and events."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from infra.local.host_process import HostProcess
from infra.local.receiver import Receiver
from tests.conftest import Api, create_account
from tests.e2e.conftest import WEBHOOK_SECRET, Phone, link_by_qr, wait_until

SECRET = WEBHOOK_SECRET


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def png(size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(size)


def mp4(size: int = 4096) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(size)


def ogg(size: int = 3000) -> bytes:
    return b"OggS\x00\x02" + os.urandom(size)


def webp(size: int = 1500) -> bytes:
    return b"RIFF" + (size + 4).to_bytes(4, "little") + b"WEBPVP8 " + os.urandom(size)


def pdf(size: int = 5000) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_media(api: Api, data: bytes, mime: str) -> str:
    """POST /media, then PUT the bytes to the presigned URL; the media id."""
    upload = api.post("/media", json={"mime_type": mime, "size_bytes": len(data)})
    assert upload.status_code == 201, upload.text
    put = requests.put(upload.json()["upload_url"], data=data, headers=upload.json()["headers"], timeout=30)
    assert put.status_code in (200, 204), put.text
    return str(upload.json()["id"])


class FileServer:
    """Serves fixed bytes on loopback: where a business's `link` media lives."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data, mime = files.get(self.path, (b"", ""))
                self.send_response(200 if mime else 404)
                self.send_header("Content-Type", mime or "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, data: bytes, mime: str) -> str:
        self.files[path] = (data, mime)
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.stop()


@pytest.fixture
def linked(tenant_admin: Api, phone: Phone, host: HostProcess, tenant_webhook: str) -> dict[str, str]:
    """A tenant webhook to the loopback receiver, and an account linked by QR."""
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "types")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    return {"account_id": account_id, "business": business, "contact": contact}


def send(api: Api, account_id: str, body: dict[str, Any]) -> str:
    response = api.post(f"/accounts/{account_id}/messages", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def status_of(api: Api, account_id: str, message_id: str) -> dict[str, Any]:
    return dict(api.get(f"/accounts/{account_id}/messages/{message_id}").json())


def wait_status(api: Api, account_id: str, message_id: str, *wanted: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        message = status_of(api, account_id, message_id)
        assert message["status"] != "failed" or "failed" in wanted, (message["error"], message["content"])
        return message if message["status"] in wanted else None
    return wait_until(check, 45, f"{message_id} {wanted}")


def on_phone(phone: Phone, contact: str, pred: Any, what: str) -> dict[str, Any]:
    return wait_until(lambda: next((m for m in phone.received(contact) if pred(m)), None), 30, what)


def test_every_outbound_type_reaches_the_phone_exactly(
    tenant_admin: Api, phone: Phone, linked: dict[str, str], receiver: Receiver, files: FileServer,
) -> None:
    api, account_id, contact = tenant_admin, linked["account_id"], linked["contact"]

    # Given media from the three sources: an upload through POST /media, inline base64, and a link
    image = png()
    image_id = upload_media(api, image, "image/png")
    video, voice, sticker, document = mp4(), ogg(), webp(), pdf(200_000)
    document_url = files.serve("/files/invoice.pdf", document, "application/pdf")

    # When every type is sent through the API
    ids = {
        "text": send(api, account_id, {"to": contact, "type": "text",
                                        "text": {"body": "Hello https://example.com", "preview_url": True},
                                        "client_reference": "order-1"}),
        "image": send(api, account_id, {"to": contact, "type": "image",
                                         "image": {"id": image_id, "caption": "your receipt"}}),
        "video": send(api, account_id, {"to": contact, "type": "video", "video": {
            "data": base64.b64encode(video).decode(), "mime_type": "video/mp4", "caption": "unboxing"}}),
        "voice": send(api, account_id, {"to": contact, "type": "audio", "audio": {
            "data": base64.b64encode(voice).decode(), "mime_type": "audio/ogg", "voice": True}}),
        "document": send(api, account_id, {"to": contact, "type": "document", "document": {
            "link": document_url, "filename": "invoice-42.pdf", "caption": "invoice"}}),
        "sticker": send(api, account_id, {"to": contact, "type": "sticker", "sticker": {
            "data": base64.b64encode(sticker).decode(), "mime_type": "image/webp"}}),
        "location": send(api, account_id, {"to": contact, "type": "location", "location": {
            "latitude": 52.52, "longitude": 13.405, "name": "Shop", "address": "Main St 1, Berlin"}}),
        "contacts": send(api, account_id, {"to": contact, "type": "contacts", "contacts": [
            {"name": {"formatted_name": "Support"}, "phones": [{"phone": "+15550001111", "wa_id": "15550001111"}]}]}),
        "poll": send(api, account_id, {"to": contact, "type": "poll", "poll": {
            "question": "Delivery time?", "options": ["Morning", "Evening"], "max_selections": 1}}),
    }
    ids["reply"] = send(api, account_id, {"to": contact, "type": "text", "text": {"body": "About that:"},
                                          "context": {"message_id": ids["text"]}})
    for message_id in ids.values():
        wait_status(api, account_id, message_id, "sent", "delivered", "read")

    # Then the phone shows exactly what was sent: types, captions, file names, bytes, coordinates, vCard, poll
    shown = {m["key"]: m for m in phone.received(contact)}
    by_id = {name: shown[status_of(api, account_id, mid)["wa_message_id"]] for name, mid in ids.items()}
    assert by_id["text"]["body"] == "Hello https://example.com" and by_id["text"]["type"] == "chat"
    assert (by_id["image"]["type"], by_id["image"]["caption"], by_id["image"]["sha256"]) == \
        ("image", "your receipt", sha(image))
    assert (by_id["video"]["type"], by_id["video"]["sha256"], by_id["video"]["mimetype"]) == \
        ("video", sha(video), "video/mp4")
    assert (by_id["voice"]["type"], by_id["voice"]["sha256"]) == ("ptt", sha(voice))
    assert (by_id["document"]["type"], by_id["document"]["filename"], by_id["document"]["sha256"],
            by_id["document"]["size"]) == ("document", "invoice-42.pdf", sha(document), len(document))
    assert (by_id["sticker"]["type"], by_id["sticker"]["sha256"]) == ("sticker", sha(sticker))
    location = by_id["location"]
    assert (location["latitude"], location["longitude"], location["name"], location["address"]) == \
        (52.52, 13.405, "Shop", "Main St 1, Berlin")
    assert "FN:Support" in by_id["contacts"]["vcard"] and "15550001111" in by_id["contacts"]["vcard"]
    poll = by_id["poll"]["poll"]
    assert (poll["name"], poll["options"], poll["selectable_count"]) == ("Delivery time?", ["Morning", "Evening"], 1)
    assert by_id["reply"]["quoted_id"] == by_id["text"]["key"].split("_")[-1]

    # When the business reacts, edits and revokes, Then each has its own trail and the phone shows the result
    reaction = send(api, account_id, {"to": contact, "type": "reaction",
                                      "reaction": {"message_id": ids["text"], "emoji": "👍"}})
    edit = api.patch(f"/accounts/{account_id}/messages/{ids['reply']}", json={"text": {"body": "About that order:"}})
    assert edit.status_code == 202, edit.text
    revoke = api.delete(f"/accounts/{account_id}/messages/{ids['document']}")
    assert revoke.status_code == 202, revoke.text
    for operation in (reaction, edit.json()["message_id"], revoke.json()["message_id"]):
        trail = wait_status(api, account_id, operation, "sent")
        assert [h["status"] for h in trail["status_history"]] == ["queued", "sending", "sent"]
    on_phone(phone, contact, lambda m: m["key"] == by_id["text"]["key"] and m.get("reactions"), "reaction")
    on_phone(phone, contact, lambda m: m["key"] == by_id["reply"]["key"] and m.get("edits"), "edit")
    on_phone(phone, contact, lambda m: m["key"] == by_id["document"]["key"] and m.get("revoked"), "revoke")
    assert status_of(api, account_id, ids["text"])["reactions"] == {"me": "👍"}
    assert [e["body"] for e in status_of(api, account_id, ids["reply"])["edits"]] == ["About that order:"]
    assert status_of(api, account_id, ids["document"])["revoked"] is True

    # When the contact reads the text, Then `read`, and every status reached the webhook, signed
    phone.post(f"/sim/contacts/{contact}/ack", {"message_id": by_id["text"]["key"], "ack": "read"})
    wait_status(api, account_id, ids["text"], "read")
    wait_until(lambda: any(e["data"]["message_id"] == ids["text"] and e["data"]["status"] == "read"
                           for e in receiver.events(account_id=account_id, type="message.status")), 20, "read event")
    statuses = receiver.events(account_id=account_id, type="message.status")
    assert {e["data"]["message_id"] for e in statuses} >= set(ids.values())
    assert next(e for e in statuses if e["data"]["message_id"] == ids["text"])["data"]["client_reference"] == "order-1"
    assert all(r.signed_by(SECRET) for r in receiver.requests("/hooks"))
    assert len({e["id"] for e in statuses}) == len(statuses)  # one event per status change, no duplicates


def test_replies_and_reactions_must_point_at_a_message_of_the_account(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin, "targets")["account_id"]
    for body in ({"to": "15551234567", "type": "text", "text": {"body": "x"}, "context": {"message_id": "msg_nope"}},
                 {"to": "15551234567", "type": "reaction", "reaction": {"message_id": "msg_nope", "emoji": "👍"}},
                 {"status": "read", "message_id": "msg_nope"}):
        response = tenant_admin.post(f"/accounts/{account_id}/messages", json=body)
        assert response.status_code == 404 and response.json()["code"] == "message_not_found", response.text
    assert tenant_admin.patch(f"/accounts/{account_id}/messages/msg_nope",
                              json={"text": {"body": "x"}}).status_code == 404
    assert tenant_admin.delete(f"/accounts/{account_id}/messages/msg_nope").status_code == 404


def test_every_inbound_type_is_stored_and_announced(
    tenant_admin: Api, phone: Phone, linked: dict[str, str], receiver: Receiver,
) -> None:
    api, account_id, business, contact = (tenant_admin, linked["account_id"], linked["business"],
                                          linked["contact"])
    ours = send(api, account_id, {"to": contact, "type": "text", "text": {"body": "Order 42 is ready"}})
    our_key = wait_status(api, account_id, ours, "sent", "delivered")["wa_message_id"]
    image = png(30_000)

    # When the contact sends each type, replies to our message, and writes once from its LID
    sent = {
        "text": phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "Hi!"}),
        "image": phone.post(f"/sim/contacts/{contact}/send", {
            "to": business, "type": "image", "media_base64": base64.b64encode(image).decode(),
            "mimetype": "image/png", "caption": "the damage"}),
        "location": phone.post(f"/sim/contacts/{contact}/send", {
            "to": business, "type": "location", "location": {"latitude": 48.85, "longitude": 2.35,
                                                             "name": "Home", "address": "Rue 1"}}),
        "contacts": phone.post(f"/sim/contacts/{contact}/send", {
            "to": business, "type": "vcard", "vcard": {"name": "Alice", "phone": "15552223333"}}),
        "reply": phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "Thanks",
                                                              "quoted_id": our_key}),
        "lid": phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "from my LID",
                                                            "as_lid": True}),
    }
    inbound = wait_until(lambda: (items := api.get(f"/accounts/{account_id}/messages",
                                                   params={"direction": "inbound", "limit": 50}).json()["items"])
                         and len(items) >= len(sent) and items, 30, "inbound messages")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for message in inbound:
        by_type.setdefault(message["type"], []).append(message)

    # Then each is stored with its content, sender and quoted id
    texts = {m["content"]["text"]["body"]: m for m in by_type["text"]}
    assert texts["Hi!"]["from"] == contact
    assert texts["Thanks"]["content"]["context"]["message_id"] == ours
    assert texts["from my LID"]["from"] == contact and texts["from my LID"]["from_lid"].endswith("@lid")
    stored_image = by_type["image"][0]
    assert stored_image["content"]["image"]["caption"] == "the damage"
    assert stored_image["content"]["media"]["sha256"] == sha(image)
    downloaded = requests.get(stored_image["content"]["media"]["url"], timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == image
    location = by_type["location"][0]["content"]["location"]
    assert (location["latitude"], location["longitude"], location["name"], location["address"]) == \
        (48.85, 2.35, "Home", "Rue 1")
    card = by_type["contacts"][0]["content"]["contacts"][0]
    assert card["name"]["formatted_name"] == "Alice" and card["phones"][0]["wa_id"] == "15552223333"

    # When the contact reacts to our message, edits its text and revokes its image
    phone.post(f"/sim/contacts/{contact}/react", {"message_id": our_key, "emoji": "❤️"})
    phone.post(f"/sim/contacts/{contact}/edit", {"message_id": sent["text"]["id"], "text": "Hi there!"})
    phone.post(f"/sim/contacts/{contact}/revoke", {"message_id": sent["image"]["id"]})

    # Then the targets show it, and every change reached the webhook as its own event
    wait_until(lambda: status_of(api, account_id, ours)["reactions"].get(contact) == "❤️", 20, "reaction stored")
    edited = wait_until(lambda: (m := status_of(api, account_id, texts["Hi!"]["message_id"]))["edits"] and m, 20,
                        "edit stored")
    assert edited["edits"][-1]["body"] == "Hi there!"
    wait_until(lambda: status_of(api, account_id, stored_image["message_id"])["revoked"], 20, "revoke stored")
    for kind in ("message.received", "message.reaction", "message.edited", "message.revoked"):
        wait_until(lambda kind=kind: receiver.events(account_id=account_id, type=kind), 20, kind)
    received = receiver.events(account_id=account_id, type="message.received")
    lid_event = next(e for e in received if e["data"].get("text", {}).get("body") == "from my LID")
    assert lid_event["data"]["from"] == contact and lid_event["data"]["from_lid"].endswith("@lid")
    image_event = next(e for e in received if e["data"]["type"] == "image")
    assert requests.get(image_event["data"]["media"]["url"], timeout=10).content == image
    reaction = receiver.events(account_id=account_id, type="message.reaction")[0]["data"]
    assert (reaction["message_id"], reaction["emoji"], reaction["from"]) == (ours, "❤️", contact)
    assert all(r.signed_by(SECRET) for r in receiver.requests("/hooks"))


def test_number_checks_ask_whatsapp_once_and_are_rate_limited(
    tenant_admin: Api, linked: dict[str, str],
) -> None:
    api, account_id, contact = tenant_admin, linked["account_id"], linked["contact"]

    # When a number on WhatsApp is checked, Then the page answers it (with its LID); asked again, from the cache
    first = api.get(f"/accounts/{account_id}/contacts/{contact}/exists")
    assert first.status_code == 200, first.text
    assert first.json()["on_whatsapp"] is True and first.json()["cached"] is False
    assert first.json()["lid"].endswith("@lid")
    again = api.get(f"/accounts/{account_id}/contacts/+{contact}/exists").json()
    assert again["cached"] is True and again["on_whatsapp"] is True

    # And a number that is not on WhatsApp says so
    absent = api.get(f"/accounts/{account_id}/contacts/9990001112/exists")
    assert absent.status_code == 200 and absent.json()["on_whatsapp"] is False, absent.text

    # When new numbers are checked in bulk, Then past the per-minute budget the API refuses with Retry-After; the
    # account's own cap (options.pacing.checks_per_minute) is 3 here: even if a minute ends during the loop, at most
    # six of the twelve can pass
    options = api.get(f"/accounts/{account_id}").json()["options"]
    paced = {**options, "pacing": {**options["pacing"], "checks_per_minute": 3}}
    assert api.patch(f"/accounts/{account_id}", json={"options": paced}).status_code == 200
    try:
        answers = [api.get(f"/accounts/{account_id}/contacts/1555{i:07d}/exists") for i in range(12)]
    finally:
        api.patch(f"/accounts/{account_id}", json={"options": options})
    limited = [a for a in answers if a.status_code == 429]
    assert len(limited) >= 6 and limited[0].json()["code"] == "contact_checks_rate_limited"
    assert "at most 3 number checks a minute" in limited[0].json()["message"]
    assert 1 <= int(limited[0].headers["Retry-After"]) <= 60
    assert all(a.status_code in (200, 429) for a in answers)
