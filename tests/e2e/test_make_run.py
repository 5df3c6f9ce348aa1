"""What `make run` runs (`python -m infra.local`): the whole gateway, a usable key, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from infra.local.emulator import free_port
from tests.conftest import ROOT
from tests.e2e.conftest import wait_until


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_local_stack_starts_prints_a_key_serves_and_stops_on_ctrl_c(tmp_path: object) -> None:
    ports = {name: free_port() for name in ("aws", "api", "sim")}
    ports["host"] = _two_free_ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "WAGATE_", "HOST_"))}
    env["WAGATE_HOSTS"] = "2"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--aws-port", str(ports["aws"]), "--api-port", str(ports["api"]),
         "--sim-port", str(ports["sim"]), "--host-port", str(ports["host"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        # Given `make run` has printed its key
        key = None
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while key is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            match = re.search(r"(wgk_[0-9a-z]{26}_[A-Za-z0-9_-]+)", line)
            key = match.group(1) if match else None
        assert key, "no API key printed"
        api = f"http://127.0.0.1:{ports['api']}"

        # Then the API, the simulator and the browser host all answer
        created = requests.post(f"{api}/accounts", json={"account_name": "demo"}, headers={"X-Api-Key": key},
                                timeout=10)
        assert created.status_code == 201, created.text
        assert requests.get(f"http://127.0.0.1:{ports['sim']}/sim/health", timeout=5).json()["ok"]
        # (WAGATE_HOSTS=2: two browser hosts, health on the port and the next one, each naming itself)
        healths = [wait_until(lambda p=port: (r := requests.get(f"http://127.0.0.1:{p}/health", timeout=5)).ok
                              and r.json(), 60, "host health") for port in (ports["host"], ports["host"] + 1)]
        assert {h["host_id"] for h in healths} == {"local-host-1", "local-host-2"}
        assert all(isinstance(h["pid"], int) and h["account_ids"] == [] for h in healths)
        children = _descendants(process.pid)
        assert children, "the browser host process is missing"

        # When Ctrl-C is pressed, Then everything it started is gone
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid)
                                   for pid in children), 30, "child processes to exit")
    finally:
        if process.poll() is None:
            process.kill()


def _two_free_ports() -> int:
    """A port whose next port is free too."""
    while True:
        port = free_port()
        try:
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return fh.read().lower()
    except OSError:
        return "zombie"
