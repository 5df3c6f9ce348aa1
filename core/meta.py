"""Meta's WhatsApp Cloud API webhooks: check them, read them, and write wagate's events in their format.

Pure functions, no I/O. Inbound (`inbound_messages`, `status_updates`) turns Meta's payload for a `cloud` account
into what wagate stores; outbound (`to_meta_payload`) turns a wagate event into the payload Meta would have sent,
so a bot written for the Cloud API runs unchanged. `inbound_messages(to_meta_payload(e))` gives back the content
of a `message.received` event `e`, less `context.message_id` (a wagate id Meta has no field for) and `media`
(which becomes `media_to_fetch`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from core.errors import InvalidRequest
from core.models.events import EventType
from core.models.messages import MessageError, MessageStatus
from core.models.meta import (
    MEDIA_TYPES,
    InboundMessage,
    MediaToFetch,
    MetaError,
    MetaMessage,
    MetaMessagesChange,
    MetaValue,
    MetaWebhook,
    StatusUpdate,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta's error codes wagate has a name for; every other code is `send_failed` with Meta's code in the message.
ERROR_CODES = {131026: "invalid_recipient", 131047: "outside_window"}
META_CODES = {name: code for code, name in ERROR_CODES.items()}
GENERIC_META_CODE = 131000  # "Something went wrong"
UNSUPPORTED_META_CODE = 131051  # "Unsupported message type"
_STATUSES = {s.value: s for s in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
                                  MessageStatus.FAILED)}


class MetaPayloadError(InvalidRequest):
    """A body that is not a well-formed `whatsapp_business_account` webhook."""

    code = "invalid_meta_payload"


class MetaTranslationError(ValueError):
    """An event lacks what Meta's format requires (e.g. a status without its recipient): a caller's mistake."""


# --- signatures and the verification handshake ----------------------------------------------------------------


def sign(secret: str, raw_body: bytes) -> str:
    """`X-Hub-Signature-256` of a body: `sha256=<hex HMAC-SHA256(secret, body)>`."""
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True if `header` is the app secret's signature of exactly these bytes (compared in constant time)."""
    if not app_secret or not header or not header.isascii():
        return False
    prefix, _, digest = header.strip().partition("=")
    if prefix.lower() != "sha256":
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), digest.lower().encode())


def verification_answer(params: dict[str, Any], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta's subscription handshake names our verify token, else None."""
    def one(name: str) -> str:
        value = params.get(name)
        if isinstance(value, list):  # multi-value query strings
            value = value[0] if value else None
        return value if isinstance(value, str) else ""

    token, challenge = one("hub.verify_token"), one("hub.challenge")
    if not verify_token or one("hub.mode") != "subscribe" or not challenge:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return challenge


# --- inbound: Meta → wagate -----------------------------------------------------------------------------------


def parse_webhook(payload: MetaWebhook | dict[str, Any] | bytes | str) -> MetaWebhook:
    """The payload as a model; raises `MetaPayloadError` (with the failing fields) when it is malformed."""
    if isinstance(payload, MetaWebhook):
        return payload
    try:
        if isinstance(payload, bytes | str):
            return MetaWebhook.model_validate_json(payload)
        return MetaWebhook.model_validate(payload)
    except ValidationError as exc:
        details = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()[:20]]
        raise MetaPayloadError("not a WhatsApp Cloud API webhook: " + "; ".join(
            f"{d['loc']}: {d['msg']}" for d in details[:3]), details) from None


def _values(payload: MetaWebhook | dict[str, Any] | bytes | str) -> list[tuple[str, MetaValue]]:
    hook = parse_webhook(payload)
    return [(entry.id, change.value) for entry in hook.entry for change in entry.changes
            if isinstance(change, MetaMessagesChange)]


def inbound_messages(payload: MetaWebhook | dict[str, Any] | bytes | str) -> list[InboundMessage]:
    """Every message users sent in this payload, as wagate stores it (reactions included, as `reaction`)."""
    found: list[InboundMessage] = []
    for waba_id, value in _values(payload):
        names = {c.wa_id: c.profile.name if c.profile else None for c in value.contacts}
        for msg in value.messages:
            kind, body = _content(msg)
            content: dict[str, Any] = {"type": kind, kind: body, "wa_message_id": msg.id}
            if msg.context is not None and msg.context.id:
                content["context"] = {"wa_message_id": msg.context.id}
            group_id = (msg.model_extra or {}).get("group_id")
            if isinstance(group_id, str) and group_id:
                content["group_id"] = group_id
            media = getattr(msg, kind) if kind in MEDIA_TYPES else None
            found.append(InboundMessage(
                phone_number_id=value.metadata.phone_number_id,
                display_phone_number=value.metadata.display_phone_number, waba_id=waba_id,
                wa_message_id=msg.id, from_number=msg.from_,
                profile_name=_profile_name(names, msg.from_),
                timestamp=msg.timestamp, type=kind, content=content,
                media_to_fetch=MediaToFetch(id=media.id, mime_type=media.mime_type, sha256=media.sha256,
                                            filename=media.filename, caption=media.caption) if media else None))
    return found


