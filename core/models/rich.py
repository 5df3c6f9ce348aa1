"""Template and interactive message bodies, in the shapes of Meta's Cloud API (`type: "template"` needs a Cloud API
number; `type: "interactive"` goes through the Cloud API, or through WhatsApp Web as numbered text when the account
allows that fallback)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Meta adds fields to these objects over time: pass them through unchanged."""

    model_config = ConfigDict(extra="allow")


class TemplateLanguage(_Strict):
    code: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", examples=["en_US"])
    policy: Literal["deterministic"] | None = None


class TemplateComponent(_Open):
    type: Literal["header", "body", "footer", "button", "carousel", "limited_time_offer"]
    sub_type: str | None = Field(default=None, max_length=40)
    index: int | str | None = None
    parameters: list[dict[str, Any]] | None = Field(default=None, max_length=100)


class TemplateBody(_Strict):
    """A message template approved in WhatsApp Manager (Cloud API only)."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$", examples=["order_update"])
    language: TemplateLanguage
    components: list[TemplateComponent] | None = Field(default=None, max_length=20)


class InteractiveText(_Strict):
    text: str = Field(min_length=1, max_length=4096)


class InteractiveHeader(_Open):
    type: Literal["text", "image", "video", "document"]
    text: str | None = Field(default=None, max_length=60)


class ReplyButton(_Strict):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class Button(_Strict):
    type: Literal["reply"] = "reply"
    reply: ReplyButton


class ListRow(_Strict):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(default=None, max_length=72)


class ListSection(_Strict):
    title: str | None = Field(default=None, max_length=24)
    rows: list[ListRow] = Field(min_length=1, max_length=10)


class InteractiveAction(_Open):
    """`buttons` (type button), `button` + `sections` (type list), `name` + `parameters` (cta_url, flow, …)."""

    buttons: list[Button] | None = Field(default=None, min_length=1, max_length=3)
    button: str | None = Field(default=None, min_length=1, max_length=20)
    sections: list[ListSection] | None = Field(default=None, min_length=1, max_length=10)
    name: str | None = Field(default=None, max_length=60)
    parameters: dict[str, Any] | None = None


class InteractiveBody(_Strict):
    type: Literal["button", "list", "cta_url", "flow", "product", "product_list", "location_request_message",
                  "address_message", "call_permission_request"]
    header: InteractiveHeader | None = None
    body: InteractiveText | None = None
    footer: InteractiveText | None = None
    action: InteractiveAction

    @model_validator(mode="after")
    def _action_fits(self) -> InteractiveBody:
        if self.type == "button" and not self.action.buttons:
            raise ValueError("interactive type button needs action.buttons (1 to 3 reply buttons)")
        if self.type == "list":
            if not self.action.sections or not self.action.button:
                raise ValueError("interactive type list needs action.button and action.sections")
            if sum(len(s.rows) for s in self.action.sections) > 10:
                raise ValueError("a list has at most 10 rows in all sections")
        if self.type in ("button", "list") and self.body is None:
            raise ValueError(f"interactive type {self.type} needs a body")
        return self

    def choices(self) -> list[tuple[str, str, str | None]]:
        """(id, title, description) of what a user can pick, in order: reply buttons or list rows."""
        if self.type == "button":
            return [(b.reply.id, b.reply.title, None) for b in self.action.buttons or []]
        if self.type == "list":
            return [(r.id, r.title, r.description) for s in self.action.sections or [] for r in s.rows]
        return []
