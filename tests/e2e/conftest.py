"""End-to-end fixtures: the browser host as a real process against wa_sim and the local stack."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.host_process import HostProcess
from tests.conftest import Api

# A loaded 2-core machine can stall one evaluate for seconds: the heartbeat timeout leaves room for that, so a
# slow page is not mistaken for a dead one (which would add a recovery to exact status histories).
HOST_ENV = {
    "HOST_RECONCILE_INTERVAL": "0.5", "HOST_INBOX_WAIT_SECONDS": "1", "HOST_HEARTBEAT_INTERVAL": "2",
    "HOST_HEARTBEAT_TIMEOUT": "15", "HOST_NOT_CONNECTED_TIMEOUT": "90", "HOST_RECOVERY_BACKOFF": "0.2",
    "HOST_MAX_ACCOUNTS": "20", "HOST_LEASE_TTL": "8", "HOST_SWEEP_INTERVAL": "2",
}


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


class Phone:
    """The simulated WhatsApp network: the business's phone and its contacts."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        status, data = self.call("POST", path, body)
        assert status < 300, (status, data)
        return data

    def received(self, contact: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/sim/contacts/{contact}/messages")[1]["messages"])


@pytest.fixture(scope="session")
def phone(runtime: Any) -> Phone:
    return Phone(runtime.sim.url)


@pytest.fixture
def host(runtime: Any, tmp_path: Path) -> Iterator[HostProcess]:
    """A browser host process for one test (its log is printed when the test fails)."""
    process = HostProcess(runtime.host_env(), log_path=tmp_path / "host.log", extra_env=HOST_ENV).start()
    yield process
    process.stop()
    _stop_all_accounts()
    log = tmp_path / "host.log"
    if log.exists():
        print(log.read_text()[-6000:])


def _stop_all_accounts() -> None:
    """Test cleanup: the next test's host should not reopen this test's accounts."""
    from core.store.accounts import AccountRepository
    from core.store.tables import AccountItem

    for account in AccountRepository().needing_a_host():
        account.update(actions=[AccountItem.desired_state.set("stopped")])


def account_status(api: Api, account_id: str) -> str:
    return str(api.get(f"/accounts/{account_id}").json()["connection_status"])


def link_by_qr(api: Api, phone: Phone, account_id: str, number: str) -> None:
    """Start the account, wait for its QR, scan it with the phone, wait for WORKING."""
    assert api.post(f"/accounts/{account_id}/start").status_code == 202
    qr = wait_until(lambda: (r := api.get(f"/accounts/{account_id}/qr", params={"format": "raw"})).status_code == 200
                    and r.json(), 45, "a QR code")
    phone.post("/sim/link", {"qr": qr["value"], "phone_number": number})
    wait_until(lambda: account_status(api, account_id) == "WORKING", 30, "WORKING")