def _profile_name(names: dict[str, str | None], sender: str) -> str | None:
    if sender in names:
        return names[sender]
    # Meta's `wa_id` and `from` may differ in format (e.g. Brazil's ninth digit); one contact is the sender.
    return next(iter(names.values())) if len(names) == 1 else None


def _content(msg: MetaMessage) -> tuple[str, Any]:
    """Meta's message → wagate's `type` and body (the browser host's shapes, which follow Meta's)."""
    kind = msg.type
    if kind == "text" and msg.text is not None:
        return "text", {"body": msg.text.body}
    if kind in MEDIA_TYPES:
        media = getattr(msg, kind)
        body: dict[str, Any] = {"mime_type": media.mime_type}
        if media.caption:
            body["caption"] = media.caption
        if kind == "document" and media.filename:
            body["filename"] = media.filename
        if kind == "audio" and media.voice:
            body["voice"] = True
        if kind == "sticker" and media.animated:
            body["animated"] = True
        return kind, body
    if kind == "location" and msg.location is not None:
        return "location", msg.location.model_dump(exclude_none=True)
    if kind == "contacts" and msg.contacts is not None:
        return "contacts", [c.model_dump(exclude_none=True) for c in msg.contacts]
    if kind == "reaction" and msg.reaction is not None:
        emoji = msg.reaction.emoji or ""
        return "reaction", {"wa_message_id": msg.reaction.message_id, "emoji": emoji, "removed": emoji == ""}
    if kind == "interactive" and msg.interactive is not None:
        return "interactive", msg.interactive.model_dump(exclude_none=True)
    if kind == "button" and msg.button is not None:
        return "button", msg.button.model_dump(exclude_none=True)
    body = {"wa_type": kind[:64]}
    if msg.errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in msg.errors]
    return "unsupported", body


def status_updates(payload: MetaWebhook | dict[str, Any] | bytes | str) -> list[StatusUpdate]:
    """Every status of a message the business sent, in wagate's words; statuses wagate has no name for are skipped."""
    found: list[StatusUpdate] = []
    for _, value in _values(payload):
        for status in value.statuses:
            ours = _STATUSES.get(status.status)
            if ours is None:
                continue
            error = None
            if ours is MessageStatus.FAILED:
                error = _error(status.errors[0]) if status.errors else MessageError(
                    code="send_failed", message="Meta reported the message as failed")
            found.append(StatusUpdate(phone_number_id=value.metadata.phone_number_id, wa_message_id=status.id,
                                      recipient_id=status.recipient_id, status=ours, timestamp=status.timestamp,
                                      error=error))
    return found


def _error(error: MetaError) -> MessageError:
    text = error.message or error.title or "error"
    if error.error_data is not None and error.error_data.details and error.error_data.details != text:
        text = f"{text}: {error.error_data.details}"
    return MessageError(code=ERROR_CODES.get(error.code, "send_failed"), message=f"{text} (Meta error {error.code})")


def system_errors(payload: MetaWebhook | dict[str, Any] | bytes | str) -> list[MetaError]:
    """Errors Meta reports on the change itself, not on one message (rate limits, account problems)."""
    return [error for _, value in _values(payload) for error in value.errors]


# --- outbound: wagate event → Meta's payload ------------------------------------------------------------------


def to_meta_payload(event: dict[str, Any], *, phone_number_id: str, display_phone_number: str, waba_id: str,
                    wa_message_id: str | None = None, recipient: str | None = None) -> dict[str, Any] | None:
    """A wagate event as the webhook Meta would have sent; None for events Meta has no equivalent for.

    `message.status` events carry only wagate's `message_id`: pass the message's `wa_message_id` and `recipient`
    (its `to`) here, or in the event's data; without a `wa_message_id` the status names the `message_id`.
    """
    kind, data = event.get("type"), event.get("data") or {}
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": display_phone_number,
                                          "phone_number_id": phone_number_id}}
    if kind == EventType.MESSAGE_RECEIVED:
        value["contacts"] = [_contact(data, phone_number_id)]
        value["messages"] = [_received(event, data, display_phone_number)]
    elif kind == EventType.MESSAGE_REACTION:
        reaction: dict[str, Any] = {"message_id": str(data.get("wa_message_id") or "")}
        if data.get("emoji") and not data.get("removed"):
            reaction["emoji"] = data["emoji"]
        value["contacts"] = [_contact(data, phone_number_id)]
        value["messages"] = [{"from": _sender(data), "id": str(event.get("id") or ""),
                              "timestamp": str(_timestamp(event, data)), "type": "reaction", "reaction": reaction}]
    elif kind == EventType.MESSAGE_STATUS:
        status = _status(event, data, wa_message_id, recipient, phone_number_id)
        if status is None:
            return None
        # Meta now names the recipient in `contacts` beside statuses too (BSUID rollout, 2026).
        value["contacts"] = [{"wa_id": status["recipient_id"], "user_id": status["recipient_user_id"]}]
        value["statuses"] = [status]
    else:
        return None  # account.status, account.qr, message.edited, message.revoked: nothing in Meta's format
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def _sender(data: dict[str, Any]) -> str:
    sender = data.get("from")
    if not sender:
        raise MetaTranslationError("the event names no sender (`from`)")
    return str(sender)


