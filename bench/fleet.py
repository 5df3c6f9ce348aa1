"""Fleet: takeover after SIGKILL, start → QR → WORKING, enqueue → sent with CPU and AWS calls per message,
and three hosts against one. Each figure is printed against a goal (a target, not an assertion).

    python -m bench.fleet [--quick] [--ttls 30,6] [--takeover-runs 10] [--seq-accounts 10] [--batch 20]
                          [--latency-accounts 10] [--latency-texts 30] [--latency-rate 5]
                          [--throughput-accounts 30] [--throughput-texts 20] [--hosts 3]
                          [--skip takeover,open,latency,throughput] [--no-proxy] [--no-write]

Everything runs on this machine: moto's server in its own process, a counting proxy in front of it
(`bench/aws_proxy.py`: every AWS call of the hosts and of the local API, by operation), the local API and
wa_sim in this process (`infra/local/runtime.py`), and `python -m browser_host` processes with Debian
Chromium (`infra/local/harness.py` `Fleet`). Each host gets a TMPDIR of its own under this run's work dir,
which is how its processes (Chromium's included) are found for CPU figures and for the final clean-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _name, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                      ("AWS_DEFAULT_REGION", "us-east-1"), ("POWERTOOLS_TRACE_DISABLED", "true"),
                      ("POWERTOOLS_METRICS_DISABLED", "true"), ("POWERTOOLS_LOG_LEVEL", "WARNING")):
    os.environ.setdefault(_name, _value)

from bench.report import machine, pct, source_state, ts, write_section  # noqa: E402
from bench.stack import (  # noqa: E402
    CpuMeter,
    kill_marked,
    proxy_counts,
    start_moto,
    start_proxy,
    stop_process,
)
from infra.local.harness import Api, Fleet, Phone, link_by_qr, send_text, wait_until  # noqa: E402
from infra.local.host_process import HostProcess  # noqa: E402

GOAL_TAKEOVER_EXTRA_S = 5.0
GOAL_START_TO_QR_S = 1.0
GOAL_ENQUEUE_TO_SENT_MS = 150.0
GOAL_CPU_PER_MESSAGE_MS = 20.0
STACK_CALLER = "test"  # the access key of this process (the local API, its SQS pollers and schedules)


# --- small helpers --------------------------------------------------------------------------------------------

def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def number(prefix: str) -> str:
    return prefix + str(uuid.uuid4().int)[:7]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def metrics(host: HostProcess) -> dict[str, float]:
    try:
        with urllib.request.urlopen(host.health_url.rsplit("/", 1)[0] + "/metrics", timeout=5) as response:
            lines = response.read().decode().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        if line.startswith("wagate_") and "{" not in line:
            name, value = line.split()
            out[name.removeprefix("wagate_")] = float(value)
    return out


def live(hosts: list[HostProcess]) -> list[HostProcess]:
    return [h for h in hosts if h.process is not None and h.process.poll() is None]


def log_summary(paths: list[Path]) -> dict[str, Any]:
    levels = {"ERROR": 0, "WARNING": 0, "Traceback": 0}
    samples: dict[str, int] = defaultdict(int)
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            for level in levels:
                if f" {level} " in line or line.startswith(level):
                    levels[level] += 1
                    if level != "Traceback":
                        text = line.split(": ", 1)[-1]
                        key = " ".join(w for w in text.split() if not w.startswith(("acc_", "msg_", "host-")))
                        samples[f"{level}: {key[:100]}"] += 1
    return {"levels": levels, "samples": sorted(samples.items(), key=lambda kv: -kv[1])[:5]}


# --- the stack ------------------------------------------------------------------------------------------------

@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    runtime: Any
    api: Api
    phone: Phone
    proxy_url: str | None
    moto_pid: int
    proxy_pid: int | None
    fleets: list[Fleet] = field(default_factory=list)
    host_logs: list[Path] = field(default_factory=list)
    log_summary: dict[str, Any] = field(default_factory=dict)

    def fleet(self, name: str, env: dict[str, str]) -> Fleet:
        log_dir = self.workdir / name
        log_dir.mkdir()
        fleet = Fleet(self.runtime.host_env(), log_dir, env)
        self.fleets.append(fleet)
        return fleet

    def start_host(self, fleet: Fleet, **extra: str) -> HostProcess:
        """A host with its own TMPDIR (how its processes are found) and its own AWS key (how its calls are
        counted apart)."""
        index = len(fleet.hosts)
        tmp = fleet.log_dir / f"t{index}"
        tmp.mkdir()
        host = fleet.start(TMPDIR=str(tmp), AWS_ACCESS_KEY_ID=f"host-{fleet.log_dir.name}-{index}", **extra)
        assert host.log_path is not None
        self.host_logs.append(host.log_path)
        return host

    def counts(self) -> list[dict[str, Any]]:
        return proxy_counts(self.proxy_url) if self.proxy_url else []

    def cpu(self, hosts: list[HostProcess]) -> CpuMeter:
        singles = {"moto": self.moto_pid, "stack": os.getpid()}
        if self.proxy_pid:
            singles["proxy"] = self.proxy_pid
        return CpuMeter([h.env["TMPDIR"] for h in hosts], singles)

    def stop_fleet(self, fleet: Fleet) -> None:
        fleet.stop_all()
        kill_marked(str(fleet.log_dir))


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[Bench]:
    from functions.service.api_keys import ensure_bootstrap_key
    from functions.service.context import services
    from infra.local.emulator import free_port
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    workdir = Path(tempfile.mkdtemp(prefix="wbf-"))  # short: Chromium's socket paths must fit 108 bytes
    moto = proxy = None
    runtime = None
    bench: Bench | None = None
    try:
        moto, moto_url = start_moto()
        endpoint = moto_url
        if not args.no_proxy:
            proxy, endpoint = start_proxy(moto_url)
        runtime = LocalRuntime(RuntimeConfig(
            endpoint_url=endpoint, aws_port=free_port(), api_port=free_port(), ws_port=free_port(),
            with_sim=True, sim_port=0, sim_qr_interval=args.qr_interval,
            extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING", "API_RATE_LIMITS": GENEROUS_API_RATES})).start()
        key, _ = ensure_bootstrap_key(services(), None)
        bench = Bench(args, workdir, runtime, Api(runtime.api_url, key), Phone(runtime.sim.url),
                      None if proxy is None else endpoint, moto.pid, None if proxy is None else proxy.pid)
        yield bench
    finally:
        if bench is not None:
            for fleet in bench.fleets:
                with contextlib.suppress(Exception):
                    fleet.stop_all()
        leftovers = kill_marked(str(workdir))
        if leftovers:
            say(f"killed {leftovers} leftover host/browser processes")
        if runtime is not None:
            with contextlib.suppress(Exception):
                runtime.stop()
        stop_process(proxy)
        stop_process(moto)
        if bench is not None:
            bench.log_summary = log_summary(bench.host_logs)
        if args.keep_logs:
            say(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- opening accounts (b) -------------------------------------------------------------------------------------

@dataclass
class Opened:
    account_id: str
    business: str
    contact: str
    start_to_qr: float = float("nan")
    scan_to_working: float = float("nan")
    rescans: int = 0
    error: str | None = None
    started_wall: float = float("nan")
    start_to_claim: float = float("nan")  # from the host's log: "account …: lease N taken"

    @property
    def ok(self) -> bool:
        return self.error is None and self.scan_to_working == self.scan_to_working


def create_accounts(api: Api, n: int, name: str) -> list[Opened]:
    out = []
    for i in range(n):
        response = api.post("/accounts", json={"account_name": f"{name} {i}"})
        assert response.status_code == 201, response.text
        out.append(Opened(response.json()["account_id"], number("1555"), number("1666")))
    return out


def scan_and_wait(api: Api, phone: Phone, account: Opened, qr: str, timeout: float) -> None:
    """Scan `qr` (read again when it rotated meanwhile), then wait for WORKING."""
    t_scan = time.monotonic()
    while True:
        status, _ = phone.call("POST", "/sim/link", {"qr": qr, "phone_number": account.business})
        if status < 300:
            break
        account.rescans += 1
        if time.monotonic() - t_scan > timeout:
            raise AssertionError("the phone kept refusing the QR")
        response = api.get(f"/accounts/{account.account_id}/qr", params={"format": "raw"})
        qr = response.json()["value"] if response.status_code == 200 else qr
        time.sleep(0.1)
    wait_until(lambda: api.get(f"/accounts/{account.account_id}").json()["connection_status"] == "WORKING",
               timeout, "WORKING", every=0.05)
    account.scan_to_working = time.monotonic() - t_scan


def open_sequential(bench: Bench, accounts: list[Opened], timeout: float = 90) -> None:
    """One account at a time: start, poll the QR every 50 ms, scan, poll WORKING every 50 ms."""
    api = bench.api
    for account in accounts:
        try:
            t0, account.started_wall = time.monotonic(), time.time()
            assert api.post(f"/accounts/{account.account_id}/start").status_code == 202
            response = wait_until(lambda a=account: (r := api.get(f"/accounts/{a.account_id}/qr",
                                                                  params={"format": "raw"})).status_code == 200 and r,
                                  timeout, "a QR", every=0.05)
            account.start_to_qr = time.monotonic() - t0
            scan_and_wait(api, bench.phone, account, response.json()["value"], timeout)
        except AssertionError as exc:
            account.error = str(exc)[:200]
        say(f"  {account.account_id}: start->QR {account.start_to_qr:.2f} s, scan->WORKING "
            f"{account.scan_to_working:.2f} s{' (' + account.error + ')' if account.error else ''}")


def open_batch(bench: Bench, accounts: list[Opened], timeout: float = 180) -> float:
    """All at once: every start posted together, one thread listing the accounts every 100 ms (status
    SCAN_QR_CODE is written with the QR), each QR scanned as soon as it shows. Returns the wall time."""
    api = bench.api
    by_id = {a.account_id: a for a in accounts}
    started: dict[str, float] = {}
    barrier = threading.Barrier(len(accounts))

    def start(account: Opened) -> None:
        barrier.wait()
        started[account.account_id], account.started_wall = time.monotonic(), time.time()
        assert api.post(f"/accounts/{account.account_id}/start").status_code == 202

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(accounts)) as starters:
        list(starters.map(start, accounts))
    scanners = ThreadPoolExecutor(4)
    scanning: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(scanning) < len(accounts):
            items = api.get("/accounts", params={"limit": 100}).json()["items"]
            now = time.monotonic()
            for item in items:
                account = by_id.get(item["account_id"])
                if account is None or account.account_id in scanning:
                    continue
                if item["connection_status"] in ("SCAN_QR_CODE", "WORKING"):
                    account.start_to_qr = now - started[account.account_id]
                    scanning.add(account.account_id)
                    scanners.submit(_scan_one, bench, account, timeout)
            time.sleep(0.1)
    finally:
        scanners.shutdown(wait=True)
    for account in accounts:
        if account.account_id not in scanning:
            account.error = "no QR within the timeout"
    return time.monotonic() - t0


def _scan_one(bench: Bench, account: Opened, timeout: float) -> None:
    try:
        response = bench.api.get(f"/accounts/{account.account_id}/qr", params={"format": "raw"})
        assert response.status_code == 200, response.text
        scan_and_wait(bench.api, bench.phone, account, response.json()["value"], timeout)
    except AssertionError as exc:
        account.error = str(exc)[:200]


def claims_from_logs(hosts: list[HostProcess], accounts: list[Opened]) -> None:
    """When a host took each account's lease (its log line), so start → QR splits into start → claim (nudge,
    reconcile, lease) and claim → QR (context, page, status write)."""
    taken: dict[str, list[float]] = defaultdict(list)
    for host in hosts:
        if host.log_path is None or not host.log_path.exists():
            continue
        for line in host.log_path.read_text(errors="replace").splitlines():
            if ": lease " in line and " taken" in line and "account acc_" in line:
                stamp, _, rest = line.partition(" [browser_host]")
                with contextlib.suppress(ValueError):
                    base, _, millis = stamp.partition(",")
                    at = time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
                    taken[rest.split("account ", 1)[1].split(":", 1)[0]].append(at)
    for account in accounts:
        after = [t for t in taken.get(account.account_id, []) if t >= account.started_wall - 1]
        if after:
            account.start_to_claim = min(after) - account.started_wall


# --- sending (c, d) -------------------------------------------------------------------------------------------

def sent_count(hosts: list[HostProcess]) -> float:
    return sum(m.get("messages_sent", 0) + m.get("messages_failed", 0) for m in map(metrics, live(hosts)))


def wait_all_terminal(bench: Bench, hosts: list[HostProcess], last: dict[str, str], expected: float,
                      timeout: float) -> bool:
    """Until the last message of every account is terminal (each account's are sent in order); the hosts'
    counters say when to look, so the API is not polled hard while they work."""
    api = bench.api
    pending = dict(last)
    deadline = time.monotonic() + timeout
    seen, seen_at = -1.0, time.monotonic()
    while pending and time.monotonic() < deadline:
        done = sent_count(hosts)
        if done != seen:
            seen, seen_at = done, time.monotonic()
        if done >= expected or time.monotonic() - seen_at > 2:
            for account_id, message_id in list(pending.items()):
                status = api.get(f"/accounts/{account_id}/messages/{message_id}").json().get("status")
                if status not in ("queued", "sending"):
                    pending.pop(account_id)
            seen_at = time.monotonic()
        time.sleep(0.25)
    return not pending


def message_records(api: Api, account_ids: list[str], ours: set[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for account_id in account_ids:
        cursor = None
        while True:
            params: dict[str, Any] = {"direction": "outbound", "limit": 100, **({"cursor": cursor} if cursor else {})}
            page = api.get(f"/accounts/{account_id}/messages", params=params).json()
            records += [r for r in page.get("items", []) if r["message_id"] in ours]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return records


@dataclass
class Workload:
    name: str
    accounts: int
    per_account: int
    posted: int = 0
    post_errors: int = 0
    post_s: float = 0.0
    post_ms: list[float] = field(default_factory=list)
    complete: bool = False
    statuses: dict[str, int] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)
    pickup: list[float] = field(default_factory=list)
    handover: list[float] = field(default_factory=list)
    rate: float = float("nan")
    sent_rate: float = float("nan")
    in_order: int = 0
    duplicates: int = 0
    missing: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    per_host_sent: list[float] = field(default_factory=list)
    early: int = 0  # preload: messages a host's sweep picked up before the nudge
    steady_rate: float = float("nan")  # between the 10th and the 90th percentile of the `sent` times
    via: str = "api"


def preload(accounts: list[Opened], bodies: list[str], threads: int) -> tuple[dict[str, list[str]], float]:
    """Write every text as the `queued` row the API writes (the same item, pending-index shard included), in
    BatchWriteItems and with no nudge; then nudge each account's owner at once, as the API does after its write.
    Returns the ids and the wall time of the first nudge: the hosts' drain is timed from there, without the
    local API's own limit."""
    import json

    from core.ids import new_id
    from core.models.common import utcnow
    from core.store import messages as message_store
    from core.store.accounts import AccountRepository
    from core.store.tables import MessageItem
    from functions.service.context import services

    svc = services()
    shard = getattr(message_store, "pending_shard", None)
    with ThreadPoolExecutor(threads) as pool:
        stored = dict(zip([a.account_id for a in accounts],
                          pool.map(lambda a: AccountRepository().read(a.account_id), accounts), strict=True))
    posted: dict[str, list[str]] = {a.account_id: [] for a in accounts}
    rows: list[MessageItem] = []
    for account in accounts:
        owner = stored[account.account_id]
        assert owner is not None
        for body in bodies:
            envelope = {"to": account.contact, "type": "text", "text": {"body": body, "preview_url": False}}
            now = utcnow()
            item = MessageItem(
                account.account_id, new_id("msg"), tenant_id=owner.tenant_id, direction="outbound",
                status="queued", type="text", to=account.contact, from_number=owner.phone_number,
                content=json.dumps(envelope, separators=(",", ":")),
                status_history=[{"status": "queued", "at": now, "reason": None}], created_at=now, updated_at=now,
                expires_at=svc.messages.expiry(svc.settings.message_ttl_days))
            if shard is not None:
                item.pending_shard = shard(item.message_id)
            rows.append(item)
            posted[account.account_id].append(item.message_id)

    def write(chunk: list[MessageItem]) -> None:
        with MessageItem.batch_write() as batch:
            for item in chunk:
                batch.save(item)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, [rows[k:k + 100] for k in range(0, len(rows), 100)]))
    with ThreadPoolExecutor(threads) as pool:
        inboxes = list(pool.map(lambda a: getattr(AccountRepository().read(a.account_id), "host_inbox", None),
                                accounts))
        nudged = time.time()
        list(pool.map(lambda pair: svc.nudges.send(pair[0].account_id, "message", pair[1]),
                      zip(accounts, inboxes, strict=True)))
    return posted, nudged


