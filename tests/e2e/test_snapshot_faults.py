"""A stored snapshot that cannot be used, or cannot be read for a while: the account says so and never sticks.

An altered snapshot is never opened: the account asks for a new link (SCAN_QR_CODE) and says why. Storage that
cannot be reached when an account starts is tried again with backoff (a QR then would throw away a working link)
and, past the host's recovery limit, the account ends FAILED with the reason, never stuck in STARTING.
"""

from __future__ import annotations

import uuid

from core.aws import client
from core.config import get_settings
from infra.local.harness import link_by_qr
from tests.conftest import Api, create_account
from tests.e2e.conftest import Fleet, Phone, account_status, wait_until


def _number() -> str:
    return "1446" + str(uuid.uuid4().int)[:7]


def _snapshot_key(account_id: str) -> str:
    return f"snapshots/{account_id}.bin"


def _linked_and_stopped(tenant_admin: Api, phone: Phone, fleet: Fleet) -> tuple[str, str]:
    """(account id, its number): an account linked on the fleet's host, its snapshot saved, then stopped."""
    business = _number()
    account_id = create_account(tenant_admin)["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    wait_until(lambda: "snapshot saved" in fleet.logs(), 15, "a snapshot")
    assert tenant_admin.post(f"/accounts/{account_id}/stop").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "STOPPED", 30, "STOPPED")
    return account_id, business


def test_an_altered_snapshot_is_never_used_and_the_account_asks_for_a_new_link(
        tenant_admin: Api, phone: Phone, fleet: Fleet) -> None:
    # Given a linked, stopped account whose stored snapshot was then altered (one byte of the ciphertext)
    fleet.start()
    account_id, business = _linked_and_stopped(tenant_admin, phone, fleet)
    s3, bucket = client("s3"), get_settings().media_bucket
    stored = s3.get_object(Bucket=bucket, Key=_snapshot_key(account_id))
    body = bytearray(stored["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=_snapshot_key(account_id), Body=bytes(body), Metadata=stored["Metadata"])

    # When it is started
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202

    # Then it shows a QR with the reason (not STARTING forever, not FAILED), the audit log has the refusal,
    # and linking again works and stores a new snapshot
    shown = wait_until(lambda: (a := tenant_admin.get(f"/accounts/{account_id}").json())["connection_status"]
                       == "SCAN_QR_CODE" and a, 60, "a new QR")
    assert shown["status_reason"].startswith("snapshot_rejected: "), shown["status_reason"]
    assert "link the phone again" in shown["status_reason"]
    audit = wait_until(lambda: [e for e in tenant_admin.get("/audit", params={"account_id": account_id}).json()["items"]
                                if e["action"] == "host.failure"], 30, "the audit entry")
    assert audit[0]["result"] == "failed" and audit[0]["reason"].startswith("snapshot_rejected")
    saved = fleet.logs().count("snapshot saved")
    link_by_qr(tenant_admin, phone, account_id, business)
    wait_until(lambda: fleet.logs().count("snapshot saved") > saved, 15, "a new snapshot")
    assert tenant_admin.get(f"/accounts/{account_id}").json()["connection_status"] == "WORKING"


def test_unreachable_snapshot_storage_is_retried_then_fails_with_the_reason(
        tenant_admin: Api, phone: Phone, fleet: Fleet) -> None:
    # Given a linked, stopped account and a host that cannot reach S3 (its endpoint is a closed port)
    first = fleet.start()
    account_id, _ = _linked_and_stopped(tenant_admin, phone, fleet)
    first.stop()
    broken = fleet.start(AWS_ENDPOINT_URL_S3="http://127.0.0.1:9", HOST_MAX_RECOVERIES="2")

    # When the account is started there
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202

    # Then it is tried again (the host's recovery backoff), then FAILED with why; never a QR
    account = wait_until(lambda: (a := tenant_admin.get(f"/accounts/{account_id}").json())["connection_status"]
                         == "FAILED" and a, 60, "FAILED")
    assert account["status_reason"].startswith("gave up after 2 recoveries: "), account["status_reason"]
    assert "snapshot_unavailable" in account["status_reason"]
    seen = [e["to"] for e in account["status_history"]]
    assert seen[-3:] == ["STOPPED", "STARTING", "FAILED"], seen  # no QR on the way
    assert "snapshot_unavailable" in fleet.logs() and "try 2" in fleet.logs()

    # And once storage is reachable again, a start brings it back from its snapshot, without a QR
    broken.stop()
    fleet.start()
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING", 60, "WORKING from the snapshot")
    history = [e["to"] for e in tenant_admin.get(f"/accounts/{account_id}").json()["status_history"]]
    assert "SCAN_QR_CODE" not in history[history.index("FAILED"):], history
