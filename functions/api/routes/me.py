"""`/me`: who the caller is (tenant, role, key, account scope), so a client can show only what it may do."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.common import Principal
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.get("/me", summary="The caller's API key: tenant, role and account scope", tags=["api-keys"],
            responses=ERRORS)
def get_me() -> Principal:
    return principal_of(router)