def run_workload(bench: Bench, hosts: list[HostProcess], accounts: list[Opened], per_account: int, name: str,
                 rate: float | None, senders: int, timeout: float = 600, via: str = "api") -> Workload:
    """`per_account` texts to each account's contact: through the API paced at `rate` msg/s in all (one thread
    per account, evenly spread) or as fast as `senders` threads can post (`rate` None); or (`via="preload"`)
    written as queued rows first and then nudged at once. CPU and AWS calls are read over the send phase:
    from the first post to the last message's terminal status."""
    api = bench.api
    w = Workload(name, len(accounts), per_account, via=via)
    lock = threading.Lock()
    posted: dict[str, list[str]] = {a.account_id: [] for a in accounts}
    tag = uuid.uuid4().hex[:4]
    bodies = [f"{name} {tag} {j:03d}" for j in range(per_account)]
    before_sent = [metrics(h).get("messages_sent", 0) for h in hosts]
    before_done = sent_count(hosts)
    counts_before = bench.counts()
    meter = bench.cpu(hosts).start()
    t0 = time.monotonic()

    def post(account: Opened, j: int) -> None:
        start = time.monotonic()
        response = api.post(f"/accounts/{account.account_id}/messages",
                            json={"to": account.contact, "type": "text", "text": {"body": bodies[j]}})
        elapsed = (time.monotonic() - start) * 1000
        with lock:
            if response.status_code == 202:
                posted[account.account_id].append(response.json()["message_id"])
                w.post_ms.append(elapsed)
            else:
                w.post_errors += 1

    nudged = float("nan")
    if via == "preload":
        preloaded, nudged = preload(accounts, bodies, senders)
        posted.update(preloaded)
    elif rate:
        interval = len(accounts) / rate

        def paced(k: int) -> None:
            account = accounts[k]
            first = t0 + k * interval / len(accounts)
            for j in range(per_account):
                delay = first + j * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                post(account, j)

        with ThreadPoolExecutor(len(accounts)) as pool:
            list(pool.map(paced, range(len(accounts))))
    else:
        def burst(mine: list[Opened]) -> None:
            for j in range(per_account):
                for account in mine:
                    post(account, j)

        with ThreadPoolExecutor(senders) as pool:
            list(pool.map(burst, [accounts[k::senders] for k in range(senders)]))
    w.post_s = time.monotonic() - t0
    w.posted = sum(len(v) for v in posted.values())
    last = {a: ids[-1] for a, ids in posted.items() if ids}
    w.complete = wait_all_terminal(bench, hosts, last, before_done + w.posted, timeout)
    w.cpu = meter.read()
    counts_after = bench.counts()
    w.calls = diff_counts(counts_before, counts_after)
    w.per_host_sent = [metrics(h).get("messages_sent", 0) - b for h, b in zip(hosts, before_sent, strict=True)]
    ours = {m for ids in posted.values() for m in ids}
    records = message_records(api, [a.account_id for a in accounts], ours)
    queued_at, sent_at = [], []
    for record in records:
        w.statuses[record["status"]] = w.statuses.get(record["status"], 0) + 1
        at = {h["status"]: ts(h["at"]) for h in record.get("status_history", [])}
        if "queued" in at and "sent" in at:
            w.latency.append((at["sent"] - at["queued"]) * 1000)
            queued_at.append(at["queued"])
            sent_at.append(at["sent"])
            if "sending" in at:
                w.pickup.append((at["sending"] - at["queued"]) * 1000)
                w.handover.append((at["sent"] - at["sending"]) * 1000)
    first_sending = min((ts(h["at"]) for r in records for h in r.get("status_history", [])
                         if h["status"] == "sending"), default=float("nan"))
    if sent_at:
        # Preloaded: from when the hosts could start (the nudge, or a sweep that found rows before it).
        start = min(nudged, first_sending) if via == "preload" else min(queued_at)
        w.rate = len(sent_at) / max(1e-9, max(sent_at) - start)
        w.sent_rate = (len(sent_at) - 1) / max(1e-9, max(sent_at) - min(sent_at))
        ordered = sorted(sent_at)
        lo, hi = int(len(ordered) * 0.1), int(len(ordered) * 0.9)
        if hi > lo + 1:
            w.steady_rate = (hi - lo) / max(1e-9, ordered[hi] - ordered[lo])
        w.early = sum(1 for r in records for h in r.get("status_history", [])
                      if h["status"] == "sending" and ts(h["at"]) < nudged) if via == "preload" else 0
    for account in accounts:
        got = [m["body"] for m in bench.phone.received(account.contact) if m["body"] in bodies]
        w.in_order += got == bodies[:len(posted[account.account_id])]
        w.duplicates += len(got) - len(set(got))
        w.missing += len(set(bodies[:len(posted[account.account_id])]) - set(got))
    return w


