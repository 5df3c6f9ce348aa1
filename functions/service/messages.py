"""Messages: accept (idempotently) and queue outbound messages, read them back."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from functions.dal.tables import AccountItem, MessageItem
from functions.models.common import Principal, utcnow
from functions.models.envelope import INGRESS_ADAPTER, envelope_fields
from functions.models.messages import (
    Direction,
    Message,
    MessageAccepted,
    MessageError,
    MessageStatus,
    MessageStatusChange,
    OutboundQueueMessage,
)
from functions.service.accounts import WRITERS, load, require_role
from functions.service.context import Services
from functions.shared.errors import Conflict, DependencyFailure, NotFound
from functions.shared.ids import new_id
from functions.shared.observability import logger


@dataclass(frozen=True)
class Accepted:
    message: MessageAccepted
    replayed: bool


def to_view(item: MessageItem) -> Message:
    error = MessageError(code=item.error_code, message=item.error_message or item.error_code) \
        if item.error_code else None
    return Message(
        message_id=item.message_id, account_id=item.account_id, direction=Direction(item.direction),
        status=MessageStatus(item.status), type=item.type, to=item.to, from_number=item.from_number,
        content=json.loads(item.content), client_reference=item.client_reference,
        wa_message_id=item.wa_message_id, error=error,
        status_history=[MessageStatusChange.model_validate(dict(h)) for h in item.status_history or []],
        created_at=item.created_at, updated_at=item.updated_at,
    )


def body_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _accept(
    svc: Services, account: AccountItem, envelope: dict[str, Any], *, idempotency_key: str | None,
    correlation_id: str | None,
) -> Accepted:
    """Store a queued message and put it on the outbound queue; same key + same body → same message."""
    digest = body_hash(envelope)
    message_id = new_id("msg")
    record_id = f"{account.tenant_id}#{account.account_id}#{idempotency_key}" if idempotency_key else None
    if record_id:
        existing = svc.idempotency.claim(record_id, message_id, digest, svc.settings.idempotency_ttl_hours)
        if existing is not None:
            if existing.body_hash != digest:
                raise Conflict("Idempotency-Key was already used with a different body",
                               code="idempotency_key_reused", details={"message_id": existing.message_id})
            message_id = existing.message_id
            stored = svc.messages.find(account.account_id, message_id)
            if stored is not None:
                return Accepted(MessageAccepted(message_id=message_id, account_id=account.account_id,
                                                status=MessageStatus(stored.status)), replayed=True)
            # The first attempt died before storing the message: finish its work under the same id.
    now = utcnow()
    item = MessageItem(
        account.account_id, message_id, tenant_id=account.tenant_id, direction=Direction.OUTBOUND.value,
        status=MessageStatus.QUEUED.value, type=envelope["type"], to=envelope["to"],
        from_number=account.phone_number, content=json.dumps(envelope, separators=(",", ":")),
        client_reference=envelope.get("client_reference"), correlation_id=correlation_id,
        status_history=[{"status": MessageStatus.QUEUED.value, "at": now, "reason": None}],
        created_at=now, updated_at=now, expires_at=svc.messages.expiry(svc.settings.message_ttl_days),
    )
    # A concurrent replay with the same key may have stored it first; sending again is deduplicated.
    with contextlib.suppress(Conflict):
        svc.messages.create(item)
    try:
        svc.outbound.send(OutboundQueueMessage(
            message_id=message_id, account_id=account.account_id, tenant_id=account.tenant_id,
            envelope=envelope, correlation_id=correlation_id, enqueued_at=now,
        ))
    except DependencyFailure:
        # Never leave a 'queued' message that nothing will deliver: fail it and free the key.
        svc.messages.transition(item, MessageStatus.FAILED, allowed_from={MessageStatus.QUEUED},
                                reason="enqueue_failed",
                                extra=[MessageItem.error_code.set("enqueue_failed"),
                                       MessageItem.error_message.set("the outbound queue was unavailable")])
        if record_id:
            svc.idempotency.release(record_id)
        raise
    return Accepted(MessageAccepted(message_id=message_id, account_id=account.account_id,
                                    status=MessageStatus.QUEUED), replayed=False)


def enqueue(
    svc: Services, principal: Principal, account_id: str, message: BaseModel, *,
    idempotency_key: str | None, correlation_id: str | None,
) -> Accepted:
    """`POST /accounts/{id}/messages`."""
    require_role(principal, *WRITERS)
    account = load(svc, principal, account_id)
    return _accept(svc, account, envelope_fields(message), idempotency_key=idempotency_key,
                   correlation_id=correlation_id)


def get_message(svc: Services, principal: Principal, account_id: str, message_id: str) -> Message:
    load(svc, principal, account_id)
    return to_view(svc.messages.get(account_id, message_id))


def list_messages(
    svc: Services, principal: Principal, account_id: str, *, direction: Direction | None, limit: int,
    cursor: str | None,
) -> tuple[list[Message], str | None]:
    load(svc, principal, account_id)
    items, next_cursor = svc.messages.list_page(
        account_id, direction=direction.value if direction else None, limit=limit, cursor=cursor
    )
    return [to_view(i) for i in items], next_cursor


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
        return _accept(svc, account, envelope_fields(parsed), idempotency_key=key,
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
        status=MessageStatus.FAILED.value, type=str(raw.get("type") or "unknown"),
        to=str(raw["to"]) if raw.get("to") is not None else None,
        content=json.dumps(raw, separators=(",", ":"), default=str)[:300_000],
        error_code=code, error_message=json.dumps(details, default=str)[:2000],
        status_history=[{"status": MessageStatus.FAILED.value, "at": now, "reason": code}],
        created_at=now, updated_at=now, expires_at=svc.messages.expiry(svc.settings.message_ttl_days),
    ))
