"""Start and stop a simulator: inside a running event loop, or in a background thread."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import build_app
from .config import SimConfig
from .control import NETWORK_KEY
from .network import Network


class AsyncWaSim:
    """A simulator bound to the caller's event loop (`await start()` / `await stop()`)."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or SimConfig(), **overrides)
        self.app = build_app(self.config)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def network(self) -> Network:
        """The in-memory network (only touch it from the simulator's loop)."""
        return self.app[NETWORK_KEY]

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:3100`."""
        if self.port is None:
            raise RuntimeError("simulator is not started")
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> str:
        """Bind (port 0 picks a free port) and serve; returns the base URL."""
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        """Close every page socket and the listener."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class WaSimServer:
    """A simulator in a daemon thread with its own loop, for pytest fixtures and other runners.

    >>> sim = WaSimServer(port=0, qr_interval=1.0); url = sim.start(); ...; sim.stop()
    """

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or SimConfig(), **overrides)
        self._sim: AsyncWaSim | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL of the running simulator."""
        if self._sim is None:
            raise RuntimeError("simulator is not started")
        return self._sim.url

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._sim is None or self._sim.port is None:
            raise RuntimeError("simulator is not started")
        return self._sim.port

    def start(self, timeout: float = 10.0) -> str:
        """Start serving in the background; returns the base URL once bound."""
        if self._thread is not None:
            return self.url
        self._thread = threading.Thread(target=self._run, name=f"wa_sim:{self.config.port}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("wa_sim did not start")
        if self._error is not None:
            self._thread = None
            raise RuntimeError(f"wa_sim failed to start: {self._error}") from self._error
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._sim = AsyncWaSim(self.config)
            loop.run_until_complete(self._sim.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._sim.stop())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None
        self._started.clear()

    def reset(self) -> None:
        """Forget all simulator state (same as `POST /sim/reset`)."""
        if self._loop is None or self._sim is None:
            raise RuntimeError("simulator is not started")
        network = self._sim.network

        async def _reset() -> None:
            network.reset()

        asyncio.run_coroutine_threadsafe(_reset(), self._loop).result(5)

    def __enter__(self) -> WaSimServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
