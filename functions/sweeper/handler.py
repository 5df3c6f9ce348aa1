"""Scheduled sweeper: messages that no browser host can deliver still reach a terminal state; then the cleanup
(accounts failing for too long, deleted accounts' leftovers, stale leases)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service.context import services
from functions.service.sweeper import STATUS_METRICS, accounts_by_status, run


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result, cleaned = run(services())
    if result.failed:
        metrics.add_metric(name="MessagesSwept", unit="Count", value=result.failed)
    answer: dict[str, Any] = {"checked": result.checked, "failed": result.failed}
    if cleaned is not None:
        answer.update(gave_up=len(cleaned.gave_up), cleaned=len(cleaned.cleaned), objects=cleaned.objects_removed,
                      rows=cleaned.rows_removed, leases_removed=cleaned.leases_removed,
                      leases_expired=cleaned.leases_expired)
        if cleaned.gave_up:
            metrics.add_metric(name="AccountsGaveUp", unit="Count", value=len(cleaned.gave_up))
    try:  # the fleet dashboard's accounts by status; never holds up the sweep
        for status, count in accounts_by_status().items():
            metrics.add_metric(name=STATUS_METRICS[status], unit="Count", value=count)
    except Exception:  # noqa: BLE001 - a failed census only leaves a gap in the graph
        logger.exception("account census failed")
    logger.info("sweep done", extra=answer)
    return answer
