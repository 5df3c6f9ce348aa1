"""Media through the local stack: presigned uploads, tenant-bound ids, inline media moved out of the message
row, links checked when a message is accepted, and download URLs for received media."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import zlib
from typing import Any

import boto3
import pytest
import requests

from core.errors import InvalidRequest
from functions.service import messages as message_service
from functions.service.context import services
from functions.service.media import externalize, media_view
from tests.conftest import Api, create_account, make_key


def png(size: int) -> bytes:
    """A real PNG of about `size` bytes (an IDAT of incompressible filler)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    filler = hashlib.shake_256(str(size).encode()).digest(max(size - 60, 1))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
            + chunk(b"IDAT", filler) + chunk(b"IEND", b""))


def tenant_of(api: Api) -> str:
    return str(api.get("/api-keys").json()["items"][0]["tenant_id"])


def s3_object(runtime: Any, key: str) -> bytes:
    s3 = boto3.client("s3", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    return bytes(s3.get_object(Bucket=runtime.stack.refs["MediaBucket"], Key=key)["Body"].read())


def upload(api: Api, data: bytes, mime_type: str = "image/png", **extra: Any) -> str:
    announced = api.post("/media", json={"mime_type": mime_type, "size_bytes": len(data), **extra})
    assert announced.status_code == 201, announced.text
    ticket = announced.json()
    assert ticket["method"] == "PUT" and ticket["id"].startswith("med_")
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=30)
    assert put.status_code == 200, put.text
    return str(ticket["id"])


def test_an_upload_is_announced_then_put_to_its_presigned_url(tenant_admin: Api, runtime: Any) -> None:
    # Given an announced upload
    announced = tenant_admin.post("/media", json={"mime_type": "image/png", "filename": "cat.png"})
    assert announced.status_code == 201, announced.text
    ticket = announced.json()
    assert ticket["headers"]["Content-Type"] == "image/png" and ticket["max_bytes"] >= 5 * 1024 * 1024
    media_id = ticket["id"]
    assert tenant_admin.get(f"/media/{media_id}").json()["uploaded"] is False

    # When the client PUTs the bytes to the URL, as it is, from outside the stack
    data = png(2000)
    assert requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=30).status_code == 200

    # Then the media shows uploaded, with its type, size and name, and S3 holds the bytes under the tenant
    info = tenant_admin.get(f"/media/{media_id}").json()
    assert info["uploaded"] is True and info["mime_type"] == "image/png" and info["size_bytes"] == len(data)
    assert info["filename"] == "cat.png"
    assert s3_object(runtime, f"media/{tenant_of(tenant_admin)}/{media_id}") == data


