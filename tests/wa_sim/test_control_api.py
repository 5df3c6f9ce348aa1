"""Control API and page protocol without a browser (a scripted WebSocket page)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from infra.wa_sim import AsyncWaSim, SimConfig

BUSINESS = "15551234567"


def run_in_thread(scenario: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run in a worker thread: the Playwright fixtures keep a loop running in this one."""
    async def main() -> None:
        await scenario()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


class FakePage:
    """The page side of the protocol, scripted."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self, type_: str) -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads((await self.ws.receive(timeout=5)).data)
            if frame["type"] == type_:
                return frame

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))


async def _scenario() -> None:
    sim = AsyncWaSim(SimConfig(port=0, qr_interval=30))
    base = await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, base + path, json=body) as res:
                    return res.status, await res.json()

            assert await call("GET", "/sim/health") == (200, {"ok": True, "pages": 0})
            assert (await call("POST", "/sim/link", {"qr": "2@nope", "phone_number": BUSINESS}))[0] == 404
            assert (await call("POST", "/sim/link", {"phone_number": BUSINESS}))[0] == 400
            assert (await call("POST", "/sim/link", {"qr": "2@x", "phone_number": "12"}))[0] == 400
            inbound_body = {"to": BUSINESS, "text": "x"}
            assert (await call("POST", "/sim/contacts/15550001111/send", inbound_body))[0] == 404
            for state, status in (("down", 404), ("sideways", 400)):
                body = {"phone_number": BUSINESS, "state": state}
                assert (await call("POST", "/sim/network", body))[0] == status
            misspelt = {"phone_number": BUSINESS, "state": "slow", "latency": 4.0}  # latency_ms is the setting
            assert await call("POST", "/sim/network", misspelt) == (400, {
                "error": "unknown_field", "message": "unknown field(s) latency: phone_number, state, latency_ms"})

            # Link a scripted page by QR.
            async with http.ws_connect(base.replace("http", "ws") + "/ws") as ws:
                page = FakePage(ws)
                await page.recv("challenge")
                await page.send(type="qr_request")
                ref = (await page.recv("ref"))["ref"]
                pending = (await call("GET", "/sim/pending"))[1]["pages"]
                assert [p["ref"] for p in pending] == [ref]
                status, linked = await call("POST", "/sim/link", {"qr": ref, "phone_number": BUSINESS})
                assert status == 200 and linked["device_id"] == 1
                paired = await page.recv("paired")
                secret = bytes.fromhex(paired["secret"])
                status, inbound = await call("POST", "/sim/contacts/15550001111/send",
                                             {"to": BUSINESS, "text": "hello"})
                assert status == 201 and inbound["delivered_to_pages"] == 1
                msg = await page.recv("message")
                assert msg["msg"]["body"] == "hello"
                # Not confirmed with "got": stays queued for the next connection.

            # A new connection proves the device secret against a fresh nonce.
            async with http.ws_connect(base.replace("http", "ws") + "/ws") as ws:
                page = FakePage(ws)
                nonce = bytes.fromhex((await page.recv("challenge"))["nonce"])
                await page.send(type="login", wid=f"{BUSINESS}@c.us", device_id=1, proof="00" * 32)
                assert (await page.recv("login_failed"))["reason"] == "bad_credentials"
            async with http.ws_connect(base.replace("http", "ws") + "/ws") as ws:
                page = FakePage(ws)
                nonce = bytes.fromhex((await page.recv("challenge"))["nonce"])
                proof = hmac.new(secret, nonce, hashlib.sha256).hexdigest()
                await page.send(type="login", wid=f"{BUSINESS}@c.us", device_id=1, proof=proof)
                await page.recv("login_ok")
                redelivered = await page.recv("message")
                assert redelivered["msg"]["id"] == msg["msg"]["id"]
                await page.send(type="got", fid=redelivered["fid"])
                await page.send(type="ping", req="p1")
                await page.recv("pong")
                _, rows = await call("GET", "/sim/contacts/15550001111/messages?direction=sent")
                assert rows["messages"][0]["status"] == "delivered"
                accounts = (await call("GET", "/sim/accounts"))[1]["accounts"]
                assert accounts[0]["online"] and accounts[0]["devices"][0]["pending_frames"] == 0

            # Revoked while offline: the next login is refused.
            assert (await call("POST", "/sim/unlink", {"phone_number": BUSINESS}))[1]["unlinked_devices"] == 1
            async with http.ws_connect(base.replace("http", "ws") + "/ws") as ws:
                page = FakePage(ws)
                nonce = bytes.fromhex((await page.recv("challenge"))["nonce"])
                proof = hmac.new(secret, nonce, hashlib.sha256).hexdigest()
                await page.send(type="login", wid=f"{BUSINESS}@c.us", device_id=1, proof=proof)
                assert (await page.recv("login_failed"))["reason"] == "device_removed"
            assert await call("POST", "/sim/reset") == (200, {"reset": True})
            assert await call("GET", "/sim/accounts") == (200, {"accounts": []})
    finally:
        await sim.stop()


def test_control_api_and_protocol() -> None:
    run_in_thread(_scenario)


def test_two_simulators_in_one_process() -> None:
    from infra.wa_sim import WaSimServer

    with WaSimServer(port=0) as a, WaSimServer(port=0) as b:
        assert a.port != b.port
        a.reset()
        assert a.url.startswith("http://127.0.0.1:")


async def _conflict_scenario() -> None:
    sim = AsyncWaSim(SimConfig(port=0, qr_interval=30))
    base = await sim.start()
    ws_url = base.replace("http", "ws") + "/ws"
    try:
        async with aiohttp.ClientSession() as http:
            async def accounts() -> list[dict[str, Any]]:
                async with http.get(base + "/sim/accounts") as res:
                    return list((await res.json())["accounts"])

            async def login(ws: aiohttp.ClientWebSocketResponse, secret: bytes) -> FakePage:
                page = FakePage(ws)
                nonce = bytes.fromhex((await page.recv("challenge"))["nonce"])
                proof = hmac.new(secret, nonce, hashlib.sha256).hexdigest()
                await page.send(type="login", wid=f"{BUSINESS}@c.us", device_id=1, proof=proof)
                return page

            async def replaced(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
                """Frame types until the server closes the socket; the close code must say "replaced"."""
                types = []
                while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    types.append(json.loads(msg.data)["type"])
                assert ws.close_code == 4002, (msg, ws.close_code)
                return types

            async with http.ws_connect(ws_url) as ws_a:
                a = FakePage(ws_a)
                await a.recv("challenge")
                await a.send(type="qr_request")
                ref = (await a.recv("ref"))["ref"]
                async with http.post(base + "/sim/link", json={"qr": ref, "phone_number": BUSINESS}) as res:
                    assert res.status == 200
                secret = bytes.fromhex((await a.recv("paired"))["secret"])
                assert (await accounts())[0]["conflicts"] == 0

                # B logs in with A's credentials while A is live (A answers the probe): a conflict.
                async with http.ws_connect(ws_url) as ws_b:
                    b = await login(ws_b, secret)
                    probe = await a.recv("probe")
                    await a.send(type="probe_ack", id=probe["id"])
                    assert await replaced(ws_a) == ["conflict"]
                    await b.recv("login_ok")
                    [acc] = await accounts()
                    assert (acc["conflicts"], acc["devices"][0]["conflicts"], acc["online"]) == (1, 1, True)

                    # C logs in while B is silent (a hung or dying page): replaced, not counted.
                    async with http.ws_connect(ws_url) as ws_c:
                        c = await login(ws_c, secret)
                        await c.recv("login_ok")
                        assert await replaced(ws_b) == ["probe", "conflict"]
                        assert (await accounts())[0]["conflicts"] == 1

                        # D logs in and C's socket closes during the probe (a reloaded page whose old
                        # socket closes late): C was gone, no conflict.
                        async with http.ws_connect(ws_url) as ws_d:
                            d = await login(ws_d, secret)
                            await c.recv("probe")
                            await ws_c.close()
                            await d.recv("login_ok")
                            assert (await accounts())[0]["conflicts"] == 1

            # D closed before E logs in: nothing to replace.
            async with http.ws_connect(ws_url) as ws_e:
                await (await login(ws_e, secret)).recv("login_ok")
            [acc] = await accounts()
            assert acc["conflicts"] == 1 and acc["devices"] == [
                {"device_id": 1, "linked_at": acc["devices"][0]["linked_at"], "online": False,
                 "pending_frames": 0, "conflicts": 1}]
            async with http.post(base + "/sim/reset") as res:
                assert res.status == 200
            assert await accounts() == []
    finally:
        await sim.stop()


def test_one_live_connection_per_device(monkeypatch: Any) -> None:
    from infra.wa_sim import session

    monkeypatch.setattr(session, "PROBE_TIMEOUT", 0.3)
    run_in_thread(_conflict_scenario)
