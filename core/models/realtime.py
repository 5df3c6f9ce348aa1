"""The WebSocket API's messages: the ticket answer, what a client sends, and what the server answers.

After a `subscribed` answer the server sends each matching event as its exact JSON (the same bytes a webhook
receives), so clients de-duplicate on the event `id`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.models.events import EventType


class TicketCreated(BaseModel):
    """A one-time ticket to open one WebSocket connection (browsers cannot send headers on a WebSocket)."""

    ticket: str = Field(description="One-time, valid for 60 s; opens one connection.")
    url: str = Field(description="The WebSocket URL with the ticket: `wss://…?ticket=…`.")
    expires_at: str


class Subscribe(BaseModel):
    """`{"action": "subscribe", ...}`: which events this connection receives; replaces any earlier one."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["subscribe"]
    account_ids: list[str] | None = Field(default=None, max_length=100,
                                          description="null: every account the key may see.")
    events: list[EventType] | None = Field(default=None, description="null: every event type.")
    since: str | None = Field(default=None, max_length=64, description="Replay the events after this event id.")


class Subscribed(BaseModel):
    type: Literal["subscribed"] = "subscribed"
    account_ids: list[str] | None
    events: list[EventType] | None


class ReplayIncomplete(BaseModel):
    """`since` is older than the replay window (or unknown): refetch what you missed over the REST API."""

    type: Literal["replay_incomplete"] = "replay_incomplete"


class RealtimeError(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str


class Subscription(BaseModel):
    """A connection's live subscription as the fan-out reads it: the key's scope and the client's filters."""

    model_config = ConfigDict(frozen=True)

    connection_id: str
    tenant_id: str
    scope: tuple[str, ...] = ()  # the key's account scope; empty = the whole tenant
    account_ids: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None

    def matches(self, event_type: str, account_id: str) -> bool:
        """Whether an event of this tenant goes to this connection (scope first, then the client's filters)."""
        if self.scope and account_id not in self.scope:
            return False
        if self.account_ids is not None and account_id not in self.account_ids:
            return False
        return self.events is None or event_type in self.events
