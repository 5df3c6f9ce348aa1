"""Chaos: three hosts, fifteen accounts, 375 messages, hosts SIGKILLed every few seconds, a renderer crash.

Every message must end `sent` (nothing here is a reason to fail one), each contact must get each of its
messages exactly once and in order, and WhatsApp (wa_sim) must never see two live connections of one device.
Bounded: loopback only, about two minutes on two cores. The longer run (thirty accounts, 1,500 messages,
about seven minutes): `CHAOS_ACCOUNTS=30 CHAOS_MESSAGES_PER_ACCOUNT=50 make test-e2e` or pytest on this file.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.harness import link_by_qr
from tests.conftest import Api, create_account
from tests.e2e.conftest import HOST_ENV, Fleet, Phone, send_text, stop_all_accounts, wait_until
from tests.e2e.test_lifecycle import renderer_pids

ACCOUNTS = int(os.environ.get("CHAOS_ACCOUNTS", "15"))
PER_ACCOUNT = int(os.environ.get("CHAOS_MESSAGES_PER_ACCOUNT", "25"))
# Nudges make every action instant, so the periodic passes can be slow: less chatter with the emulator,
# which shares two cores with three browsers here.
CHAOS_ENV = {"HOST_LEASE_TTL": "9", "HOST_NOT_CONNECTED_TIMEOUT": "900", "HOST_OPEN_CONCURRENCY": "4",
             "HOST_MAX_ACCOUNTS": "30", "HOST_SWEEP_INTERVAL": "10", "HOST_HEARTBEAT_INTERVAL": "5",
             "HOST_RECONCILE_INTERVAL": "2"}
MAX_KILLS = 8


@pytest.mark.timeout(1200)
def test_hosts_dying_lose_nothing_send_nothing_twice_and_never_drive_one_account_twice(
        tenant_admin: Api, phone: Phone, runtime: Any, tmp_path: Path) -> None:
    fleet = Fleet(runtime.host_env(), tmp_path, {**HOST_ENV, **CHAOS_ENV})
    rng = random.Random(7)
    kills: list[str] = []
    began, phases = time.monotonic(), dict[str, float]()
    try:
        # Given three hosts and fifteen (CHAOS_ACCOUNTS) linked accounts spread over them
        for _ in range(3):
            fleet.start()
        businesses = ["1444" + str(uuid.uuid4().int)[:7] for _ in range(ACCOUNTS)]
        contacts = ["1445" + str(uuid.uuid4().int)[:7] for _ in range(ACCOUNTS)]
        accounts = [create_account(tenant_admin, f"chaos {i}")["account_id"] for i in range(ACCOUNTS)]
        with ThreadPoolExecutor(max_workers=6) as pool:  # like six people scanning codes at once
            list(pool.map(lambda pair: link_by_qr(tenant_admin, phone, *pair, 120), zip(accounts, businesses,
                                                                                        strict=True)))
        wait_until(lambda: sum(a["connection_status"] == "WORKING" for a in
                               tenant_admin.get("/accounts", params={"limit": 100}).json()["items"]) == ACCOUNTS,
                   120, "all WORKING")
        wait_until(lambda: fleet.logs().count("snapshot saved") >= ACCOUNTS, 60, "snapshots")
        phases["linked"] = time.monotonic() - began

        # When 375 messages are sent (each account's in order) while a random host is SIGKILLed and
        # restarted every few seconds, and one renderer crashes
        sent: dict[str, list[tuple[str, str]]] = {a: [] for a in accounts}
        stop = threading.Event()

        def produce(index: int) -> None:
            account_id, contact = accounts[index], contacts[index]
            for n in range(PER_ACCOUNT):
                body = f"{index}-{n}"
                for _ in range(20):  # the API may answer 503 while the machine is saturated: retry like a client
                    try:
                        sent[account_id].append((send_text(tenant_admin, account_id, contact, body), body))
                        break
                    except AssertionError:
                        time.sleep(0.5)

        def chaos() -> None:
            crashed = False
            while len(kills) < MAX_KILLS and not stop.wait(rng.uniform(6, 10)):
                victim = rng.randrange(len(fleet.hosts))
                host = fleet.hosts[victim]
                if not crashed and host.process is not None:
                    pids = renderer_pids(host.process.pid)
                    if pids:
                        os.kill(pids[0], signal.SIGKILL)
                        kills.append(f"renderer of host {victim}")
                        crashed = True
                        continue
                fleet.replace(victim)
                kills.append(f"host {victim}")

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(produce, range(ACCOUNTS)))
        phases["accepted"] = time.monotonic() - began
        ids = [(a, m, b) for a, items in sent.items() for m, b in items]
        assert len(ids) == ACCOUNTS * PER_ACCOUNT

        def unfinished() -> list[tuple[str, str]]:
            left = []
            for account_id in accounts:
                items: list[dict[str, Any]] = []
                cursor = None
                while True:
                    page = tenant_admin.get(f"/accounts/{account_id}/messages",
                                            params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
                    items += page["items"]
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
                left += [(account_id, m["status"]) for m in items if m["status"] in ("queued", "sending")]
            return left

        wait_until(lambda: len(kills) >= 3, 90, "a few kills")
        stop.set()
        chaos_thread.join(30)
        wait_until(lambda: not unfinished(), 240, "every message terminal")
        phases["terminal"] = time.monotonic() - began

        # Then every message is sent, each contact got each of its messages once and in order, no conflicts
        statuses = {}
        for account_id in accounts:
            for m in tenant_admin.get(f"/accounts/{account_id}/messages", params={"limit": 100}).json()["items"]:
                statuses[m["message_id"]] = (m["status"], (m.get("error") or {}).get("code"))
        assert {s for s, _ in statuses.values()} == {"sent"}, [v for v in statuses.values() if v[0] != "sent"][:5]
        for index, account_id in enumerate(accounts):
            received = [m["body"] for m in phone.received(contacts[index])]
            assert received == [b for _, b in sent[account_id]], (account_id, received)
        assert [n for n in businesses if phone.conflicts(n)] == []
        print(f"chaos: {len(kills)} kills: {kills}; seconds from the start: "
              + ", ".join(f"{name} {at:.0f}" for name, at in phases.items()))
    finally:
        fleet.stop_all()
        stop_all_accounts()
        print(fleet.logs())
        # Thousands of events no test reads: emptied so the consumers do not work through them during later tests.
        sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
        for queue in ("EventsQueue", "RealtimeQueue"):  # the webhook and the WebSocket fan-out consumers
            sqs.purge_queue(QueueUrl=runtime.stack.refs[queue])
