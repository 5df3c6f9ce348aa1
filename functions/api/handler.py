"""Lambda entry point of the REST API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.config import get_settings
from core.models.common import ErrorBody
from core.observability import logger, metrics, tracer
from functions.api import audit
from functions.api.app import create_app

app = create_app()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event."""
    too_large = _too_large(event)
    response = too_large if too_large is not None else app.resolve(_as_json(event), context)
    audit.record_request(event, response)  # every state-changing call and every 403, whatever route answered
    return response


def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The API speaks JSON only: read a body as JSON whatever Content-Type says (curl -d sends a form type)."""
    headers = event.get("headers") or {}
    name = next((k for k in headers if k.lower() == "content-type"), "Content-Type")
    if event.get("body") and "json" not in str(headers.get(name, "")).lower():
        event = {**event, "headers": {**headers, name: "application/json"}}
        if event.get("multiValueHeaders"):
            event["multiValueHeaders"] = {**event["multiValueHeaders"], name: ["application/json"]}
    return event


def _too_large(event: dict[str, Any]) -> dict[str, Any] | None:
    """413 before any parsing: validating a huge body first would waste the time the limit protects."""
    limit = get_settings().max_body_bytes
    if len(event.get("body") or "") <= limit:
        return None
    body = ErrorBody(code="payload_too_large", message=f"request body is larger than {limit} bytes",
                     details={"limit": limit}, request_id=(event.get("requestContext") or {}).get("requestId"))
    return {"statusCode": 413, "headers": {"Content-Type": "application/json"}, "body": body.model_dump_json(),
            "isBase64Encoded": False}
