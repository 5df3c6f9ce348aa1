"""The numbered-text fallback's rule: which texts pick a choice, what they become (Meta's interactive replies),
and how a Cloud API bot receives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from core.meta import to_meta_payload
from core.models.choices import ChoiceMenu, chosen_number
from core.models.envelope import MarkRead, SendRequest
from core.models.rich import InteractiveBody

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BUTTONS = InteractiveBody.model_validate({
    "type": "button", "body": {"text": "Still needed?"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                           {"type": "reply", "reply": {"id": "no", "title": "No"}}]}})
LIST = InteractiveBody.model_validate({
    "type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots", "sections": [
        {"title": "Morning", "rows": [{"id": "m9", "title": "9:00", "description": "with Ann"}]},
        {"rows": [{"id": "a3", "title": "15:00"}]}]}})


@pytest.mark.parametrize(("text", "number"), [
    ("2", 2), (" 2 ", 2), ("2.", 2), ("\n10\t", 10), ("02", 2),
    ("\uff12", None), ("\u0662", None), ("2 please", None), ("2)", None), ("-1", None), ("", None), ("1.5", None),
    ("123", None), ("two", None),
])
def test_only_a_bare_ascii_number_is_a_choice(text: str, number: int | None) -> None:
    assert chosen_number(text) == number


def test_a_number_in_range_within_24_hours_becomes_the_button_reply() -> None:
    menu = ChoiceMenu.of("msg_1", "true_1555@c.us_3EB0AA", BUTTONS, AT)
    soon = AT + timedelta(hours=23, minutes=59)
    assert menu.reply("2", soon) == {"type": "button_reply", "button_reply": {"id": "no", "title": "No"}}
    assert menu.reply(" 1. ", soon) == {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    assert menu.context() == {"message_id": "msg_1", "wa_message_id": "true_1555@c.us_3EB0AA"}
    for other in ("0", "3", "hello", "2 2"):
        assert menu.reply(other, soon) is None
    assert menu.reply("2", AT + timedelta(hours=24, seconds=1)) is None


def test_list_rows_are_numbered_across_sections_and_carry_their_description() -> None:
    menu = ChoiceMenu.of("msg_2", None, LIST, AT)
    assert menu.reply("1", AT) == {"type": "list_reply",
                                   "list_reply": {"id": "m9", "title": "9:00", "description": "with Ann"}}
    assert menu.reply("2", AT) == {"type": "list_reply", "list_reply": {"id": "a3", "title": "15:00"}}
    assert menu.context() == {"message_id": "msg_2"}


def test_the_menu_survives_the_store_and_a_broken_one_is_no_menu() -> None:
    menu = ChoiceMenu.of("msg_1", "key", BUTTONS, AT)
    again = ChoiceMenu.parse(menu.model_dump_json())
    assert again == menu and again is not None and again.reply("1", AT) is not None
    assert ChoiceMenu.parse(None) is None and ChoiceMenu.parse("{not json") is None


def test_a_cloud_api_bot_receives_the_reply_as_meta_sends_it() -> None:
    menu = ChoiceMenu.of("msg_1", "true_15550001111@c.us_3EB0AA", BUTTONS, AT)
    data = {"message_id": "msg_in", "wa_message_id": "false_15550001111@c.us_ABC", "from": "15550001111",
            "from_lid": None, "profile_name": "Ann", "timestamp": 1740830400, "type": "interactive",
            "interactive": menu.reply("2", AT), "context": menu.context()}
    event = {"id": "evt_1", "type": "message.received", "created_at": "2025-03-01T12:00:00Z",
             "account_id": "acc_1", "data": data}
    payload = to_meta_payload(event, phone_number_id="acc_1", display_phone_number="15551234567",
                              waba_id="waba_1")
    assert payload is not None
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["type"] == "interactive"
    assert message["interactive"] == {"type": "button_reply", "button_reply": {"id": "no", "title": "No"}}
    assert message["context"] == {"from": "15551234567", "id": "true_15550001111@c.us_3EB0AA"}


def test_a_read_receipt_takes_metas_typing_indicator() -> None:
    read = TypeAdapter(SendRequest).validate_python({"messaging_product": "whatsapp", "status": "read",
                                                     "message_id": "wamid.X", "typing_indicator": {"type": "text"}})
    assert isinstance(read, MarkRead) and read.typing_indicator is not None
    with pytest.raises(ValidationError):
        TypeAdapter(SendRequest).validate_python({"status": "read", "message_id": "x",
                                                  "typing_indicator": {"type": "audio"}})