def diff_counts(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[str, str, str, str]:
        return row["caller"], row["service"], row["operation"], row["resource"]

    old = {key(r): r for r in before}
    out = []
    for row in after:
        prev = old.get(key(row), {"count": 0, "ms": 0.0, "errors": 0})
        if row["count"] > prev["count"]:
            out.append({**row, "count": row["count"] - prev["count"], "ms": row["ms"] - prev["ms"],
                        "errors": row.get("errors", 0) - prev.get("errors", 0)})
    return out


def idle_window(bench: Bench, hosts: list[HostProcess], seconds: float) -> dict[str, Any]:
    """CPU and AWS calls of the hosts doing nothing but keeping their accounts (the per-second background)."""
    counts_before = bench.counts()
    meter = bench.cpu(hosts).start()
    time.sleep(seconds)
    cpu = meter.read()
    return {"cpu": cpu, "calls": diff_counts(counts_before, bench.counts()), "seconds": cpu["wall"]}


# --- takeover (a) ---------------------------------------------------------------------------------------------

@dataclass
class Takeover:
    run: int
    lease_left: float
    registration_left: float
    to_host_working: float = float("nan")
    to_api_working: float = float("nan")
    to_delivered: float = float("nan")
    new_qr: bool = False
    error: str | None = None


def _expiries(account_id: str, host_id: str) -> tuple[float, float]:
    """(account lease, host registration) expiry times, epoch seconds, as the store reads them."""
    from core.store.leases import LeaseRepository
    from core.store.tables import LeaseItem

    lease = LeaseItem.get(f"account#{account_id}", consistent_read=True)
    hosts = {h.host_id: h for h in LeaseRepository().hosts()}
    return int(lease.expires_at) / 1000, hosts[host_id].expires_at / 1000 if host_id in hosts else float("nan")


def _snapshot_saved(host: HostProcess) -> bool:
    return host.log_path is not None and host.log_path.exists() and "snapshot saved" in host.log_path.read_text(
        errors="replace")


def takeover(bench: Bench, ttl: float, runs: int) -> list[Takeover]:
    """2 hosts, one linked account; SIGKILL its host (and the host's Chromium, as a dead container), send a
    message, time the other host's takeover; then a fresh spare host, and again."""
    env = {"HOST_LEASE_TTL": f"{ttl:g}", "HOST_REBALANCE": "false"}
    fleet = bench.fleet(f"a{ttl:g}", env)
    api, phone = bench.api, bench.phone
    results: list[Takeover] = []
    rng = random.Random(7)
    try:
        first = bench.start_host(fleet)
        account = create_accounts(api, 1, f"takeover {ttl:g}")[0]
        link_by_qr(api, phone, account.account_id, account.business)
        wait_until(lambda: _snapshot_saved(first), 30, "a snapshot")
        bench.start_host(fleet)
        for run in range(runs):
            try:
                holders = wait_until(lambda: len(h := fleet.holder(account.account_id)) == 1 and h, 30, "one holder")
                holder = holders[0]
                (spare,) = [h for h in live(fleet.hosts) if h is not holder]
                wait_until(lambda h=holder: _snapshot_saved(h), 30, "the holder's snapshot")
                pair = (holder, spare)
                wait_until(lambda pair=pair: all((h.health() or {}).get("live_hosts") == 2 for h in pair), 30,
                           "both hosts registered")
            except (AssertionError, ValueError) as exc:
                say(f"  TTL {ttl:g} s run {run}: not started: {str(exc)[:200]}")
                results.append(Takeover(run, float("nan"), float("nan"), error=f"setup: {str(exc)[:120]}"))
                break
            holder_id = str((holder.health() or {})["host_id"])
            spare_id = str((spare.health() or {})["host_id"])
            time.sleep(rng.uniform(0, 2))  # not always at the same point of the renewal cycle
            lease_expiry, registration_expiry = _expiries(account.account_id, holder_id)
            t_wall, t0 = time.time(), time.monotonic()
            holder.kill()
            kill_marked(holder.env["TMPDIR"])  # the container is gone: its browser too
            result = Takeover(run, lease_expiry - t_wall, registration_expiry - t_wall)
            body = f"after kill {ttl:g}/{run}"
            send_text(api, account.account_id, account.contact, body)
            deadline = t0 + ttl + 90
            while time.monotonic() < deadline:
                now = time.monotonic() - t0
                health = spare.health() or {}
                if result.to_host_working != result.to_host_working and \
                        account.account_id in (health.get("account_ids") or []) and \
                        (health.get("accounts") or {}).get("WORKING") == 1:
                    result.to_host_working = now
                if result.to_api_working != result.to_api_working:
                    item = api.get(f"/accounts/{account.account_id}").json()
                    # Until the new owner writes STARTING, the item shows its id beside the dead host's WORKING:
                    # only a WORKING written after the kill counts.
                    history = [h for h in item.get("status_history", []) if ts(h["at"]) >= t_wall]
                    if item.get("host_id") == spare_id and item["connection_status"] == "WORKING" and \
                            any(h["to"] == "WORKING" for h in history):
                        result.to_api_working = now
                        result.new_qr = any(h["to"] == "SCAN_QR_CODE" for h in history)
                if result.to_delivered != result.to_delivered and \
                        body in [m["body"] for m in phone.received(account.contact)]:
                    result.to_delivered = now
                if all(v == v for v in (result.to_host_working, result.to_api_working, result.to_delivered)):
                    break
                time.sleep(0.1)
            else:
                result.error = "not taken over in time"
            results.append(result)
            say(f"  TTL {ttl:g} s run {run}: lease left {result.lease_left:.1f} s, registration left "
                f"{result.registration_left:.1f} s; WORKING on the other host after {result.to_api_working:.1f} s "
                f"(host says {result.to_host_working:.1f} s), message delivered after {result.to_delivered:.1f} s"
                f"{'; NEW QR' if result.new_qr else ''}{'; ' + result.error if result.error else ''}")
            if result.error:
                break
            bench.start_host(fleet)  # the replacement container: the next run's spare
        with contextlib.suppress(Exception):
            conflicts = phone.conflicts(account.business)
            if conflicts:
                say(f"  WhatsApp saw {conflicts} conflicting connections")
                results[-1].error = (results[-1].error or "") + f" {conflicts} conflicts"
        api.post(f"/accounts/{account.account_id}/stop")
    finally:
        bench.stop_fleet(fleet)
    return results


# --- the run --------------------------------------------------------------------------------------------------

def stop_accounts(bench: Bench, accounts: list[Opened], hosts: list[HostProcess]) -> None:
    for account in accounts:
        bench.api.post(f"/accounts/{account.account_id}/stop")
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not any((h.health() or {}).get("account_ids") for h in live(hosts)), 90,
                   "every account closed")


