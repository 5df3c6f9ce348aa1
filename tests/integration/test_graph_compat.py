"""Cloud API compatibility routes against the local stack: Meta's request bodies in, Meta's answers and errors out,
on a WhatsApp Web account (by its account id) and on a Cloud API account (by its own phone_number_id)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any

import pytest
import requests

from core.models.envelope import MarkRead
from infra.local.harness import wait_until
from tests.conftest import Api, create_account, make_key
from tests.graph_sdk import pywa_client

V = "v21.0"
TOKEN = "EAAG-test-token-" + "x" * 24


def graph(api: Api, method: str, path: str, *, key: str | None = "", headers: dict[str, str] | None = None,
          **kw: Any) -> requests.Response:
    """A call as Cloud API SDKs make it: `Authorization: Bearer <key>` only (`key=None`: no header at all)."""
    auth = {"Authorization": f"Bearer {api.key if key == '' else key}"} if key is not None else {}
    return requests.request(method, api.base_url + path, headers={**auth, **(headers or {})}, timeout=30, **kw)


def meta_error(response: requests.Response, status: int, code: int, subcode: int | None = None) -> dict[str, Any]:
    """The Graph API's error object, with its fbtrace_id the request id."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("error_subcode"), error["type"]) == (code, subcode, "OAuthException"), error
    assert error["message"] and error["fbtrace_id"] == response.headers["x-amzn-RequestId"]
    return dict(error)


def png(size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(size)


def upload(api: Api, object_id: str, data: bytes, mime: str, filename: str = "photo.png") -> requests.Response:
    """Meta's upload: multipart/form-data with messaging_product, type and file."""
    return graph(api, "POST", f"/{V}/{object_id}/media",
                 files={"file": (filename, data, mime), "messaging_product": (None, "whatsapp"), "type": (None, mime)})


def stored(api: Api, account_id: str, message_id: str) -> dict[str, Any]:
    response = api.get(f"/accounts/{account_id}/messages/{message_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def account_id(tenant_admin: Api) -> str:
    return str(create_account(tenant_admin, "Web line", phone_number="15559990000")["account_id"])


def test_a_text_and_an_image_by_link_are_answered_as_meta_answers(tenant_admin: Api, account_id: str) -> None:
    # When a bot posts Meta's bodies to /{version}/{phone_number_id}/messages with its key as the bearer token
    text = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1 555 000 1111", "type": "text",
        "text": {"preview_url": False, "body": "hello from a Cloud API bot"}, "biz_opaque_callback_data": "order-7"})
    image = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550001111", "type": "image",
        "image": {"link": "https://example.com/cat.jpg", "caption": "a cat"}})

    # Then the answers are Meta's (the contact as given and as WhatsApp knows it, our message id) ...
    assert text.status_code == 200, text.text
    message_id = text.json()["messages"][0]["id"]
    assert text.json() == {"messaging_product": "whatsapp",
                           "contacts": [{"input": "+1 555 000 1111", "wa_id": "15550001111"}],
                           "messages": [{"id": message_id, "message_status": "accepted"}]}
    assert image.status_code == 200, image.text
    # ... and the messages are in the outbox like any other
    sent = stored(tenant_admin, account_id, message_id)
    assert (sent["status"], sent["to"], sent["client_reference"]) == ("queued", "15550001111", "order-7")
    assert sent["content"]["text"] == {"body": "hello from a Cloud API bot", "preview_url": False}
    assert stored(tenant_admin, account_id, image.json()["messages"][0]["id"])["content"]["image"] == {
        "link": "https://example.com/cat.jpg", "caption": "a cat"}


def test_the_same_send_with_an_idempotency_key_is_the_same_message(tenant_admin: Api, account_id: str) -> None:
    body = {"messaging_product": "whatsapp", "to": "15550001111", "type": "text", "text": {"body": "once"}}
    first, again = (graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json=body,
                          headers={"Idempotency-Key": "k-1"}) for _ in range(2))
    assert first.json()["messages"] == again.json()["messages"]


