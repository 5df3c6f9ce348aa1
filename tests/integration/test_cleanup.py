"""Automated cleanup (the sweeper's second half) against the emulator: accounts FAILED too long stop retrying,
deleted accounts leave nothing behind, stale leases expire, and a racing write always wins. Time is `now=`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from core.models.accounts import ConnectionStatus
from core.models.common import Principal, Role
from core.store.accounts import AccountChange, AccountRepository
from core.store.leases import LeaseRepository, LeaseRow
from core.store.media import inbound_key, media_key, snapshot_key
from core.store.tables import AccountItem, ContactItem, LeaseItem, RealtimeItem
from functions.service.cleanup import GAVE_UP, UNPURGED_GRACE_SECONDS, CleanupResult, cleanup
from functions.service.context import Services
from infra.local.harness import wait_until
from tests.conftest import Api, create_account

DAY = 24 * 3600.0
TEXT = {"to": "15550001111", "type": "text", "text": {"body": "x"}}


@pytest.fixture
def svc(runtime: Any) -> Services:
    from functions.service.context import services

    return services()


def clean_until(svc: Services, done: Callable[[], bool], now: float, runs: int = 30) -> CleanupResult:
    """Run the cleanup (the whole leases table each time) until `done()`: each run is bounded, and the shared
    emulator holds other tests' accounts too."""
    result = CleanupResult()
    for _ in range(runs):
        result = cleanup(svc, now=now, segment=0, segments=1)
        if done():
            return result
    raise AssertionError("the cleanup never got there")


def hold(account_id: str, host_id: str, ttl: float = 30) -> int:
    """Claim and attach the account as a browser host does; returns the lease token."""
    lease = LeaseRepository().claim(account_id, host_id, ttl)
    assert lease is not None and AccountRepository().attach(account_id, host_id, lease.token, None) is not None
    return lease.token


def lease_row(account_id: str) -> LeaseItem | None:
    try:
        return LeaseItem.get(f"account#{account_id}", consistent_read=True)
    except LeaseItem.DoesNotExist:
        return None


def objects(svc: Services, prefix: str) -> list[str]:
    listed = svc.media.s3.list_objects_v2(Bucket=svc.media.bucket, Prefix=prefix)
    return [str(o["Key"]) for o in listed.get("Contents") or []]


# --- accounts that keep failing ------------------------------------------------------------------------------

def test_an_account_failed_for_a_day_stops_retrying_and_says_why(tenant_admin: Api, svc: Services,
                                                                 receiver: Any) -> None:
    # Given a running account a host gave up on (FAILED after its recoveries), with a webhook
    account_id = create_account(tenant_admin, webhook={"url": receiver.url("/events"), "secret": "s" * 24})[
        "account_id"]
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    token = hold(account_id, "host-failing")
    svc.accounts.set_status(account_id, token, ConnectionStatus.FAILED, "gave up after 5 recoveries: page crashed")
    assert account_id in {a.account_id for a in svc.accounts.needing_a_host()}  # every host restart reopens it

    # When the cleanup runs within the day, nothing changes
    cleanup(svc, now=time.time() + 3600, segment=0, segments=1)
    assert AccountItem.get(account_id).desired_state == "running"

    # When it runs after FAILED_GIVE_UP_HOURS
    later = time.time() + svc.settings.failed_give_up_hours * 3600 + 60
    clean_until(svc, lambda: AccountItem.get(account_id).desired_state == "stopped", later)

    # Then it is stopped, still FAILED, says why (history too), and no host opens it again
    shown = tenant_admin.get(f"/accounts/{account_id}").json()
    assert (shown["connection_status"], shown["desired_state"]) == ("FAILED", "stopped")
    assert shown["status_reason"].startswith(f"{GAVE_UP}: FAILED for more than 24 h (gave up after 5 recoveries")
    assert shown["status_history"][-1]["reason"] == shown["status_reason"]
    assert account_id not in {a.account_id for a in svc.accounts.needing_a_host()}
    # ... audited as the system's act, and announced as an account.status event
    audit = tenant_admin.get("/audit", params={"account_id": account_id, "action": "account.give_up"}).json()
    [entry] = audit["items"]
    assert entry["actor"] == {"type": "system", "id": "sweeper"} and entry["reason"] == shown["status_reason"]
    events = wait_until(lambda: [e for r in receiver.requests("/events") if (e := json.loads(r.body))["type"]
                                 == "account.status" and e["data"]["reason"].startswith(GAVE_UP)], 20, "the event")
    assert events[0]["data"]["status"] == "FAILED"

    # And a start tries again (the rule only counts failures since the last request)
    assert tenant_admin.post(f"/accounts/{account_id}/start").json()["connection_status"] == "STARTING"


