"""`/realtime/tickets`: one-time tickets that open the WebSocket API (browsers cannot send headers on it)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.realtime import TicketCreated
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import realtime as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.post("/realtime/tickets", summary="A one-time ticket for the WebSocket API (valid 60 s)", tags=["realtime"],
             responses={201: {"description": "Created",
                              "content": {"application/json": {"model": TicketCreated}}}, **ERRORS})
def create_ticket() -> Response[TicketCreated]:
    ticket = service.create_ticket(services(), principal_of(router))
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=ticket,
                    headers={"Cache-Control": "no-store"})
