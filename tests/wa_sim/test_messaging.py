"""Messages through the simulated network: send, acks, inbound, offline queue, unknown numbers."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"
CONTACT = "15550001111"
SEND = "([to, text, opts]) => WPP.chat.sendTextMessage(to, text, opts)"


def test_send_text_and_contact_acks(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    ret = sp.wpp(SEND, [f"{CONTACT}@c.us", "hello contact", {}])
    assert re.fullmatch(rf"true_{CONTACT}@c\.us_3EB0[0-9A-F]{{16}}", ret["id"])
    assert ret["ack"] == 1
    assert (ret["from"], ret["to"]) == (f"{BUSINESS}@c.us", f"{CONTACT}@c.us")
    assert ret["sendMsgResult"]["messageSendResult"] == "OK"
    sent = sp.wait_event("chat.msg_ack_change", lambda e: e["ack"] == 1)
    assert sent["ids"][0]["_serialized"] == ret["id"]
    # The outgoing message is a new message too (id.fromMe), as in wa-js.
    own = sp.wait_event("chat.new_message", lambda m: m["id"]["fromMe"])
    assert own["id"]["_serialized"] == ret["id"]

    [msg] = client.messages(CONTACT)
    assert (msg["from"], msg["to"], msg["type"], msg["body"]) == (BUSINESS, CONTACT, "chat", "hello contact")
    assert msg["key"] == ret["id"] and msg["status"] == "sent" and msg["timestamp"] > 0

    for ack, number in (("delivered", 2), ("read", 3)):
        client.post(f"/sim/contacts/{CONTACT}/ack", {"message_id": ret["id"], "ack": ack})
        event = sp.wait_event("chat.msg_ack_change", lambda e, n=number: e["ack"] == n)
        assert event["chat"] == f"{CONTACT}@c.us"
        assert [k["_serialized"] for k in event["ids"]] == [ret["id"]]
        assert event["ids"][0]["fromMe"] is True
    assert client.messages(CONTACT)[0]["status"] == "read"
    assert sp.wpp("id => WPP.chat.getMessageById(id).then(m => m.ack)", ret["id"]) == 3


def test_inbound_message_and_mark_read(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    sent = client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": "hi business"}, expect=201)
    msg = sp.wait_event("chat.new_message", lambda m: not m["id"]["fromMe"])
    assert msg["body"] == "hi business" and msg["type"] == "chat"
    assert (msg["from"], msg["to"]) == (f"{CONTACT}@c.us", f"{BUSINESS}@c.us")
    assert msg["id"]["_serialized"] == f"false_{CONTACT}@c.us_{sent['id']}" == sent["key"]
    assert msg["id"]["remote"] == f"{CONTACT}@c.us"
    assert isinstance(msg["t"], int)
    sp.eventually(lambda: client.messages(CONTACT, "sent")[0]["status"] == "delivered")
    read = sp.wpp("c => WPP.chat.markIsRead(c)", f"{CONTACT}@c.us")
    assert read["wid"]["_serialized"] == f"{CONTACT}@c.us" and read["unreadCount"] == 1
    sp.eventually(lambda: client.messages(CONTACT, "sent")[0]["status"] == "read")


def test_network_down_queues_sends_until_up(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    sp.wpp(SEND, [CONTACT, "before", {}])
    mark = len(sp.events)
    client.post("/sim/network", {"phone_number": BUSINESS, "state": "down"})
    sp.wait_event("conn.online", lambda online: online is False, after=mark)
    assert sp.wpp("WPP.conn.isOnline()") is False
    # Inbound while down waits in the server's offline queue.
    client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": "while down"}, expect=201)
    ret = sp.wpp(SEND, [f"{CONTACT}@c.us", "queued", {"waitForAck": False}])
    assert ret["ack"] == 0 and ret["sendMsgResult"] is None
    sp.wpp("([to, t]) => { window.__waited = WPP.chat.sendTextMessage(to, t); }", [CONTACT, "awaited"])
    sp.page.wait_for_timeout(700)
    assert [m["body"] for m in client.messages(CONTACT)] == ["before"]
    assert sp.wpp("WPP.conn.isAuthenticated()") is True

    client.post("/sim/network", {"phone_number": BUSINESS, "state": "up"})
    sp.wait_event("chat.msg_ack_change", lambda e: e["ids"][0]["_serialized"] == ret["id"], after=mark)
    awaited = sp.wpp("window.__waited")
    assert awaited["ack"] == 1 and awaited["sendMsgResult"]["messageSendResult"] == "OK"
    assert [m["body"] for m in client.messages(CONTACT)] == ["before", "queued", "awaited"]
    sp.wait_event("chat.new_message", lambda m: m["body"] == "while down", after=mark)


def test_slow_network_adds_latency(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    client.post("/sim/network", {"phone_number": BUSINESS, "state": "slow", "latency_ms": 300})
    started = time.monotonic()
    assert sp.wpp(SEND, [CONTACT, "slowly", {}])["ack"] == 1
    assert time.monotonic() - started >= 0.55  # 300 ms each way


def test_unknown_number_is_rejected(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    err = sp.wpp("to => WPP.chat.sendTextMessage(to, 'x').then(() => null, "
                 "e => ({code: e.code, message: e.message}))", "99912345678@c.us")
    assert err == {"code": "chat_not_found", "message": "Failed to find or create chat for 99912345678@c.us"}
    err = sp.wpp("""() => WPP.chat.sendTextMessage('not-a-number', 'x').then(() => null, e => e.code)""")
    assert err == "invalid_wid"
    assert client.messages("99912345678") == []
    status, body = client.call("POST", "/sim/contacts/99912345678/send", {"to": BUSINESS, "text": "x"})
    assert (status, body["error"]) == (400, "not_on_whatsapp")
