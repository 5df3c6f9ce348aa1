"""Per-request helpers: the caller's principal and correlation id."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.errors import Unauthorized
from core.models.common import Principal, Role

Resolver = APIGatewayRestResolver | APIGatewayRouter


def principal_of(app: Resolver) -> Principal:
    """The principal the authorizer put in the request context."""
    authorizer = app.current_event.request_context.authorizer
    return principal_in(dict(authorizer.raw_event) if authorizer is not None else {})


def principal_in(raw: dict[str, Any] | None) -> Principal:
    """The principal of an authorizer context (`requestContext.authorizer` of the event)."""
    raw = raw or {}
    if not raw.get("tenant_id") or not raw.get("role") or raw.get("role") not in {r.value for r in Role}:
        raise Unauthorized("missing or invalid API key")
    scope = str(raw.get("account_ids") or "")
    return Principal(key_id=str(raw.get("key_id", "")), tenant_id=str(raw["tenant_id"]), role=Role(raw["role"]),
                     account_ids=tuple(a for a in scope.split(",") if a),
                     credential=raw["credential"] if raw.get("credential") in ("jwt", "idp") else "key",
                     rate_limit=str(raw.get("rate_limit") or ""))


def correlation_id_of(app: Resolver) -> str:
    """The caller's X-Correlation-Id, or the request id."""
    headers = app.current_event.headers or {}
    given = next((v for k, v in headers.items() if k.lower() == "x-correlation-id"), None)
    return (given or app.current_event.request_context.request_id or "")[:200]
