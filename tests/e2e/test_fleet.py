"""Several browser hosts: one driver per account, takeover after a crash, logout and delete reach the device."""

from __future__ import annotations

import uuid

from core.store.accounts import AccountRepository
from tests.conftest import Api, create_account
from tests.e2e.conftest import Fleet, Phone, account_status, link_by_qr, send_text, wait_until


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def test_two_hosts_never_drive_one_account(tenant_admin: Api, phone: Phone, fleet: Fleet) -> None:
    """Finding 1: a second host beside the first used to open the same accounts from the same snapshot."""
    # Given two hosts and two linked accounts
    first = fleet.start()
    businesses = [_number(), _number()]
    accounts = [create_account(tenant_admin)["account_id"] for _ in businesses]
    for account_id, number in zip(accounts, businesses, strict=True):
        link_by_qr(tenant_admin, phone, account_id, number)
    second = fleet.start()

    # When they have run side by side for a while (leases renewed, the second host balancing in)
    wait_until(lambda: all(len(fleet.holder(a)) == 1 for a in accounts) and len(fleet.holder(accounts[0])) == 1
               and {h.health_port for a in accounts for h in fleet.holder(a)} == {first.health_port,
                                                                                  second.health_port},
               60, "one account on each host")

    # Then each account has exactly one driver, the API names it, and WhatsApp saw no second connection
    for account_id, number in zip(accounts, businesses, strict=True):
        (holder,) = fleet.holder(account_id)
        assert tenant_admin.get(f"/accounts/{account_id}").json()["host_id"] == (holder.health() or {})["host_id"]
        wait_until(lambda a=account_id: account_status(tenant_admin, a) == "WORKING", 30, "WORKING")
        assert phone.conflicts(number) == 0

    # And stopping one host hands its account to the other (no QR) without touching the other's account
    (moved,) = [a for a in accounts if fleet.holder(a) == [first]]
    (stayed,) = [a for a in accounts if a != moved]
    stayed_history = len(tenant_admin.get(f"/accounts/{stayed}").json()["status_history"])
    first.stop()
    wait_until(lambda: fleet.holder(moved) == [second] and account_status(tenant_admin, moved) == "WORKING", 40,
               "the account moved to the other host")
    history = tenant_admin.get(f"/accounts/{moved}").json()["status_history"]
    assert all(h["to"] != "SCAN_QR_CODE" for h in history[-3:])
    assert len(tenant_admin.get(f"/accounts/{stayed}").json()["status_history"]) == stayed_history
    assert account_status(tenant_admin, stayed) == "WORKING"
    assert all(phone.conflicts(number) == 0 for number in businesses)


def test_a_killed_hosts_accounts_are_taken_over_without_a_new_qr(tenant_admin: Api, phone: Phone,
                                                                 fleet: Fleet) -> None:
    # Given a linked account on one host, and a second host with room
    first = fleet.start()
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    wait_until(lambda: "snapshot saved" in fleet.logs(), 15, "a snapshot")
    second = fleet.start(HOST_REBALANCE="false")

    # When the first host is SIGKILLed and a message is sent meanwhile
    first.kill()
    message_id = send_text(tenant_admin, account_id, contact, "after the crash")

    # Then the second host takes the account over from its snapshot (lease expiry + restore) and sends it
    wait_until(lambda: fleet.holder(account_id) == [second], 40, "takeover")
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING", 30, "WORKING")
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["after the crash"], 30, "delivery")
    # The phone can show it a moment before the host has written WhatsApp's answer
    wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}/messages/{message_id}").json()["status"] == "sent",
               15, "status sent")
    history = tenant_admin.get(f"/accounts/{account_id}").json()["status_history"]
    assert all(h["to"] != "SCAN_QR_CODE" for h in history[-3:])
    assert phone.conflicts(business) == 0


def test_logout_after_the_holder_was_killed_still_logs_the_device_out(tenant_admin: Api, phone: Phone,
                                                                        fleet: Fleet) -> None:
    """Finding 4: the logout was dropped and the next host brought the account back WORKING, still linked."""
    # Given a linked account whose host was SIGKILLed (host_id still set on the account)
    first = fleet.start()
    business = _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    wait_until(lambda: "snapshot saved" in fleet.logs(), 15, "a snapshot")
    first.kill()
    assert tenant_admin.get(f"/accounts/{account_id}").json()["host_id"]

    # When it is logged out, and then a host comes
    assert tenant_admin.post(f"/accounts/{account_id}/logout").status_code == 202
    fleet.start()

    # Then the phone no longer lists the device and the account waits for a new QR scan
    wait_until(lambda: not phone.devices(business), 60, "the device unlinked")
    wait_until(lambda: account_status(tenant_admin, account_id) == "SCAN_QR_CODE", 30, "a new QR")


def test_delete_logs_the_device_out_and_queued_messages_never_go_out(tenant_admin: Api, phone: Phone,
                                                                      fleet: Fleet) -> None:
    """Finding 5: deleting a WORKING account closed the page without logging out; queued messages still went."""
    # Given a linked account (stopped, so messages queue up without being sent) and a second, working one
    host = fleet.start()
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    assert tenant_admin.post(f"/accounts/{account_id}/stop").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "STOPPED", 30, "STOPPED")
    for i in range(3):
        send_text(tenant_admin, account_id, contact, f"never {i}")

    # When the account is deleted
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204

    # Then a host opens it once to log the device out, and the queued messages are never sent
    wait_until(lambda: not phone.devices(business), 60, "the device unlinked")
    wait_until(lambda: AccountRepository().read(account_id) is None, 30, "the account item removed")
    assert phone.received(contact) == []
    assert host.health() is not None and account_id not in (host.health() or {}).get("account_ids", [])


def test_delete_of_a_working_account_logs_its_device_out(tenant_admin: Api, phone: Phone, fleet: Fleet) -> None:
    fleet.start()
    business = _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204
    wait_until(lambda: not phone.devices(business), 30, "the device unlinked")
    assert tenant_admin.get(f"/accounts/{account_id}").status_code == 404


def test_control_reaches_the_owner_through_its_inbox_not_the_table_poll(tenant_admin: Api, phone: Phone,
                                                                        fleet: Fleet) -> None:
    # Given a host that re-reads the table only every two minutes
    fleet.start(HOST_RECONCILE_INTERVAL="120", HOST_SWEEP_INTERVAL="120")
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin)["account_id"]

    # When the account is started, linked, sent a message, stopped and started again
    link_by_qr(tenant_admin, phone, account_id, business)
    send_text(tenant_admin, account_id, contact, "pushed")
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["pushed"], 30, "the message")
    assert tenant_admin.post(f"/accounts/{account_id}/stop").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "STOPPED", 30, "STOPPED")
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202

    # Then each reached the host well before its next poll: nudges on the control queue and its inbox
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING", 30, "WORKING again")
