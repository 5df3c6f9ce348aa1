"""Browser host under load: accounts per host (PSS, idle CPU), start → QR → WORKING, outbound throughput.

Everything is real and on this machine: moto's server, the local API (API Gateway emulation, handlers
in-process), wa_sim, and `python -m browser_host` as its own process driving Debian Chromium. Accounts
are linked the way a user does it: `POST /accounts/{id}/start`, read the QR from
`GET /accounts/{id}/qr?format=raw`, "scan" it with `POST /sim/link`, wait for `WORKING` through the API.

    python -m bench.browser_host [--max-accounts 100] [--counts 1,10,50] [--batch 10]
                                 [--outbound-accounts 50] [--messages 20] [--senders 4]
                                 [--idle-seconds 10] [--budget 780] [--no-write]

Memory: PSS from /proc/<pid>/smaps_rollup summed over the host process and all its descendants
(Playwright's node driver and the Chromium tree), also split by kind. CPU: utime+stime from
/proc/<pid>/stat over an idle window, in % of one core. The stack (moto + API + wa_sim) runs in this
process; its CPU is reported beside the host's, since it answers the host's polls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _name, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                      ("AWS_DEFAULT_REGION", "us-east-1"), ("POWERTOOLS_TRACE_DISABLED", "true"),
                      ("POWERTOOLS_METRICS_DISABLED", "true"), ("POWERTOOLS_LOG_LEVEL", "WARNING")):
    os.environ.setdefault(_name, _value)

from bench.report import machine, pct, ts, write_section  # noqa: E402
from bench.stack import kill_marked, start_moto, stat_fields, stop_process, ticks  # noqa: E402
from infra.local.harness import Api, Phone  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.2
SETTLE_S = 5.0
KINDS = ("host", "driver", "chromium", "other")


# --- processes: PSS and CPU ---------------------------------------------------------------------------------

def tree(root: int) -> dict[int, str]:
    """`root` and all its descendants, each with its kind: host, driver (node), chromium, other."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := stat_fields(int(name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = {root: "host"}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            found[pid] = "chromium" if b"chrom" in argv0 else "driver" if b"node" in argv0 else "other"
    return found


def pss_mb(root: int) -> dict[str, float]:
    """PSS in MB by kind, plus `total` and `processes`."""
    out = dict.fromkeys(KINDS, 0.0)
    pids = tree(root)
    for pid, kind in pids.items():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    out[kind] += int(line.split()[1]) / 1024
                    break
        except OSError:
            continue
    out["total"] = sum(out[k] for k in KINDS)
    out["processes"] = len(pids)
    return out


class CpuWindow:
    """CPU of the host's tree (by kind), this process (`stack`) and a separate moto server between two reads."""

    def __init__(self, root: int, moto_pid: int | None = None) -> None:
        self.pids = tree(root)
        self.pids[os.getpid()] = "stack"
        if moto_pid is not None:
            self.pids[moto_pid] = "moto"
        self.before, self.t0 = ticks(self.pids), time.monotonic()

    def percent(self) -> dict[str, float]:
        """% of one core since the window opened."""
        after, dt = ticks(self.pids), time.monotonic() - self.t0
        out = dict.fromkeys((*KINDS, "stack", "moto"), 0.0)
        for pid, (kind, used) in after.items():
            if pid in self.before:
                out[kind] += (used - self.before[pid][1]) / CLK_TCK / dt * 100
        out["tree"] = sum(out[k] for k in KINDS)
        return out


def idle_cpu(root: int, seconds: float, moto_pid: int | None = None) -> dict[str, float]:
    """% of one core over `seconds` of idle."""
    window = CpuWindow(root, moto_pid)
    time.sleep(seconds)
    return window.percent()


# --- opening accounts ---------------------------------------------------------------------------------------

@dataclass
class Opened:
    account_id: str
    phone: str
    ok: bool = False
    start_to_qr: float | None = None
    scan_to_working: float | None = None
    link_attempts: int = 0
    error: str | None = None


def open_account(api: Api, sim: Phone, account_id: str, phone: str, timeout: float) -> Opened:
    """Start the account, read its QR through the API, scan it with the phone, wait for WORKING."""
    result = Opened(account_id, phone)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    response = api.post(f"/accounts/{account_id}/start")
    if response.status_code != 202:
        result.error = f"start answered {response.status_code}"
        return result
    qr = None
    while time.monotonic() < deadline:
        response = api.get(f"/accounts/{account_id}/qr", params={"format": "raw"})
        if response.status_code == 200:
            qr = response.json()["value"]
            break
        time.sleep(POLL_S)
    if qr is None:
        result.error = "no QR within the timeout"
        return result
    result.start_to_qr = time.monotonic() - t0
    t_scan = time.monotonic()
    while time.monotonic() < deadline:
        result.link_attempts += 1
        status, body = sim.call("POST", "/sim/link", {"qr": qr, "phone_number": phone})
        if status == 200:
            break
        time.sleep(POLL_S)  # the QR rotated between reading and scanning: read the current one
        response = api.get(f"/accounts/{account_id}/qr", params={"format": "raw"})
        qr = response.json()["value"] if response.status_code == 200 else qr
    else:
        result.error = f"the phone refused the QR: {body}"
        return result
    while time.monotonic() < deadline:
        status_now = api.get(f"/accounts/{account_id}").json().get("connection_status")
        if status_now == "WORKING":
            result.scan_to_working, result.ok = time.monotonic() - t_scan, True
            return result
        if status_now == "FAILED":
            result.error = "FAILED after the scan"
            return result
        time.sleep(POLL_S)
    result.error = "not WORKING within the timeout"
    return result


