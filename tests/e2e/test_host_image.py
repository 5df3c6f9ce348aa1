"""What the image's settings do, checked on a real host process: the health check script, the metrics listener
for the task's network and the stack's log level (no Docker engine here; tests/unit/test_host_image.py checks
the image's files)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from infra.local.emulator import free_port
from infra.local.host_process import HostProcess
from tests.conftest import ROOT
from tests.e2e.conftest import HOST_ENV

HEALTHCHECK = ROOT / "infra" / "browser_host" / "healthcheck.py"


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, run as the container runs it: a script with the task's environment."""
    env = {**os.environ, "HOST_HEALTH_PORT": str(port)}
    env.pop("HOST_HEALTH_HOST", None)
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=10,
                          check=False)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_check_metrics_listener_and_log_level(runtime: Any, tmp_path: Path) -> None:
    # Given a host started with the image's metrics bind (here on loopback, on a free port) and the stack's
    # log level at debug, in the lower case an operator might type
    metrics_port = free_port()
    log = tmp_path / "host.log"
    host = HostProcess(runtime.host_env(), log_path=log, extra_env={
        **HOST_ENV, "HOST_METRICS_BIND": "127.0.0.1", "HOST_METRICS_PORT": str(metrics_port),
        "POWERTOOLS_LOG_LEVEL": "debug"})
    try:
        host.start()
        # When the image's health check runs against it, Then it reports healthy
        result = healthcheck(host.health_port)
        assert result.returncode == 0, result.stderr

        # And /metrics answers on the metrics listener, which serves nothing else
        status, text = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert 'wagate_accounts{status="WORKING"}' in text and "wagate_messages_sent" in text
        assert get(f"http://127.0.0.1:{metrics_port}/health")[0] == 404
        # ...with nothing that identifies the host or an account (those are in /health, which stays local)
        health = host.health()
        assert health is not None
        assert health["host_id"] not in text
        assert all(account_id not in text for account_id in health["account_ids"])
        assert get(f"http://127.0.0.1:{host.health_port}/metrics")[0] == 200  # still beside /health too

        # And the log level reached the host (asyncio's DEBUG line) but not botocore, whose DEBUG has bodies
        lines = log.read_text().splitlines()
        assert any(" DEBUG asyncio:" in line for line in lines), lines[:20]
        assert not [line for line in lines if " DEBUG botocore" in line or " DEBUG pynamodb" in line]
    finally:
        host.stop()
        print(log.read_text()[-4000:] if log.exists() else "no host log")

    # When the host is gone, Then the health check fails with the reason on stderr
    result = healthcheck(host.health_port)
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
