"""`/api-keys`: admin management of a tenant's keys."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated
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
