"""Outbound HTTP that cannot be aimed at the gateway's own network (SSRF): webhook POSTs and media downloads.

Each URL, and each redirect, is parsed the way the resolver reads it, resolved once, and refused when any address
is not public unless the operator allow-listed it (`OUTBOUND_ALLOW_HOSTS`). The connection then goes to the
address that was checked, never to a second lookup a rebinding DNS server could answer differently.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    from core.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
CHUNK = 64 * 1024
#: Headers that carry credentials: not forwarded when a redirect leaves the origin (as browsers do).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_V4_NETS = [(ipaddress.IPv4Network(net), label) for net, label in (
    ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"), ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)]
_V6_NETS = [(ipaddress.IPv6Network(net), label) for net, label in (
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("::/96", "deprecated IPv4-compatible"),
    ("64:ff9b:1::/48", "local-use NAT64"), ("100::/64", "discard-only"), ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"), ("3fff::/20", "documentation"), ("2001::/23", "IETF protocol assignments"),
    ("5f00::/16", "SRv6 segment identifiers"), ("fc00::/7", "unique local (private)"), ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"), ("ff00::/8", "multicast"),
)]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_PART = re.compile(r"0x[0-9a-f]*|[0-9]+", re.ASCII | re.IGNORECASE)


class UnsafeUrl(ValueError):
    """The URL may not be fetched: bad form, forbidden scheme or a non-public target."""

    code = "url_not_allowed"


class UnresolvedHost(UnsafeUrl):
    """The host name does not resolve (now): not reachable, but not shown to be unsafe either."""

    code = "host_not_found"


class FetchError(Exception):
    """The request could not complete; `code` is timeout, too_large, connection_error, too_many_redirects or
    tls_error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class OutboundPolicy:
    """Targets the operator allows even though they are not public: names, IPs and CIDRs (and http for them)."""

    allow_hosts: frozenset[str] = frozenset()
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allow_hosts:
            item = entry.strip().lower().removeprefix("[").removesuffix("]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.rstrip("."))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """From a comma-separated list (`"127.0.0.1, localhost, 10.0.0.0/8"`)."""
        return cls(frozenset(e.strip() for e in text.split(",") if e.strip()))

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        """The policy `OUTBOUND_ALLOW_HOSTS` describes."""
        return cls(settings.outbound_allow_set)

    def allows_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._names

    def allows_address(self, address: IPAddress) -> bool:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(a in net for net in self._networks for a in (address, mapped) if a is not None
                   and a.version == net.version)


def non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public Internet address (None when it is)."""
    if address in METADATA:
        return "cloud metadata service"
    if isinstance(address, ipaddress.IPv4Address):
        label = next((label for net, label in _V4_NETS if address in net), None)
        return label or (None if address.is_global else "not globally routable")
    if address.scope_id:
        return "scoped IPv6 address"
    embedded, kind = _embedded_v4(address)
    if embedded is not None:
        inner = non_public_reason(embedded)
        return f"{kind} {embedded}: {inner}" if inner else None
    label = next((label for net, label in _V6_NETS if address in net), None)
    return label or (None if address.is_global else "not globally routable")


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None, ""


def _parse_numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address inet_aton (and so getaddrinfo and browsers) reads in `127.1`, `0x7f.1`, `0177.0.0.1` or
    `2130706433`; None when `host` is a name. A numeric-looking host no parser accepts is refused."""
    parts = host.removesuffix(".").split(".")
    if not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    try:
        values = [int(p[2:] or "0", 16) if p[:2].lower() == "0x" else int(p, 8 if p[0] == "0" else 10)
                  for p in parts]
    except ValueError:
        raise UnsafeUrl(f"{host!r} is not a valid IPv4 address") from None
    if len(values) > 4 or any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise UnsafeUrl(f"{host!r} is not a valid IPv4 address")
    number = values[-1]
    for index, value in enumerate(values[:-1]):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _literal_addresses(host: str) -> list[IPAddress] | None:
    """The address(es) a literal host stands for, read by our parser and by the C library; None for names."""
    if ":" in host:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            raise UnsafeUrl(f"{host!r} is not a valid IPv6 address") from None
    found: list[IPAddress] = []
    ours = _parse_numeric_ipv4(host)
    if ours is not None:
        found.append(ours)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        infos = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]))
        if address not in found:
            found.append(address)
    return found or None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise UnsafeUrl(f"{host!r} is not a valid host name") from None
    except OSError as exc:
        raise UnresolvedHost(f"{host!r} does not resolve ({exc.strerror or exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnresolvedHost(f"{host!r} does not resolve")
    return found


def check_url(url: str, policy: OutboundPolicy, *, resolve: bool = True) -> list[IPAddress]:
    """The addresses `url` may be fetched from; UnsafeUrl when it may not (UnresolvedHost: the name does not
    resolve). `resolve=False` checks form, scheme and literal addresses only, and returns [] for names."""
    if any(ord(c) <= 32 or ord(c) == 127 or c == "\\" for c in url):
        raise UnsafeUrl("the URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeUrl("only https (and http to allow-listed hosts) URLs may be fetched")
    if "@" in parts.netloc:
        raise UnsafeUrl("URLs must not carry credentials")
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrl("the URL has no host")
    if port == 0:
        raise UnsafeUrl("port 0 is not a valid port")
    by_name = policy.allows_name(host)
    if scheme == "http" and not by_name and not policy.allow_hosts:
        raise UnsafeUrl(f"{host!r} is not allow-listed: use https")
    literal = _literal_addresses(host)
    if literal is None:
        loopback_name = host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost")
        if not resolve:
            if loopback_name and not by_name:
                raise UnsafeUrl(f"{host!r} is a loopback name")
            if scheme == "http" and not by_name:
                raise UnsafeUrl(f"{host!r} is not allow-listed: use https")
            return []
        try:
            addresses = _resolve(host, port or DEFAULT_PORTS[scheme])
        except UnresolvedHost:
            if loopback_name and not by_name:  # RFC 6761: always loopback, whatever this resolver says
                raise UnsafeUrl(f"{host!r} is a loopback name") from None
            if scheme == "http" and not by_name:
                raise UnsafeUrl(f"{host!r} is not allow-listed: use https") from None
            raise
    else:
        addresses = literal
    listed = True
    for address in addresses:
        if by_name or policy.allows_address(address):
            continue
        listed = False
        reason = non_public_reason(address)
        if reason:
            verb = "is" if literal is not None else "resolves to"
            raise UnsafeUrl(f"{host!r} {verb} {address} ({reason})")
    if scheme == "http" and not listed:
        raise UnsafeUrl(f"{host!r} is not allow-listed: use https")
    return addresses


@dataclass(frozen=True)
class FetchResult:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    url: str  # after redirects
    elapsed: float


def fetch(
    url: str, policy: OutboundPolicy, *, method: str = "GET", body: bytes | None = None,
    headers: dict[str, str] | None = None, max_bytes: int = 16 * 1024 * 1024, timeout: float = 10.0,
    max_redirects: int = 3,
) -> FetchResult:
    """One request (following redirects, each checked again) within `timeout` seconds of wall time in all
    (name lookups cannot be cut short); UnsafeUrl for a refused target, FetchError when the exchange fails.
    Non-2xx answers are results."""
    started = time.monotonic()
    deadline = started + timeout
    method = method.upper()
    sent = dict(headers or {})
    if not any(k.lower() == "user-agent" for k in sent):
        sent["User-Agent"] = "wagate"
    for hop in range(max_redirects + 1):
        try:
            addresses = check_url(url, policy)
        except UnresolvedHost as exc:
            raise FetchError("connection_error", str(exc)) from None
        status, answer, data = _exchange(url, addresses, method, body, sent, max_bytes, deadline)
        location = answer.get("location")
        if status not in REDIRECTS or not location:
            return FetchResult(status, answer, data, url, time.monotonic() - started)
        if hop == max_redirects:
            raise FetchError("too_many_redirects", f"{_where(url)}: more than {max_redirects} redirects")
        target = urljoin(url, location)
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            sent = {k: v for k, v in sent.items() if k.lower() not in ("content-type", "content-length")}
        if _origin(target) != _origin(url):
            sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIAL_HEADERS}
        url = target
    raise AssertionError("unreachable")


def _where(url: str) -> str:
    """Host and path: what errors may say about a URL (its query may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.hostname}{parts.path or '/'}"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; Host is still the URL's."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def _open(self) -> socket.socket:
        return socket.create_connection((str(self.address), self.port), self.timeout)

    def connect(self) -> None:
        self.sock = self._open()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS, the certificate checked against the URL's host name."""

    default_port = 443

    def connect(self) -> None:
        raw = self.sock = self._open()  # visible to the watchdog during the handshake
        try:
            self.sock = _tls_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class _Watchdog:
    """Cuts the connection at the deadline, so a server trickling bytes cannot outlast `timeout`."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self.conn: http.client.HTTPConnection | None = None
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        sock = self.conn.sock if self.conn is not None else None
        if sock is not None:
            # socket.socket's own shutdown: SSLSocket.shutdown would drop its SSL object under the reader.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _exchange(
    url: str, addresses: list[IPAddress], method: str, body: bytes | None, headers: dict[str, str],
    max_bytes: int, deadline: float,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    where = _where(url)
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    with _Watchdog(deadline - time.monotonic()) as watchdog:
        try:
            conn = _connect(kind, host, port, addresses, deadline, watchdog)
        except (OSError, ssl.SSLError) as exc:
            raise _failure(exc, where, fired=watchdog.fired) from None
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            answer: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                answer[key] = f"{answer[key]}, {value}" if key in answer else value
            data = b""
            if response.status not in REDIRECTS or "location" not in answer:
                length = answer.get("content-length", "")
                bodiless = method == "HEAD" or response.status in (204, 304)  # a length that says nothing
                if length.isdigit() and int(length) > max_bytes and not bodiless:
                    raise FetchError("too_large", f"{where}: body of {length} bytes is over {max_bytes}")
                data = _read_body(conn, response, max_bytes, deadline, where)
            if watchdog.fired:  # a cut connection can read as a short, well-formed answer
                raise FetchError("timeout", f"{where}: timed out")
            return response.status, answer, data
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(exc, where, fired=watchdog.fired) from None
        finally:
            conn.close()


def _connect(
    kind: type[_PinnedHTTPConnection], host: str, port: int, addresses: list[IPAddress], deadline: float,
    watchdog: _Watchdog,
) -> _PinnedHTTPConnection:
    """A connection to the first checked address that answers (a TLS failure is final)."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or watchdog.fired:
            raise TimeoutError("deadline passed")
        conn = watchdog.conn = kind(host, port, address, remaining)
        try:
            conn.connect()
            return conn
        except ssl.SSLError:
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            failure = exc
    raise failure


def _read_body(
    conn: http.client.HTTPConnection, response: http.client.HTTPResponse, max_bytes: int, deadline: float,
    where: str,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if conn.sock is not None:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = response.read(min(CHUNK, max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("too_large", f"{where}: body is over {max_bytes} bytes")


def _failure(exc: BaseException, where: str, *, fired: bool) -> FetchError:
    if fired or isinstance(exc, TimeoutError):
        return FetchError("timeout", f"{where}: timed out")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return FetchError("tls_error", f"{where}: TLS failed ({exc})")
    return FetchError("connection_error", f"{where}: {type(exc).__name__} {exc}".strip())
