"""Messages: accept (idempotently) and queue outbound messages, read them back."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from core.cloud import cloud_supports
from core.errors import Conflict, InvalidRequest, NotFound
from core.ids import event_id, new_id
from core.models.common import Principal, utcnow
from core.models.envelope import EditRequest, MarkRead, envelope_fields
from core.models.events import EventType
from core.models.messages import (
    Direction,
    Message,
    MessageAccepted,
    MessageEdit,
    MessageError,
    MessageStatus,
    MessageStatusChange,
)
from core.store import replies
from core.store.accounts import plain
from core.store.tables import AccountItem, MessageItem
from functions.service import cloud_accounts as cloud
from functions.service.accounts import WRITERS, load, require_role
from functions.service.context import Services
from functions.service.media import externalize, media_view

# Rows of the outbox that act on an earlier message instead of being a message of their own.
OPERATIONS = frozenset({"read", "edit", "revoke"})


@dataclass(frozen=True)
class Accepted:
    message: MessageAccepted
    replayed: bool


def to_view(item: MessageItem, svc: Services | None = None) -> Message:
    """The API view of a stored message (received media with a fresh short-lived URL when `svc` is given);
    a malformed stored record is shown as such, never a 500."""
    try:
        content = json.loads(item.content) if item.content else {}
    except ValueError:
        content = {"unreadable": True}
    if not isinstance(content, dict):
        content = {"value": content}
    elif svc is not None and "media" in content:
        content = media_view(content, svc)
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
    reactions = {str(k): str(v) for k, v in plain(item.reactions).items()} if item.reactions else {}
    edits = []
    for entry in item.edits or []:
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            edits.append(MessageEdit.model_validate(dict(entry)))
    return Message(
        message_id=item.message_id, account_id=item.account_id, from_lid=item.from_lid,
        reactions=reactions, edits=edits, revoked=bool(item.revoked_at), scheduled_at=item.scheduled_at,
        direction=Direction.INBOUND if item.direction == Direction.INBOUND.value else Direction.OUTBOUND,
        status=status, type=str(item.type or "unknown")[:64], to=item.to, from_number=item.from_number,
        content=content, client_reference=item.client_reference, wa_message_id=item.wa_message_id, error=error,
        status_history=history, created_at=item.created_at, updated_at=item.updated_at,
    )


def body_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def publish_status(svc: Services, item: MessageItem, status: MessageStatus, *,
                   error: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
    """`message.status` for an outbound message (same id and shape as a browser host's), to its SQS producer's
    reply queue too."""
    data: dict[str, Any] = {"message_id": item.message_id, "status": status.value,
                            "client_reference": item.client_reference, **(extra or {})}
    if error:
        data["error"] = error
    event = svc.events.publish(EventType.MESSAGE_STATUS, item.account_id, item.tenant_id, data,
                               event_id=event_id(item.message_id, status.value))
    if item.reply_to:
        replies.send_status(item.reply_to, event.model_dump_json())


def find_target(svc: Services, account_id: str, ref: str) -> MessageItem:
    """A message of this account named by its wagate id or its WhatsApp id (what replies, reactions, read
    receipts, edits and revokes point at)."""
    item = svc.messages.find_ref(account_id, ref)
    if item is None:
        raise NotFound(f"message {ref} not found in this account", code="message_not_found")
    return item


def _check_targets(svc: Services, account: AccountItem, envelope: dict[str, Any]) -> None:
    """A reply or a reaction must point at a message of the same account (4xx now, not a failure later)."""
    for ref in (envelope.get("context", {}).get("message_id"), envelope.get("reaction", {}).get("message_id")):
        if ref:
            find_target(svc, account.account_id, str(ref))


def check_provider(account: AccountItem, envelope: dict[str, Any]) -> None:
    """What the account's provider can send: templates need the Cloud API; polls, edits and deletes need
    WhatsApp Web; interactive messages reach WhatsApp Web only as numbered text, when the account allows it."""
    kind = envelope.get("type")
    if cloud.is_cloud(account):
        problem = None if kind == "read" else cloud_supports(envelope)
        if problem:
            raise InvalidRequest(problem, code="not_supported_by_cloud_api", details={"type": kind})
        return
    if kind == "template":
        raise InvalidRequest("message templates are a Cloud API feature: WhatsApp Web numbers send text and media "
                             "freely instead (no 24-hour window); use a provider cloud account for templates",
                             code="template_needs_cloud_api")
    if kind == "interactive":
        options = plain(account.options) if getattr(account, "options", None) else {}
        if not isinstance(options, dict) or options.get("interactive_fallback") != "numbered_text":
            raise InvalidRequest(
                "interactive messages (buttons, lists, flows) cannot be sent through WhatsApp Web; set the "
                "account's options.interactive_fallback to numbered_text to send buttons and lists as numbered "
                "text whose numeric replies come back as interactive replies",
                code="interactive_not_supported", details={"type": kind})
        if (envelope.get("interactive") or {}).get("type") not in ("button", "list"):
            raise InvalidRequest("only interactive buttons and lists have a numbered-text fallback",
                                 code="interactive_not_supported", details={"type": kind})


def accept(
    svc: Services, account: AccountItem, envelope: dict[str, Any], *, idempotency_key: str | None,
    correlation_id: str | None, reply_to: str | None = None,
) -> Accepted:
    """Store a queued message and put it on the outbound queue; same key + same body → same message.
    `reply_to`: an SQS producer's reply queue that also gets the message's status events."""
    _check_targets(svc, account, envelope)
    check_provider(account, _as_stored(envelope))
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
    # Inline media moves to the bucket (the row and any queue message stay small); ids and links are checked.
    envelope = externalize(svc, account.tenant_id, envelope)
    now = utcnow()
    item = MessageItem(
        account.account_id, message_id, tenant_id=account.tenant_id, direction=Direction.OUTBOUND.value,
        status=MessageStatus.QUEUED.value, type=envelope["type"], to=envelope["to"],
        from_number=account.phone_number, content=json.dumps(envelope, separators=(",", ":")),
        client_reference=envelope.get("client_reference"), correlation_id=correlation_id, reply_to=reply_to,
        status_history=[{"status": MessageStatus.QUEUED.value, "at": now, "reason": None}],
        created_at=now, updated_at=now, expires_at=svc.messages.expiry(svc.settings.message_ttl_days),
    )
    # The stored `queued` row is the outbox: once it is written the message will be sent or failed, whatever
    # happens next. A concurrent replay with the same key may have stored it first: same message.
    with contextlib.suppress(Conflict):
        svc.messages.create(item)
    if cloud.is_cloud(account):  # the cloud sender, in order per account; the sweeper re-queues a lost one
        svc.cloud_outbox.send(account.account_id, message_id)
    else:  # wake the host that drives the account; without a nudge it still finds the row on its next sweep
        svc.nudges.send(account.account_id, "message", account.host_inbox)
    return Accepted(MessageAccepted(message_id=message_id, account_id=account.account_id,
                                    status=MessageStatus.QUEUED), replayed=False)


def _as_stored(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as it will be stored: inline media moves to the bucket first (an id takes its place)."""
    kind = str(envelope.get("type"))
    content = envelope.get(kind)
    if not isinstance(content, dict) or "data" not in content:
        return envelope
    return {**envelope, kind: {**{k: v for k, v in content.items() if k != "data"}, "id": "inline"}}


def enqueue(
    svc: Services, principal: Principal, account_id: str, message: BaseModel, *,
    idempotency_key: str | None, correlation_id: str | None,
) -> Accepted:
    """`POST /accounts/{id}/messages`: a message, or a read receipt (Cloud API shape) for an inbound one."""
    require_role(principal, *WRITERS)
    account = load(svc, principal, account_id)
    if isinstance(message, MarkRead):
        target = find_target(svc, account_id, message.message_id)
        if target.direction != Direction.INBOUND.value:
            raise InvalidRequest("only received messages can be marked as read", code="not_an_inbound_message")
        envelope: dict[str, Any] = {"type": "read", "to": target.from_number or "", "message_id": target.message_id}
        if message.typing_indicator is not None:
            envelope["typing_indicator"] = message.typing_indicator.model_dump(mode="json")
    else:
        envelope = envelope_fields(message)
    return accept(svc, account, envelope, idempotency_key=idempotency_key, correlation_id=correlation_id)


def _own_sent(svc: Services, account_id: str, message_id: str, action: str) -> MessageItem:
    target = find_target(svc, account_id, message_id)
    if target.direction != Direction.OUTBOUND.value or target.type in OPERATIONS:
        raise InvalidRequest(f"only messages this account sent can be {action}", code="not_an_outbound_message")
    if target.status == MessageStatus.FAILED.value:
        raise Conflict(f"a failed message cannot be {action}", code="message_failed")
    if target.revoked_at:
        raise Conflict(f"the message was deleted for everyone and cannot be {action}", code="message_revoked")
    return target


def edit(
    svc: Services, principal: Principal, account_id: str, message_id: str, request: EditRequest, *,
    idempotency_key: str | None, correlation_id: str | None,
) -> Accepted:
    """`PATCH /accounts/{id}/messages/{message_id}`: queue an edit of a text the account sent (its own trail)."""
    require_role(principal, *WRITERS)
    account = load(svc, principal, account_id)
    target = _own_sent(svc, account_id, message_id, "edited")
    if target.type != "text":
        raise InvalidRequest("only text messages can be edited", code="message_not_editable")
    envelope = {"type": "edit", "to": target.to or "", "message_id": target.message_id,
                "text": request.text.model_dump(mode="json")}
    return accept(svc, account, envelope, idempotency_key=idempotency_key, correlation_id=correlation_id)


def revoke(
    svc: Services, principal: Principal, account_id: str, message_id: str, *,
    idempotency_key: str | None, correlation_id: str | None,
) -> Accepted:
    """`DELETE /accounts/{id}/messages/{message_id}`: queue a delete-for-everyone of a message the account sent."""
    require_role(principal, *WRITERS)
    account = load(svc, principal, account_id)
    target = _own_sent(svc, account_id, message_id, "revoked")
    envelope = {"type": "revoke", "to": target.to or "", "message_id": target.message_id}
    return accept(svc, account, envelope, idempotency_key=idempotency_key, correlation_id=correlation_id)


def get_message(svc: Services, principal: Principal, account_id: str, message_id: str) -> Message:
    load(svc, principal, account_id)
    return to_view(svc.messages.get(account_id, message_id), svc)


def list_messages(
    svc: Services, principal: Principal, account_id: str, *, direction: Direction | None, limit: int,
    cursor: str | None,
) -> tuple[list[Message], str | None]:
    load(svc, principal, account_id)
    items, next_cursor = svc.messages.list_page(
        account_id, direction=direction.value if direction else None, limit=limit, cursor=cursor
    )
    return [to_view(i, svc) for i in items], next_cursor
