"""Events: what hosts (and the API) publish to the events queue, and what webhooks and the WebSocket API deliver.

Every event is `{"id": "evt_…", "type", "created_at", "account_id", "data"}`. The id is stable across
redeliveries (a webhook retry, a host that publishes the same ack twice), so receivers de-duplicate on it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_STATUS = "message.status"
    MESSAGE_REACTION = "message.reaction"
    MESSAGE_EDITED = "message.edited"
    MESSAGE_REVOKED = "message.revoked"
    ACCOUNT_STATUS = "account.status"
    ACCOUNT_QR = "account.qr"


class Event(BaseModel):
    """One event: what happened to which account, when."""

    id: str = Field(description="`evt_…`; the same across redeliveries: receivers de-duplicate on it.",
                    examples=["evt_01jc7q4k5y0s6b3f1x8m2n9v0a"])
    type: EventType
    created_at: str
    account_id: str
    data: dict[str, Any]
