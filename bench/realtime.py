"""Real time: event → WebSocket client latency with many connected clients (against a bare aiohttp broadcast to
the same clients, same run), link on the phone → WORKING badge in the dashboard, and the dashboard's first render
with 200 numbers. Goals are printed as met/missed, never asserted.

    python -m bench.realtime [--quick] [--clients 100,1000] [--events 100,15] [--rate 3,0.25] [--bare-rate 10]
                             [--links 10] [--accounts 200] [--loads 5] [--skip fanout,link,render] [--no-write]

Runs on this machine: moto's server in its own process, the local API, the local WebSocket gateway
(`infra/local/apigw_ws.py`), the SQS pollers (the fan-out function among them) and wa_sim in this process
(`infra/local/runtime.py`), the WebSocket clients in one asyncio loop in a second Python process (so they do
not share this one's interpreter lock), and for the dashboard one `python -m browser_host` plus a Playwright
page in Debian Chromium. Both processes take times from the same monotonic clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.fleet import Bench, fmt, say, stack
from bench.report import machine, pct, source_state, write_section
from bench.stack import ROOT, CpuMeter
from infra.local.harness import Api, wait_until

GOAL_LINK_TO_BADGE_S = 1.0
SUBSCRIBE = json.dumps({"action": "subscribe", "account_ids": None, "events": None})


def goal(value: float, limit: float) -> str:
    return "met" if value <= limit else "missed"


# --- the clients (a second process) ------------------------------------------------------------------------

async def _clients(spec: dict[str, Any]) -> None:
    """Connect `clients` WebSockets (each with a ticket of its own, or all to one bare URL), subscribe each,
    say READY, record every event's arrival until told to stop, then print what arrived."""
    import aiohttp

    n = int(spec["clients"])
    arrivals: list[dict[str, float]] = [{} for _ in range(n)]
    sockets: list[Any] = []
    failures: Counter[str] = Counter()
    closed = 0
    settled = 0
    all_settled = asyncio.Event()
    gate = asyncio.Semaphore(int(spec.get("concurrency", 50)))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
    t0 = time.monotonic()

    def settle() -> None:
        nonlocal settled
        settled += 1
        if settled == n:
            all_settled.set()

    async def one(i: int) -> None:
        nonlocal closed
        try:
            async with gate:
                url = spec.get("url")
                if not url:
                    async with session.post(spec["api_url"] + "/realtime/tickets",
                                            headers={"X-Api-Key": spec["key"]}) as response:
                        assert response.status == 201, f"ticket {response.status}"
                        url = (await response.json())["url"]
                ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
                await ws.send_str(SUBSCRIBE)
                answer = await ws.receive(timeout=60)
                assert answer.type == aiohttp.WSMsgType.TEXT and '"subscribed"' in answer.data, str(answer.data)[:80]
        except Exception as exc:  # counted and reported
            failures[type(exc).__name__ + ": " + str(exc)[:60]] += 1
            settle()
            return
        settle()
        sockets.append(ws)
        mine = arrivals[i]
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                now = time.monotonic()
                data = message.data
                if data.startswith('{"id":"'):  # events as pydantic writes them; skips other frames cheaply
                    mine[data[7:data.index('"', 7)]] = now
        closed += 1

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await all_settled.wait()
    print(json.dumps({"ready": n - sum(failures.values()), "failures": dict(failures),
                      "connect_s": time.monotonic() - t0}), flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    expected: list[str] = json.loads(line or "[]")
    await asyncio.sleep(0)
    times = {event_id: [a[event_id] for a in arrivals if event_id in a] for event_id in expected}
    complete = sum(1 for a in arrivals if a and all(e in a for e in expected))
    print(json.dumps({"times": times, "complete": complete, "closed": closed}), flush=True)
    # Close frames, so the gateway runs $disconnect now rather than after its dead-peer timeout
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


class Clients:
    """The client process: `start()` returns once every client subscribed (or failed); `finish(ids)` returns
    arrival times per event id."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.realtime", "--clients-worker"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the client process ended before its clients were connected")
        self.ready: dict[str, Any] = json.loads(line)

    def finish(self, expected: list[str]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(expected) + "\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self.process.stdout.readline() or "{}")
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return result


# --- the bare baseline: one aiohttp WebSocket server broadcasting --------------------------------------------

class Broadcaster:
    """An aiohttp WebSocket server (own thread and loop) that answers `subscribe` and sends each published text
    to every client at once: what a broadcast costs here without wagate."""

    def __init__(self) -> None:
        self.clients: set[Any] = set()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), name="bare-ws", daemon=True).start()
        started.wait(30)

    def _run(self, started: threading.Event) -> None:
        from aiohttp import web

        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            self.clients.add(ws)
            try:
                async for message in ws:
                    if '"subscribe"' in str(message.data):
                        await ws.send_str('{"type": "subscribed", "account_ids": null, "events": null}')
            finally:
                self.clients.discard(ws)
            return ws

        async def serve() -> web.AppRunner:
            app = web.Application()
            app.router.add_get("/", handler)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            return runner

        asyncio.set_event_loop(self.loop)
        runner = self.loop.run_until_complete(serve())
        started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def publish(self, body: str) -> None:
        async def broadcast() -> None:
            await asyncio.gather(*(ws.send_str(body) for ws in list(self.clients)), return_exceptions=True)
        asyncio.run_coroutine_threadsafe(broadcast(), self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- (1) event → WebSocket clients ----------------------------------------------------------------------------

def new_tenant(bench: Bench, name: str) -> Api:
    """The admin of a brand-new tenant."""
    response = bench.api.post("/api-keys", json={"name": "admin", "role": "admin",
                                                 "tenant": f"{name}-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return bench.api.with_key(response.json()["api_key"])


def publish_paced(publish: Any, events: int, rate: float) -> dict[str, float]:
    """Call `publish(event_id)` `events` times at `rate`/s on a fixed schedule; event id → publish time."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    for i in range(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event_id = f"evt_{uuid.uuid4().hex[:26]}"
        sent[event_id] = time.monotonic()
        publish(event_id)
    return sent


def summarise(sent: dict[str, float], result: dict[str, Any], clients: int) -> dict[str, Any]:
    latencies = [t - sent[e] for e, times in result["times"].items() for t in times]
    last = [max(times) - sent[e] for e, times in result["times"].items() if times]
    delivered = sum(len(times) for times in result["times"].values())
    return {"latencies": latencies, "last": last, "delivered": delivered, "expected": clients * len(sent),
            "complete": result["complete"], "closed": result["closed"]}


def fanout_run(bench: Bench, clients: int, events: int, rate: float, bare_rate: float) -> dict[str, Any]:
    """`clients` WebSockets of one tenant's admin key, subscribed to everything; `events` published with the
    EventBus (SNS → RealtimeQueue → fan-out function → @connections posts); beside it the bare broadcaster."""
    from core.config import get_settings
    from core.models.events import EventType
    from core.store.queues import EventBus

    admin = new_tenant(bench, "rt")
    tenant_id = admin.get("/me").json()["tenant_id"]
    account_id = admin.post("/accounts", json={"account_name": "realtime bench"}).json()["account_id"]
    out: dict[str, Any] = {"clients": clients, "events": events, "rate": rate, "bare_rate": bare_rate}

    def body(event_id: str) -> str:
        return json.dumps({"id": event_id, "type": "message.status", "created_at": "2026-01-01T00:00:00.000Z",
                           "account_id": account_id, "data": {"message_id": "msg_x", "status": "sent"}},
                          separators=(",", ":"))

    # The bare broadcast first, to the same number of clients in the same client process
    bare = Broadcaster()
    try:
        group = Clients({"clients": clients, "url": bare.url})
        sent = publish_paced(lambda e: bare.publish(body(e)), events, bare_rate)
        time.sleep(2)
        out["bare"] = summarise(sent, group.finish(list(sent)), clients)
        out["bare"]["ready"] = group.ready
    finally:
        bare.stop()
    say(f"{clients} clients, bare broadcast: p50 {fmt(pct(out['bare']['latencies'], 0.5) * 1000, 1)} ms, "
        f"p99 {fmt(pct(out['bare']['latencies'], 0.99) * 1000, 1)} ms")

    # wagate: tickets through the API, $connect/subscribe through the gateway, events through the EventBus
    bus = EventBus.from_settings(get_settings())
    group = Clients({"clients": clients, "api_url": bench.runtime.api_url, "key": admin.key, "concurrency": 20})
    out["ready"] = group.ready
    say(f"{clients} clients: {group.ready['ready']} subscribed in {group.ready['connect_s']:.1f} s"
        + (f", failures {group.ready['failures']}" if group.ready["failures"] else ""))
    # Warm-up (not counted): the fan-out function's first invocation imports it and builds its clients.
    publish_paced(lambda e: bus.publish(EventType.MESSAGE_STATUS, account_id, tenant_id, {"warm": True}, e), 2, 1)
    wait_until(lambda: _queue_depth(bench) == 0, 120, "the warm-up events fanned out", every=0.2)
    meter = CpuMeter([], {"stack": os.getpid(), "moto": bench.moto_pid, "clients": group.process.pid}).start()
    sent = publish_paced(lambda e: bus.publish(EventType.MESSAGE_STATUS, account_id, tenant_id,
                                               {"message_id": "msg_x", "status": "sent"}, e), events, rate)
    # The fan-out has caught up once its queue is empty (the poller deletes a batch after posting it).
    wait_until(lambda: _queue_depth(bench) == 0, 300, "the real-time queue drained", every=0.5)
    time.sleep(2)
    out["cpu"] = meter.read()
    out["wagate"] = summarise(sent, group.finish(list(sent)), clients)
    w = out["wagate"]
    say(f"{clients} clients, wagate: p50 {fmt(pct(w['latencies'], 0.5) * 1000, 0)} ms, "
        f"p99 {fmt(pct(w['latencies'], 0.99) * 1000, 0)} ms, {w['delivered']}/{w['expected']} delivered, "
        f"{w['complete']}/{clients} clients got every event")
    # The clients closed; wait for their $disconnect runs (the gateway forgets a connection before its
    # function has run), so they do not weigh on what is measured next.
    from functions.service.context import services

    wait_until(lambda: not services().realtime.subscribers(tenant_id), 300, "every client's $disconnect", every=1)
    time.sleep(1)
    return out


def _queue_depth(bench: Bench) -> int:
    from core.aws import client

    url = bench.runtime.stack.refs["RealtimeQueue"]
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


# --- (2) link on the phone → WORKING badge; (3) first render with 200 numbers ---------------------------------

BADGE_WATCH = """
window.__badge = {}; window.__ws = {};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (m) => {
      const at = performance.timeOrigin + performance.now();
      try {
        const d = JSON.parse(m.data);
        if (d.type === "account.status" && d.data && d.data.status === "WORKING" && !(d.account_id in window.__ws))
          window.__ws[d.account_id] = {at, created_at: d.created_at};
      } catch (e) { /* not JSON */ }
    });
  }
};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('#accounts-table tbody tr [data-status="WORKING"]')) {
    const id = el.closest("tr").dataset.accountId;
    if (!(id in window.__badge)) window.__badge[id] = performance.timeOrigin + performance.now();
  }
}).observe(document, {subtree: true, childList: true});
"""


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/whatsapp-accounts")
    page.fill("#api-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#numbers:not([hidden])")


def link_run(bench: Bench, browser: Any, n: int) -> dict[str, Any]:
    """N numbers added through the API and linked one by one by the phone while the page watches."""
    from bench.report import ts

    admin = new_tenant(bench, "dash")
    fleet = bench.fleet("link", {"HOST_RECONCILE_INTERVAL": "0.5"})
    bench.start_host(fleet)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(BADGE_WATCH)
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, bench.runtime.api_url, str(admin.key))
    page.wait_for_selector("#live[data-state=live]")
    rows: list[dict[str, float]] = []
    for i in range(n):
        account_id = admin.post("/accounts", json={"account_name": f"Line {i}"}).json()["account_id"]
        assert admin.post(f"/accounts/{account_id}/start").status_code == 202
        row = f"#accounts-table tr[data-account-id='{account_id}']"
        page.wait_for_selector(f"{row} [data-status=SCAN_QR_CODE]", timeout=60_000)
        business = "1555" + str(uuid.uuid4().int)[:7]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            qr = admin.get(f"/accounts/{account_id}/qr", params={"format": "raw"}).json()["value"]
            status, _ = bench.phone.call("POST", "/sim/link", {"qr": qr, "phone_number": business})
            scanned_wall, scanned = time.time(), time.monotonic()
            if status < 300:
                break
            time.sleep(0.1)  # the code rotated between the read and the scan
        else:
            raise AssertionError(f"the phone kept refusing the QR of {account_id}")
        page.wait_for_function(f"() => window.__badge[{json.dumps(account_id)}]", polling="raf", timeout=30_000)
        waited = time.monotonic() - scanned
        badge = page.evaluate(f"window.__badge[{json.dumps(account_id)}]") / 1000
        socket = page.evaluate(f"window.__ws[{json.dumps(account_id)}] || null")
        item = {"badge": badge - scanned_wall, "waited": waited, "event": float("nan"), "socket": float("nan")}
        if socket:
            item["event"] = ts(socket["created_at"]) - scanned_wall
            item["socket"] = socket["at"] / 1000 - scanned_wall
        rows.append(item)
        say(f"  link {i + 1}/{n}: scan → badge {item['badge'] * 1000:.0f} ms (event written "
            f"{item['event'] * 1000:.0f} ms, at the socket {item['socket'] * 1000:.0f} ms)")
    context.close()
    bench.stop_fleet(fleet)
    return {"rows": rows}