@pytest.fixture
def received(account_id: str) -> str:
    """A message the account received from 15550001111; its WhatsApp id."""
    from core.ids import new_id
    from core.models.common import utcnow
    from core.store.messages import MessageRepository
    from core.store.tables import AccountItem, MessageItem

    now, wamid = utcnow(), f"false_15550001111@c.us_3EB0{uuid.uuid4().hex[:8].upper()}"
    MessageRepository().create(MessageItem(
        account_id, new_id("msg"), tenant_id=AccountItem.get(account_id).tenant_id, direction="inbound",
        status="received", type="text", from_number="15550001111", content=json.dumps({"text": {"body": "hi"}}),
        wa_message_id=wamid, created_at=now, updated_at=now))
    return wamid


def test_a_contact_named_by_its_business_scoped_user_id_is_reached(
        tenant_admin: Api, account_id: str, received: str) -> None:
    # Given the user id our Meta-format webhooks gave the contact (current Cloud API clients answer to it)
    from core.meta import business_scoped_user_id

    user_id = business_scoped_user_id(account_id, "15550001111")

    # When a bot sends to `recipient` instead of `to`, Then the contact's number is reached
    response = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "recipient_type": "individual", "recipient": user_id, "type": "text",
        "text": {"body": "answer"}})
    assert response.status_code == 200, response.text
    assert response.json()["contacts"] == [{"input": user_id, "wa_id": "15550001111", "user_id": user_id}]
    assert stored(tenant_admin, account_id, response.json()["messages"][0]["id"])["to"] == "15550001111"
    # An id no contact of this number has is refused
    unknown = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "recipient": "ZZ.123", "type": "text", "text": {"body": "x"}})
    assert meta_error(unknown, 400, 100)["wagate_code"] == "unknown_recipient"


def test_mark_as_read_answers_success(tenant_admin: Api, account_id: str, received: str) -> None:
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": received}

    # When the bot marks it read (by the WhatsApp id its webhook gave), Then Meta's answer
    response = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json=read)
    assert response.status_code == 200 and response.json() == {"success": True}, response.text
    receipts = tenant_admin.get(f"/accounts/{account_id}/messages", params={"direction": "outbound"}).json()["items"]
    assert [(m["type"], m["status"]) for m in receipts] == [("read", "queued")]
    if "typing_indicator" in MarkRead.model_fields:  # read + "typing…" in one call, as Meta has it
        typing = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages",
                       json={**read, "typing_indicator": {"type": "text"}})
        assert typing.status_code == 200 and typing.json() == {"success": True}, typing.text


