"""The legacy "session" vocabulary: status mapping and the `/sessions` bodies (legacy layer only)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from core.models.accounts import (
    AccountAction,
    AccountCreate,
    AccountOptions,
    AccountUpdate,
    CloudView,
    ConnectionStatus,
    DesiredState,
    StatusChange,
    WebhookView,
)
from core.models.messages import Direction, MessageEdit, MessageError, MessageStatus, MessageStatusChange
from core.models.proxies import ProxyView

S = ConnectionStatus
# legacy status (lower-cased) -> (new status, whether the number should keep running).
# The first five are the legacy platform's documented values; the rest are spellings other
# gateways (WAHA, Baileys, Evolution, wppconnect) export, so their rows need no manual fix-up.
# The migration (infra/migration) and the /sessions API both read this one table.
STATUS_MAP: dict[str, tuple[ConnectionStatus, bool]] = {
    "connected": (S.WORKING, True),
    "disconnected": (S.STOPPED, False),
    "qr_scanning": (S.SCAN_QR_CODE, True),
    "authenticating": (S.STARTING, True),
    "failed": (S.FAILED, False),
    "working": (S.WORKING, True), "open": (S.WORKING, True), "ready": (S.WORKING, True),
    "authenticated": (S.WORKING, True), "inchat": (S.WORKING, True),
    "stopped": (S.STOPPED, False), "close": (S.STOPPED, False), "closed": (S.STOPPED, False),
    "logged_out": (S.STOPPED, False), "logout": (S.STOPPED, False),
    "starting": (S.STARTING, True), "connecting": (S.STARTING, True), "initializing": (S.STARTING, True),
    "scan_qr_code": (S.SCAN_QR_CODE, True), "qr": (S.SCAN_QR_CODE, True), "qrcode": (S.SCAN_QR_CODE, True),
    "pairing": (S.SCAN_QR_CODE, True),
    "error": (S.FAILED, False), "banned": (S.FAILED, False),
}

# When the /sessions API was deprecated (RFC 9745 `Deprecation`): the release that introduced /accounts.
DEPRECATED_SINCE = datetime(2026, 11, 22, tzinfo=UTC)


class LegacyStatus(StrEnum):
    """The legacy platform's documented `status` values: what /sessions answers and filters by."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    QR_SCANNING = "qr_scanning"
    AUTHENTICATING = "authenticating"
    FAILED = "failed"


# new -> old for answers: the one documented legacy value each connection status came from.
LEGACY_STATUS_OF: dict[ConnectionStatus, LegacyStatus] = {STATUS_MAP[old][0]: old for old in LegacyStatus}


def connection_status_of(legacy: LegacyStatus) -> ConnectionStatus:
    """old -> new, for the `?status=` filter."""
    return STATUS_MAP[legacy.value][0]


# wagate name -> legacy name, in answers; `connection_status` values are translated too.
RENAMES = {"account_id": "session_id", "account_name": "session_name", "connection_status": "status"}

# Requests may use either name, so half-migrated clients keep working.
NAME_ALIASES = AliasChoices("session_name", "account_name")


class SessionCreate(AccountCreate):
    """Body of `POST /sessions`: an account create that also takes `session_name`."""

    account_name: str = Field(min_length=1, max_length=100, examples=["Support line"], validation_alias=NAME_ALIASES,
                              description="The account name (`account_name` is accepted too).")


class SessionUpdate(AccountUpdate):
    """Body of `PATCH /sessions/{session_id}`: an account update that also takes `session_name`."""

    account_name: str | None = Field(default=None, min_length=1, max_length=100, validation_alias=NAME_ALIASES,
                                     description="The account name (`account_name` is accepted too).")


class Session(BaseModel):
    """An account in the legacy shape: `session_id`, `session_name`, `status` (legacy values)."""

    session_id: str
    session_name: str
    phone_number: str | None = None
    provider: str = "web"
    cloud: CloudView | None = None
    proxy: ProxyView | None = None
    options: AccountOptions = Field(default_factory=AccountOptions)
    status: LegacyStatus
    status_reason: str | None = None
    desired_state: DesiredState
    pending_action: AccountAction | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook: WebhookView | None = None
    status_history: list[StatusChange] = Field(
        default_factory=list, description="Transitions in wagate's `connection_status` values.")
    host_id: str | None = None
    created_at: str
    updated_at: str
    version: int


class SessionActionAccepted(BaseModel):
    session_id: str
    action: AccountAction
    desired_state: DesiredState
    status: LegacyStatus


class SessionMessage(BaseModel):
    """A message in the legacy shape (`session_id` instead of `account_id`)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    message_id: str
    session_id: str
    direction: Direction
    status: MessageStatus
    type: str
    to: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    from_lid: str | None = None
    content: dict[str, Any]
    client_reference: str | None = None
    wa_message_id: str | None = None
    error: MessageError | None = None
    status_history: list[MessageStatusChange] = Field(default_factory=list)
    reactions: dict[str, str] = Field(default_factory=dict)
    edits: list[MessageEdit] = Field(default_factory=list)
    revoked: bool = False
    scheduled_at: str | None = None
    created_at: str
    updated_at: str


class SessionMessageAccepted(BaseModel):
    message_id: str
    session_id: str
    status: MessageStatus


M = TypeVar("M", bound=BaseModel)


def to_legacy(model: BaseModel, legacy: type[M]) -> M:
    """`model` (an /accounts answer) as its legacy twin: names renamed, connection status translated."""
    data = model.model_dump(mode="json", by_alias=True)
    for new, old in RENAMES.items():
        if new in data:
            value = data.pop(new)
            data[old] = LEGACY_STATUS_OF[ConnectionStatus(value)].value if new == "connection_status" else value
    return legacy.model_validate(data)
