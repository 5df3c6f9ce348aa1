"""`/sessions`: the legacy alias of `/accounts`, with the old field names and deprecation headers.

Each route calls the same service function as its `/accounts` twin and renames fields both ways
(functions/models/legacy.py). Every answer, errors included, carries `Deprecation`, `Sunset` and a
`Link` to the twin; with `LEGACY_API_ENABLED=false` every legacy path answers 410 Gone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.config import get_settings
from core.errors import Gone, Unauthorized
from core.models.accounts import (
    ACCOUNT_ID_PATTERN,
    Account,
    AccountAction,
    PairingCode,
    PairingCodeRequest,
    QrCode,
)
from core.models.common import Page
from core.models.envelope import OutboundMessage
from core.models.legacy import (
    DEPRECATED_SINCE,
    LegacyStatus,
    Session,
    SessionActionAccepted,
    SessionCreate,
    SessionMessage,
    SessionMessageAccepted,
    SessionUpdate,
    connection_status_of,
    to_legacy,
)
from core.models.messages import Direction
from core.observability import logger, metrics
from functions.api.context import Resolver, correlation_id_of, principal_of
from functions.api.routes.accounts import ERRORS, IF_MATCH_PATTERN, Cursor, Limit, qr_response
from functions.api.routes.messages import MessageId, accepted_headers
from functions.service import accounts
from functions.service import messages as message_service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
SessionId = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN, description="The session (= account) id.")]
LEGACY_PATH = re.compile(r"^/sessions(?=/|$)")
RETIRED = "the /sessions API is retired: use /accounts (see the Link header)"


def successor_path(path: str) -> str:
    """The `/accounts` twin of a `/sessions` path."""
    return LEGACY_PATH.sub("/accounts", path, count=1)


def http_date(value: str) -> str:
    """An ISO date or datetime (UTC unless it says otherwise) as an RFC 9110 HTTP-date."""
    moment = datetime.fromisoformat(value)
    return format_datetime((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC), usegmt=True)


def legacy_headers(path: str, sunset: str) -> dict[str, str]:
    """RFC 9745 `Deprecation`, RFC 8594 `Sunset` and the successor `Link` for a legacy path."""
    headers = {"Deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",
               # percent-encoded: a path id like `Ā` must not make the header non-ASCII (or break its <>)
               "Link": f'<{quote(successor_path(path), safe="/")}>; rel="successor-version"'}
    try:
        headers["Sunset"] = http_date(sunset)
    except ValueError:  # a typo in LEGACY_SUNSET must not break every legacy answer
        logger.warning("LEGACY_SUNSET is not an ISO date; no Sunset header", extra={"legacy_sunset": sunset})
    return headers


def _record_call(app: Resolver) -> None:
    """Count one legacy call per request, by API key: the metric for alarms, the log line per key."""
    if app.context.get("legacy_call"):
        return
    app.context["legacy_call"] = True  # cleared by the resolver after each request
    try:
        key_id = principal_of(app).key_id
    except Unauthorized:
        key_id = ""  # the ANY catch-alls reach the function without a key
    event = app.current_event
    # key_id as metadata, not a dimension: a dimension would make a custom metric per key and,
    # being per invocation in powertools, would also split every other metric of the request.
    metrics.add_metric(name="LegacyApiCalls", unit="Count", value=1)
    metrics.add_metadata(key="key_id", value=key_id)
    logger.append_keys(legacy_call=True, key_id=key_id)
    logger.info("legacy api call", extra={"method": event.http_method, "path": event.path,
                                          "successor": successor_path(event.path)})


def _legacy_route(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Around every legacy route: count it, refuse it once retired, add the deprecation headers."""
    _record_call(app)
    if not get_settings().legacy_api_enabled:
        raise Gone(RETIRED, code="legacy_api_retired")
    response = next_middleware(app)
    response.headers.update(legacy_headers(app.current_event.path, get_settings().legacy_sunset))
    return response


