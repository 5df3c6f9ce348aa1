"""Every message type both ways through the simulator: the page's WPP calls and events vs the phone's API."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"
CONTACT = "15550001111"
CHAT = f"{CONTACT}@c.us"
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + bytes(range(200, 256)) * 50
OGG = b"OggS" + bytes(range(100)) * 30
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x01" * 300
# Runs a WPP call in the page; a rejection comes back as {error: code, message}.
CALL = """async ([fn, args]) => {
  const [ns, name] = fn.split('.');
  try { return await WPP[ns][name](...args); }
  catch (e) { return {error: (e && e.code) || String(e), message: e && e.message}; }
}"""
DOWNLOAD = """async (id) => {
  const blob = await WPP.chat.downloadMedia(id);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let s = ''; for (const b of bytes) s += String.fromCharCode(b);
  return {type: blob.type, b64: btoa(s)};
}"""
SEND_BLOB = """async ([to, b64, opts]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const r = await WPP.chat.sendFileMessage(to, new Blob([bytes], {type: 'application/pdf'}), opts);
  return r;
}"""


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def call(sp: Any, fn: str, *args: Any) -> Any:
    return sp.wpp(CALL, [fn, list(args)])


def download(sp: Any, msg_id: str) -> bytes:
    return base64.b64decode(sp.wpp(DOWNLOAD, msg_id)["b64"])


def by_key(client: Any, direction: str = "received") -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in client.messages(CONTACT, direction)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_outbound_types_reach_the_phone_exactly(open_page: Any, client: Any, link: Any, sim: Any) -> None:
    # Given a linked page
    sp = open_page()
    link(sp)
    text = call(sp, "chat.sendTextMessage", CHAT, "pick one", {})
    # When it sends one message of each type
    image = call(sp, "chat.sendFileMessage", CHAT, data_url("image/png", PNG),
                 {"type": "image", "caption": "a picture", "quotedMsg": text["id"]})
    doc = sp.wpp(SEND_BLOB, [CHAT, base64.b64encode(PDF).decode(),
                             {"type": "document", "filename": "report.pdf"}])
    voice = call(sp, "chat.sendFileMessage", CHAT, data_url("audio/ogg; codecs=opus", OGG),
                 {"type": "audio", "isPtt": True})
    sticker = call(sp, "chat.sendFileMessage", CHAT, data_url("image/webp", WEBP), {"type": "sticker"})
    auto = call(sp, "chat.sendFileMessage", CHAT, data_url("image/png", PNG), {"type": "auto-detect"})
    where = call(sp, "chat.sendLocationMessage", CHAT,
                 {"lat": "52.52", "lng": 13.405, "name": "Office", "address": "Main St 1", "url": "https://x.test"})
    card = call(sp, "chat.sendVCardContactMessage", CHAT, {"id": "15550002222@c.us", "name": "Alice"})
    cards = call(sp, "chat.sendVCardContactMessage", CHAT, ["15550002222@c.us", {"id": "15550003333", "name": "Bob"}])
    poll = call(sp, "chat.sendCreatePollMessage", CHAT, "Lunch?", ["pizza", "salad", "soup"], {"selectableCount": 1})

    # Then each returns wa-js' shape and the phone shows exactly it
    for ret in (image, doc, voice, sticker, auto):
        assert set(ret) == {"id", "ack", "sendMsgResult"}, ret  # sendFileMessage has no from/to
        assert ret["ack"] == 1 and ret["sendMsgResult"]["messageSendResult"] == "OK"
    for ret in (where, card, cards, poll):
        assert ret["ack"] == 1 and ret["to"] == CHAT and ret["from"] == f"{BUSINESS}@c.us", ret
    got = by_key(client)
    img = got[image["id"]]
    assert (img["type"], img["caption"], img["mimetype"], img["size"], img["sha256"]) == (
        "image", "a picture", "image/png", len(PNG), sha(PNG))
    assert img["quoted_id"] == text["id"].rsplit("_", 1)[1]
    assert (got[doc["id"]]["type"], got[doc["id"]]["filename"], got[doc["id"]]["sha256"]) == (
        "document", "report.pdf", sha(PDF))
    assert (got[voice["id"]]["type"], got[voice["id"]]["sha256"]) == ("ptt", sha(OGG))
    assert (got[sticker["id"]]["type"], got[sticker["id"]]["mimetype"]) == ("sticker", "image/webp")
    assert got[auto["id"]]["type"] == "image" and got[auto["id"]]["filename"] == "image.png"
    loc = got[where["id"]]
    assert (loc["type"], loc["latitude"], loc["longitude"], loc["name"], loc["address"], loc["url"]) == (
        "location", 52.52, 13.405, "Office", "Main St 1", "https://x.test")
    assert got[card["id"]]["type"] == "vcard"
    assert got[card["id"]]["vcard"] == ("BEGIN:VCARD\nVERSION:3.0\nFN:Alice\n"
                                        "TEL;type=CELL;waid=15550002222:+15550002222\nEND:VCARD")
    assert got[cards["id"]]["type"] == "multi_vcard"
    assert [v["displayName"] for v in got[cards["id"]]["vcards"]] == ["+15550002222", "Bob"]
    assert got[poll["id"]]["poll"] == {"name": "Lunch?", "options": ["pizza", "salad", "soup"],
                                       "selectable_count": 1, "votes": {}}
    # The media bytes, from the phone and from the page, are the bytes sent.
    msg_id = got[doc["id"]]["id"]
    with urllib.request.urlopen(f"{sim.url}/sim/contacts/{CONTACT}/messages/{msg_id}/media", timeout=5) as res:
        assert res.read() == PDF and res.headers["Content-Type"] == "application/pdf"
    assert download(sp, image["id"]) == PNG
    assert download(sp, voice["id"]) == OGG
    # The page's own MsgModels carry WhatsApp Web's fields, and every type gets its ack events.
    own = {m["id"]["_serialized"]: m for n, m in sp.events if n == "chat.new_message"}
    assert own[image["id"]]["filehash"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    assert own[image["id"]]["quotedStanzaID"] == text["id"].rsplit("_", 1)[1]
    assert own[image["id"]]["quotedParticipant"] == f"{BUSINESS}@c.us"
    assert own[voice["id"]]["type"] == "ptt" and own[where["id"]]["loc"] == "Office\nMain St 1"
    assert own[poll["id"]]["pollOptions"][2] == {"name": "soup", "localId": 2}
    acked = {k["_serialized"] for n, e in sp.events if n == "chat.msg_ack_change" for k in e["ids"]}
    assert {image["id"], doc["id"], where["id"], card["id"], poll["id"]} <= acked
    # Non-WhatsApp numbers fail like text does; a text message has no media.
    assert call(sp, "chat.sendFileMessage", "99912345678@c.us", data_url("image/png", PNG), {"type": "image"})[
        "error"] == "chat_not_found"
    assert call(sp, "chat.downloadMedia", text["id"])["error"] == "message_not_contains_media"


def test_inbound_types_fire_new_message(open_page: Any, client: Any, link: Any) -> None:
    # Given a linked page
    sp = open_page()
    link(sp)

    def send(body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, **body}, expect=201)
        return result

    # When the contact sends every type
    first = send({"text": "hello"})
    sent = {
        "image": send({"type": "image", "media_base64": base64.b64encode(PNG).decode(), "mimetype": "image/png",
                       "caption": "look", "quoted_id": first["id"]}),
        "ptt": send({"type": "audio", "ptt": True, "media_base64": base64.b64encode(OGG).decode()}),
        "document": send({"media_base64": base64.b64encode(PDF).decode(), "mimetype": "application/pdf",
                          "filename": "a.pdf"}),
        "location": send({"type": "location", "location": {"latitude": 1.5, "longitude": -2.25, "name": "Cafe"}}),
        "vcard": send({"type": "vcard", "contacts": [{"phone": "15550002222", "name": "Alice"}]}),
        "multi_vcard": send({"contacts": [{"phone": "15550002222", "name": "Alice"}, {"phone": "15550003333"}]}),
        "poll_creation": send({"type": "poll", "poll": {"name": "Q", "options": ["a", "b"], "selectable_count": 2}}),
    }
    # Then the page fires chat.new_message with WhatsApp Web's fields for each
    for kind, s in sent.items():
        msg = sp.wait_event("chat.new_message", lambda m, k=s["key"]: m["id"]["_serialized"] == k)
        assert msg["type"] == kind and msg["from"] == CHAT and msg["id"]["fromMe"] is False, msg
    ev = {m["id"]["_serialized"]: m for n, m in sp.events if n == "chat.new_message"}
    img = ev[sent["image"]["key"]]
    assert (img["caption"], img["mimetype"], img["size"], img["isViewOnce"]) == ("look", "image/png", len(PNG), False)
    assert img["filehash"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    assert (img["quotedStanzaID"], img["quotedParticipant"]) == (first["id"], CHAT)
    assert img["quotedMsg"]["body"] == "hello"
    assert ev[sent["ptt"]["key"]]["mimetype"] == "audio/ogg; codecs=opus"
    assert ev[sent["document"]["key"]]["filename"] == "a.pdf"
    loc = ev[sent["location"]["key"]]
    assert (loc["lat"], loc["lng"], loc["loc"]) == (1.5, -2.25, "Cafe")
    assert ev[sent["vcard"]["key"]]["body"].startswith("BEGIN:VCARD\nVERSION:3.0\nFN:Alice\n")
    assert ev[sent["vcard"]["key"]]["vcardFormattedName"] == "Alice"
    assert [v["displayName"] for v in ev[sent["multi_vcard"]["key"]]["vcardList"]] == ["Alice", "+15550003333"]
    poll = ev[sent["poll_creation"]["key"]]
    assert (poll["pollName"], poll["pollSelectableOptionsCount"]) == ("Q", 2)
    assert poll["pollOptions"] == [{"name": "a", "localId": 0}, {"name": "b", "localId": 1}]
    # The bytes the page downloads are the bytes the phone sent.
    assert download(sp, sent["image"]["key"]) == PNG
    assert download(sp, sent["document"]["key"]) == PDF


def test_react_edit_revoke_and_vote_both_ways(open_page: Any, client: Any, link: Any) -> None:
    # Given a conversation with a message each way
    sp = open_page()
    link(sp)
    mine = call(sp, "chat.sendTextMessage", CHAT, "draft", {})
    theirs = client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": "typo"}, expect=201)
    sp.wait_event("chat.new_message", lambda m: m["id"]["_serialized"] == theirs["key"])

    # The contact reacts to the account's message, edits and revokes its own
    react = client.post(f"/sim/contacts/{CONTACT}/react", {"message_id": mine["id"], "emoji": "👍"}, expect=201)
    reaction = sp.wait_event("chat.new_reaction", lambda r: r["reactionText"] == "👍")
    assert reaction["msgId"]["_serialized"] == mine["id"] and reaction["sender"] == CHAT
    assert reaction["id"]["_serialized"] == react["key"] and reaction["orphan"] == 0
    assert set(reaction) == {"id", "msgId", "reactionText", "read", "sender", "orphan", "orphanReason", "timestamp"}
    client.post(f"/sim/contacts/{CONTACT}/edit", {"message_id": theirs["id"], "text": "fixed"}, expect=201)
    edited = sp.wait_event("chat.msg_edited", lambda e: e["id"] == theirs["key"])
    assert edited["msg"]["body"] == "fixed" and edited["chat"] == f"{BUSINESS}@c.us"  # wa-js: chat = msg.to
    revoke = client.post(f"/sim/contacts/{CONTACT}/revoke", {"message_id": theirs["id"]}, expect=201)
    revoked = sp.wait_event("chat.msg_revoke")
    assert revoked["refId"]["_serialized"] == theirs["key"] and revoked["id"]["_serialized"] == revoke["key"]
    assert (revoked["type"], revoked["from"], revoked["to"]) == ("revoke", CHAT, f"{BUSINESS}@c.us")
    phone_view = by_key(client, "sent")[theirs["key"]]
    assert phone_view["edits"] == ["typo", "fixed"] and phone_view["revoked"] is True

    # The account reacts, edits and revokes through WPP
    assert call(sp, "chat.sendReactionToMessage", theirs["key"], "❤️") == {"sendMsgResult": "OK"}
    edit = call(sp, "chat.editMessage", mine["id"], "final", {})
    assert edit["id"] == mine["id"] and edit["sendMsgResult"] is None and edit["latestEditMsgKey"]["fromMe"]
    assert call(sp, "chat.editMessage", theirs["key"], "no", {})["error"] == "edit_message_error"
    deleted = call(sp, "chat.deleteMessage", CHAT, mine["id"], False, True)
    assert deleted == {"id": mine["id"], "sendMsgResult": "OK", "isRevoked": True, "isDeleted": False,
                       "isSentByMe": True}
    view = by_key(client)[mine["id"]]
    assert view["edits"] == ["draft", "final"] and view["revoked"] is True
    assert view["reactions"] == {CONTACT: "👍"}
    assert by_key(client, "sent")[theirs["key"]]["reactions"] == {BUSINESS: "❤️"}
    assert call(sp, "chat.sendReactionToMessage", theirs["key"], False) == {"sendMsgResult": "OK"}
    sp.eventually(lambda: by_key(client, "sent")[theirs["key"]]["reactions"] == {})

    # A poll the account sent gets a vote
    poll = call(sp, "chat.sendCreatePollMessage", CHAT, "When?", ["am", "pm"], {})
    client.post(f"/sim/contacts/{CONTACT}/vote", {"message_id": poll["id"], "options": ["pm"]}, expect=201)
    vote = sp.wait_event("chat.poll_response")
    assert vote["msgId"]["_serialized"] == poll["id"] and vote["sender"] == CHAT
    assert vote["selectedOptions"][1] == {"name": "pm", "localId": 1}
    assert by_key(client)[poll["id"]]["poll"]["votes"] == {CONTACT: ["pm"]}


def test_lid_sender_and_contact_queries(open_page: Any, client: Any, link: Any) -> None:
    # Given a contact that writes from its LID
    sp = open_page()
    link(sp)
    lid = client.get(f"/sim/contacts/{CONTACT}")["lid"]
    assert lid.endswith("@lid") and lid == client.get(f"/sim/contacts/{CONTACT}")["lid"]
    sent = client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": "from lid", "as_lid": True},
                       expect=201)
    msg = sp.wait_event("chat.new_message", lambda m: m.get("body") == "from lid")
    assert msg["from"] == lid and msg["id"]["remote"] == lid and sent["key"] == msg["id"]["_serialized"]
    # Then the page maps the LID to the number and back
    entry = call(sp, "contact.getPnLidEntry", lid)
    assert entry["lid"]["_serialized"] == lid and entry["phoneNumber"] == {
        "id": CONTACT, "server": "c.us", "_serialized": CHAT}
    assert call(sp, "contact.getPnLidEntry", "15550004444@c.us")["lid"]["server"] == "lid"
    assert call(sp, "contact.getPnLidEntry", "123-456@g.us")["error"] == "invalid_wid"
    # and a reply to the LID chat reaches the contact
    reply = call(sp, "chat.sendTextMessage", lid, "hi lid", {"quotedMsg": sent["key"]})
    assert reply["ack"] == 1
    got = by_key(client)[reply["id"]]
    assert got["body"] == "hi lid" and got["quoted_id"] == sent["id"] and got["lid"] == lid.split("@")[0]
    # queryExists: on WhatsApp -> {wid, biz, lid}; not on WhatsApp -> null
    found = call(sp, "contact.queryExists", CHAT)
    assert (found["wid"]["_serialized"], found["biz"], found["lid"]["_serialized"]) == (CHAT, False, lid)
    assert call(sp, "contact.queryExists", "99912345678@c.us") is None
