"""Lambda entry point of the REST API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.api import audit, guards, limits
from functions.api.app import create_app

app = create_app()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event."""
    refusal, rate_headers = limits.check(event)  # 429 past the key's rate; RateLimit headers on every answer
    screened = event
    if refusal is None:
        refusal, screened = guards.screen(event)  # 413, bodies not UTF-8 or nested too deep; JSON Content-Type
    response = limits.with_headers(refusal if refusal is not None else app.resolve(screened, context), rate_headers)
    audit.record_request(event, response)  # every state-changing call and every 403, whatever route answered
    return response

