"""A tenant's own identity provider: whose RS256/ES256 JWTs the authorizer accepts, and how claims map to roles."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.models.common import Role

#: A claim name: what `role_claim`, `accounts_claim` and `subject_claim` may say.
CLAIM_PATTERN = r"^[A-Za-z0-9_:./-]{1,100}$"
HTTPS_PATTERN = r"^https?://[!-~]+$"  # https deployed; http only to allow-listed hosts (checked by core/net)


def _utf8(value: str) -> str:
    """DynamoDB stores UTF-8: a lone surrogate (a `\\ud800` escape in the JSON) is refused here, not a 500 there."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]
ClaimValue = Annotated[Text, Field(min_length=1, max_length=200)]


class IdentityProviderConfig(BaseModel):
    """Body of `PUT /identity-provider`: whose tokens to accept and what their claims mean."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=9, max_length=500, pattern=r"^https://[!-~]+$",
                        description="The tokens' `iss`, exactly (an https URL); one tenant per issuer.",
                        examples=["https://login.example.com/realms/acme"])
    audience: Text = Field(min_length=1, max_length=500, description="The `aud` the tokens must carry.",
                          examples=["wagate"])
    jwks_url: str = Field(min_length=8, max_length=1000, pattern=HTTPS_PATTERN,
                          description="Where the provider publishes its signing keys (JWKS), over https.",
                          examples=["https://login.example.com/realms/acme/protocol/openid-connect/certs"])
    role_claim: str = Field(default="role", pattern=CLAIM_PATTERN,
                            description="The claim (a string or a list of strings) `roles` maps to a role.",
                            examples=["groups"])
    roles: dict[ClaimValue, Role] = Field(
        min_length=1, max_length=100,
        description="Claim value → role; when several match, the highest wins; none: the token is refused (401).",
        examples=[{"wagate-admins": "admin", "support": "operator"}])
    accounts_claim: str | None = Field(
        default=None, pattern=CLAIM_PATTERN,
        description="A claim listing the accounts the token may use (a string or a list); absent or empty: all.")
    subject_claim: str = Field(default="sub", pattern=CLAIM_PATTERN,
                               description="The claim naming the caller (audit log, rate limits, `/me`).")


class IdentityProvider(IdentityProviderConfig):
    """The tenant's identity provider as stored."""

    tenant_id: str
    created_at: str
    updated_at: str
    updated_by: str | None = None
