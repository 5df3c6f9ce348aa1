"""What contacts send an account: messages of every type, reactions, edits and revokes → stored, then events.

Payloads arrive already reduced to plain JSON by `bridge.EVENT_BRIDGE`. Every write is fenced by the account's
lease (a host that lost it stores nothing), and each event id is derived from WhatsApp's ids, so a message
re-emitted after a reload is stored and announced once.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from browser_host.media import MediaError, store_inbound
from browser_host.page import TransientSendError
from core.ids import event_id, inbound_message_id
from core.models.choices import chosen_number
from core.models.events import EventType
from core.store.media import MediaStore

if TYPE_CHECKING:
    from browser_host.runner import AccountRunner

log = logging.getLogger("browser_host.inbound")
MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio", "ptt": "audio", "document": "document",
               "sticker": "sticker"}
URL_TTL_SECONDS = 3600  # the presigned media URL in an event; the API makes a fresh one on every read
_WAID = re.compile(r"waid=(\d+)")


class Inbound:
    def __init__(self, runner: AccountRunner) -> None:
        self.runner = runner
        self.store = runner.store
        self.lids: dict[str, str] = {}  # `…@lid` → phone number (kept for the page's life; also stored on messages)

    # --- senders -------------------------------------------------------------------------------------------

    async def sender(self, wid: str | None) -> tuple[str, str | None]:
        """(phone number, LID) of a sender id: `1555…@c.us`, or `…@lid` resolved through getPnLidEntry."""
        wid = str(wid or "")
        if not wid.endswith("@lid"):
            return wid.split("@")[0].split(":")[0], None
        phone = self.lids.get(wid)
        if phone is None and self.runner.page is not None:
            phone = await self.runner.page.phone_of_lid(wid)
            if phone:
                self.lids[wid] = phone
                await self.store.remember_lid(self.runner.lease, phone, wid)
                if len(self.lids) > 10_000:
                    del self.lids[next(iter(self.lids))]
        return (phone or wid.split("@")[0]), wid

    def _mine(self, wid: str | None) -> bool:
        me = self.runner.phone_number
        return bool(me) and str(wid or "").split("@")[0].split(":")[0] == me

    # --- messages ------------------------------------------------------------------------------------------

    async def message(self, msg: dict[str, Any]) -> None:
        if msg.get("fromMe") or not msg.get("id"):
            return
        wa_id = str(msg["id"])
        t = int(msg.get("t") or 0)
        message_id = inbound_message_id(wa_id, t)
        group = bool(msg.get("isGroupMsg"))
        phone, lid = await self.sender(msg.get("author") if group else msg.get("from"))
        kind, body = self._content(msg)
        chosen = await self._chosen(str(msg.get("from") or "") if group else phone, body) if kind == "text" else None
        if chosen is not None:
            kind, body = "interactive", chosen[0]
        content: dict[str, Any] = {"type": kind, kind: body, "wa_message_id": wa_id}
        if group:
            content["group_id"] = str(msg.get("from") or "")
        quoted = chosen[1] if chosen is not None else await self._quoted(msg)
        if quoted:
            content["context"] = quoted
        if kind in {"image", "video", "audio", "document", "sticker"}:
            media = await self._download(wa_id, message_id, msg)
            if media is not None:
                content["media"] = media
        item = await self.store.record_inbound(self.runner.lease, self.runner.tenant_id, self.runner.phone_number,
                                               message_id=message_id, wa_id=wa_id, kind=kind, content=content,
                                               from_number=phone, from_lid=lid)
        if item is None:
            return  # stored before: announced before
        data: dict[str, Any] = {"message_id": message_id, "wa_message_id": wa_id, "from": phone, "from_lid": lid,
                                "profile_name": msg.get("notifyName"), "timestamp": t, **content}
        if "media" in content:
            data["media"] = self._with_url(content["media"])
        await self.runner.publish(EventType.MESSAGE_RECEIVED, data, event_id("received", wa_id))

    def _content(self, msg: dict[str, Any]) -> tuple[str, Any]:
        """WhatsApp Web's message type and fields → the Cloud API webhook's `type` and body."""
        wa_type = str(msg.get("type") or "")
        if wa_type in {"chat", "text"}:
            return "text", {"body": msg.get("body") or ""}
        if wa_type in MEDIA_KINDS:
            kind = MEDIA_KINDS[wa_type]
            body: dict[str, Any] = {"mime_type": msg.get("mimetype")}
            if msg.get("caption"):
                body["caption"] = msg["caption"]
            if kind == "document" and msg.get("filename"):
                body["filename"] = msg["filename"]
            if wa_type == "ptt":
                body["voice"] = True
            return kind, body
        if wa_type == "location":
            name, _, address = str(msg.get("loc") or "").partition("\n")
            location: dict[str, Any] = {"latitude": msg.get("lat"), "longitude": msg.get("lng")}
            if name:
                location["name"] = name
            if address:
                location["address"] = address
            return "location", location
        if wa_type in {"vcard", "multi_vcard"}:
            cards = msg.get("vcardList") or [{"displayName": msg.get("vcardFormattedName"), "vcard": msg.get("body")}]
            return "contacts", [_contact(c) for c in cards if isinstance(c, dict)]
        if wa_type == "poll_creation":
            return "poll", {"question": msg.get("pollName") or "", "options": list(msg.get("pollOptions") or []),
                            "max_selections": msg.get("pollSelectableOptionsCount") or 1}
        return "unsupported", {"wa_type": wa_type[:64]}

    async def _chosen(self, chat: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """A bare number answering the chat's numbered-text buttons or list: (Meta's interactive reply, its
        context); None for any other text (the stored menu is only read for texts that are a number)."""
        text = str(body.get("body") or "")
        if chosen_number(text) is None:
            return None
        menu = await self.store.choice_menu(self.runner.account_id, chat)
        reply = menu.reply(text) if menu is not None else None
        return (reply, menu.context()) if reply is not None and menu is not None else None

    async def _quoted(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        stanza = msg.get("quotedStanzaID")
        if not stanza:
            return None
        chat = str(msg.get("from") or "")
        for key in (f"true_{chat}_{stanza}", f"false_{chat}_{stanza}"):
            found = await self.store.by_wa_id(key)
            if found is not None and found.account_id == self.runner.account_id:
                return {"message_id": found.message_id, "wa_message_id": key}
        return {"wa_message_id": str(stanza)}

    async def _download(self, wa_id: str, message_id: str, msg: dict[str, Any]) -> dict[str, Any] | None:
        page = self.runner.page
        if page is None:
            return None
        try:
            data = await page.download_media(wa_id)
            return await store_inbound(self.store.settings, self.runner.account_id, message_id, data,
                                       str(msg.get("mimetype") or "application/octet-stream"),
                                       filename=msg.get("filename"), caption=msg.get("caption"))
        except (TransientSendError, MediaError, TimeoutError) as exc:
            # The message is still stored and announced; its media is marked missing rather than lost silently.
            log.warning("account %s: media of %s not downloaded: %s", self.runner.account_id, message_id, exc)
            return {"error": "media_download_failed", "mime_type": msg.get("mimetype")}

    def _with_url(self, media: dict[str, Any]) -> dict[str, Any]:
        key = media.get("key")
        if not isinstance(key, str):
            return media
        try:
            url = MediaStore(self.store.settings.media_bucket).presign_get(key, URL_TTL_SECONDS)
        except Exception:
            log.exception("account %s: presigning %s failed", self.runner.account_id, key)
            return media
        return {**media, "url": url}

    # --- reactions, edits, revokes -------------------------------------------------------------------------

    async def reaction(self, event: dict[str, Any]) -> None:
        if self._mine(event.get("sender")):
            return  # our own reaction: the outbox recorded it
        target_key = str(event.get("msgId") or "")
        phone, lid = await self.sender(event.get("sender"))
        emoji = str(event.get("reactionText") or "")
        target = await self.store.by_wa_id(target_key) if target_key else None
        message_id = None
        if target is not None and target.account_id == self.runner.account_id:
            message_id = target.message_id
            await self.store.annotate_reaction(self.runner.lease, message_id, phone, emoji)
        await self.runner.publish(EventType.MESSAGE_REACTION, {
            "message_id": message_id, "wa_message_id": target_key, "from": phone, "from_lid": lid, "emoji": emoji,
            "removed": emoji == "", "timestamp": event.get("timestamp")},
            event_id("reaction", event.get("id"), target_key, phone, emoji))

    async def edited(self, event: dict[str, Any]) -> None:
        key = str(event.get("id") or "")
        if not key or key.startswith("true_"):
            return  # ours: the outbox recorded the edit when WhatsApp Web made it
        body = str(event.get("body") or "")
        target = await self.store.by_wa_id(key)
        message_id = None
        if target is not None and target.account_id == self.runner.account_id:
            message_id = target.message_id
            await self.store.annotate_edit(self.runner.lease, message_id, body)
        phone, lid = await self.sender(event.get("from") or event.get("chat"))
        await self.runner.publish(EventType.MESSAGE_EDITED, {
            "message_id": message_id, "wa_message_id": key, "from": phone, "from_lid": lid, "text": {"body": body}},
            event_id("edited", key, body, event.get("t")))

    async def revoked(self, event: dict[str, Any]) -> None:
        key = str(event.get("refId") or "")
        if not key or key.startswith("true_"):
            return
        target = await self.store.by_wa_id(key)
        message_id = None
        if target is not None and target.account_id == self.runner.account_id:
            message_id = target.message_id
            await self.store.annotate_revoke(self.runner.lease, message_id)
        phone, lid = await self.sender(event.get("author") or event.get("from"))
        await self.runner.publish(EventType.MESSAGE_REVOKED, {
            "message_id": message_id, "wa_message_id": key, "from": phone, "from_lid": lid},
            event_id("revoked", key))


def _contact(card: dict[str, Any]) -> dict[str, Any]:
    """A vCard as the Cloud API's contact object (name and WhatsApp numbers), the vCard text kept as sent."""
    vcard = str(card.get("vcard") or "")
    name = str(card.get("displayName") or "")
    if not name:
        found = re.search(r"^FN[^:]*:(.*)$", vcard, re.MULTILINE)
        name = found.group(1).strip() if found else ""
    phones = [{"phone": f"+{waid}", "wa_id": waid} for waid in _WAID.findall(vcard)]
    return {"name": {"formatted_name": name}, "phones": phones, "vcard": vcard[:4000]}
