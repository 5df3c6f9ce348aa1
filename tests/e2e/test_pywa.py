"""An unmodified Cloud API library (pywa) runs a bot on a WhatsApp Web number: its only change is its HTTP client
pointing at wagate. It sends text and media through the Cloud API compatibility routes, and takes wagate's
Meta-format webhooks with its own signature check and update parsing."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.host_process import HostProcess
from infra.local.receiver import Answer, Receiver, Seen
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, link_by_qr, wait_until
from tests.graph_sdk import pywa_client

APP_SECRET = "pywa-app-secret-0123456789"


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


@pytest.fixture
def meta_webhook(tenant_admin: Api) -> Iterator[Any]:
    """Creates Meta-format tenant webhooks (`create(url)`); removes them afterwards."""
    created: list[str] = []

    def create(url: str) -> None:
        response = tenant_admin.post("/webhooks", json={"url": url, "secret": APP_SECRET, "format": "meta",
                                                        "events": ["message.received"]})
        assert response.status_code == 201, response.text
        created.append(str(response.json()["webhook_id"]))

    yield create
    for webhook_id in created:
        tenant_admin.delete(f"/webhooks/{webhook_id}")


def test_a_pywa_bot_sends_and_answers_on_a_whatsapp_web_number(
        tenant_admin: Api, phone: Phone, host: HostProcess, receiver: Receiver, meta_webhook: Any) -> None:
    from pywa import filters

    # Given a linked WhatsApp Web number, and a pywa bot with the API key as its token and the account id as its
    # phone id, whose webhook is a Meta-format tenant webhook signed with its app secret
    business, contact = _number(), _number()
    account_id = str(create_account(tenant_admin, "pywa")["account_id"])
    link_by_qr(tenant_admin, phone, account_id, business)
    bot = pywa_client(tenant_admin.base_url, str(tenant_admin.key), account_id, server=None,
                      app_secret=APP_SECRET, validate_updates=True)
    heard: list[str] = []
    verdicts: list[Any] = []

    @bot.on_message(filters.text)
    def answer(client: Any, message: Any) -> None:
        heard.append(message.text)
        message.reply_text(f"You said: {message.text}", quote=True)

    def webhook(seen: Seen) -> Answer:
        verdict = bot.webhook_update_validator(seen.body, seen.headers.get("x-hub-signature-256"))
        verdicts.append(verdict)
        if verdict is None:
            bot.webhook_update_handler(seen.body)
        return Answer(200)

    meta_webhook(receiver.handle("/bot", webhook))

    # When the bot sends a text, and uploads an image then sends it by id
    image = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3000)
    text = bot.send_message(to=contact, text="Hello from pywa")
    media = bot.upload_media(media=image, mime_type="image/png", filename="photo.png")
    photo = bot.send_image(to=contact, image=media, caption="your photo")

    # Then the contact's phone shows both, exactly
    assert text.id.startswith("msg_") and photo.id.startswith("msg_") and text.chat.id == contact
    shown = wait_until(lambda: len(got := phone.received(contact)) >= 2 and got, 45, "both messages on the phone")
    assert shown[0]["body"] == "Hello from pywa"
    assert (shown[1]["type"], shown[1]["caption"], shown[1]["sha256"]) == (
        "image", "your photo", hashlib.sha256(image).hexdigest())

    # When the contact writes back, Then pywa accepts the delivery with its own signature check, parses it as a
    # text message, and its reply (quoting the contact's message) reaches the phone
    thanks = phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "Thanks!"})
    wait_until(lambda: heard, 30, "the message at the pywa bot")
    assert heard == ["Thanks!"] and verdicts == [None]
    reply = wait_until(lambda: next((m for m in phone.received(contact) if m.get("body") == "You said: Thanks!"),
                                    None), 30, "the bot's reply on the phone")
    assert reply["quoted_id"] and reply["quoted_id"] in str(thanks)
