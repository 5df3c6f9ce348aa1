"""Host actions in the audit log, as a real browser host records them: start, linked, logged out from the phone."""

from __future__ import annotations

import uuid
from typing import Any

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, account_status, link_by_qr, wait_until


def host_entries(api: Api, account_id: str) -> list[dict[str, Any]]:
    response = api.get("/audit", params={"account_id": account_id, "action": "host.*"})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))  # oldest first


def test_a_host_records_start_link_and_logout(tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given an account linked on a host
    business = "1777" + str(uuid.uuid4().int)[:7]
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)

    # When the phone removes the linked device
    phone.post("/sim/unlink", {"phone_number": business})
    wait_until(lambda: account_status(tenant_admin, account_id) == "SCAN_QR_CODE", 20, "SCAN_QR_CODE")

    # Then the host's start, link and logout are in the account's audit log, by that host, with their reasons
    entries = wait_until(lambda: len(found := host_entries(tenant_admin, account_id)) >= 3 and found, 10,
                         "three host entries")
    assert [e["action"] for e in entries] == ["host.start", "host.linked", "host.logout"]
    assert {e["actor"]["type"] for e in entries} == {"host"} and len({e["actor"]["id"] for e in entries}) == 1
    assert all(e["result"] == "ok" and e["target"] == {"type": "account", "id": account_id} for e in entries)
    assert entries[1]["reason"] == "connected to WhatsApp"
    assert "logged out" in (entries[2]["reason"] or "")
    # And the API calls that led there are in the same log, by the admin's key
    calls = tenant_admin.get("/audit", params={"account_id": account_id, "action": "account.*"}).json()["items"]
    assert [e["action"] for e in calls] == ["account.start", "account.create"]
