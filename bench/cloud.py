"""Cloud API provider: enqueue → POST at Meta's send endpoint (a fake Graph API on loopback) for one cloud account,
p50/p99 and messages/s, beside a bare keep-alive POST loop to the same fake (ratio, same run).

    python -m bench.cloud [--quick] [--messages 200] [--latency-messages 60] [--no-write]

Runs on this machine: moto's server in its own process, the local API and the cloud sender (CloudSenderFunction
behind the local SQS poller of the FIFO cloud outbox) in this process, the fake Graph API
(`infra/local/fake_graph.py`) on loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from bench.fleet import fmt, say
from bench.report import machine, pct, source_state, write_section
from infra.local.harness import Api, wait_until

TOKEN = "EAAG-bench-token-" + "b" * 24


def bare_loop(base_url: str, phone_number_id: str, n: int) -> tuple[float, list[float]]:
    """POST/s and per-request seconds of one keep-alive client sending Meta's text body to the fake."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        body = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001111",
                           "type": "text", "text": {"preview_url": False, "body": f"bare-{i}"}})
        t0 = time.perf_counter()
        connection.request("POST", f"/v27.0/{phone_number_id}/messages", body=body, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t0)
        assert response.status == 200, response.status
    elapsed = time.perf_counter() - started
    connection.close()
    return n / elapsed, latencies


def arrivals(fake: Any, prefix: str) -> dict[str, float]:
    """Text body → when the fake received it, for the bodies starting with `prefix`."""
    return {r.json["text"]["body"]: r.at for r in list(fake.requests)
            if r.method == "POST" and isinstance(r.json, dict) and str((r.json.get("text") or {}).get("body", ""))
            .startswith(prefix)}


