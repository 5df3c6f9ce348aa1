"""`/accounts/{id}/contacts`: what the account's WhatsApp knows about a number."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.contacts import ContactCheck
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS, AccountId
from functions.service import contacts as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
Phone = Annotated[str, Path(pattern=r"^\+?[1-9][0-9]{6,14}$", description="International number, digits only.")]


@router.get(
    "/accounts/<account_id>/contacts/<phone>/exists", summary="Is this number on WhatsApp?", tags=["contacts"],
    responses={409: {"description": "The account is not connected (WORKING)"},
               429: {"description": "Too many new numbers checked this minute (Retry-After)"},
               503: {"description": "WhatsApp has not answered yet; ask again (Retry-After)"}, **ERRORS},
)
def contact_exists(account_id: AccountId, phone: Phone) -> ContactCheck:
    return service.exists(services(), principal_of(router), account_id, phone)
