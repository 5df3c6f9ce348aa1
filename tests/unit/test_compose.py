"""compose: each stored envelope becomes the one wa-js call (with the .d.ts's argument shapes) that sends it."""

from __future__ import annotations

import base64

import pytest

from browser_host.compose import MediaBytes, compose, target_of
from browser_host.page import PermanentSendError, wa_message_id

TO = "15551234567"
CHAT = f"{TO}@c.us"
KEY = f"true_{CHAT}_3EB0ABCDEF"


def test_text_carries_our_message_id_link_preview_and_a_quote() -> None:
    out = compose("msg_1", {"type": "text", "to": TO, "text": {"body": "hi", "preview_url": True}}, target_key=KEY)
    chat, body, options = out.args
    assert (out.call, chat, body) == ("text", CHAT, "hi")
    assert options == {"messageId": wa_message_id("msg_1"), "waitForAck": False, "createChat": True,
                       "quotedMsg": KEY, "linkPreview": True}


@pytest.mark.parametrize(("kind", "body", "expected"), [
    ("image", {"caption": "c"}, {"type": "image", "caption": "c"}),
    ("audio", {"voice": True}, {"type": "audio", "isPtt": True}),
    ("document", {"filename": "a.pdf"}, {"type": "document", "filename": "a.pdf"}),
    ("document", {}, {"type": "document", "filename": "from-link.pdf"}),
    ("sticker", {}, {"type": "sticker"}),
])
def test_media_goes_as_a_data_url_with_the_file_options(kind: str, body: dict, expected: dict) -> None:
    media = MediaBytes(b"\x89PNGdata", "image/png", "from-link.pdf")
    out = compose("msg_2", {"type": kind, "to": TO, kind: body}, media=media)
    chat, content, options = out.args
    assert out.call == "file" and chat == CHAT
    assert content == "data:image/png;base64," + base64.b64encode(b"\x89PNGdata").decode()
    assert {k: v for k, v in options.items() if k in expected} == expected
    assert options["mimetype"] == "image/png"


def test_location_contacts_and_poll_use_their_own_calls() -> None:
    location = compose("m", {"type": "location", "to": TO, "location": {"latitude": 1.5, "longitude": 2.5,
                                                                         "name": "Shop"}})
    assert location.call == "location" and location.args[1]["lat"] == 1.5 and location.args[1]["name"] == "Shop"
    contacts = compose("m", {"type": "contacts", "to": TO, "contacts": [
        {"name": {"formatted_name": "Ann"}, "phones": [{"phone": "+1 555 000 1111"}]}]})
    assert contacts.call == "vcard" and contacts.args[1] == [{"id": "15550001111@c.us", "name": "Ann"}]
    poll = compose("m", {"type": "poll", "to": TO, "poll": {"question": "Q", "options": ["a", "b"],
                                                            "max_selections": 2}})
    assert poll.call == "poll" and poll.args[1:3] == ["Q", ["a", "b"]] and poll.args[3]["selectableCount"] == 2


def test_operations_act_on_the_target_key() -> None:
    reaction = compose("m", {"type": "reaction", "to": TO, "reaction": {"message_id": "msg_x", "emoji": ""}},
                       target_key=KEY)
    assert reaction.is_operation and reaction.args == [{"target": KEY, "emoji": ""}]
    edit = compose("m", {"type": "edit", "to": TO, "message_id": "msg_x", "text": {"body": "new"}}, target_key=KEY)
    assert edit.call == "edit" and edit.args[0]["text"] == "new"
    revoke = compose("m", {"type": "revoke", "to": TO, "message_id": "msg_x"}, target_key=KEY)
    assert revoke.args == [{"target": KEY, "chat": CHAT}]
    read = compose("m", {"type": "read", "to": TO, "message_id": "msg_x"}, target_key=f"false_{CHAT}_ID")
    assert read.call == "read" and read.args[0]["chat"] == CHAT


def test_targets_are_found_for_replies_reactions_and_operations() -> None:
    assert target_of({"type": "text", "context": {"message_id": "msg_a"}}) == "msg_a"
    assert target_of({"type": "reaction", "reaction": {"message_id": "msg_b", "emoji": "x"}}) == "msg_b"
    assert target_of({"type": "revoke", "message_id": "msg_c"}) == "msg_c"
    assert target_of({"type": "text"}) is None


@pytest.mark.parametrize("envelope", [
    {"type": "image", "to": TO, "image": {}},  # media not loaded
    {"type": "reaction", "to": TO, "reaction": {"message_id": "msg_x", "emoji": "x"}},  # target never sent
    {"type": "contacts", "to": TO, "contacts": [{"name": {"formatted_name": "No phone"}}]},
    {"type": "template", "to": TO},
])
def test_what_can_never_be_sent_fails_permanently(envelope: dict) -> None:
    with pytest.raises(PermanentSendError):
        compose("m", envelope)


BUTTONS = {"type": "button", "header": {"type": "text", "text": "Order 42"}, "body": {"text": "Is it still needed?"},
           "footer": {"text": "Acme support"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "yes-42", "title": "Yes"}},
                                  {"type": "reply", "reply": {"id": "no-42", "title": "No"}}]}}
LIST = {"type": "list", "body": {"text": "Pick a slot"},
        "action": {"button": "Slots", "sections": [
            {"title": "Morning", "rows": [{"id": "m9", "title": "9:00", "description": "with Ann"},
                                          {"id": "m11", "title": "11:00"}]},
            {"title": "Afternoon", "rows": [{"id": "a3", "title": "15:00", "description": "with Bob"}]}]}}


def test_buttons_go_as_numbered_text() -> None:
    out = compose("msg_i", {"type": "interactive", "to": TO, "interactive": BUTTONS})
    chat, text, options = out.args
    assert (out.call, chat) == ("text", CHAT) and options["messageId"] == wa_message_id("msg_i")
    assert text == ("*Order 42*\n\nIs it still needed?\n\n1. Yes\n2. No\n\n_Acme support_\n\n"
                    "Reply with the number of your choice.")


def test_lists_go_as_numbered_rows_under_their_section_titles() -> None:
    out = compose("msg_l", {"type": "interactive", "to": TO, "interactive": LIST}, target_key=KEY)
    text = out.args[1]
    assert out.call == "text" and out.args[2]["quotedMsg"] == KEY
    assert text == ("Pick a slot\n\nMorning\n1. 9:00 — with Ann\n2. 11:00\nAfternoon\n3. 15:00 — with Bob\n\n"
                    "Reply with the number of your choice.")


@pytest.mark.parametrize("interactive", [
    {"type": "cta_url", "body": {"text": "x"}, "action": {"name": "cta_url", "parameters": {"url": "https://a"}}},
    {"type": "button", "body": {"text": "no buttons"}, "action": {}},
])
def test_other_interactive_messages_fail_permanently(interactive: dict) -> None:
    with pytest.raises(PermanentSendError):
        compose("m", {"type": "interactive", "to": TO, "interactive": interactive})


def test_a_read_receipt_with_a_typing_indicator_shows_typing_for_25_seconds() -> None:
    plain = compose("m", {"type": "read", "to": TO, "message_id": "msg_x"}, target_key=f"false_{CHAT}_ID")
    typing = compose("m", {"type": "read", "to": TO, "message_id": "msg_x", "typing_indicator": {"type": "text"}},
                     target_key=f"false_{CHAT}_ID")
    assert "typing" not in plain.args[0]
    assert typing.call == "read" and typing.args[0] == {"target": f"false_{CHAT}_ID", "chat": CHAT, "typing": 25_000}