def install(app: APIGatewayRestResolver) -> None:
    """Serve the legacy routes on `app` (after errors.register: their error answers get the headers too)."""
    app.include_router(router)
    # Request validation runs before route middlewares and errors are rendered by the app's handlers,
    # so the headers (and the 410 once retired) are added around those handlers, for legacy paths only.
    manager = app.exception_handler_manager
    gone = manager.lookup_exception_handler(Gone)
    manager.update_exception_handlers({
        exc_class: _legacy_errors(app, handler, gone)
        for exc_class, handler in manager.get_registered_handlers().items()
    })


def _legacy_errors(app: APIGatewayRestResolver, handler: Callable[[Exception], Response[Any]],
                   gone: Callable[[Exception], Response[Any]] | None) -> Callable[[Exception], Response[Any]]:
    def answer(exc: Exception) -> Response[Any]:
        path = app.current_event.path
        if not LEGACY_PATH.match(path):
            return handler(exc)
        _record_call(app)
        settings = get_settings()
        if not settings.legacy_api_enabled and gone is not None:
            response = gone(Gone(RETIRED, code="legacy_api_retired"))
        else:
            response = handler(exc)
        response.headers.update(legacy_headers(path, settings.legacy_sunset))
        return response
    return answer


LEGACY: dict[str, Any] = {"tags": ["legacy sessions"], "deprecated": True, "middlewares": [_legacy_route]}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _session(status: int, account: Account, headers: dict[str, str] | None = None) -> Response[Session]:
    return _json(status, to_legacy(account, Session), {"ETag": f'"{account.version}"', **(headers or {})})


@router.post("/sessions", summary="Create a session (legacy POST /accounts)",
             responses={201: {"description": "Created", "content": {"application/json": {"model": Session}}},
                        **ERRORS}, **LEGACY)
def create_session(body: SessionCreate) -> Response[Session]:
    account = accounts.create_account(services(), principal_of(router), body)
    logger.info("account created", extra={"account_id": account.account_id})
    metrics.add_metric(name="AccountsCreated", unit="Count", value=1)
    return _session(201, account, {"Location": f"/sessions/{account.account_id}"})


