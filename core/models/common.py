"""Shapes shared by every route: errors, pages, timestamps, principals."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


def utcnow() -> str:
    """Current UTC time as an ISO 8601 string with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_of(epoch: float) -> str:
    """An epoch time as `utcnow` writes time stamps."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_of(stamp: str | None) -> float | None:
    """Epoch seconds of a time stamp `utcnow` wrote (naive ones read as UTC); None when it cannot be read."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class ErrorBody(BaseModel):
    """The one error body of every 4xx and 5xx answer."""

    code: str = Field(description="Machine-readable error code, e.g. `validation_error`.")
    message: str = Field(description="Human-readable explanation.")
    details: Any = Field(default=None, description="Structured details, e.g. the failing fields.")
    request_id: str | None = Field(default=None, description="Id of the request, for support.")


class Page(BaseModel, Generic[T]):
    """A page of a list with an opaque cursor for the next one."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Principal(BaseModel):
    """Who is calling: resolved by the authorizer from an API key or an access token of one."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant_id: str
    role: Role
    account_ids: tuple[str, ...] = ()
    credential: Literal["key", "jwt", "idp"] = Field(
        default="key", description="What the caller presented: the API key itself, an access token (JWT) of it, or "
                                   "a token of the tenant's own identity provider (`idp`).")
    rate_limit: str = Field(default="", description="The key's own `per_second/burst`; empty: its role's.")

    def can_see(self, account_id: str) -> bool:
        """Whether an account-scoped key covers this account (unscoped keys see the whole tenant)."""
        return not self.account_ids or account_id in self.account_ids
