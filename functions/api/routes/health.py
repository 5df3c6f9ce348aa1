"""`/health/details`: the whole stack's health for its operator (`GET /health` itself stays public and minimal)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.health import HealthDetails
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import health as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
#: No parameters, no body: only the credential can be wrong.
RESPONSES = {code: ERRORS[code] for code in (401, 403)}


@router.get("/health/details", summary="Hosts, accounts, queues and DLQs, judged (bootstrap-tenant admins)",
            tags=["meta"], responses=RESPONSES)
def health_details() -> HealthDetails:
    return service.details(services(), principal_of(router))