def balanced(hosts: list[HostProcess], total: int) -> list[int] | None:
    counts = [int(((h.health() or {}).get("accounts") or {}).get("WORKING", 0)) for h in hosts]
    share = -(-total // len(hosts))
    return counts if sum(counts) == total and max(counts) <= share else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"load_start": os.getloadavg(), "t_start": time.time(), "source": source_state()}
    t_begin = time.monotonic()
    skip = set(args.skip)
    with stack(args) as bench:
        out["bench"] = bench
        host_env = {k: v for k, v in bench.runtime.host_env().items()
                    if k.startswith("HOST_") and k != "HOST_QUEUE_PREFIX"}
        out["host_env"] = host_env
        if not {"open", "latency", "throughput"} <= skip:
            fleet = bench.fleet("m", {})
            first = bench.start_host(fleet)
            time.sleep(3)
            opened: list[Opened] = []
            # (b) one account at a time
            if "open" not in skip or "latency" not in skip:
                say(f"(b) start -> QR -> WORKING, {args.seq_accounts} accounts one at a time")
                seq = create_accounts(bench.api, args.seq_accounts, "seq")
                open_sequential(bench, seq)
                out["sequential"] = seq
                opened += [a for a in seq if a.ok]
            # (c) latency, CPU and AWS calls per message on one host
            if "latency" not in skip and opened:
                use = opened[:args.latency_accounts]
                say(f"(c) idle window {args.idle_seconds:.0f} s with {len(opened)} WORKING accounts")
                time.sleep(3)
                out["idle"] = idle_window(bench, [first], args.idle_seconds)
                out["idle_accounts"] = len(opened)
                say(f"(c) {len(use)} accounts x {args.latency_texts} texts at {args.latency_rate:g} msg/s")
                out["latency"] = run_workload(bench, [first], use, args.latency_texts, "latency",
                                              args.latency_rate, args.senders)
                print_workload(out["latency"])
            # (b) a batch at once
            if "open" not in skip or "throughput" not in skip:
                say(f"(b) start -> QR -> WORKING, {args.batch} accounts at once")
                batch = create_accounts(bench.api, args.batch, "batch")
                out["batch_wall"] = open_batch(bench, batch)
                out["batch"] = batch
                opened += [a for a in batch if a.ok]
                say(f"  batch: {sum(a.ok for a in batch)}/{len(batch)} WORKING in {out['batch_wall']:.1f} s, "
                    f"start->QR p50 {pct([a.start_to_qr for a in batch], 0.5):.2f} s")
            claims_from_logs(fleet.hosts, out.get("sequential", []) + out.get("batch", []))
            # (d) 1 host, then N hosts, same workload
            if "throughput" not in skip:
                more = args.throughput_accounts - len(opened)
                if more > 0:
                    extra = create_accounts(bench.api, more, "extra")
                    open_batch(bench, extra)
                    opened += [a for a in extra if a.ok]
                use = opened[:args.throughput_accounts]
                time.sleep(3)
                say(f"(d) 1 host: {len(use)} accounts x {args.throughput_texts} texts ({args.throughput_via})")
                out["one"] = run_workload(bench, [first], use, args.throughput_texts, "one host", None, args.senders,
                                          via=args.throughput_via)
                print_workload(out["one"])
                for _ in range(args.hosts - 1):
                    bench.start_host(fleet)
                hosts = live(fleet.hosts)
                t0 = time.monotonic()
                try:
                    out["balance"] = wait_until(lambda: balanced(hosts, len(opened)), 180, "balanced", every=0.5)
                except AssertionError:
                    out["balance"] = [int(((h.health() or {}).get("accounts") or {}).get("WORKING", 0))
                                      for h in hosts]
                out["balance_s"] = time.monotonic() - t0
                say(f"(d) {args.hosts} hosts: WORKING accounts per host {out['balance']} after "
                    f"{out['balance_s']:.1f} s")
                time.sleep(3)
                out["many"] = run_workload(bench, hosts, use, args.throughput_texts, f"{args.hosts} hosts", None,
                                           args.senders, via=args.throughput_via)
                print_workload(out["many"])
            stop_accounts(bench, opened, fleet.hosts)
            bench.stop_fleet(fleet)
        # (a) takeover
        if "takeover" not in skip:
            out["takeover"] = {}
            for ttl in args.ttls:
                say(f"(a) takeover after SIGKILL, HOST_LEASE_TTL={ttl:g} s, {args.takeover_runs} runs")
                out["takeover"][ttl] = takeover(bench, ttl, args.takeover_runs)
    out["log_summary"] = bench.log_summary
    out["load_end"] = os.getloadavg()
    out["total_s"] = time.monotonic() - t_begin
    return out


