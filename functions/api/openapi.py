"""What the OpenAPI document says about each route, in one place: its success answer, every error status it can
give (all with the error body) and the server it is served from."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from core.models.common import ErrorBody

#: Where the API answers unless a request says otherwise: API Gateway's stage (template.yaml, StageName).
STAGE_PATH = "/v1"

#: Statuses any route can answer, from the resolver, the guards in front of it or API Gateway's own responses.
COMMON_ERRORS = {
    400: "Bad request: a body that is not JSON, a cursor this API did not issue, ...",
    422: "Validation error: `details` lists each problem",
    429: "Too many requests (the API key's rate limit, see the `RateLimit` headers, or a per-account budget): "
         "retry after `Retry-After` seconds",
    503: "A storage or queue service is unavailable: retry after `Retry-After` seconds",
}
#: Statuses of routes behind the authorizer.
AUTHENTICATED_ERRORS = {
    401: "No or bad API key or token",
    403: "Role or scope forbids it",
    404: "Not found",
}
BODY_ERRORS = {413: "Request body too large"}


class RestResolver(APIGatewayRestResolver):
    """The REST resolver, documenting the server at the base path the request came through (Swagger UI too)."""

    def _get_base_path(self) -> str:
        return base_path(self.current_event)


def base_path(event: APIGatewayProxyEvent) -> str:
    """The part of the requested path before the resource path: the stage on an execute-api URL (`/v1`), a
    custom domain's base path, or "" when the API answers at the root (the local API does both)."""
    requested = str(event.request_context.path or "")
    resource_path = event.path.rstrip("/")
    if resource_path and requested.rstrip("/").endswith(resource_path):
        return requested.rstrip("/")[: -len(resource_path)].rstrip("/")
    return ""


def document_responses(app: APIGatewayRestResolver) -> None:
    """Complete every route's documented responses: its success status with its return model (powertools drops
    it once a route lists any response), the error body (not the return model) for every error status, no body
    for 204, and the error statuses every route shares."""
    for route in app._static_routes + app._dynamic_routes:
        if not route.include_in_schema:
            continue
        responses: dict[int, Any] = {int(code): dict(spec) for code, spec in (route.responses or {}).items()}
        if not any(200 <= code < 300 for code in responses):
            responses[route.status_code] = {"description": "OK"}  # its content comes from the return annotation
        shared = {**COMMON_ERRORS}
        if route.security != [{}]:  # [{}]: a public route, no authorizer
            shared.update(AUTHENTICATED_ERRORS)
        if route.method.upper() in {"POST", "PUT", "PATCH"}:
            shared.update(BODY_ERRORS)
        for code, description in shared.items():
            responses.setdefault(code, {"description": description})
        for code, spec in responses.items():
            if code >= 400:
                spec["content"] = {"application/json": {"model": ErrorBody}}
            elif code == 204:
                spec["content"] = {}
        route.responses = dict(sorted(responses.items()))
