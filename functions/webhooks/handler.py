"""Webhook dispatcher: events (and due retries) in, signed POSTs out.

Every target of every record of a batch is delivered at the same time (a thread pool, each attempt bounded
by WEBHOOK_TIMEOUT_SECONDS), so one slow receiver costs the others nothing; retries wait on the retry queue,
never in here. A record whose work could not be stored or scheduled fails alone (partial batch response).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service import webhook_delivery as service
from functions.service.context import services

processor = AsyncBatchProcessor(event_type=EventType.SQS)
METRIC_BY_STATE = {"delivered": "WebhooksDelivered", "pending": "WebhooksRetried", "failed": "WebhooksFailed"}


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=services().settings.webhook_concurrency, thread_name_prefix="webhook")


async def record_handler(record: SQSRecord) -> None:
    """Claim this record's attempts, then make them side by side; raise (retry the record) if any could not
    be recorded."""
    svc, loop = services(), asyncio.get_running_loop()
    attributes = {name: value.string_value or "" for name, value in record.message_attributes.items()}
    jobs = await loop.run_in_executor(_pool(), service.plan, svc, record.body, attributes, _batch_lookups(svc))
    results = await asyncio.gather(*(loop.run_in_executor(_pool(), service.deliver, svc, job) for job in jobs),
                                   return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for result in results:
        if isinstance(result, service.Outcome):
            metrics.add_metric(name=METRIC_BY_STATE[result.state], unit="Count", value=1)
    if failures:
        logger.warning("webhook work not recorded; the record is retried",
                       extra={"message_id": record.message_id, "error": repr(failures[0])[:500]})
        raise failures[0]


_lookups: contextvars.ContextVar[service.Lookups | None] = contextvars.ContextVar("webhook_lookups", default=None)


def _batch_lookups(svc: Any) -> service.Lookups:
    """The current batch's shared reads (set by lambda_handler for each invocation)."""
    lookups = _lookups.get()
    return lookups if lookups is not None else service.Lookups(svc)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _lookups.set(service.Lookups(services()))
    return dict(async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                               context=context))
