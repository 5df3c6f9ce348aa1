"""The REST API: one resolver, routers per resource, errors mapped in one place."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer, Server

from functions.api import errors
from functions.api.openapi import STAGE_PATH, RestResolver, base_path, document_responses
from functions.api.routes import accounts, api_keys, contacts, legacy, me, messages, producers
from functions.api.routes import audit as audit_routes
from functions.api.routes import health as health_routes
from functions.api.routes import idp as idp_routes
from functions.api.routes import media as media_routes
from functions.api.routes import realtime as realtime_routes
from functions.api.routes import webhooks as webhooks_routes
from functions.service import health as health_service
from functions.service.context import services

TITLE = "wagate API"
VERSION = "0.1.0"
SECURITY_SCHEMES: dict[str, Any] = {
    "apiKey": APIKey(name="X-Api-Key", in_=APIKeyIn.header),
    "bearer": HTTPBearer(),
}


def create_app() -> APIGatewayRestResolver:
    """Build the resolver with every route, the error mapping and the OpenAPI/Swagger endpoints."""
    app = RestResolver(enable_validation=True)
    errors.register(app)
    app.include_router(accounts.router)
    app.include_router(messages.router)
    app.include_router(contacts.router)
    app.include_router(api_keys.router)
    app.include_router(me.router)
    app.include_router(idp_routes.router)
    app.include_router(media_routes.router)
    app.include_router(producers.router)
    app.include_router(webhooks_routes.router)
    app.include_router(realtime_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(health_routes.router)
    legacy.install(app)  # after errors.register: wraps the error handlers for /sessions paths

    @app.get("/health", summary="Readiness: 200 once an API key can be used, else 503 `not_ready`", tags=["meta"],
             security=[{}])  # [{}]: public
    def health() -> dict[str, str]:
        health_service.require_ready(services())
        return {"status": "ok", "version": VERSION}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body=openapi_json(app, base_path(app.current_event)))

    app.enable_swagger(path="/docs", title=TITLE, version=VERSION, security_schemes=SECURITY_SCHEMES,
                       security=[{"apiKey": []}, {"bearer": []}])
    document_responses(app)
    return app


def openapi_json(app: APIGatewayRestResolver, server: str = STAGE_PATH) -> str:
    """The OpenAPI document, generated from the pydantic models and the routes, served from `server`."""
    return app.get_openapi_json_schema(
        title=TITLE, version=VERSION, servers=[Server(url=server or "/")],
        description="Self-hosted multi-account WhatsApp gateway. Authenticate with `X-Api-Key` or a Bearer key.",
        security_schemes=SECURITY_SCHEMES, security=[{"apiKey": []}, {"bearer": []}],
    )
