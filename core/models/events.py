"""Events the browser host publishes to the events queue (and webhooks deliver, signed)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_STATUS = "message.status"
    ACCOUNT_STATUS = "account.status"
    ACCOUNT_QR = "account.qr"


class Event(BaseModel):
    """One event: what happened to which account, when."""

    event_id: str = Field(description="Unique id; consumers deduplicate on it.")
    type: EventType
    occurred_at: str
    account_id: str
    tenant_id: str
    correlation_id: str | None = None
    payload: dict[str, Any]
