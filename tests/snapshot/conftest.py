"""Fixtures for account snapshots: moto over HTTP for S3/KMS, wa_sim, async Chromium on one event loop."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import boto3
import pytest

from browser_host.chromium import CHROMIUM_PATH, launch_args
from browser_host.crypto import SnapshotStore
from infra.wa_sim import WaSimServer

T = TypeVar("T")
BUSINESS = "15551234567"
CONTACT = "15550001111"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from infra.local.emulator import MotoEmulator

    emulator = MotoEmulator()
    yield emulator.start()
    emulator.stop()


@pytest.fixture(scope="session")
def aws(moto_endpoint: str) -> dict[str, Any]:
    """S3 and KMS clients on the emulator, a bucket and a symmetric key."""
    kw: dict[str, Any] = {"endpoint_url": moto_endpoint, "region_name": "us-east-1",
                          "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    s3, kms = boto3.client("s3", **kw), boto3.client("kms", **kw)
    bucket = f"snapshots-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    key_id = kms.create_key(Description="wagate snapshots (test)")["KeyMetadata"]["KeyId"]
    return {"s3": s3, "kms": kms, "bucket": bucket, "key_id": key_id}


@pytest.fixture
def store(aws: dict[str, Any]) -> SnapshotStore:
    return SnapshotStore(aws["s3"], aws["kms"], aws["bucket"], aws["key_id"])


class Runner:
    """Runs coroutines on one long-lived loop, so async Playwright objects can span tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __call__(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="session")
def run() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.loop.close()


@pytest.fixture(scope="session")
def sim() -> Iterator[WaSimServer]:
    with WaSimServer(port=0, qr_interval=5.0) as server:
        yield server


@pytest.fixture(scope="session")
def pw(run: Runner) -> Iterator[Any]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"no Chromium at {CHROMIUM_PATH}")
    from playwright.async_api import async_playwright

    manager = async_playwright()
    playwright = run(manager.start())
    yield playwright
    run(playwright.stop())


async def launch(pw: Any) -> Any:
    return await pw.chromium.launch(executable_path=CHROMIUM_PATH, args=launch_args())


@pytest.fixture(scope="session")
def browser(pw: Any, run: Runner) -> Iterator[Any]:
    b = run(launch(pw))
    yield b
    run(b.close())


def sim_call(sim: WaSimServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(sim.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read() or b"null")


async def open_sim(context: Any, url: str) -> Any:
    """A page on the simulator, booted, recording inbound message bodies in `window.__inbound`."""
    await context.add_init_script("""
      window.__inbound = [];
      window.addEventListener('DOMContentLoaded', () => WPP.on('chat.new_message', (m) => {
        if (!m.id.fromMe) window.__inbound.push(m.body);
      }));""")
    page = context.pages[0] if context.pages else await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.WPP && WPP.isFullReady")
    return page


async def shown_auth_code(page: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The QR the page shows, polled from here: `wait_for_function` does not await a predicate's promise
    (an async predicate is a Promise, truthy at once), so it cannot wait for `getAuthCode()`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code = await page.evaluate("WPP.conn.getAuthCode()")
        if code is not None:
            return cast(dict[str, Any], code)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the page showed no QR")
        await asyncio.sleep(0.05)


async def link(page: Any, sim: WaSimServer, phone: str = BUSINESS) -> None:
    """Scan the page's QR from the simulated phone and wait until the account is ready."""
    code = await shown_auth_code(page)
    sim_call(sim, "POST", "/sim/link", {"qr": code["fullCode"], "phone_number": phone})
    await page.wait_for_function("WPP.conn.isMainReady()", polling=50)
