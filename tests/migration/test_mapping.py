"""Unit tests of the row → account mapping and the codec (no network)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from core.store.tables import AccountItem
from infra.migration.codec import canonical, checksum, differing_fields, serialize_item
from infra.migration.mapping import InvalidRow, Sealed, map_row, normalise_timestamp
from tests.migration.legacy_data import legacy_rows


def row(**columns: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"session_id": "s-1", "workspace_id": "ws-1", "phone_number": "+55 11 91234-5678",
                            "status": "connected", "provider_type": "webjs", "session_name": "Support",
                            "created_at": "2023-01-02T03:04:05Z", "updated_at": "2023-02-03 04:05:06"}
    base.update(columns)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(("legacy", "status", "desired"), [
    ("connected", "WORKING", "running"),
    ("disconnected", "STOPPED", "stopped"),
    ("qr_scanning", "SCAN_QR_CODE", "running"),
    ("authenticating", "STARTING", "running"),
    ("failed", "FAILED", "stopped"),
    ("CONNECTED", "WORKING", "running"),
])
def test_documented_statuses_map_to_account_statuses(legacy: str, status: str, desired: str) -> None:
    # Given a row with a documented legacy status / When mapped
    item = map_row(row(status=legacy)).item
    # Then status, tenant_status, desired_state and the history follow the table
    assert item["connection_status"] == status
    assert item["tenant_status"] == f"ws-1#{status}"
    assert item["desired_state"] == desired
    assert item["status_history"] == [{"at": "2023-02-03T04:05:06.000Z", "from": None, "to": status,
                                       "reason": f"migrated from legacy status {legacy}"}]
    assert item["metadata"]["legacy"]["status"] == legacy
    assert item["version"] == 1


def test_unknown_status_is_kept_and_the_number_stays_stopped() -> None:
    # Given a status nobody documented / When mapped
    mapped = map_row(row(status="zombie"))
    # Then it is stopped, explained, and the original survives in metadata.legacy
    assert (mapped.item["connection_status"], mapped.item["desired_state"]) == ("STOPPED", "stopped")
    assert mapped.item["metadata"]["legacy"]["status"] == "zombie"
    assert "unknown legacy status 'zombie'" in mapped.item["status_reason"]
    assert "unknown_status" in mapped.warnings
    assert mapped.status_mapping == "zombie (unknown) -> STOPPED"


def test_providers_and_desired_state() -> None:
    # Given webjs, meta and an unknown provider / When mapped
    web, meta, other = (map_row(row(provider_type=p)).item for p in ("webjs", "meta", "baileys"))
    # Then webjs becomes "web"; meta becomes a stopped Cloud API account waiting for its credentials (no browser
    # host serves it); an unknown provider is kept verbatim
    assert (web["provider"], web["desired_state"]) == ("web", "running")
    assert (meta["provider"], meta["desired_state"], meta["connection_status"]) == ("cloud", "stopped", "STOPPED")
    assert "PATCH its cloud credentials" in meta["status_reason"]
    assert other["provider"] == "baileys" and other["metadata"]["legacy"]["provider_type"] == "baileys"
    assert map_row(row(provider_type=...)).item["provider"] == "web"


@pytest.mark.parametrize(("name", "phone", "expected"), [
    ("Support", "+5511912345678", "Support"),
    ("", "+5511912345678", "WhatsApp +5511912345678"),
    ("   ", "5511912345678@c.us", "WhatsApp +5511912345678"),
    (None, None, "WhatsApp s-1"),
    (..., "n/a", "WhatsApp s-1"),
    ("客服 🚀", None, "客服 🚀"),
])
def test_account_name_from_session_name_or_phone(name: Any, phone: Any, expected: str) -> None:
    # Given a session name that may be empty or missing / When mapped / Then a readable name results
    assert map_row(row(session_name=name, phone_number=phone)).item["account_name"] == expected


def test_long_names_are_truncated_and_the_original_kept() -> None:
    # Given a 140-character name / When mapped
    item = map_row(row(session_name="é" * 140)).item
    # Then the account name fits the API's 100 characters and nothing is lost
    assert item["account_name"] == "é" * 100
    assert item["metadata"]["legacy"]["session_name"] == "é" * 140


def test_phone_numbers_are_normalised_and_unusable_ones_kept() -> None:
    # Given formatted, JID and unusable phone numbers / When mapped
    formatted = map_row(row(phone_number="+55 11 91234-5678"))
    jid = map_row(row(phone_number="5511912345678:3@s.whatsapp.net"))
    unusable = map_row(row(phone_number="n/a"))
    # Then E.164 digits are stored and any original that differs is kept in metadata.legacy
    assert formatted.item["phone_number"] == jid.item["phone_number"] == "5511912345678"
    assert formatted.item["metadata"]["legacy"]["phone_number"] == "+55 11 91234-5678"
    assert unusable.item["phone_number"] is None
    assert unusable.item["metadata"]["legacy"]["phone_number"] == "n/a"
    assert "unusable_phone_number" in unusable.warnings
    assert "phone_number" not in map_row(row(phone_number="5511912345678")).item["metadata"]["legacy"]


@pytest.mark.parametrize(("value", "expected"), [
    ("2023-01-02T03:04:05Z", "2023-01-02T03:04:05.000Z"),
    ("2023-01-02 03:04:05", "2023-01-02T03:04:05.000Z"),  # naive SQL timestamps are UTC
    ("2023-01-02T00:04:05-03:00", "2023-01-02T03:04:05.000Z"),
    ("2023-01-02 03:04:05.123456+00", "2023-01-02T03:04:05.123456Z"),  # precision kept, not rounded
    ("2023-01-02 03:04:05 UTC", "2023-01-02T03:04:05.000Z"),
    ("Mon, 02 Jan 2023 03:04:05 GMT", "2023-01-02T03:04:05.000Z"),
    (1672628645, "2023-01-02T03:04:05.000Z"),
    (Decimal("1672628645123"), "2023-01-02T03:04:05.123Z"),
    ("1672628645", "2023-01-02T03:04:05.000Z"),
])
def test_timestamps_keep_the_instant(value: Any, expected: str) -> None:
    # Given a timestamp in one of the formats exports use / When normalised / Then the same instant in UTC Z
    assert normalise_timestamp(value) == (expected, False)


def test_timestamps_that_lose_precision_or_do_not_parse_are_kept() -> None:
    # Given nanoseconds, garbage and a missing created_at / When mapped
    item = map_row(row(created_at="2023-01-02T03:04:05.123456789Z", updated_at="yesterday")).item
    missing = map_row(row(created_at=..., updated_at="2023-02-03T04:05:06Z"))
    # Then the originals are in metadata.legacy and created_at falls back to updated_at
    assert item["metadata"]["legacy"]["timestamps"] == {"created_at": "2023-01-02T03:04:05.123456789Z",
                                                        "updated_at": "yesterday"}
    assert item["updated_at"] == item["created_at"] == "2023-01-02T03:04:05.123456Z"
    assert missing.item["created_at"] == "2023-02-03T04:05:06.000Z"
    assert "missing_created_at" in missing.warnings


@pytest.mark.parametrize("value", ["yesterday", 10**30, float("inf"), Decimal("NaN"), True, "2023-13-45"])
def test_impossible_timestamps_are_refused(value: Any) -> None:
    # Given a value no clock ever showed / When normalised / Then ValueError (the row keeps it in legacy)
    with pytest.raises(ValueError):
        normalise_timestamp(value)


def test_soft_deleted_rows_are_deleted_and_stopped() -> None:
    # Given a connected row with deleted_at / When mapped / Then the account is deleted and will not run
    mapped = map_row(row(deleted_at="2024-05-06 07:08:09"))
    assert mapped.deleted and mapped.item["deleted_at"] == "2024-05-06T07:08:09.000Z"
    assert (mapped.item["connection_status"], mapped.item["desired_state"]) == ("WORKING", "stopped")
    assert not map_row(row(deleted_at="")).deleted
    assert not map_row(row(deleted_at="0000-00-00 00:00:00")).deleted  # MySQL's "never"


def test_session_data_and_unknown_columns_are_sealed_as_given_outside_metadata() -> None:
    # Given extra columns and session_data as text and as a map / When mapped
    as_text = map_row(row(session_data='{"a": 1}', plan="pro", retries=3))
    as_map = map_row(row(session_data={"a": Decimal("1.5")}))
    # Then none of it is in metadata (every key of the tenant reads metadata), only the names of what is sealed
    assert as_text.item["metadata"]["legacy"]["sealed"] == ["plan", "retries", "session_data"]
    assert "session_data" not in json.dumps(as_text.item["metadata"]).replace('"session_data"]', "")
    assert "columns" not in as_text.item["metadata"]["legacy"] and "pro" not in str(as_text.item["metadata"])
    # And the values wait, as given, for the runner to encrypt them (nothing dropped, nothing reinterpreted)
    sealed = as_text.item["legacy_secrets"]
    assert isinstance(sealed, Sealed)
    assert sealed.values == {"session_data": '{"a": 1}', "columns": {"plan": "pro", "retries": 3}}
    assert as_map.item["legacy_secrets"].values == {"session_data": {"a": Decimal("1.5")}}
    assert "sealed_legacy_credentials" in as_text.warnings
    secretive = map_row(row(session_data={"token": "TOKEN-XYZ"}, plan="PLAN-XYZ"))
    assert "XYZ" not in repr(secretive)  # never in a report or a log line
    # And a row without any keeps no legacy_secrets at all
    plain = map_row(row(session_data=""))
    assert plain.item["legacy_secrets"] is None and "sealed" not in plain.item["metadata"]["legacy"]
    assert "sealed_legacy_credentials" not in plain.warnings


def test_columns_an_operator_vouches_for_stay_readable() -> None:
    mapped = map_row(row(plan="pro", api_token="t0k3n"), keep_columns=frozenset({"plan"}))
    assert mapped.item["metadata"]["legacy"]["columns"] == {"plan": "pro"}
    assert mapped.item["metadata"]["legacy"]["sealed"] == ["api_token"]
    assert mapped.item["legacy_secrets"].values == {"columns": {"api_token": "t0k3n"}}


def test_sealed_credentials_can_never_be_written_in_plaintext() -> None:
    # Given a mapped row whose credentials the runner has not encrypted / When serialised / Then it refuses
    with pytest.raises(TypeError):
        serialize_item(map_row(row(session_data="tokens")).item)


@pytest.mark.parametrize("columns", [{"session_id": ...}, {"session_id": ""}, {"workspace_id": None},
                                     {"session_id": "x" * 3000}])
def test_rows_without_keys_are_invalid(columns: dict[str, Any]) -> None:
    # Given a row with no usable session_id or workspace_id / When mapped / Then it is refused, not guessed
    with pytest.raises(InvalidRow):
        map_row(row(**columns))


def test_numeric_ids_become_text() -> None:
    # Given a SQL export with integer ids / When mapped / Then keys are strings without ".0"
    item = map_row(row(session_id=42, workspace_id=Decimal("7"))).item
    assert (item["account_id"], item["tenant_id"]) == ("42", "7")


def test_written_items_are_exactly_what_pynamodb_writes() -> None:
    # Given many generated rows (JSON-typed, like JSONL sources)
    for legacy in legacy_rows(300, seed=3):
        item = map_row(legacy).item
        if item["legacy_secrets"] is not None:
            item["legacy_secrets"] = "ciphertext"  # what the runner writes in its place
        # When serialised by the migration and by the AccountItem model
        model = AccountItem(**{k: v for k, v in item.items() if k != "account_id"}, account_id=item["account_id"])
        # Then the AttributeValues are identical
        assert serialize_item(item) == model.serialize()


def test_checksum_is_stable_and_sees_every_field() -> None:
    # Given one mapped row
    item = map_row(row(retries=1)).item
    # When numbers change representation, a field changes, or a field the migration never sets appears
    same = json.loads(json.dumps({**item, "legacy_secrets": "one ciphertext"}))
    same["metadata"]["legacy"]["phone_number"] = "+55 11 91234-5678"
    renamed = {**item, "account_name": "Other"}
    hosted = {**item, "host_id": "host-1"}
    unsealed = {**item, "legacy_secrets": None}
    # Then only real differences change the checksum, and the differing fields are named: sealed credentials
    # count by being there (each encryption differs), not by their bytes
    assert checksum(same) == checksum(item) == map_row(row(retries=Decimal("1.0"))).checksum
    assert checksum({**item, "legacy_secrets": "another ciphertext"}) == checksum(item)
    assert differing_fields(item, renamed) == ["account_name"]
    assert differing_fields(item, hosted) == ["host_id"]
    assert differing_fields(item, unsealed) == ["legacy_secrets"]
    # and an account without sealed credentials sums as it did before the field existed
    plain = map_row(row()).item
    assert checksum(plain) == checksum({k: v for k, v in plain.items() if k != "legacy_secrets"})
    assert canonical({1, 2}) == canonical({Decimal(2), Decimal(1)})