def test_media_ids_are_bound_to_their_tenant_and_to_writers(tenant_admin: Api, root_api: Api) -> None:
    # Given media uploaded by one tenant
    media_id = upload(tenant_admin, png(500))

    # Then another tenant does not see it, unknown and malformed ids are not found, and viewers cannot upload
    assert root_api.get(f"/media/{media_id}").json()["code"] == "media_not_found"
    assert root_api.get(f"/media/{media_id}").status_code == 404
    assert tenant_admin.get("/media/med_00000000000000000000000000").status_code == 404
    assert tenant_admin.get("/media/..%2Fsnapshots").status_code in (404, 422)
    viewer = make_key(tenant_admin, "viewer")
    assert viewer.get(f"/media/{media_id}").status_code == 200
    refused = viewer.post("/media", json={"mime_type": "image/png"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    bad = tenant_admin.post("/media", json={"mime_type": "not a type"})
    assert bad.status_code == 422


def test_externalize_moves_inline_data_to_the_bucket(tenant_admin: Api, runtime: Any) -> None:
    # Given an image message with 50 KB inline
    tenant = tenant_of(tenant_admin)
    data = png(50 * 1024)
    envelope = {"to": "15550001111", "type": "image",
                "image": {"data": base64.b64encode(data).decode(), "mime_type": "image/png", "caption": "hi"}}

    # When it is externalized (twice: a retry of the same body)
    stored = externalize(services(), tenant, envelope)
    again = externalize(services(), tenant, envelope)

    # Then the body holds an id of the tenant's media, not the bytes, and the same bytes get the same id
    body = stored["image"]
    assert "data" not in body and body["id"].startswith("med_") and body["caption"] == "hi"
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size_bytes"] == len(data)
    assert again == stored and "data" in envelope["image"]  # the caller's envelope is left as it was
    assert len(json.dumps(stored)) < 1024
    assert s3_object(runtime, f"media/{tenant}/{body['id']}") == data
    assert tenant_admin.get(f"/media/{body['id']}").json()["sha256"] == body["sha256"]


def test_externalize_checks_ids_links_and_content(tenant_admin: Api, root_api: Api) -> None:
    svc, tenant = services(), tenant_of(tenant_admin)
    media_id = upload(tenant_admin, png(3000))

    # An uploaded id of the tenant is kept, with its size and type
    checked = externalize(svc, tenant, {"to": "1555000111", "type": "image", "image": {"id": media_id}})
    assert checked["image"] == {"id": media_id, "mime_type": "image/png", "size_bytes": len(png(3000))}

    def refused(envelope: dict[str, Any], tenant_id: str = tenant) -> str:
        with pytest.raises(InvalidRequest) as caught:
            externalize(svc, tenant_id, envelope)
        return caught.value.code

    # Another tenant's id, an announced id never uploaded, and an unknown id are not found
    assert refused({"type": "image", "image": {"id": media_id}}, tenant_of(root_api)) == "media_not_found"
    pending = tenant_admin.post("/media", json={"mime_type": "image/png"}).json()["id"]
    assert refused({"type": "image", "image": {"id": pending}}) == "media_not_found"
    assert refused({"type": "video", "video": {"id": "media_123"}}) == "media_not_found"
    # A PNG is not a video or a sticker, and HTML is not an image
    assert refused({"type": "video", "video": {"id": media_id}}) == "media_type_mismatch"
    assert refused({"type": "sticker", "sticker": {"id": media_id}}) == "media_type_mismatch"
    html = base64.b64encode(b"<html>not an image</html>").decode()
    assert refused({"type": "image", "image": {"data": html, "mime_type": "image/png"}}) == "media_type_mismatch"
    # A document carries anything
    doc = externalize(svc, tenant, {"type": "document", "document": {"data": html, "mime_type": "text/html",
                                                                     "filename": "a.html"}})
    assert doc["document"]["filename"] == "a.html" and doc["document"]["mime_type"] == "text/html"
    # Links to private, loopback-looking or metadata addresses are refused; public ones pass
    for link in ("https://169.254.169.254/latest/meta-data", "https://10.0.0.1/x.png", "https://0xa.1/x.png",
                 "https://[::ffff:10.0.0.1]/x.png", "https://user@203.0.113.9/x.png"):
        assert refused({"type": "image", "image": {"link": link}}) == "media_url_not_allowed", link
    public = {"type": "image", "image": {"link": "https://93.184.215.14/cat.jpg"}}
    assert externalize(svc, tenant, public) == public
    # Messages without media are left alone
    text = {"type": "text", "text": {"body": "hi"}}
    assert externalize(svc, tenant, text) is text


def test_inline_media_over_100_kb_is_refused_with_a_hint(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    response = tenant_admin.post(f"/accounts/{account_id}/messages", json={
        "to": "15550001111", "type": "image",
        "image": {"data": base64.b64encode(png(350 * 1024)).decode(), "mime_type": "image/png"}})
    assert response.status_code == 422, response.text
    assert "POST /media" in json.dumps(response.json()["details"])


def test_media_view_adds_a_download_url_to_received_media(runtime: Any) -> None:
    # Given received media stored under inbound/
    svc = services()
    data = png(800)
    key = "inbound/acc_test/msg_test"
    svc.media.put(key, data, "image/png")
    content = {"media": {"key": key, "mime_type": "image/png", "size_bytes": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(), "caption": "look"}}

    # When it is shown
    shown = media_view(content, svc)

    # Then it has a short-lived URL a client outside the stack can read, and the stored content is unchanged
    assert requests.get(shown["media"]["url"], timeout=30).content == data
    assert shown["media"]["url_expires_at"].endswith("Z") and "url" not in content["media"]
    # Malformed content, and keys outside inbound/ (snapshots!), never get a URL and never raise
    for odd in ({}, {"media": None}, {"media": "x"}, {"media": {"key": 5}}, {"media": {"key": "snapshots/acc.bin"}},
                {"media": {"key": "inbound/../snapshots/acc.bin"}}, [], None):
        assert media_view(odd, svc) == odd  # type: ignore[arg-type]


WIRED = "externalize" in inspect.getsource(message_service)


@pytest.mark.skipif(not WIRED, reason="functions/service/messages.py does not call media.externalize yet")
def test_messages_carry_media_by_id_through_the_api(tenant_admin: Api, root_api: Api, runtime: Any) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    send = f"/accounts/{account_id}/messages"
    # An uploaded id is accepted and stored as sent
    media_id = upload(tenant_admin, png(4000))
    accepted = tenant_admin.post(send, json={"to": "15550001111", "type": "image", "image": {"id": media_id}})
    assert accepted.status_code == 202, accepted.text
    stored = tenant_admin.get(f"{send}/{accepted.json()['message_id']}").json()
    assert stored["content"]["image"]["id"] == media_id
    # Another tenant's id is not found
    other = upload(root_api, png(4000))
    refused = tenant_admin.post(send, json={"to": "15550001111", "type": "image", "image": {"id": other}})
    assert 400 <= refused.status_code < 500 and refused.json()["code"] == "media_not_found"
    # 50 KB inline is accepted; the stored row holds an id, and S3 the bytes
    data = png(50 * 1024)
    image = {"data": base64.b64encode(data).decode(), "mime_type": "image/png"}
    inline = tenant_admin.post(send, json={"to": "15550001111", "type": "image", "image": image})
    assert inline.status_code == 202, inline.text
    row = tenant_admin.get(f"{send}/{inline.json()['message_id']}").json()["content"]["image"]
    assert "data" not in row and s3_object(runtime, f"media/{tenant_of(tenant_admin)}/{row['id']}") == data
    # A link to a non-public address is refused
    for link in ("https://169.254.169.254/x.png", "https://10.1.2.3/x.png"):
        answer = tenant_admin.post(send, json={"to": "15550001111", "type": "image", "image": {"link": link}})
        assert 400 <= answer.status_code < 500 and answer.json()["code"] == "media_url_not_allowed", answer.text
