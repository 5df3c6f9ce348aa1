"""A host killed with SIGKILL comes back: accounts WORKING without a new QR, nothing lost or sent twice."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import HOST_ENV, Phone, account_status, link_by_qr, wait_until


def test_sigkill_and_restart_keeps_the_link_and_every_message_once(
        tenant_admin: Api, runtime: Any, phone: Phone, tmp_path: Path) -> None:
    business, contact = "1777" + str(uuid.uuid4().int)[:7], "1778" + str(uuid.uuid4().int)[:7]
    first = HostProcess(runtime.host_env(), log_path=tmp_path / "first.log", extra_env=HOST_ENV).start()
    second: HostProcess | None = None
    try:
        # Given a linked account whose snapshot the host has stored, and messages flowing
        account_id = create_account(tenant_admin)["account_id"]
        link_by_qr(tenant_admin, phone, account_id, business)
        wait_until(lambda: "snapshot saved" in (tmp_path / "first.log").read_text(), 15, "a snapshot")
        bodies = [f"message {i}" for i in range(12)]
        ids = []
        for body in bodies[:6]:
            ids.append(tenant_admin.post(f"/accounts/{account_id}/messages", json={
                "to": contact, "type": "text", "text": {"body": body}}).json()["message_id"])
        wait_until(lambda: len(phone.received(contact)) >= 2, 20, "some deliveries")

        # When the host is killed mid-stream (no graceful shutdown) and more messages arrive meanwhile
        first.kill()
        for body in bodies[6:]:
            ids.append(tenant_admin.post(f"/accounts/{account_id}/messages", json={
                "to": contact, "type": "text", "text": {"body": body}}).json()["message_id"])
        second = HostProcess(runtime.host_env(), log_path=tmp_path / "second.log", extra_env=HOST_ENV).start()

        # Then the account goes through STARTING to WORKING again, without a QR scan
        def restarted() -> list[dict[str, Any]] | None:
            history: list[dict[str, Any]] = tenant_admin.get(f"/accounts/{account_id}").json()["status_history"]
            return history if [h["to"] for h in history][-2:] == ["STARTING", "WORKING"] \
                and sum(h["to"] == "WORKING" for h in history) >= 2 else None

        history = wait_until(restarted, 40, "WORKING after restart")
        first_working = next(i for i, h in enumerate(history) if h["to"] == "WORKING")
        assert all(h["to"] != "SCAN_QR_CODE" for h in history[first_working:])
        assert account_status(tenant_admin, account_id) == "WORKING"

        # And every message reached the phone exactly once, in order, and ended sent
        wait_until(lambda: len(phone.received(contact)) >= len(bodies), 60, "all deliveries")
        received = [m["body"] for m in phone.received(contact)]
        assert received == bodies
        statuses = wait_until(lambda: (s := [tenant_admin.get(f"/accounts/{account_id}/messages/{i}").json()["status"]
                                             for i in ids]) and all(x == "sent" for x in s) and s, 30, "all sent")
        assert len(statuses) == len(bodies)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        from tests.e2e.conftest import stop_all_accounts

        stop_all_accounts()
