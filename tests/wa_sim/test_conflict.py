"""One linked device, one live connection: a second page with the same credentials replaces the first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .test_persistence import CAPTURE_KEY, RESTORE_KEY

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"
CONTACT = "15550001111"
SEND_ERROR = "to => WPP.chat.sendTextMessage(to, 'x').then(() => null, e => ({code: e.code, message: e.message}))"


def is_conflict(mode: Any) -> bool:
    return bool(mode == "CONFLICT")


def conflicts(client: Any) -> tuple[int, list[int]]:
    [acc] = client.get("/sim/accounts")["accounts"]
    return acc["conflicts"], [d["conflicts"] for d in acc["devices"]]


def assert_replaced(old: Any, new: Any, mark: int) -> None:
    """`old` shows WhatsApp Web's conflict state; `new` is the live connection."""
    assert old.wait_event("conn.stream_mode_changed", is_conflict, after=mark) == "CONFLICT"
    old.wait_event("conn.online", lambda online: online is False, after=mark)
    assert old.wpp("WPP.conn.isOnline()") is False
    assert old.wpp("WPP.conn.getStreamData()") == {"mode": "CONFLICT", "info": "OFFLINE"}
    assert old.wpp("WPP.conn.isAuthenticated()") is True  # still linked: "Use here" works without a QR
    old.page.wait_for_selector("[data-testid=conflict]", state="visible")
    assert "open on another computer or browser" in old.page.inner_text("[data-testid=conflict]")
    assert new.wpp("WPP.conn.isOnline()") is True
    assert new.wpp("WPP.conn.getStreamData()") == {"mode": "MAIN", "info": "NORMAL"}


def inbound_reaches_only(client: Any, live: Any, replaced: Any, text: str) -> None:
    live_mark, replaced_mark = len(live.events), len(replaced.events)
    sent = client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": text}, expect=201)
    assert sent["delivered_to_pages"] == 1
    live.wait_event("chat.new_message", lambda m: m["body"] == text, after=live_mark)
    live.page.wait_for_timeout(500)
    assert "chat.new_message" not in replaced.names()[replaced_mark:]


def test_two_hosts_restoring_one_snapshot(browser: Any, open_page: Any, client: Any, link: Any,
                                          attach_page: Any, sim: Any) -> None:
    first = open_page()
    first.page.context.add_init_script(CAPTURE_KEY)
    first.page.reload()
    link(first)
    snapshot = first.page.context.storage_state(indexed_db=True)
    key = first.wpp("window.__capturedKey")
    assert conflicts(client) == (0, [0])

    second_host = browser.new_context(storage_state=snapshot)
    try:
        second_host.add_init_script(RESTORE_KEY % key)
        mark = len(first.events)
        second = attach_page(second_host, sim.url)
        second.wait_event("conn.main_ready")
        assert_replaced(first, second, mark)
        assert conflicts(client) == (1, [1])
        assert client.get("/sim/accounts")["accounts"][0]["online"] is True

        inbound_reaches_only(client, second, first, "after the conflict")
        assert first.wpp(SEND_ERROR, f"{CONTACT}@c.us") == {
            "code": "conflict",
            "message": 'WhatsApp is open on another computer or browser. Click "Use here" to use WhatsApp '
                       "in this window."}
        assert [m["body"] for m in client.messages(CONTACT)] == []

        # No ping-pong: the replaced page does not reconnect by itself (it would retry every 0.5 s).
        second_mark = len(second.events)
        first.page.wait_for_timeout(2000)
        assert conflicts(client) == (1, [1])
        assert ("conn.online", True) not in first.events[mark:]
        assert "conn.stream_mode_changed" not in second.names()[second_mark:]
        assert second.wpp("WPP.conn.isOnline()") is True
        assert second.wpp("([to, t]) => WPP.chat.sendTextMessage(to, t)", [CONTACT, "from host 2"])["ack"] == 1
    finally:
        second_host.close()


def test_second_tab_then_use_here_and_reload(open_page: Any, client: Any, link: Any,
                                             attach_page: Any, sim: Any) -> None:
    first = open_page()
    link(first)
    # Another tab of the same browser profile: same storage, same credentials, both live.
    mark = len(first.events)
    second = attach_page(first.page.context, sim.url)
    second.wait_event("conn.main_ready")
    assert_replaced(first, second, mark)
    assert conflicts(client) == (1, [1])

    # "Use here" logs the first tab in again in place, which replaces the second: another conflict.
    mark, second_mark = len(first.events), len(second.events)
    first.page.click("#use-here")
    first.wait_event("conn.online", lambda online: online is True, after=mark)
    assert first.wait_event("conn.stream_mode_changed", after=mark) == "MAIN"
    assert_replaced(second, first, second_mark)
    assert first.page.is_hidden("[data-testid=conflict]")
    assert conflicts(client) == (2, [2])
    inbound_reaches_only(client, first, second, "use here")

    # Reloading the replaced tab takes the device back too.
    mark, second_mark = len(first.events), len(second.events)
    second.page.reload()
    second.wait_event("conn.main_ready", after=second_mark)
    assert_replaced(first, second, mark)
    assert conflicts(client) == (3, [3])
    inbound_reaches_only(client, second, first, "after reload")


def test_reload_close_and_crash_are_not_conflicts(open_page: Any, client: Any, link: Any,
                                                  attach_page: Any, sim: Any) -> None:
    sp = open_page()
    link(sp)
    context = sp.page.context
    for _ in range(3):
        mark = len(sp.events)
        sp.page.reload()
        sp.wait_event("conn.main_ready", after=mark)
        assert sp.wpp("WPP.conn.isOnline()") is True
    assert conflicts(client) == (0, [0])

    # A host replacing a dead page: close it, then open a new one in the same context.
    sp.page.close()
    replacement = attach_page(context, sim.url)
    replacement.wait_event("conn.main_ready")
    assert conflicts(client) == (0, [0])

    # A crashed renderer, replaced at once (its socket may close after the new page logged in).
    with pytest.raises(Exception, match="chrome://crash"):
        replacement.page.goto("chrome://crash")
    after_crash = attach_page(context, sim.url)
    after_crash.wait_event("conn.main_ready")
    assert after_crash.wpp("WPP.conn.getStreamData()") == {"mode": "MAIN", "info": "NORMAL"}
    assert conflicts(client) == (0, [0])
    assert client.get("/sim/accounts")["accounts"][0]["online"] is True
    inbound_reaches_only(client, after_crash, replacement, "after the crash")
    for page in (sp, replacement, after_crash):
        assert "CONFLICT" not in [p for n, p in page.events if n == "conn.stream_mode_changed"]


def test_send_the_server_never_took_fails_on_conflict(open_page: Any, client: Any, link: Any,
                                                      attach_page: Any, sim: Any) -> None:
    first = open_page()
    context = first.page.context
    # Between the page and the simulator: hold back the page's "send" frames (a send in flight).
    held: list[str] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "send":
                held.append(message)
            else:
                server.send(message)

        ws.on_message(to_server)

    context.route_web_socket("**/ws", route)
    first.page.reload()
    link(first)
    first.wpp("([to, t]) => { window.__inFlight = WPP.chat.sendTextMessage(to, t); }", [CONTACT, "in flight"])
    first.eventually(lambda: len(held) == 1)

    mark = len(first.events)
    second = attach_page(context, sim.url)
    second.wait_event("conn.main_ready")
    assert_replaced(first, second, mark)
    result = first.wpp("window.__inFlight")
    assert result["ack"] == -1 and result["sendMsgResult"] == {"messageSendResult": "ERROR_NETWORK"}
    assert client.messages(CONTACT) == []
