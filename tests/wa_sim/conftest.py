"""Fixtures for wa_sim: a simulator on a free loopback port, Chromium via Playwright, event capture."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from browser_host.chromium import CHROMIUM_PATH, launch_args
from infra.wa_sim import WaSimServer

BUSINESS = "15551234567"
CONTACT = "15550001111"
EVENTS = [
    "conn.auth_code_change", "conn.authenticated", "conn.main_ready", "conn.main_loaded", "conn.logout",
    "conn.logout_reason", "conn.qrcode_idle", "conn.online", "conn.require_auth", "conn.stream_mode_changed",
    "chat.new_message", "chat.msg_ack_change", "chat.new_reaction", "chat.msg_edited", "chat.msg_revoke",
    "chat.poll_response",
]
# Registered from DOMContentLoaded: the sim boots after it, so no event is missed.
CAPTURE_SCRIPT = """
window.addEventListener('DOMContentLoaded', () => {
  const plain = (arg) => (arg === undefined ? null : JSON.parse(JSON.stringify(arg)));
  for (const name of EVENTS) WPP.on(name, (arg) => window.__simEvent(name, plain(arg)));
});
""".replace("EVENTS", json.dumps(EVENTS))


class SimClient:
    """Tiny JSON client for the /sim/ control API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, path: str, body: dict[str, Any] | None = None, expect: int | None = 200) -> Any:
        status, data = self.call("POST", path, body or {})
        if expect is not None:
            assert status == expect, (status, data)
        return data

    def get(self, path: str) -> Any:
        status, data = self.call("GET", path)
        assert status == 200, (status, data)
        return data

    def messages(self, contact: str, direction: str = "received") -> list[dict[str, Any]]:
        return list(self.get(f"/sim/contacts/{contact}/messages?direction={direction}")["messages"])


@dataclass
class SimPage:
    """A Playwright page on the simulator with the WPP events it fired."""

    page: Any
    events: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def wait_event(self, name: str, pred: Callable[[Any], bool] = lambda _: True,
                   timeout: float = 5.0, after: int = 0) -> Any:
        """Wait for event `name` (index >= after) whose payload satisfies `pred`."""
        deadline = time.monotonic() + timeout
        while True:
            for n, payload in self.events[after:]:
                if n == name and pred(payload):
                    return payload
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name} event within {timeout}s; got {self.names()}")
            self.page.wait_for_timeout(30)

    def eventually(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll `check` (pumping Playwright events) until it is true."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            self.page.wait_for_timeout(30)

    def wpp(self, expr: str, arg: Any = None) -> Any:
        return self.page.evaluate(expr, arg)

    def auth_code(self) -> dict[str, Any]:
        self.page.wait_for_function("WPP.isFullReady")
        # Polled from here: wait_for_function does not await a predicate's promise.
        code: dict[str, Any] | None = None

        def shown() -> bool:
            nonlocal code
            code = self.wpp("WPP.conn.getAuthCode()")
            return code is not None

        self.eventually(shown)
        assert code is not None
        return code


@pytest.fixture(scope="session")
def sim() -> Iterator[WaSimServer]:
    server = WaSimServer(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(sim: WaSimServer) -> SimClient:
    sim.reset()
    return SimClient(sim.url)


@pytest.fixture
def make_client() -> Callable[[str], SimClient]:
    """A control-API client for another simulator's URL."""
    return SimClient


@pytest.fixture
def attach_page() -> Callable[[Any, str], SimPage]:
    """`attach_page(context, url)`: capture events in `context` and open the simulator page."""
    return attach


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"no Chromium at {CHROMIUM_PATH} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=launch_args())
    yield b
    b.close()


# Per context: its pages that capture events (the binding is per context, events go to their page).
_CAPTURING: weakref.WeakKeyDictionary[Any, dict[Any, SimPage]] = weakref.WeakKeyDictionary()


def attach(context: Any, url: str) -> SimPage:
    """Open the simulator page in `context` with event capture and return it.

    Called again with the same context it opens another tab there (same storage: same credentials).
    """
    pages = _CAPTURING.get(context)
    if pages is None:
        pages = _CAPTURING[context] = {}

        def deliver(src: dict[str, Any], name: str, payload: Any) -> None:
            target = pages.get(src["page"])
            if target is not None:
                target.events.append((name, payload))

        context.expose_binding("__simEvent", deliver)
        context.add_init_script(CAPTURE_SCRIPT)
    page = next((p for p in context.pages if p not in pages), None) or context.new_page()
    sp = pages[page] = SimPage(page=page)
    sp.page.goto(url)
    sp.page.wait_for_function("window.WPP && WPP.isFullReady")
    return sp


@pytest.fixture
def open_page(browser: Any, sim: WaSimServer) -> Iterator[Callable[..., SimPage]]:
    contexts: list[Any] = []

    def _open(url: str | None = None, **context_args: Any) -> SimPage:
        ctx = browser.new_context(**context_args)
        contexts.append(ctx)
        return attach(ctx, url or sim.url)

    yield _open
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def link(client: SimClient) -> Callable[..., dict[str, Any]]:
    """`link(sp, phone=BUSINESS)`: scan the page's current QR and wait for conn.main_ready."""

    def _link(sp: SimPage, phone: str = BUSINESS) -> dict[str, Any]:
        code = sp.auth_code()
        result: dict[str, Any] = client.post("/sim/link", {"qr": code["fullCode"], "phone_number": phone})
        sp.wait_event("conn.main_ready")
        return result

    return _link
