"""core/net.py: refused targets in every spelling, the allow-list, and fetches against a loopback server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.config import Settings
from core.net import FetchError, OutboundPolicy, UnresolvedHost, UnsafeUrl, check_url, fetch

NOBODY = OutboundPolicy()
LOOPBACK_V4 = OutboundPolicy.parse("127.0.0.1")


@pytest.mark.parametrize("url", [
    # loopback in every form inet_aton / getaddrinfo / browsers read
    "https://127.0.0.1/", "https://2130706433/", "https://127.1/", "https://0x7f000001/", "https://0177.0.0.1/",
    "https://0x7f.1/", "https://0x7F.0.0.1/", "https://127.0.0.1./", "https://[::1]/", "https://[::ffff:7f00:1]/",
    "https://[::ffff:127.0.0.1]/", "https://[0:0:0:0:0:0:0:1]/", "https://localhost/", "https://LOCALHOST:8443/",
    "https://localhost./", "https://api.localhost/",
    # unspecified, private, link-local, CGNAT, benchmark, multicast, reserved, broadcast
    "https://0.0.0.0/", "https://0/", "https://[::]/", "https://10.0.0.1/", "https://172.16.5.4/",
    "https://192.168.1.1/", "https://012.0.0.1/", "https://169.254.1.1/", "https://100.64.0.1/",
    "https://198.18.0.1/", "https://224.0.0.1/", "https://240.0.0.1/", "https://255.255.255.255/",
    "https://[fe80::1]/", "https://[fc00::1]/", "https://[fd12:3456::1]/", "https://[ff02::1]/",
    # cloud metadata
    "https://169.254.169.254/latest/meta-data/", "https://2852039166/", "https://[fd00:ec2::254]/",
    "https://100.100.100.200/", "https://[::ffff:169.254.169.254]/",
    # IPv6 forms that embed a private IPv4: compatible, 6to4, Teredo, NAT64
    "https://[::127.0.0.1]/", "https://[::a00:1]/", "https://[2002:7f00:1::1]/", "https://[2002:c0a8:101::]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/", "https://[64:ff9b:1::a00:1]/",
    # bad forms
    "ftp://8.8.8.8/", "file:///etc/passwd", "gopher://8.8.8.8/", "https://user:pw@8.8.8.8/", "https://user@8.8.8.8/",
    "https:///path", "https://1.2.3.256/", "https://1.2.3.4.5/", "https://08.1.1.1/", "https://8.8.8.8:0/",
    "https://8.8.8.8:99999/", "https://8.8.8.8 /", "https://8.8.8.8\\@127.0.0.1/", "https://[fe80::1%25eth0]/",
    # plain http to a host nobody allow-listed
    "http://8.8.8.8/", "http://example.com/",
])
def test_non_public_and_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, NOBODY)
    assert refused.value.code == "url_not_allowed"
    with pytest.raises(UnsafeUrl):
        fetch(url, NOBODY, timeout=2)


def test_the_refusal_says_which_address_and_why() -> None:
    with pytest.raises(UnsafeUrl, match=r"resolves to 127\.0\.0\.1 \(loopback\)"):
        check_url("https://localhost/hook", NOBODY)
    with pytest.raises(UnsafeUrl, match=r"is 127\.0\.0\.1 \(loopback\)"):
        check_url("https://0x7f.1/", NOBODY)
    with pytest.raises(UnsafeUrl, match=r"IPv4-mapped 169\.254\.169\.254: cloud metadata"):
        check_url("https://[::ffff:a9fe:a9fe]/", NOBODY)


@pytest.mark.parametrize("url", [
    "https://8.8.8.8/", "https://134744072/", "https://[2001:4860:4860::8888]:8443/x?y=1",
    "https://[64:ff9b::808:808]/", "https://[2002:808:808::1]/", "https://[::ffff:8.8.8.8]/",
])
def test_public_literal_addresses_pass(url: str) -> None:
    assert check_url(url, NOBODY)


def test_names_are_checked_without_resolving_on_request() -> None:
    assert check_url("https://hooks.example.com/x", NOBODY, resolve=False) == []
    with pytest.raises(UnsafeUrl):
        check_url("https://localhost/", NOBODY, resolve=False)
    with pytest.raises(UnsafeUrl):
        check_url("https://127.1/", NOBODY, resolve=False)


def test_a_name_that_does_not_resolve_is_its_own_error() -> None:
    with pytest.raises(UnresolvedHost) as unresolved:
        check_url("https://wagate-test.invalid/", NOBODY)
    assert unresolved.value.code == "host_not_found"
    with pytest.raises(FetchError) as failed:
        fetch("https://wagate-test.invalid/", NOBODY, timeout=5)
    assert failed.value.code == "connection_error"


def test_allow_list_by_ip_cidr_and_name_permits_private_targets_and_http() -> None:
    settings = Settings(outbound_allow_hosts=" 127.0.0.1, 10.0.0.0/8 ,Hooks.Internal, [::1]")
    policy = OutboundPolicy.from_settings(settings)
    assert policy == OutboundPolicy(frozenset({"127.0.0.1", "10.0.0.0/8", "Hooks.Internal", "[::1]"}))
    assert check_url("http://127.0.0.1:8080/", policy)
    assert check_url("http://127.1:8080/", policy)  # the address, however spelled, is what is listed
    assert check_url("http://10.200.3.4/", policy)
    assert check_url("http://[::1]/", policy)
    assert check_url("http://hooks.internal/", policy, resolve=False) == []
    assert check_url("http://HOOKS.INTERNAL./", policy, resolve=False) == []
    for refused in ("http://127.0.0.2/", "http://192.168.0.1/", "https://169.254.169.254/", "http://8.8.8.8/"):
        with pytest.raises(UnsafeUrl):
            check_url(refused, policy)
    assert check_url("http://localhost/", OutboundPolicy.parse("localhost"))


# --- fetches against a loopback server -------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


SERVER_DELAY = 8.0  # how late /slow and /trickle answer; fetches in these tests time out after 1 s


class QuietServer(ThreadingHTTPServer):
    seen: list[Seen]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts, size caps) break the pipe on purpose


class Receiver(BaseHTTPRequestHandler):
    """Answers by path; records what it received."""

    protocol_version = "HTTP/1.1"
    server: QuietServer

    def log_message(self, *args: object) -> None:
        pass

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(Seen(self.command, self.path, body, {k.lower(): v for k, v in self.headers.items()}))
        return body

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5000")
        self.end_headers()

    def _answer(self) -> None:
        body = self._record()
        path, _, query = self.path.partition("?")
        target = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("to", "")
        if path.startswith("/redirect/"):
            self._send(int(path.rsplit("/", 1)[1]), headers={"Location": target})
        elif path == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif path == "/big":
            self._send(200, b"x" * 5000)
        elif path == "/stream":  # no Content-Length: the cap must hold while reading
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 1000)
        elif path == "/slow":
            time.sleep(SERVER_DELAY)
            self._send(200, b"late")
        elif path == "/trickle":  # each byte in time, the whole far too late
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(int(SERVER_DELAY * 10)):
                self.wfile.write(b"X-Pad: 1\r\n")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self._send(200, json.dumps({"method": self.command, "body": body.decode()}).encode(),
                       {"Content-Type": "application/json", "X-Echo": self.headers.get("X-Signature", "")})


@pytest.fixture
def server() -> Iterator[QuietServer]:
    srv = QuietServer(("127.0.0.1", 0), Receiver)
    srv.daemon_threads = True
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def base(srv: QuietServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_loopback_refused_unless_allow_listed(server: QuietServer) -> None:
    with pytest.raises(UnsafeUrl):
        fetch(f"{base(server)}/hello", NOBODY)
    result = fetch(f"{base(server)}/hello?token=abc", LOOPBACK_V4)
    assert result.status == 200 and result.headers["content-type"] == "application/json"
    assert result.url == f"{base(server)}/hello?token=abc" and result.elapsed < 5
    assert server.seen[0].path == "/hello?token=abc"
    assert server.seen[0].headers["host"] == f"127.0.0.1:{server.server_address[1]}"


def test_host_header_is_the_urls_name_while_the_connection_goes_to_the_checked_address(
        server: QuietServer) -> None:
    port = server.server_address[1]
    fetch(f"http://localhost:{port}/x", OutboundPolicy.parse("localhost"))
    assert server.seen[-1].headers["host"] == f"localhost:{port}"


def test_post_body_and_headers_arrive_intact(server: QuietServer) -> None:
    payload = json.dumps({"event": "message.received", "text": "héllo"}).encode()
    result = fetch(f"{base(server)}/hook", LOOPBACK_V4, method="POST", body=payload,
                   headers={"Content-Type": "application/json", "X-Signature": "sha256=abc"})
    assert result.status == 200 and result.headers["x-echo"] == "sha256=abc"
    seen = server.seen[-1]
    assert seen.method == "POST" and seen.body == payload
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-signature"] == "sha256=abc"


@pytest.mark.parametrize(("status", "method_after", "body_after"), [
    (307, "POST", b"payload"), (308, "POST", b"payload"), (303, "GET", b""), (302, "GET", b""), (301, "GET", b""),
])
def test_redirects_keep_or_drop_the_post_like_browsers(
        server: QuietServer, status: int, method_after: str, body_after: bytes) -> None:
    result = fetch(f"{base(server)}/redirect/{status}?to=/landed", LOOPBACK_V4, method="POST", body=b"payload",
                   headers={"Content-Type": "text/plain"})
    assert result.status == 200 and result.url == f"{base(server)}/landed"
    landed = server.seen[-1]
    assert (landed.path, landed.method, landed.body) == ("/landed", method_after, body_after)
    assert ("content-type" in landed.headers) is (method_after == "POST")


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/", "http://127.0.0.2:{port}/",
    "https://10.0.0.1/", "http://wagate-test.localhost:{port}/",
])
def test_a_redirect_to_a_non_allow_listed_private_target_is_refused(server: QuietServer, target: str) -> None:
    with pytest.raises(UnsafeUrl):
        fetch(f"{base(server)}/redirect/302?to={target.format(port=server.server_address[1])}", LOOPBACK_V4)
    assert len(server.seen) == 1


def test_a_redirect_to_another_spelling_of_the_listed_address_is_followed(server: QuietServer) -> None:
    port = server.server_address[1]
    assert fetch(f"{base(server)}/redirect/302?to=http://0x7f.1:{port}/there", LOOPBACK_V4).status == 200
    assert server.seen[-1].headers["host"] == f"0x7f.1:{port}"


def test_credentials_are_not_forwarded_to_another_origin(server: QuietServer) -> None:
    port = server.server_address[1]
    policy = OutboundPolicy.parse("127.0.0.1,localhost")
    fetch(f"{base(server)}/redirect/307?to=http://localhost:{port}/other", policy,
          headers={"Authorization": "Bearer secret", "X-Signature": "s"})
    assert "authorization" not in server.seen[-1].headers
    assert server.seen[-1].headers["x-signature"] == "s"
    fetch(f"{base(server)}/redirect/307?to=/same", policy, headers={"Authorization": "Bearer secret"})
    assert server.seen[-1].headers["authorization"] == "Bearer secret"


def test_redirects_are_capped(server: QuietServer) -> None:
    with pytest.raises(FetchError) as failed:
        fetch(f"{base(server)}/loop", LOOPBACK_V4, max_redirects=3)
    assert failed.value.code == "too_many_redirects"
    assert len(server.seen) == 4


def test_bodies_over_the_cap_are_refused(server: QuietServer) -> None:
    assert len(fetch(f"{base(server)}/big", LOOPBACK_V4, max_bytes=5000).body) == 5000
    assert fetch(f"{base(server)}/big", LOOPBACK_V4, method="HEAD", max_bytes=10).headers["content-length"] == "5000"
    for path in ("/big", "/stream"):
        with pytest.raises(FetchError) as failed:
            fetch(f"{base(server)}{path}", LOOPBACK_V4, max_bytes=4096)
        assert failed.value.code == "too_large"


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_the_timeout_bounds_the_whole_fetch(server: QuietServer, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as failed:
        fetch(f"{base(server)}{path}", LOOPBACK_V4, timeout=1.0)
    assert failed.value.code == "timeout"
    # It gave up long before the server answered (not a wall-clock budget: the margin is seconds)
    assert time.monotonic() - started < SERVER_DELAY - 2


def test_connection_and_tls_failures_have_their_codes(server: QuietServer) -> None:
    with pytest.raises(FetchError) as tls:
        fetch(f"https://127.0.0.1:{server.server_address[1]}/", LOOPBACK_V4, timeout=3)
    assert tls.value.code == "tls_error"
    server.server_close()  # nothing listens on the port any more
    with pytest.raises(FetchError) as refused:
        fetch(base(server), LOOPBACK_V4, timeout=3)
    assert refused.value.code in {"connection_error", "timeout"}


def test_errors_name_host_and_path_but_never_the_query(server: QuietServer) -> None:
    with pytest.raises(FetchError) as failed:
        fetch(f"{base(server)}/big?token=s3cr3t", LOOPBACK_V4, max_bytes=10)
    assert "127.0.0.1/big" in str(failed.value) and "s3cr3t" not in str(failed.value)
