"""Lambda entry point of the Cloud API compatibility routes: `/{version}/{object_id}/messages`, `…/media` and
`/{version}/{object_id}`, in Meta's request, answer and error shapes.

The routes have no API Gateway authorizer: the bearer API key is checked here, with the authorizer's lookup, so
a missing, wrong or revoked key is Meta's error 190 (what Cloud API SDKs understand) rather than the gateway's
401. They also receive every path under an unknown first segment (API Gateway allows one variable resource per
level): those keep wagate's `route_not_found`.
"""

from __future__ import annotations

import base64
import binascii
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from core.errors import DomainError, RateLimited
from core.models.common import Principal
from core.models.graph import GraphErrorBody, GraphErrorData, GraphErrorDetail
from core.observability import logger, metrics, tracer
from functions.api import audit, limits
from functions.api.context import correlation_id_of
from functions.api.errors import error_response, is_dependency_outage
from functions.service import graph_compat as compat
from functions.service import rate_limits
from functions.service.api_keys import authenticate, presented_key
from functions.service.context import services
from functions.service.graph_compat import GraphFailure

app = APIGatewayRestResolver()
# The key checked in this function (no authorizer puts it in the event), for the audit hook after the answer.
_caller_of_request: ContextVar[Principal | None] = ContextVar("graph_caller", default=None)
_rate_headers: ContextVar[dict[str, str]] = ContextVar("graph_rate_headers", default={})  # noqa: B039 - never mutated


class RouteNotFound(Exception):
    """Not a Graph API path at all: wagate's own 404."""


@app.post("/<version>/<object_id>/messages")
def send_message(version: str, object_id: str) -> Response[str]:
    principal = _caller(version)
    answer, accepted = compat.send(services(), principal, object_id, _body(), idempotency_key=_header(
        "idempotency-key"), correlation_id=correlation_id_of(app))
    if not accepted.replayed:
        metrics.add_metric(name="MessagesAccepted", unit="Count", value=1)
    logger.info("message accepted (Cloud API route)", extra={
        "account_id": accepted.message.account_id, "message_id": accepted.message.message_id,
        "replayed": accepted.replayed})
    return _answer(answer)


@app.post("/<version>/<object_id>/media")
def upload_media(version: str, object_id: str) -> Response[str]:
    principal = _caller(version)
    answer = compat.upload(services(), principal, object_id, _body(), _header("content-type") or "")
    logger.info("media uploaded (Cloud API route)", extra={"media_id": answer.id})
    metrics.add_metric(name="MediaUploads", unit="Count", value=1)
    return _answer(answer)


@app.get("/<version>/<object_id>")
def get_object(version: str, object_id: str) -> Response[str]:
    return _answer(compat.describe(services(), _caller(version), object_id))


@app.delete("/<version>/<object_id>")
def delete_object(version: str, object_id: str) -> Response[str]:
    return _answer(compat.delete(services(), _caller(version), object_id))


def _caller(version: str) -> Principal:
    """The version checked, then the key: `Authorization: Bearer <API key>` (or `X-Api-Key`)."""
    if not compat.is_graph_path(version):
        raise RouteNotFound
    compat.check_version(version)
    principal = authenticate(services(), presented_key(app.current_event.headers))
    logger.append_keys(tenant_id=principal.tenant_id, key_id=principal.key_id)
    _caller_of_request.set(principal)
    decision = rate_limits.take(services(), principal)  # the key's bucket, shared with the REST API
    if decision is not None:
        _rate_headers.set(rate_limits.headers(decision))
        if not decision.allowed:
            raise RateLimited("too many requests for this API key", retry_after=decision.retry_after)
    return principal


def _header(name: str) -> str | None:
    headers = app.current_event.headers or {}
    return next((str(v) for k, v in headers.items() if k.lower() == name), None)


