"""Density: one shared Chromium with a context per account (ours) vs a Chromium per account (peers).

Both models open the same wa_sim page once per account and link it through the simulator's control API
(the page's QR "scanned" with `POST /sim/link`), so every page is logged in like a WORKING account:
(A) shared browser: one `chromium.launch(args=launch_args())`, then `new_context()` + `new_page()` per
    account, as the browser host does;
(B) browser per account: `launch_persistent_context(<own user-data dir>, args=launch_args())` per account,
    its first page used, as whatsapp-web.js, wppconnect and WAHA's WEBJS engine do.
Same binary, same switches ("noui" included), same page, no init scripts: only the process model differs.

Memory: PSS from /proc/<pid>/smaps_rollup summed over every process of a model's browsers: those started
with an environment variable passed to the browsers, plus their descendants. A walk of this process's
children alone would miss the two crashpad handlers per browser, which Chromium double-forks away from its
tree (their parent is init), and they are part of each browser's cost. Playwright's node driver (one for
the whole run, serving both models) is excluded. Median of 3 samples, taken after each rung of the ladder
is linked and has settled. Beside PSS, the distinct physical pages the model maps (/proc/<pid>/pagemap):
other jobs' Chromium processes share the binary with ours and lower our PSS, not that.

    python -m bench.density [--max-accounts 20] [--counts 1,5,10,20] [--idle-seconds 5] [--no-write]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.report import BENCHMARKS, machine
from browser_host.chromium import CHROMIUM_PATH, launch_args
from infra.wa_sim import WaSimServer

SECTION = "Browser host"
SUBSECTION = "Density: shared browser vs a browser per account"
MARKER_ENV = "WAGATE_DENSITY_RUN"
SETTLE_S = 2.0
SAMPLES = 3
LINK_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODELS = {"A": "shared browser (ours)", "B": "browser per account (peers)"}


# --- processes ----------------------------------------------------------------------------------------------

@dataclass
class Proc:
    ppid: int
    start: int  # start time in clock ticks since boot: tells a PID apart from a later reuse
    argv0: bytes
    environ: list[bytes]


def processes() -> dict[int, Proc]:
    """Every process on the machine (that can be read)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            argv0 = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0", 1)[0]
            environ = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if stat[0] == "Z":  # exited, only waiting to be reaped
            continue
        out[int(name)] = Proc(int(stat[1]), int(stat[19]), argv0, environ)
    return out


def ours(table: dict[int, Proc], needle: bytes, prefix: bool = False) -> set[int]:
    """Processes started with the marker entry `needle` (or one starting with it), and their descendants.

    The browser process and its crashpad handlers (exec'd afresh) keep the marker in /proc/<pid>/environ;
    zygote-forked children do not (Chromium's process titles overwrite that memory), so they are found as
    descendants of a marked process.
    """
    found = {pid for pid, proc in table.items()
             if any(entry.startswith(needle) if prefix else entry == needle for entry in proc.environ)}
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _needle(marker: str) -> bytes:
    return f"{MARKER_ENV}={marker}".encode()


#: Every process attributed to this run so far, with its start time: reaped by PID at the end, even if its
#: browser process (which carries the marker) is gone and it was reparented.
SEEN: dict[int, int] = {}


def marked_pids(marker: str) -> list[int]:
    """A model's live processes (its browsers and all their helpers); remembered in SEEN."""
    table = processes()
    pids = ours(table, _needle(marker))
    SEEN.update((pid, table[pid].start) for pid in pids)
    return sorted(pids)


def foreign_chromium(run_prefix: str) -> int:
    """Chromium processes on the machine that are not this run's (they map the same binary: lower our PSS)."""
    table = processes()
    mine = ours(table, _needle(run_prefix), prefix=True)
    return sum(1 for pid, proc in table.items() if b"chrom" in proc.argv0 and pid not in mine)


def still_running(pids: dict[int, int]) -> list[int]:
    """Those of `pids` that still run (same PID, same start time)."""
    table = processes()
    return [pid for pid, start in pids.items() if pid in table and table[pid].start == start]