def test_errors_are_metas_error_objects(tenant_admin: Api, account_id: str) -> None:
    text = {"messaging_product": "whatsapp", "to": "15550001111", "type": "text", "text": {"body": "hi"}}
    path = f"/{V}/{account_id}/messages"

    # A version that is not vNN.N (`/v1/…` is the stage path, served like API Gateway's: not a Graph version)
    for version in ("v21", "v21.0.1", "v2"):
        error = meta_error(graph(tenant_admin, "POST", f"/{version}/{account_id}/messages", json=text), 400, 100)
        assert "version" in error["message"]
    # An object that does not exist, or belongs to another tenant
    meta_error(graph(tenant_admin, "POST", f"/{V}/acc_nope/messages", json=text), 400, 100, 33)
    # A missing, wrong or revoked key: 190, with Meta's WWW-Authenticate
    for key in (None, "wgk_not_a_key", "wgk_01jc7q4k5y0s6b3f1x8m2n9v0a_" + "x" * 43):
        response = graph(tenant_admin, "POST", path, json=text, key=key)
        meta_error(response, 401, 190)
        assert response.headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')
    operator = make_key(tenant_admin, "operator")
    assert graph(operator, "POST", path, json=text).status_code == 200
    key_id = next(k["key_id"] for k in tenant_admin.get("/api-keys").json()["items"] if k["name"] == "operator-key")
    assert tenant_admin.delete(f"/api-keys/{key_id}").status_code == 204
    meta_error(graph(operator, "POST", path, json=text), 401, 190)
    # A role that may not send: 10
    viewer = make_key(tenant_admin, "viewer")
    meta_error(graph(viewer, "POST", path, json=text), 403, 10)
    # A body that is not valid: 100 with what is wrong
    error = meta_error(graph(tenant_admin, "POST", path, json={**text, "text": {"body": ""}}), 400, 100)
    assert "text.body" in error["error_data"]["details"] and error["wagate_code"] == "validation_error"
    meta_error(graph(tenant_admin, "POST", path, data=b"{not json", headers={"Content-Type": "application/json"}),
               400, 100)
    meta_error(graph(tenant_admin, "POST", path, json=[1, 2]), 400, 100)
    # A template on a WhatsApp Web number: 131009 with our reason
    template = {**text, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}
    template.pop("text")
    error = meta_error(graph(tenant_admin, "POST", path, json=template), 400, 131009)
    assert error["wagate_code"] == "template_needs_cloud_api"
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": error["error_data"]["details"]}
    assert "Cloud API" in error["error_data"]["details"]
    # A read receipt for a message that does not exist: 100
    meta_error(graph(tenant_admin, "POST", path, json={"messaging_product": "whatsapp", "status": "read",
                                                       "message_id": "wamid.nope"}), 400, 100)
    # Other methods and edges of the Graph API's shape
    meta_error(graph(tenant_admin, "PUT", path, json=text), 400, 100, 33)
    meta_error(graph(tenant_admin, "GET", f"/{V}/{account_id}/whatsapp_business_profile"), 400, 2500)


def test_wagate_routes_keep_winning_and_keep_their_errors(tenant_admin: Api, account_id: str) -> None:
    # A static route with a Bearer key is wagate's, never the Graph resolver's
    account = graph(tenant_admin, "GET", f"/accounts/{account_id}")
    assert account.status_code == 200 and account.json()["account_id"] == account_id
    missing = graph(tenant_admin, "GET", "/accounts/acc_nope")
    assert missing.status_code == 404 and missing.json()["code"] == "account_not_found"
    media = graph(tenant_admin, "GET", "/media/med_00000000000000000000000000")
    assert media.status_code == 404 and media.json()["code"] == "media_not_found"
    # Unknown paths that are not Graph paths are wagate's route_not_found, with or without a key
    for path in ("/nothing", "/nothing/here", "/nothing/here/at/all", "/accounts/x/bogus/deeper"):
        for key in ("", None):
            response = graph(tenant_admin, "GET", path, key=key)
            assert response.status_code == 404 and response.json()["code"] == "route_not_found", (path, response.text)


def test_an_uploaded_media_id_sends_and_reads_back_and_deletes(tenant_admin: Api, account_id: str) -> None:
    # Given an image uploaded the Cloud API way (binary: the gateway hands it over base64-encoded)
    image = png()
    uploaded = upload(tenant_admin, account_id, image, "image/png")
    assert uploaded.status_code == 200, uploaded.text
    media_id = uploaded.json()["id"]
    assert list(uploaded.json()) == ["id"] and media_id.startswith("med_")

    # When it is sent by id, Then it is accepted like media from POST /media
    sent = graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550001111", "type": "image", "image": {"id": media_id}})
    assert sent.status_code == 200, sent.text
    content = stored(tenant_admin, account_id, sent.json()["messages"][0]["id"])["content"]["image"]
    assert (content["id"], content["size_bytes"], content["sha256"]) == (
        media_id, len(image), hashlib.sha256(image).hexdigest())

    # When its info is read, Then Meta's media object with a URL that serves the bytes
    info = graph(tenant_admin, "GET", f"/{V}/{media_id}")
    assert info.status_code == 200, info.text
    body = info.json()
    assert {k: v for k, v in body.items() if k != "url"} == {
        "messaging_product": "whatsapp", "mime_type": "image/png", "sha256": hashlib.sha256(image).hexdigest(),
        "file_size": len(image), "id": media_id}
    assert requests.get(body["url"], timeout=30).content == image

    # When it is deleted, Then it is gone for reads and sends
    deleted = graph(tenant_admin, "DELETE", f"/{V}/{media_id}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}, deleted.text
    meta_error(graph(tenant_admin, "GET", f"/{V}/{media_id}"), 400, 100, 33)
    meta_error(graph(tenant_admin, "DELETE", f"/{V}/{media_id}"), 400, 100, 33)
    error = meta_error(graph(tenant_admin, "POST", f"/{V}/{account_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550001111", "type": "image", "image": {"id": media_id}}), 400, 100)
    assert error["wagate_code"] == "media_not_found"