def _body() -> bytes:
    """The raw request body (API Gateway base64-encodes binary bodies), at most `MAX_BODY_BYTES`."""
    event = app.current_event
    body = event.body or ""
    limit = services().settings.max_body_bytes
    size = len(body) * 3 // 4 if event.is_base64_encoded else len(body)
    if size > limit:
        raise GraphFailure(413, 100, "(#100) Request body too large",
                           details=f"the request body is larger than {limit} bytes: upload big files with POST /media "
                                   "(a presigned upload) and send their id", wagate_code="payload_too_large")
    if not event.is_base64_encoded:
        return body.encode("utf-8", "surrogateescape")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise GraphFailure(400, 100, "(#100) Invalid parameter", details="the request body could not be read",
                           wagate_code="invalid_body") from None


def _answer(model: BaseModel) -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json())


def _failure(failure: GraphFailure) -> Response[str]:
    request_id = app.current_event.request_context.request_id if app.current_event else None
    detail = GraphErrorDetail(
        message=failure.message, code=failure.code, error_subcode=failure.subcode, fbtrace_id=request_id,
        error_data=GraphErrorData(details=failure.details) if failure.details else None,
        wagate_code=failure.wagate_code)
    headers = {"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{failure.message}"'} \
        if failure.code == 190 else {}
    if failure.retry_after:
        headers["Retry-After"] = str(failure.retry_after)
    return Response(status_code=failure.status, content_type=content_types.APPLICATION_JSON,
                    body=GraphErrorBody(error=detail).model_dump_json(exclude_none=True), headers=headers)


@app.exception_handler(GraphFailure)
def graph_failure(exc: GraphFailure) -> Response[str]:
    return _failure(exc)


@app.exception_handler(DomainError)
def domain_error(exc: DomainError) -> Response[str]:
    if exc.code == "unauthorized":
        metrics.add_metric(name="AuthRejected", unit="Count", value=1)
        audit.refused(app.current_event.raw_event)
    return _failure(compat.meta_error(exc))


@app.exception_handler(RouteNotFound)
def route_not_found(_: RouteNotFound) -> Response[Any]:
    return _route_not_found()


def _route_not_found() -> Response[Any]:
    event = app.current_event
    return error_response(app, 404, "route_not_found", f"no route for {event.http_method} {event.path}")


@app.not_found
def not_found(_: NotFoundError) -> Response[Any]:
    """A path of the Graph API's shape that wagate does not serve, or anything else under an unknown segment."""
    event = app.current_event
    segments = [s for s in event.path.split("/") if s]
    if not segments or not compat.is_graph_path(segments[0]):
        return _route_not_found()
    try:
        compat.check_version(segments[0])
    except GraphFailure as exc:
        return _failure(exc)
    if len(segments) == 2 or (len(segments) == 3 and segments[2] in {"messages", "media"}):
        return _failure(compat.unknown_object(segments[1], event.http_method))
    rest = "/".join(segments[2:]) or segments[0]
    return _failure(GraphFailure(400, 2500, f"Unknown path components: /{rest[:200]}",
                                 details="wagate serves /{version}/{phone_number_id}/messages, /{version}/"
                                         "{phone_number_id}/media and /{version}/{media_id}",
                                 wagate_code="route_not_found"))


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[str]:
    if is_dependency_outage(exc):
        logger.warning("AWS dependency unavailable", extra={"error": type(exc).__name__})
        return _failure(GraphFailure(503, 2, "(#2) Service temporarily unavailable", retry_after=5,
                                     details="a storage or queue service is unavailable; retry after the delay",
                                     wagate_code="service_unavailable"))
    logger.exception("unhandled error")
    metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
    # Meta's code 1 ("API Unknown: wait and retry"); never a bare 500 on a route SDKs retry by their own rules.
    return _failure(GraphFailure(503, 1, "(#1) An unknown error occurred", retry_after=5,
                                 details="an unexpected error occurred; retry or report the fbtrace_id",
                                 wagate_code="internal_error"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event of a Cloud API compatibility route."""
    _caller_of_request.set(None)
    _rate_headers.set({})
    response = limits.with_headers(app.resolve(event, context), _rate_headers.get())
    audit.record_request(event, response, _caller_of_request.get())
    return response