@dataclass
class Step:
    target: int
    reached: int
    open_s: float
    pss: dict[str, float]
    cpu: dict[str, float]
    opened: list[Opened] = field(default_factory=list)


# --- outbound -----------------------------------------------------------------------------------------------

def _metric(health_url: str, name: str) -> float:
    url = health_url.rsplit("/", 1)[0] + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(f"wagate_{name} "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def outbound(api: Api, sim: Phone, health_url: str, accounts: list[Opened], per_account: int, senders: int,
             timeout: float) -> dict[str, Any]:
    """`per_account` texts to each account's own contact, posted by `senders` threads; statuses from the API."""
    contacts = {a.account_id: f"1555800{i:04d}" for i, a in enumerate(accounts)}
    sent_before = _metric(health_url, "messages_sent") + _metric(health_url, "messages_failed")
    posted: list[tuple[str, str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def sender(mine: list[Opened]) -> None:
        for j in range(per_account):
            for account in mine:
                t = time.monotonic()
                response = api.post(f"/accounts/{account.account_id}/messages", json={
                    "to": contacts[account.account_id], "type": "text", "text": {"body": f"bench {j:03d}"}})
                with lock:
                    if response.status_code == 202:
                        posted.append((account.account_id, response.json()["message_id"], time.monotonic() - t))
                    else:
                        errors.append(f"{response.status_code} {response.text[:120]}")

    t0 = time.monotonic()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(sender, [accounts[k::senders] for k in range(senders)]))
    post_s = time.monotonic() - t0
    total = len(posted)
    deadline = time.monotonic() + timeout
    done = 0.0
    # The host's counters say when to look; the API says when every account's last text is terminal (the
    # counters alone can fall short: `messages_sent` misses a text whose ack event recorded `sent` first).
    last: dict[str, str] = {}
    for account_id, message_id, _ in posted:
        last[account_id] = max(last.get(account_id, ""), message_id)
    seen, seen_at = -1.0, time.monotonic()
    while last and time.monotonic() < deadline:
        done = _metric(health_url, "messages_sent") + _metric(health_url, "messages_failed") - sent_before
        if done != seen:
            seen, seen_at = done, time.monotonic()
        if done >= total or time.monotonic() - seen_at > 2:
            for account_id, message_id in list(last.items()):
                status = api.get(f"/accounts/{account_id}/messages/{message_id}").json().get("status")
                if status not in ("queued", "sending"):
                    last.pop(account_id)
            seen_at = time.monotonic()
        time.sleep(0.5)
    drain_s = time.monotonic() - t0
    # Server-side timestamps: `queued` written by the API, `sending`/`sent` by the host (same clock).
    records: list[dict[str, Any]] = []
    for account in accounts:
        cursor = None
        while True:
            params: dict[str, Any] = {"direction": "outbound", "limit": 100, **({"cursor": cursor} if cursor else {})}
            page = api.get(f"/accounts/{account.account_id}/messages", params=params).json()
            records += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    ours = {m for _, m, _ in posted}
    records = [r for r in records if r["message_id"] in ours]
    statuses: dict[str, int] = {}
    latency, queue_wait, send_time, queued_at, sent_at = [], [], [], [], []
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        at = {h["status"]: ts(h["at"]) for h in record.get("status_history", [])}
        if "queued" in at and "sent" in at:
            latency.append(at["sent"] - at["queued"])
            queued_at.append(at["queued"])
            sent_at.append(at["sent"])
            if "sending" in at:
                queue_wait.append(at["sending"] - at["queued"])
                send_time.append(at["sent"] - at["sending"])
    # What each contact's phone shows: every message once, in order.
    in_order = duplicates = missing = 0
    expected = [f"bench {j:03d}" for j in range(per_account)]
    for account in accounts:
        got = [m["body"] for m in sim.received(contacts[account.account_id])]
        in_order += got == expected
        duplicates += len(got) - len(set(got))
        missing += len(set(expected) - set(got))
    span = (max(sent_at) - min(queued_at)) if sent_at else float("nan")
    sent_span = (max(sent_at) - min(sent_at)) if len(sent_at) > 1 else float("nan")
    return {
        "accounts": len(accounts), "per_account": per_account, "senders": senders, "posted": total,
        "post_errors": errors[:5], "post_error_count": len(errors), "post_s": post_s,
        "post_rate": total / post_s if post_s else float("nan"),
        "post_p50_ms": pct([p for *_, p in posted], 0.5) * 1000,
        "post_p99_ms": pct([p for *_, p in posted], 0.99) * 1000,
        "done": done, "drain_s": drain_s, "statuses": statuses, "latency": latency,
        "queue_wait": queue_wait, "send_time": send_time,
        "rate": len(sent_at) / span if sent_at else float("nan"),
        "sent_rate": len(sent_at) / sent_span if sent_span == sent_span and sent_span > 0 else float("nan"),
        "in_order": in_order, "duplicates": duplicates, "missing": missing,
    }


# --- ceilings -----------------------------------------------------------------------------------------------

def dynamodb_ceiling(endpoint_url: str, table: str, seconds: float) -> dict[str, float]:
    """What now bounds a message on the AWS side, measured bare on the same moto (boto3, no product code):
    (a) a loop of conditional UpdateItems on the messages table (queued → sending → sent, each conditional on
    the current status and appending to the status history, as the host's transitions do); (a') one message's
    store sequence as a loop: Query the account's pending rows + the two conditional UpdateItems + SendMessage
    (the status event). Rows are seeded beforehand, untimed."""
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name="us-east-1")
    queue = sqs.create_queue(QueueName="bench-ceiling-events")["QueueUrl"]
    rows = 400

    def seed(account: str) -> list[str]:
        ids = [f"msg_{i:026d}" for i in range(rows)]
        for k in range(0, rows, 25):
            ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {
                "account_id": {"S": account}, "message_id": {"S": m}, "status": {"S": "queued"},
                "direction": {"S": "outbound"}, "tenant_id": {"S": "bench"}, "type": {"S": "text"},
                "content": {"S": '{"to":"15550001111","type":"text","text":{"body":"x"}}'},
                "status_history": {"L": [{"M": {"status": {"S": "queued"}, "at": {"S": "2026-01-01T00:00:00Z"}}}]},
                "created_at": {"S": "2026-01-01T00:00:00Z"}, "updated_at": {"S": "2026-01-01T00:00:00Z"}}}}
                for m in ids[k:k + 25]]})
        return ids

    def move(account: str, message_id: str, old: str, new: str) -> None:
        ddb.update_item(
            TableName=table, Key={"account_id": {"S": account}, "message_id": {"S": message_id}},
            UpdateExpression="SET #s = :new, updated_at = :at, status_history = list_append(status_history, :h), "
                             "fence = :fence",
            ConditionExpression="#s IN (:old) AND (attribute_not_exists(fence) OR fence <= :fence)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":new": {"S": new}, ":old": {"S": old}, ":at": {"S": "2026-01-01T00:00:01Z"}, ":fence": {"N": "1"},
                ":h": {"L": [{"M": {"status": {"S": new}, "at": {"S": "2026-01-01T00:00:01Z"}}}]}})

    ids = seed("acc_bench_ceiling_a")
    updates, t0 = 0, time.perf_counter()
    for message_id in ids:
        move("acc_bench_ceiling_a", message_id, "queued", "sending")
        move("acc_bench_ceiling_a", message_id, "sending", "sent")
        updates += 2
        if time.perf_counter() - t0 > seconds:
            break
    update_rate = updates / (time.perf_counter() - t0)
    ids = seed("acc_bench_ceiling_b")
    sent, t0 = 0, time.perf_counter()
    for message_id in ids:
        ddb.query(TableName=table, ConsistentRead=True, Limit=50,
                  KeyConditionExpression="account_id = :a AND message_id >= :since",
                  FilterExpression="#s IN (:q, :s)", ExpressionAttributeNames={"#s": "status"},
                  ExpressionAttributeValues={":a": {"S": "acc_bench_ceiling_b"}, ":since": {"S": message_id},
                                             ":q": {"S": "queued"}, ":s": {"S": "sending"}})
        move("acc_bench_ceiling_b", message_id, "queued", "sending")
        move("acc_bench_ceiling_b", message_id, "sending", "sent")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"type": "message.status", "id": message_id}))
        sent += 1
        if time.perf_counter() - t0 > seconds:
            break
    sequence_rate = sent / (time.perf_counter() - t0)
    sqs.delete_queue(QueueUrl=queue)
    return {"update_rate": update_rate, "sequence_rate": sequence_rate}