def test_uploads_are_checked_like_media_everywhere(tenant_admin: Api, account_id: str, root_api: Api) -> None:
    # A text-only document (the gateway hands it over as text, not base64) is stored as it is
    document = b"%PDF-1.4\n% plain ascii body\n" * 10
    uploaded = upload(tenant_admin, account_id, document, "application/pdf", "invoice.pdf")
    assert uploaded.status_code == 200, uploaded.text
    info = graph(tenant_admin, "GET", f"/{V}/{uploaded.json()['id']}").json()
    assert requests.get(info["url"], timeout=30).content == document
    # Bytes that are not what the type says
    error = meta_error(upload(tenant_admin, account_id, document, "image/png"), 400, 100)
    assert error["wagate_code"] == "media_type_mismatch"
    # Over the request body limit: 413, pointing to POST /media
    error = meta_error(upload(tenant_admin, account_id, png(1024 * 1024 + 10), "image/png"), 413, 100)
    assert "POST /media" in error["error_data"]["details"]
    # Not Meta's form
    meta_error(graph(tenant_admin, "POST", f"/{V}/{account_id}/media", files={"file": ("a.png", png(), "image/png")}),
               400, 100)
    meta_error(graph(tenant_admin, "POST", f"/{V}/{account_id}/media", json={"file": "x"}), 400, 100)
    # Another tenant's ids do not exist
    meta_error(upload(root_api, account_id, png(), "image/png"), 400, 100, 33)
    media_id = upload(tenant_admin, account_id, png(), "image/png").json()["id"]
    meta_error(graph(root_api, "GET", f"/{V}/{media_id}"), 400, 100, 33)


def test_a_phone_number_reads_as_metas_phone_number_object(tenant_admin: Api, account_id: str) -> None:
    response = graph(tenant_admin, "GET", f"/{V}/{account_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": account_id, "display_phone_number": "+15559990000", "verified_name": "Web line",
                               "quality_rating": "UNKNOWN"}


# --- a Cloud API account, named by its own phone_number_id ------------------------------------------------------

def cloud_account(api: Api, fake: Any) -> tuple[str, str]:
    """(account id, phone_number_id) of a WORKING cloud account on the fake Graph API."""
    phone_number_id = str(100000000000000 + uuid.uuid4().int % 899999999999999)
    fake.add_number(phone_number_id, TOKEN, "+1 555-010-0000")
    account = create_account(api, "Cloud line", provider="cloud",
                             cloud={"phone_number_id": phone_number_id, "access_token": TOKEN})
    assert account["connection_status"] == "WORKING", account
    return str(account["account_id"]), phone_number_id


