"""Readiness that tells the truth: `/health` answers 200 only once an authenticated request can be served."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import requests

from functions.service.api_keys import new_key_string
from infra.local.emulator import free_port
from tests.conftest import ROOT


def test_make_run_health_is_200_only_when_the_bootstrap_key_works_and_the_banner_follows() -> None:
    # Given `make run` (python -m infra.local) starting with a bootstrap key of the user's choosing
    ports = {name: free_port() for name in ("aws", "api", "ws", "sim", "host")}
    key = new_key_string()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "WAGATE_", "HOST_"))}
    env["WAGATE_BOOTSTRAP_API_KEY"] = key
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--aws-port", str(ports["aws"]), "--api-port", str(ports["api"]),
         "--ws-port", str(ports["ws"]), "--sim-port", str(ports["sim"]), "--host-port", str(ports["host"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    banner = threading.Event()
    threading.Thread(target=_watch_banner, args=(process, banner), daemon=True).start()
    api = f"http://127.0.0.1:{ports['api']}"
    session = requests.Session()
    try:
        # When a script polls /health and calls the API the moment it answers 200
        not_ready: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                health = session.get(f"{api}/health", timeout=5)
            except requests.ConnectionError:
                time.sleep(0.01)
                continue
            if health.status_code == 200:
                break
            assert health.status_code == 503, health.text
            not_ready.append(health.json())
            time.sleep(0.01)
        else:
            raise AssertionError("/health never answered 200")
        listed = session.get(f"{api}/accounts", headers={"X-Api-Key": key}, timeout=10)

        # Then that call is served (never a 401 after a 200), and what came before said why it was not ready
        assert listed.status_code == 200, listed.text
        assert health.json()["status"] == "ok"
        for body in not_ready:
            assert body["code"] == "not_ready" and body["details"]["waiting_for"], body

        # And the banner is printed once the browser host is ready too; its /health is 200 from then on
        assert banner.wait(120), "no banner"
        host = requests.get(f"http://127.0.0.1:{ports['host']}/health", timeout=5)
        assert host.status_code == 200 and host.json()["ready"] is True, host.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _watch_banner(process: subprocess.Popen[str], seen: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if re.search(r"wagate is running at", line):
            seen.set()
