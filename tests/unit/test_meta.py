"""Meta's Cloud API webhooks: signatures, the handshake, reading payloads, writing events in Meta's format."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core.meta import (
    MetaPayloadError,
    MetaTranslationError,
    business_scoped_user_id,
    dumps,
    inbound_messages,
    parse_received_media_id,
    parse_webhook,
    sign,
    status_updates,
    system_errors,
    to_meta_payload,
    verification_answer,
    verify_signature,
)
from core.models.messages import MessageStatus

WABA, PHONE_ID, DISPLAY = "102290129340398", "106540352242922", "15550783881"
USER = "16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
CONTEXT_WAMID = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="


def webhook(**value: Any) -> dict[str, Any]:
    """Meta's envelope (from the messages webhook reference) around one `messages` change value."""
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_ID}, **value},
        "field": "messages"}]}]}


def user_message(message: dict[str, Any]) -> dict[str, Any]:
    return webhook(contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": USER}],
                   messages=[{"from": USER, "id": WAMID, "timestamp": "1749416383", **message}])


# Meta's documented examples (messages webhook reference), values as published.
TEXT = user_message({"type": "text", "text": {"body": "Does it come in another color?"}})
IMAGE = user_message({"type": "image", "image": {
    "caption": "Wow, this is a great deal!", "mime_type": "image/jpeg",
    "sha256": "3f4b9Yx2m9b8Q1c5ZJ5pBv6vJ7h6t8k9lQ1w2e3r4t5=", "id": "1003383421387256",
    "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256"}})
VOICE = user_message({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc=",
                                                 "id": "1003383421387257", "voice": True}})
DOCUMENT = user_message({"type": "document", "document": {"caption": "Invoice", "filename": "invoice.pdf",
                                                          "mime_type": "application/pdf", "sha256": "def=",
                                                          "id": "1003383421387258"}})
LOCATION = user_message({"type": "location", "location": {
    "address": "101 Forest Ave, Palo Alto, CA 94301", "latitude": 37.44211676562361,
    "longitude": -122.16155960083124, "name": "Philz Coffee", "url": "https://philzcoffee.com/"}})
CONTACTS = user_message({"type": "contacts", "contacts": [{
    "name": {"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson"},
    "phones": [{"phone": "+16505559999", "type": "MOBILE", "wa_id": "16505559999"}],
    "emails": [{"email": "bjohnson@luckyshrub.com", "type": "WORK"}], "org": {"company": "Lucky Shrub"}}]})
REACTION = user_message({"type": "reaction", "reaction": {"message_id": CONTEXT_WAMID, "emoji": "\U0001f44d"}})
REACTION_REMOVED = user_message({"type": "reaction", "reaction": {"message_id": CONTEXT_WAMID}})
REPLY = user_message({"type": "text", "text": {"body": "Yes, the blue one"},
                      "context": {"from": DISPLAY, "id": CONTEXT_WAMID}})
BUTTON_REPLY = user_message({"type": "interactive", "context": {"from": DISPLAY, "id": CONTEXT_WAMID},
                             "interactive": {"type": "button_reply",
                                             "button_reply": {"id": "cancel-button", "title": "Cancel"}}})
LIST_REPLY = user_message({"type": "interactive", "context": {"from": DISPLAY, "id": CONTEXT_WAMID},
                           "interactive": {"type": "list_reply", "list_reply": {
                               "id": "priority-express", "title": "Priority Mail Express",
                               "description": "Next Day to 2 Days"}}})
TEMPLATE_BUTTON = user_message({"type": "button", "context": {"from": DISPLAY, "id": CONTEXT_WAMID},
                                "button": {"payload": "Unsubscribe", "text": "Unsubscribe"}})
UNSUPPORTED = user_message({"type": "unsupported", "errors": [{
    "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
    "error_data": {"details": "Message type is currently not supported."}}]})
