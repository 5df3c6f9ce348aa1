"""Models and pure helpers, no network."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from core.errors import InvalidRequest
from core.ids import new_id, ulid
from core.models.accounts import AccountCreate
from core.models.envelope import INGRESS_ADAPTER, OUTBOUND_ADAPTER, envelope_fields
from core.models.validators import is_private_host, normalise_phone
from core.store.accounts import decode_cursor, encode_cursor
from functions.auth.handler import presented_key
from functions.service.api_keys import _key_id, hash_key, new_key_string


def test_ulids_sort_by_time_and_are_unique() -> None:
    ids = [ulid() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 26 for i in ids)
    assert ids[0][:10] <= ids[-1][:10]
    assert new_id("acc").startswith("acc_")


def test_phone_numbers_are_normalised_to_e164_digits() -> None:
    assert normalise_phone("+44 (20) 7946-0958") == "442079460958"
    for bad in ("12", "+0123456789", "abc", "+1555123456789012"):
        with pytest.raises(ValueError):
            normalise_phone(bad)


@pytest.mark.parametrize(("host", "private"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("169.254.169.254", True), ("::1", True), ("[fe80::1]", True),
    ("localhost", True), ("metadata.internal", True), ("example.com", False), ("8.8.8.8", False),
])
def test_private_hosts(host: str, private: bool) -> None:
    assert is_private_host(host) is private


def test_envelope_accepts_cloud_api_shape_and_maps_wagate_fields() -> None:
    message = OUTBOUND_ADAPTER.validate_python({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1 555 000 1111",
        "type": "text", "text": {"body": "hi"}, "biz_opaque_callback_data": "ref-1",
    })
    data = envelope_fields(message)
    assert data["to"] == "15550001111" and data["client_reference"] == "ref-1"
    assert data["text"] == {"body": "hi", "preview_url": False}


def test_group_recipients_are_accepted() -> None:
    message = OUTBOUND_ADAPTER.validate_python(
        {"to": "120363025246125486@g.us", "recipient_type": "group", "type": "text", "text": {"body": "hi"}})
    assert message.to == "120363025246125486@g.us"


def test_ingress_messages_need_an_account_and_keep_routing_fields_out_of_the_envelope() -> None:
    with pytest.raises(ValidationError):
        INGRESS_ADAPTER.validate_python({"to": "15550001111", "type": "text", "text": {"body": "x"}})
    parsed = INGRESS_ADAPTER.validate_json(json.dumps({
        "account_id": "acc_1", "idempotency_key": "k", "to": "15550001111", "type": "text", "text": {"body": "x"}}))
    assert parsed.account_id == "acc_1"
    assert "account_id" not in envelope_fields(parsed) and "idempotency_key" not in envelope_fields(parsed)


def test_inline_media_over_the_limit_is_refused() -> None:
    import base64

    big = base64.b64encode(b"x" * (100 * 1024 + 1)).decode()
    with pytest.raises(ValidationError, match="POST /media"):
        OUTBOUND_ADAPTER.validate_python({"to": "15550001111", "type": "image",
                                          "image": {"data": big, "mime_type": "image/png"}})


def test_account_metadata_size_is_bounded() -> None:
    with pytest.raises(ValidationError):
        AccountCreate(account_name="x", metadata={"k": "v" * 9000})


def test_cursors_round_trip_and_reject_tampering() -> None:
    key = {"tenant_id": {"S": "t"}, "created_at": {"S": "2026"}, "account_id": {"S": "acc_1"}}
    assert decode_cursor(encode_cursor(key)) == key
    assert encode_cursor(None) is None
    for bad in ("%%%", "bm90IGpzb24", "WzEsMl0"):
        with pytest.raises(InvalidRequest):
            decode_cursor(bad)


def test_api_keys_parse_and_hash() -> None:
    key = new_key_string()
    assert key.startswith("wgk_") and _key_id(key) == "key_" + key.split("_")[1]
    assert _key_id("wgk_short_x") is None and _key_id("") is None
    assert hash_key(key) != hash_key(key + "x") and len(hash_key(key)) == 64


def test_authorizer_reads_x_api_key_then_bearer() -> None:
    assert presented_key({"X-Api-Key": " k1 "}) == "k1"
    assert presented_key({"authorization": "Bearer k2"}) == "k2"
    assert presented_key({"Authorization": "Basic abc"}) is None
    assert presented_key(None) is None
    # the policy the authorizer returns (the method and path called, nothing more): tests/integration/test_jwt.py
