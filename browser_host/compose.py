"""From a stored outbound row (the Cloud API message object) to the one wa-js call that carries it out.

Pure functions: what to load (media bytes, the WhatsApp key of a quoted or reacted-to message) is decided by
the outbox; here an envelope plus what was loaded becomes an `Outgoing` — the name of a call in
`bridge.SEND` / `bridge.OPERATE` and its arguments in the shapes of wa-js 4.6.0's `.d.ts`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from browser_host.page import PermanentSendError, chat_id, wa_message_id
from core.models.choices import numbered_text
from core.models.rich import InteractiveBody

# Calls that create a WhatsApp message with the id we choose (found again after a crash, never sent twice).
MESSAGE_CALLS = frozenset({"text", "file", "location", "vcard", "poll"})
# Calls that act on an existing message or chat: idempotent by nature (same emoji, same text, revoked once).
OPERATIONS = frozenset({"reaction", "edit", "revoke", "read"})
# A read receipt with Meta's `typing_indicator` shows "typing…" this long, or until the next message goes out.
TYPING_MS = 25_000


@dataclass(frozen=True)
class MediaBytes:
    data: bytes
    mime_type: str
    filename: str | None = None


@dataclass(frozen=True)
class Outgoing:
    call: str  # a key of bridge.SEND (MESSAGE_CALLS) or bridge.OPERATE (OPERATIONS)
    args: list[Any] = field(default_factory=list)

    @property
    def is_operation(self) -> bool:
        return self.call in OPERATIONS


def target_of(envelope: dict[str, Any]) -> str | None:
    """The message (wagate or WhatsApp id) an envelope acts on or quotes, if any."""
    kind = envelope.get("type")
    if kind == "reaction":
        return str(envelope.get("reaction", {}).get("message_id") or "") or None
    if kind in {"edit", "revoke", "read"}:
        return str(envelope.get("message_id") or "") or None
    return str((envelope.get("context") or {}).get("message_id") or "") or None


def compose(message_id: str, envelope: dict[str, Any], *, target_key: str | None = None,
            media: MediaBytes | None = None) -> Outgoing:
    """The wa-js call for one row. `target_key` is the WhatsApp key (`true_…`/`false_…`) of the quoted, reacted-to,
    edited, revoked or read message; `media` the bytes of a media message. Raises PermanentSendError for a row
    that can never be sent (an unknown type)."""
    kind = str(envelope.get("type"))
    to = str(envelope.get("to") or "")
    chat = chat_id(to) if to else (_chat_of(target_key) if target_key else "")
    options: dict[str, Any] = {"messageId": wa_message_id(message_id), "waitForAck": False, "createChat": True}
    if target_key and kind not in OPERATIONS and kind != "reaction":
        options["quotedMsg"] = target_key
    if kind == "text":
        text = envelope["text"]
        options["linkPreview"] = bool(text.get("preview_url"))
        return Outgoing("text", [chat, text["body"], options])
    if kind in {"image", "video", "audio", "document", "sticker"}:
        if media is None:
            raise PermanentSendError("media_not_found", "the media of this message could not be loaded")
        body = envelope[kind]
        options.update({"type": kind, "mimetype": media.mime_type})
        if body.get("caption"):
            options["caption"] = body["caption"]
        if kind == "document":
            options["filename"] = body.get("filename") or media.filename or "document"
        if kind == "audio" and body.get("voice"):
            options["isPtt"] = True
        content = f"data:{media.mime_type};base64,{base64.b64encode(media.data).decode()}"
        return Outgoing("file", [chat, content, options])
    if kind == "interactive":
        # WhatsApp Web has no buttons or lists: numbered text; inbound.py turns a numeric answer into the reply.
        options["linkPreview"] = False
        return Outgoing("text", [chat, numbered_text(interactive_body(envelope)), options])
    if kind == "location":
        location = envelope["location"]
        options.update({"lat": location["latitude"], "lng": location["longitude"]})
        for name in ("name", "address"):
            if location.get(name):
                options[name] = location[name]
        return Outgoing("location", [chat, options])
    if kind == "contacts":
        return Outgoing("vcard", [chat, [_vcard_contact(c) for c in envelope["contacts"]], options])
    if kind == "poll":
        poll = envelope["poll"]
        options["selectableCount"] = int(poll.get("max_selections") or 1)
        return Outgoing("poll", [chat, poll["question"], list(poll["options"]), options])
    if kind in OPERATIONS | {"reaction"}:
        if not target_key:
            raise PermanentSendError("message_not_found", "the message this acts on has no WhatsApp id (never sent)")
        if kind == "reaction":
            return Outgoing("reaction", [{"target": target_key, "emoji": envelope["reaction"].get("emoji") or ""}])
        if kind == "edit":
            text = envelope["text"]
            return Outgoing("edit", [{"target": target_key, "text": text["body"],
                                      "linkPreview": bool(text.get("preview_url"))}])
        operation: dict[str, Any] = {"target": target_key, "chat": _chat_of(target_key)}
        if kind == "read" and envelope.get("typing_indicator"):
            operation["typing"] = TYPING_MS
        return Outgoing(kind, [operation])
    raise PermanentSendError("unsupported_message_type", f"{kind} messages cannot be sent by the web provider")


def interactive_body(envelope: dict[str, Any]) -> InteractiveBody:
    """The button or list of a stored interactive envelope; PermanentSendError for anything WhatsApp Web cannot
    show as numbered text."""
    try:
        body = InteractiveBody.model_validate(envelope.get("interactive"))
    except ValidationError as exc:
        raise PermanentSendError("invalid_message", "the stored interactive message cannot be read") from exc
    if body.type not in ("button", "list"):
        raise PermanentSendError("unsupported_message_type",
                                 f"interactive {body.type} messages cannot be sent by the web provider")
    return body


def _chat_of(key: str) -> str:
    """The chat of a serialized key `true_<chat>_<id>` (chat ids contain no `_`)."""
    parts = key.split("_")
    return parts[1] if len(parts) >= 3 else key


def _vcard_contact(contact: dict[str, Any]) -> dict[str, str]:
    """wa-js builds the vCard from a WhatsApp id and a name (`VCardContact`): the first phone carries it."""
    name = str(contact["name"]["formatted_name"])
    phones = contact.get("phones") or []
    phone = next((p.get("wa_id") or p.get("phone") for p in phones if p.get("wa_id") or p.get("phone")), None)
    if not phone:
        raise PermanentSendError("invalid_contact", f"contact {name!r} has no phone number to share")
    digits = "".join(ch for ch in str(phone) if ch.isdigit())
    return {"id": f"{digits}@c.us", "name": name}
