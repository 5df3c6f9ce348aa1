"""The outbound message envelope: the message object of the Meta WhatsApp Cloud API plus wagate's fields.

The same classes validate `POST /accounts/{id}/messages` bodies and SQS ingress messages
(which add `account_id`), and generate the OpenAPI document and the published JSON Schemas.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    TypeAdapter,
    create_model,
    field_validator,
    model_validator,
)

from core.models.accounts import ACCOUNT_ID_PATTERN
from core.models.rich import InteractiveBody, TemplateBody
from core.models.validators import PHONE_BODY, compact_phone

# A phone number (separators allowed) or a group id; ASCII digits only, the same pattern in the JSON Schema.
TO_PATTERN = rf"^(?:{PHONE_BODY}|[0-9]{{6,32}}(?:-[0-9]{{6,20}})?@g\.us)$"
_TO = re.compile(TO_PATTERN)
# Inline media stays small enough for an SQS ingress message (256 KB, base64 included); larger media goes
# through POST /media (presigned upload) and is sent by id.
MAX_INLINE_MEDIA_BYTES = 100 * 1024
# What b64decode(validate=True) takes, and a length whose every such string decodes within the limit.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
BASE64_MAX_LENGTH = MAX_INLINE_MEDIA_BYTES // 3 * 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextBody(_Strict):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: StrictBool = False


class _MediaBody(_Strict):
    """Exactly one source: an HTTPS `link`, an `id` from `POST /media`, or base64 `data`."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [  # what _one_source checks
        {"required": ["link"], "properties": {"link": {"type": "string"}, "id": {"type": "null"},
                                              "data": {"type": "null"}}},
        {"required": ["id"], "properties": {"id": {"type": "string"}, "link": {"type": "null"},
                                            "data": {"type": "null"}}},
        {"required": ["data", "mime_type"], "properties": {"data": {"type": "string"}, "mime_type": {
            "type": "string"}, "link": {"type": "null"}, "id": {"type": "null"}}},
    ]})

    link: str | None = Field(default=None, max_length=2048, examples=["https://example.com/cat.jpg"],
                             json_schema_extra={"pattern": "^https?://"})
    id: str | None = Field(default=None, max_length=200)
    data: str | None = Field(default=None, description="Inline base64 content (up to 100 KB decoded); "
                                   "larger media: upload with POST /media and send its id.",
                             json_schema_extra={"pattern": BASE64_PATTERN, "maxLength": BASE64_MAX_LENGTH})
    mime_type: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.+-]+/[A-Za-z0-9_.+-]+$")

    @field_validator("link")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        # https only, except for hosts on the operator's allow-list (checked with the settings at accept time).
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be valid base64") from exc
        if len(decoded) > MAX_INLINE_MEDIA_BYTES:
            raise ValueError(f"inline media is limited to {MAX_INLINE_MEDIA_BYTES} bytes decoded; upload larger "
                             "media with POST /media and send its id")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> _MediaBody:
        sources = [name for name in ("link", "id", "data") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of link, id or data")
        if self.data is not None and self.mime_type is None:
            raise ValueError("mime_type is required with inline data")
        return self


class ImageBody(_MediaBody):
    caption: str | None = Field(default=None, max_length=1024)


class VideoBody(_MediaBody):
    caption: str | None = Field(default=None, max_length=1024)


class AudioBody(_MediaBody):
    voice: StrictBool = Field(default=False, description="wagate: send as a voice note (push-to-talk).")


class DocumentBody(_MediaBody):
    caption: str | None = Field(default=None, max_length=1024)
    filename: str | None = Field(default=None, max_length=240)


class StickerBody(_MediaBody):
    pass


class LocationBody(_Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=1000)
    address: str | None = Field(default=None, max_length=1000)


class ContactName(_Strict):
    formatted_name: str = Field(min_length=1, max_length=512)
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(_Strict):
    model_config = ConfigDict(json_schema_extra={"anyOf": [  # what _some_number checks
        {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
        {"required": ["wa_id"], "properties": {"wa_id": {"type": "string"}}},
    ]})

    phone: str | None = Field(default=None, min_length=3, max_length=40)
    type: str | None = None
    wa_id: str | None = Field(default=None, pattern=r"^\d{6,20}$")

    @model_validator(mode="after")
    def _some_number(self) -> ContactPhone:
        if self.phone is None and self.wa_id is None:
            raise ValueError("give phone or wa_id")
        return self


class ContactEmail(_Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    type: str | None = None


class ContactUrl(_Strict):
    url: str = Field(min_length=1, max_length=2048)
    type: str | None = None


class ContactOrg(_Strict):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactAddress(_Strict):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class Contact(_Strict):
    name: ContactName
    phones: list[ContactPhone] = Field(default_factory=list, max_length=20)
    emails: list[ContactEmail] = Field(default_factory=list, max_length=20)
    urls: list[ContactUrl] = Field(default_factory=list, max_length=20)
    org: ContactOrg | None = None
    addresses: list[ContactAddress] = Field(default_factory=list, max_length=20)
    birthday: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class ReactionBody(_Strict):
    message_id: str = Field(min_length=1, max_length=200)
    emoji: str = Field(max_length=16, description="An emoji; empty string removes the reaction.")


class PollBody(_Strict):
    """wagate extension (WhatsApp Web polls; the Cloud API has none)."""

    question: str = Field(min_length=1, max_length=255)
    # Something besides whitespace (what str.strip() removes: ECMA's \s plus \x1c-\x1f and \x85).
    options: list[Annotated[str, Field(min_length=1, max_length=100, pattern=r"[^\s\x1c-\x1f\x85]")]] = Field(
        min_length=2, max_length=12, json_schema_extra={"uniqueItems": True})
    max_selections: int = Field(default=1, ge=1, description="How many options a voter may pick.")

    @model_validator(mode="after")
    def _options(self) -> PollBody:
        cleaned = [o.strip() for o in self.options]
        if any(not o or len(o) > 100 for o in cleaned):
            raise ValueError("each option needs 1 to 100 characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("options must be distinct")
        if self.max_selections > len(cleaned):
            raise ValueError("max_selections cannot exceed the number of options")
        self.options = cleaned
        return self


class ReplyContext(_Strict):
    message_id: str = Field(min_length=1, max_length=200)


class _Envelope(_Strict):
    messaging_product: Literal["whatsapp"] = "whatsapp"
    recipient_type: Literal["individual", "group"] = "individual"
    to: str = Field(examples=["15551234567"], description="Phone number (E.164) or a group id `...@g.us`.",
                    json_schema_extra={"pattern": TO_PATTERN})
    context: ReplyContext | None = None
    client_reference: str | None = Field(
        default=None,
        max_length=512,
        validation_alias=AliasChoices("client_reference", "biz_opaque_callback_data"),
        description="Your reference, echoed in status events (Cloud API: biz_opaque_callback_data).",
    )

    @field_validator("to")
    @classmethod
    def _recipient(cls, value: str) -> str:
        if not _TO.fullmatch(value):
            raise ValueError("must be a phone number in international format or a group id ending in @g.us")
        return value if "@" in value else compact_phone(value)


class TextMessage(_Envelope):
    type: Literal["text"]
    text: TextBody


class ImageMessage(_Envelope):
    type: Literal["image"]
    image: ImageBody


class VideoMessage(_Envelope):
    type: Literal["video"]
    video: VideoBody


class AudioMessage(_Envelope):
    type: Literal["audio"]
    audio: AudioBody


class DocumentMessage(_Envelope):
    type: Literal["document"]
    document: DocumentBody


class StickerMessage(_Envelope):
    type: Literal["sticker"]
    sticker: StickerBody


class LocationMessage(_Envelope):
    type: Literal["location"]
    location: LocationBody


class ContactsMessage(_Envelope):
    type: Literal["contacts"]
    contacts: list[Contact] = Field(min_length=1, max_length=20)


class ReactionMessage(_Envelope):
    type: Literal["reaction"]
    reaction: ReactionBody


class PollMessage(_Envelope):
    type: Literal["poll"]
    poll: PollBody


class TemplateMessage(_Envelope):
    """Cloud API numbers only (WhatsApp Web has no templates)."""

    type: Literal["template"]
    template: TemplateBody


class InteractiveMessage(_Envelope):
    """Buttons, lists, CTA URLs, flows: Cloud API numbers; WhatsApp Web numbers only as numbered text, when their
    `options.interactive_fallback` is `numbered_text`."""

    type: Literal["interactive"]
    interactive: InteractiveBody


class TypingIndicator(_Strict):
    type: Literal["text"]


class MarkRead(_Strict):
    """Cloud API read receipt: `{"messaging_product": "whatsapp", "status": "read", "message_id": ...}` on the send
    endpoint; the contact sees the chat read up to that message. With `typing_indicator` the contact also sees
    "typing…" for up to 25 s, or until the account's next message."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    status: Literal["read"]
    message_id: str = Field(min_length=1, max_length=200, description="An inbound message (wagate or WhatsApp id).")
    typing_indicator: TypingIndicator | None = Field(
        default=None, description='`{"type": "text"}`: show the contact "typing…" (up to 25 s or until you send).')


class EditRequest(_Strict):
    """`PATCH /accounts/{id}/messages/{message_id}`: new text (or caption) for a message the account sent."""

    text: TextBody


VARIANTS: tuple[type[_Envelope], ...] = (
    TextMessage, ImageMessage, VideoMessage, AudioMessage, DocumentMessage,
    StickerMessage, LocationMessage, ContactsMessage, ReactionMessage, PollMessage, TemplateMessage,
    InteractiveMessage,
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})

OutboundMessage = Annotated[
    TextMessage | ImageMessage | VideoMessage | AudioMessage | DocumentMessage | StickerMessage
    | LocationMessage | ContactsMessage | ReactionMessage | PollMessage | TemplateMessage | InteractiveMessage,
    Field(discriminator="type"),
]
OUTBOUND_ADAPTER: TypeAdapter[Any] = TypeAdapter(OutboundMessage)


def _send_kind(value: Any) -> str | None:
    """A read receipt has `status` and no `type`; everything else is told apart by `type` (pydantic's
    union_tag_not_found / union_tag_invalid errors when it is missing or unknown)."""
    if isinstance(value, dict):
        return "read" if "status" in value and "type" not in value else value.get("type")
    if isinstance(value, BaseModel):
        return "read" if isinstance(value, MarkRead) else getattr(value, "type", None)
    return "text"  # not an object at all: let a model say so (model_attributes_type)


# What `POST /accounts/{id}/messages` accepts: a message of any type, or a read receipt.
SendRequest = Annotated[
    Annotated[TextMessage, Tag("text")] | Annotated[ImageMessage, Tag("image")]
    | Annotated[VideoMessage, Tag("video")] | Annotated[AudioMessage, Tag("audio")]
    | Annotated[DocumentMessage, Tag("document")] | Annotated[StickerMessage, Tag("sticker")]
    | Annotated[LocationMessage, Tag("location")] | Annotated[ContactsMessage, Tag("contacts")]
    | Annotated[ReactionMessage, Tag("reaction")] | Annotated[PollMessage, Tag("poll")]
    | Annotated[TemplateMessage, Tag("template")] | Annotated[InteractiveMessage, Tag("interactive")]
    | Annotated[MarkRead, Tag("read")],
    Discriminator(_send_kind),
]


def _ingress_variant(variant: type[_Envelope]) -> type[_Envelope]:
    extra: dict[str, Any] = {
        "account_id": (str, Field(pattern=ACCOUNT_ID_PATTERN, description="The sending account.")),
        "idempotency_key": (str | None, Field(default=None, max_length=200)),
        "correlation_id": (str | None, Field(default=None, max_length=200)),
        "reply_to": (str | None, Field(
            default=None, max_length=300,
            description="An SQS queue URL registered on the producer (`reply_queue_urls`): the message's "
                        "`message.status` events are also sent there.")),
    }
    return create_model(f"Ingress{variant.__name__}", __base__=variant, **extra)


_INGRESS = tuple(_ingress_variant(v) for v in VARIANTS)
IngressMessage = Annotated[
    _INGRESS[0] | _INGRESS[1] | _INGRESS[2] | _INGRESS[3] | _INGRESS[4] | _INGRESS[5]  # type: ignore[valid-type]
    | _INGRESS[6] | _INGRESS[7] | _INGRESS[8] | _INGRESS[9] | _INGRESS[10]  # type: ignore[valid-type]
    | _INGRESS[11],  # type: ignore[valid-type]
    Field(discriminator="type"),
]
INGRESS_ADAPTER: TypeAdapter[Any] = TypeAdapter(IngressMessage)


def envelope_fields(message: BaseModel) -> dict[str, Any]:
    """The Cloud-API-shaped envelope of a validated message, without wagate routing fields."""
    data = message.model_dump(mode="json", exclude_none=True)
    for routing in ("account_id", "idempotency_key", "correlation_id", "reply_to"):
        data.pop(routing, None)
    return data
