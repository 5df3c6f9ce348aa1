"""An account's browser goes through its proxy, another account's on the same host does not; a proxy that refuses
the account's credentials leaves it FAILED with why, never connected directly."""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, account_status, link_by_qr, wait_until

USER, PASSWORD = "acct-a", "s3cret-pr0xy"


class LoopbackProxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels and absolute-URI requests, Basic authentication when given,
    every request recorded as (method, target) once it is let through."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode() if username else None
        self.expected = f"Basic {token}" if token else None
        self.passed: list[tuple[str, str]] = []
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> LoopbackProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._open):  # every connection's reader sees its end: nothing is left running
                writer.close()
            await asyncio.sleep(0.2)
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hosts(self) -> Counter[str]:
        """Requests let through, per target `host:port`."""
        return Counter(target if method == "CONNECT" else urlsplit(target).netloc for method, target in self.passed)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
                given = next((v for k, v in headers if k.lower() == "proxy-authorization"), None)
                length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                if self.expected and given != self.expected:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                self.passed.append((method, target))
                parts = urlsplit(target if method != "CONNECT" else f"//{target}")
                try:
                    up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
                except OSError:  # Chromium's own services (no DNS here) and the like
                    writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
                self._open.add(up_writer)
                if method == "CONNECT":
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                else:  # absolute URI: ask the origin in its own form, one request per connection
                    kept = [f"{k}: {v}" for k, v in headers
                            if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")]
                    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                    up_writer.write("\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
                                    .encode("latin-1") + body)
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
                return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


@pytest.fixture
def proxy() -> Iterator[LoopbackProxy]:
    server = LoopbackProxy(USER, PASSWORD).start()
    yield server
    server.stop()


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def test_one_account_goes_through_its_proxy_and_another_does_not(
        tenant_admin: Api, runtime: Any, phone: Phone, host: HostProcess, proxy: LoopbackProxy) -> None:
    sim = urlsplit(runtime.sim.url).netloc

    # Given account A with a proxy that wants credentials, and account B without a proxy, on one host
    a = create_account(tenant_admin, "A via proxy", proxy={"url": proxy.url, "username": USER,
                                                           "password": PASSWORD})
    b = create_account(tenant_admin, "B direct")
    assert a["proxy"] == {"server": proxy.url, "has_credentials": True} and b["proxy"] is None

    # When A is started and linked by its QR code
    link_by_qr(tenant_admin, phone, a["account_id"], _number())

    # Then A's page and its WebSocket to WhatsApp (wa_sim) went through the proxy, logged in with its credentials
    # (besides wa_sim, only Chromium's own services of A's context, e.g. content-autofill.googleapis.com)
    assert proxy.hosts()[sim] > 0
    assert ("CONNECT", sim) in proxy.passed  # the WebSocket
    assert proxy.refused >= 1  # Chromium asks without credentials first; Playwright answers the 407
    assert all(target == sim or target.endswith(".googleapis.com:443") for target in proxy.hosts())
    seen = proxy.hosts()[sim]

    # When B is started and linked, Then not one of its requests to wa_sim came through the proxy
    link_by_qr(tenant_admin, phone, b["account_id"], _number())
    assert proxy.hosts()[sim] == seen
    assert account_status(tenant_admin, a["account_id"]) == "WORKING"


def test_refused_proxy_credentials_fail_the_account_and_it_never_goes_direct(
        tenant_admin: Api, runtime: Any, host: HostProcess, proxy: LoopbackProxy) -> None:
    # Given an account whose proxy refuses the password it has
    account = create_account(tenant_admin, "wrong password", proxy={"url": proxy.url, "username": USER,
                                                                    "password": "not-the-password"})
    account_id = account["account_id"]

    # When it is started
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202

    # Then it ends FAILED with a reason that names the proxy, having never shown a QR (so never reached wa_sim)
    failed = wait_until(lambda: (a := tenant_admin.get(f"/accounts/{account_id}").json())["connection_status"]
                        == "FAILED" and a, 60, "FAILED")
    assert "proxy_error" in failed["status_reason"] and proxy.url in failed["status_reason"]
    assert "SCAN_QR_CODE" not in [h["to"] for h in failed["status_history"]]
    assert proxy.passed == [] and proxy.refused >= 2
    assert host.log_path is not None and "not-the-password" not in host.log_path.read_text()