@router.get("/sessions", summary="List sessions (legacy GET /accounts)", responses=ERRORS, **LEGACY)
def list_sessions(
    status: Annotated[LegacyStatus | None, Query(description="Only sessions in this legacy status.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[Session]:
    items, next_cursor = accounts.list_accounts(
        services(), principal_of(router), status=connection_status_of(status) if status else None,
        limit=limit, cursor=cursor)
    return Page[Session](items=[to_legacy(a, Session) for a in items], next_cursor=next_cursor)


@router.get("/sessions/<session_id>", summary="Get a session (legacy)", responses=ERRORS, **LEGACY)
def get_session(session_id: SessionId) -> Response[Session]:
    return _session(200, accounts.get_account(services(), principal_of(router), session_id))


@router.patch("/sessions/<session_id>", summary="Update a session (legacy; optimistic locking)",
              responses={412: {"description": "Version conflict"}, **ERRORS}, **LEGACY)
def update_session(
    session_id: SessionId,
    body: SessionUpdate,
    if_match: Annotated[str | None, Header(alias="If-Match", description="ETag from a GET.",
                                           json_schema_extra={"pattern": IF_MATCH_PATTERN})] = None,
) -> Response[Session]:
    return _session(200, accounts.update_account(services(), principal_of(router), session_id, body, if_match))


@router.delete("/sessions/<session_id>", summary="Delete a session (legacy)",
               responses={204: {"description": "Deleted"}, **ERRORS}, **LEGACY)
def delete_session(session_id: SessionId) -> Response[None]:
    accounts.delete_account(services(), principal_of(router), session_id)
    logger.info("account deleted", extra={"account_id": session_id})
    return Response(status_code=204, body=None)


def _action(session_id: str, action: AccountAction) -> Response[SessionActionAccepted]:
    accepted = accounts.request_action(services(), principal_of(router), session_id, action)
    logger.info("account action requested", extra={"account_id": session_id, "action": action.value})
    return _json(202, to_legacy(accepted, SessionActionAccepted))


@router.post("/sessions/<session_id>/start", summary="Start a session (legacy)", responses=ERRORS,
             status_code=202, **LEGACY)
def start_session(session_id: SessionId) -> Response[SessionActionAccepted]:
    return _action(session_id, AccountAction.START)


@router.post("/sessions/<session_id>/stop", summary="Stop a session (legacy)", responses=ERRORS,
             status_code=202, **LEGACY)
def stop_session(session_id: SessionId) -> Response[SessionActionAccepted]:
    return _action(session_id, AccountAction.STOP)


@router.post("/sessions/<session_id>/restart", summary="Restart a session (legacy)", responses=ERRORS,
             status_code=202, **LEGACY)
def restart_session(session_id: SessionId) -> Response[SessionActionAccepted]:
    return _action(session_id, AccountAction.RESTART)


@router.post("/sessions/<session_id>/logout", summary="Log a session out (legacy)",
             responses={409: {"description": "A Cloud API number has no device"}, **ERRORS}, status_code=202,
             **LEGACY)
def logout_session(session_id: SessionId) -> Response[SessionActionAccepted]:
    return _action(session_id, AccountAction.LOGOUT)


@router.get("/sessions/<session_id>/qr", summary="Current QR code (legacy; PNG, or JSON with ?format=raw)",
            responses={200: {"description": "PNG image or JSON",
                              "content": {"image/png": {}, "application/json": {"model": QrCode}}},
                       409: {"description": "No QR yet"}, **ERRORS}, **LEGACY)
def get_session_qr(  # type: ignore[no-untyped-def]  # unannotated: powertools would JSON-encode the PNG
    session_id: SessionId,
    format: Annotated[str, Query(pattern="^(png|raw)$", description="`raw` for JSON.")] = "png",
):
    return qr_response(accounts.get_qr(services(), principal_of(router), session_id), format)


@router.post("/sessions/<session_id>/pairing-code", summary="Link by pairing code (legacy)",
             responses={202: {"description": "Requested; poll GET for the code",
                              "content": {"application/json": {"model": PairingCode}}},
                        409: {"description": "Already linked"}, **ERRORS}, **LEGACY)
def request_session_pairing_code(session_id: SessionId, body: PairingCodeRequest) -> Response[PairingCode]:
    pairing = accounts.request_pairing_code(services(), principal_of(router), session_id, body)
    logger.info("pairing code requested", extra={"account_id": session_id})
    return _json(202, pairing)


@router.get("/sessions/<session_id>/pairing-code", summary="The pairing code (legacy)",
            responses={409: {"description": "None requested"}, **ERRORS}, **LEGACY)
def get_session_pairing_code(session_id: SessionId) -> Response[PairingCode]:
    return _json(200, accounts.get_pairing_code(services(), principal_of(router), session_id),
                 {"Cache-Control": "no-store"})


@router.post("/sessions/<session_id>/messages", summary="Send a message (legacy)",
             responses={202: {"description": "Accepted and queued",
                              "content": {"application/json": {"model": SessionMessageAccepted}}},
                        409: {"description": "Idempotency-Key reused with another body"}, **ERRORS}, **LEGACY)
def send_session_message(
    session_id: SessionId,
    message: Annotated[OutboundMessage, Body(embed=False)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response[SessionMessageAccepted]:
    accepted = message_service.enqueue(services(), principal_of(router), session_id, message,
                                       idempotency_key=idempotency_key, correlation_id=correlation_id_of(router))
    return _json(202, to_legacy(accepted.message, SessionMessageAccepted),
                 accepted_headers(accepted, f"/sessions/{session_id}"))


@router.get("/sessions/<session_id>/messages", summary="List messages, newest first (legacy)",
            responses=ERRORS, **LEGACY)
def list_session_messages(
    session_id: SessionId,
    direction: Annotated[Direction | None, Query(description="`inbound` or `outbound`.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[SessionMessage]:
    items, next_cursor = message_service.list_messages(services(), principal_of(router), session_id,
                                                       direction=direction, limit=limit, cursor=cursor)
    return Page[SessionMessage](items=[to_legacy(m, SessionMessage) for m in items], next_cursor=next_cursor)


@router.get("/sessions/<session_id>/messages/<message_id>", summary="Get a message and its status (legacy)",
            responses=ERRORS, **LEGACY)
def get_session_message(session_id: SessionId, message_id: MessageId) -> Response[SessionMessage]:
    message = message_service.get_message(services(), principal_of(router), session_id, message_id)
    return _json(200, to_legacy(message, SessionMessage))
