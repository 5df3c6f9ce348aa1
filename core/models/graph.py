"""Answers of the Cloud API compatibility routes (`/{version}/{object_id}/…`), in Meta's Graph API shapes.

Requests need no models of their own: a send is the same `SendRequest` as `POST /accounts/{id}/messages`, and an
upload is Meta's multipart form.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

#: A Graph API version as it appears in Meta's URLs (`v21.0`); `v1` (the stage name) is not one.
VERSION_PATTERN = r"^v\d+\.\d+$"


class GraphContact(BaseModel):
    input: str = Field(description="`to` (or `recipient`) exactly as the request gave it.")
    wa_id: str = Field(description="The recipient as WhatsApp knows it: digits (or a group id).")
    user_id: str | None = Field(default=None, description="The business-scoped user id, when the request named "
                                                          "the recipient by one (`recipient`).")

    @model_serializer(mode="wrap")
    def _without_absent_user_id(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("user_id") is None:
            data.pop("user_id", None)
        return data


class GraphMessageId(BaseModel):
    id: str = Field(description="wagate's message id (`msg_…`): what status webhooks and replies name.")
    message_status: Literal["accepted"] = "accepted"


class GraphSent(BaseModel):
    """`POST /{version}/{phone_number_id}/messages` → 200."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    contacts: list[GraphContact]
    messages: list[GraphMessageId]


class GraphSuccess(BaseModel):
    """A read receipt, a deleted media object."""

    success: bool = True


class GraphMediaId(BaseModel):
    """`POST /{version}/{phone_number_id}/media` → 200: use `id` as `image.id` (etc.) in sends."""

    id: str


class GraphMediaInfo(BaseModel):
    """`GET /{version}/{media_id}`."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    url: str = Field(description="Presigned GET of the bytes, valid 5 minutes (no token needed).")
    mime_type: str
    sha256: str | None = Field(description="Null for media uploaded with a presigned PUT (POST /media).")
    file_size: int
    id: str


class GraphPhoneNumber(BaseModel):
    """`GET /{version}/{phone_number_id}`: what SDKs read when they start."""

    id: str
    display_phone_number: str | None = None
    verified_name: str | None = None
    quality_rating: str = "UNKNOWN"


class GraphErrorData(BaseModel):
    messaging_product: Literal["whatsapp"] = "whatsapp"
    details: str


class GraphErrorDetail(BaseModel):
    message: str
    type: str = "OAuthException"
    code: int
    error_subcode: int | None = None
    error_data: GraphErrorData | None = None
    fbtrace_id: str | None = Field(default=None, description="The request id.")
    wagate_code: str | None = Field(default=None, description="wagate's own error code, when there is one.")


class GraphErrorBody(BaseModel):
    """Every error of these routes: `{"error": {...}}` as the Graph API answers (fields left out when null)."""

    error: GraphErrorDetail