def print_workload(w: Workload) -> None:
    say(f"  {w.name}: {w.posted} posted in {w.post_s:.1f} s, statuses {w.statuses}, enqueue->sent p50 "
        f"{pct(w.latency, 0.5):.0f} ms p99 {pct(w.latency, 0.99):.0f} ms, {w.rate:.1f} msg/s end to end; host "
        f"CPU {w.cpu.get('tree', 0):.1f} s; phones: {w.in_order}/{w.accounts} in order, {w.duplicates} dup, "
        f"{w.missing} missing")


# --- report ---------------------------------------------------------------------------------------------------

def per_message_calls(w: Workload, idle: dict[str, Any] | None,
                      host_side: bool) -> list[tuple[str, float, float, float, float]]:
    """(operation, calls per message, of which background, refused (status >= 400) per message, mean upstream
    ms per call) for the hosts or the control plane."""
    def mine(caller: str) -> bool:
        return caller.startswith("host-") if host_side else caller == STACK_CALLER

    def name(row: dict[str, Any]) -> str:
        resource = str(row["resource"])
        resource = resource.removeprefix("wagate-")
        if resource.startswith("host-") and row["service"] == "sqs" and resource != "host-control":
            resource = "own inbox"
        return f"{row['service']} {row['operation']}" + (f" ({resource})" if resource else "")

    sent = max(1, sum(w.statuses.get(s, 0) for s in ("sent", "delivered", "read", "failed")))
    busy: dict[str, float] = defaultdict(float)
    refused: dict[str, float] = defaultdict(float)
    upstream_ms: dict[str, float] = defaultdict(float)
    for row in w.calls:
        if mine(row["caller"]):
            busy[name(row)] += row["count"]
            refused[name(row)] += row.get("errors", 0)
            upstream_ms[name(row)] += row["ms"]
    background: dict[str, float] = defaultdict(float)
    if idle:
        for row in idle["calls"]:
            if mine(row["caller"]):
                background[name(row)] += row["count"] / idle["seconds"] * w.cpu["wall"]
    rows = [(op, n / sent, min(n, background.get(op, 0.0)) / sent, refused[op] / sent, upstream_ms[op] / n)
            for op, n in busy.items()]
    return sorted(rows, key=lambda r: -r[1])


def verdict(measured: float, goal: float, unit: str = "") -> str:
    if measured != measured:
        return "not measured"
    if measured <= goal:
        return f"**met** ({(goal - measured) / goal * 100:.0f} % under)"
    return f"**missed** by {measured - goal:.2f}{unit} ({(measured - goal) / goal * 100:.0f} % over)"


def _cores(w: Workload) -> float:
    """Average cores busy over a workload: the hosts, moto, the proxy and the API + wa_sim process."""
    c = w.cpu
    return (c.get("tree", 0) + c.get("moto", 0) + c.get("proxy", 0) + c.get("stack", 0)) / max(1e-9, c.get("wall", 1))