async def _page_ceiling(sim_url: str, seconds: float) -> dict[str, float]:
    from playwright.async_api import async_playwright

    from browser_host import bridge
    from browser_host.chromium import CHROMIUM_PATH, launch_args

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM_PATH, args=launch_args())
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(sim_url)
            await page.wait_for_function(bridge.READY, polling=50)
            calls, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                await page.evaluate(bridge.HEARTBEAT)
                calls += 1
            evaluate_rate = calls / (time.perf_counter() - t0)
            for _ in range(100):  # link the page, so that it can send
                code = await page.evaluate("WPP.conn.getAuthCode().then((c) => c && c.fullCode)")
                if code and Phone(sim_url).call("POST", "/sim/link", {"qr": code,
                                                                        "phone_number": "15557770000"})[0] == 200:
                    break
                await asyncio.sleep(0.1)
            await page.wait_for_function("WPP.conn.isMainReady()", polling=50)
            sends, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                await page.evaluate("([c, b]) => WPP.chat.sendTextMessage(c, b, {waitForAck: true}).then((r) => r.ack)",
                                    ["15557770001@c.us", f"ceiling {sends}"])
                sends += 1
            return {"evaluate_rate": evaluate_rate, "send_rate": sends / (time.perf_counter() - t0)}
        finally:
            await browser.close()