def test_a_recent_start_restarts_the_clock_and_a_racing_write_wins(tenant_admin: Api, svc: Services) -> None:
    # Given an account FAILED more than a day ago (its history says so)
    account_id = create_account(tenant_admin)["account_id"]
    tenant_admin.post(f"/accounts/{account_id}/start")
    token = hold(account_id, "host-racing")
    svc.accounts.set_status(account_id, token, ConnectionStatus.FAILED, "gave up after 5 recoveries")
    later = time.time() + 2 * DAY
    stale = AccountItem.get(account_id)

    # When a host writes about it between the cleanup's read and its write
    svc.accounts.set_status(account_id, token, ConnectionStatus.FAILED, "still failing",
                            AccountChange(metadata={"touched": True}))

    # Then the cleanup's write is refused (the next run decides on what is there now)
    assert not svc.accounts.give_up(stale, f"{GAVE_UP}: test")
    assert AccountItem.get(account_id).desired_state == "running"

    # And a failure right after a user's start is only as old as that start
    tenant_admin.post(f"/accounts/{account_id}/restart")
    svc.accounts.set_status(account_id, token, ConnectionStatus.FAILED, "failed again")
    cleanup(svc, now=time.time() + 3600, segment=0, segments=1)
    assert AccountItem.get(account_id).desired_state == "running"
    clean_until(svc, lambda: AccountItem.get(account_id).desired_state == "stopped", later)


def test_a_cloud_account_whose_token_expired_stops_after_a_day(tenant_admin: Api, svc: Services,
                                                               fake_graph: Any) -> None:
    from tests.integration.test_cloud_provider import cloud_account

    # Given a Cloud API number FAILED with token_expired, still meant to run
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    svc.accounts.request(AccountItem.get(account_id), lambda _: AccountChange(
        desired_state="running", status=ConnectionStatus.FAILED, reason="token_expired: Session has expired"))

    # When a day and more has passed
    later = time.time() + svc.settings.failed_give_up_hours * 3600 + 60
    clean_until(svc, lambda: AccountItem.get(account_id).desired_state == "stopped", later)

    # Then it is stopped with why
    shown = tenant_admin.get(f"/accounts/{account_id}").json()
    assert shown["connection_status"] == "FAILED" and "token_expired" in shown["status_reason"]
    assert shown["status_reason"].startswith(GAVE_UP)


# --- deleted accounts -----------------------------------------------------------------------------------------

def leftovers(svc: Services, account_id: str, tenant_id: str) -> str:
    """What an account leaves behind: a snapshot, received media, contacts rows (a check, a budget, choices), a
    live WebSocket subscription naming it and another account. Returns the other account's received media key."""
    svc.media.put(snapshot_key(account_id), b"sealed", "application/octet-stream")
    for n in range(3):
        svc.media.put(inbound_key(account_id, f"msg_{n}"), b"jpeg", "image/jpeg")
    svc.contacts.request(account_id, "15550001111", 24)
    svc.contacts.take_check(account_id, 10)
    ContactItem(account_id, "#choices#15550001111", choices="{}", expires_at=int(time.time()) + 3600).save()
    principal = Principal(key_id="k", tenant_id=tenant_id, role=Role.ADMIN)
    svc.realtime.subscribe(f"conn-{account_id}", principal, [account_id, "acc_other"], None)
    other = inbound_key(f"{account_id}0", "msg_0")  # a neighbour whose id starts with this one's
    svc.media.put(other, b"jpeg", "image/jpeg")
    return other


def nothing_left(svc: Services, account_id: str, tenant_id: str) -> None:
    assert objects(svc, f"inbound/{account_id}/") == [] and objects(svc, snapshot_key(account_id)) == []
    assert list(ContactItem.query(account_id)) == []
    subscription = RealtimeItem.get(f"tenant#{tenant_id}", f"conn#conn-{account_id}")
    assert subscription.account_ids == ["acc_other"]


