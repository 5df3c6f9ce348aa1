"""What a message carries: its type and content, as the network stores it and as pages and phones see it.

Three views of one `ChatMessage`: the wire (frames to and from pages, WhatsApp Web's MsgModel field
names), the phone's control API (snake_case) and the phone's `send` bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import SimError

Frame = dict[str, Any]
Direction = Literal["received", "sent"]
MEDIA_TYPES = ("image", "video", "audio", "ptt", "document", "sticker")
TYPES = ("chat", *MEDIA_TYPES, "location", "vcard", "multi_vcard", "poll_creation")
#: Largest media a message may carry: its base64 must fit a 20 MB WebSocket frame.
MAX_MEDIA_BYTES = 14 * 1024 * 1024
#: How long after sending a message its sender may edit it (WhatsApp: 15 minutes).
EDIT_WINDOW = 15 * 60


def normalize_phone(value: object) -> str:
    """Digits of a phone number or wid user (`+1 555-123`, `1555@c.us` -> `1555`)."""
    if not isinstance(value, str | int):
        raise SimError(400, "invalid_phone_number", "phone_number must be a string")
    digits = re.sub(r"\D", "", str(value).split("@", 1)[0].split(":", 1)[0])
    if not 5 <= len(digits) <= 15:
        raise SimError(400, "invalid_phone_number", f"not a phone number: {value!r}")
    return digits


def lid_for(phone: str) -> str:
    """The stable LID ("linked identity", `…@lid`) of a phone number: 15 digits derived from it."""
    digest = int.from_bytes(hashlib.sha256(f"wa_sim-lid:{phone}".encode()).digest()[:8], "big")
    return str(10**14 + digest % (9 * 10**14))


def vcard_for(phone: str, name: str) -> str:
    """A contact card as WhatsApp Web's `VCard.vcardFromContactModel` builds it."""
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;waid={phone}:+{phone}\nEND:VCARD"