def render(out: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    bench: Bench = out["bench"]
    ls, le = out["load_start"], out["load_end"]
    env = out["host_env"]
    started = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.gmtime(out["t_start"]))
    lines = [
        f"Measured {machine()} (`date`: {started}; load average {ls[0]:.1f} / {ls[1]:.1f} / {ls[2]:.1f} at the "
        f"start and {le[0]:.1f} / {le[1]:.1f} / {le[2]:.1f} at the end: the machine is shared with other jobs that "
        f"run tests at the same time, so every figure is a median or percentile from a loaded 2-core box) with "
        f"`{command}` at {out['source']}. Whole run {out['total_s'] / 60:.1f} min.",
        "",
        "Setup: moto's server in its own process; " + (
            "every AWS call of the hosts and of the local API goes through a counting proxy in front of it "
            "(`bench/aws_proxy.py`, its own process); " if bench.proxy_url else
            "no counting proxy (`--no-proxy`); ") +
        "the local API (API Gateway emulation, handlers in-process), its SQS pollers and wa_sim in the "
        "benchmark's process; each browser host is `python -m browser_host` with Debian Chromium. Host settings "
        "are the production defaults (lease TTL 30 s, reconcile every 2 s, sweep every 15 s, "
        "`HOST_OPEN_CONCURRENCY=4`, `HOST_MAX_ACCOUNTS=50`) except "
        + ", ".join(f"`{k}={v}`" for k, v in env.items())
        + " (the local runtime's setting: moto's long poll burns CPU while it waits) and the lease TTL of (a); "
        f"wa_sim rotates QR codes every {args.qr_interval:g} s.",
        "",
        "### Goals",
        "",
        "| goal | target | measured | verdict |",
        "|---|---|---|---|",
    ]
    detail: list[str] = []
    takeovers: dict[float, list[Takeover]] = out.get("takeover", {})
    for ttl, results in takeovers.items():
        good = [r.to_api_working for r in results if r.to_api_working == r.to_api_working]
        goal = ttl + GOAL_TAKEOVER_EXTRA_S
        lines.append(f"| (a) SIGKILL → WORKING on the other host, TTL {ttl:g} s, p50 / p95 over {len(good)} runs | "
                     f"≤ {goal:g} s (TTL + {GOAL_TAKEOVER_EXTRA_S:g}) | {fmt(pct(good, 0.5), 1)} s / "
                     f"{fmt(pct(good, 0.95), 1)} s | p50 {verdict(pct(good, 0.5), goal, ' s')}, "
                     f"p95 {verdict(pct(good, 0.95), goal, ' s')} |")
    seq: list[Opened] = out.get("sequential", [])
    if seq:
        qr = [a.start_to_qr for a in seq if a.start_to_qr == a.start_to_qr]
        lines.append(f"| (b) start → QR, one account at a time, p50 / p95 over {len(qr)} | ≤ {GOAL_START_TO_QR_S:g} s "
                     f"| {fmt(pct(qr, 0.5))} s / {fmt(pct(qr, 0.95))} s | "
                     f"p50 {verdict(pct(qr, 0.5), GOAL_START_TO_QR_S, ' s')}, "
                     f"p95 {verdict(pct(qr, 0.95), GOAL_START_TO_QR_S, ' s')} |")
    lat: Workload | None = out.get("latency")
    idle = out.get("idle")
    if lat:
        sent = max(1, sum(lat.statuses.get(s, 0) for s in ("sent", "delivered", "read")))
        cpu_ms = (lat.cpu["host"] + lat.cpu["chromium"]) / sent * 1000
        p50 = pct(lat.latency, 0.5)
        lines.append(f"| (c) enqueue → sent p50 ({lat.accounts} accounts x {lat.per_account} texts, "
                     f"{args.latency_rate:g} msg/s) | ≤ {GOAL_ENQUEUE_TO_SENT_MS:g} ms | {fmt(p50, 0)} ms (p99 "
                     f"{fmt(pct(lat.latency, 0.99), 0)} ms) | {verdict(p50, GOAL_ENQUEUE_TO_SENT_MS, ' ms')} |")
        lines.append(f"| (c) host CPU per message (host Python + Chromium over the send phase ÷ messages) | "
                     f"≤ {GOAL_CPU_PER_MESSAGE_MS:g} ms | {cpu_ms:.1f} ms | "
                     f"{verdict(cpu_ms, GOAL_CPU_PER_MESSAGE_MS, ' ms')} |")
        if bench.proxy_url:
            total = sum(r[1] for r in per_message_calls(lat, idle, host_side=True))
            lines.append(f"| (c) AWS calls per message, host (API side in (c) below) | - | {total:.1f} | - |")
    one: Workload | None = out.get("one")
    many: Workload | None = out.get("many")
    if one and many:
        ratio = many.steady_rate / one.steady_rate
        moto_bound = one.cpu.get("moto", 0) / max(1e-9, one.cpu.get("wall", 1)) > 0.6
        lines.append(f"| (d) {args.hosts} hosts vs 1, msg/s on the same workload | {args.hosts}x (linear) | "
                     f"{one.steady_rate:.1f} → {many.steady_rate:.1f} msg/s = **{ratio:.2f}x** | "
                     + ("scales" if ratio >= 0.8 * args.hosts else
                        "not measurable here: the single moto process is the bottleneck (see (d))" if moto_bound else
                        "does not scale on this machine (see (d))") + " |")

    # (a)
    for ttl, results in takeovers.items():
        def col(values: list[float]) -> str:
            values = [v for v in values if v == v]
            return (f"{fmt(pct(values, 0.5), 1)} | {fmt(pct(values, 0.95), 1)} | "
                    f"{fmt(max(values) if values else float('nan'), 1)}")

        done = [r for r in results if r.to_api_working == r.to_api_working]
        errors = sorted({r.error for r in results if r.error})
        detail += [
            "",
            f"### (a) Takeover after SIGKILL, `HOST_LEASE_TTL={ttl:g}`",
            "",
            "Two hosts (`HOST_REBALANCE=false`), one linked account with its snapshot saved. Each run SIGKILLs the "
            "holder's process group and its Chromium (a dead container), posts a text at once (its nudge goes to "
            "the dead host's inbox), and polls every 0.1 s; then starts a fresh spare host for the next run. "
            f"{len(results)} runs; {sum(r.new_qr for r in results)} needed a new QR; {len(errors)} failed"
            + (" (" + "; ".join(str(e) for e in errors) + ")" if errors else "") + ".",
            "",
            "| from SIGKILL until | p50 s | p95 s | max s |",
            "|---|---|---|---|",
            "| the other host's `/health` lists it WORKING | "
            + col([r.to_host_working for r in results if r.to_host_working == r.to_host_working]) + " |",
            "| the API shows it WORKING with the other host's id | " + col([r.to_api_working for r in done]) + " |",
            "| the text posted after the kill is on the phone | "
            + col([r.to_delivered for r in results if r.to_delivered == r.to_delivered]) + " |",
            "| (what was left of) the dead host's account lease | " + col([r.lease_left for r in results]) + " |",
            "| (what was left of) the dead host's registration | " + col([r.registration_left for r in results])
            + " |",
            "| WORKING, counted from the later of those two expiries | "
            + col([r.to_api_working - max(r.lease_left, r.registration_left) for r in done]) + " |",
        ]
    if takeovers:
        detail += ["", "A host takes an account only when the owner's registration has expired (it is renewed at "
                   "every reconcile, so about a TTL after the kill) and its lease has too (renewed every third of "
                   "the TTL, so 2/3 to 1 TTL after the kill); then its next reconcile (every 2 s) claims it, "
                   "restores the snapshot into a new context and the page comes back linked."]
    # (b)
    batch: list[Opened] = out.get("batch", [])
    if seq or batch:
        detail += ["", "### (b) Start → QR → WORKING", "",
                   "| accounts | WORKING | start → QR p50 / p95 s | of which start → lease taken p50 / p95 s | "
                   "scan → WORKING p50 / p95 s | rescans |",
                   "|---|---|---|---|---|---|"]
        for label, group in ((f"{len(seq)} one at a time", seq),
                             (f"{len(batch)} at once (all WORKING after {out.get('batch_wall', float('nan')):.1f} s)",
                              batch)):
            if not group:
                continue
            qr = [a.start_to_qr for a in group if a.start_to_qr == a.start_to_qr]
            claim = [a.start_to_claim for a in group if a.start_to_claim == a.start_to_claim]
            scan = [a.scan_to_working for a in group if a.scan_to_working == a.scan_to_working]
            detail.append(f"| {label} | {sum(a.ok for a in group)}/{len(group)} | {fmt(pct(qr, 0.5))} / "
                          f"{fmt(pct(qr, 0.95))} | {fmt(pct(claim, 0.5))} / {fmt(pct(claim, 0.95))} | "
                          f"{fmt(pct(scan, 0.5))} / {fmt(pct(scan, 0.95))} | {sum(a.rescans for a in group)} |")
        detail += ["", "Start → QR: `POST /accounts/{id}/start` until `GET /accounts/{id}/qr?format=raw` answers "
                   "200 (one at a time: polled every 50 ms; the batch: one `GET /accounts` every 100 ms, since the "
                   "status `SCAN_QR_CODE` is written together with the QR). \"Lease taken\" is the host's log line "
                   "(ms resolution, same clock): before it the nudge travels through the control queue and the host "
                   "reconciles and claims; after it the host opens a context and page, waits for the QR and writes "
                   "it. Scan → WORKING: `POST /sim/link` until the API shows `WORKING` (polled every 50 ms). The "
                   "batch's starts are posted together; the host opens `HOST_OPEN_CONCURRENCY` (4) at a time."]
    # (c)
    if lat:
        detail += render_latency(out, args, lat, idle, bench)
    # (d)
    if one and many:
        detail += render_throughput(out, args, one, many)
    summary = out.get("log_summary") or {}
    levels = summary.get("levels", {})
    detail += ["", f"Host logs: {levels.get('ERROR', 0)} ERROR, {levels.get('WARNING', 0)} WARNING lines, "
               f"{levels.get('Traceback', 0)} tracebacks"
               + (": " + "; ".join(f"{k} (x{n})" for k, n in summary.get("samples", [])) if summary.get("samples")
                  else "") + "."]
    return "\n".join(lines + detail)