def _contact(data: dict[str, Any], scope: str) -> dict[str, Any]:
    sender = _sender(data)
    return {"profile": {"name": data.get("profile_name") or ""}, "wa_id": sender,
            "user_id": business_scoped_user_id(scope, sender)}


def received_media_id(message_id: str, account_id: str) -> str:
    """The media id of a received message in Meta's format: `{message_id}.{account_id}` (just the message id when
    the account is unknown)."""
    return f"{message_id}.{account_id}" if account_id else message_id


def parse_received_media_id(media_id: str) -> tuple[str, str] | None:
    """(message id, account id) of `received_media_id`'s output; None for anything else."""
    message_id, dot, account_id = media_id.partition(".")
    if not dot or not message_id.startswith("msg_") or not account_id:
        return None
    return message_id, account_id


def business_scoped_user_id(scope: str, phone: str) -> str:
    """A stable stand-in for Meta's business-scoped user id (BSUID, `CC.<digits>`, required by current Cloud API
    clients): the same contact of the same number always gets the same id; other numbers get another. `ZZ`
    (no country) marks it as wagate's, not Meta's."""
    digest = hashlib.sha256(f"{scope}:{phone}".encode()).hexdigest()
    return f"ZZ.{int(digest[:16], 16)}"


def _timestamp(event: dict[str, Any], data: dict[str, Any]) -> int:
    if isinstance(data.get("timestamp"), int) and data["timestamp"] > 0:
        return int(data["timestamp"])
    created = str(event.get("created_at") or "")
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise MetaTranslationError(f"event {event.get('id')} has no timestamp and no valid created_at") from None


def _received(event: dict[str, Any], data: dict[str, Any], display_phone_number: str) -> dict[str, Any]:
    kind = str(data.get("type") or "unsupported")
    message: dict[str, Any] = {"from": _sender(data), "id": str(data.get("wa_message_id") or event.get("id") or ""),
                               "timestamp": str(_timestamp(event, data))}
    context = data.get("context")
    if isinstance(context, dict) and context.get("wa_message_id"):
        # Who wrote the quoted message is not in the event; replies mostly quote the business.
        message["context"] = {"from": display_phone_number, "id": str(context["wa_message_id"])}
    if data.get("group_id"):
        message["group_id"] = data["group_id"]
    body = data.get(kind)
    if kind in MEDIA_TYPES and isinstance(body, dict):
        media = _object(data.get("media"))
        out = {k: v for k, v in body.items() if v is not None}
        # Meta's media id names the media for `GET /{version}/{id}`; wagate's names the message and its account
        # (`GET /{version}/{msg_….acc_…}` on the compatibility route answers with a short-lived URL).
        out["id"] = received_media_id(str(data.get("message_id") or message["id"]), str(event.get("account_id") or ""))
        out["mime_type"] = body.get("mime_type") or media.get("mime_type") or "application/octet-stream"
        if media.get("sha256"):
            out["sha256"] = media["sha256"]
        if media.get("url"):
            out["url"] = media["url"]
        message.update(type=kind, **{kind: out})
    elif kind in {"text", "location", "contacts", "interactive", "button"} and body is not None:
        message.update(type=kind, **{kind: body})
    else:
        wa_type = body.get("wa_type") if isinstance(body, dict) and kind == "unsupported" else kind
        message.update(type="unsupported", errors=[{
            "code": UNSUPPORTED_META_CODE, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": f"Message type is currently not supported ({wa_type})."}}])
    return message


def _status(event: dict[str, Any], data: dict[str, Any], wa_message_id: str | None,
            recipient: str | None, scope: str) -> dict[str, Any] | None:
    ours = _STATUSES.get(str(data.get("status") or ""))
    if ours is None:
        return None  # queued, sending: Meta only reports what WhatsApp did
    wamid = wa_message_id or data.get("wa_message_id") or data.get("message_id")
    to = recipient or data.get("recipient") or data.get("to")
    if not wamid or not to:
        raise MetaTranslationError(f"message.status {event.get('id')} needs the message's wa_message_id and "
                                   "recipient")
    status: dict[str, Any] = {"id": str(wamid), "status": ours.value, "timestamp": str(_timestamp(event, data)),
                              "recipient_id": str(to), "recipient_user_id": business_scoped_user_id(scope, str(to))}
    if ours is MessageStatus.FAILED:
        error = _object(data.get("error"))
        text = str(error.get("message") or "Message failed to send")
        code = META_CODES.get(str(error.get("code") or ""), GENERIC_META_CODE)
        status["errors"] = [{"code": code, "title": text, "message": text, "error_data": {"details": text}}]
    return status


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dumps(payload: dict[str, Any]) -> bytes:
    """The body to POST (and sign): compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
