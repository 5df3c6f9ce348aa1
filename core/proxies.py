"""Account proxies: what the accounts table keeps (the server in clear, the credentials KMS-encrypted under a
purpose only browser hosts may decrypt) and the Playwright proxy a host opens the account's context with.

The API encrypts and never decrypts: a PATCH replaces the whole proxy, so no function needs the credentials back.
The server is checked against the outbound rules of core/net.py when it is set and again by the host right before
it opens the context: a private, loopback or metadata address is refused unless OUTBOUND_ALLOW_HOSTS allows it.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

from core.models.proxies import ProxySettings, ProxyView
from core.net import OutboundPolicy, UnresolvedHost, UnsafeUrl, check_url
from core.store import secrets

#: Encryption context of the stored credentials: the browser hosts' task role may decrypt it, no function may.
PROXY_PURPOSE = "wagate-proxy-secret"


class ProxyRefused(Exception):
    """The account's proxy may not be used (or cannot be read): the account must not open, not even directly."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ProxyUnavailable(Exception):
    """The account's proxy cannot be used right now (its name does not resolve): tried again, never bypassed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def check_server(server: str, policy: OutboundPolicy, *, resolve: bool = True) -> list[Any]:
    """The addresses the proxy `scheme://host:port` may be reached at (UnsafeUrl, UnresolvedHost otherwise), by
    the webhook rules for addresses; plain `http://` to a public proxy is allowed (the proxy protocol is)."""
    parts = urlsplit(server)
    return check_url(f"https://{parts.netloc}/", policy, resolve=resolve)


def stored_map(proxy: ProxySettings, policy: OutboundPolicy) -> dict[str, Any]:
    """What the accounts table keeps: `server`, plus `credentials_ciphertext` when credentials are given.
    UnsafeUrl when the server is not an allowed target (a name that does not resolve yet is accepted: the host
    checks again before it connects)."""
    with contextlib.suppress(UnresolvedHost):
        check_server(proxy.url, policy)
    stored: dict[str, Any] = {"server": proxy.url}
    if proxy.username is not None and proxy.password is not None:
        plaintext = json.dumps({"username": proxy.username, "password": proxy.password}, separators=(",", ":"))
        stored["credentials_ciphertext"] = secrets.encrypt(plaintext, purpose=PROXY_PURPOSE)
    return stored


def view(stored: Any) -> ProxyView | None:
    """The API's view of a stored proxy (never the credentials); None when there is none or it is damaged."""
    if not isinstance(stored, dict) or not isinstance(stored.get("server"), str):
        return None
    return ProxyView(server=stored["server"], has_credentials=bool(stored.get("credentials_ciphertext")))


def for_browser(stored: Any, policy: OutboundPolicy) -> dict[str, str] | None:
    """Playwright's `proxy` for a new context (None: the account has no proxy). Checks the server again and
    decrypts the credentials (blocking: DNS and KMS). An `http`/`socks5` proxy given by name is pinned to the
    address just checked, so a name that changes its answer cannot lead the browser elsewhere; an `https`
    proxy keeps its name (its certificate is checked against it). ProxyRefused when it may not be used,
    ProxyUnavailable when its name does not resolve now."""
    if stored is None:
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("server"), str):
        raise ProxyRefused("proxy_invalid", "the stored proxy is damaged; set it again")
    server = stored["server"]
    try:
        addresses = check_server(server, policy)
    except UnresolvedHost as exc:  # DNS may answer again: the host's recovery tries again
        raise ProxyUnavailable("proxy_unresolved", str(exc)) from None
    except UnsafeUrl as exc:
        raise ProxyRefused("proxy_not_allowed", str(exc)) from None
    parts = urlsplit(server)
    if parts.scheme != "https" and addresses:
        address = addresses[0]
        host = f"[{address}]" if address.version == 6 else str(address)
        server = f"{parts.scheme}://{host}:{parts.port}"
    proxy = {"server": server}
    ciphertext = stored.get("credentials_ciphertext")
    if ciphertext:
        try:
            credentials = json.loads(secrets.decrypt(str(ciphertext), purpose=PROXY_PURPOSE))
            proxy.update(username=str(credentials["username"]), password=str(credentials["password"]))
        except (ValueError, KeyError, TypeError):
            raise ProxyRefused("proxy_credentials_unreadable",
                               "the stored proxy credentials cannot be decrypted; set them again") from None
    return proxy
