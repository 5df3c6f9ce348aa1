"""Control API and page protocol without a browser (a scripted WebSocket page)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import aiohttp

from infra.wa_sim import AsyncWaSim, SimConfig

BUSINESS = "15551234567"


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
    asyncio.run(_scenario())


def test_two_simulators_in_one_process() -> None:
    from infra.wa_sim import WaSimServer

    with WaSimServer(port=0) as a, WaSimServer(port=0) as b:
        assert a.port != b.port
        a.reset()
        assert a.url.startswith("http://127.0.0.1:")
