"""SQS ingress: messages other services drop on the ingress queue, queued like API sends or rejected to the DLQ.

Every message must be signed by a registered producer (SQS gives no trustworthy sender identity): the
producer's tenant is the only tenant whose accounts the message may name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from core.errors import DependencyFailure, DomainError, NotFound
from core.ids import new_id
from core.models.common import utcnow
from core.models.envelope import INGRESS_ADAPTER, envelope_fields
from core.models.messages import Direction, MessageStatus
from core.models.producers import PRODUCER_ATTRIBUTE, SIGNATURE_ATTRIBUTE
from core.observability import logger
from core.store.tables import AccountItem, MessageItem
from functions.service.context import Services
from functions.service.messages import Accepted, accept
from functions.service.producers import VerifiedProducer, authenticate


def accept_ingress(svc: Services, body: str, sqs_message_id: str,
                   attributes: Mapping[str, str | None] | None = None) -> Accepted | None:
    """One SQS ingress message: queued like an API send, or rejected to the DLQ with the reason.

    `attributes`: the SQS message attributes (string values), where the producer's id and signature are.
    Returns None when the message was rejected (it is then on the DLQ, and failed on the account when the
    account is one of the producer's tenant). Redeliveries of the same SQS message are idempotent.
    """
    attributes = attributes or {}
    producer = authenticate(svc, attributes.get(PRODUCER_ATTRIBUTE), attributes.get(SIGNATURE_ATTRIBUTE), body)
    if producer is None:
        # Nothing in an unauthenticated body is trusted: no account is looked up, no record written.
        _reject(svc, body, "producer_unauthenticated",
                {"producer_id": str(attributes.get(PRODUCER_ATTRIBUTE) or "")[:64] or None,
                 "message": f"sign messages: {PRODUCER_ATTRIBUTE} and {SIGNATURE_ATTRIBUTE} attributes"}, None,
                attributes)
        return None
    try:
        parsed = INGRESS_ADAPTER.validate_json(body)
    except ValidationError as exc:
        details = exc.errors(include_url=False, include_context=False, include_input=False)
        _reject(svc, body, "validation_error", details, _named_account(svc, body, producer), attributes)
        return None
    account_id: str = parsed.account_id
    try:
        account = svc.accounts.get(account_id, producer.tenant_id)
    except NotFound:
        # Another tenant's account reads exactly like one that does not exist.
        _reject(svc, body, "account_not_in_tenant", {"account_id": account_id, "producer_id": producer.producer_id},
                None, attributes)
        return None
    reply_to: str | None = parsed.reply_to
    if reply_to is not None and reply_to not in producer.reply_queue_urls:
        _reject(svc, body, "reply_to_not_allowed", {"reply_to": reply_to, "producer_id": producer.producer_id},
                account, attributes)
        return None
    key = parsed.idempotency_key or f"sqs:{sqs_message_id}"
    try:
        return accept(svc, account, envelope_fields(parsed), idempotency_key=key,
                      correlation_id=parsed.correlation_id or sqs_message_id, reply_to=reply_to)
    except DependencyFailure:
        raise  # retried: only this record goes back to the queue
    except DomainError as exc:  # idempotency key reused, a reply to an unknown message, ...
        _reject(svc, body, exc.code, exc.details, account, attributes)
        return None


def _named_account(svc: Services, body: str, producer: VerifiedProducer) -> AccountItem | None:
    """The account an invalid body names, when it is one of the producer's tenant."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    account_id = raw.get("account_id") if isinstance(raw, dict) else None
    if not isinstance(account_id, str):
        return None
    try:
        return svc.accounts.get(account_id, producer.tenant_id)
    except (NotFound, ValueError):
        return None


def _reject(svc: Services, body: str, code: str, details: Any, account: AccountItem | None,
            attributes: Mapping[str, str | None]) -> None:
    """DLQ with the reason and the message's own attributes; a failed message record on `account` (an account of
    the producer's tenant)."""
    svc.ingress_dlq.send(body, code, details, attributes)
    logger.warning("ingress message rejected", extra={"error_code": code})
    if account is None:
        return
    try:
        raw = json.loads(body)
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
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
