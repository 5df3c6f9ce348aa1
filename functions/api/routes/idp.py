"""`/identity-provider`: the tenant's own identity provider, whose JWTs the authorizer accepts (admins only)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.idp import IdentityProvider, IdentityProviderConfig
from core.observability import logger
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import idp as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.put("/identity-provider", summary="Trust the tenant's own identity provider's JWTs", tags=["api-keys"],
            responses={409: {"description": "Another tenant already trusts this issuer (`issuer_taken`)"},
                       **ERRORS})
def put_identity_provider(body: IdentityProviderConfig) -> IdentityProvider:
    provider = service.put_provider(services(), principal_of(router), body)
    logger.info("identity provider configured", extra={"tenant_id": provider.tenant_id})
    return provider


@router.get("/identity-provider", summary="The tenant's identity provider", tags=["api-keys"], responses=ERRORS)
def get_identity_provider() -> IdentityProvider:
    return service.get_provider(services(), principal_of(router))


@router.delete("/identity-provider", summary="Stop trusting the identity provider (its tokens stop at once)",
               tags=["api-keys"], responses={204: {"description": "Removed (or there was none)"}, **ERRORS})
def delete_identity_provider() -> Response[Any]:
    service.delete_provider(services(), principal_of(router))
    logger.info("identity provider removed")
    return Response(status_code=204, body=None)
