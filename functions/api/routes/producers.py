"""`/producers`: the services allowed to put messages on the ingress queue for the tenant's accounts."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.producers import PRODUCER_ID_PATTERN, Producer, ProducerCreate, ProducerCreated
from core.observability import logger
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import producers as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
ProducerId = Annotated[str, Path(pattern=PRODUCER_ID_PATTERN, description="The producer id.")]


@router.post("/producers", summary="Register an SQS producer (its signing secret is shown once)",
             tags=["producers"],
             responses={201: {"description": "Created",
                              "content": {"application/json": {"model": ProducerCreated}}}, **ERRORS})
def create_producer(body: ProducerCreate) -> Response[ProducerCreated]:
    created = service.create_producer(services(), principal_of(router), body)
    logger.info("producer registered", extra={"producer_id": created.producer_id, "tenant_id": created.tenant_id})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created,
                    headers={"Cache-Control": "no-store", "Location": f"/producers/{created.producer_id}"})


@router.get("/producers", summary="List the tenant's SQS producers", tags=["producers"], responses=ERRORS)
def list_producers() -> dict[str, list[Producer]]:
    return {"items": service.list_producers(services(), principal_of(router))}


@router.get("/producers/<producer_id>", summary="Get an SQS producer", tags=["producers"], responses=ERRORS)
def get_producer(producer_id: ProducerId) -> Producer:
    return service.get_producer(services(), principal_of(router), producer_id)


@router.delete("/producers/<producer_id>", summary="Revoke an SQS producer", tags=["producers"],
               responses={204: {"description": "Revoked"}, **ERRORS})
def delete_producer(producer_id: ProducerId) -> Response[Any]:
    service.delete_producer(services(), principal_of(router), producer_id)
    logger.info("producer revoked", extra={"producer_id": producer_id})
    return Response(status_code=204, body=None)
