"""`/accounts/{id}/messages`: send and read messages."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.common import Page
from core.models.envelope import EditRequest, SendRequest
from core.models.messages import Direction, Message, MessageAccepted
from core.observability import logger, metrics
from functions.api.context import correlation_id_of, principal_of
from functions.api.routes.accounts import ERRORS, AccountId, Cursor, Limit
from functions.service import messages as service
from functions.service.context import services
from functions.service.messages import Accepted

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
MessageId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description="The message id.")]


@router.post(
    "/accounts/<account_id>/messages", summary="Send a message (Cloud API message object) or a read receipt",
    tags=["messages"],
    responses={202: {"description": "Accepted and queued",
                     "content": {"application/json": {"model": MessageAccepted}}},
               409: {"description": "Idempotency-Key reused with another body"}, **ERRORS},
)
def send_message(
    account_id: AccountId,
    message: Annotated[SendRequest, Body(embed=False)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response[MessageAccepted]:
    accepted = service.enqueue(services(), principal_of(router), account_id, message,
                               idempotency_key=idempotency_key, correlation_id=correlation_id_of(router))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=accepted.message,
                    headers=accepted_headers(accepted, f"/accounts/{account_id}"))


def accepted_headers(accepted: Accepted, base: str) -> dict[str, str]:
    """Count and log an accepted send; its Location (under `base`) and replay headers."""
    message = accepted.message
    headers = {"Location": f"{base}/messages/{message.message_id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        metrics.add_metric(name="MessagesAccepted", unit="Count", value=1)
    logger.info("message accepted", extra={"account_id": message.account_id, "message_id": message.message_id,
                                           "replayed": accepted.replayed})
    return headers


@router.get("/accounts/<account_id>/messages", summary="List messages, newest first", tags=["messages"],
            responses=ERRORS)
def list_messages(
    account_id: AccountId,
    direction: Annotated[Direction | None, Query(description="`inbound` or `outbound`.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[Message]:
    items, next_cursor = service.list_messages(services(), principal_of(router), account_id,
                                               direction=direction, limit=limit, cursor=cursor)
    return Page[Message](items=items, next_cursor=next_cursor)


@router.get("/accounts/<account_id>/messages/<message_id>", summary="Get a message and its status",
            tags=["messages"], responses=ERRORS)
def get_message(account_id: AccountId, message_id: MessageId) -> Response[Any]:
    message = service.get_message(services(), principal_of(router), account_id, message_id)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                    body=message)


@router.patch(
    "/accounts/<account_id>/messages/<message_id>", summary="Edit the text of a sent message", tags=["messages"],
    responses={202: {"description": "The edit is queued (its own message id and status trail)",
                     "content": {"application/json": {"model": MessageAccepted}}},
               409: {"description": "The message failed or was revoked, or Idempotency-Key was reused"}, **ERRORS},
)
def edit_message(
    account_id: AccountId, message_id: MessageId, request: Annotated[EditRequest, Body(embed=False)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response[MessageAccepted]:
    accepted = service.edit(services(), principal_of(router), account_id, message_id, request,
                            idempotency_key=idempotency_key, correlation_id=correlation_id_of(router))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=accepted.message,
                    headers=accepted_headers(accepted, f"/accounts/{account_id}"))


@router.delete(
    "/accounts/<account_id>/messages/<message_id>", summary="Delete a sent message for everyone",
    tags=["messages"],
    responses={202: {"description": "The revoke is queued (its own message id and status trail)",
                     "content": {"application/json": {"model": MessageAccepted}}},
               409: {"description": "The message failed or was revoked, or Idempotency-Key was reused"}, **ERRORS},
)
def revoke_message(
    account_id: AccountId, message_id: MessageId,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response[MessageAccepted]:
    accepted = service.revoke(services(), principal_of(router), account_id, message_id,
                              idempotency_key=idempotency_key, correlation_id=correlation_id_of(router))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=accepted.message,
                    headers=accepted_headers(accepted, f"/accounts/{account_id}"))
