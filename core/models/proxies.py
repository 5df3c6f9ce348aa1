"""A WhatsApp Web account's outbound proxy: the API body (credentials write-only) and what the API shows."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROXY_SCHEMES = ("http", "https", "socks5")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
#: `scheme://host:port` and nothing else (an optional `/`): no credentials, path, query or fragment in the URL.
PROXY_URL_PATTERN = rf"^(?:https?|socks5)://(?:\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*\.?):{_PORT}/?$"
_PROXY_URL = re.compile(PROXY_URL_PATTERN)
#: Basic authentication cannot carry a `:` in the user name; both are printable ASCII (HTTP header text).
USERNAME_PATTERN = r"^[!-9;-~]+$"
PASSWORD_PATTERN = r"^[ -~]+$"  # noqa: S105 - a pattern, not a secret
#: The cross-field rules below, in the JSON Schema: both credentials or neither, none for socks5.
PROXY_RULES: dict[str, Any] = {
    "dependentRequired": {"username": ["password"], "password": ["username"]},
    "if": {"properties": {"url": {"pattern": "^socks5:"}}, "required": ["url"]},
    "then": {"properties": {"username": {"type": "null"}, "password": {"type": "null"}}},
}


def proxy_server(url: str) -> str:
    """The proxy's `scheme://host:port` (lower-case scheme and host, no trailing `/`); ValueError when `url` is
    anything else."""
    if not _PROXY_URL.fullmatch(url):
        raise ValueError("must be scheme://host:port with scheme http, https or socks5 (no credentials, path or "
                         "query in the URL)")
    scheme, rest = url.rstrip("/").split("://", 1)
    host, port = rest.rsplit(":", 1)
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError("the proxy's IPv6 address is not valid") from None
    return f"{scheme}://{host.lower()}:{int(port)}"


class ProxySettings(BaseModel):
    """`proxy` of a web account: where its browser context connects through (credentials never returned)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=PROXY_RULES)

    url: str = Field(max_length=300, examples=["http://proxy.example.com:3128", "socks5://203.0.113.7:1080"],
                     json_schema_extra={"pattern": PROXY_URL_PATTERN},
                     description="`http://`, `https://` (TLS to the proxy) or `socks5://`, host and port only.")
    username: str | None = Field(default=None, min_length=1, max_length=256,
                                 json_schema_extra={"pattern": USERNAME_PATTERN},
                                 description="Proxy user (http and https proxies; Chromium has no SOCKS5 "
                                             "authentication). Stored encrypted, never returned.")
    password: str | None = Field(default=None, min_length=1, max_length=256,
                                 json_schema_extra={"pattern": PASSWORD_PATTERN},
                                 description="Proxy password; stored encrypted, never returned.")

    _url = field_validator("url")(proxy_server)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(USERNAME_PATTERN, value):
            raise ValueError("must be printable ASCII without spaces or `:`")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(PASSWORD_PATTERN, value):
            raise ValueError("must be printable ASCII")
        return value

    @model_validator(mode="after")
    def _credentials_fit(self) -> ProxySettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.username is not None and self.url.startswith("socks5:"):
            raise ValueError("Chromium cannot authenticate to a SOCKS5 proxy: use an http(s) proxy for "
                             "credentials, or a socks5 proxy that admits this host by address")
        return self

    @property
    def has_credentials(self) -> bool:
        return self.username is not None


class ProxyView(BaseModel):
    """An account's proxy as the API shows it: the server, and whether credentials are stored."""

    server: str = Field(examples=["socks5://203.0.113.7:1080"])
    has_credentials: bool
