"""Field validators shared by several models."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

_PHONE = re.compile(r"^\+?[1-9]\d{6,14}$")


def normalise_phone(value: str | None) -> str | None:
    """E.164 digits without `+` (`+1 555-123 4567` → `15551234567`)."""
    if value is None:
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if not _PHONE.match(compact):
        raise ValueError("must be a phone number in international format, e.g. +15551234567")
    return compact.lstrip("+")


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metadata must be JSON and at most 8 KB."""
    if value is None:
        return None
    if len(json.dumps(value, separators=(",", ":"), default=str)) > 8192:
        raise ValueError("must be at most 8192 bytes of JSON")
    return value


def is_private_host(host: str) -> bool:
    """True for loopback, private, link-local and other non-public literal addresses and local names."""
    lowered = host.lower().strip("[]")
    if lowered in {"localhost", "localhost.localdomain"} or lowered.endswith((".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(lowered)
    except ValueError:
        return False
    return not address.is_global


def check_webhook_url(value: str) -> str:
    """HTTPS URL to a public host (private targets are refused here and again at delivery time)."""
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return value
