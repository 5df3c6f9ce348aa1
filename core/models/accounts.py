"""WhatsApp accounts: API bodies and the account resource."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.models.events import EventType
from core.models.proxies import ProxySettings, ProxyView
from core.models.validators import (
    PHONE_PATTERN,
    WEBHOOK_URL_PATTERN,
    Metadata,
    check_webhook_url,
    normalise_phone,
)

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
#: Phone fields document the pattern the validator checks (the validator's message is the clearer refusal).
PHONE_SCHEMA: dict[str, Any] = {"pattern": PHONE_PATTERN}
#: What AccountCreate's provider check enforces, in its JSON Schema: `cloud` credentials exactly for cloud numbers.
PROVIDER_NEEDS_CREDENTIALS: dict[str, Any] = {
    "if": {"properties": {"provider": {"enum": ["cloud", "meta"]}}, "required": ["provider"]},
    "then": {"properties": {"cloud": {"type": "object"}, "proxy": {"type": "null"}}, "required": ["cloud"]},
    "else": {"properties": {"cloud": {"type": "null"}}},
}


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

    url: str = Field(max_length=2048, examples=["https://example.com/wagate"],
                     json_schema_extra={"pattern": WEBHOOK_URL_PATTERN})
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WebhookEvent), min_length=1)
    secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="HMAC secret; never returned."
    )

    _url = field_validator("url")(check_webhook_url)


class WebhookView(BaseModel):
    url: str
    events: list[WebhookEvent]
    has_secret: bool


#: Providers: `web` (WhatsApp Web driven by a browser host) and `cloud` (Meta's Cloud API; `meta`, the legacy
#: platform's name for it, means the same and is stored as `cloud`).
CLOUD_PROVIDERS = frozenset({"cloud", "meta"})
_GRAPH_ID = r"^[0-9]{1,32}$"
#: What an HTTP Authorization header can carry: printable ASCII without spaces (Meta's tokens are such).
TOKEN_PATTERN = r"^[!-~]+$"  # noqa: S105 - a pattern, not a secret


class CloudCredentials(BaseModel):
    """A Cloud API number: its Graph ids and the secrets wagate uses (write-only: stored encrypted, never returned)."""

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str = Field(pattern=_GRAPH_ID, examples=["106540352242922"],
                                 description="The number's id in Meta's WhatsApp Manager.")
    waba_id: str | None = Field(default=None, pattern=_GRAPH_ID, description="WhatsApp Business Account id.")
    access_token: str = Field(min_length=16, max_length=2048, pattern=TOKEN_PATTERN,
                              description="System-user or user access token with whatsapp_business_messaging.")
    app_secret: str | None = Field(default=None, min_length=8, max_length=256,
                                   description="The Meta app's secret: checks `X-Hub-Signature-256` of its webhooks.")
    verify_token: str | None = Field(default=None, min_length=8, max_length=256,
                                     description="What you enter as the webhook's verify token at Meta.")


class CloudCredentialsUpdate(BaseModel):
    """`cloud` in `PATCH /accounts/{id}`: fields present replace the stored ones (rotate a token this way)."""

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str | None = Field(default=None, pattern=_GRAPH_ID)
    waba_id: str | None = Field(default=None, pattern=_GRAPH_ID)
    access_token: str | None = Field(default=None, min_length=16, max_length=2048, pattern=TOKEN_PATTERN)
    app_secret: str | None = Field(default=None, min_length=8, max_length=256)
    verify_token: str | None = Field(default=None, min_length=8, max_length=256)


class CloudView(BaseModel):
    """A cloud account's Cloud API side, secrets reduced to whether they are set."""

    phone_number_id: str | None = None
    waba_id: str | None = None
    display_phone_number: str | None = None
    verified_name: str | None = None
    has_access_token: bool
    has_app_secret: bool
    has_verify_token: bool
    webhook_path: str = Field(description="Where Meta must send this number's webhooks (callback URL path).")