def test_a_purged_account_leaves_nothing_behind(tenant_admin: Api, svc: Services) -> None:
    # Given an account a host drove, with everything an account leaves behind, and the tenant's own media
    created = create_account(tenant_admin)
    account_id, tenant_id = created["account_id"], str(AccountItem.get(created["account_id"]).tenant_id)
    token = hold(account_id, "host-purging")
    neighbour = leftovers(svc, account_id, tenant_id)
    tenant_media = media_key(tenant_id, "med_" + "0" * 26)
    svc.media.put(tenant_media, b"png", "image/png")

    # When it is deleted and the host purges it (releases the lease, removes the item) as it does
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204
    lease = LeaseRepository().holder(account_id)
    assert lease is not None and LeaseRepository().release(lease)
    svc.accounts.purge(account_id, token)
    assert lease_row(account_id) is not None  # what tells the sweeper the account existed

    # And the cleanup runs
    clean_until(svc, lambda: lease_row(account_id) is None, time.time() + 1)

    # Then its snapshot, media, contacts rows, lease row and its id in subscriptions are gone; others' are not
    nothing_left(svc, account_id, tenant_id)
    assert objects(svc, neighbour) == [neighbour] and objects(svc, tenant_media) == [tenant_media]
    # And its messages cannot be read any more (they stay until their TTL)
    assert tenant_admin.get(f"/accounts/{account_id}/messages").status_code == 404


def test_a_deleted_account_no_host_purged_is_cleaned_after_the_grace(tenant_admin: Api, svc: Services) -> None:
    # Given a deleted account that no host ever purged (none runs), with leftovers and a queued message
    created = create_account(tenant_admin)
    account_id, tenant_id = created["account_id"], str(AccountItem.get(created["account_id"]).tenant_id)
    leftovers(svc, account_id, tenant_id)
    assert tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT).status_code == 202
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204

    # When the cleanup runs within the grace period, a host may still come: nothing is touched
    cleanup(svc, now=time.time() + 3600, segment=0, segments=1)
    assert svc.accounts.read(account_id) is not None and objects(svc, f"inbound/{account_id}/")

    # When it runs after the grace period
    clean_until(svc, lambda: svc.accounts.read(account_id) is None, time.time() + UNPURGED_GRACE_SECONDS + 60)

    # Then the tombstone and every leftover are gone
    nothing_left(svc, account_id, tenant_id)


def test_a_tombstone_a_host_is_purging_is_left_to_the_host(tenant_admin: Api, svc: Services) -> None:
    # Given a deleted account past the grace period, read by the cleanup just before a host claimed it
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204
    seen = AccountItem.get(account_id)
    hold(account_id, "host-late", ttl=2 * DAY)

    # Then the cleanup neither removes the tombstone it read (the host's attach moved it on) nor one a live
    # host holds
    assert not svc.accounts.remove_tombstone(seen)
    cleanup(svc, now=time.time() + UNPURGED_GRACE_SECONDS + 60, segment=0, segments=1)
    assert svc.accounts.read(account_id) is not None


def test_a_deleted_cloud_account_is_cleaned_at_once(tenant_admin: Api, svc: Services, fake_graph: Any) -> None:
    from tests.integration.test_cloud_provider import cloud_account

    # Given a Cloud API number with received media and contacts rows
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    tenant_id = str(AccountItem.get(account_id).tenant_id)
    leftovers(svc, account_id, tenant_id)

    # When it is deleted (gone for the API at once) and the cleanup runs
    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204
    assert tenant_admin.get(f"/accounts/{account_id}").status_code == 404
    assert account_id not in {a.account_id for a in svc.accounts.needing_a_host()}
    clean_until(svc, lambda: svc.accounts.read(account_id) is None, time.time() + 1)

    # Then nothing of it is left
    nothing_left(svc, account_id, tenant_id)


def test_removals_are_bounded_per_run(tenant_admin: Api, svc: Services) -> None:
    account_id = f"acc_bounded{uuid.uuid4().hex[:8]}"
    for n in range(5):
        svc.contacts.request(account_id, f"1555000{n:04d}", 24)
        svc.media.put(inbound_key(account_id, f"msg_{n}"), b"x", "image/jpeg")

    assert svc.contacts.forget_account(account_id, 3) == (3, True)
    assert svc.contacts.forget_account(account_id, 3) == (2, False)
    assert svc.media.delete_prefix(f"inbound/{account_id}/", 3) == (3, True)
    assert svc.media.delete_prefix(f"inbound/{account_id}/", 3) == (2, False)


