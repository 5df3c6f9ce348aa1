"""The legacy session vocabulary: one status table shared with the migration, renames, headers. No network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from core.models.accounts import Account, AccountActionAccepted, ConnectionStatus
from core.models.legacy import (
    LEGACY_STATUS_OF,
    RENAMES,
    STATUS_MAP,
    LegacyStatus,
    Session,
    SessionActionAccepted,
    SessionCreate,
    SessionMessage,
    SessionMessageAccepted,
    SessionUpdate,
    connection_status_of,
    to_legacy,
)
from core.models.messages import Message, MessageAccepted
from functions.api.routes.legacy import http_date, legacy_headers, successor_path


def test_the_migration_and_the_api_share_one_status_table() -> None:
    from infra.migration import mapping

    assert mapping.STATUS_MAP is STATUS_MAP
    assert mapping.map_status("Connected")[:2] == (ConnectionStatus.WORKING, True)


@pytest.mark.parametrize(("new", "old"), [
    (ConnectionStatus.WORKING, "connected"), (ConnectionStatus.STOPPED, "disconnected"),
    (ConnectionStatus.SCAN_QR_CODE, "qr_scanning"), (ConnectionStatus.STARTING, "authenticating"),
    (ConnectionStatus.FAILED, "failed"),
])
def test_each_status_has_one_documented_legacy_value_both_ways(new: ConnectionStatus, old: str) -> None:
    assert LEGACY_STATUS_OF[new] == old
    assert connection_status_of(LegacyStatus(old)) is new
    assert STATUS_MAP[old][0] is new  # the migration maps it the same way


def test_every_connection_status_has_a_legacy_value() -> None:
    assert set(LEGACY_STATUS_OF) == set(ConnectionStatus)
    assert set(LEGACY_STATUS_OF.values()) == set(LegacyStatus)


@pytest.mark.parametrize(("legacy", "current"), [
    (Session, Account), (SessionActionAccepted, AccountActionAccepted),
    (SessionMessage, Message), (SessionMessageAccepted, MessageAccepted),
])
def test_legacy_models_have_their_twins_fields_renamed(legacy: type[BaseModel], current: type[BaseModel]) -> None:
    # A field added to an /accounts model must be added to its legacy twin too.
    assert list(legacy.model_fields) == [RENAMES.get(name, name) for name in current.model_fields]


def _account(**changes: Any) -> Account:
    return Account.model_validate({
        "account_id": "acc_1", "account_name": "Support", "phone_number": "15550102030",
        "connection_status": "SCAN_QR_CODE", "desired_state": "running", "metadata": {"team": "emea"},
        "status_history": [{"at": "2026-01-01T00:00:00.000Z", "from": None, "to": "STOPPED"}],
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z", "version": 3,
        **changes,
    })


def test_an_account_becomes_a_session_with_old_names_and_values() -> None:
    account = _account()
    session = to_legacy(account, Session).model_dump(mode="json")
    assert session["session_id"] == "acc_1" and session["session_name"] == "Support"
    assert session["status"] == "qr_scanning"
    assert not {"account_id", "account_name", "connection_status"} & set(session)
    current = account.model_dump(mode="json")
    assert {k: v for k, v in session.items() if k not in {"session_id", "session_name", "status"}} == \
        {k: v for k, v in current.items() if k not in {"account_id", "account_name", "connection_status"}}


def test_a_message_keeps_its_own_status_and_from() -> None:
    message = Message.model_validate({
        "message_id": "msg_1", "account_id": "acc_1", "direction": "outbound", "status": "delivered",
        "type": "text", "to": "1555", "from": "1444", "content": {}, "created_at": "x", "updated_at": "y"})
    legacy = to_legacy(message, SessionMessage).model_dump(mode="json")
    assert legacy["session_id"] == "acc_1" and legacy["status"] == "delivered" and legacy["from"] == "1444"


def test_requests_take_the_old_or_the_new_name() -> None:
    assert SessionCreate.model_validate({"session_name": "old"}).account_name == "old"
    assert SessionCreate.model_validate({"account_name": "new"}).account_name == "new"
    update = SessionUpdate.model_validate({"session_name": "old"})
    assert update.model_fields_set == {"account_name"} and update.account_name == "old"
    for bad in ({}, {"session_name": ""}, {"session_name": "x", "status": "connected"}):
        with pytest.raises(ValidationError):
            SessionCreate.model_validate(bad)


def test_deprecation_headers() -> None:
    headers = legacy_headers("/sessions/acc_1/messages", "2027-06-30")
    assert headers["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert headers["Link"] == '</accounts/acc_1/messages>; rel="successor-version"'
    assert headers["Deprecation"].startswith("@") and int(headers["Deprecation"][1:]) > 1_700_000_000
    assert http_date("2027-06-30T12:00:00+02:00") == "Wed, 30 Jun 2027 10:00:00 GMT"
    assert "Sunset" not in legacy_headers("/sessions", "end of June")
    assert successor_path("/sessions") == "/accounts"
    assert successor_path("/sessionsx/sessions") == "/sessionsx/sessions"


def _event(path: str, method: str = "GET") -> dict[str, Any]:
    return {"resource": path, "path": path, "httpMethod": method, "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "pathParameters": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"requestId": "req-1", "stage": "Prod", "authorizer": {
                "key_id": "key_abc", "tenant_id": "t1", "role": "admin"}}}


def test_a_legacy_call_is_logged_with_its_key_and_an_error_gets_the_headers(caplog: pytest.LogCaptureFixture) -> None:
    # Given the API resolver (no AWS call: the path fails validation before any service)
    from core.observability import logger
    from functions.api.app import create_app

    app = create_app()

    # When a legacy request fails validation and a current one does too
    caplog.set_level("INFO", logger="wagate")
    try:
        legacy = app.resolve(_event("/sessions/" + "x" * 200), {})  # type: ignore[arg-type]
        current = app.resolve(_event("/accounts/" + "x" * 200), {})  # type: ignore[arg-type]
        lines = [json.loads(logger.registered_formatter.format(r)) for r in caplog.records]
    finally:
        logger.remove_keys(["legacy_call", "key_id"])  # the Lambda handler clears them per invocation

    # Then only the legacy answer carries the headers, and one log line counts it by key
    assert legacy["statusCode"] == current["statusCode"] == 404
    assert legacy["multiValueHeaders"]["Link"] == [f'</accounts/{"x" * 200}>; rel="successor-version"']
    assert "Deprecation" not in current["multiValueHeaders"]
    calls = [line for line in lines if line.get("message") == "legacy api call"]
    assert len(calls) == 1
    assert calls[0]["legacy_call"] is True and calls[0]["key_id"] == "key_abc"
