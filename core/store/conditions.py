"""Small helpers every repository shares: conditional-failure detection and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import InvalidRequest


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """Opaque cursor from DynamoDB's LastEvaluatedKey."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """LastEvaluatedKey from a cursor; a tampered cursor is a 400, not a 500."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not valid", code="invalid_cursor") from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise InvalidRequest("cursor is not valid", code="invalid_cursor")
    return key


def is_conditional(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause in {"ConditionalCheckFailedException", "TransactionCanceledException"}
