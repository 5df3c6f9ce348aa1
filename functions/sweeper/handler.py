"""Scheduled sweeper: messages that no browser host can deliver still reach a terminal state."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service.context import services
from functions.service.sweeper import sweep


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = sweep(services())
    if result.failed:
        metrics.add_metric(name="MessagesSwept", unit="Count", value=result.failed)
    logger.info("sweep done", extra={"checked": result.checked, "failed": result.failed})
    return {"checked": result.checked, "failed": result.failed}
