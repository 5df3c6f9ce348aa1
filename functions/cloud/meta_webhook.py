"""Lambda entry point of `/webhooks/meta/{account_id}` (public: Meta calls it; the signature is the check)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import DomainError
from core.observability import logger, metrics, tracer
from functions.service import meta_inbound
from functions.service.context import services

MAX_BODY_BYTES = 3 * 1024 * 1024  # Meta batches up to 1,000 updates per delivery; they stay well below this


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method = str(event.get("httpMethod") or "").upper()
    account_id = str((event.get("pathParameters") or {}).get("account_id") or "")
    try:
        if method == "GET":
            answer = meta_inbound.verify(services(), account_id, dict(event.get("queryStringParameters") or {}))
        elif method == "POST":
            raw = _raw_body(event)
            if raw is None:
                answer = meta_inbound.error(400, "invalid_body", "the body is not valid base64")
            elif len(raw) > MAX_BODY_BYTES:
                answer = meta_inbound.error(413, "payload_too_large", f"more than {MAX_BODY_BYTES} bytes")
            else:
                headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
                answer = meta_inbound.receive(services(), account_id, raw, headers.get("x-hub-signature-256"))
        else:
            answer = meta_inbound.error(405, "method_not_allowed", "use GET (verification) or POST (events)")
    except DomainError as exc:  # DynamoDB, KMS or S3 unavailable: Meta retries the delivery
        logger.warning("meta webhook deferred", extra={"account_id": account_id, "error": exc.code})
        answer = meta_inbound.error(503, exc.code, exc.message, retry_after=5)
    headers = {"Content-Type": answer.content_type, "Cache-Control": "no-store"}
    if answer.retry_after is not None:
        headers["Retry-After"] = str(answer.retry_after)
    if answer.status == 405:
        headers["Allow"] = "GET, POST"
    return {"statusCode": answer.status, "headers": headers, "body": answer.body, "isBase64Encoded": False}


def _raw_body(event: dict[str, Any]) -> bytes | None:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return str(body).encode()