def kind(pid: int) -> str:
    """browser, renderer, gpu, network, storage, zygote, crashpad, ... from the command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    if b"crashpad_handler" in cmdline.split(b" ", 1)[0]:
        return "crashpad"
    found = re.search(rb"--type=([\w-]+)", cmdline)
    if found is None:
        return "browser"
    name = found.group(1).decode().removesuffix("-process")
    if name == "utility":
        sub = re.search(rb"--utility-sub-type=([\w.]+)", cmdline)
        service = sub.group(1).decode() if sub else "?"
        return {"network.mojom.NetworkService": "network", "storage.mojom.StorageService": "storage"}.get(
            service, f"utility {service}")
    return name


def _rollup(pid: int) -> tuple[int, int] | None:
    """(PSS, USS) in kB."""
    pss = uss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                uss += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return pss, uss


@dataclass
class Memory:
    """One sample of a model's processes."""

    pss_mb: float = 0.0
    uss_mb: float = 0.0
    processes: int = 0
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # kind -> [count, PSS MB]


def sample(marker: str) -> Memory:
    out = Memory()
    for pid in marked_pids(marker):
        rollup = _rollup(pid)
        if rollup is None:
            continue
        pss, uss = rollup[0] / 1024, rollup[1] / 1024
        out.pss_mb += pss
        out.uss_mb += uss
        out.processes += 1
        entry = out.by_kind.setdefault(kind(pid), [0, 0.0])
        entry[0] += 1
        entry[1] += pss
    return out