def render_run(bench: Bench, browser: Any, accounts: int, loads: int) -> dict[str, Any]:
    """`accounts` numbers in a fresh tenant; navigation → the table showing them all, `loads` times."""
    admin = new_tenant(bench, "render")

    def create(i: int) -> None:
        response = admin.post("/accounts", json={"account_name": f"Number {i:03d}"})
        assert response.status_code == 201, response.text

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(accounts)))
    say(f"{accounts} accounts created in {time.monotonic() - t0:.1f} s")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, bench.runtime.api_url, str(admin.key))
    page.wait_for_selector("#live[data-state=live]")
    base = bench.runtime.api_url
    out: dict[str, Any] = {"accounts": accounts, "in_page": [], "outside": [], "calls": []}
    for _ in range(loads):
        calls: list[Any] = []
        def listener(request: Any, calls: list[Any] = calls) -> None:
            calls.append(request)

        page.on("requestfinished", listener)
        started = time.monotonic()
        page.goto(base + "/whatsapp-accounts", wait_until="commit")
        in_page = page.wait_for_function(
            f"() => document.querySelectorAll('#accounts-table tbody tr').length >= {accounts} && performance.now()",
            polling="raf")
        out["outside"].append(time.monotonic() - started)
        out["in_page"].append(float(in_page.json_value()) / 1000)
        page.wait_for_selector("#live[data-state=live]")
        page.remove_listener("requestfinished", listener)
        api_calls = []
        for request in calls:
            path = request.url.removeprefix(base)
            if path.startswith(("/assets/", "/whatsapp-accounts", "/favicon")):
                continue
            timing = request.timing
            api_calls.append((f"{request.method} {path.split('?')[0]}", path,
                              timing["responseEnd"] if timing["responseEnd"] > 0 else float("nan")))
        out["calls"].append(api_calls)
        say(f"  load: {accounts} rows after {out['in_page'][-1] * 1000:.0f} ms (page clock), "
            f"{len(api_calls)} API calls")
    context.close()
    return out


