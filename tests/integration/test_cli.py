"""The `wagate` CLI in-process (`main([...])`, stdout captured) against the local stack, and `GET /health/details`
that its `doctor` prints."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.cli import main
from infra.local.emulator import free_port
from tests.conftest import Api, create_account, make_key
from tests.integration.test_messages_api import drain

DLQS = ("IngressDeadLetterQueue", "EventsDeadLetterQueue", "CloudOutboxDeadLetterQueue")


@pytest.fixture
def as_caller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`as_caller(api)`: the CLI calls the API with that key (from the environment), no config file around."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("WAGATE_CONFIG", raising=False)

    def use(api: Api) -> None:
        monkeypatch.setenv("WAGATE_URL", api.base_url)
        monkeypatch.setenv("WAGATE_API_KEY", str(api.key))
    return use


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sqs(runtime: Any) -> Any:
    return boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")


@pytest.fixture
def empty_dlqs(runtime: Any) -> Iterator[None]:
    """Dead letter queues emptied (received and deleted: SQS allows one purge a minute) before and after."""
    for name in DLQS:
        drain(runtime, name)
    yield
    for name in DLQS:
        drain(runtime, name)


def set_account(account_id: str, **values: Any) -> None:
    """Write what a browser host would have written (no host runs in these tests)."""
    from core.store.tables import AccountItem

    item = AccountItem.get(account_id)
    actions = [getattr(AccountItem, name).set(value) for name, value in values.items()]
    if "connection_status" in values:
        actions.append(AccountItem.tenant_status.set(f"{item.tenant_id}#{values['connection_status']}"))
    item.update(actions=actions)


# --- accounts, send, keys ---------------------------------------------------------------------------------------

def test_accounts_create_list_show_start_delete(tenant_admin: Api, as_caller: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    # When an account is created, Then its id is printed
    code, out, _ = run(capsys, "accounts", "create", "Support", "--metadata", '{"team": "cli"}')
    assert code == 0
    account_id = out.strip()
    assert re.fullmatch(r"acc_[0-9a-z]+", account_id), out

    code, out, _ = run(capsys, "accounts", "list")
    assert code == 0 and account_id in out and "STOPPED" in out and out.startswith("ACCOUNT")
    code, out, _ = run(capsys, "accounts", "show", account_id)
    assert code == 0 and json.loads(out)["metadata"] == {"team": "cli"}

    # When it is started, Then the API recorded it
    code, out, _ = run(capsys, "accounts", "start", account_id)
    assert code == 0 and f"start accepted for {account_id}" in out
    assert tenant_admin.get(f"/accounts/{account_id}").json()["desired_state"] == "running"
    code, out, _ = run(capsys, "--json", "accounts", "list", "--status", "STOPPED")
    assert code == 0 and isinstance(json.loads(out), list)

    # When it is deleted, Then it is gone and showing it fails with the API's error
    code, out, _ = run(capsys, "accounts", "delete", account_id, "--yes")
    assert code == 0 and tenant_admin.get(f"/accounts/{account_id}").status_code == 404
    code, _, err = run(capsys, "accounts", "show", account_id)
    assert code == 1 and "404 account_not_found" in err


def test_send_queues_a_text_message(tenant_admin: Api, as_caller: Any, capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    account_id = create_account(tenant_admin)["account_id"]
    code, out, _ = run(capsys, "send", account_id, "--to", "15550001111", "--text", "hello from the CLI")
    assert code == 0, out
    message_id = out.split()[0]
    message = tenant_admin.get(f"/accounts/{account_id}/messages/{message_id}").json()
    assert message["to"] == "15550001111" and message["content"]["text"]["body"] == "hello from the CLI"


def test_keys_create_list_revoke(tenant_admin: Api, as_caller: Any, capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    code, out, err = run(capsys, "keys", "create", "--name", "robot", "--role", "viewer")
    assert code == 0 and out.startswith("wgk_") and "shown only now" in err
    robot = tenant_admin.with_key(out.strip())
    key_id = robot.get("/me").json()["key_id"]

    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and key_id in out and "viewer" in out

    code, out, _ = run(capsys, "keys", "revoke", key_id)
    assert code == 0 and robot.get("/me").status_code == 401
    # Then the revoked key gets the API's 401 through the CLI too
    as_caller(robot)
    code, _, err = run(capsys, "keys", "list")
    assert code == 1 and "401" in err


def test_url_and_key_come_from_the_config_file(tenant_admin: Api, as_caller: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    monkeypatch.delenv("WAGATE_URL")
    monkeypatch.delenv("WAGATE_API_KEY")
    # Given no configuration at all, Then the CLI says how to configure it (exit 3: nothing to call)
    code, _, err = run(capsys, "accounts", "list")
    assert code == 3 and "WAGATE_URL" in err
    # Given ~/.config/wagate/config.json, Then it is used
    (tmp_path / "wagate").mkdir()
    (tmp_path / "wagate" / "config.json").write_text(json.dumps({"url": tenant_admin.base_url,
                                                                 "api_key": tenant_admin.key}))
    account_id = create_account(tenant_admin)["account_id"]
    code, out, _ = run(capsys, "accounts", "list")
    assert code == 0 and account_id in out


def test_qr_is_printed_until_the_account_is_linked(tenant_admin: Api, as_caller: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    set_account(account_id, connection_status="SCAN_QR_CODE",
                qr={"value": "2@cli-test,qr", "expires_at": "2099-01-01T00:00:00.000Z"})
    # Given the phone scans it a moment later
    linked = threading.Timer(1.5, set_account, (account_id,), {"connection_status": "WORKING", "qr": None})
    linked.start()
    code, out, _ = run(capsys, "qr", account_id, "--interval", "0.3", "--timeout", "20")
    linked.join()
    # Then the QR was drawn in the terminal (segno's block characters) and the command ends when linked
    assert code == 0, out
    assert "█" in out or "▀" in out
    assert out.strip().endswith(f"{account_id} is linked (WORKING)")


def test_events_tail_prints_events_as_json_lines(tenant_admin: Api, as_caller: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from core.models.events import EventType
    from functions.service.context import services

    as_caller(tenant_admin)
    account_id = create_account(tenant_admin)["account_id"]
    tenant_id = tenant_admin.get("/me").json()["tenant_id"]
    result: dict[str, int] = {}
    tail = threading.Thread(target=lambda: result.update(
        code=main(["events", "tail", "--count", "1", "--timeout", "20"])))
    tail.start()
    # When events are published (until the tail, subscribed meanwhile, has printed one)
    deadline = time.monotonic() + 20
    while tail.is_alive() and time.monotonic() < deadline:
        services().events.publish(EventType.MESSAGE_STATUS, account_id, tenant_id,
                                  {"message_id": f"msg_{uuid.uuid4().hex}", "status": "sent"})
        tail.join(0.5)
    tail.join(5)
    out, _ = capsys.readouterr()
    assert result.get("code") == 0, out
    event = json.loads(out.splitlines()[0])
    assert event["type"] == "message.status" and event["account_id"] == account_id


# --- /health/details and doctor ---------------------------------------------------------------------------------

def test_health_details_is_for_the_bootstrap_tenants_admins(root_api: Api, tenant_admin: Api) -> None:
    # Given the operator (bootstrap tenant admin), Then the whole stack
    details = root_api.get("/health/details")
    assert details.status_code == 200, details.text
    body = details.json()
    assert body["status"] in {"ok", "warning", "problem"}
    assert {q["name"] for q in body["queues"]} == {"control", "ingress", "events", "realtime", "webhook_retries",
                                                   "cloud_outbox"}
    assert all(q["configured"] and q["error"] is None for q in body["queues"])
    assert {d["name"] for d in body["dead_letter_queues"]} == {"ingress", "events", "cloud_outbox"}
    assert body["accounts"]["total"] >= 0 and isinstance(body["accounts"]["by_status"], dict)
    # Given another tenant's admin, or an operator of the bootstrap tenant, Then 403
    assert tenant_admin.get("/health/details").json()["code"] == "forbidden_tenant"
    assert tenant_admin.get("/health/details").status_code == 403
    assert make_key(root_api, "operator").get("/health/details").status_code == 403
    # /health stays public and minimal
    assert root_api.with_key(None).get("/health").json()["status"] == "ok"


def test_doctor_on_a_healthy_stack_then_with_a_dead_letter(runtime: Any, root_api: Api, as_caller: Any,
                                                           empty_dlqs: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(root_api)
    # Given a healthy stack, Then exit 0 and the sections
    code, out, _ = run(capsys, "doctor")
    assert code == 0, out
    assert out.startswith("wagate doctor: OK")
    for section in ("queues", "dead letter queues", "hosts", "accounts:"):
        assert section in out
    assert re.search(r"^ingress\s+0\s+0\s+0", out, re.MULTILINE), out

    # Given a message in the ingress DLQ, Then exit 1 (a warning) naming the DLQ and why the message is there
    sqs(runtime).send_message(QueueUrl=runtime.stack.refs["IngressDeadLetterQueue"], MessageBody="{}",
                              MessageAttributes={"error_code": {"DataType": "String",
                                                                "StringValue": "invalid_signature"}})
    code, out, _ = run(capsys, "doctor")
    assert code == 1, out
    assert out.startswith("wagate doctor: WARN")
    assert "dlq_not_empty: 1 message(s) in the ingress DLQ" in out
    assert "invalid_signature @" in out
    # And the peek left the message where it was
    code, out, _ = run(capsys, "--json", "doctor")
    assert code == 1 and json.loads(out)["dead_letter_queues"][0]["messages"] == 1


def test_doctor_lists_an_account_stuck_in_a_state(root_api: Api, tenant_admin: Api, as_caller: Any,
                                                  empty_dlqs: None, capsys: pytest.CaptureFixture[str]) -> None:
    from core.store.tables import AccountItem

    account_id = create_account(tenant_admin)["account_id"]
    try:
        # Given an account that should run but has been STARTING for an hour
        tenant_admin.post(f"/accounts/{account_id}/start")
        set_account(account_id, connection_status="STARTING", status_history=[
            {"at": "2020-01-01T00:00:00.000Z", "from": "STOPPED", "to": "STARTING", "reason": None}])
        as_caller(root_api)
        code, out, _ = run(capsys, "doctor")
        details = root_api.get("/health/details").json()
        # Then it is listed as stuck, with a problem when no host is alive to start it
        assert "accounts_stuck" in out and account_id in out and "STARTING while it should run" in out
        assert code == {"warning": 1, "problem": 2}[details["status"]]
        if not any(h["alive"] for h in details["hosts"]):
            assert code == 2 and "no_live_host" in out
    finally:
        AccountItem(account_id).delete(add_version_condition=False)


def test_doctor_exits_3_when_it_cannot_read_the_health(tenant_admin: Api, as_caller: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    as_caller(tenant_admin)
    code, _, err = run(capsys, "doctor")
    assert code == 3 and "403 forbidden_tenant" in err and "bootstrap tenant" in err
    code, _, err = run(capsys, "--url", f"http://127.0.0.1:{free_port()}", "doctor")
    assert code == 3 and "cannot reach" in err
