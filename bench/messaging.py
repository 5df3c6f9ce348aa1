"""Messaging: enqueue → sent for media (image 1 MB, document 1 MB and 10 MB, beside a text), webhook deliveries
per second against a bare HTTP POST loop to the same receiver (ratio, same run), and event → webhook latency.

    python -m bench.messaging [--quick] [--runs 3] [--events 300] [--latency-events 100] [--no-write]

Runs on this machine: moto's server in its own process, the local API, the webhook dispatcher and wa_sim in
this process (`infra/local/runtime.py`: SQS event sources are pollers here, not Lambda), one
`python -m browser_host` with Debian Chromium, and a webhook receiver on loopback (`infra/local/receiver.py`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.fleet import STACK_CALLER, Bench, diff_counts, fmt, say, stack
from bench.report import machine, pct, source_state, write_section
from infra.local.harness import Api, link_by_qr, wait_until
from infra.local.receiver import Receiver

SECRET = "bench-webhook-secret-0123456789"


def number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


# --- media: enqueue → sent ------------------------------------------------------------------------------------

def upload(api: Api, data: bytes, mime: str) -> str:
    import requests

    created = api.post("/media", json={"mime_type": mime, "size_bytes": len(data)})
    assert created.status_code == 201, created.text
    body = created.json()
    put = requests.put(body["upload_url"], data=data, headers=body["headers"], timeout=60)
    assert put.status_code in (200, 204), put.text
    return str(body["id"])


def enqueue_to_sent(api: Api, account_id: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = api.post(f"/accounts/{account_id}/messages", json=body)
    assert response.status_code == 202, response.text
    url = f"/accounts/{account_id}/messages/{response.json()['message_id']}"
    while True:
        status = api.get(url).json()["status"]
        if status in ("sent", "delivered", "read"):
            return time.perf_counter() - started
        assert status != "failed", api.get(url).json()
        assert time.perf_counter() - started < 180, "not sent within 3 minutes"
        time.sleep(0.02)


def media_run(bench: Bench, runs: int) -> dict[str, list[float]]:
    api = bench.api
    fleet = bench.fleet("media", {"HOST_RECONCILE_INTERVAL": "0.5", "HOST_INBOX_WAIT_SECONDS": "1"})
    bench.start_host(fleet)
    account_id = api.post("/accounts", json={"account_name": "bench-media"}).json()["account_id"]
    link_by_qr(api, bench.phone, account_id, number())
    contact = number()
    png_header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    cases = {
        "text": lambda: {"type": "text", "text": {"body": "baseline"}},
        "image 1 MB": lambda: {"type": "image", "image": {
            "id": upload(api, png_header + os.urandom(1_000_000), "image/png")}},
        "document 1 MB": lambda: {"type": "document", "document": {
            "id": upload(api, b"%PDF-1.7\n" + os.urandom(1_000_000), "application/pdf"), "filename": "a.pdf"}},
        "document 10 MB": lambda: {"type": "document", "document": {
            "id": upload(api, b"%PDF-1.7\n" + os.urandom(10_000_000), "application/pdf"), "filename": "b.pdf"}},
    }
    results: dict[str, list[float]] = {}
    for name, make in cases.items():
        results[name] = []
        for _ in range(runs):
            body = {"to": contact, **make()}  # the upload happens before the clock starts
            results[name].append(enqueue_to_sent(api, account_id, body))
        say(f"{name}: enqueue → sent median {fmt(statistics.median(results[name]), 3)} s")
    bench.stop_fleet(fleet)
    return results


# --- webhooks -------------------------------------------------------------------------------------------------

def event_body(account_id: str, i: int) -> bytes:
    return json.dumps({"id": f"evt_bench{i:010d}", "type": "message.status", "created_at": "2026-01-01T00:00:00Z",
                       "account_id": account_id, "data": {"message_id": f"msg_{i}", "status": "sent",
                                                           "client_reference": "x" * 100}}).encode()


def bare_loop(receiver: Receiver, account_id: str, n: int) -> float:
    """POSTs/s of one keep-alive client posting the same bodies to the same receiver, one after another."""
    path = "/bare"
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    started = time.perf_counter()
    for i in range(n):
        connection.request("POST", path, body=event_body(account_id, i),
                           headers={"Content-Type": "application/json"})
        connection.getresponse().read()
    elapsed = time.perf_counter() - started
    connection.close()
    return n / elapsed


def publish(bench: Bench, account_id: str, tenant_id: str, n: int, rate: float | None) -> dict[str, float]:
    """Publish `n` events straight to the webhook dispatcher's queue (hosts publish to the topic, which delivers
    them there); returns event id → publish time (monotonic)."""
    from core.models.events import EventType
    from core.store.queues import EventBus

    bus = EventBus(bench.runtime.stack.refs["EventsQueue"])
    sent: dict[str, float] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        event_id = f"evt_{uuid.uuid4().hex[:26]}"
        with lock:
            sent[event_id] = time.monotonic()
        bus.publish(EventType.MESSAGE_STATUS, account_id, tenant_id,
                    {"message_id": f"msg_{i}", "status": "sent", "client_reference": "x" * 100}, event_id)

    if rate is None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(n)))
    else:
        for i in range(n):
            one(i)
            time.sleep(1 / rate)
    return sent


def webhook_run(bench: Bench, events: int, latency_events: int) -> dict[str, Any]:
    api = bench.api
    receiver = Receiver()
    try:
        created = api.post("/webhooks", json={"url": receiver.url("/hooks"), "secret": SECRET})
        assert created.status_code == 201, created.text
        account = api.post("/accounts", json={"account_name": "bench-webhooks"}).json()
        from core.store.tables import AccountItem

        tenant_id = str(AccountItem.get(account["account_id"]).tenant_id)
        bare = bare_loop(receiver, account["account_id"], events)
        say(f"bare POST loop: {fmt(bare, 0)} POST/s")

        # Throughput: a burst of events, time from the first publish to the last delivery
        before = bench.counts()
        sent = publish(bench, account["account_id"], tenant_id, events, None)
        first = min(sent.values())
        wait_until(lambda: len(receiver.requests("/hooks")) >= events, 600, "every burst event delivered")
        calls = per_delivery(diff_counts(before, bench.counts()), events)
        arrivals = [s.at for s in receiver.requests("/hooks")]
        burst_rate = events / (max(arrivals) - first)
        signed = all(s.signed_by(SECRET) for s in receiver.requests("/hooks"))
        say(f"dispatcher: {fmt(burst_rate, 1)} deliveries/s ({fmt(burst_rate / bare, 3)} of the bare loop)")

        # Latency: events at a modest steady rate, publish → arrival at the receiver
        before = len(receiver.requests("/hooks"))
        sent = publish(bench, account["account_id"], tenant_id, latency_events, 10.0)
        wait_until(lambda: len(receiver.requests("/hooks")) >= before + latency_events, 300, "latency events")
        latencies = []
        for seen in receiver.requests("/hooks")[before:]:
            event_id = seen.headers.get("x-wagate-event-id", "")
            if event_id in sent:
                latencies.append(seen.at - sent[event_id])
        say(f"event → webhook p50 {fmt(pct(latencies, 0.5) * 1000, 0)} ms, "
            f"p99 {fmt(pct(latencies, 0.99) * 1000, 0)} ms")
        return {"bare": bare, "burst": burst_rate, "latencies": latencies, "signed": signed, "calls": calls}
    finally:
        receiver.stop()


def per_delivery(rows: list[dict[str, Any]], deliveries: int) -> list[tuple[str, float, float]]:
    """(AWS operation, calls per delivery, mean ms per call) of this process (the local API and the dispatcher)
    while the burst was delivered."""
    calls: dict[str, list[float]] = {}
    for row in rows:
        if row["caller"] != STACK_CALLER or row["service"] not in ("dynamodb", "sqs", "kms"):
            continue
        if row["operation"] == "SendMessage" and str(row["resource"]).endswith("events"):
            continue  # the benchmark publishing
        if row["operation"] == "ReceiveMessage" and not str(row["resource"]).endswith(("events", "retries")):
            continue  # other pollers of the local runtime (ingress) waiting on empty queues
        name = f"{row['service']} {row['operation']} ({str(row['resource']).removeprefix('wagate-')})"
        totals = calls.setdefault(name, [0.0, 0.0])
        totals[0] += row["count"]
        totals[1] += row["ms"]
    return sorted(((op, n / deliveries, ms / n) for op, (n, ms) in calls.items()), key=lambda r: -r[1])


# --- report ---------------------------------------------------------------------------------------------------

def render(media: dict[str, list[float]] | None, hooks: dict[str, Any] | None, args: argparse.Namespace,
           command: str) -> str:
    lines = [f"Measured {machine()} ({source_state()}) with `{command}`.", ""]
    if media is not None:
        lines += ["### Enqueue → sent by media size", "",
                  "`POST /accounts/{id}/messages` (media uploaded with `POST /media` before the clock starts) until "
                  "the API shows `sent`: the host reads the object from S3 (moto), hands it to WhatsApp Web as a "
                  "data URL, wa_sim carries the bytes to the phone and acks. "
                  f"{args.runs} runs each, one host, one account.", "",
                  "| message | median | min | max |", "|---|---|---|---|"]
        for name, values in media.items():
            lines.append(f"| {name} | {fmt(statistics.median(values), 3)} s | {fmt(min(values), 3)} s | "
                         f"{fmt(max(values), 3)} s |")
        lines.append("")
    if hooks is not None:
        lat = hooks["latencies"]
        lines += ["### Webhook deliveries", "",
                  f"{args.events} events published at once to the dispatcher's events queue (where the topic "
                  "delivers hosts' events), delivered by the "
                  "dispatcher (WebhookFunction behind the local SQS poller: batches of 10, targets in parallel) as "
                  "signed POSTs to a loopback receiver; beside it, one keep-alive client POSTing the same bodies "
                  "to the same receiver in a loop, measured in the same run. Latency: "
                  f"{args.latency_events} events at 10/s, publish → arrival at the receiver.", "",
                  "| measure | value |", "|---|---|",
                  f"| bare POST loop | {fmt(hooks['bare'], 0)} POST/s |",
                  f"| dispatcher, burst | {fmt(hooks['burst'], 1)} deliveries/s |",
                  f"| ratio dispatcher / bare loop | {fmt(hooks['burst'] / hooks['bare'], 3)} |",
                  f"| event → webhook p50 | {fmt(pct(lat, 0.5) * 1000, 0)} ms |",
                  f"| event → webhook p99 | {fmt(pct(lat, 0.99) * 1000, 0)} ms |",
                  f"| every delivery signed | {'yes' if hooks['signed'] else 'NO'} |", "",
                  "AWS calls per delivery during the burst (this process: the dispatcher and the SQS poller, "
                  "through the counting proxy in front of moto):", "",
                  "| call | per delivery | mean ms |", "|---|---|---|",
                  *[f"| {op} | {fmt(n, 2)} | {fmt(ms, 1)} |" for op, n, ms in hooks["calls"]],
                  f"| **all** | {fmt(sum(n for _, n, _ in hooks['calls']), 2)} | |", "",
                  "The bare loop is the ceiling of this receiver on this machine. The dispatcher's time goes "
                  "to its AWS calls — moto answers each in milliseconds of CPU on the same two cores, "
                  "serialised by its own process, and one poller thread feeds one batch at a time. On AWS "
                  "those calls are a few ms each and run in parallel, and batches run in parallel "
                  "invocations (Lambda concurrency), so the figure here is a floor, not a ceiling."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 run per size, 100 events, 30 latency events")
    parser.add_argument("--runs", type=int, default=None, help="runs per media size (3)")
    parser.add_argument("--events", type=int, default=None, help="webhook burst size (300)")
    parser.add_argument("--latency-events", type=int, default=None, help="events for the latency figure (100)")
    parser.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help="comma-separated: media, webhooks")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    for name, full, small in (("runs", 3, 1), ("events", 300, 100), ("latency_events", 100, 30)):
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    args.keep_logs, args.qr_interval = False, 20.0  # what bench.fleet's stack reads
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.messaging" + (" " + " ".join(given) if given else "")
    media = hooks = None
    if "webhooks" not in args.skip:
        args.no_proxy = False  # AWS calls per delivery are counted by the proxy
        with stack(args) as bench:
            hooks = webhook_run(bench, args.events, args.latency_events)
    if "media" not in args.skip:
        args.no_proxy = True  # presigned uploads go straight to the emulator
        with stack(args) as bench:
            media = media_run(bench, args.runs)
    text = render(media, hooks, args, command)
    print(text)
    if not args.no_write:
        write_section("Messaging", text)


if __name__ == "__main__":
    main()
