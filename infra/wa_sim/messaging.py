"""Conversations on the simulated network: messages of every type, receipts, reactions, edits, revokes, polls."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .config import SimConfig
from .content import EDIT_WINDOW, ChatMessage, Frame, from_wire, lid_for, normalize_phone
from .errors import SimError

STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}
EDITABLE = ("chat", "image", "video", "document")


def contact_message_id() -> str:
    """A message id as a phone makes them (32 hex)."""
    return secrets.token_hex(16).upper()


class Messaging:
    """The message half of `Network` (a mixin: `Network` provides the registry and `push`)."""

    config: SimConfig
    messages: dict[str, list[ChatMessage]]
    lids: dict[str, str]
    #: (contact, account) -> what the contact sees of the account's chat presence: {state, since, until}.
    presence: dict[tuple[str, str], Frame]

    def is_registered(self, phone: str) -> bool:
        raise NotImplementedError

    def push(self, phone: str, frame: Frame) -> int:
        raise NotImplementedError

    def has_devices(self, phone: str) -> bool:
        raise NotImplementedError

    # -- ids ------------------------------------------------------------------------------------
    def lid_of(self, phone: str) -> str:
        """The contact's stable LID (remembered so the LID maps back to the number)."""
        lid = lid_for(phone)
        self.lids[lid] = phone
        return lid

    def resolve_contact(self, value: object) -> tuple[str, bool]:
        """`(phone, via_lid)` of a wid, a `…@lid` id or a phone number."""
        if isinstance(value, str) and value.endswith("@lid"):
            lid = value.split("@", 1)[0].split(":", 1)[0]
            phone = self.lids.get(lid)
            if phone is None:
                raise SimError(404, "lid_not_found", f"no number is known for {value}")
            return phone, True
        return normalize_phone(value), False

    def exists(self, value: object) -> Frame:
        """WhatsApp's "is this number on WhatsApp" query (USync): the number and its LID."""
        try:
            phone, _ = self.resolve_contact(value)
        except SimError:
            return {"exists": False}
        if not self.is_registered(phone):
            return {"exists": False}
        return {"exists": True, "phone": phone, "lid": self.lid_of(phone), "biz": False}

    def find_message(self, contact: str, message_id: str) -> ChatMessage | None:
        """A message of a contact's conversation by bare id or serialized key."""
        bare = message_id.rsplit("_", 1)[-1]
        return next((m for m in self.messages.get(contact, []) if m.id == bare), None)

    def _message(self, contact: str, message_id: object) -> ChatMessage:
        if not isinstance(message_id, str) or not message_id:
            raise SimError(400, "missing_message_id", "message_id is required")
        msg = self.find_message(contact, message_id)
        if msg is None:
            raise SimError(404, "message_not_found", f"{contact} has no message {message_id}")
        return msg

    # -- the account's page ---------------------------------------------------------------------
    def outbound(self, phone: str, msg: Frame) -> Frame:
        """A page sent a message: store it in the contact's conversation (idempotent by id)."""
        contact, via_lid = self.resolve_contact(msg.get("to", ""))
        if not self.is_registered(contact):
            raise SimError(404, "not_on_whatsapp", f"{contact} is not on WhatsApp")
        existing = self.find_message(contact, str(msg["id"]))
        if existing is None:
            quoted = msg.get("quotedStanzaID")
            existing = ChatMessage(str(msg["id"]), contact, phone, "received", timestamp=int(time.time()),
                                   via_lid=via_lid, quoted_id=str(quoted) if quoted else None, **from_wire(msg))
            self.messages.setdefault(contact, []).append(existing)
            self.presence.pop((contact, phone), None)  # a message from the account ends its "typing…"
        return {"type": "send_ack", "id": existing.id, "t": existing.timestamp}

    def _own(self, phone: str, frame: Frame) -> ChatMessage:
        contact, _ = self.resolve_contact(frame.get("chat", ""))
        msg = self._message(contact, frame.get("target"))
        if msg.account != phone:
            raise SimError(404, "message_not_found", f"no message {frame.get('target')} in this chat")
        return msg

    def account_react(self, phone: str, frame: Frame) -> None:
        """The account reacted to a message of a chat ('' removes its reaction)."""
        msg = self._own(phone, frame)
        emoji = str(frame.get("emoji") or "")
        if emoji:
            msg.reactions[phone] = emoji
        else:
            msg.reactions.pop(phone, None)

    def account_edit(self, phone: str, frame: Frame) -> None:
        """The account edited one of its messages."""
        msg = self._own(phone, frame)
        self._edit(msg, mine=msg.from_account, text=str(frame.get("text", "")))

    def account_revoke(self, phone: str, frame: Frame) -> None:
        """The account deleted one of its messages for everyone."""
        msg = self._own(phone, frame)
        if not msg.from_account or msg.revoked:
            raise SimError(409, "revoke_not_allowed", "only an own message can be revoked, once")
        msg.revoked = True

    @staticmethod
    def _edit(msg: ChatMessage, mine: bool, text: str) -> None:
        if not mine or msg.revoked or msg.type not in EDITABLE or (msg.type != "chat" and msg.caption is None) \
                or time.time() - msg.timestamp > EDIT_WINDOW:
            raise SimError(409, "edit_message_error", "Cannot edit this message")
        if not text.strip():
            raise SimError(400, "missing_text", "text is required")
        msg.edits.append(msg.text)
        if msg.type == "chat":
            msg.body = text.strip()
        else:
            msg.caption = text.strip()

    def mark_read(self, phone: str, contact: str) -> int:
        """The account read a chat: the contact's messages to it become "read"."""
        changed = 0
        for msg in self.messages.get(contact, []):
            if msg.account == phone and msg.direction == "sent" and msg.status != "read":
                msg.status = "read"
                changed += 1
        return changed

    def account_presence(self, phone: str, contact: str, state: str, duration: float | None) -> None:
        """The account's page marked the chat composing (for `duration` seconds, or until paused or its next
        message) or paused."""
        if state == "composing":
            now = time.time()
            self.presence[(contact, phone)] = {"state": "composing", "since": now,
                                               "until": now + duration if duration else None}
        elif state == "paused":
            self.presence.pop((contact, phone), None)
        else:
            raise SimError(400, "invalid_presence", "state is composing or paused")

    def typing(self, contact: str) -> list[Frame]:
        """The accounts the contact sees "typing…" now."""
        now = time.time()
        return [{"account": account, **p} for (who, account), p in list(self.presence.items())
                if who == contact and (p["until"] is None or p["until"] > now)]

    # -- the contact's phone --------------------------------------------------------------------
    def inbound(self, contact: str, to: str, content: Frame, quoted_id: str | None = None,
                as_lid: bool = False) -> Frame:
        """A contact sends a message to an account; it is queued for the account's devices."""
        if not self.is_registered(contact):
            raise SimError(400, "not_on_whatsapp", f"contact {contact} is not on WhatsApp")
        if not self.has_devices(to):
            raise SimError(404, "account_not_linked", f"{to} has no linked device in the simulator")
        quoted = self._message(contact, quoted_id) if quoted_id else None
        lid = self.lid_of(contact)
        msg = ChatMessage(contact_message_id(), contact, to, "sent", timestamp=int(time.time()), via_lid=as_lid,
                          quoted_id=quoted.id if quoted else None, **content)
        self.messages.setdefault(contact, []).append(msg)
        online = self.push(to, {"type": "message", "msg": {
            "id": msg.id, "from": contact, "chat": msg.chat_jid, "lid": lid, "to": to, "t": msg.timestamp,
            "notify_name": f"Contact {contact}", **msg.wire(),
            **({"quotedStanzaID": quoted.id, "quotedFromMe": quoted.from_account} if quoted else {}),
        }})
        return {**msg.to_json(), "delivered_to_pages": online}

    def contact_ack(self, contact: str, message_id: str, ack: str) -> Frame:
        """The contact's phone reports delivered/read for a message it received."""
        msg = self.find_message(contact, message_id)
        if msg is None or msg.direction != "received":
            raise SimError(404, "message_not_found", f"{contact} has no received message {message_id}")
        if STATUS_RANK[ack] > STATUS_RANK[msg.status]:
            msg.status = ack
            self.push(msg.account, {"type": "receipt", "chat": msg.chat_jid, "ids": [msg.id],
                                    "ack": STATUS_RANK[ack]})
        return msg.to_json()

    def _contact_event(self, msg: ChatMessage, kind: str, **extra: Any) -> Frame:
        """Push a contact's protocol message about `msg` to the account; returns its ids."""
        event_id = contact_message_id()
        self.lid_of(msg.contact)
        self.push(msg.account, {"type": kind, "id": event_id, "chat": msg.chat_jid, "target": msg.id,
                                "target_from_me": msg.from_account, "t": int(time.time() * 1000), **extra})
        return {"id": event_id, "key": f"false_{msg.chat_jid}_{event_id}", "message_id": msg.id,
                "message": msg.to_json()}

    def contact_react(self, contact: str, message_id: object, emoji: str) -> Frame:
        """The contact reacts to a message of its conversation ('' removes the reaction)."""
        msg = self._message(contact, message_id)
        if emoji:
            msg.reactions[contact] = emoji
        else:
            msg.reactions.pop(contact, None)
        return self._contact_event(msg, "reaction", emoji=emoji)

    def contact_edit(self, contact: str, message_id: object, text: str) -> Frame:
        """The contact edits a text (or caption) it sent."""
        msg = self._message(contact, message_id)
        self._edit(msg, mine=not msg.from_account, text=text)
        return self._contact_event(msg, "edit", text=msg.text)

    def contact_revoke(self, contact: str, message_id: object) -> Frame:
        """The contact deletes a message it sent, for everyone."""
        msg = self._message(contact, message_id)
        if msg.from_account or msg.revoked:
            raise SimError(409, "revoke_not_allowed", "a contact can revoke its own messages, once")
        msg.revoked = True
        return self._contact_event(msg, "revoke")

    def contact_vote(self, contact: str, message_id: object, options: list[Any]) -> Frame:
        """The contact votes in a poll the account sent (an empty list takes the vote back)."""
        msg = self._message(contact, message_id)
        if msg.poll is None or not msg.from_account:
            raise SimError(409, "not_a_poll", "only a poll the account sent can be voted")
        names: list[str] = msg.poll["options"]
        picked: list[int] = []
        for option in options:
            index = option if isinstance(option, int) else names.index(option) if option in names else -1
            if not 0 <= index < len(names):
                raise SimError(400, "invalid_option", f"{option!r} is not an option of this poll")
            picked.append(index)
        limit = msg.poll["selectable_count"]
        if limit and len(picked) > limit:
            raise SimError(400, "too_many_options", f"this poll allows {limit} option(s)")
        msg.votes[contact] = [names[i] for i in picked]
        return self._contact_event(msg, "vote", selected=picked)