def test_the_snapshot_key_is_the_one_hosts_write() -> None:
    from browser_host.crypto import SnapshotStore

    assert SnapshotStore(None, None, "bucket", "key").object_key("acc_1") == snapshot_key("acc_1")


# --- stale leases ---------------------------------------------------------------------------------------------

def test_a_killed_hosts_lease_expires_and_a_live_lease_is_never_touched(tenant_admin: Api, svc: Services) -> None:
    # Given a host killed without releasing: its registration and its lease simply run out; the account says
    # WORKING and names it
    account_id = create_account(tenant_admin)["account_id"]
    token = hold(account_id, "host-killed")
    svc.accounts.set_status(account_id, token, ConnectionStatus.WORKING, "connected to WhatsApp")
    # ... and an account a host holds for longer than the cleanup's clock below moves on
    live_id = create_account(tenant_admin)["account_id"]
    hold(live_id, "host-alive", ttl=2 * DAY)

    # When the cleanup runs while the lease is live, or just expired: nothing is touched
    for moment in (time.time(), time.time() + 31):
        cleanup(svc, now=moment, segment=0, segments=1)
        assert lease_row(account_id).owner == "host-killed"  # type: ignore[union-attr]

    # When it runs well past the expiry
    later = time.time() + 3600
    clean_until(svc, lambda: lease_row(account_id).owner is None, later)  # type: ignore[union-attr]

    # Then the row forgets its holder but keeps the token (fencing), the account no longer names a host and no
    # longer claims to be WORKING; the live lease is untouched
    row = lease_row(account_id)
    assert row is not None and int(row.token) == token
    shown = tenant_admin.get(f"/accounts/{account_id}").json()
    assert shown["host_id"] is None and shown["connection_status"] == "STARTING"
    assert shown["status_reason"].startswith("host_gone")
    assert lease_row(live_id).owner == "host-alive"  # type: ignore[union-attr]
    # And the next owner's token, one more than the row kept, is accepted by the account
    assert svc.accounts.attach(account_id, "host-next", token + 1, None) is not None


def test_lease_removals_are_conditional_on_the_exact_row_read(tenant_admin: Api, svc: Services) -> None:
    # Given the cleanup read an expired lease row
    account_id = create_account(tenant_admin)["account_id"]
    leases = LeaseRepository()
    first = leases.claim(account_id, "host-a", 30)
    assert first is not None
    seen = LeaseRow(account_id, "host-a", first.token, first.expires_at)
    after_expiry = first.expires_at + 1

    # When a host claims it in between (a new token)
    assert leases.release(first)
    assert leases.claim(account_id, "host-b", 30) is not None

    # Then neither forgetting the holder nor removing the row goes through
    assert not leases.forget_holder(seen, after_expiry)
    assert not leases.remove(seen, after_expiry)
    assert lease_row(account_id).owner == "host-b"  # type: ignore[union-attr]


def test_the_scheduled_run_sweeps_then_cleans(svc: Services) -> None:
    from functions.service.sweeper import run

    swept, cleaned = run(svc)
    assert swept.checked >= 0 and cleaned is not None


def test_the_sweeper_counts_accounts_by_status_for_the_dashboard(tenant_admin: Api, runtime: Any) -> None:
    from functions.service.sweeper import STATUS_METRICS, accounts_by_status
    from functions.sweeper.handler import lambda_handler
    from infra.local.lambda_runtime import LambdaContext

    before = accounts_by_status()
    first = create_account(tenant_admin, "counted")["account_id"]
    create_account(tenant_admin, "counted too")
    after = accounts_by_status()
    assert after[ConnectionStatus.STOPPED] == before[ConnectionStatus.STOPPED] + 2
    assert tenant_admin.delete(f"/accounts/{first}").status_code in {202, 204}
    assert accounts_by_status()[ConnectionStatus.STOPPED] == before[ConnectionStatus.STOPPED] + 1
    assert set(STATUS_METRICS.values()) == {"AccountsStopped", "AccountsStarting", "AccountsScanQrCode",
                                            "AccountsWorking", "AccountsFailed"}
    answer = lambda_handler({}, LambdaContext(function_name="SweeperFunction", timeout_seconds=60))
    assert "checked" in answer  # the handler emits them (EMF) without holding up the sweep
