"""Webhooks: tenant-wide receivers of events, and the record of every delivery to a webhook."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from core.models.events import EventType
from core.models.validators import WEBHOOK_URL_PATTERN, check_webhook_url

WEBHOOK_ID_PATTERN = r"^whk_[0-9a-z]{26}$"
DELIVERY_ID_PATTERN = r"^dlv_[0-9a-z]{26}$"
URL_SCHEMA: dict[str, Any] = {"pattern": WEBHOOK_URL_PATTERN}


def _all_events() -> list[EventType]:
    return list(EventType)


class WebhookFormat(StrEnum):
    """What a delivery's body is: wagate's event, or the payload Meta's Cloud API would have sent."""

    WAGATE = "wagate"
    META = "meta"


class WebhookCreate(BaseModel):
    """Body of `POST /webhooks`: a receiver of the events of every account of the tenant."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://example.com/wagate"], json_schema_extra=URL_SCHEMA)
    events: list[EventType] = Field(default_factory=_all_events, min_length=1,
                                    description="Event types to deliver (default: all).")
    secret: str | None = Field(default=None, min_length=16, max_length=256,
                               description="HMAC secret; generated (and returned once) when absent. Never shown again.")
    description: str | None = Field(default=None, max_length=500)
    enabled: StrictBool = True
    format: WebhookFormat = Field(default=WebhookFormat.WAGATE,
                                  description="`meta`: Meta's `whatsapp_business_account` payloads signed with "
                                              "`X-Hub-Signature-256`, for bots written for the Cloud API.")
    verify_token: str | None = Field(default=None, min_length=1, max_length=256,
                                     description="The `hub.verify_token` of the handshake (write-only, stored "
                                                 "encrypted, never shown).")
    verify: StrictBool = Field(default=False, description="Before storing, check the URL with Meta's `hub.challenge` "
                         "handshake (GET with `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`); needs "
                         "`verify_token`. Not stored.")

    _url = field_validator("url")(check_webhook_url)

    @model_validator(mode="after")
    def _verify_needs_a_token(self) -> WebhookCreate:
        if self.verify and not self.verify_token:
            raise ValueError("`verify: true` needs a `verify_token` (the handshake sends it)")
        return self


class WebhookUpdate(BaseModel):
    """Body of `PATCH /webhooks/{webhook_id}`: fields present replace the stored ones (`secret` rotates it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    url: str | None = Field(default=None, max_length=2048, json_schema_extra=URL_SCHEMA)
    events: list[EventType] | None = Field(default=None, min_length=1)
    secret: str | None = Field(default=None, min_length=16, max_length=256, description="A new HMAC secret.")
    description: str | None = Field(default=None, max_length=500)
    enabled: StrictBool | None = None
    format: WebhookFormat | None = None
    verify_token: str | None = Field(default=None, min_length=1, max_length=256,
                                     description="A new verify token for the handshake (write-only).")
    verify: StrictBool = Field(default=False, description="Check the webhook's URL (the new one, if given) with Meta's "
                         "`hub.challenge` handshake before storing the change. Not stored.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class Webhook(BaseModel):
    """A tenant webhook (never its secret)."""

    webhook_id: str = Field(examples=["whk_01jc7q4k5y0s6b3f1x8m2n9v0a"])
    url: str
    events: list[EventType]
    description: str | None = None
    enabled: bool
    has_secret: bool = True
    format: WebhookFormat = WebhookFormat.WAGATE
    has_verify_token: bool = False
    created_at: str
    updated_at: str


class WebhookCreated(Webhook):
    """Answer of `POST /webhooks`: the only time the secret is shown."""

    secret: str = Field(description="The HMAC secret deliveries are signed with; store it now.")


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"  # a `meta` webhook and an event Meta's format has no equivalent for: never POSTed


class DeliveryAttempt(BaseModel):
    at: str
    attempt: int
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class WebhookDelivery(BaseModel):
    """One event delivered (or being delivered) to one webhook."""

    delivery_id: str
    account_id: str
    event_id: str
    event_type: str
    target: str = Field(description="`account` (the account's own webhook) or the tenant webhook's id.")
    url: str
    state: DeliveryState
    attempts: int
    last_status_code: int | None = None
    last_latency_ms: int | None = None
    last_error: str | None = None
    next_retry_at: str | None = None
    history: list[DeliveryAttempt] = Field(default_factory=list, description="The last attempts, oldest first.")
    created_at: str
    updated_at: str


class RedeliveryAccepted(BaseModel):
    delivery_id: str
    state: DeliveryState
    attempt: int = Field(description="The number the new attempt will have.")