def _decode_media(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SimError(400, "missing_media", "media_base64 is required for a media message")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SimError(400, "invalid_media", f"media is not base64: {exc}") from exc
    if len(data) > MAX_MEDIA_BYTES:
        raise SimError(413, "file_too_large", f"media of {len(data)} bytes exceeds {MAX_MEDIA_BYTES}")
    return data


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value != "" else None


@dataclass
class ChatMessage:
    """One message between a contact and an account, as the network saw it."""

    id: str
    contact: str
    account: str
    direction: Direction  # from the contact's point of view
    body: str
    timestamp: int
    status: str = "sent"
    type: str = "chat"
    caption: str | None = None
    filename: str | None = None
    mimetype: str | None = None
    media: bytes | None = None
    view_once: bool = False
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None
    vcard_list: list[dict[str, str]] = field(default_factory=list)
    poll: dict[str, Any] | None = None
    quoted_id: str | None = None
    #: The chat is the contact's `@lid` id (a message the contact sent as LID, or a reply to it).
    via_lid: bool = False
    #: reactor's phone number -> emoji
    reactions: dict[str, str] = field(default_factory=dict)
    #: voter's phone number -> selected option names
    votes: dict[str, list[str]] = field(default_factory=dict)
    #: Texts the message had before each edit (oldest first).
    edits: list[str] = field(default_factory=list)
    revoked: bool = False

    @property
    def chat_jid(self) -> str:
        """The chat's id on the account's page (`…@c.us`, or `…@lid` for a LID conversation)."""
        return f"{lid_for(self.contact)}@lid" if self.via_lid else f"{self.contact}@c.us"

    @property
    def from_account(self) -> bool:
        """Whether the account sent it (the contact received it)."""
        return self.direction == "received"

    @property
    def key(self) -> str:
        """The MsgKey._serialized the account's page uses for this message."""
        return f"{str(self.from_account).lower()}_{self.chat_jid}_{self.id}"

    @property
    def text(self) -> str:
        """The editable text: the body of a text message, else the caption."""
        return self.body if self.type == "chat" else self.caption or ""

    def to_json(self) -> Frame:
        """Control-API view, from the contact's side."""
        sender, receiver = (self.account, self.contact) if self.from_account else (self.contact, self.account)
        out: Frame = {
            "id": self.id, "key": self.key, "direction": self.direction, "from": sender, "to": receiver,
            "type": self.type, "body": self.body, "content": self.body, "timestamp": self.timestamp,
            "status": self.status, "quoted_id": self.quoted_id, "reactions": dict(self.reactions),
        }
        if self.media is not None:
            out.update(caption=self.caption, filename=self.filename, mimetype=self.mimetype,
                       size=len(self.media), sha256=hashlib.sha256(self.media).hexdigest(),
                       view_once=self.view_once)
        if self.type == "location":
            out.update(latitude=self.latitude, longitude=self.longitude, name=self.name,
                       address=self.address, url=self.url)
        if self.vcard_list:
            out["vcard"] = self.vcard_list[0]["vcard"] if self.type == "vcard" else None
            out["vcards"] = [dict(v) for v in self.vcard_list]
        if self.poll is not None:
            out["poll"] = {**self.poll, "votes": {k: list(v) for k, v in self.votes.items()}}
        if self.edits:
            out["edits"] = [*self.edits, self.text]
        if self.revoked:
            out["revoked"] = True
        if self.via_lid:
            out["lid"] = lid_for(self.contact)
        return out

    def wire(self) -> Frame:
        """The content fields of a message frame for a page (WhatsApp Web's MsgModel names)."""
        out: Frame = {"type": self.type, "body": self.body}
        if self.media is not None:
            out.update(caption=self.caption, filename=self.filename, mimetype=self.mimetype,
                       size=len(self.media), media=base64.b64encode(self.media).decode(),
                       isViewOnce=self.view_once)
        if self.type == "location":
            out.update(lat=self.latitude, lng=self.longitude, name=self.name, address=self.address,
                       clientUrl=self.url)
        if self.type == "vcard":
            out["vcardFormattedName"] = self.vcard_list[0]["displayName"]
        if self.type == "multi_vcard":
            out["vcardList"] = [dict(v) for v in self.vcard_list]
        if self.poll is not None:
            out.update(pollName=self.poll["name"],
                       pollOptions=[{"name": n, "localId": i} for i, n in enumerate(self.poll["options"])],
                       pollSelectableOptionsCount=self.poll["selectable_count"])
        return out


def from_wire(msg: Frame) -> Frame:
    """ChatMessage content fields from a page's `send` frame (MsgModel names)."""
    kind = str(msg.get("type") or "chat")
    if kind not in TYPES:
        raise SimError(400, "invalid_type", f"unknown message type {kind!r}")
    out: Frame = {"type": kind, "body": str(msg.get("body") or "")}
    if kind in MEDIA_TYPES:
        out.update(media=_decode_media(msg.get("media")), caption=_opt_str(msg, "caption"),
                   filename=_opt_str(msg, "filename"), mimetype=_opt_str(msg, "mimetype"),
                   view_once=bool(msg.get("isViewOnce")), body="")
    elif kind == "location":
        out.update(latitude=float(msg["lat"]), longitude=float(msg["lng"]), name=_opt_str(msg, "name"),
                   address=_opt_str(msg, "address"), url=_opt_str(msg, "clientUrl"), body="")
    elif kind == "vcard":
        out["vcard_list"] = [{"displayName": str(msg.get("vcardFormattedName") or ""), "vcard": out["body"]}]
    elif kind == "multi_vcard":
        out.update(vcard_list=[{"displayName": str(v["displayName"]), "vcard": str(v["vcard"])}
                               for v in msg.get("vcardList") or []], body="")
    elif kind == "poll_creation":
        options = [str(o["name"]) for o in msg.get("pollOptions") or []]
        out.update(poll={"name": str(msg.get("pollName") or ""), "options": options,
                         "selectable_count": int(msg.get("pollSelectableOptionsCount") or 0)}, body="")
    return out


def _infer_type(data: dict[str, Any]) -> str:
    kind = data.get("type")
    if isinstance(kind, str) and kind:
        return {"text": "chat", "poll": "poll_creation", "contacts": "vcard", "voice": "ptt"}.get(kind, kind)
    for name, inferred in (("media_base64", "document"), ("location", "location"), ("vcard", "vcard"),
                           ("contacts", "vcard"), ("poll", "poll_creation")):
        if data.get(name) is not None:
            if inferred == "document":
                major = str(data.get("mimetype") or "").split("/", 1)[0]
                return "ptt" if data.get("ptt") else {"image": "image", "video": "video",
                                                       "audio": "audio"}.get(major, "document")
            return inferred
    return "chat"


def from_phone(data: dict[str, Any]) -> Frame:
    """ChatMessage content fields from a phone's `POST /sim/contacts/{contact}/send` body."""
    kind = _infer_type(data)
    if kind == "audio" and data.get("ptt"):
        kind = "ptt"
    if kind not in TYPES:
        raise SimError(400, "invalid_type", f"type is one of text, {', '.join(TYPES[1:])}, poll")
    if kind == "chat":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SimError(400, "missing_text", "text is required")
        return {"type": "chat", "body": text}
    if kind in MEDIA_TYPES:
        mimetype = _opt_str(data, "mimetype") or {"ptt": "audio/ogg; codecs=opus", "sticker": "image/webp"}.get(
            kind, "application/octet-stream")
        return {"type": kind, "body": "", "media": _decode_media(data.get("media_base64")), "mimetype": mimetype,
                "filename": _opt_str(data, "filename"), "caption": _opt_str(data, "caption"),
                "view_once": bool(data.get("view_once"))}
    if kind == "location":
        loc: dict[str, Any] = data["location"] if isinstance(data.get("location"), dict) else data
        try:
            lat, lng = float(loc["latitude"]), float(loc["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SimError(400, "invalid_location", "location needs numeric latitude and longitude") from exc
        return {"type": "location", "body": "", "latitude": lat, "longitude": lng, "name": _opt_str(loc, "name"),
                "address": _opt_str(loc, "address"), "url": _opt_str(loc, "url")}
    if kind in ("vcard", "multi_vcard"):
        return _vcards(data)
    poll = data.get("poll")
    if not isinstance(poll, dict) or not isinstance(poll.get("name"), str) or not poll.get("options"):
        raise SimError(400, "invalid_poll", "poll needs a name and options")
    return {"type": "poll_creation", "body": "", "poll": {
        "name": poll["name"], "options": [str(o) for o in poll["options"]],
        "selectable_count": int(poll.get("selectable_count") or 0)}}


def _vcards(data: dict[str, Any]) -> Frame:
    cards: list[dict[str, str]] = []
    if isinstance(data.get("vcard"), str):
        card = data["vcard"]
        name = next((line[3:] for line in card.splitlines() if line.startswith("FN:")), "")
        cards.append({"displayName": name, "vcard": card})
    # `vcard` may also be one contact {phone, name} or a list of them, like `contacts`.
    extra = data.get("vcard") if isinstance(data.get("vcard"), dict | list) else []
    contacts = [*(extra if isinstance(extra, list) else [extra]), *(data.get("contacts") or [])]
    for contact in contacts:
        if not isinstance(contact, dict) or not contact.get("phone"):
            raise SimError(400, "invalid_contacts", "contacts are [{phone, name}]")
        phone = "".join(c for c in str(contact["phone"]).split("@")[0] if c.isdigit())
        name = str(contact.get("name") or f"+{phone}")
        cards.append({"displayName": name, "vcard": vcard_for(phone, name)})
    if not cards:
        raise SimError(400, "missing_vcard", "give vcard (text) or contacts [{phone, name}]")
    if len(cards) == 1:
        return {"type": "vcard", "body": cards[0]["vcard"], "vcard_list": cards}
    return {"type": "multi_vcard", "body": "", "vcard_list": cards}
