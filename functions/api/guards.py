"""Checks on a REST proxy event before the resolver parses it: inputs that would otherwise end in a 500.

The API speaks JSON only, so a body is read as JSON whatever `Content-Type` says (curl -d sends a form type,
some clients `text/json`); a body that is not UTF-8, nests deeper than any request needs or holds a string
that is not Unicode (a lone `\\ud800` escape) is refused here with the usual error body.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.config import get_settings
from core.models.common import ErrorBody

#: No request body of the API nests deeper than this (account metadata stops at 16 levels).
MAX_JSON_DEPTH = 64
JSON = "application/json"


def screen(event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(an error answer, or None) and the event to resolve: its body UTF-8 text, its Content-Type JSON."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    limit = get_settings().max_body_bytes
    # 413 before any parsing: validating a huge body first would waste the time the limit protects.
    if len(event.get("body") or "") > limit:
        return _refusal(413, "payload_too_large", f"request body is larger than {limit} bytes", {"limit": limit},
                        request_id), event
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            return _refusal(400, "invalid_json", "the request body is not UTF-8 text", None, request_id), event
        event = {**event, "body": body, "isBase64Encoded": False}
    problem = _json_problem(body) if body else None
    if problem is not None:
        return _refusal(400, "invalid_json", problem, None, request_id), event
    return None, _as_json(event)


def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every Content-Type header says JSON (the resolver would answer 500 to any type it does not parse)."""
    headers = dict(event.get("headers") or {})
    multi = dict(event.get("multiValueHeaders") or {})
    names = [k for k in headers if k.lower() == "content-type"]
    multi_names = [k for k in multi if k.lower() == "content-type"]
    if all(_is_json(headers[k]) for k in names) and all(_is_json(v) for k in multi_names for v in multi[k]):
        return event
    headers.update(dict.fromkeys(names, JSON))
    multi.update({k: [JSON] for k in multi_names})
    return {**event, "headers": headers or None, "multiValueHeaders": multi or None}


def _is_json(content_type: Any) -> bool:
    return str(content_type).split(";")[0].strip().lower() == JSON and str(content_type).startswith(JSON)


def _json_problem(body: str) -> str | None:
    """Why a JSON body cannot be taken though it parses, or None (a body that does not parse is the resolver's
    invalid_json, with the position)."""
    try:
        value = json.loads(body)
    except RecursionError:
        return f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
    except ValueError:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:  # iteratively: a deep body must not exhaust the stack here either
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
            if isinstance(current, dict):
                stack.extend((key, depth) for key in current)
            stack.extend((child, depth + 1) for child in (current.values() if isinstance(current, dict) else current))
        elif isinstance(current, str) and not _is_unicode(current):
            return "the request body has a string that is not Unicode (an unpaired \\ud800-\\udfff escape)"
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refusal(status: int, code: str, message: str, details: Any, request_id: str | None) -> dict[str, Any]:
    body = ErrorBody(code=code, message=message, details=details, request_id=request_id)
    return {"statusCode": status, "headers": {"Content-Type": JSON}, "body": body.model_dump_json(),
            "isBase64Encoded": False}