class Pacing(BaseModel):
    """How fast a WhatsApp Web number sends (anti-ban). Paced messages wait, with `scheduled_at` on the message;
    pacing never fails a message."""

    model_config = ConfigDict(extra="forbid")

    min_gap_seconds: float = Field(default=0, ge=0, le=3600,
                                   description="At least this long between two messages the number sends.")
    jitter_seconds: float = Field(default=0, ge=0, le=600,
                                  description="A random extra wait of up to this long before each paced message.")
    typing: bool = Field(default=False, description="Show \"typing…\" in the chat before each text, for a time that "
                                                    "grows with its length (1 s + 50 ms a character, at most 8 s).")
    daily_cap: int | None = Field(default=None, ge=1, le=100_000,
                                  description="At most this many messages a UTC day; the rest wait for the next day.")
    checks_per_minute: int | None = Field(
        default=None, ge=1, le=60,
        description="Number-existence checks a minute for this number (default `CONTACT_CHECKS_PER_MINUTE`).")

    @property
    def active(self) -> bool:
        return bool(self.min_gap_seconds or self.jitter_seconds or self.typing or self.daily_cap)

    @classmethod
    def of(cls, options: Any) -> Pacing:
        """An account's pacing from its stored `options` map (anything unreadable: no pacing)."""
        raw = options.get("pacing") if isinstance(options, dict) else None
        try:
            return cls.model_validate(raw) if isinstance(raw, dict) else cls()
        except ValueError:
            return cls()


class AccountOptions(BaseModel):
    """Per-account behaviour."""

    model_config = ConfigDict(extra="forbid")

    interactive_fallback: Literal["refuse", "numbered_text"] = Field(
        default="refuse",
        description="Web accounts: `refuse` interactive messages (buttons, lists) with a clear error, or send them "
                    "as numbered text whose numeric reply comes back as the matching interactive reply.")
    pacing: Pacing = Field(default_factory=Pacing, description="Web accounts: send pacing (anti-ban).")


class NewWebhookSettings(WebhookSettings):
    """`webhook` of a new account: deliveries are always signed, so it needs its secret (an update keeps the
    stored one)."""

    secret: str = Field(min_length=16, max_length=256, description="HMAC secret; never returned.")


class AccountCreate(BaseModel):
    """Body of `POST /accounts`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=PROVIDER_NEEDS_CREDENTIALS)

    account_name: str = Field(min_length=1, max_length=100, examples=["Support line"])
    phone_number: str | None = Field(default=None, examples=["+15551234567"], json_schema_extra=PHONE_SCHEMA)
    provider: Literal["web", "cloud", "meta"] = Field(
        default="web", description="`web`: linked by QR/pairing code on a browser host; `cloud` (or `meta`): "
                                   "Meta's Cloud API, needs `cloud` credentials.")
    cloud: CloudCredentials | None = None
    proxy: ProxySettings | None = Field(default=None, description="Web accounts: the outbound proxy of the "
                                        "account's browser (HTTP or SOCKS5).")
    options: AccountOptions | None = None
    metadata: Metadata = Field(default_factory=dict, description="Free-form, up to 8 KB of JSON.")
    webhook: NewWebhookSettings | None = None

    _phone = field_validator("phone_number")(normalise_phone)

    @model_validator(mode="after")
    def _provider_fits(self) -> AccountCreate:
        if self.provider in CLOUD_PROVIDERS:
            self.provider = "cloud"
            if self.cloud is None:
                raise ValueError("provider cloud needs `cloud` credentials (phone_number_id, access_token)")
        elif self.cloud is not None:
            raise ValueError("`cloud` credentials are only for provider cloud")
        return self


class AccountUpdate(BaseModel):
    """Body of `PATCH /accounts/{account_id}`: fields present replace the stored ones."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    account_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone_number: str | None = Field(default=None, json_schema_extra=PHONE_SCHEMA)
    metadata: Metadata | None = None
    webhook: WebhookSettings | None = None
    cloud: CloudCredentialsUpdate | None = Field(default=None, description="Cloud accounts only.")
    proxy: ProxySettings | None = Field(default=None, description="Web accounts only: replaces the proxy (`null` "
                                        "removes it); used from the account's next start or restart.")
    options: AccountOptions | None = None
    version: int | None = Field(default=None, ge=1, description="Expected version (or send `If-Match`).")

    _phone = field_validator("phone_number")(normalise_phone)


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
    provider: str = Field(default="web", description="`web` or `cloud`; another value is a provider the legacy "
                                                      "platform had that wagate does not drive (migrated, stopped).")
    cloud: CloudView | None = None
    proxy: ProxyView | None = Field(default=None, description="The proxy its browser uses (credentials never "
                                                                 "shown); null: direct.")
    options: AccountOptions = Field(default_factory=AccountOptions)
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

    phone_number: str = Field(json_schema_extra=PHONE_SCHEMA)

    _phone = field_validator("phone_number")(normalise_phone)


class PairingCode(BaseModel):
    code: str | None = Field(default=None, description="8-character code, once the host has it.")
    phone_number: str
    status: Literal["pending", "ready"]
    expires_at: str | None = None
