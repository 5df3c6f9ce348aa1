"""Linking with a pairing code instead of a QR."""

from __future__ import annotations

import uuid

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, account_status, wait_until


def test_pairing_code_login(tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    # Given a stopped account and the number it should link
    business = "1888" + str(uuid.uuid4().int)[:7]
    account_id = create_account(tenant_admin, "pairing")["account_id"]
    assert tenant_admin.get(f"/accounts/{account_id}/pairing-code").json()["code"] == "pairing_not_requested"

    # When a pairing code is requested for that number
    requested = tenant_admin.post(f"/accounts/{account_id}/pairing-code", json={"phone_number": f"+{business}"})
    assert requested.status_code == 202 and requested.json()["status"] == "pending"

    # Then the host obtains an 8-character code from WhatsApp Web
    pairing = wait_until(lambda: (p := tenant_admin.get(f"/accounts/{account_id}/pairing-code").json())
                         ["status"] == "ready" and p, 45, "a pairing code")
    assert len(pairing["code"]) == 8 and pairing["phone_number"] == business and pairing["expires_at"]

    # When the phone confirms it, Then the account is WORKING on that number without any QR scan
    phone.post("/sim/link", {"pairing_code": pairing["code"], "phone_number": business})
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING", 30, "WORKING")
    account = tenant_admin.get(f"/accounts/{account_id}").json()
    assert account["phone_number"] == business
    again = tenant_admin.post(f"/accounts/{account_id}/pairing-code", json={"phone_number": business})
    assert again.status_code == 409 and again.json()["code"] == "already_linked"
