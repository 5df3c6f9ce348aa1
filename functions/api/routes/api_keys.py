"""`/api-keys`: admin management of a tenant's keys; `/auth/token`: a short-lived access token of a key."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.api_keys import AccessToken, ApiKey, ApiKeyCreate, ApiKeyCreated
from core.observability import logger
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import api_keys as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.post("/api-keys", summary="Create an API key (shown once)", tags=["api-keys"],
             responses={201: {"description": "Created",
                              "content": {"application/json": {"model": ApiKeyCreated}}}, **ERRORS})
def create_api_key(body: ApiKeyCreate) -> Response[ApiKeyCreated]:
    created = service.create_key(services(), principal_of(router), body)
    logger.info("api key created", extra={"key_id": created.key_id, "role": created.role.value,
                                          "tenant_id": created.tenant_id})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=created, headers={"Cache-Control": "no-store"})


@router.get("/api-keys", summary="List the tenant's API keys", tags=["api-keys"], responses=ERRORS)
def list_api_keys() -> dict[str, list[ApiKey]]:
    return {"items": service.list_keys(services(), principal_of(router))}


@router.delete("/api-keys/<key_id>", summary="Revoke an API key", tags=["api-keys"],
               responses={204: {"description": "Revoked"}, **ERRORS})
def delete_api_key(key_id: Annotated[str, Path(pattern=r"^key_[0-9a-z]{26}$")]) -> Response[Any]:
    service.delete_key(services(), principal_of(router), key_id)
    logger.info("api key revoked", extra={"key_id": key_id})
    return Response(status_code=204, body=None)


@router.post("/auth/token", summary="Exchange the API key for a short-lived access token (JWT)", tags=["api-keys"],
             responses={200: {"description": "The token; send it as `Authorization: Bearer <token>`",
                              "content": {"application/json": {"model": AccessToken}}}, **ERRORS})
def create_access_token() -> Response[AccessToken]:
    principal = principal_of(router)
    token = service.issue_token(services(), principal)
    logger.info("access token issued", extra={"key_id": principal.key_id, "expires_at": token.expires_at})
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=token,
                    headers={"Cache-Control": "no-store"})
