"""Runs the browser host as its own process, like the container it is in production."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from infra.local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]


class HostProcess:
    """`python -m browser_host` with the local stack's environment; start, stop, kill -9, restart."""

    def __init__(self, env: dict[str, str], *, health_port: int | None = None, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.health_port = health_port or free_port()
        self.env = {**os.environ, **env, "HOST_HEALTH_PORT": str(self.health_port),
                    "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/health"

    def start(self, timeout: float = 60.0) -> HostProcess:
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "browser_host"], cwd=ROOT, env=self.env,
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        self.wait_healthy(timeout)
        return self

    def health(self) -> dict[str, Any] | None:
        """Its /health body, ready (200) or not yet (503, `ready` false); None while it does not answer."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:  # noqa: S310 - loopback
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            try:
                return dict(json.loads(exc.read())) if exc.code == 503 else None
            except ValueError:
                return None
        except OSError:
            return None

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"browser host exited with {self.process.returncode}")
            health = self.health()
            if health is not None and health.get("ready", True):
                return
            time.sleep(0.2)
        raise TimeoutError("browser host did not become healthy")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: the host snapshots its accounts and closes in order."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the whole process group (the host and its Chromium), like a crashed container."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
