"""The Cloud API translation and error classification (core/cloud.py), without a network."""

from __future__ import annotations

from typing import Any

import pytest

from core.cloud import OUTSIDE_WINDOW_HINT, GraphError, MediaTooLarge, cloud_supports, outcome, to_graph_body
from core.models.envelope import OUTBOUND_ADAPTER, envelope_fields


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """An envelope as the API stores it (validated, routing fields dropped)."""
    return envelope_fields(OUTBOUND_ADAPTER.validate_python(body))


def test_text_is_metas_body_with_reply_context_and_callback_data() -> None:
    envelope = stored({"to": "+1 555 123 4567", "type": "text", "text": {"body": "hi", "preview_url": True},
                       "context": {"message_id": "msg_1"}, "client_reference": "order-7"})

    body = to_graph_body(envelope, message_ids={"msg_1": "wamid.AAA"})

    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
                    "type": "text", "context": {"message_id": "wamid.AAA"},
                    "text": {"preview_url": True, "body": "hi"}, "biz_opaque_callback_data": "order-7"}


def test_media_by_our_id_uses_the_graph_id_and_drops_our_fields() -> None:
    envelope = {"to": "15551234567", "type": "document",
                "document": {"id": "med_1", "mime_type": "application/pdf", "sha256": "ab", "size_bytes": 3,
                             "caption": "invoice", "filename": "inv.pdf"}}

    assert to_graph_body(envelope, {"med_1": "998877"})["document"] == {
        "id": "998877", "caption": "invoice", "filename": "inv.pdf"}
    with pytest.raises(ValueError, match="not been uploaded"):
        to_graph_body(envelope, {})


def test_audio_voice_flag_and_link() -> None:
    voice = stored({"to": "15551234567", "type": "audio", "audio": {"link": "https://x.test/a.ogg", "voice": True}})
    plain = stored({"to": "15551234567", "type": "audio", "audio": {"link": "https://x.test/a.mp3"}})

    assert to_graph_body(voice)["audio"] == {"link": "https://x.test/a.ogg", "voice": True}
    assert to_graph_body(plain)["audio"] == {"link": "https://x.test/a.mp3"}


def test_location_contacts_reaction_template_read() -> None:
    location = stored({"to": "15551234567", "type": "location",
                       "location": {"latitude": 1.5, "longitude": -2.0, "name": "HQ"}})
    contacts = stored({"to": "15551234567", "type": "contacts", "contacts": [
        {"name": {"formatted_name": "Ann Lee", "first_name": "Ann"},
         "phones": [{"phone": "+1555", "wa_id": "1555000"}]}]})
    reaction = stored({"to": "15551234567", "type": "reaction", "reaction": {"message_id": "msg_9", "emoji": "👍"}})
    template = {"to": "15551234567", "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}}}

    assert to_graph_body(location)["location"] == {"latitude": 1.5, "longitude": -2.0, "name": "HQ"}
    assert to_graph_body(contacts)["contacts"] == [
        {"name": {"formatted_name": "Ann Lee", "first_name": "Ann"},
         "phones": [{"phone": "+1555", "wa_id": "1555000"}]}]
    assert to_graph_body(reaction, message_ids={"msg_9": "wamid.R"})["reaction"] == {
        "message_id": "wamid.R", "emoji": "👍"}
    assert to_graph_body(template)["template"] == {"name": "hello_world", "language": {"code": "en_US"}}
    assert to_graph_body({"status": "read", "message_id": "msg_2"}, message_ids={"msg_2": "wamid.I"}) == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.I"}


@pytest.mark.parametrize("envelope, reason", [
    ({"to": "15551234567", "type": "poll", "poll": {"question": "q", "options": ["a", "b"]}}, "polls"),
    ({"to": "15551234567", "type": "edit", "message_id": "m", "text": {"body": "x"}}, "editing"),
    ({"to": "15551234567", "type": "revoke", "message_id": "m"}, "deleting"),
    ({"to": "120363000000000000@g.us", "type": "text", "text": {"body": "x"}}, "group"),
    ({"to": "15551234567", "type": "image", "image": {"data": "AA==", "mime_type": "image/png"}}, "inline"),
    ({"to": "15551234567", "type": "interactive_thing"}, "not supported"),
])
def test_web_only_envelopes_are_refused_with_a_reason(envelope: dict[str, Any], reason: str) -> None:
    problem = cloud_supports(envelope)

    assert problem is not None and reason in problem
    with pytest.raises(ValueError):
        to_graph_body(envelope)


def test_cloud_supports_every_cloud_type() -> None:
    assert cloud_supports({"to": "15551234567", "type": "text", "text": {"body": "x"}}) is None
    assert cloud_supports({"to": "15551234567", "type": "template", "template": {"name": "t"}}) is None
    assert cloud_supports({"status": "read", "message_id": "wamid.X"}) is None


@pytest.mark.parametrize("code, status, action, ours", [
    (130429, 400, "retry", "rate_limited"),
    (131056, 400, "retry", "rate_limited"),
    (80007, 400, "retry", "rate_limited"),
    (131000, 500, "retry", "graph_unavailable"),
    (1, 503, "retry", "graph_unavailable"),
    (131026, 400, "fail_message", "invalid_recipient"),
    (131047, 400, "fail_message", "outside_window"),
    (100, 400, "fail_message", "invalid_request"),
    (131051, 400, "fail_message", "send_failed"),
    (190, 401, "fail_account", "token_expired"),
    (10, 403, "fail_account", "token_invalid"),
    (200, 403, "fail_account", "token_invalid"),
])
def test_outcome_of_each_meta_code(code: int, status: int, action: str, ours: str) -> None:
    result = outcome(GraphError(code, None, f"(#{code}) x", status))

    assert (result.action, result.code) == (action, ours)
    if action == "retry":
        assert result.retry_after and result.retry_after > 0


def test_outcome_details() -> None:
    assert outcome(GraphError(131047, 2494010, "Re-engagement message", 400)).hint == OUTSIDE_WINDOW_HINT
    assert outcome(GraphError(130429, None, "Rate limit hit", 400, retry_after=42.0)).retry_after == 42.0
    assert outcome(GraphError(0, None, "timeout after 10 s", 0)).action == "retry"
    assert outcome(MediaTooLarge(10, 200)).code == "media_too_large"
    assert outcome(GraphError(100, None, "(#100) Invalid parameter", 400, details="to is wrong")).message == \
        "to is wrong"


def test_a_waiting_cloud_message_is_looked_at_again_after_a_quarter_of_its_age() -> None:
    from core.store.tables import MessageItem
    from functions.service.cloud_send import wait_for

    item = MessageItem("acc_x", "msg_x", created_at="2026-12-02T10:00:00.000Z")
    at = 1796205600.0  # 2026-12-02T10:00:00Z
    assert [wait_for(item, at + age) for age in (0, 4, 20, 60, 3600)] == [2.0, 2.0, 5.0, 15.0, 30.0]
