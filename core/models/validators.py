"""Field validators shared by several models."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, PlainValidator
from typing_extensions import TypeAliasType

#: A phone number in international format as the API takes it: 7 to 15 ASCII digits, the first not 0, an optional
#: leading `+`, spaces, dots, dashes and parentheses anywhere. The JSON Schema of phone fields carries the same
#: pattern, so a request the schema allows is a request the API takes.
PHONE_BODY = r"[ ().-]*\+?[ ().-]*[1-9](?:[ ().-]*[0-9]){6,14}[ ().-]*"
PHONE_PATTERN = f"^{PHONE_BODY}$"
_PHONE = re.compile(PHONE_PATTERN)  # [0-9], never \d: Python's \d takes the digits of every script
_SEPARATORS = re.compile(r"[ ().-]")
#: Numbers DynamoDB can store, in a rule a JSON Schema can state: below 1E+38 in magnitude (so an integer has at
#: most 38 digits, DynamoDB's precision; a float has 17) and 0 or at least 1E-130 (DynamoDB's smallest).
_NUMBER_LIMIT = 10**38
_SMALLEST = 1e-130
MAX_METADATA_DEPTH = 16  # DynamoDB nests maps and lists 32 levels deep


def normalise_phone(value: str | None) -> str | None:
    """E.164 digits without `+` (`+1 555-123 4567` → `15551234567`)."""
    if value is None:
        return None
    if not _PHONE.fullmatch(value):  # fullmatch: `$` alone lets a trailing newline through
        raise ValueError("must be a phone number in international format (ASCII digits), e.g. +15551234567")
    return compact_phone(value)


def compact_phone(value: str) -> str:
    """A phone number matching PHONE_PATTERN without its separators and `+`."""
    return _SEPARATORS.sub("", value).lstrip("+")


def check_metadata(value: Any) -> dict[str, Any]:
    """Metadata must be a JSON object DynamoDB can store (numbers, nesting) and at most 8 KB."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError("must be a JSON object")
    check_storable(value, MAX_METADATA_DEPTH)
    if len(json.dumps(value, separators=(",", ":"), default=str)) > 8192:
        raise ValueError("must be at most 8192 bytes of JSON")
    return value


def check_storable(value: Any, max_depth: int) -> None:
    """ValueError unless DynamoDB can store `value` as a map or list: numbers as MetadataValue says, keys not empty
    (attribute names are not), at most `max_depth` levels of nesting (walked without recursion: a deep value must
    not exhaust the stack here either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth > max_depth:
                raise ValueError(f"must not nest deeper than {max_depth} levels")
            if isinstance(current, dict) and "" in current:
                raise ValueError("keys must not be empty")
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(current, float | int) and not isinstance(current, bool):
            _check_number(current)


def _check_number(number: float | int) -> None:
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if not -_NUMBER_LIMIT < number < _NUMBER_LIMIT:  # int and float compare exactly
        raise ValueError("numbers must be below 1E+38 in magnitude")
    if number and abs(number) < _SMALLEST:
        raise ValueError("numbers must be 0 or at least 1E-130 in magnitude")


_MetadataKey = Annotated[str, Field(min_length=1)]
_MetadataInt = Annotated[int, Field(gt=-_NUMBER_LIMIT, lt=_NUMBER_LIMIT)]
_MetadataFloat = Annotated[float, Field(gt=-_NUMBER_LIMIT, lt=_NUMBER_LIMIT, json_schema_extra={
    "anyOf": [{"const": 0}, {"maximum": -_SMALLEST}, {"minimum": _SMALLEST}]})]
MetadataValue = TypeAliasType(
    "MetadataValue",
    "bool | _MetadataInt | _MetadataFloat | str | list[MetadataValue] | dict[_MetadataKey, MetadataValue] | None",
)
#: Free-form account metadata: validated by check_metadata, documented (JSON Schema) with the same number rule.
Metadata = Annotated[dict[str, Any],
                     PlainValidator(check_metadata, json_schema_input_type=dict[_MetadataKey, MetadataValue])]


_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*")


def iso_datetime_text(value: Any) -> Any:
    """A query parameter typed datetime takes ISO 8601 text only (pydantic alone also reads `0.5` as a Unix time,
    which the documented format `date-time` does not allow)."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-12-02T10:00:00Z")
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


#: An absolute http(s) URL: a host (name, IPv4, or IPv6 in brackets), no credentials, no spaces or control
#: characters. The JSON Schemas of URL fields carry it (no \s in it: Python, Rust and ECMA disagree on \s); which
#: hosts a URL may reach is the service's check (core.net, 400 webhook_url_not_allowed), here and at delivery.
WEBHOOK_URL_PATTERN = (r"^[Hh][Tt][Tt][Pp][Ss]?://(\[[0-9A-Fa-f:.]+\]|[^\x00-\x20\x7f/?#@\[\]:]+)(:[0-9]{0,5})?"
                       r"([/?#][^\x00-\x20\x7f]*)?$")
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)


def check_webhook_url(value: str) -> str:
    """An http(s) URL as WEBHOOK_URL_PATTERN says (private targets are refused by the service and at delivery)."""
    if not _WEBHOOK_URL.fullmatch(value):
        raise ValueError("must be an absolute http(s) URL")
    return value
