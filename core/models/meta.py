"""Meta's WhatsApp Cloud API webhook (`object: whatsapp_business_account`), and what wagate reads out of it.

Meta adds fields without notice, so every model accepts (and keeps) unknown fields; the fields wagate reads are
typed and required where Meta always sends them. Only `changes[].field == "messages"` is parsed further; other
fields (`account_update`, template status, ...) are kept as plain objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from core.models.messages import MessageError, MessageStatus

# Message types whose body wagate reads; every other type arrives as `unsupported`.
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
KNOWN_TYPES = MEDIA_TYPES | {"text", "location", "contacts", "reaction", "interactive", "button"}


class _Open(BaseModel):
    """Unknown fields are accepted and kept (round-tripped by `model_dump`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MetaErrorData(_Open):
    details: str | None = None


class MetaError(_Open):
    """An error object: on a failed status, on an `unsupported` message, or on the change itself."""

    code: int
    title: str | None = None
    message: str | None = None
    error_data: MetaErrorData | None = None


class MetaMetadata(_Open):
    display_phone_number: str
    phone_number_id: str


class MetaProfile(_Open):
    name: str | None = None


class MetaContact(_Open):
    """Who sent the messages of a change (`value.contacts[]`)."""

    wa_id: str
    profile: MetaProfile | None = None


class MetaContext(_Open):
    """The message this one replies to (`id`), or only `forwarded` flags on a forwarded message."""

    id: str | None = None
    from_: str | None = Field(default=None, alias="from")


class MetaText(_Open):
    body: str


class MetaMedia(_Open):
    id: str
    mime_type: str
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None


class MetaLocation(_Open):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class MetaContactName(_Open):
    formatted_name: str


class MetaContactPhone(_Open):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class MetaSharedContact(_Open):
    """A contact card shared in a `contacts` message."""

    name: MetaContactName
    phones: list[MetaContactPhone] = []


class MetaReaction(_Open):
    message_id: str
    emoji: str | None = None  # omitted when the user removes a reaction


class MetaReply(_Open):
    id: str
    title: str
    description: str | None = None


class MetaInteractive(_Open):
    type: str
    button_reply: MetaReply | None = None
    list_reply: MetaReply | None = None

    @model_validator(mode="after")
    def _reply_present(self) -> MetaInteractive:
        if self.type in {"button_reply", "list_reply"} and getattr(self, self.type) is None:
            raise ValueError(f"interactive of type {self.type!r} has no {self.type!r} object")
        return self


class MetaButton(_Open):
    """A tap on a template's quick-reply button."""

    text: str
    payload: str | None = None


class MetaMessage(_Open):
    """One message a WhatsApp user sent the business."""

    from_: str = Field(alias="from")
    id: str
    timestamp: int
    type: str
    context: MetaContext | None = None
    text: MetaText | None = None
    image: MetaMedia | None = None
    video: MetaMedia | None = None
    audio: MetaMedia | None = None
    document: MetaMedia | None = None
    sticker: MetaMedia | None = None
    location: MetaLocation | None = None
    contacts: list[MetaSharedContact] | None = None
    reaction: MetaReaction | None = None
    interactive: MetaInteractive | None = None
    button: MetaButton | None = None
    errors: list[MetaError] | None = None

    @model_validator(mode="after")
    def _body_present(self) -> MetaMessage:
        if self.type in KNOWN_TYPES and getattr(self, self.type) is None:
            raise ValueError(f"message {self.id} of type {self.type!r} has no {self.type!r} object")
        return self


class MetaConversation(_Open):
    id: str | None = None


class MetaPricing(_Open):
    billable: bool | None = None
    category: str | None = None


class MetaStatus(_Open):
    """The progress of a message the business sent."""

    id: str
    status: str  # sent, delivered, read, failed; anything else is skipped, not refused
    timestamp: int
    recipient_id: str
    conversation: MetaConversation | None = None
    pricing: MetaPricing | None = None
    errors: list[MetaError] | None = None


class MetaValue(_Open):
    """`entry[].changes[].value` of a `messages` change."""

    messaging_product: Literal["whatsapp"]
    metadata: MetaMetadata
    contacts: list[MetaContact] = []
    messages: list[MetaMessage] = []
    statuses: list[MetaStatus] = []
    errors: list[MetaError] = []


class MetaMessagesChange(_Open):
    field: Literal["messages"]
    value: MetaValue


class MetaOtherChange(_Open):
    """A change wagate does not read (`account_update`, `message_template_status_update`, ...)."""

    field: str
    value: dict[str, Any]


def _change_kind(change: Any) -> str:
    field = change.get("field") if isinstance(change, dict) else getattr(change, "field", None)
    return "messages" if field == "messages" else "other"


MetaChange = Annotated[Annotated[MetaMessagesChange, Tag("messages")] | Annotated[MetaOtherChange, Tag("other")],
                       Discriminator(_change_kind)]


class MetaEntry(_Open):
    id: str = Field(description="The WhatsApp Business Account (WABA) id.")
    changes: list[MetaChange]


class MetaWebhook(_Open):
    """One POST of Meta's webhook: `{"object": "whatsapp_business_account", "entry": [...]}`."""

    object: Literal["whatsapp_business_account"]
    entry: list[MetaEntry]


# --- what wagate reads out of it ------------------------------------------------------------------------------


class MediaToFetch(BaseModel):
    """Media of a received message, still at Meta: `GET /{id}` on the Graph API gives a short-lived URL."""

    id: str = Field(description="Meta's media id.")
    mime_type: str
    sha256: str | None = Field(default=None, description="Of the plaintext bytes, hex or base64 as Meta sends it.")
    filename: str | None = None
    caption: str | None = None


class InboundMessage(BaseModel):
    """A received message as wagate stores it: `content` has the browser host's shape (docs/api.md)."""

    phone_number_id: str = Field(description="The business number it was sent to: routes it to an account.")
    display_phone_number: str
    waba_id: str
    wa_message_id: str
    from_number: str = Field(description="The sender's phone number (`from`).")
    profile_name: str | None
    timestamp: int
    type: str
    content: dict[str, Any] = Field(description="`{type, <type>: body, wa_message_id, context?, group_id?}`; "
                                                "`media` is added once `media_to_fetch` is stored.")
    media_to_fetch: MediaToFetch | None = None


class StatusUpdate(BaseModel):
    """A status Meta reported for a message the business sent."""

    phone_number_id: str
    wa_message_id: str
    recipient_id: str
    status: Literal[MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED]
    timestamp: int
    error: MessageError | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return MessageStatus(value) if isinstance(value, str) else value