_VMA = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ", re.M)
_RSS = re.compile(r"^Rss:\s+(\d+) kB", re.M)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def distinct_mb(pids: list[int]) -> float:
    """MB of distinct physical pages mapped by `pids` (/proc/<pid>/pagemap; nan without the rights to see PFNs).

    Unlike PSS it does not depend on other processes mapping the same files (another job's Chromium on
    the machine shares the binary and so lowers PSS): it is the RAM the processes hold, each page once.
    """
    entries: set[int] = set()
    for pid in pids:
        try:
            smaps = Path(f"/proc/{pid}/smaps").read_text()
            with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
                for vma, rss in zip(_VMA.finditer(smaps), _RSS.finditer(smaps), strict=True):
                    if rss.group(1) == "0":
                        continue
                    lo, hi = int(vma.group(1), 16), int(vma.group(2), 16)
                    pagemap.seek(lo // _PAGE * 8)
                    chunk = array.array("Q")
                    chunk.frombytes(pagemap.read((hi - lo) // _PAGE * 8))
                    entries.update(chunk)
        except (OSError, ValueError):  # exited meanwhile
            continue
    # Bit 63: present; bits 0-54: the page frame number (0 when the kernel hides it from us).
    frames = {entry & ((1 << 55) - 1) for entry in entries if entry >> 63}
    if frames and max(frames) == 0:
        return float("nan")
    return len(frames) * _PAGE / 2**20


async def median_memory(marker: str) -> tuple[Memory, int]:
    """The sample with the median PSS of SAMPLES (renderers' GC makes single ones jumpy), and foreign Chromiums."""
    samples, foreign = [], 0
    for _ in range(SAMPLES):
        await asyncio.sleep(SETTLE_S / 2)
        samples.append(sample(marker))
        foreign = max(foreign, foreign_chromium(marker.rsplit("-", 1)[0]))
    return sorted(samples, key=lambda m: m.pss_mb)[len(samples) // 2], foreign


def _ticks(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[pid] = int(fields[11]) + int(fields[12])
    return out


async def idle_cpu(marker: str, seconds: float) -> float:
    """% of one core used by a model's processes over `seconds` of idle."""
    before, t0 = _ticks(marked_pids(marker)), time.monotonic()
    await asyncio.sleep(seconds)
    after, dt = _ticks(list(before)), time.monotonic() - t0
    return sum(after[p] - before[p] for p in after) / CLK_TCK / dt * 100


async def wait_gone(marker: str, timeout: float = 15.0) -> list[int]:
    """Wait for a model's processes (and any seen before) to exit; the ones still there after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        marked_pids(marker)  # adds what runs now to SEEN
        left = still_running(SEEN)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.2)


def kill(pids: list[int]) -> None:
    """SIGKILL by PID, only processes of this run still alive with their recorded start time."""
    for pid in still_running({p: SEEN[p] for p in pids if p in SEEN}):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# --- opening and linking accounts ---------------------------------------------------------------------------

def _phone(model: str, i: int) -> str:
    return f"1555{'1' if model == 'A' else '2'}{i:06d}"


def _scan(sim_url: str, code: str, phone: str) -> int:
    body = json.dumps({"qr": code, "phone_number": phone}).encode()
    request = urllib.request.Request(sim_url + "/sim/link", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass
class Opened:
    to_qr_s: float
    to_linked_s: float
    scans: int


async def boot_and_link(page: Any, sim_url: str, phone: str, t0: float) -> Opened:
    """Open the wa_sim page, read its QR, scan it with the phone, wait for `conn.main_ready`."""
    await page.goto(sim_url)
    await page.wait_for_function("window.WPP && WPP.isFullReady", polling=50)
    deadline = time.monotonic() + LINK_TIMEOUT_S
    scans, to_qr = 0, None
    while time.monotonic() < deadline:
        code = await page.evaluate("WPP.conn.getAuthCode().then((c) => c && c.fullCode)")
        if code:
            to_qr = to_qr or time.perf_counter() - t0
            scans += 1
            if await asyncio.to_thread(_scan, sim_url, code, phone) == 200:
                break
        await asyncio.sleep(0.1)  # no code yet, or it rotated between reading and scanning
    else:
        raise RuntimeError(f"{phone}: the phone did not accept a QR within {LINK_TIMEOUT_S:.0f} s")
    await page.wait_for_function("WPP.conn.isMainReady()", polling=50, timeout=LINK_TIMEOUT_S * 1000)
    return Opened(to_qr or float("nan"), time.perf_counter() - t0, scans)


@dataclass
class Rung:
    accounts: int
    memory: Memory
    foreign_chromium: int
    distinct_mb: float


@dataclass
class Result:
    model: str
    rungs: list[Rung] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)
    idle_cpu: float = float("nan")
    seconds: float = 0.0


def browser_env(tmp: Path, marker: str) -> dict[str, str]:
    """The browsers' environment: ours, plus the marker; temp files and crash reports inside `tmp`."""
    return {**os.environ, MARKER_ENV: marker, "TMPDIR": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config")}


async def _measure(result: Result, marker: str, n: int) -> None:
    memory, foreign = await median_memory(marker)
    distinct = distinct_mb(marked_pids(marker))
    result.rungs.append(Rung(n, memory, foreign, distinct))
    print(f"  {result.model} N={n:>3}: PSS {memory.pss_mb:6.0f} MB, distinct pages {distinct:6.0f} MB, "
          f"USS {memory.uss_mb:6.0f} MB, "
          f"{memory.processes} processes" + (f" ({foreign} foreign Chromium processes)" if foreign else ""),
          flush=True)


async def model_shared(pw: Any, sim: WaSimServer, counts: list[int], idle_s: float, tmp: Path,
                       marker: str) -> Result:
    """(A): one browser, a context + page per account."""
    result, t_begin = Result("A"), time.perf_counter()
    browser = await pw.chromium.launch(executable_path=CHROMIUM_PATH, args=launch_args(),
                                       env=browser_env(tmp, marker))
    try:
        await asyncio.sleep(SETTLE_S)
        await _measure(result, marker, 0)
        for i in range(counts[-1]):
            t0 = time.perf_counter()
            context = await browser.new_context()
            page = await context.new_page()
            result.opened.append(await boot_and_link(page, sim.url, _phone("A", i), t0))
            if i + 1 in counts:
                await asyncio.sleep(SETTLE_S)
                await _measure(result, marker, i + 1)
        result.idle_cpu = await idle_cpu(marker, idle_s)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(browser.close(), 60)
    result.seconds = time.perf_counter() - t_begin
    return result


async def model_per_account(pw: Any, sim: WaSimServer, counts: list[int], idle_s: float, tmp: Path,
                            marker: str) -> Result:
    """(B): one browser per account, each a persistent context on its own user-data dir."""
    result, t_begin = Result("B"), time.perf_counter()
    contexts: list[Any] = []
    try:
        await _measure(result, marker, 0)
        for i in range(counts[-1]):
            t0 = time.perf_counter()
            context = await pw.chromium.launch_persistent_context(
                str(tmp / "profiles" / f"account-{i}"), executable_path=CHROMIUM_PATH, args=launch_args(),
                headless=True, env=browser_env(tmp, marker))
            contexts.append(context)
            page = context.pages[0] if context.pages else await context.new_page()
            result.opened.append(await boot_and_link(page, sim.url, _phone("B", i), t0))
            if i + 1 in counts:
                await asyncio.sleep(SETTLE_S)
                await _measure(result, marker, i + 1)
        result.idle_cpu = await idle_cpu(marker, idle_s)
    finally:
        await asyncio.gather(*(asyncio.wait_for(c.close(), 60) for c in contexts), return_exceptions=True)
    result.seconds = time.perf_counter() - t_begin
    return result


@contextlib.asynccontextmanager
async def playwright_in(tmp: Path) -> AsyncIterator[Any]:
    """Playwright whose driver keeps its temp files (e.g. launch()'s profile dir) inside `tmp`."""
    from playwright.async_api import async_playwright

    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)  # read once, when the driver process starts
    try:
        manager = async_playwright()
        pw = await manager.start()
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
    try:
        yield pw
    finally:
        await pw.stop()


async def run(counts: list[int], idle_s: float) -> dict[str, Any]:
    """Both models against one simulator; every browser, process and temp file is gone on return."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is not None:  # SIGTERM cancels the run, so the cleanup below still happens
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    run_id = uuid.uuid4().hex[:12]
    markers = {m: f"{run_id}-{m}" for m in MODELS}
    tmp = Path(tempfile.mkdtemp(prefix="wagate-density-"))
    out: dict[str, Any] = {"load_start": os.getloadavg(), "date": _date(), "leftovers": 0}
    t_begin = time.perf_counter()
    try:
        with WaSimServer(port=0, qr_interval=20.0) as sim:
            async with playwright_in(tmp) as pw:
                out["A"] = await model_shared(pw, sim, counts, idle_s, tmp, markers["A"])
                if left := await wait_gone(markers["A"]):
                    print(f"  (A) {len(left)} processes outlived browser.close(): killing them", flush=True)
                    out["leftovers"] += len(left)
                    kill(left)
                sim.reset()
                out["B"] = await model_per_account(pw, sim, counts, idle_s, tmp, markers["B"])
    finally:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGTERM)
        for marker in markers.values():  # also what a failure or cancellation left behind
            if left := await wait_gone(marker, timeout=10.0):
                out["leftovers"] += len(left)
                kill(left)
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_end"] = os.getloadavg()
    out["total_s"] = time.perf_counter() - t_begin
    return out


def _date() -> str:
    try:
        return subprocess.run(["date"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def _chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM_PATH, "--version"], capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# --- report -------------------------------------------------------------------------------------------------

def slope(rungs: list[Rung], distinct: bool = False) -> float:
    """MB per extra account: least-squares slope of PSS (or distinct pages) over the rungs with N >= 1."""
    points = [(r.accounts, r.distinct_mb if distinct else r.memory.pss_mb) for r in rungs if r.accounts >= 1]
    if len(points) < 2:
        return float("nan")
    return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope


def crossover(a: list[Rung], b: list[Rung], distinct: bool = False) -> float:
    """N at which least-squares lines of (A)'s and (B)'s PSS (or distinct pages) over N >= 1 cross (nan: none)."""
    fits = []
    for rungs in (a, b):
        points = [(r.accounts, r.distinct_mb if distinct else r.memory.pss_mb) for r in rungs if r.accounts >= 1]
        if len(points) < 2:
            return float("nan")
        fits.append(statistics.linear_regression([x for x, _ in points], [y for _, y in points]))
    fa, fb = fits
    return (fa.intercept - fb.intercept) / (fb.slope - fa.slope) if fb.slope != fa.slope else float("nan")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] if ordered else float("nan")


def _count(m: Memory, kind_name: str) -> int:
    return int(m.by_kind.get(kind_name, [0, 0.0])[0])


def _pss(m: Memory, kind_name: str) -> float:
    return float(m.by_kind.get(kind_name, [0, 0.0])[1])


def _mb(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def _ratio(b: float, a: float) -> str:
    return f"{b / a:.2f}" if a > 0 and b == b else "-"


def render(out: dict[str, Any], command: str) -> str:
    a, b = out["A"], out["B"]
    by_n = {r.accounts: (r, s) for r, s in zip(a.rungs, b.rungs, strict=True)}
    top = max(by_n)
    ta, tb = (m.memory for m in by_n[top])
    sa, sb = slope(a.rungs), slope(b.rungs)
    da, db = slope(a.rungs, distinct=True), slope(b.rungs, distinct=True)
    first = min(n for n in by_n if n >= 1)
    rows = [f"| {n} | {ra.memory.pss_mb:.0f} | {_mb(ra.distinct_mb)} | {ra.memory.processes} | "
            f"{rb.memory.pss_mb:.0f} | {_mb(rb.distinct_mb)} | {rb.memory.processes} | "
            f"{_ratio(rb.memory.pss_mb, ra.memory.pss_mb) if n else '-'} | "
            f"{_ratio(rb.distinct_mb, ra.distinct_mb) if n else '-'} | "
            f"{ra.foreign_chromium} / {rb.foreign_chromium} |" for n, (ra, rb) in sorted(by_n.items())]
    dta, dtb = by_n[top][0].distinct_mb, by_n[top][1].distinct_mb
    open_a, open_b = [o.to_linked_s for o in a.opened], [o.to_linked_s for o in b.opened]
    qr_a, qr_b = [o.to_qr_s for o in a.opened], [o.to_qr_s for o in b.opened]
    med_a, med_b = statistics.median(open_a), statistics.median(open_b)
    kinds = sorted(set(ta.by_kind) | set(tb.by_kind), key=lambda k: -tb.by_kind.get(k, [0, 0.0])[1])

    def cell(m: Memory, k: str) -> str:
        count, mb = m.by_kind.get(k, [0, 0.0])
        return f"{count:.0f} / {mb:.0f}" if count else "-"

    kind_rows = [f"| {k} | {cell(ta, k)} | {cell(tb, k)} |" for k in kinds]
    # Crossing by distinct pages when known: PSS moves with other jobs' Chromium processes between samples.
    robust = all(r.distinct_mb == r.distinct_mb for pair in by_n.values() for r in pair)

    def size(r: Rung) -> float:
        return r.distinct_mb if robust else r.memory.pss_mb

    measure = "distinct pages" if robust else "PSS"
    above = [n for n, (ra, rb) in sorted(by_n.items()) if n and size(rb) > size(ra) * 1.05]
    level = [n for n, (ra, rb) in sorted(by_n.items()) if n and n not in above]
    if not above:
        crossing = f"by {measure}, (B) was not more than 5 % above (A) at any measured N up to {top}"
    elif level and max(level) > min(above):
        crossing = f"by {measure}, (B) was above (A) at N={', '.join(map(str, above))} only: noisy"
    else:
        crossing = f"by {measure}, (B) is more than 5 % above (A) from the N={min(above)} rung on" + (
            f" (within 5 % at N={', '.join(map(str, level))})" if level else "")
        if (cross := crossover(a.rungs, b.rungs, distinct=robust)) == cross:
            crossing += f"; straight lines through the rungs cross at N = {cross:.1f}"
    load_s = " / ".join(f"{x:.1f}" for x in out["load_start"])
    load_e = " / ".join(f"{x:.1f}" for x in out["load_end"])
    crashpad_b = tb.by_kind.get("crashpad", [0, 0.0])
    base_a = by_n[0][0].memory.pss_mb
    helpers = {k: round(v[0] / top) for k, v in tb.by_kind.items() if k != "renderer"}
    per_browser = f"{sum(helpers.values())} processes (" + ", ".join(
        f"{k} {n}" for k, n in sorted(helpers.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"
    lines = [
        f"Measured {machine()} (`date`: {out['date']}; load average {load_s} at the start, {load_e} at the end; "
        f"the machine is shared) with `{command}`; {out['chromium']}, Playwright {out['playwright']}. "
        f"Whole run {out['total_s']:.0f} s ((A) {a.seconds:.0f} s, (B) {b.seconds:.0f} s).",
        "",
        "Same wa_sim page and the same `launch_args()` (\"noui\" switches) in both models; every page is linked "
        "through the simulator's control API (QR read from the page, `POST /sim/link`, wait for "
        "`conn.main_ready`), one account at a time; no init scripts in either. **(A) shared browser** (ours): one "
        "`chromium.launch()`, `new_context()` + `new_page()` per account. **(B) browser per account** "
        "(whatsapp-web.js, wppconnect, WAHA's WEBJS engine): `launch_persistent_context()` on its own user-data "
        "dir per account, its first page used.",
        "",
        "| accounts | (A) PSS MB | (A) distinct MB | (A) processes | (B) PSS MB | (B) distinct MB | (B) processes |"
        " B/A PSS | B/A distinct | other jobs' Chromium processes (A / B) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| measure | (A) shared browser | (B) browser per account | B/A |",
        "|---|---|---|---|",
        f"| total PSS at N={top} | {ta.pss_mb:.0f} MB | {tb.pss_mb:.0f} MB | **{_ratio(tb.pss_mb, ta.pss_mb)}** |",
        f"| MB per account at N={top} (PSS / N) | {ta.pss_mb / top:.1f} | {tb.pss_mb / top:.1f} | "
        f"{_ratio(tb.pss_mb, ta.pss_mb)} |",
        f"| MB per extra account (least-squares slope of PSS, N={first}..{top}) | {sa:.1f} | {sb:.1f} | "
        f"**{_ratio(sb, sa)}** |",
        f"| distinct resident pages at N={top} | {_mb(dta)} MB | {_mb(dtb)} MB | {_ratio(dtb, dta)} |",
        f"| MB per extra account, from distinct pages | {_mb(da, 1)} | {_mb(db, 1)} | {_ratio(db, da)} |",
        f"| USS (private memory) at N={top} | {ta.uss_mb:.0f} MB | {tb.uss_mb:.0f} MB | "
        f"{_ratio(tb.uss_mb, ta.uss_mb)} |",
        f"| processes at N={top} | {ta.processes} | {tb.processes} | {_ratio(tb.processes, ta.processes)} |",
        f"| open time per account, median (p95) | {med_a:.2f} s ({_pct(open_a, 0.95):.2f} s) | {med_b:.2f} s "
        f"({_pct(open_b, 0.95):.2f} s) | **{_ratio(med_b, med_a)}** |",
        f"| of which until the page shows a QR, median | {statistics.median(qr_a):.2f} s | "
        f"{statistics.median(qr_b):.2f} s | {_ratio(statistics.median(qr_b), statistics.median(qr_a))} |",
        f"| idle CPU at N={top}, % of one core over {out['idle_seconds']:.0f} s | {a.idle_cpu:.1f} | "
        f"{b.idle_cpu:.1f} | - |",
        "",
        f"Where the memory is at N={top} (processes / PSS MB, by Chromium process type):",
        "",
        "| process type | (A) | (B) |",
        "|---|---|---|",
        *kind_rows,
        "",
        "PSS and USS (Private_Clean + Private_Dirty: what killing the processes frees) from "
        "`/proc/<pid>/smaps_rollup`, summed over every process of a model's browsers; \"distinct\" = the distinct "
        "physical pages those processes map (`/proc/<pid>/pagemap`, each page counted once; one reading per rung, "
        "after the PSS samples), the RAM the model "
        "holds whatever else runs: other jobs' Chromium processes map the same binary and libraries and so "
        "lower PSS (more so for (A), whose few processes carry the whole binary), not this. The processes are "
        "found by an "
        "environment variable given to the browsers, plus their descendants: Chromium double-forks its 2 crashpad "
        "handlers per browser away from its tree (to init), so a walk of this process's descendants, as "
        "`bench/snapshots.py` and `bench/browser_host.py` do, misses them "
        f"({crashpad_b[1]:.0f} MB of (B) at N={top}). Playwright's node driver is excluded: one driver served "
        "both models here. Median of 3 samples, "
        f"{SETTLE_S:.0f} s after the rung's last link; row 0 is the bare browser for (A) and nothing for (B). "
        "Open time = from `new_context()` (A) or `launch_persistent_context()` (B) to `conn.main_ready` after "
        "the scan, so (B) includes starting a browser.",
        "",
        f"**Reading.** At {top} accounts a browser per account takes **{_ratio(tb.pss_mb, ta.pss_mb)}x** the "
        f"memory of a shared browser by PSS ({tb.pss_mb / top:.0f} vs {ta.pss_mb / top:.0f} MB per account; "
        f"{_ratio(dtb, dta)}x by distinct pages) and each extra account costs **{_ratio(sb, sa)}x** as much "
        f"({sb:.0f} vs {sa:.0f} MB; {_ratio(db, da)}x, {_mb(db)} vs {_mb(da)} MB, by distinct pages); opening one "
        f"takes {_ratio(med_b, med_a)}x as long ({med_b:.2f} vs {med_a:.2f} s). The shared browser's fixed cost "
        f"({base_a:.0f} MB PSS, {_mb(by_n[0][0].distinct_mb)} MB distinct, before any account) is paid once; "
        f"{crossing}. At N={top}, (A)'s {_count(ta, 'renderer')} renderers hold {_pss(ta, 'renderer'):.0f} MB "
        f"of PSS and its other {ta.processes - _count(ta, 'renderer')} processes {ta.pss_mb - _pss(ta, 'renderer'):.0f}"
        f" MB; (B)'s renderers hold {_pss(tb, 'renderer'):.0f} MB and its other "
        f"{tb.processes - _count(tb, 'renderer')} processes {tb.pss_mb - _pss(tb, 'renderer'):.0f} MB: every account "
        f"brings {per_browser} of its own besides its renderer. The renderer (the page itself) costs about the "
        "same in both models; real WhatsApp Web's is far heavier than wa_sim's (300-500 MB per session "
        "reported), so there the ratio would be smaller while the absolute difference per account should stay "
        "about the same.",
    ]
    if out["leftovers"]:
        lines += ["", f"{out['leftovers']} Chromium processes outlived their browser's close and were killed."]
    return "\n".join(lines)


def write_subsection(body: str) -> None:
    """Replace (or add at the end of `## Browser host`) the `### Density...` subsection of docs/benchmarks.md."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    sub = f"### {SUBSECTION}\n\n{body.strip()}\n"
    section = re.search(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    if section is None:
        text = text.rstrip() + f"\n\n## {SECTION}\n\n{sub}"
    else:
        block = section.group(0)
        pattern = re.compile(rf"^### {re.escape(SUBSECTION)}\n.*?(?=^##+ |\Z)", re.S | re.M)
        if pattern.search(block):
            block = pattern.sub(lambda _: sub + "\n", block)
        else:
            block = block.rstrip() + "\n\n" + sub + "\n"
        text = text[:section.start()] + block + text[section.end():]
    BENCHMARKS.write_text(text.rstrip() + "\n")


def main(argv: list[str] | None = None) -> None:
    """Run both models, print the table, and write the subsection to docs/benchmarks.md unless --no-write."""
    parser = argparse.ArgumentParser(prog="python -m bench.density", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-accounts", type=int, default=20, help="accounts per model at the top of the ladder")
    parser.add_argument("--counts", default="1,5,10,20", help="rungs at which memory is measured (capped by "
                        "--max-accounts, which is always one)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU window at the top rung")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if args.max_accounts < 1:
        parser.error("--max-accounts must be at least 1")
    counts = sorted({c for c in (int(x) for x in args.counts.split(",")) if 1 <= c <= args.max_accounts}
                    | {args.max_accounts})
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.density" + (" " + " ".join(given) if given else "")
    print(f"ladder {counts}; (A) shared browser, then (B) browser per account", flush=True)
    out = asyncio.run(run(counts, args.idle_seconds))
    out.update(idle_seconds=args.idle_seconds, chromium=_chromium_version(), playwright=version("playwright"))
    body = render(out, command)
    print()
    print(body)
    if out["leftovers"]:
        print(f"\n(killed {out['leftovers']} Chromium processes that outlived their browser's close)")
    if not args.no_write:
        write_subsection(body)


if __name__ == "__main__":
    main()
