"""The account lifecycle over real HTTP against the local stack."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, create_account


def test_account_crud_lifecycle(tenant_admin: Api) -> None:
    # Given a new account
    created = create_account(tenant_admin, "Sales", phone_number="+1 (555) 010-2030", metadata={"team": "emea"})
    account_id = created["account_id"]
    assert created["connection_status"] == "STOPPED"
    assert created["phone_number"] == "15550102030"
    assert created["version"] == 1

    # When it is read, listed, updated and deleted
    got = tenant_admin.get(f"/accounts/{account_id}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    assert got.json()["metadata"] == {"team": "emea"}

    listed = tenant_admin.get("/accounts").json()
    assert [a["account_id"] for a in listed["items"]] == [account_id]

    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "Sales EU"},
                                 headers={"If-Match": got.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["account_name"] == "Sales EU" and patched.json()["version"] == 2

    deleted = tenant_admin.delete(f"/accounts/{account_id}")
    assert deleted.status_code == 204

    # Then it is gone
    assert tenant_admin.get(f"/accounts/{account_id}").json()["code"] == "account_not_found"
    assert tenant_admin.get("/accounts").json()["items"] == []


def test_optimistic_locking_rejects_stale_version(tenant_admin: Api) -> None:
    # Given an account updated once
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "v2", "version": 1}).status_code == 200

    # When a client still holding version 1 updates it (header or body)
    stale_header = tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "lost"},
                                      headers={"If-Match": '"1"'})
    stale_body = tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "lost", "version": 1})

    # Then both get 412 and the account keeps the winning write
    assert stale_header.status_code == 412 and stale_header.json()["code"] == "precondition_failed"
    assert stale_body.status_code == 412
    assert stale_header.json()["details"] == {"current_version": 2}
    assert tenant_admin.get(f"/accounts/{account_id}").json()["account_name"] == "v2"


def test_pagination_walks_every_account_once_newest_first(tenant_admin: Api) -> None:
    # Given 7 accounts
    ids = [create_account(tenant_admin, f"acc {i}")["account_id"] for i in range(7)]

    # When listed 3 at a time
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = tenant_admin.get("/accounts", params=params).json()
        assert len(page["items"]) <= 3
        seen += [a["account_id"] for a in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    # Then every account appears exactly once, newest first
    assert seen == list(reversed(ids))
    assert pages >= 3


def test_status_filter_and_lifecycle_actions(tenant_admin: Api) -> None:
    # Given two accounts, one started
    started = create_account(tenant_admin, "started")["account_id"]
    idle = create_account(tenant_admin, "idle")["account_id"]

    # When one is started
    response = tenant_admin.post(f"/accounts/{started}/start")

    # Then its desired state is recorded and the filter sees it
    assert response.status_code == 202
    assert response.json() == {"account_id": started, "action": "start", "desired_state": "running",
                               "connection_status": "STARTING"}
    starting = tenant_admin.get("/accounts", params={"status": "STARTING"}).json()["items"]
    assert [a["account_id"] for a in starting] == [started]
    stopped = tenant_admin.get("/accounts", params={"status": "STOPPED"}).json()["items"]
    assert [a["account_id"] for a in stopped] == [idle]
    history = tenant_admin.get(f"/accounts/{started}").json()["status_history"]
    assert [(h["from"], h["to"]) for h in history] == [(None, "STOPPED"), ("STOPPED", "STARTING")]

    # And restart/logout are recorded as pending actions, stop stops an account no host holds
    assert tenant_admin.post(f"/accounts/{started}/restart").json()["desired_state"] == "running"
    assert tenant_admin.get(f"/accounts/{started}").json()["pending_action"] == "restart"
    assert tenant_admin.post(f"/accounts/{started}/logout").status_code == 202
    stop = tenant_admin.post(f"/accounts/{started}/stop").json()
    assert stop["desired_state"] == "stopped" and stop["connection_status"] == "STOPPED"


def test_qr_is_a_clear_409_until_the_host_has_one(tenant_admin: Api, runtime: Any) -> None:
    # Given an account without a QR
    account_id = create_account(tenant_admin)["account_id"]

    # When the QR is requested
    response = tenant_admin.get(f"/accounts/{account_id}/qr")

    # Then the answer says why
    assert response.status_code == 409
    assert response.json()["code"] == "qr_not_available"
    assert response.json()["details"] == {"connection_status": "STOPPED"}

    # And once the host has written one (as the browser host does), both formats serve it
    from core.models.accounts import ConnectionStatus
    from core.store.accounts import AccountChange, AccountRepository
    from core.store.leases import LeaseRepository

    lease = LeaseRepository().claim(account_id, "test-host", 30)
    assert lease is not None
    accounts = AccountRepository()
    assert accounts.attach(account_id, "test-host", lease.token, None) is not None
    accounts.set_status(account_id, lease.token, ConnectionStatus.SCAN_QR_CODE, None,
                        AccountChange(qr={"value": "2@abc,def,ghi", "expires_at": "2030-01-01T00:00:00.000Z"}))
    raw = tenant_admin.get(f"/accounts/{account_id}/qr", params={"format": "raw"})
    assert raw.json() == {"value": "2@abc,def,ghi", "expires_at": "2030-01-01T00:00:00.000Z"}
    png = tenant_admin.get(f"/accounts/{account_id}/qr")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_webhook_settings_are_validated_and_secret_never_returned(tenant_admin: Api) -> None:
    secret = "s" * 32
    private = tenant_admin.post("/accounts", json={"account_name": "x", "webhook": {
        "url": "https://169.254.169.254/latest", "secret": secret}})
    assert private.status_code == 400 and private.json()["code"] == "webhook_url_not_allowed"
    plain_http = tenant_admin.post("/accounts", json={"account_name": "x", "webhook": {
        "url": "http://example.com/h", "secret": secret}})
    assert plain_http.status_code == 400
    unsigned = tenant_admin.post("/accounts", json={"account_name": "x", "webhook": {"url": "https://example.com/h"}})
    assert unsigned.status_code == 422 and unsigned.json()["details"][0]["loc"] == ["body", "webhook", "secret"]

    created = create_account(tenant_admin, webhook={"url": "https://example.com/hook",
                                                     "secret": "s" * 32, "events": ["message.received"]})
    assert created["webhook"] == {"url": "https://example.com/hook", "events": ["message.received"],
                                  "has_secret": True}
    assert "s" * 32 not in tenant_admin.get(f"/accounts/{created['account_id']}").text


def test_webhook_urls_aimed_at_private_networks_are_refused_on_update(tenant_admin: Api) -> None:
    # Given an account (the local stack allow-lists loopback only: private and metadata targets stay refused)
    account_id = create_account(tenant_admin)["account_id"]

    # When its webhook is pointed at a private or metadata address, however spelled, or at plain http
    for url in ("https://10.0.0.1/hook", "https://0xa.1/hook", "https://167772161/hook", "https://012.0.0.1/",
                "https://169.254.169.254/latest", "https://[::ffff:a9fe:a9fe]/", "https://100.100.100.200/",
                "https://[fd00:ec2::254]/", "https://[64:ff9b::a00:1]/", "http://8.8.8.8/hook"):
        refused = tenant_admin.patch(f"/accounts/{account_id}", json={"webhook": {"url": url, "secret": "s" * 32}})

        # Then the update is refused with the webhook code and the account keeps no webhook
        assert refused.status_code == 400, (url, refused.text)
        assert refused.json()["code"] == "webhook_url_not_allowed", url
    assert tenant_admin.get(f"/accounts/{account_id}").json()["webhook"] is None

    # And a public https address, or a loopback receiver of the local stack, is accepted
    for url in ("https://8.8.8.8/hook", "http://127.0.0.1:9/hook"):
        accepted = tenant_admin.patch(f"/accounts/{account_id}", json={"webhook": {"url": url, "secret": "s" * 32}})
        assert accepted.status_code == 200 and accepted.json()["webhook"]["url"] == url, accepted.text


def test_delete_and_logout_of_an_unheld_account_wait_for_a_host_to_reach_the_device(
        tenant_admin: Api, runtime: Any) -> None:
    """Findings 4 and 5: forgetting the snapshot is not a logout (the phone still lists the device); a host
    must open the account from its snapshot and log it out, whichever host held it before, or none."""
    from core.store.accounts import AccountRepository

    # Given two accounts that no browser host holds
    deleted, logged_out = (create_account(tenant_admin)["account_id"] for _ in range(2))

    # When one is deleted and the other logged out
    assert tenant_admin.delete(f"/accounts/{deleted}").status_code == 204
    accepted = tenant_admin.post(f"/accounts/{logged_out}/logout")

    # Then the API shows the result at once (gone; stopped) ...
    assert tenant_admin.get(f"/accounts/{deleted}").status_code == 404
    assert accepted.status_code == 202 and accepted.json()["desired_state"] == "stopped"
    assert tenant_admin.get(f"/accounts/{logged_out}").json()["desired_state"] == "stopped"
    # ... and both are work for the next free host (log the device out; then purge / stay stopped)
    wanted = {a.account_id: (a.desired_state, a.pending_action) for a in AccountRepository().needing_a_host()}
    assert wanted[deleted] == ("deleted", "delete") and wanted[logged_out] == ("logout", "logout")
