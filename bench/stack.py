"""Processes the benchmarks start beside the local stack: moto's server, the counting AWS proxy, and the
bookkeeping to measure (CPU by process kind) and to clean up (every process a host started) after them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parents[1]


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"{what} did not start")


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server as its own process (AWS does not share the API's interpreter in production)."""
    from infra.local.emulator import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/moto-api/data.json", process, "moto server")
    return process, url


def start_proxy(upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    """`bench.aws_proxy` in front of `upstream`, as its own process."""
    from infra.local.emulator import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.aws_proxy", "--upstream", upstream, "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/__bench/counts", process, "counting proxy")
    return process, url


def proxy_counts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/__bench/counts", timeout=10) as response:
        return list(json.loads(response.read()))


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL of its process group (started with `start_new_session`) if it does not exit."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


# --- processes by their TMPDIR -----------------------------------------------------------------------------
# Playwright starts Chromium in a session of its own and Chromium double-forks its crashpad handlers away to
# init, so neither a walk of the host's descendants nor its session finds them all. Every one of them inherits
# TMPDIR, though: each host is given a TMPDIR of its own under the benchmark's work dir (the host passes its
# temp folder, inside it, to Chromium), so the environment says whose a process is.

def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state, 11/12 = utime/stime)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def marked_pids(tmpdir: str) -> dict[int, str]:
    """Live processes whose TMPDIR is `tmpdir` or below it, each with its kind: host, driver, chromium, other."""
    needle = b"\0TMPDIR=" + tmpdir.rstrip("/").encode()
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            environ = b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        at = environ.find(needle)
        if at < 0 or environ[at + len(needle):at + len(needle) + 1] not in (b"", b"/", b"\0"):
            continue
        argv = cmdline.split(b"\0")
        found[pid] = ("host" if b"browser_host" in argv[:4] else "chromium" if b"chrom" in argv[0]
                      else "driver" if b"node" in argv[0] else "other")
    return found


def kill_marked(tmpdir: str) -> int:
    """SIGKILL every process under `tmpdir` (a killed host's Chromium, a stuck driver); how many."""
    killed = 0
    for pid in marked_pids(tmpdir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def ticks(pids: dict[int, str]) -> dict[int, tuple[str, int]]:
    out = {}
    for pid, kind in pids.items():
        if (fields := stat_fields(pid)) is not None:
            out[pid] = (kind, int(fields[11]) + int(fields[12]))
    return out


class CpuMeter:
    """CPU seconds of hosts' process trees (by kind) and of single processes between `start()` and `read()`.

    Processes born inside the window count in full; a process that exits inside it loses its ticks (none do
    while a host only sends)."""

    def __init__(self, tmpdirs: list[str], singles: dict[str, int] | None = None) -> None:
        self.tmpdirs = tmpdirs
        self.singles = singles or {}
        self.before: dict[int, tuple[str, int]] = {}
        self.t0 = 0.0

    def _now(self) -> dict[int, tuple[str, int]]:
        pids: dict[int, str] = {}
        for tmpdir in self.tmpdirs:
            pids.update(marked_pids(tmpdir))
        pids.update({pid: name for name, pid in self.singles.items()})
        return ticks(pids)

    def start(self) -> CpuMeter:
        self.before, self.t0 = self._now(), time.monotonic()
        return self

    def read(self) -> dict[str, float]:
        """CPU seconds by kind (host, driver, chromium, other, plus each single's name), `tree` (the hosts'
        sum) and `wall` (seconds)."""
        after, wall = self._now(), time.monotonic() - self.t0
        out: dict[str, float] = dict.fromkeys(("host", "driver", "chromium", "other", *self.singles), 0.0)
        for pid, (kind, used) in after.items():
            start = self.before.get(pid, (kind, 0))[1]
            out[kind] = out.get(kind, 0.0) + (used - start) / CLK_TCK
        out["tree"] = sum(out[k] for k in ("host", "driver", "chromium", "other"))
        out["wall"] = wall
        return out