def render_latency(out: dict[str, Any], args: argparse.Namespace, lat: Workload, idle: dict[str, Any] | None,
                   bench: Bench) -> list[str]:
    sent = max(1, sum(lat.statuses.get(s, 0) for s in ("sent", "delivered", "read")))
    c = lat.cpu
    idle_cpu = idle["cpu"] if idle else {}
    idle_rate = (idle_cpu.get("host", 0) + idle_cpu.get("chromium", 0)) / max(1e-9, idle_cpu.get("wall", 1))
    net_ms = (c["host"] + c["chromium"] - idle_rate * c["wall"]) / sent * 1000

    def row(name: str, values: list[float]) -> str:
        return (f"| {name} | {fmt(pct(values, 0.5), 0)} | {fmt(pct(values, 0.95), 0)} | "
                f"{fmt(pct(values, 0.99), 0)} |")

    lines = [
        "",
        f"### (c) Enqueue → sent, CPU and AWS calls per message ({lat.accounts} accounts x {lat.per_account} "
        "texts, one host)",
        "",
        f"Texts posted through the API at {args.latency_rate:g} msg/s in all (one client thread per account, "
        f"evenly spread; POST p50 {fmt(pct(lat.post_ms, 0.5), 0)} ms), each to the account's own contact; final "
        f"statuses {lat.statuses}; on the phones {lat.in_order}/{lat.accounts} contacts got theirs exactly once "
        f"and in order ({lat.duplicates} duplicates, {lat.missing} missing); the host's `wagate_messages_sent` "
        f"counter rose by {sum(lat.per_host_sent):.0f}. Latencies from each message's status "
        "history (`queued` written by the API, `sending`/`sent` by the host, one clock); `sent` = WhatsApp's "
        "server (wa_sim) acked it.",
        "",
        "| measure | p50 | p95 | p99 |",
        "|---|---|---|---|",
        row("enqueue → sent, ms", lat.latency),
        row("of which queued → sending (nudge, pick-up, `sending` write), ms", lat.pickup),
        row("of which sending → sent (attempt write, page, ack, `sent` write), ms", lat.handover),
        "",
        f"CPU over the send phase ({c['wall']:.1f} s, first post → last message terminal; {sent} messages): "
        f"host Python {c['host']:.2f} s, Chromium {c['chromium']:.2f} s, Playwright's node driver "
        f"{c['driver']:.2f} s; that is **{(c['host'] + c['chromium']) / sent * 1000:.1f} ms per message** (host "
        f"Python {c['host'] / sent * 1000:.1f} + Chromium {c['chromium'] / sent * 1000:.1f}; with the driver "
        f"{c['tree'] / sent * 1000:.1f} ms). Idle, the same host with {out.get('idle_accounts', 0)} WORKING "
        f"accounts used {idle_rate * 100:.1f} % of a core (host Python + Chromium, "
        f"{idle['seconds'] if idle else 0:.0f} s window), so net of that background: **{net_ms:.1f} ms per "
        f"message**. Meanwhile moto used {c.get('moto', 0):.1f} s"
        + (f", the counting proxy {c.get('proxy', 0):.1f} s" if bench.proxy_url else "")
        + f" and the API + wa_sim process {c.get('stack', 0):.1f} s.",
    ]
    if bench.proxy_url:
        host_rows = per_message_calls(lat, idle, host_side=True)
        stack_rows = per_message_calls(lat, idle, host_side=False)
        lines += [
            "",
            f"AWS calls per message (counted by the proxy over the send phase ÷ {sent} messages): **host "
            f"{sum(r[1] for r in host_rows):.1f}**, of which {sum(r[2] for r in host_rows):.1f} background (what "
            "the same host makes per second when idle — lease renewals, reconcile, inbox and control long polls — "
            "times the phase's length); **local API and its pollers "
            f"{sum(r[1] for r in stack_rows):.1f}** (this includes the benchmark's own few status reads at the end).",
            "",
            "| host: operation (resource) | calls per message | of which background | refused per message "
            "(e.g. a conditional write that lost) | mean ms per call (moto, through the proxy) |",
            "|---|---|---|---|---|",
            *(f"| {op} | {n:.2f} | {bg:.2f} | {bad:.2f} | {ms:.1f} |" for op, n, bg, bad, ms in host_rows[:12]),
            "",
            *([f"{refused:.2f} host calls per message were refused (a conditional write that lost, "
               "e.g. when two writers record the same progress): each such write, and any read made only for it, "
               "is a call to cut.", ""] if (refused := sum(r[3] for r in host_rows)) > 0.2 else []),
            "| control plane (API, authorizer, SQS pollers): operation (resource) | calls per message | refused per "
            "message | mean ms per call |",
            "|---|---|---|---|",
            *(f"| {op} | {n:.2f} | {bad:.2f} | {ms:.1f} |" for op, n, _, bad, ms in stack_rows[:8]),
        ]
    return lines