def gateway_run(api: Api, fake: Any, account_id: str, n: int, rate: float | None) -> dict[str, Any]:
    """Enqueue `n` texts through the API (at `rate` per second, or at once) and time each until the fake has it."""
    prefix = f"run-{uuid.uuid4().hex[:6]}-"
    sent_at: dict[str, float] = {}
    accepted: dict[str, str] = {}
    started = time.time()

    def enqueue(i: int) -> None:
        body = f"{prefix}{i}"
        if rate:
            time.sleep(max(0.0, started + i / rate - time.time()))
        sent_at[body] = time.time()
        answer = api.post(f"/accounts/{account_id}/messages", json={"to": "15550001111", "type": "text",
                                                                     "text": {"body": body}})
        assert answer.status_code == 202, answer.text
        accepted[body] = answer.json()["message_id"]

    if rate:
        for i in range(n):
            enqueue(i)
    else:  # a burst: several clients at once, so the API is not what limits the sender
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(enqueue, range(n)))
    enqueued = time.time()
    got = wait_until(lambda: (a := arrivals(fake, prefix)) and len(a) >= n and a, timeout=120 + n,
                     what=f"{n} sends at the fake")
    # Per account the order is the order of acceptance (message ids); a burst's clients race each other.
    by_id = sorted(accepted, key=lambda body: accepted[body])
    arrival_order = sorted(got, key=lambda body: got[body])
    return {"latencies": [got[b] - sent_at[b] for b in sent_at], "first": started, "last": max(got.values()),
            "first_arrival": min(got.values()), "enqueue_seconds": enqueued - started,
            "drain_seconds": max(got.values()) - enqueued, "in_order": by_id == arrival_order}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="60 messages, 20 for latency")
    parser.add_argument("--messages", type=int, default=None, help="burst size (200)")
    parser.add_argument("--latency-messages", type=int, default=None, help="messages at 5/s for latency (60)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    args.messages = args.messages or (60 if args.quick else 200)
    args.latency_messages = args.latency_messages or (20 if args.quick else 60)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.cloud" + (" " + " ".join(given) if given else "")

    from functions.service.api_keys import ensure_bootstrap_key
    from functions.service.context import services
    from infra.local.emulator import free_port
    from infra.local.fake_graph import FakeGraph
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    fake = FakeGraph()
    fake.start()
    os.environ["GRAPH_API_BASE_URL"] = fake.base_url
    runtime = LocalRuntime(RuntimeConfig(aws_port=free_port(), api_port=free_port(), ws_port=free_port(),
                                         emulator_process=True,
                                         extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING",
                                                    "API_RATE_LIMITS": GENEROUS_API_RATES})).start()
    try:
        key, _ = ensure_bootstrap_key(services(), None)
        api = Api(runtime.api_url, key)
        phone_number_id = str(100000000000000 + uuid.uuid4().int % 899999999999999)
        fake.add_number(phone_number_id, TOKEN, "+1 555-010-0000")
        created = api.post("/accounts", json={"account_name": "bench", "provider": "cloud", "cloud": {
            "phone_number_id": phone_number_id, "access_token": TOKEN}})
        assert created.status_code == 201 and created.json()["connection_status"] == "WORKING", created.text
        account_id = created.json()["account_id"]
        say("warm-up")
        gateway_run(api, fake, account_id, 5, None)
        say(f"bare POST loop ({args.messages})")
        bare_rate, bare_latencies = bare_loop(fake.base_url, phone_number_id, args.messages)
        say(f"latency: {args.latency_messages} messages at 5/s")
        spaced = gateway_run(api, fake, account_id, args.latency_messages, 5.0)
        say(f"burst: {args.messages} messages at once")
        burst = gateway_run(api, fake, account_id, args.messages, None)
    finally:
        runtime.stop()
        fake.stop()
    burst_rate = (args.messages - 1) / max(1e-9, burst["last"] - burst["first_arrival"])
    enqueue_rate = args.messages / burst["enqueue_seconds"]
    lat = spaced["latencies"]
    text = "\n".join([
        f"Measured {machine()} ({source_state()}) with `{command}`.", "",
        "One cloud account. Enqueue: `POST /accounts/{id}/messages` (text) through the local API; the message row is "
        "stored `queued` and named on the FIFO cloud outbox (one message group per account); the cloud sender "
        "(CloudSenderFunction behind the local SQS poller) claims the row, POSTs Meta's body to the fake Graph API "
        "and records `sent`. Measured at the fake: when each body arrived. Beside it, one keep-alive client POSTing "
        "the same body to the same fake in a loop, in the same run.", "",
        "| measure | value |", "|---|---|",
        f"| bare POST loop | {fmt(bare_rate, 0)} POST/s (p50 {fmt(pct(bare_latencies, 0.5) * 1000, 1)} ms) |",
        f"| API, burst of {args.messages} (8 clients) | {fmt(enqueue_rate, 1)} messages accepted/s |",
        f"| cloud sender, same burst | {fmt(burst_rate, 1)} messages/s at Meta (first to last POST; backlog "
        f"drained {fmt(burst['drain_seconds'], 1)} s after the last acceptance) |",
        f"| ratio cloud sender / bare loop | {fmt(burst_rate / bare_rate, 3)} |",
        f"| enqueue → POST at Meta p50 ({args.latency_messages} at 5/s) | {fmt(pct(lat, 0.5) * 1000, 0)} ms |",
        f"| enqueue → POST at Meta p99 | {fmt(pct(lat, 0.99) * 1000, 0)} ms |",
        f"| order kept (burst: POSTs in acceptance order) | {'yes' if burst['in_order'] else 'NO'} |", "",
        "Per account the sender is sequential by design (a FIFO group: order, and one retry holds the ones behind "
        "it), so one account's rate is bounded by one claim + POST + status write round trip — here to moto on "
        "the same two cores, each a few ms of CPU. Accounts run in parallel (one message group each; Lambda "
        "scales per group), so a fleet's rate grows with its numbers; Meta's own limit per number is 80 "
        "messages/s by default."])
    print(text)
    if not args.no_write:
        write_section("Cloud API provider", text)


if __name__ == "__main__":
    main()