def page_ceiling(sim_url: str, seconds: float) -> dict[str, float]:
    """A bare `page.evaluate` loop on one wa_sim page (own browser), and a bare send-and-wait-for-ack loop."""
    return asyncio.run(_page_ceiling(sim_url, seconds))


# --- the run ------------------------------------------------------------------------------------------------

def _log_summary(path: Path) -> dict[str, Any]:
    levels = {"ERROR": 0, "WARNING": 0, "Traceback": 0}
    samples: dict[str, int] = {}
    if not path.exists():
        return {"levels": levels, "samples": []}
    for line in path.read_text(errors="replace").splitlines():
        for level in levels:
            if f" {level} " in line or line.startswith(level):
                levels[level] += 1
                if level != "Traceback":
                    # Group by the message without ids: "account acc_... : X" -> "X".
                    text = line.split(": ", 1)[-1]
                    key = " ".join(w for w in text.split() if not w.startswith(("acc_", "msg_")))[:110]
                    samples[f"{level}: {key}"] = samples.get(f"{level}: {key}", 0) + 1
    return {"levels": levels, "samples": sorted(samples.items(), key=lambda kv: -kv[1])[:6]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from functions.service.api_keys import ensure_bootstrap_key
    from functions.service.context import services
    from infra.local.emulator import free_port
    from infra.local.host_process import HostProcess
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    counts = sorted({c for c in args.counts if c <= args.max_accounts} | {args.max_accounts})
    t_begin = time.monotonic()
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="wagate-bench-host-"))
    log_path = workdir / "host.log"
    moto, endpoint = start_moto() if args.moto == "process" else (None, None)
    moto_pid = moto.pid if moto else None
    try:
        runtime = LocalRuntime(RuntimeConfig(endpoint_url=endpoint, aws_port=free_port(), api_port=free_port(),
                                             with_sim=True, sim_port=0, sim_qr_interval=args.qr_interval,
                                             extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING",
                                                    "API_RATE_LIMITS": GENEROUS_API_RATES})).start()
    except BaseException:
        if moto:
            moto.kill()
        raise
    host: HostProcess | None = None
    out: dict[str, Any] = {"counts": counts, "load": load, "log": str(log_path), "steps": [], "stopped_because": None,
                           "moto": args.moto}
    try:
        key, _ = ensure_bootstrap_key(services(), None)
        api = Api(runtime.api_url, key)
        sim_url = runtime.sim.url
        sim = Phone(sim_url)
        host_env = {"HOST_MAX_ACCOUNTS": str(max(counts)), "HOST_OPEN_CONCURRENCY": str(args.open_concurrency),
                    "HOST_INBOX_WAIT_SECONDS": str(args.inbox_wait)}
        # Its own TMPDIR: Chromium's temp folders land here and its processes are found by it for the clean-up.
        (workdir / "t").mkdir()
        if args.reconcile_interval:
            host_env["HOST_RECONCILE_INTERVAL"] = str(args.reconcile_interval)
        out["host_env"] = host_env
        t0 = time.monotonic()
        host = HostProcess(runtime.host_env(), log_path=log_path,
                           extra_env={**host_env, "TMPDIR": str(workdir / "t")}).start(timeout=120)
        out["host_start_s"] = time.monotonic() - t0
        assert host.process is not None
        root = host.process.pid
        time.sleep(SETTLE_S)
        out["baseline"] = Step(0, 0, 0.0, _median_pss(root), idle_cpu(root, args.idle_seconds, moto_pid))
        _print_step(out["baseline"])
        working: list[Opened] = []
        failed: list[Opened] = []
        created = 0
        for target in counts:
            t_step = time.monotonic()
            step_opened: list[Opened] = []
            while len(working) < target:
                if time.monotonic() - t_begin > args.budget:
                    out["stopped_because"] = (f"time budget ({args.budget:.0f} s) spent with {len(working)} "
                                              f"WORKING accounts while opening towards {target}")
                    break
                batch = min(args.batch, target - len(working))
                ids = []
                for _ in range(batch):
                    response = api.post("/accounts", json={"account_name": f"bench {created}"})
                    ids.append((response.json()["account_id"], f"1555{created:07d}"))
                    created += 1
                with ThreadPoolExecutor(batch) as pool:
                    results = list(pool.map(lambda a: open_account(api, sim, a[0], a[1], args.open_timeout), ids))
                step_opened += results
                working += [r for r in results if r.ok]
                failed += [r for r in results if not r.ok]
                for r in results:
                    if not r.ok:
                        print(f"  account {r.account_id} failed: {r.error}", flush=True)
                if len(failed) > max(5, len(working) // 5):
                    out["stopped_because"] = f"{len(failed)} accounts failed to open (last: {failed[-1].error})"
                    break
                print(f"  {len(working)} WORKING ({time.monotonic() - t_step:.0f} s into this step)", flush=True)
            open_s = time.monotonic() - t_step
            time.sleep(SETTLE_S)
            step = Step(target, len(working), open_s, _median_pss(root), idle_cpu(root, args.idle_seconds, moto_pid),
                        step_opened)
            out["steps"].append(step)
            _print_step(step)
            if len(working) >= args.outbound_accounts and "outbound" not in out and args.messages > 0:
                window = CpuWindow(root, moto_pid)
                out["outbound"] = outbound(api, sim, host.health_url, working[:args.outbound_accounts],
                                           args.messages, args.senders, args.outbound_timeout)
                out["outbound"]["cpu"] = window.percent()
                _print_outbound(out["outbound"])
            if out["stopped_because"]:
                print(f"  stopped: {out['stopped_because']}", flush=True)
                break
        if "outbound" not in out and working and args.messages > 0:
            window = CpuWindow(root, moto_pid)
            out["outbound"] = outbound(api, sim, host.health_url, working[:args.outbound_accounts],
                                       args.messages, args.senders, args.outbound_timeout)
            out["outbound"]["cpu"] = window.percent()
            _print_outbound(out["outbound"])
        out["failed"] = failed
        out["health"] = host.health()
        out["aws_ceiling"] = dynamodb_ceiling(str(runtime.endpoint_url), runtime.env["MESSAGES_TABLE"],
                                              args.ceiling_seconds)
        out["page_ceiling"] = page_ceiling(sim_url, args.ceiling_seconds)
        print(f"  ceilings: conditional UpdateItem {out['aws_ceiling']['update_rate']:.0f}/s, store sequence "
              f"{out['aws_ceiling']['sequence_rate']:.0f} msg/s, evaluate "
              f"{out['page_ceiling']['evaluate_rate']:.0f} calls/s, send+ack {out['page_ceiling']['send_rate']:.0f}/s",
              flush=True)
    finally:
        if host is not None:
            t0 = time.monotonic()
            host.stop(timeout=180)
            out["host_stop_s"] = time.monotonic() - t0
            out["host_exit"] = host.process.returncode if host.process else None
        runtime.stop()
        kill_marked(str(workdir / "t"))
        shutil.rmtree(workdir / "t", ignore_errors=True)
        stop_process(moto)
        out["log_summary"] = _log_summary(log_path)
        out["total_s"] = time.monotonic() - t_begin
    return out


def _median_pss(root: int) -> dict[str, float]:
    samples = []
    for _ in range(3):  # renderers' GC makes single samples jumpy
        samples.append(pss_mb(root))
        time.sleep(1)
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def _print_step(step: Step) -> None:
    qr = [o.start_to_qr for o in step.opened if o.start_to_qr is not None]
    print(f"N={step.reached:>3}: PSS {step.pss['total']:.0f} MB (chromium {step.pss['chromium']:.0f}, driver "
          f"{step.pss['driver']:.0f}, host {step.pss['host']:.0f}); idle CPU tree {step.cpu['tree']:.1f} % "
          f"(chromium {step.cpu['chromium']:.1f}, host {step.cpu['host']:.1f}, stack {step.cpu['stack']:.1f}); "
          f"opened in {step.open_s:.0f} s, start->QR p50 {pct(qr, 0.5):.2f} s", flush=True)


def _print_outbound(o: dict[str, Any]) -> None:
    print(f"  outbound: {o['posted']} posted in {o['post_s']:.1f} s ({o['post_rate']:.1f}/s), statuses "
          f"{o['statuses']}, enqueue->sent p50 {pct(o['latency'], 0.5):.2f} s p99 {pct(o['latency'], 0.99):.2f} s, "
          f"{o['rate']:.1f} msg/s end to end", flush=True)


# --- report -------------------------------------------------------------------------------------------------

def render(out: dict[str, Any], command: str) -> str:
    steps: list[Step] = out["steps"]
    base: Step = out["baseline"]
    load = out["load"]
    rows = []
    prev = base
    for step in [base, *steps]:
        marginal = ((step.pss["total"] - prev.pss["total"]) / (step.reached - prev.reached)
                    if step.reached > prev.reached else float("nan"))
        per_account_cpu = ((step.cpu["tree"] - base.cpu["tree"]) / step.reached if step.reached else float("nan"))
        rows.append(
            f"| {step.reached} | {step.pss['total']:.0f} | {step.pss['chromium']:.0f} | {step.pss['driver']:.0f} | "
            f"{step.pss['host']:.0f} | {_fmt(marginal, 1)} | {step.cpu['tree']:.1f} | {step.cpu['chromium']:.1f} | "
            f"{step.cpu['host']:.1f} | {_fmt(per_account_cpu, 2)} | {step.cpu['stack']:.1f} | "
            f"{step.cpu.get('moto', 0):.1f} | {_fmt(step.open_s, 0) if step.reached else '-'} |")
        if step.reached > prev.reached:
            prev = step
    opened = [o for s in steps for o in s.opened]
    qr = [o.start_to_qr for o in opened if o.start_to_qr is not None]
    scan = [o.scan_to_working for o in opened if o.scan_to_working is not None]
    by_step = "; ".join(
        f"step to {s.reached}: p50 {pct(q, 0.5):.2f} s / p95 {pct(q, 0.95):.2f} s"
        for s in steps if (q := [o.start_to_qr for o in s.opened if o.start_to_qr is not None]))
    retries = sum(max(0, o.link_attempts - 1) for o in opened)
    failed: list[Opened] = out.get("failed", [])
    lines = [
        f"Measured {machine()} (load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start: the "
        f"machine is shared, so read the CPU figures as upper bounds) with `{command}`.",
        f"Host settings: {', '.join(f'`{k}={v}`' for k, v in out['host_env'].items())}, everything else at its "
        f"default (reconcile every 2 s, heartbeat every 15 s); wa_sim QR rotation every {out['qr_interval']:.0f} s; "
        + ("moto's server in its own process (`--moto process`: in production AWS does not share the API's "
           "interpreter; `make run` embeds it in a thread). " if out["moto"] == "process" else
           "moto's server in a thread of the API's process, as `make run` does. ") +
        f"Whole run {out['total_s'] / 60:.1f} min; host start {out['host_start_s']:.1f} s, SIGTERM to exit "
        f"{out.get('host_stop_s', float('nan')):.1f} s (exit code {out.get('host_exit')}).",
        "",
        "### Accounts per host (WORKING wa_sim accounts, idle)",
        "",
        "| accounts | PSS total MB | Chromium MB | node driver MB | host Python MB | MB per extra account |"
        " idle CPU tree % | Chromium % | host Python % | % per account | API + sim process % | moto % |"
        " open time s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"PSS summed from `/proc/<pid>/smaps_rollup` over the host process and every descendant (median of 3 "
        f"samples, {SETTLE_S:.0f} s after the last link); CPU over {out['idle_seconds']:.0f} s of idle, in % of one "
        "core; \"% per account\" = (tree - tree at 0) / N. \"API + sim process\" is this benchmark's process (the "
        "local API, wa_sim serving the pages' sockets" + (", and moto" if out["moto"] == "thread" else "") +
        "); \"moto %\" is moto's server answering the host's DynamoDB/SQS polls" +
        (" (its own process)" if out["moto"] == "process" else " (in the API's process here: 0)") +
        ". \"open time\" = wall time "
        f"to add that step's accounts, {out['batch']} at a time (start + QR + scan + WORKING).",
    ]
    if out.get("stopped_because"):
        lines += ["", f"**Stopped early:** {out['stopped_because']}."]
    if failed:
        lines += ["", f"Accounts that did not reach WORKING: {len(failed)} (" +
                  "; ".join(sorted({f.error or '?' for f in failed})) + ")."]
    lines += [
        "",
        "### Start → QR → WORKING",
        "",
        f"Over {len(opened)} accounts: **start → QR** (`POST /accounts/{{id}}/start` until `GET "
        f"/accounts/{{id}}/qr?format=raw` answers 200) p50 **{pct(qr, 0.5):.2f} s**, p95 **{pct(qr, 0.95):.2f} s** "
        f"({by_step}); **scan → WORKING** (`POST /sim/link` until the API shows `WORKING`) p50 "
        f"**{pct(scan, 0.5):.2f} s**, p95 **{pct(scan, 0.95):.2f} s**. Polled every {POLL_S:.1f} s; "
        f"{retries} scans had to be repeated because the QR had rotated.",
        "",
        f"Start → QR includes up to one reconcile interval before the host sees the start; the {out['batch']} "
        "accounts of a batch are opened `HOST_OPEN_CONCURRENCY` at a time, so it grows with the batch on 2 cores.",
    ]
    o = out.get("outbound")
    if o:
        aws, page = out["aws_ceiling"], out["page_ceiling"]
        lat, wait, send = o["latency"], o["queue_wait"], o["send_time"]
        cores = os.cpu_count() or 1
        host_cs = max(1e-9, o["cpu"]["tree"] / 100 * o["drain_s"] / max(1, o["posted"]))
        lines += [
            "",
            f"### Outbound: {o['accounts']} accounts x {o['per_account']} texts",
            "",
            f"{o['posted']} texts posted through the API by {o['senders']} client threads in {o['post_s']:.1f} s "
            f"({o['post_rate']:.1f}/s, POST p50 {o['post_p50_ms']:.0f} ms, p99 {o['post_p99_ms']:.0f} ms"
            f"{', ' + str(o['post_error_count']) + ' errors' if o['post_error_count'] else ''}) while the host "
            f"drained each account's outbox (the `queued` rows; a nudge to its inbox per message, long-polled with "
            f"`HOST_INBOX_WAIT_SECONDS={out['host_env']['HOST_INBOX_WAIT_SECONDS']}`); final statuses {o['statuses']}. "
            "\"Sent\" is the API's message status `sent` (the "
            "host writes it when WhatsApp's server — the simulator — acks, ack 1); latencies come from the message's "
            "status history (`queued` written by the API, `sending`/`sent` by the host, same clock). On the phones: "
            f"{o['in_order']}/{o['accounts']} contacts got their {o['per_account']} texts exactly once and in order "
            f"({o['duplicates']} duplicates, {o['missing']} missing). The host's `wagate_messages_sent` + "
            f"`wagate_messages_failed` counters (`/metrics`) rose by {o['done']:.0f} for these {o['posted']} texts.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| enqueue → sent, p50 / p99 | {pct(lat, 0.5):.2f} s / {pct(lat, 0.99):.2f} s |",
            f"| of which queued → sending (nudge + pick-up), p50 / p99 | {pct(wait, 0.5):.2f} s / "
            f"{pct(wait, 0.99):.2f} s |",
            f"| of which sending → sent (page + ack + writes), p50 / p99 | {pct(send, 0.5):.2f} s / "
            f"{pct(send, 0.99):.2f} s |",
            f"| sustained, first `queued` → last `sent` | **{o['rate']:.1f} msg/s** |",
            f"| host send rate, first → last `sent` | {o['sent_rate']:.1f} msg/s |",
            f"| ceiling (a): bare conditional UpdateItem loop on the messages table, same moto | "
            f"{aws['update_rate']:.0f} updates/s |",
            f"| (a'): one message's store sequence, bare (Query pending + 2 conditional UpdateItems + SendMessage) | "
            f"{aws['sequence_rate']:.1f} msg/s |",
            f"| ceiling (b): bare `page.evaluate` loop, one wa_sim page | {page['evaluate_rate']:.0f} calls/s |",
            f"| (b'): bare `sendTextMessage` + wait for ack loop, one page | {page['send_rate']:.0f} msg/s |",
            f"| ours / (a') | {o['rate'] / aws['sequence_rate']:.2f} |",
            f"| ours / (b) | {o['rate'] / page['evaluate_rate']:.3f} |",
            f"| ours / (b') | {o['rate'] / page['send_rate']:.2f} |",
            "",
            f"CPU while posting and draining ({o['drain_s']:.0f} s, % of one core): host tree {o['cpu']['tree']:.0f} % "
            f"(Chromium {o['cpu']['chromium']:.0f}, host Python {o['cpu']['host']:.0f}, node driver "
            f"{o['cpu']['driver']:.0f}), API + sim process {o['cpu']['stack']:.0f} %, moto {o['cpu']['moto']:.0f} %. "
            f"That is **{host_cs * 1000:.0f} ms of CPU per message in the host's tree** (Chromium "
            f"{o['cpu']['chromium'] / 100 * o['drain_s'] / max(1, o['posted']) * 1000:.0f} ms), so the host alone on "
            f"this machine's {cores} cores would top out near **{cores / host_cs:.0f} msg/s** if nothing else needed "
            "CPU." + (f" moto used {o['cpu']['moto']:.0f} % of a core — one Python process, so it is saturated: the "
                      "outbound rate here is the emulator's, not the host's." if o["cpu"]["moto"] > 70 else ""),
            "",
            "There is no outbound queue any more: the API's `queued` row is the outbox and a nudge wakes the owner. "
            "Per message the host receives and deletes the nudge, queries the account's pending rows, makes the "
            "`sending` and `sent` conditional writes (fenced by its lease token) and publishes a `message.status` "
            "event, plus 3 `evaluate`s (find, send, wait for the ack); `python -m bench.fleet` counts every call "
            "by operation (docs: Fleet (c)). One worker per account, so (a'), (b) and (b') are what one bare loop "
            "gets on this machine, not a bound the host could reach; the shared moto process is usually the first "
            "thing saturated here, an emulator artifact, not the host's.",
        ]
    summary = out.get("log_summary", {})
    levels = summary.get("levels", {})
    lines += [
        "",
        f"Host log: {levels.get('ERROR', 0)} ERROR, {levels.get('WARNING', 0)} WARNING lines, "
        f"{levels.get('Traceback', 0)} tracebacks" + (": " + "; ".join(f"{k} (x{n})" for k, n in
                                                          summary.get("samples", [])) if summary.get("samples") else "")
        + ".",
        "",
        interpretation(out),
    ]
    return "\n".join(lines)


def interpretation(out: dict[str, Any]) -> str:
    base: Step = out["baseline"]
    steps: list[Step] = [s for s in out["steps"] if s.reached]
    if not steps:
        return ""
    top = steps[-1]
    first = steps[0]
    per_mb = (top.pss["total"] - first.pss["total"]) / (top.reached - first.reached) if top.reached > first.reached \
        else top.pss["total"] - base.pss["total"]
    per_cpu = (top.cpu["tree"] - base.cpu["tree"]) / top.reached
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = os.cpu_count() or 1
    mem_cap = (mem_gib * 1024 - base.pss["total"]) / per_mb if per_mb > 0 else float("inf")
    cpu_cap = (cores * 100 - base.cpu["tree"]) / per_cpu if per_cpu > 0 else float("inf")
    limit = "CPU" if cpu_cap < mem_cap else "memory"
    return (
        f"**Reading.** An idle WORKING account costs about **{per_mb:.0f} MB** of PSS ({first.reached} → "
        f"{top.reached} accounts) and **{per_cpu:.2f} % of a core** for the host's whole tree. The brief predicted "
        "~1 % of a core per idle session from a test page with a 1 Hz timer; the wa_sim page has no timer at all "
        "when idle (it only holds its socket; the host adds one heartbeat `evaluate` per 15 s), so idle CPU is "
        "near zero here (10 s samples on a shared machine are noisy: compare the rows). "
        f"Straight-line, {mem_gib:.0f} GiB would hold ~{mem_cap:.0f} such accounts and {cores} cores "
        f"~{cpu_cap:.0f} at idle: on wa_sim, **{limit}** is the first limit at idle — but idle is the best case: "
        "opening accounts and sending cost far more than idling, and in this local stack "
        "the emulated AWS calls cost more CPU than the host itself. Real WhatsApp Web is far heavier (300-500 MB "
        "per session reported, constant timers and sync traffic), so production density is set by WhatsApp's "
        "own page; these numbers bound the host's overhead (shared browser ~240 MB, node driver ~120 MB, host "
        "Python ~100 MB, ~30 MB per context), not WhatsApp's."
    )


def _fmt(value: float, digits: int) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-accounts", type=int, default=50, help="largest step (100 for the full run)")
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50, 100],
                        help="steps at which memory and idle CPU are measured (capped by --max-accounts)")
    parser.add_argument("--batch", type=int, default=10, help="accounts started and linked in parallel")
    parser.add_argument("--open-concurrency", type=int, default=4, help="HOST_OPEN_CONCURRENCY")
    parser.add_argument("--reconcile-interval", type=float, default=0, help="HOST_RECONCILE_INTERVAL (0: default)")
    parser.add_argument("--qr-interval", type=float, default=20.0, help="wa_sim QR rotation")
    parser.add_argument("--open-timeout", type=float, default=180.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--outbound-accounts", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="texts per account (0: skip outbound)")
    parser.add_argument("--senders", type=int, default=4, help="client threads posting messages")
    parser.add_argument("--inbox-wait", "--outbound-wait", dest="inbox_wait", type=int, default=1,
                        help="HOST_INBOX_WAIT_SECONDS: long poll of the host's inbox and the control queue (default "
                             "10 in production; 1 as the local runtime sets it: moto's long poll burns CPU meanwhile)")
    parser.add_argument("--outbound-timeout", type=float, default=300.0)
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--moto", choices=("process", "thread"), default="process",
                        help="moto's server in its own process (default) or in this process like `make run`")
    parser.add_argument("--budget", type=float, default=660.0,
                        help="seconds after which no more accounts are opened (the rest of the run still happens)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.browser_host" + (" " + " ".join(given) if given else "")
    out = run(args)
    out.update(qr_interval=args.qr_interval, idle_seconds=args.idle_seconds, batch=args.batch)
    report = render(out, command)
    print()
    print(report)
    print(f"\n(host log: {out['log']})")
    if not args.no_write:
        write_section("Browser host", report, keep=("Density",))  # bench.density's subsection stays


if __name__ == "__main__":
    main()