def dashboard_runs(bench: Bench, args: argparse.Namespace) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from playwright.sync_api import sync_playwright

    from browser_host.chromium import chromium_path, launch_args

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=launch_args())
        try:
            link = link_run(bench, browser, args.links) if "link" not in args.skip else None
            render = render_run(bench, browser, args.accounts, args.loads) if "render" not in args.skip else None
        finally:
            browser.close()
    return link, render


# --- report ---------------------------------------------------------------------------------------------------

def ms(value: float, digits: int = 0) -> str:
    return fmt(value * 1000, digits)


def render(fanouts: list[dict[str, Any]], link: dict[str, Any] | None, first: dict[str, Any] | None,
           args: argparse.Namespace, command: str) -> str:
    lines = [f"Measured {machine()} ({source_state()}) with `{command}`; 1-minute load average "
             f"{args.load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (other jobs share "
             "these cores: above 2, they slowed what is measured here).", ""]
    if fanouts:
        lines += ["### Event → WebSocket clients", "",
                  "N WebSocket clients of one tenant's admin key, each with its own ticket "
                  "(`POST /realtime/tickets`), connected through the local gateway and subscribed to everything; "
                  "then events published at a steady rate with `EventBus` as hosts do (SNS topic → RealtimeQueue "
                  "→ the fan-out function behind the local SQS poller → one `@connections` post per connection, "
                  "32 at a time). Latency: publish → arrival at each client (every client measured; one monotonic "
                  "clock). Beside it, the bare baseline in the same run: one aiohttp WebSocket server in this "
                  "process sending each event to the same number of clients at once (no queue, no lookup, no "
                  f"per-connection HTTP post; {fanouts[0]['bare_rate']:g} events/s). The rate through wagate is "
                  "what the local fan-out keeps up with at each size (see below).", "",
                  "| clients | events (per s) | subscribed (connect time) | bare p50 / p99 | wagate p50 / p99 | "
                  "ratio p50 | last client p50 / max | delivered | clients with every event | CPU s: API process "
                  "/ moto / clients |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for f in fanouts:
            b, w, c = f["bare"], f["wagate"], f["cpu"]
            ratio = pct(w["latencies"], 0.5) / pct(b["latencies"], 0.5)
            lines.append(
                f"| {f['clients']} | {f['events']} ({f['rate']:g}) | {f['ready']['ready']} "
                f"({f['ready']['connect_s']:.1f} s) | "
                f"{ms(pct(b['latencies'], 0.5), 1)} / {ms(pct(b['latencies'], 0.99), 1)} ms | "
                f"**{ms(pct(w['latencies'], 0.5))} / {ms(pct(w['latencies'], 0.99))} ms** | {fmt(ratio, 0)}x | "
                f"{ms(pct(w['last'], 0.5))} / {ms(max(w['last'], default=float('nan')))} ms | "
                f"{w['delivered']}/{w['expected']} | {w['complete']}/{f['clients']} | "
                f"{c.get('stack', 0):.1f} / {c.get('moto', 0):.1f} / {c.get('clients', 0):.1f} "
                f"(in {c['wall']:.0f} s) |")
        lines += ["", "\"Last client\": publish → arrival at the last of the N clients, per event. CPU: over the "
                  "publishing phase and until the queue was drained, of this process (API, gateway, fan-out), "
                  "moto, and the client process."]
        lines += ["", fanout_comment(fanouts)]
        lines.append("")
    if link is not None:
        rows = link["rows"]
        badge = [r["badge"] for r in rows]
        event = [r["event"] for r in rows if r["event"] == r["event"]]
        socket = [r["socket"] for r in rows if r["socket"] == r["socket"]]
        waited = [r["waited"] for r in rows]
        p95 = pct(badge, 0.95)
        lines += ["### Link on the phone → WORKING badge", "",
                  f"A Playwright page (Debian Chromium) signed in on the dashboard, one host running; {len(rows)} "
                  "numbers added and started through the API, each scanned by wa_sim's phone (`POST /sim/link`) "
                  "once the page showed its QR status. Clock from the scan call returning to the row's badge "
                  "turning `WORKING` in the DOM (a MutationObserver in the page; page and Python share the wall "
                  "clock). The split: the `account.status` event's `created_at` (written by the host) and its "
                  "arrival at the page's socket.", "",
                  "| measure | p50 | p95 | max |", "|---|---|---|---|",
                  f"| scan → badge WORKING | {ms(pct(badge, 0.5))} ms | **{ms(p95)} ms** | {ms(max(badge))} ms |",
                  f"| of which scan → event created (host) | {ms(pct(event, 0.5))} ms | {ms(pct(event, 0.95))} ms "
                  f"| {ms(max(event, default=float('nan')))} ms |",
                  f"| of which scan → event at the page's socket | {ms(pct(socket, 0.5))} ms | "
                  f"{ms(pct(socket, 0.95))} ms | {ms(max(socket, default=float('nan')))} ms |",
                  f"| Python side: scan → `wait_for_function` returned | {ms(pct(waited, 0.5))} ms | "
                  f"{ms(pct(waited, 0.95))} ms | {ms(max(waited))} ms |", "",
                  f"Goal scan → badge ≤ {GOAL_LINK_TO_BADGE_S:g} s p95: **{goal(p95, GOAL_LINK_TO_BADGE_S)}**.", ""]
    if first is not None:
        in_page, outside = first["in_page"], first["outside"]
        per_load = Counter(name for calls in first["calls"] for name, _, _ in calls)
        durations: dict[str, list[float]] = {}
        for calls in first["calls"]:
            for name, _, took in calls:
                durations.setdefault(name, []).append(took)
        loads = len(first["calls"])
        lines += ["### Dashboard first render", "",
                  f"{first['accounts']} numbers in a fresh tenant (created through the API), the page signed in "
                  f"once (the key stays in sessionStorage), then {loads} navigations to `/whatsapp-accounts`, each "
                  f"timed until the table holds all {first['accounts']} rows: in the page (`performance.now()`, "
                  "from navigation start) and from Python (`goto` → `wait_for_function`).", "",
                  "| measure | p50 | min | max |", "|---|---|---|---|",
                  f"| navigation → {first['accounts']} rows (page clock) | **{ms(statistics.median(in_page))} ms** | "
                  f"{ms(min(in_page))} ms | {ms(max(in_page))} ms |",
                  f"| the same from Python | {ms(statistics.median(outside))} ms | {ms(min(outside))} ms | "
                  f"{ms(max(outside))} ms |", "",
                  "API calls the page made per load (until the socket was live). Rows are drawn once every "
                  "page of `GET /accounts` (100 numbers each, fetched one after another) has arrived, so with "
                  f"{first['accounts']} numbers those sequential calls are most of the time:", "",
                  "| call | per load | median ms |", "|---|---|---|",
                  *[f"| `{name}` | {count / loads:g} | {ms(statistics.median(durations[name]) / 1000)} |"
                    for name, count in sorted(per_load.items(), key=lambda kv: -kv[1])], ""]
    return "\n".join(lines).rstrip() + "\n"


def fanout_comment(fanouts: list[dict[str, Any]]) -> str:
    big = max(fanouts, key=lambda f: f["clients"])
    c, w = big["cpu"], big["wagate"]
    per_post = c.get("stack", 0) / max(1, w["delivered"]) * 1000
    connect = big["ready"]["ready"] / max(big["ready"]["connect_s"], 1e-9)
    dropped = [f"{f['wagate']['closed']} of {f['clients']}" for f in fanouts if f["wagate"]["closed"]]
    return (f"What limits it here: every event costs one HTTP post per connection, and with {big['clients']} "
            f"clients this process spent about {per_post:.1f} ms of CPU per delivered message (boto3's signed "
            "`post_to_connection` to the local gateway's management API, the gateway writing the frame, the "
            "fan-out's DynamoDB reads and writes), all in one interpreter on two cores shared with moto and the "
            f"clients. So one event to {big['clients']} clients takes ≈ {per_post * big['clients'] / 1000:.1f} s of "
            f"CPU, and the queue backs up once events come faster than ≈ "
            f"{1000 / max(per_post * big['clients'], 1e-9):.2f} per second; that is why the larger run uses a lower "
            f"rate and fewer events. Connecting is bounded the same way: {connect:.0f} clients/s (a ticket through "
            "the API, then `$connect` and `subscribe`, each a few DynamoDB calls). "
            + (f"The fan-out dropped connections whose post failed or timed out: {', '.join(dropped)}. "
               if dropped else "No connection was dropped. ")
            + "On AWS the posts go from concurrent Lambda invocations to API Gateway, which writes the frames; the "
            "local figures are a floor set by one Python process, not the design's ceiling.")


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def at(values: list[Any], i: int) -> Any:
    """The i-th of a per-client-count option; its last value when it has fewer."""
    return values[min(i, len(values) - 1)]


def main(argv: list[str] | None = None) -> None:
    if argv is None and sys.argv[1:2] == ["--clients-worker"]:
        asyncio.run(_clients(json.loads(sys.stdin.readline())))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 clients, 30 events, 3 links, 50 numbers, 3 loads")
    parser.add_argument("--clients", type=ints, default=None, help="client counts, comma-separated (100,1000)")
    parser.add_argument("--events", type=ints, default=None,
                        help="events published for each client count (100,15; one value: for all)")
    parser.add_argument("--rate", type=floats, default=None,
                        help="events/s through wagate for each client count (3,0.25: what the local fan-out keeps "
                             "up with)")
    parser.add_argument("--bare-rate", type=float, default=10.0, help="events/s of the bare broadcast")
    parser.add_argument("--links", type=int, default=None, help="numbers linked while the page watches (10)")
    parser.add_argument("--accounts", type=int, default=None, help="numbers for the first render (200)")
    parser.add_argument("--loads", type=int, default=None, help="page loads for the first render (5)")
    parser.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help="comma-separated: fanout, link, render")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    for name, full, small in (("clients", [100, 1000], [100]), ("events", [100, 15], [30]),
                              ("rate", [3.0, 0.25], [3.0]), ("links", 10, 3),
                              ("accounts", 200, 50), ("loads", 5, 3)):
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    args.keep_logs, args.qr_interval, args.no_proxy = False, 20.0, True  # what bench.fleet's stack reads
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.realtime" + (" " + " ".join(given) if given else "")
    fanouts: list[dict[str, Any]] = []
    link = first = None
    args.load_before = os.getloadavg()[0]
    with stack(args) as bench:
        if "fanout" not in args.skip:
            for i, clients in enumerate(args.clients):
                fanouts.append(fanout_run(bench, clients, at(args.events, i), at(args.rate, i), args.bare_rate))
        if "link" not in args.skip or "render" not in args.skip:
            link, first = dashboard_runs(bench, args)
    text = render(fanouts, link, first, args, command)
    print(text)
    if not args.no_write:
        write_section("Real time", text)


if __name__ == "__main__":
    main()
