"""Account lifecycle on a real browser host: unlink from the phone, stop/start, renderer crash."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, account_status, link_by_qr, wait_until


def _number() -> str:
    return "1666" + str(uuid.uuid4().int)[:7]


def renderer_pids(root_pid: int, kind: str = "renderer") -> list[int]:
    """Chromium processes of `--type=<kind>` (kind "browser": the main one) descending from `root_pid`."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parents.get(pid, 0)
        return False

    def matches(cmd: str) -> bool:
        if kind == "browser":
            return "chromium" in cmd.split("\0")[0] and "--type=" not in cmd
        return f"--type={kind}" in cmd

    return [pid for pid, cmd in commands.items() if matches(cmd) and descends(pid)]


def send_text(api: Api, account_id: str, to: str, body: str) -> str:
    response = api.post(f"/accounts/{account_id}/messages", json={"to": to, "type": "text", "text": {"body": body}})
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def test_unlink_from_the_phone_shows_a_new_qr_with_the_reason(tenant_admin: Api, phone: Phone,
                                                                host: HostProcess) -> None:
    # Given a linked account
    business = _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)

    # When the phone removes the linked device
    phone.post("/sim/unlink", {"phone_number": business})

    # Then the account asks for a new QR and says why
    wait_until(lambda: account_status(tenant_admin, account_id) == "SCAN_QR_CODE", 20, "SCAN_QR_CODE")
    account = tenant_admin.get(f"/accounts/{account_id}").json()
    assert "logged out" in (account["status_reason"] or "")
    assert wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/qr", params={"format": "raw"})
                      .status_code == 200, 20, "a new QR")


def test_messages_wait_for_the_account_and_fail_clearly_for_bad_recipients(
        tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given an account that is not started yet, with a message queued for it
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]
    early = send_text(tenant_admin, account_id, contact, "sent before linking")

    # When it is linked afterwards
    link_by_qr(tenant_admin, phone, account_id, business)

    # Then the waiting message is delivered, and a non-WhatsApp number fails with a reason
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["sent before linking"], 30, "delivery")
    assert wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/messages/{early}").json()["status"]
                      in {"sent", "delivered"}, 15, "sent")
    bad = send_text(tenant_admin, account_id, "99912345678", "nobody")
    failed = wait_until(lambda: (m := tenant_admin.get(f"/accounts/{account_id}/messages/{bad}").json())
                        ["status"] == "failed" and m, 20, "failed")
    assert failed["error"]["code"] == "invalid_recipient"
    # And a message after the failed one is not held back by it
    after = tenant_admin.post(f"/accounts/{account_id}/messages", json={
        "to": contact, "type": "location", "location": {"latitude": 1, "longitude": 2}}).json()["message_id"]
    wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/messages/{after}").json()["status"]
               in {"sent", "delivered"}, 20, "the next message sent")


def test_stop_and_start_again(tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    business = _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)

    assert tenant_admin.post(f"/accounts/{account_id}/stop").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "STOPPED", 20, "STOPPED")
    assert tenant_admin.get(f"/accounts/{account_id}").json()["status_reason"] == "stop requested"

    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING", 30, "WORKING again")

    # A restart reopens the page from its snapshot: through STARTING back to WORKING, no QR
    assert tenant_admin.post(f"/accounts/{account_id}/restart").status_code == 202
    history = wait_until(
        lambda: (h := tenant_admin.get(f"/accounts/{account_id}").json())["pending_action"] is None
        and [e["to"] for e in h["status_history"]][-2:] == ["STARTING", "WORKING"]
        and "restart" in (h["status_history"][-2]["reason"] or "") and h["status_history"], 30, "restarted")
    assert history[-1]["to"] == "WORKING"


def test_renderer_crash_recovers_without_a_new_qr(tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given a linked account on the host
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    assert host.process is not None

    # When its renderer process is killed
    pids = renderer_pids(host.process.pid)
    assert pids, "no renderer found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    # Then the page is replaced, the account is WORKING again with the same link, and it sends
    history: list[Any] = wait_until(
        lambda: (h := tenant_admin.get(f"/accounts/{account_id}").json()["status_history"])
        and h[-1]["to"] == "WORKING" and any("crash" in (e["reason"] or "") for e in h) and h, 30, "recovery")
    assert all(e["to"] != "SCAN_QR_CODE" for e in history[-3:])
    send_text(tenant_admin, account_id, contact, "after the crash")
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["after the crash"], 30, "delivery")


def test_an_unscanned_qr_ends_failed_and_start_asks_again(tenant_admin: Api, host: HostProcess) -> None:
    # Given an account started but never scanned
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202

    # When WhatsApp Web stops rotating the QR code
    failed = wait_until(lambda: (a := tenant_admin.get(f"/accounts/{account_id}").json())
                        ["connection_status"] == "FAILED" and a, 60, "FAILED")

    # Then it stays FAILED with the reason (no endless QR loop), until a new start shows a new QR
    assert failed["status_reason"].startswith("qr_timeout") and failed["desired_state"] == "stopped"
    assert tenant_admin.get(f"/accounts/{account_id}/qr").json()["code"] == "qr_not_available"
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/qr", params={"format": "raw"}).status_code == 200,
               30, "a new QR")


def test_a_killed_browser_is_relaunched_and_accounts_come_back_from_snapshots(
        tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given a linked account whose snapshot is stored
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    assert host.process is not None
    wait_until(lambda: host.log_path is not None and "snapshot saved" in host.log_path.read_text(), 15, "a snapshot")

    # When the whole Chromium browser is killed
    [browser] = renderer_pids(host.process.pid, kind="browser")
    os.kill(browser, signal.SIGKILL)

    # Then the host relaunches it, the account goes STARTING → WORKING without a QR, and it sends
    wait_until(lambda: [h["to"] for h in tenant_admin.get(f"/accounts/{account_id}").json()["status_history"]]
               [-3:] == ["WORKING", "STARTING", "WORKING"], 40, "restored after the browser died")
    send_text(tenant_admin, account_id, contact, "after the browser died")
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["after the browser died"], 30, "delivery")
