"""Audit log entries: who did what to which object, when, from where, and how it ended."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

AUDIT_ID_PATTERN = r"^aud_[0-9a-z]{26}$"
# `account.start`, or a prefix filter `account.*`.
ACTION_FILTER_PATTERN = r"^[a-z][a-z0-9_]{0,40}(\.[a-z][a-z0-9_]{0,40})?(\.\*)?$"


class ActorType(StrEnum):
    KEY = "key"
    JWT = "jwt"
    HOST = "host"
    SYSTEM = "system"


class Actor(BaseModel):
    """Who acted: an API key (its id, or the prefix of a refused one), a JWT subject, a browser host."""

    type: ActorType
    id: str = Field(description="Key id (`key_…`), JWT subject, host id, or for refused credentials the key's "
                                "prefix or `anonymous`.")


class Target(BaseModel):
    """What was acted on."""

    type: str = Field(examples=["account"])
    id: str | None = Field(default=None, examples=["acc_01j…"])


class AuditEntry(BaseModel):
    """One recorded action. Entries are only ever added; nothing can change or delete one before it expires."""

    id: str = Field(description="Time-ordered id (`aud_…`).")
    tenant_id: str
    at: str = Field(description="When, ISO 8601 UTC.")
    actor: Actor
    action: str = Field(description="What, e.g. `account.create`, `message.send`, `api_key.revoke`, `host.takeover`, "
                                    "`auth.refused`.")
    target: Target
    account_id: str | None = Field(default=None, description="The account concerned, if any.")
    result: str = Field(description="`ok`, the HTTP status of a refused or failed call (`403`), or `failed` for a "
                                    "host action that failed.")
    reason: str | None = Field(default=None, description="Why it was refused or failed (an error code or a text).")
    route: str | None = Field(default=None,
                              description="The API route called, e.g. `POST /accounts/{account_id}/start`.")
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
