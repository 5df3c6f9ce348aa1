"""The legacy `/sessions` API: the same accounts as `/accounts`, old field names, deprecation headers, retirement."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import Api, create_account, make_key

TEXT = {"to": "+1 555 000 1111", "type": "text", "text": {"body": "hello from a legacy client"}}
NEW_ONLY = {"account_id", "account_name", "connection_status"}
OLD_ONLY = {"session_id", "session_name", "status"}
OLD_STATUS = {"WORKING": "connected", "STOPPED": "disconnected", "SCAN_QR_CODE": "qr_scanning",
              "STARTING": "authenticating", "FAILED": "failed"}


def assert_legacy_headers(response: requests.Response, successor: str) -> None:
    assert re.fullmatch(r"@\d{9,}", response.headers["Deprecation"]), response.headers
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", response.headers["Sunset"])
    assert response.headers["Link"] == f'<{successor}>; rel="successor-version"'


def assert_same_account(session: dict[str, Any], account: dict[str, Any]) -> None:
    """A /sessions body is the /accounts body with the three legacy names (and old status values)."""
    assert not NEW_ONLY & set(session) and not OLD_ONLY & set(account)
    assert session["session_id"] == account["account_id"]
    assert session["session_name"] == account["account_name"]
    assert session["status"] == OLD_STATUS[account["connection_status"]]
    assert {k: v for k, v in session.items() if k not in OLD_ONLY} == \
        {k: v for k, v in account.items() if k not in NEW_ONLY}


def test_a_session_created_with_legacy_names_is_the_account_and_vice_versa(tenant_admin: Api) -> None:
    # Given a session created by a legacy client
    created = tenant_admin.post("/sessions", json={"session_name": "Support", "phone_number": "+1 555 010 2030",
                                                   "metadata": {"team": "emea"}})

    # Then it answers in the legacy shape, with the deprecation headers
    assert created.status_code == 201, created.text
    session = created.json()
    session_id = session["session_id"]
    assert session["session_name"] == "Support" and session["status"] == "disconnected"
    assert created.headers["Location"] == f"/sessions/{session_id}" and created.headers["ETag"] == '"1"'
    assert_legacy_headers(created, "/accounts")

    # And /accounts sees the same account
    account = tenant_admin.get(f"/accounts/{session_id}")
    assert "Deprecation" not in account.headers
    assert_same_account(session, account.json())

    # When an account is created through /accounts, Then /sessions shows it, in the legacy shape
    account_id = create_account(tenant_admin, "Sales")["account_id"]
    legacy = tenant_admin.get(f"/sessions/{account_id}")
    assert legacy.status_code == 200 and legacy.headers["ETag"] == '"1"'
    assert_legacy_headers(legacy, f"/accounts/{account_id}")
    assert_same_account(legacy.json(), tenant_admin.get(f"/accounts/{account_id}").json())

    # And both lists hold both, newest first
    sessions = tenant_admin.get("/sessions").json()["items"]
    accounts = tenant_admin.get("/accounts").json()["items"]
    assert [s["session_id"] for s in sessions] == [a["account_id"] for a in accounts] == [account_id, session_id]

    # And deleting through /sessions deletes the account
    assert tenant_admin.delete(f"/sessions/{account_id}").status_code == 204
    assert tenant_admin.get(f"/accounts/{account_id}").status_code == 404


def test_status_filter_takes_old_values_and_lifecycle_answers_in_them(tenant_admin: Api) -> None:
    # Given two sessions, one started through /sessions
    started = tenant_admin.post("/sessions", json={"session_name": "started"}).json()["session_id"]
    idle = tenant_admin.post("/sessions", json={"session_name": "idle"}).json()["session_id"]
    response = tenant_admin.post(f"/sessions/{started}/start")

    # Then the action answer uses the old names and values
    assert response.status_code == 202, response.text
    assert response.json() == {"session_id": started, "action": "start", "desired_state": "running",
                               "status": "authenticating"}
    assert_legacy_headers(response, f"/accounts/{started}/start")

    # And the legacy filter takes old values and matches the /accounts filter
    def listed(path: str, status: str) -> list[str]:
        response = tenant_admin.get(path, params={"status": status})
        assert response.status_code == 200, response.text
        return [item.get("session_id") or item["account_id"] for item in response.json()["items"]]

    assert listed("/sessions", "authenticating") == listed("/accounts", "STARTING") == [started]
    assert listed("/sessions", "disconnected") == listed("/accounts", "STOPPED") == [idle]
    assert listed("/sessions", "connected") == []

    # And new values are not legacy values
    wrong = tenant_admin.get("/sessions", params={"status": "STARTING"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "validation_error"
    assert_legacy_headers(wrong, "/accounts")

    # And the other actions answer like their twins
    stop = tenant_admin.post(f"/sessions/{started}/stop").json()
    assert stop["desired_state"] == "stopped" and stop["status"] == "disconnected"
    assert tenant_admin.post(f"/sessions/{started}/restart").json()["desired_state"] == "running"
    assert tenant_admin.post(f"/sessions/{started}/logout").status_code == 202
    assert tenant_admin.get(f"/accounts/{started}").json()["pending_action"] == "logout"


def test_patch_with_if_match_and_either_name(tenant_admin: Api) -> None:
    # Given a session read by a legacy client
    session_id = tenant_admin.post("/sessions", json={"session_name": "v1"}).json()["session_id"]
    etag = tenant_admin.get(f"/sessions/{session_id}").headers["ETag"]

    # When it is renamed with the old name and its ETag
    patched = tenant_admin.patch(f"/sessions/{session_id}", json={"session_name": "v2"}, headers={"If-Match": etag})

    # Then the account has the new name and version, and a stale ETag is refused like on /accounts
    assert patched.status_code == 200, patched.text
    assert patched.json()["session_name"] == "v2" and patched.headers["ETag"] == '"2"'
    assert tenant_admin.get(f"/accounts/{session_id}").json()["account_name"] == "v2"
    stale = tenant_admin.patch(f"/sessions/{session_id}", json={"session_name": "lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert stale.json()["details"] == {"current_version": 2}
    assert_legacy_headers(stale, f"/accounts/{session_id}")

    # And the new name is accepted too (half-migrated clients), unknown fields are not
    assert tenant_admin.patch(f"/sessions/{session_id}", json={"account_name": "v3"}).json()["session_name"] == "v3"
    unknown = tenant_admin.patch(f"/sessions/{session_id}", json={"session_label": "x"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_error"


def test_messages_sent_through_sessions_are_the_accounts_messages(tenant_admin: Api) -> None:
    # Given a session
    session_id = tenant_admin.post("/sessions", json={"session_name": "sender"}).json()["session_id"]

    # When a message is sent through /sessions
    sent = tenant_admin.post(f"/sessions/{session_id}/messages", json=TEXT, headers={"Idempotency-Key": "legacy-1"})

    # Then it is accepted in the legacy shape
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["message_id"]
    assert sent.json() == {"message_id": message_id, "session_id": session_id, "status": "queued"}
    assert sent.headers["Location"] == f"/sessions/{session_id}/messages/{message_id}"
    assert_legacy_headers(sent, f"/accounts/{session_id}/messages")

    # And both APIs read the same message, differing only in the account's name
    legacy = tenant_admin.get(f"/sessions/{session_id}/messages/{message_id}")
    current = tenant_admin.get(f"/accounts/{session_id}/messages/{message_id}").json()
    assert legacy.status_code == 200
    assert_legacy_headers(legacy, f"/accounts/{session_id}/messages/{message_id}")
    assert legacy.json().pop("session_id") == current.pop("account_id") == session_id
    assert {k: v for k, v in legacy.json().items() if k != "session_id"} == current
    assert [m["session_id"] for m in tenant_admin.get(f"/sessions/{session_id}/messages").json()["items"]] \
        == [session_id]

    # And a replay with the same Idempotency-Key is the same message, as on /accounts
    replay = tenant_admin.post(f"/sessions/{session_id}/messages", json=TEXT, headers={"Idempotency-Key": "legacy-1"})
    assert replay.json()["message_id"] == message_id and replay.headers["Idempotent-Replayed"] == "true"


def test_qr_and_pairing_code_answer_like_their_twins(tenant_admin: Api) -> None:
    session_id = tenant_admin.post("/sessions", json={"session_name": "qr"}).json()["session_id"]
    qr, twin = tenant_admin.get(f"/sessions/{session_id}/qr"), tenant_admin.get(f"/accounts/{session_id}/qr")
    assert qr.status_code == twin.status_code == 409
    assert qr.json()["code"] == twin.json()["code"] == "qr_not_available"
    assert_legacy_headers(qr, f"/accounts/{session_id}/qr")

    requested = tenant_admin.post(f"/sessions/{session_id}/pairing-code", json={"phone_number": "+15550102030"})
    assert requested.status_code == 202 and requested.json()["status"] == "pending"
    assert tenant_admin.get(f"/sessions/{session_id}/pairing-code").json() == \
        tenant_admin.get(f"/accounts/{session_id}/pairing-code").json()
    assert tenant_admin.get(f"/sessions/{session_id}").json()["status"] == "authenticating"


def test_auth_is_the_same_as_on_accounts(tenant_admin: Api, root_api: Api) -> None:
    session_id = tenant_admin.post("/sessions", json={"session_name": "mine"}).json()["session_id"]

    # Without a key: 401 from the authorizer, on both
    anonymous = tenant_admin.with_key(None)
    for path in ("/sessions", f"/sessions/{session_id}"):
        response = anonymous.get(path)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"

    # Another tenant: 404, as on /accounts
    other = root_api.get(f"/sessions/{session_id}")
    assert other.status_code == 404 and other.json()["code"] == "account_not_found"
    assert root_api.get(f"/accounts/{session_id}").status_code == 404
    assert_legacy_headers(other, f"/accounts/{session_id}")
    assert session_id not in {s["session_id"] for s in root_api.get("/sessions").json()["items"]}

    # A viewer reads but cannot write, as on /accounts
    viewer = make_key(tenant_admin, "viewer")
    assert viewer.get(f"/sessions/{session_id}").status_code == 200
    for response in (viewer.post("/sessions", json={"session_name": "x"}), viewer.post(f"/sessions/{session_id}/start"),
                     viewer.delete(f"/sessions/{session_id}")):
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"


def test_route_errors_carry_the_legacy_headers(tenant_admin: Api) -> None:
    wrong_method = tenant_admin.request("PUT", "/sessions")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET, POST"
    assert_legacy_headers(wrong_method, "/accounts")
    bad_id = tenant_admin.get("/sessions/" + "x" * 200)
    assert bad_id.status_code == 404
    assert_legacy_headers(bad_id, "/accounts/" + "x" * 200)
    bad_body = tenant_admin.post("/sessions", json={})
    assert bad_body.status_code == 422 and any("session_name" in d["loc"] for d in bad_body.json()["details"])
    assert_legacy_headers(bad_body, "/accounts")


@pytest.fixture
def legacy_retired(runtime: Any) -> Iterator[None]:
    """LEGACY_API_ENABLED=false for one test (the API runs in this process), restored afterwards."""
    from core.config import reset_settings
    from functions.service.context import services

    previous = os.environ.get("LEGACY_API_ENABLED")
    os.environ["LEGACY_API_ENABLED"] = "false"
    reset_settings()
    services.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LEGACY_API_ENABLED", None)
        else:
            os.environ["LEGACY_API_ENABLED"] = previous
        reset_settings()
        services.cache_clear()


def test_retired_legacy_api_answers_410_with_the_successor(tenant_admin: Api, legacy_retired: None) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    for method, path, body in (("GET", "/sessions", None), ("POST", "/sessions", {"session_name": "x"}),
                               ("POST", "/sessions", {}), ("GET", f"/sessions/{account_id}", None),
                               ("POST", f"/sessions/{account_id}/start", None), ("PUT", "/sessions", None)):
        response = tenant_admin.request(method, path, json=body)
        assert response.status_code == 410, (method, path, response.text)
        assert response.json()["code"] == "legacy_api_retired" and response.json()["request_id"]
        assert response.headers["Link"] == f'<{path.replace("/sessions", "/accounts", 1)}>; rel="successor-version"'

    # And nothing changed behind it; /accounts keeps working
    assert tenant_admin.get(f"/accounts/{account_id}").json()["connection_status"] == "STOPPED"
    assert len(tenant_admin.get("/accounts").json()["items"]) == 1
