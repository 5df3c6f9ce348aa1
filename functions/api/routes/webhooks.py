"""`/webhooks` (tenant-wide receivers of events) and `/accounts/{id}/webhook-deliveries` (what was delivered)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.common import Page
from core.models.webhooks import (
    DELIVERY_ID_PATTERN,
    WEBHOOK_ID_PATTERN,
    DeliveryState,
    RedeliveryAccepted,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookUpdate,
)
from core.observability import logger, metrics
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS, AccountId, Cursor, Limit
from functions.service import webhooks as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
WebhookId = Annotated[str, Path(pattern=WEBHOOK_ID_PATTERN, description="The webhook id.")]
DeliveryId = Annotated[str, Path(pattern=DELIVERY_ID_PATTERN, description="The delivery id.")]
NO_STORE = {"Cache-Control": "no-store"}


@router.post("/webhooks", summary="Create a tenant webhook (its secret is shown once)", tags=["webhooks"],
             responses={201: {"description": "Created", "content": {"application/json": {"model": WebhookCreated}}},
                        409: {"description": "Too many webhooks"}, **ERRORS})
def create_webhook(body: WebhookCreate) -> Response[WebhookCreated]:
    created = service.create_webhook(services(), principal_of(router), body)
    logger.info("webhook created", extra={"webhook_id": created.webhook_id})
    metrics.add_metric(name="WebhooksCreated", unit="Count", value=1)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created,
                    headers={**NO_STORE, "Location": f"/webhooks/{created.webhook_id}"})


@router.get("/webhooks", summary="List the tenant's webhooks", tags=["webhooks"], responses=ERRORS)
def list_webhooks() -> dict[str, list[Webhook]]:
    return {"items": service.list_webhooks(services(), principal_of(router))}


@router.get("/webhooks/<webhook_id>", summary="Get a webhook", tags=["webhooks"], responses=ERRORS)
def get_webhook(webhook_id: WebhookId) -> Webhook:
    return service.get_webhook(services(), principal_of(router), webhook_id)


@router.patch("/webhooks/<webhook_id>", summary="Update a webhook (send `secret` to rotate it)", tags=["webhooks"],
              responses=ERRORS)
def update_webhook(webhook_id: WebhookId, body: WebhookUpdate) -> Webhook:
    webhook = service.update_webhook(services(), principal_of(router), webhook_id, body)
    logger.info("webhook updated", extra={"webhook_id": webhook_id, "fields": sorted(body.model_fields_set)})
    return webhook


@router.delete("/webhooks/<webhook_id>", summary="Delete a webhook", tags=["webhooks"],
               responses={204: {"description": "Deleted"}, **ERRORS})
def delete_webhook(webhook_id: WebhookId) -> Response[Any]:
    service.delete_webhook(services(), principal_of(router), webhook_id)
    logger.info("webhook deleted", extra={"webhook_id": webhook_id})
    return Response(status_code=204, body=None)


@router.get("/accounts/<account_id>/webhook-deliveries", summary="List webhook deliveries, newest first",
            tags=["webhooks"], responses=ERRORS)
def list_deliveries(
    account_id: AccountId,
    state: Annotated[DeliveryState | None, Query(description="Only deliveries in this state.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[WebhookDelivery]:
    items, next_cursor = service.list_deliveries(services(), principal_of(router), account_id, state=state,
                                                 limit=limit, cursor=cursor)
    return Page[WebhookDelivery](items=items, next_cursor=next_cursor)


@router.post("/accounts/<account_id>/webhook-deliveries/<delivery_id>/redeliver",
             summary="Deliver again now (a new attempt)", tags=["webhooks"],
             responses={202: {"description": "A new attempt is queued",
                              "content": {"application/json": {"model": RedeliveryAccepted}}},
                        409: {"description": "The delivery changed meanwhile"}, **ERRORS})
def redeliver(account_id: AccountId, delivery_id: DeliveryId) -> Response[RedeliveryAccepted]:
    accepted = service.redeliver(services(), principal_of(router), account_id, delivery_id)
    logger.info("webhook redelivery requested", extra={"account_id": account_id, "delivery_id": delivery_id})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=accepted)
