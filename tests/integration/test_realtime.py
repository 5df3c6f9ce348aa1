"""The WebSocket API against the local stack: a real WebSocket client, tickets from the REST API, events published
through EventBus (SNS topic → real-time queue → fan-out → @connections → the client)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from core.models.events import EventType
from infra.local.harness import wait_until
from infra.local.receiver import Answer, Receiver
from tests.conftest import Api, create_account, make_key, new_ticket

WAIT = 10.0  # seconds an expected message may take (SNS → SQS poll → fan-out → post)
QUIET = 1.5  # seconds of silence that stand for "nothing else arrives"


# --- helpers -----------------------------------------------------------------------------------------------

def tenant_of(account_id: str) -> str:
    from core.store.tables import AccountItem

    return str(AccountItem.get(account_id).tenant_id)


def publish(account_id: str, kind: EventType = EventType.MESSAGE_STATUS, data: dict[str, Any] | None = None) -> str:
    """Publish as a browser host does (EventBus with the stack's settings: the events topic); the event's id."""
    from functions.service.context import services

    event = services().events.publish(kind, account_id, tenant_of(account_id),
                                      data or {"message_id": f"msg_{uuid.uuid4().hex}", "status": "sent"})
    return event.id


class Client:
    """One WebSocket connection: send JSON, receive JSON."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def receive(self, timeout: float = WAIT) -> dict[str, Any]:
        return dict(json.loads(await asyncio.wait_for(self.ws.receive_str(), timeout)))

    async def subscribe(self, **fields: Any) -> dict[str, Any]:
        await self.send({"action": "subscribe", **fields})
        return await self.receive()

    async def events_until(self, last_id: str, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Every message up to the event `last_id`, then whatever else comes within QUIET."""
        received = [await self.receive(timeout)]
        while received[-1].get("id") != last_id:
            received.append(await self.receive(timeout))
        try:
            while True:
                received.append(await self.receive(QUIET))
        except TimeoutError:
            return received


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield Client(ws)


def new_tenant(root_api: Api) -> Api:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = root_api.post("/api-keys", json={"name": "admin", "role": "admin", "tenant": tenant})
    assert response.status_code == 201, response.text
    return root_api.with_key(response.json()["api_key"])


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- tickets -----------------------------------------------------------------------------------------------

def test_a_ticket_is_a_ws_url_valid_60_seconds(tenant_admin: Api, ws_url: str) -> None:
    # Given any role's key, When it asks for a ticket, Then it gets a one-time ticket inside the ws URL
    viewer = make_key(tenant_admin, "viewer")
    response = viewer.post("/realtime/tickets")
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["url"] == f"{ws_url}?ticket={body['ticket']}"
    assert body["ticket"].startswith("wgt_")
    assert tenant_admin.with_key(None).post("/realtime/tickets").status_code == 401


def test_a_used_missing_or_expired_ticket_is_refused(tenant_admin: Api, ws_url: str) -> None:
    from core.models.common import Principal, Role
    from functions.service.context import services

    ticket = new_ticket(tenant_admin)
    expired, _ = services().realtime.issue_ticket(Principal(key_id="k", tenant_id="t", role=Role.VIEWER), 1)

    async def scenario() -> None:
        async with connected(ticket["url"]) as client:  # Given a ticket used once
            assert (await client.subscribe())["type"] == "subscribed"
        for url in (ticket["url"], f"{ws_url}?ticket={expired}", ws_url, f"{ws_url}?ticket=wgt_forged"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # Then it never opens another
                async with connected(url):
                    pass
            assert refused.value.status in {401, 403}, url

    time.sleep(2.5)  # the second ticket expires
    run(scenario())


# --- subscriptions and scope -------------------------------------------------------------------------------

def test_a_subscriber_gets_its_accounts_events_and_nothing_else(root_api: Api, tenant_admin: Api) -> None:
    mine, other = create_account(tenant_admin, "mine")["account_id"], create_account(tenant_admin)["account_id"]
    foreign = create_account(new_tenant(root_api))["account_id"]
    ticket = new_ticket(tenant_admin)

    async def scenario() -> None:
        async with connected(ticket["url"]) as client:
            # Given a client subscribed to one account
            answer = await client.subscribe(account_ids=[mine], events=None)
            assert answer == {"type": "subscribed", "account_ids": [mine], "events": None}
            # When its tenant's other account, another tenant's account and its own account have events
            publish(other)
            publish(foreign)
            status = publish(mine, EventType.ACCOUNT_STATUS, {"status": "WORKING", "reason": "linked"})
            sent = publish(mine, EventType.MESSAGE_STATUS, {"message_id": "msg_1", "status": "sent"})
            received = await client.events_until(sent)
            # Then it gets exactly its account's events, in order, as the exact event JSON
            assert [e["id"] for e in received] == [status, sent]
            assert received[0] == {"id": status, "type": "account.status", "created_at": received[0]["created_at"],
                                   "account_id": mine, "data": {"status": "WORKING", "reason": "linked"}}

    run(scenario())


def test_account_ids_null_is_the_whole_tenant_and_events_filter(root_api: Api, tenant_admin: Api) -> None:
    first, second = create_account(tenant_admin)["account_id"], create_account(tenant_admin)["account_id"]
    foreign = create_account(new_tenant(root_api))["account_id"]
    ticket = new_ticket(make_key(tenant_admin, "viewer"))

    async def scenario() -> None:
        async with connected(ticket["url"]) as client:
            assert (await client.subscribe(account_ids=None, events=["message.status"]))["events"] == ["message.status"]
            publish(foreign)
            publish(first, EventType.ACCOUNT_STATUS, {"status": "STARTING"})  # filtered out by type
            ids = [publish(first), publish(second)]
            received = await client.events_until(ids[-1])
            assert [e["id"] for e in received] == ids

    run(scenario())


def test_an_account_scoped_key_sees_only_its_accounts(root_api: Api, tenant_admin: Api) -> None:
    inside, outside = create_account(tenant_admin)["account_id"], create_account(tenant_admin)["account_id"]
    foreign = create_account(new_tenant(root_api))["account_id"]
    ticket = new_ticket(make_key(tenant_admin, "operator", account_ids=[inside]))

    async def scenario() -> None:
        async with connected(ticket["url"]) as client:
            # Given an account-scoped key, When it subscribes outside its scope or tenant, Then account_not_found
            for account_id in (outside, foreign):
                answer = await client.subscribe(account_ids=[inside, account_id])
                assert answer["type"] == "error" and answer["code"] == "account_not_found", answer
            # And with account_ids null it gets its own accounts' events only (scope enforced at fan-out too)
            assert (await client.subscribe(account_ids=None))["account_ids"] is None
            publish(outside)
            last = publish(inside)
            assert [e["id"] for e in await client.events_until(last)] == [last]
            # Messages that are not a subscribe answer an error, and the connection stays usable
            await client.ws.send_str("not json")
            assert (await client.receive())["code"] == "invalid_json"
            await client.send({"action": "shout"})
            assert (await client.receive())["code"] == "unknown_action"
            assert (await client.subscribe(events=["nope"]))["code"] == "validation_error"

    run(scenario())


# --- replay ------------------------------------------------------------------------------------------------

def test_a_reconnecting_client_gets_what_it_missed_in_order(tenant_admin: Api) -> None:
    from functions.service.context import services

    account = create_account(tenant_admin)["account_id"]
    tenant = tenant_of(account)

    async def scenario() -> None:
        # Given a client that saw one event and went away
        async with connected(new_ticket(tenant_admin)["url"]) as client:
            await client.subscribe(account_ids=[account])
            seen = publish(account)
            assert [e["id"] for e in await client.events_until(seen)] == [seen]
        # When two events happen while it is away
        missed = [publish(account, EventType.ACCOUNT_STATUS, {"status": "FAILED"}), publish(account)]
        wait_until(lambda: services().recent_events.position(tenant, missed[-1]), WAIT, "the events recorded")
        # Then reconnecting with since=<the last it saw> replays both, in order, before live events
        async with connected(new_ticket(tenant_admin)["url"]) as client:
            assert (await client.subscribe(account_ids=[account], since=seen))["type"] == "subscribed"
            live = publish(account)
            received = await client.events_until(live)
            # (a live event may also come through the replay's catch-up: clients de-duplicate on the id)
            assert list(dict.fromkeys(e["id"] for e in received)) == [*missed, live]
        # And a since outside the window answers replay_incomplete first (the client refetches)
        async with connected(new_ticket(tenant_admin)["url"]) as client:
            await client.subscribe(account_ids=[account], since="evt_00000000000000000000000000")
            assert await client.receive() == {"type": "replay_incomplete"}
            assert [(await client.receive())["id"] for _ in range(4)] == [seen, *missed, live]

    run(scenario())


# --- slow and dead clients ---------------------------------------------------------------------------------

def _raw_subscribe(url: str, account_id: str) -> socket.socket:
    """A WebSocket client on a bare socket, subscribed; the caller can make it vanish without a close frame."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=WAIT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in sock.recv(4096).split(b"\r\n", 1)[0]
    payload = json.dumps({"action": "subscribe", "account_ids": [account_id]}).encode()
    mask = os.urandom(4)
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    assert b"subscribed" in sock.recv(4096)
    return sock


def _vanish(sock: socket.socket) -> None:
    """Gone without a close frame: the connection is reset (RST), as a crashed or unplugged client's."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_dead_connection_is_dropped_and_does_not_hold_back_a_healthy_one(tenant_admin: Api) -> None:
    from functions.service.context import services

    account = create_account(tenant_admin)["account_id"]
    tenant = tenant_of(account)

    async def scenario() -> None:
        async with connected(new_ticket(tenant_admin)["url"]) as healthy:
            await healthy.subscribe(account_ids=[account])
            # Given a second client of the tenant that vanished without closing (no $disconnect yet)
            _vanish(_raw_subscribe(new_ticket(tenant_admin)["url"], account))
            assert len(services().realtime.subscribers(tenant)) == 2
            # When an event is published, Then the healthy client gets it at once
            started = time.monotonic()
            event = publish(account)
            assert (await healthy.receive())["id"] == event
            assert time.monotonic() - started < 15  # long before the gateway would notice the dead peer (30 s)
            # And the fan-out dropped the dead one (the gateway's own $disconnect comes 30 s later)
            await asyncio.to_thread(wait_until, lambda: len(services().realtime.subscribers(tenant)) == 1, WAIT,
                                    "the dead connection dropped")
            assert time.monotonic() - started < 27  # dropped by the fan-out, not by the gateway's $disconnect
            event = publish(account)
            assert (await healthy.receive())["id"] == event

    run(scenario())


HUNG = 15.0


def test_a_hung_connection_costs_one_timeout_while_the_others_get_their_events(runtime: Any) -> None:
    # Given a management API where one connection's post hangs and the others' answer at once
    from core.models.common import Principal, Role
    from core.models.events import Event
    from core.store.realtime import ConnectionPoster
    from functions.service import realtime
    from functions.service.context import services

    receiver = Receiver()
    try:
        base = services()
        timeout = 3.0  # the fan-out's post timeout; the hung connection answers only after HUNG seconds
        svc = dataclasses.replace(base, connections=ConnectionPoster(receiver.url("/v1"), "us-east-1", timeout))
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        principal = Principal(key_id="k", tenant_id=tenant, role=Role.VIEWER)
        for connection_id in ("hung", "fast-1", "fast-2"):
            svc.realtime.subscribe(connection_id, principal, None, None)
        receiver.script("/v1/%40connections/hung", Answer(sleep=HUNG))
        receiver.script("/v1/@connections/hung", Answer(sleep=HUNG))
        events = [Event(id=f"evt_{uuid.uuid4().hex}", type=EventType.MESSAGE_STATUS,
                        created_at="2026-01-01T00:00:00.000Z", account_id="acc_1", data={"n": n}) for n in range(3)]
        # When the fan-out posts a batch of three events
        started = time.monotonic()
        result = realtime.fan_out(svc, [(e.model_dump_json(), {"tenant_id": tenant}) for e in events])
        took = time.monotonic() - started
        # Then the healthy connections got every event in order while the hung post was still waiting (before its
        # timeout ran out): ordering of events on one clock, not a wall-clock budget
        [hung] = [s for s in receiver.requests() if s.path.endswith("connections/hung")]
        for connection_id in ("fast-1", "fast-2"):
            seen = [s for s in receiver.requests() if s.path.endswith(f"connections/{connection_id}")]
            assert [json.loads(s.body)["data"]["n"] for s in seen] == [0, 1, 2]
            assert seen[-1].at < hung.at + timeout
        # And the hung one was posted to once, given up on (the batch did not wait for its answer), and is dropped
        assert took < HUNG, took
        assert result.sent == 6 and result.dropped == 1
        assert sorted(s.connection_id for s in svc.realtime.subscribers(tenant)) == ["fast-1", "fast-2"]
        for connection_id in ("fast-1", "fast-2"):
            svc.realtime.disconnect(connection_id, tenant)
    finally:
        receiver.stop()


def test_the_realtime_tables_match_their_models() -> None:
    from core.config import Settings
    from core.store import tables
    from infra.local.template import load_template

    tables.bind(Settings())
    template = load_template()
    for logical_id, model in (("RealtimeTable", tables.RealtimeItem), ("RecentEventsTable", tables.RecentEventItem)):
        props = template["Resources"][logical_id]["Properties"]
        schema = model._get_schema()
        assert sorted((k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]) == \
            sorted((k["AttributeName"], k["KeyType"]) for k in schema["key_schema"])
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
