"""WebSocket fan-out: events from the real-time queue (the events topic's second subscriber) to every matching
connection, side by side, each post bounded by REALTIME_POST_TIMEOUT_SECONDS. A batch is recorded for replay
first; if that fails, the whole batch comes back (clients de-duplicate on the event id)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service import realtime as service
from functions.service.context import services


def _attributes(record: dict[str, Any]) -> dict[str, str]:
    raw = record.get("messageAttributes") or {}
    return {name: str(value.get("stringValue") or "") for name, value in raw.items() if isinstance(value, dict)}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    result = service.fan_out(services(), [(str(r.get("body") or ""), _attributes(r)) for r in records])
    if result.sent:
        metrics.add_metric(name="RealtimeEventsSent", unit="Count", value=result.sent)
    if result.dropped:
        metrics.add_metric(name="RealtimeConnectionsDropped", unit="Count", value=result.dropped)
    logger.debug("realtime fan-out", extra=service.describe(result))
    return {"batchItemFailures": []}
