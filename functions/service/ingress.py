"""SQS ingress: messages other services drop on the ingress queue, queued like API sends or rejected to the DLQ."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from core.errors import Conflict, NotFound
from core.ids import new_id
from core.models.common import utcnow
from core.models.envelope import INGRESS_ADAPTER, envelope_fields
from core.models.messages import Direction, MessageStatus
from core.observability import logger
from core.store.tables import MessageItem
from functions.service.context import Services
from functions.service.messages import Accepted, accept


def accept_ingress(svc: Services, body: str, sqs_message_id: str) -> Accepted | None:
    """One SQS ingress message: queued like an API send, or rejected to the DLQ with the reason.

    Returns None when the message was rejected (it is then on the DLQ, and failed on the account
    if the account is known). Redeliveries of the same SQS message are idempotent.
    """
    try:
        parsed = INGRESS_ADAPTER.validate_json(body)
    except ValidationError as exc:
        details = exc.errors(include_url=False, include_context=False, include_input=False)
        _reject(svc, body, "validation_error", details)
        return None
    account_id: str = parsed.account_id
    try:
        account = svc.accounts.get(account_id)
    except NotFound:
        _reject(svc, body, "account_not_found", {"account_id": account_id})
        return None
    key = parsed.idempotency_key or f"sqs:{sqs_message_id}"
    try:
        return accept(svc, account, envelope_fields(parsed), idempotency_key=key,
                       correlation_id=parsed.correlation_id or sqs_message_id)
    except Conflict as exc:
        _reject(svc, body, exc.code, exc.details)
        return None


def _reject(svc: Services, body: str, code: str, details: Any) -> None:
    """DLQ with the reason; a failed message record when the body names a known account."""
    svc.ingress_dlq.send(body, code, details)
    logger.warning("ingress message rejected", extra={"error_code": code})
    try:
        raw = json.loads(body)
    except ValueError:
        return
    account_id = raw.get("account_id") if isinstance(raw, dict) else None
    if not isinstance(account_id, str) or code == "account_not_found":
        return
    try:
        account = svc.accounts.get(account_id)
    except (NotFound, ValueError):
        return
    now = utcnow()
    svc.messages.create(MessageItem(
        account.account_id, new_id("msg"), tenant_id=account.tenant_id, direction=Direction.OUTBOUND.value,
        status=MessageStatus.FAILED.value, type=str(raw.get("type") or "unknown")[:64],
        to=str(raw["to"])[:64] if raw.get("to") is not None else None,
        content=_bounded_content(body, raw),
        error_code=code, error_message=json.dumps(details, default=str)[:2000],
        status_history=[{"status": MessageStatus.FAILED.value, "at": now, "reason": code}],
        created_at=now, updated_at=now, expires_at=svc.messages.expiry(svc.settings.message_ttl_days),
    ))


STORED_BODY_LIMIT = 32 * 1024  # bytes of UTF-8: a rejected body is kept whole only when small


def _bounded_content(body: str, raw: dict[str, Any]) -> str:
    """The rejected body as valid JSON that fits the item: whole when small, else a summary of it."""
    whole = json.dumps(raw, separators=(",", ":"), default=str)
    size = len(body.encode("utf-8", "surrogatepass"))
    if len(whole.encode("utf-8", "surrogatepass")) <= STORED_BODY_LIMIT:
        return whole
    return json.dumps({"truncated": True, "size_bytes": size,
                       "sha256": hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest(),
                       "type": str(raw.get("type"))[:64], "preview": body[:1000]}, separators=(",", ":"))