SENT = webhook(statuses=[{
    "id": WAMID, "status": "sent", "timestamp": "1750857384", "recipient_id": USER,
    "conversation": {"id": "a75d17ad06104c51166f948319b03c6a", "expiration_timestamp": "1750943820",
                     "origin": {"type": "service"}},
    "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}])
FAILED = webhook(statuses=[{
    "id": WAMID, "status": "failed", "timestamp": "1750857390", "recipient_id": USER,
    "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed since "
                                          "the customer last replied to this number."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]}])
SYSTEM_ERROR = webhook(errors=[{
    "code": 130429, "title": "Rate limit hit", "message": "Rate limit hit",
    "error_data": {"details": "Message failed to send because there were too many messages sent from this "
                              "phone number in a short period of time"},
    "href": "/documentation/business-messaging/whatsapp/support/error-codes"}])


# --- signatures and the handshake -----------------------------------------------------------------------------


def test_a_signature_made_with_the_app_secret_verifies() -> None:
    body = json.dumps(TEXT).encode()
    header = sign("app-secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("app-secret", body, header)
    assert verify_signature("app-secret", body, header.upper().replace("SHA256=", "sha256="))  # hex case


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=" + "0" * 40, "md5=abc", "garbage",
                                    "sha256=" + "0" * 64, "sha256=é"])
def test_bad_missing_or_wrongly_prefixed_signatures_fail(header: str | None) -> None:
    assert not verify_signature("app-secret", b"{}", header)


def test_a_signature_fails_on_other_bytes_or_another_secret() -> None:
    header = sign("app-secret", b'{"a":1}')
    assert not verify_signature("app-secret", b'{"a": 1}', header)
    assert not verify_signature("other-secret", b'{"a":1}', header)
    assert not verify_signature("", b'{"a":1}', sign("", b'{"a":1}'))


def test_the_handshake_echoes_the_challenge_only_for_our_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "tok-123", "hub.challenge": "1158201444"}
    assert verification_answer(good, "tok-123") == "1158201444"
    assert verification_answer({k: [v] for k, v in good.items()}, "tok-123") == "1158201444"
    assert verification_answer({**good, "hub.verify_token": "nope"}, "tok-123") is None
    assert verification_answer({**good, "hub.mode": "unsubscribe"}, "tok-123") is None
    assert verification_answer({k: v for k, v in good.items() if k != "hub.challenge"}, "tok-123") is None
    assert verification_answer({**good, "hub.verify_token": ""}, "") is None
    assert verification_answer({}, "tok-123") is None


# --- inbound --------------------------------------------------------------------------------------------------


def test_a_text_message_reads_as_wagate_stores_it() -> None:
    [msg] = inbound_messages(TEXT)
    assert (msg.phone_number_id, msg.display_phone_number, msg.waba_id) == (PHONE_ID, DISPLAY, WABA)
    assert (msg.from_number, msg.profile_name, msg.timestamp, msg.wa_message_id) == (
        USER, "Sheena Nelson", 1749416383, WAMID)
    assert msg.content == {"type": "text", "text": {"body": "Does it come in another color?"}, "wa_message_id": WAMID}
    assert msg.media_to_fetch is None


def test_the_payload_may_come_as_raw_bytes() -> None:
    assert inbound_messages(json.dumps(TEXT).encode())[0].content["text"]["body"] == "Does it come in another color?"


def test_media_messages_name_the_media_to_fetch() -> None:
    [image] = inbound_messages(IMAGE)
    assert image.content == {"type": "image", "image": {"mime_type": "image/jpeg",
                                                        "caption": "Wow, this is a great deal!"},
                             "wa_message_id": WAMID}
    assert image.media_to_fetch is not None
    assert (image.media_to_fetch.id, image.media_to_fetch.mime_type) == ("1003383421387256", "image/jpeg")
    assert image.media_to_fetch.sha256 == "3f4b9Yx2m9b8Q1c5ZJ5pBv6vJ7h6t8k9lQ1w2e3r4t5="
    [voice] = inbound_messages(VOICE)
    assert voice.content["audio"] == {"mime_type": "audio/ogg; codecs=opus", "voice": True}
    [document] = inbound_messages(DOCUMENT)
    assert document.content["document"] == {"mime_type": "application/pdf", "caption": "Invoice",
                                            "filename": "invoice.pdf"}
    assert document.media_to_fetch is not None and document.media_to_fetch.filename == "invoice.pdf"


