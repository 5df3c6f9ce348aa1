"""SQS ingress: other services drop outbound messages here instead of calling the API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import logger, metrics, tracer
from functions.service.context import services
from functions.service.ingress import accept_ingress

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Queue one message; malformed ones go to the DLQ with the reason (not retried: retrying cannot fix them).

    Transient failures raise, so only this record is retried by SQS (partial batch response).
    """
    attributes = {name: attribute.string_value for name, attribute in record.message_attributes.items()}
    accepted = accept_ingress(services(), record.body, record.message_id, attributes)
    if accepted is None:
        metrics.add_metric(name="IngressRejected", unit="Count", value=1)
        return
    logger.info("ingress message queued", extra={"message_id": accepted.message.message_id,
                                                   "account_id": accepted.message.account_id})
    metrics.add_metric(name="MessagesAccepted", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))
