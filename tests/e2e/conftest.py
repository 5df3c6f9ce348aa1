"""End-to-end fixtures: the browser host as a real process against wa_sim and the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.harness import Fleet, Phone, account_status, link_by_qr, send_text, wait_until
from infra.local.host_process import HostProcess
from infra.local.receiver import Receiver

__all__ = ["HOST_ENV", "Fleet", "Phone", "account_status", "link_by_qr", "send_text", "stop_all_accounts", "wait_until"]

# A loaded 2-core machine can stall one evaluate for seconds: the heartbeat timeout leaves room for that, so a
# slow page is not mistaken for a dead one (which would add a recovery to exact status histories).
HOST_ENV = {
    "HOST_RECONCILE_INTERVAL": "0.5", "HOST_INBOX_WAIT_SECONDS": "1", "HOST_HEARTBEAT_INTERVAL": "2",
    "HOST_HEARTBEAT_TIMEOUT": "15", "HOST_NOT_CONNECTED_TIMEOUT": "90", "HOST_RECOVERY_BACKOFF": "0.2",
    "HOST_MAX_ACCOUNTS": "20", "HOST_LEASE_TTL": "8", "HOST_SWEEP_INTERVAL": "2",
}


@pytest.fixture(scope="session")
def phone(runtime: Any) -> Phone:
    return Phone(runtime.sim.url)


@pytest.fixture
def host(runtime: Any, tmp_path: Path) -> Iterator[HostProcess]:
    """A browser host process for one test (its log is printed when the test fails)."""
    process = HostProcess(runtime.host_env(), log_path=tmp_path / "host.log", extra_env=HOST_ENV).start()
    yield process
    process.stop()
    stop_all_accounts()
    log = tmp_path / "host.log"
    if log.exists():
        print(log.read_text()[-6000:])


WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"


@pytest.fixture
def tenant_webhook(tenant_admin: Any, receiver: Receiver) -> Iterator[str]:
    """A tenant webhook to `receiver` at `/hooks` (secret WEBHOOK_SECRET), removed afterwards so later tests'
    events are not retried against a receiver that is gone. Yields the webhook id."""
    created = tenant_admin.post("/webhooks", json={"url": receiver.url("/hooks"), "secret": WEBHOOK_SECRET})
    assert created.status_code == 201, created.text
    webhook_id = str(created.json()["webhook_id"])
    yield webhook_id
    tenant_admin.delete(f"/webhooks/{webhook_id}")


@pytest.fixture
def fleet(runtime: Any, tmp_path: Path) -> Iterator[Fleet]:
    """Browser hosts started by the test (`fleet.start()`); all stopped afterwards, their logs printed."""
    group = Fleet(runtime.host_env(), tmp_path, HOST_ENV)
    yield group
    group.stop_all()
    stop_all_accounts()
    print(group.logs())


def stop_all_accounts() -> None:
    """Test cleanup: the next test's host should not reopen this test's accounts."""
    from core.store.accounts import AccountRepository
    from core.store.tables import AccountItem

    for account in AccountRepository().needing_a_host():
        account.update(actions=[AccountItem.desired_state.set("stopped")])