def test_locations_and_contact_cards_keep_meta_shape() -> None:
    [location] = inbound_messages(LOCATION)
    assert location.content["location"] == {"latitude": 37.44211676562361, "longitude": -122.16155960083124,
                                            "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301",
                                            "url": "https://philzcoffee.com/"}
    [contacts] = inbound_messages(CONTACTS)
    [card] = contacts.content["contacts"]
    assert card["name"]["formatted_name"] == "Barbara J. Johnson"
    assert card["phones"] == [{"phone": "+16505559999", "wa_id": "16505559999", "type": "MOBILE"}]
    assert card["org"] == {"company": "Lucky Shrub"}  # fields wagate does not read are kept


def test_reactions_and_their_removal() -> None:
    [added] = inbound_messages(REACTION)
    assert added.type == "reaction"
    assert added.content["reaction"] == {"wa_message_id": CONTEXT_WAMID, "emoji": "\U0001f44d", "removed": False}
    [removed] = inbound_messages(REACTION_REMOVED)
    assert removed.content["reaction"] == {"wa_message_id": CONTEXT_WAMID, "emoji": "", "removed": True}


def test_replies_and_button_taps_carry_the_quoted_message() -> None:
    [reply] = inbound_messages(REPLY)
    assert reply.content["context"] == {"wa_message_id": CONTEXT_WAMID}
    [button] = inbound_messages(BUTTON_REPLY)
    assert button.content["interactive"] == {"type": "button_reply",
                                             "button_reply": {"id": "cancel-button", "title": "Cancel"}}
    assert button.content["context"] == {"wa_message_id": CONTEXT_WAMID}
    [row] = inbound_messages(LIST_REPLY)
    assert row.content["interactive"]["list_reply"]["id"] == "priority-express"
    [template] = inbound_messages(TEMPLATE_BUTTON)
    assert template.content["button"] == {"text": "Unsubscribe", "payload": "Unsubscribe"}


def test_unknown_message_types_arrive_as_unsupported() -> None:
    [msg] = inbound_messages(UNSUPPORTED)
    assert msg.content["type"] == "unsupported"
    assert msg.content["unsupported"]["wa_type"] == "unsupported"
    assert msg.content["unsupported"]["errors"][0]["code"] == 131051
    order = user_message({"type": "order", "order": {"catalog_id": "1", "product_items": []}})
    assert inbound_messages(order)[0].content["unsupported"] == {"wa_type": "order"}


def test_statuses_map_to_ours_with_meta_errors_named() -> None:
    [sent] = status_updates(SENT)
    assert (sent.wa_message_id, sent.status, sent.timestamp, sent.recipient_id, sent.error) == (
        WAMID, MessageStatus.SENT, 1750857384, USER, None)
    for name in ("delivered", "read"):
        [update] = status_updates(webhook(statuses=[{**SENT["entry"][0]["changes"][0]["value"]["statuses"][0],
                                                     "status": name}]))
        assert update.status == MessageStatus(name)
    [failed] = status_updates(FAILED)
    assert failed.status is MessageStatus.FAILED
    assert failed.error is not None and failed.error.code == "outside_window"
    assert "24 hours" in failed.error.message and "131047" in failed.error.message


@pytest.mark.parametrize(("code", "ours"), [(131026, "invalid_recipient"), (131047, "outside_window"),
                                            (131049, "send_failed"), (131000, "send_failed")])
def test_meta_error_codes(code: int, ours: str) -> None:
    payload = webhook(statuses=[{"id": WAMID, "status": "failed", "timestamp": "1", "recipient_id": USER,
                                 "errors": [{"code": code, "title": "Some title"}]}])
    [update] = status_updates(payload)
    assert update.error is not None and update.error.code == ours
    assert f"Meta error {code}" in update.error.message


