"""WebSocket API routes ($connect, $disconnect, subscribe, $default): API Gateway's WebSocket proxy events in,
the rules in functions/service/realtime.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service import realtime as service
from functions.service.context import services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    route, connection_id = str(request.get("routeKey", "")), str(request.get("connectionId", ""))
    svc = services()
    if route == "$connect":
        ticket = (event.get("queryStringParameters") or {}).get("ticket")
        if not service.connect(svc, connection_id, ticket):
            return {"statusCode": 401, "body": "unknown, used or expired ticket"}
        metrics.add_metric(name="RealtimeConnections", unit="Count", value=1)
    elif route == "$disconnect":
        service.disconnect(svc, connection_id)
    elif route == "subscribe":
        service.subscribe(svc, connection_id, str(event.get("body") or ""))
    else:
        service.unknown_action(svc, connection_id, str(event.get("body") or ""))
    return {"statusCode": 200}
