"""Messages: accept (idempotently) and queue outbound messages, read them back."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from core.errors import Conflict
from core.ids import new_id
from core.models.common import Principal, utcnow
from core.models.envelope import envelope_fields
from core.models.messages import (
    Direction,
    Message,
    MessageAccepted,
    MessageError,
    MessageStatus,
    MessageStatusChange,
)
from core.store.tables import AccountItem, MessageItem
from functions.service.accounts import WRITERS, load, require_role
from functions.service.context import Services


@dataclass(frozen=True)
class Accepted:
    message: MessageAccepted
    replayed: bool


def to_view(item: MessageItem) -> Message:
    """The API view of a stored message; a malformed stored record is shown as such, never a 500."""
    try:
        content = json.loads(item.content) if item.content else {}
    except ValueError:
        content = {"unreadable": True}
    if not isinstance(content, dict):
        content = {"value": content}
    try:
        status = MessageStatus(item.status)
    except ValueError:
        status = MessageStatus.FAILED
    history = []
    for entry in item.status_history or []:
        try:
            history.append(MessageStatusChange.model_validate(dict(entry)))
        except (ValidationError, TypeError, ValueError):
            continue
    error = MessageError(code=item.error_code, message=item.error_message or item.error_code) \
        if item.error_code else None
    return Message(
        message_id=item.message_id, account_id=item.account_id,
        direction=Direction.INBOUND if item.direction == Direction.INBOUND.value else Direction.OUTBOUND,
        status=status, type=str(item.type or "unknown")[:64], to=item.to, from_number=item.from_number,
        content=content, client_reference=item.client_reference, wa_message_id=item.wa_message_id, error=error,
        status_history=history, created_at=item.created_at, updated_at=item.updated_at,
    )


def body_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def accept(
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
    # The stored `queued` row is the outbox: once it is written the message will be sent or failed, whatever
    # happens next. A concurrent replay with the same key may have stored it first: same message.
    with contextlib.suppress(Conflict):
        svc.messages.create(item)
    # Wake the host that drives the account; without a nudge it still finds the row on its next sweep.
    svc.nudges.send(account.account_id, "message", account.host_inbox)
    return Accepted(MessageAccepted(message_id=message_id, account_id=account.account_id,
                                    status=MessageStatus.QUEUED), replayed=False)


def enqueue(
    svc: Services, principal: Principal, account_id: str, message: BaseModel, *,
    idempotency_key: str | None, correlation_id: str | None,
) -> Accepted:
    """`POST /accounts/{id}/messages`."""
    require_role(principal, *WRITERS)
    account = load(svc, principal, account_id)
    return accept(svc, account, envelope_fields(message), idempotency_key=idempotency_key,
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