def test_a_cloud_account_is_named_by_its_phone_number_id(tenant_admin: Api, fake_graph: Any) -> None:
    account_id, phone_number_id = cloud_account(tenant_admin, fake_graph)
    template = {"name": "hello_world", "language": {"code": "en_US"}}

    # When a bot sends to /{version}/{phone_number_id}/messages — a template too, which a cloud account may send
    text = graph(tenant_admin, "POST", f"/{V}/{phone_number_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550002222", "type": "text", "text": {"body": "via Meta's ids"}})
    templated = graph(tenant_admin, "POST", f"/{V}/{phone_number_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550002222", "type": "template", "template": template})

    # Then both are the account's messages, and reach the Graph API as Meta's bodies
    assert text.status_code == 200 and templated.status_code == 200, (text.text, templated.text)
    assert stored(tenant_admin, account_id, text.json()["messages"][0]["id"])["account_id"] == account_id
    bodies = wait_until(lambda: len(fake_graph.sent(phone_number_id)) >= 2 and fake_graph.sent(phone_number_id), 20,
                        "both sends at the Graph API")
    assert [b["type"] for b in bodies] == ["text", "template"]
    assert bodies[1]["template"] == template
    # A poll is WhatsApp Web's: 131009 with our reason
    poll = graph(tenant_admin, "POST", f"/{V}/{phone_number_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550002222", "type": "poll",
        "poll": {"question": "?", "options": ["a", "b"]}})
    assert meta_error(poll, 400, 131009)["wagate_code"] == "not_supported_by_cloud_api"
    # The phone number object is what Meta said about the number
    number = graph(tenant_admin, "GET", f"/{V}/{phone_number_id}").json()
    assert number == {"id": phone_number_id, "display_phone_number": "+1 555-010-0000",
                      "verified_name": "Wagate Test", "quality_rating": "GREEN"}
    # A key scoped to another account does not see it
    scoped = make_key(tenant_admin, "operator", [create_account(tenant_admin)["account_id"]])
    meta_error(graph(scoped, "POST", f"/{V}/{phone_number_id}/messages", json={
        "messaging_product": "whatsapp", "to": "15550002222", "type": "text", "text": {"body": "no"}}), 400, 100, 33)


def test_pywa_sends_through_a_cloud_account_unchanged(tenant_admin: Api, fake_graph: Any) -> None:
    pytest.importorskip("pywa")
    account_id, phone_number_id = cloud_account(tenant_admin, fake_graph)
    # Given pywa, unmodified, whose only change is its HTTP client pointing at wagate
    bot = pywa_client(tenant_admin.base_url, str(tenant_admin.key), phone_number_id)

    # When it sends a text and uploads then sends an image
    sent = bot.send_message(to="15550003333", text="Hello from pywa")
    media = bot.upload_media(media=png(), mime_type="image/png", filename="p.png")
    image = bot.send_image(to="15550003333", image=media, caption="pic")

    # Then pywa understood our answers, and the Graph API got both messages (the image uploaded to it first)
    assert sent.id.startswith("msg_") and sent.chat.id == "15550003333"
    assert image.id.startswith("msg_") and media.id.startswith("med_")
    bodies = wait_until(lambda: len(fake_graph.sent(phone_number_id)) >= 2 and fake_graph.sent(phone_number_id), 20,
                        "both sends at the Graph API")
    assert bodies[0]["text"]["body"] == "Hello from pywa"
    assert bodies[1]["image"]["caption"] == "pic" and bodies[1]["image"]["id"] in fake_graph.media
    assert stored(tenant_admin, account_id, sent.id)["status"] in {"sent", "delivered", "read", "sending"}


def test_graph_routes_leave_one_variable_resource_per_level() -> None:
    # API Gateway refuses two variable children of one resource (`{proxy+}` beside `{version}` included)
    from infra.local.template import api_routes, load_template

    tree: dict[str, Any] = {}
    for route in api_routes(load_template()):
        node = tree
        for segment in [s for s in route.path.split("/") if s]:
            node = node.setdefault(segment, {})

    def variables(node: dict[str, Any], path: str) -> list[str]:
        found = [f"{path}: {sorted(k for k in node if k.startswith('{'))}"] \
            if len([k for k in node if k.startswith("{")]) > 1 else []
        return found + [v for key, child in node.items() for v in variables(child, f"{path}/{key}")]

    assert variables(tree, "") == []
    graph_routes = {(r.path, r.method) for r in api_routes(load_template()) if r.function == "GraphApiFunction"}
    assert {("/{version}/{object_id}/messages", "post"), ("/{version}/{object_id}/media", "post"),
            ("/{version}/{object_id}", "get"), ("/{version}/{object_id}", "delete"),
            ("/{version}", "any"), ("/{version}/{object_id}/{proxy+}", "any")} <= graph_routes
