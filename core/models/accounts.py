"""WhatsApp accounts: API bodies and the account resource."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.models.events import EventType
from core.models.validators import check_metadata, check_webhook_url, normalise_phone

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class ConnectionStatus(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    SCAN_QR_CODE = "SCAN_QR_CODE"
    WORKING = "WORKING"
    FAILED = "FAILED"


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class AccountAction(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    LOGOUT = "logout"


WebhookEvent = EventType  # a webhook subscribes to event types


class WebhookSettings(BaseModel):
    """Where this account's events are delivered; the secret is write-only."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://example.com/wagate"])
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WebhookEvent), min_length=1)
    secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="HMAC secret; never returned."
    )

    _url = field_validator("url")(check_webhook_url)


class WebhookView(BaseModel):
    url: str
    events: list[WebhookEvent]
    has_secret: bool


class AccountCreate(BaseModel):
    """Body of `POST /accounts`."""

    model_config = ConfigDict(extra="forbid")

    account_name: str = Field(min_length=1, max_length=100, examples=["Support line"])
    phone_number: str | None = Field(default=None, examples=["+15551234567"])
    provider: Literal["web"] = "web"
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form, up to 8 KB of JSON.")
    webhook: WebhookSettings | None = None

    _phone = field_validator("phone_number")(normalise_phone)
    _metadata = field_validator("metadata")(check_metadata)


class AccountUpdate(BaseModel):
    """Body of `PATCH /accounts/{account_id}`: fields present replace the stored ones."""

    model_config = ConfigDict(extra="forbid")

    account_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone_number: str | None = None
    metadata: dict[str, Any] | None = None
    webhook: WebhookSettings | None = None
    version: int | None = Field(default=None, ge=1, description="Expected version (or send `If-Match`).")

    _phone = field_validator("phone_number")(normalise_phone)
    _metadata = field_validator("metadata")(check_metadata)


class StatusChange(BaseModel):
    at: str
    from_status: ConnectionStatus | None = Field(default=None, alias="from")
    to_status: ConnectionStatus = Field(alias="to")
    reason: str | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Account(BaseModel):
    """A WhatsApp account (UI: "WhatsApp Number")."""

    account_id: str
    account_name: str
    phone_number: str | None = None
    provider: str = "web"
    connection_status: ConnectionStatus
    status_reason: str | None = None
    desired_state: DesiredState
    pending_action: AccountAction | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook: WebhookView | None = None
    status_history: list[StatusChange] = Field(default_factory=list)
    host_id: str | None = Field(default=None, description="The browser host driving it now; null when none does.")
    created_at: str
    updated_at: str
    version: int


class AccountActionAccepted(BaseModel):
    account_id: str
    action: AccountAction
    desired_state: DesiredState
    connection_status: ConnectionStatus


class QrCode(BaseModel):
    value: str = Field(description="The auth code to render as a QR code.")
    expires_at: str | None = None


class PairingCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str

    _phone = field_validator("phone_number")(normalise_phone)


class PairingCode(BaseModel):
    code: str | None = Field(default=None, description="8-character code, once the host has it.")
    phone_number: str
    status: Literal["pending", "ready"]
    expires_at: str | None = None
