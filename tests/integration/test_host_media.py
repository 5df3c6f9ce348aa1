"""The host's media: bytes from a link (a loopback server the test stack allow-lists) or an uploaded id,
checked against the declared type and WhatsApp's limits; received media stored for the API."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from browser_host.media import Media, MediaError, load_outbound, store_inbound
from core.config import Settings
from functions.service.context import services
from functions.service.media import media_view
from tests.conftest import Api
from tests.integration.test_media import png, tenant_of, upload

OGG = b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + b"\x01" * 100
PDF = b"%PDF-1.7\n" + b"x" * 200
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/cat.png": (200, {"Content-Type": "image/png"}, png(4000)),
    "/fake.png": (200, {"Content-Type": "image/png"}, b"<html>a login page</html>"),
    "/big.webp": (200, {"Content-Type": "image/webp"}, b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 600_000),
    "/voice": (200, {"Content-Type": "application/octet-stream"}, OGG),
    "/files/Q3%20report.pdf": (200, {}, PDF),
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    "/to-private": (302, {"Location": "http://10.0.0.1/cat.png"}, b""),
    "/down": (503, {}, b"busy"),
    "/gone": (404, {}, b""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, headers, body = ROUTES.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(runtime: Any) -> Settings:
    found = Settings.from_env()
    assert "127.0.0.1" in found.outbound_allow_set and found.media_bucket
    return found


def load(settings: Settings, body: dict[str, Any], kind: str = "image", tenant: str = "t-host") -> Media:
    return asyncio.run(load_outbound(settings, tenant, body, kind=kind, timeout=10))


def failure(settings: Settings, body: dict[str, Any], kind: str = "image", tenant: str = "t-host") -> MediaError:
    with pytest.raises(MediaError) as caught:
        load(settings, body, kind, tenant)
    return caught.value


def test_a_linked_png_is_loaded_with_its_type(settings: Settings, files: str) -> None:
    media = load(settings, {"link": f"{files}/cat.png", "caption": "cat"})
    assert media.data == ROUTES["/cat.png"][2] and media.mime_type == "image/png"
    assert media.sha256 == hashlib.sha256(media.data).hexdigest() and media.filename is None
    # A declared type that matches the bytes is the one sent
    assert load(settings, {"link": f"{files}/cat.png", "mime_type": "image/png"}).mime_type == "image/png"


def test_types_come_from_the_bytes_and_documents_take_anything(settings: Settings, files: str) -> None:
    voice = load(settings, {"link": f"{files}/voice", "voice": True}, "audio")
    assert voice.mime_type == "audio/ogg"  # sniffed; the octet-stream header does not decide
    report = load(settings, {"link": f"{files}/files/Q3%20report.pdf"}, "document")
    assert report.mime_type == "application/pdf" and report.filename == "Q3 report.pdf"
    page = load(settings, {"link": f"{files}/fake.png", "filename": "page.html"}, "document")
    assert page.filename == "page.html" and page.data.startswith(b"<html>")


@pytest.mark.parametrize(("path", "kind", "body", "code", "permanent"), [
    ("/fake.png", "image", {}, "media_type_mismatch", True),  # HTML served as image/png
    ("/cat.png", "image", {"mime_type": "image/jpeg"}, "media_type_mismatch", True),  # declared type is wrong
    ("/cat.png", "video", {}, "media_type_mismatch", True),
    ("/big.webp", "sticker", {}, "media_too_large", True),  # 600 KB > the 500 KB sticker limit
    ("/to-metadata", "image", {}, "media_url_not_allowed", True),  # redirect to a non-allow-listed address
    ("/to-private", "image", {}, "media_url_not_allowed", True),
    ("/gone", "image", {}, "media_not_found", True),
    ("/down", "image", {}, "media_fetch_failed", False),  # 5xx: a later attempt may work
])
def test_links_that_cannot_be_sent(settings: Settings, files: str, path: str, kind: str, body: dict[str, Any],
                                   code: str, permanent: bool) -> None:
    error = failure(settings, {"link": files + path, **body}, kind)
    assert (error.code, error.permanent) == (code, permanent), error.message


def test_unreachable_and_forbidden_links(settings: Settings) -> None:
    assert failure(settings, {"link": "https://169.254.169.254/x.png"}).code == "media_url_not_allowed"
    closed = failure(settings, {"link": "http://127.0.0.1:9/x.png"})  # discard port: connection refused
    assert closed.code == "media_fetch_failed" and not closed.permanent


def test_an_uploaded_id_is_loaded_for_its_tenant_only(settings: Settings, tenant_admin: Api, root_api: Api) -> None:
    data = png(6000)
    media_id = upload(tenant_admin, data, "image/png", filename="cat.png")
    tenant = tenant_of(tenant_admin)
    media = load(settings, {"id": media_id}, "image", tenant)
    assert media.data == data and media.mime_type == "image/png"
    assert load(settings, {"id": media_id}, "document", tenant).filename == "cat.png"
    assert failure(settings, {"id": media_id}, "image", tenant_of(root_api)).code == "media_not_found"
    assert failure(settings, {"id": media_id}, "sticker", tenant).code == "media_type_mismatch"
    assert failure(settings, {"id": "med_00000000000000000000000000"}, "image", tenant).code == "media_not_found"


def test_received_media_is_stored_and_shown_with_a_url(settings: Settings) -> None:
    data = OGG
    media = asyncio.run(store_inbound(settings, "acc_host1", "msg_host1", data, "audio/ogg; codecs=opus",
                                      caption="hear this"))
    assert media == {"key": "inbound/acc_host1/msg_host1", "mime_type": "audio/ogg; codecs=opus",
                     "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "caption": "hear this"}
    shown = media_view({"media": media}, services())
    assert requests.get(shown["media"]["url"], timeout=30).content == data