def render_throughput(out: dict[str, Any], args: argparse.Namespace, one: Workload, many: Workload) -> list[str]:
    if one.via == "preload":
        how = ("Each run writes every text first as the `queued` row the API writes (the same item, in "
               f"BatchWriteItems from {args.senders} threads, no nudge yet), then nudges every account's owner at "
               "once, as the API does after its write. Steady msg/s counts the middle 80 % of the `sent` times (a "
               "host's 15 s sweep may start some accounts before the nudge, and the last accounts trail); the "
               "second column runs from the nudge (or an earlier pick-up) to the last `sent`. Posted through the "
               "local API instead (`--throughput-via api`), both runs measured the API's own accept rate (one "
               "Python process shared with wa_sim: single-digit texts/s here); in production API Gateway and Lambda "
               "scale out, so the hosts' drain is the number to compare.")
    else:
        how = (f"Texts posted through the local API as fast as {args.senders} client threads could; steady msg/s "
               "counts the middle 80 % of the `sent` times, the second column runs from the first `queued` to the "
               "last `sent`.")
    lines = [
        "",
        f"### (d) {args.hosts} hosts vs 1 ({one.accounts} accounts x {one.per_account} texts)",
        "",
        f"The same accounts and workload twice: first on one host, then after {args.hosts - 1} more hosts joined "
        f"and the fleet rebalanced (WORKING accounts per host {out.get('balance')}, "
        f"{out.get('balance_s', float('nan')):.0f} s after the new hosts were healthy). {how}",
        "",
        "| hosts | texts | msg/s, steady (10th → 90th percentile of `sent`) | msg/s, start → last `sent` | "
        "sent per host (`wagate_messages_sent`) | picked up before the "
        "nudge | hosts' CPU s (Python + Chromium + driver) | moto CPU s | cores busy (all processes) | "
        "phones: in order / dup / missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, n in ((one, 1), (many, args.hosts)):
        lines.append(
            f"| {n} | {w.posted} | **{w.steady_rate:.1f}** | {w.rate:.1f} | "
            f"{', '.join(f'{x:.0f}' for x in w.per_host_sent)} | {w.early} | {w.cpu.get('tree', 0):.1f} "
            f"({w.cpu.get('host', 0):.1f} + {w.cpu.get('chromium', 0):.1f} + {w.cpu.get('driver', 0):.1f}) | "
            f"{w.cpu.get('moto', 0):.1f} | {_cores(w):.2f} | {w.in_order}/{w.accounts} / {w.duplicates} / "
            f"{w.missing} |")
    sent_one = max(1, one.posted)
    lines += ["", f"Ratio {args.hosts} hosts / 1 host (steady rates): **{many.steady_rate / one.steady_rate:.2f}x** "
              f"(ideal {args.hosts}x). All "
              f"processes share the same 2 cores (and other jobs do too): more hosts add parallel senders, not CPU. "
              f"Per message, moto spent {one.cpu.get('moto', 0) / sent_one * 1000:.0f} ms of CPU with one host and "
              f"{many.cpu.get('moto', 0) / max(1, many.posted) * 1000:.0f} ms with {args.hosts}, the hosts' trees "
              f"{one.cpu.get('tree', 0) / sent_one * 1000:.0f} ms and "
              f"{many.cpu.get('tree', 0) / max(1, many.posted) * 1000:.0f} ms."]
    if one.calls:
        lines.append("")
        slowest = 0.0
        for w, n in ((one, 1), (many, args.hosts)):
            rows = per_message_calls(w, None, host_side=True)
            slowest = max([slowest, *(ms for op, _, _, _, ms in rows if op.startswith("dynamodb"))])
            lines.append(f"- AWS calls per message with {n} host{'s' if n > 1 else ''}, all hosts together: "
                         f"**{sum(r[1] for r in rows):.1f}**; the largest: "
                         + ", ".join(f"{op} {x:.2f} ({ms:.0f} ms per call)" for op, x, _, _, ms in rows[:4]) + ".")
        if slowest > 200:
            lines += ["", f"DynamoDB calls took up to {slowest:.0f} ms each here (against ~15-25 ms in (c)): with "
                      "every account draining at once, requests queue in front of the single moto process, which "
                      "serves one at a time. Both runs measure the emulator's throughput (about 1 s ÷ moto's CPU per "
                      "message), not the hosts': more hosts only add waiting requests."]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: TTL 6 s only, 3 takeovers, 5+10 accounts, small workloads")
    parser.add_argument("--ttls", type=lambda s: [float(x) for x in s.split(",")], default=None,
                        help="lease TTLs for (a), seconds (default 30,6)")
    parser.add_argument("--takeover-runs", type=int, default=None, help="runs per TTL (default 10)")
    parser.add_argument("--seq-accounts", type=int, default=None, help="(b) accounts opened one at a time (10)")
    parser.add_argument("--batch", type=int, default=None, help="(b) accounts opened at once (20)")
    parser.add_argument("--latency-accounts", type=int, default=None, help="(c) accounts (10)")
    parser.add_argument("--latency-texts", type=int, default=None, help="(c) texts per account (30)")
    parser.add_argument("--latency-rate", type=float, default=5.0, help="(c) msg/s offered in all")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="(c) idle window for the background")
    parser.add_argument("--throughput-accounts", type=int, default=None, help="(d) accounts (30)")
    parser.add_argument("--throughput-texts", type=int, default=None, help="(d) texts per account (20)")
    parser.add_argument("--senders", type=int, default=8, help="(d) client threads posting (or preloading)")
    parser.add_argument("--throughput-via", choices=("preload", "api"), default="preload",
                        help="(d) write the queued rows then nudge (default), or post through the local API")
    parser.add_argument("--hosts", type=int, default=3, help="(d) hosts to compare with one")
    parser.add_argument("--qr-interval", type=float, default=20.0, help="wa_sim QR rotation, seconds")
    parser.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help="comma-separated: takeover, open, latency, throughput")
    parser.add_argument("--no-proxy", action="store_true", help="no counting proxy (no AWS call counts)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work dir (host logs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, small in (("ttls", [30.0, 6.0], [6.0]), ("takeover_runs", 10, 3), ("seq_accounts", 10, 5),
                              ("batch", 20, 10), ("latency_accounts", 10, 5), ("latency_texts", 30, 10),
                              ("throughput_accounts", 30, 15), ("throughput_texts", 20, 10)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.fleet" + (" " + " ".join(given) if given else "")

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # run the clean-up in `finally`, as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        out = run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
    report = render(out, args, command)
    print()
    print(report)
    if not args.no_write:
        write_section("Fleet", report)


if __name__ == "__main__":
    main()
