"""Interactive messages on WhatsApp Web: buttons and lists go out as numbered text, and a contact's bare number
comes back as the Cloud API's interactive reply (`button_reply` / `list_reply`).

What the numbers mean is remembered per chat (`ChoiceMenu`, in the contacts table) so that any host that
holds the account later still understands a reply.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from core.models.rich import InteractiveBody

# Meta lets a user answer buttons and lists for 24 h (the customer service window); so does the fallback.
REPLY_WINDOW = timedelta(hours=24)
PROMPT = "Reply with the number of your choice."
# "2", " 2 ", "2." — ASCII digits only (fullwidth or Arabic-Indic digits stay text).
_NUMBER = re.compile(r"([0-9]{1,2})\.?")


def chosen_number(text: str) -> int | None:
    """The number a text consists of (trimmed, an optional trailing dot), or None for any other text."""
    found = _NUMBER.fullmatch(text.strip())
    return int(found.group(1)) if found else None


def numbered_text(interactive: InteractiveBody) -> str:
    """A button or list message as WhatsApp text: the header in bold, the body, the choices numbered from 1
    (list rows as `n. Title — description` under their section titles), the footer in italics, and how to
    answer. ValueError for other interactive types."""
    if interactive.type not in ("button", "list"):
        raise ValueError(f"interactive {interactive.type} messages have no numbered-text form")
    blocks: list[str] = []
    header = interactive.header
    if header is not None and header.type == "text" and header.text:
        blocks.append(f"*{header.text.strip()}*")
    if interactive.body is not None:
        blocks.append(interactive.body.text)
    lines: list[str] = []
    number = 0
    if interactive.type == "button":
        for button in interactive.action.buttons or []:
            number += 1
            lines.append(f"{number}. {button.reply.title}")
    else:
        for section in interactive.action.sections or []:
            if section.title:
                lines.append(section.title)
            for row in section.rows:
                number += 1
                lines.append(f"{number}. {row.title}" + (f" — {row.description}" if row.description else ""))
    blocks.append("\n".join(lines))
    if interactive.footer is not None:
        blocks.append(f"_{interactive.footer.text.strip()}_")
    blocks.append(PROMPT)
    return "\n\n".join(blocks)


class ChoiceMenu(BaseModel):
    """What the numbers of the last numbered-text message to a chat stand for."""

    message_id: str  # the interactive message (wagate id)
    wa_message_id: str | None = None  # its WhatsApp key, for the reply's context
    kind: Literal["button", "list"]
    choices: list[tuple[str, str, str | None]]  # (id, title, description), numbered from 1
    at: datetime  # when it was handed to WhatsApp Web

    @classmethod
    def of(cls, message_id: str, wa_message_id: str | None, interactive: InteractiveBody,
           at: datetime | None = None) -> ChoiceMenu:
        if interactive.type not in ("button", "list"):
            raise ValueError(f"interactive {interactive.type} messages have no numbered choices")
        return cls(message_id=message_id, wa_message_id=wa_message_id, kind=interactive.type,
                   choices=interactive.choices(), at=at or datetime.now(UTC))

    @classmethod
    def parse(cls, stored: str | None) -> ChoiceMenu | None:
        """A stored menu, or None when there is none or it cannot be read (a reply then stays text)."""
        if not stored:
            return None
        try:
            return cls.model_validate_json(stored)
        except ValidationError:
            return None

    def reply(self, text: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The Cloud API's `interactive` content for a text that picks choice 1..N within 24 h, else None."""
        number = chosen_number(text)
        if number is None or not 1 <= number <= len(self.choices):
            return None
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        if (now or datetime.now(UTC)) - at > REPLY_WINDOW:
            return None
        choice_id, title, description = self.choices[number - 1]
        if self.kind == "button":
            return {"type": "button_reply", "button_reply": {"id": choice_id, "title": title}}
        picked = {"id": choice_id, "title": title, **({"description": description} if description else {})}
        return {"type": "list_reply", "list_reply": picked}

    def context(self) -> dict[str, Any]:
        """The reply's `context`: the interactive message it answers."""
        return {"message_id": self.message_id, **({"wa_message_id": self.wa_message_id} if self.wa_message_id
                                                  else {})}
