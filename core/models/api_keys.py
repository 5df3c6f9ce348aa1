"""API keys: shown once, stored as a hash."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.models.accounts import ACCOUNT_ID_PATTERN
from core.models.common import Role

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,62}$"


class RateLimit(BaseModel):
    """A key's own request rate, instead of its role's (`API_RATE_LIMITS`): a token bucket."""

    model_config = ConfigDict(extra="forbid")

    per_second: float = Field(gt=0, le=1000, description="Tokens added per second (sustained requests per second).")
    burst: int = Field(ge=1, le=10_000, description="Bucket size: requests allowed at once after a pause.")


class ApiKeyCreate(BaseModel):
    """Body of `POST /api-keys`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["crm-integration"])
    role: Role
    account_ids: list[Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]] | None = Field(
        default=None, max_length=100, description="Limit the key to these accounts of the tenant."
    )
    tenant: str | None = Field(
        default=None, pattern=TENANT_PATTERN,
        description="Only for bootstrap-tenant admins: create the first key of another tenant.",
    )
    rate_limit: RateLimit | None = Field(default=None, description="This key's rate instead of its role's.")



class ApiKey(BaseModel):
    """An API key as listed (never the secret)."""

    key_id: str
    name: str
    role: Role
    tenant_id: str
    account_ids: list[str] = Field(default_factory=list)
    prefix: str = Field(description="First characters of the key, to recognise it.")
    created_at: str
    created_by: str | None = None
    rate_limit: RateLimit | None = Field(default=None, description="Its own rate; null: its role's.")


class ApiKeyCreated(ApiKey):
    """Answer of `POST /api-keys`: the only time the key itself is shown."""

    api_key: str


class AccessToken(BaseModel):
    """Answer of `POST /auth/token`: a short-lived JWT that stands for the API key that asked for it."""

    access_token: str = Field(description="A JWT (HS256); send it as `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until it expires (`JWT_TTL_SECONDS`, 900 by default).",
                            examples=[900])
    expires_at: str = Field(description="When it expires (ISO 8601 UTC).")
