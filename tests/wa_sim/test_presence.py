"""Chat presence through the simulated network: `markIsComposing` / `markIsPaused` as the contact's phone sees them."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"
CONTACT = "15550001111"
CHAT = f"{CONTACT}@c.us"


def typing(client: Any) -> list[dict[str, Any]]:
    return list(client.get(f"/sim/contacts/{CONTACT}/typing")["typing"])


def test_composing_shows_typing_until_the_duration_ends_or_a_message_arrives(
    open_page: Any, client: Any, link: Any,
) -> None:
    sp = open_page()
    link(sp)
    # markIsComposing needs a chat the page knows (wa-js' assertGetChat)
    missing = sp.wpp("c => WPP.chat.markIsComposing(c).then(() => null, (e) => e.code)", "15559990000@c.us")
    assert missing == "chat_not_found"
    client.post(f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": "hi"}, expect=201)
    sp.wait_event("chat.new_message", lambda m: not m["id"]["fromMe"])

    # Given a duration: typing with its end, and the promise resolves once it is over (the chat paused)
    before = time.time()
    started = time.monotonic()
    assert sp.wpp("([c, d]) => WPP.chat.markIsComposing(c, d).then(() => 'done')", [CHAT, 600]) == "done"
    assert time.monotonic() - started >= 0.55
    sp.eventually(lambda: typing(client) == [])
    sp.wpp("([c, d]) => { WPP.chat.markIsComposing(c, d); }", [CHAT, 20_000])
    sp.eventually(lambda: bool(typing(client)))
    (shown,) = typing(client)
    assert (shown["account"], shown["state"]) == (BUSINESS, "composing")
    assert before <= shown["since"] and abs(shown["until"] - shown["since"] - 20) < 0.01

    # A message from the account ends it; so does markIsPaused
    sp.wpp("([c, t]) => WPP.chat.sendTextMessage(c, t)", [CHAT, "answer"])
    sp.eventually(lambda: typing(client) == [])
    sp.wpp("c => WPP.chat.markIsComposing(c)", CHAT)
    sp.eventually(lambda: bool(typing(client)))
    assert typing(client)[0]["until"] is None
    sp.wpp("c => WPP.chat.markIsPaused(c)", CHAT)
    sp.eventually(lambda: typing(client) == [])