def test_a_failed_status_without_errors_and_unknown_statuses() -> None:
    payload = webhook(statuses=[{"id": WAMID, "status": "failed", "timestamp": "1", "recipient_id": USER},
                                {"id": WAMID, "status": "deleted", "timestamp": "2", "recipient_id": USER}])
    [update] = status_updates(payload)
    assert update.error is not None and update.error.code == "send_failed"


def test_errors_on_the_change_itself() -> None:
    [error] = system_errors(SYSTEM_ERROR)
    assert error.code == 130429 and error.error_data is not None and "too many" in (error.error_data.details or "")
    assert inbound_messages(SYSTEM_ERROR) == [] and status_updates(SYSTEM_ERROR) == []


def test_unknown_extra_fields_and_other_changes_are_tolerated() -> None:
    payload = copy.deepcopy(TEXT)
    payload["new_top_level"] = 1
    entry = payload["entry"][0]
    entry["time"] = 1749416383
    value = entry["changes"][0]["value"]
    value["contacts"][0].update(user_id="US.13491208655302741918", identity_key_hash="DF2lS5v2W6x=")
    value["messages"][0]["brand_new"] = {"x": 1}
    entry["changes"].append({"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}})
    [msg] = inbound_messages(payload)
    assert msg.content["text"]["body"] == "Does it come in another color?"
    assert parse_webhook(payload).model_dump(by_alias=True)["new_top_level"] == 1


@pytest.mark.parametrize("payload", [
    b"not json", {}, {"object": "page", "entry": []},
    {"object": "whatsapp_business_account", "entry": [{"id": WABA}]},
    webhook(messages=[{"from": USER, "id": WAMID, "timestamp": "1", "type": "text"}]),  # no text object
    webhook(messages=[{"id": WAMID, "timestamp": "1", "type": "text", "text": {"body": "x"}}]),  # no from
    webhook(messages=[{"from": USER, "id": WAMID, "timestamp": "yesterday", "type": "text", "text": {"body": "x"}}]),
    webhook(statuses=[{"id": WAMID, "status": "sent"}]),
    user_message({"type": "interactive", "interactive": {"type": "button_reply"}}),
])
def test_malformed_payloads_raise_a_clear_error(payload: Any) -> None:
    with pytest.raises(MetaPayloadError) as caught:
        inbound_messages(payload)
    assert caught.value.code == "invalid_meta_payload"
    assert "not a WhatsApp Cloud API webhook" in caught.value.message


# --- outbound -------------------------------------------------------------------------------------------------

IDS = {"phone_number_id": PHONE_ID, "display_phone_number": DISPLAY, "waba_id": WABA}
WA_ID = "false_16505551234@c.us_3EB0C767D26A1D2E5B"


def received(**data: Any) -> dict[str, Any]:
    return {"id": "evt_1", "type": "message.received", "created_at": "2026-05-01T10:00:00.000Z",
            "account_id": "acc_1", "data": {"message_id": "msg_1", "wa_message_id": WA_ID, "from": USER,
                                            "from_lid": None, "profile_name": "Ann", "timestamp": 1777629600,
                                            **data}}


RECEIVED = [
    received(type="text", text={"body": "Hi!"}),
    received(type="text", text={"body": "Yes"}, context={"message_id": "msg_0", "wa_message_id": "true_x_1"}),
    received(type="image", image={"mime_type": "image/jpeg", "caption": "look"},
             media={"key": "inbound/acc_1/msg_1", "mime_type": "image/jpeg", "size_bytes": 3, "sha256": "ab12",
                    "caption": "look", "url": "https://bucket/inbound/acc_1/msg_1?sig"}),
    received(type="audio", audio={"mime_type": "audio/ogg; codecs=opus", "voice": True}),
    received(type="document", document={"mime_type": "application/pdf", "filename": "a.pdf"},
             media={"error": "media_download_failed", "mime_type": "application/pdf"}),
    received(type="location", location={"latitude": 1.5, "longitude": 2.5, "name": "Home", "address": "Street 1"}),
    received(type="contacts", contacts=[{"name": {"formatted_name": "Bo"},
                                         "phones": [{"phone": "+4412", "wa_id": "4412"}], "vcard": "BEGIN:VCARD"}]),
    received(type="text", text={"body": "in a group"}, group_id="120363000000000000@g.us"),
]


@pytest.mark.parametrize("event", RECEIVED, ids=lambda e: e["data"]["type"])
def test_received_messages_survive_the_round_trip_through_meta_format(event: dict[str, Any]) -> None:
    # Given a message.received event as the browser host publishes it
    data = event["data"]
    # When it is written in Meta's format and read back
    payload = to_meta_payload(event, **IDS)
    assert payload is not None
    [msg] = inbound_messages(dumps(payload))
    # Then the content is the same (less wagate's own ids, which Meta has no field for)
    expected = {k: data[k] for k in ("type", data["type"], "wa_message_id", "group_id") if k in data}
    if "context" in data:
        expected["context"] = {"wa_message_id": data["context"]["wa_message_id"]}
    assert msg.content == expected
    assert (msg.from_number, msg.profile_name, msg.timestamp, msg.wa_message_id) == (USER, "Ann", 1777629600, WA_ID)
    assert (msg.phone_number_id, msg.display_phone_number, msg.waba_id) == (PHONE_ID, DISPLAY, WABA)


def test_received_media_points_at_wagate_media() -> None:
    payload = to_meta_payload(RECEIVED[2], **IDS)
    assert payload is not None
    [message] = payload["entry"][0]["changes"][0]["value"]["messages"]
    assert message["image"] == {"mime_type": "image/jpeg", "caption": "look", "id": "msg_1.acc_1", "sha256": "ab12",
                                "url": "https://bucket/inbound/acc_1/msg_1?sig"}
    [msg] = inbound_messages(payload)
    assert msg.media_to_fetch is not None and msg.media_to_fetch.id == "msg_1.acc_1"
    assert parse_received_media_id(msg.media_to_fetch.id) == ("msg_1", "acc_1")
    assert parse_received_media_id("med_1") is None and parse_received_media_id("msg_1") is None


def test_a_received_text_is_exactly_meta_shape() -> None:
    assert to_meta_payload(RECEIVED[0], **IDS) == webhook(
        contacts=[{"profile": {"name": "Ann"}, "wa_id": USER, "user_id": business_scoped_user_id(PHONE_ID, USER)}],
        messages=[{"from": USER, "id": WA_ID, "timestamp": "1777629600", "type": "text", "text": {"body": "Hi!"}}])


def test_business_scoped_user_ids_are_stable_per_number_and_contact() -> None:
    ours = business_scoped_user_id(PHONE_ID, USER)
    assert ours == business_scoped_user_id(PHONE_ID, USER) and ours.startswith("ZZ.") and ours[3:].isdigit()
    assert ours != business_scoped_user_id("another-number", USER) != business_scoped_user_id(PHONE_ID, "1555")


def test_polls_and_unsupported_messages_become_meta_unsupported() -> None:
    poll = received(type="poll", poll={"question": "Lunch?", "options": ["a", "b"], "max_selections": 1})
    payload = to_meta_payload(poll, **IDS)
    assert payload is not None
    [message] = payload["entry"][0]["changes"][0]["value"]["messages"]
    assert message["type"] == "unsupported" and message["errors"][0]["code"] == 131051
    assert "(poll)" in message["errors"][0]["error_data"]["details"]
    assert inbound_messages(payload)[0].type == "unsupported"


def test_reactions_in_meta_format() -> None:
    event: dict[str, Any] = {"id": "evt_r", "type": "message.reaction", "created_at": "2026-05-01T10:00:00.000Z",
             "account_id": "acc_1", "data": {"message_id": "msg_9", "wa_message_id": "true_x_9", "from": USER,
                                             "from_lid": None, "emoji": "\u2764\ufe0f", "removed": False,
                                             "timestamp": 1777629700}}
    payload = to_meta_payload(event, **IDS)
    assert payload is not None
    [message] = payload["entry"][0]["changes"][0]["value"]["messages"]
    assert message == {"from": USER, "id": "evt_r", "timestamp": "1777629700", "type": "reaction",
                       "reaction": {"message_id": "true_x_9", "emoji": "\u2764\ufe0f"}}
    assert inbound_messages(payload)[0].content["reaction"] == {"wa_message_id": "true_x_9", "emoji": "\u2764\ufe0f",
                                                                "removed": False}
    event["data"].update(emoji="", removed=True)
    payload = to_meta_payload(event, **IDS)
    assert payload is not None
    assert "emoji" not in payload["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]


def status_event(status: str, **data: Any) -> dict[str, Any]:
    return {"id": "evt_s", "type": "message.status", "created_at": "2026-05-01T10:00:05.000Z", "account_id": "acc_1",
            "data": {"message_id": "msg_7", "status": status, "client_reference": "order-42", **data}}


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_statuses_in_meta_format(status: str) -> None:
    payload = to_meta_payload(status_event(status), **IDS, wa_message_id="true_x_7", recipient=USER)
    user_id = business_scoped_user_id(PHONE_ID, USER)
    assert payload == webhook(contacts=[{"wa_id": USER, "user_id": user_id}],
                              statuses=[{"id": "true_x_7", "status": status, "timestamp": "1777629605",
                                         "recipient_id": USER, "recipient_user_id": user_id}])
    [update] = status_updates(payload)
    assert (update.status, update.wa_message_id, update.error) == (MessageStatus(status), "true_x_7", None)


@pytest.mark.parametrize(("code", "meta_code"), [("invalid_recipient", 131026), ("outside_window", 131047),
                                                 ("account_not_connected", 131000)])
def test_failed_statuses_carry_meta_errors(code: str, meta_code: int) -> None:
    event = status_event("failed", error={"code": code, "message": "it went wrong"}, wa_message_id="true_x_7",
                         recipient=USER)  # what the event lacks may come in its data, too
    payload = to_meta_payload(event, **IDS)
    assert payload is not None
    [status] = payload["entry"][0]["changes"][0]["value"]["statuses"]
    assert status["errors"] == [{"code": meta_code, "title": "it went wrong", "message": "it went wrong",
                                 "error_data": {"details": "it went wrong"}}]
    [update] = status_updates(payload)
    assert update.error is not None
    assert update.error.code == (code if code != "account_not_connected" else "send_failed")


def test_statuses_meta_has_no_word_for_and_missing_recipients() -> None:
    assert to_meta_payload(status_event("queued"), **IDS, recipient=USER) is None
    assert to_meta_payload(status_event("sending"), **IDS, recipient=USER) is None
    with pytest.raises(MetaTranslationError):
        to_meta_payload(status_event("sent"), **IDS)
    payload = to_meta_payload(status_event("sent"), **IDS, recipient=USER)  # no wamid known: wagate's id
    assert payload is not None and payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] == "msg_7"


@pytest.mark.parametrize("kind", ["account.status", "account.qr", "message.edited", "message.revoked"])
def test_events_without_a_meta_equivalent(kind: str) -> None:
    assert to_meta_payload({"id": "evt_x", "type": kind, "created_at": "2026-05-01T10:00:00.000Z",
                            "account_id": "acc_1", "data": {"status": "WORKING"}}, **IDS) is None


def test_the_meta_body_is_signed_like_meta_signs() -> None:
    payload = to_meta_payload(RECEIVED[0], **IDS)
    assert payload is not None
    body = dumps(payload)
    assert verify_signature("app-secret", body, sign("app-secret", body))
    assert json.loads(body) == payload
