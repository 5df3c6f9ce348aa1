"""Contacts: whether a number is on WhatsApp, as the account's WhatsApp Web answered it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ContactCheck(BaseModel):
    """`GET /accounts/{id}/contacts/{phone}/exists`."""

    phone: str = Field(examples=["15551234567"])
    on_whatsapp: bool
    wa_id: str | None = Field(default=None, description="WhatsApp's id of the number when it is on WhatsApp.")
    lid: str | None = Field(default=None, description="The contact's LID (`…@lid`) when WhatsApp gave one.")
    business: bool = False
    checked_at: str
    cached: bool = Field(description="Answered from an earlier check (within the cache period) without asking "
                                     "WhatsApp again.")
