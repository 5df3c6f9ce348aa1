"""The per-key rate limit, applied to every authenticated request before the resolver runs (public routes carry no
principal and are not limited here: API Gateway's stage throttling covers them)."""

from __future__ import annotations

from typing import Any

from core.errors import Unauthorized
from core.models.common import ErrorBody, Principal
from functions.api.context import principal_in
from functions.service import rate_limits
from functions.service.context import services


def check(event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(a 429 answer or None, the RateLimit headers every answer to this request carries)."""
    principal = _principal(event)
    if principal is None:
        return None, {}
    decision = rate_limits.take(services(), principal)
    if decision is None:
        return None, {}
    headers = rate_limits.headers(decision)
    if decision.allowed:
        return None, headers
    per_second, burst = rate_limits.rate_of(services(), principal)
    body = ErrorBody(code="rate_limited",
                     message=f"too many requests for this API key ({per_second:g}/s, {burst} at once); "
                             f"retry after {decision.retry_after}s",
                     details={"retry_after": decision.retry_after, "per_second": per_second, "burst": burst},
                     request_id=(event.get("requestContext") or {}).get("requestId"))
    return {"statusCode": 429, "headers": {"Content-Type": "application/json", **headers},
            "body": body.model_dump_json(), "isBase64Encoded": False}, headers


def with_headers(response: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The response with `headers` added (single- and multi-value forms, whichever it uses)."""
    if not headers:
        return response
    single = dict(response.get("headers") or {})
    single.update(headers)
    response = {**response, "headers": single}
    if response.get("multiValueHeaders"):
        multi = dict(response["multiValueHeaders"])
        multi.update({k: [v] for k, v in headers.items()})
        response["multiValueHeaders"] = multi
    return response


def _principal(event: dict[str, Any]) -> Principal | None:
    try:
        return principal_in((event.get("requestContext") or {}).get("authorizer"))
    except Unauthorized:
        return None
