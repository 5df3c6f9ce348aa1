"""Message resources: what the API accepts and shows."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"


TERMINAL_STATUSES = frozenset({MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED,
                               MessageStatus.RECEIVED})
# Outbound progress only moves forward; an ack may skip a step but never goes back.
STATUS_RANK = {
    MessageStatus.QUEUED: 0, MessageStatus.SENDING: 1, MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3, MessageStatus.READ: 4,
}


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageError(BaseModel):
    code: str = Field(examples=["account_not_connected"])
    message: str


class MessageStatusChange(BaseModel):
    status: MessageStatus
    at: str
    reason: str | None = None


class MessageEdit(BaseModel):
    body: str
    at: str


class Message(BaseModel):
    """A message sent or received by an account."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    message_id: str
    account_id: str
    direction: Direction
    status: MessageStatus
    type: str
    to: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    from_lid: str | None = Field(default=None, description="The sender's LID (`…@lid`) when WhatsApp gave one.")
    content: dict[str, Any] = Field(description="The Cloud-API-shaped envelope (outbound) or payload (inbound).")
    client_reference: str | None = None
    wa_message_id: str | None = None
    error: MessageError | None = None
    status_history: list[MessageStatusChange] = Field(default_factory=list)
    reactions: dict[str, str] = Field(default_factory=dict, description="Emoji by reacting number (or `me`).")
    edits: list[MessageEdit] = Field(default_factory=list, description="Later versions of the text, oldest first.")
    revoked: bool = Field(default=False, description="Deleted for everyone.")
    scheduled_at: str | None = Field(default=None, description="Held back by the account's pacing (minimum gap, "
                                                               "daily cap) until this time; null: not paced.")
    created_at: str
    updated_at: str


class MessageAccepted(BaseModel):
    """Answer of an accepted send: the message is queued and will reach a terminal status."""

    message_id: str
    account_id: str
    status: MessageStatus
