"""The one place that maps exceptions to HTTP answers with the error body."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError

from core import errors
from core.models.common import ErrorBody
from core.observability import logger, metrics

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PreconditionFailed: 412,
    errors.PayloadTooLarge: 413,
    errors.Unprocessable: 422,
    errors.RateLimited: 429,
    errors.DependencyFailure: 503,
}


RETRY_AFTER = {"Retry-After": "5"}


def is_dependency_outage(exc: BaseException) -> bool:
    """DynamoDB/SQS/S3 unreachable, timing out or throttling (PynamoDB wraps botocore's errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BotoCoreError):
            return True
        if isinstance(current, ClientError) and current.response.get("Error", {}).get("Code") in THROTTLING:
            return True
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
    return False


THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
              "ServiceUnavailable", "InternalServerError", "InternalFailure"}


def error_response(
    app: APIGatewayRestResolver, status: int, code: str, message: str, details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A JSON error answer carrying the request id."""
    request_id = app.current_event.request_context.request_id if app.current_event else None
    body = ErrorBody(code=code, message=message, details=details, request_id=request_id)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=body.model_dump_json(), headers=headers)


#: Path ids whose not-found code is not `<name>_not_found` (legacy `/sessions` ids are account ids).
NOT_FOUND_CODES = {"session_id": "account_not_found", "key_id": "api_key_not_found"}


def _unknown_id(details: list[dict[str, Any]]) -> str | None:
    """The (first) path id parameter, when ids that fail their pattern are the request's only problems."""
    locs = [d["loc"] for d in details]
    if locs and all(len(loc) == 2 and loc[0] == "path" and str(loc[1]).endswith("_id") for loc in locs):
        return str(locs[0][1])
    return None


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        details.append({"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")})
    return details


def register(app: APIGatewayRestResolver) -> None:
    """Install the handlers on the resolver."""

    @app.exception_handler(errors.DomainError)
    def domain_error(exc: errors.DomainError) -> Response[Any]:
        status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
        if status >= 500:
            logger.warning("dependency failure", extra={"error_code": exc.code})
            return error_response(app, status, exc.code, exc.message, exc.details, headers=RETRY_AFTER)
        if isinstance(exc, errors.RateLimited):
            return error_response(app, status, exc.code, exc.message, exc.details,
                                  headers={"Retry-After": str(exc.retry_after)})
        return error_response(app, status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def validation_error(exc: RequestValidationError) -> Response[Any]:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(app, 400, "invalid_json", "the request body is not valid JSON", details)
        missing = _unknown_id(details)
        if missing is not None:  # an id no resource can have (`/accounts/Ā`) names nothing: not found
            name, value = missing, (app.current_event.path_parameters or {}).get(missing, "")
            return error_response(app, 404, NOT_FOUND_CODES.get(name, f"{name[:-3]}_not_found"),
                                  f"no {name[:-3].replace('_', ' ')} {value[:100]!r}")
        return error_response(app, 422, "validation_error", "the request is not valid", details)

    @app.not_found
    def not_found(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        path, method = event.path, event.http_method
        allowed = sorted({route.method for route in app._static_routes + app._dynamic_routes
                          if route.rule.match(path) and route.method != method})
        if allowed:
            return error_response(app, 405, "method_not_allowed", f"{method} is not allowed on {path}",
                                  {"allowed": allowed}, headers={"Allow": ", ".join(allowed)})
        return error_response(app, 404, "route_not_found", f"no route for {method} {path}")

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[Any]:
        if is_dependency_outage(exc):
            logger.warning("AWS dependency unavailable", extra={"error": type(exc).__name__})
            return error_response(app, 503, "service_unavailable", "a storage or queue service is unavailable; "
                                  "retry after the indicated delay", headers=RETRY_AFTER)
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
        return error_response(app, 500, "internal_error",
                              "an unexpected error occurred; retry or report the request_id")
