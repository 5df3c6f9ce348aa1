"""`GET /health` (host id, pid, the accounts it drives) and `GET /metrics` (Prometheus text) on a loopback port.

`/metrics` alone may also be served on a second address (`metrics_bind`, e.g. 0.0.0.0:9464 in the image) for a
scraper in the task's network; `/health` names accounts, so it never leaves loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

HealthReader = Callable[[], tuple[bool, dict[str, Any]]]
MetricsReader = Callable[[], tuple[dict[str, int], dict[str, float]]]


def readiness(browser_connected: bool, registered_at: float | None, lease_ttl: float, now: float) -> list[str]:
    """What the host still waits for before it can serve its accounts (empty: ready).

    `registered_at`: monotonic time of its last heartbeat the leases table accepted; older than a lease TTL
    means the other hosts may already count it as gone (its stores are unreachable, or it never registered).
    """
    waiting = []
    if not browser_connected:
        waiting.append("browser")
    if registered_at is None or now - registered_at > lease_ttl:
        waiting.append("heartbeat")
    return waiting


class HealthServer:
    """Serves what its two readers return; it knows nothing else about the host."""

    def __init__(self, host: str, port: int, health: HealthReader, metrics: MetricsReader,
                 metrics_bind: tuple[str, int] | None = None) -> None:
        self.bind_host = host
        self.bind_port = port
        self.metrics_bind = metrics_bind
        self.read_health = health
        self.read_metrics = metrics
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = await _serve(self._runner, self.bind_host, self.bind_port)
        if self.metrics_bind is not None:
            metrics_app = web.Application()
            metrics_app.router.add_get("/metrics", self.metrics)
            self._metrics_runner = web.AppRunner(metrics_app, access_log=None)
            self.metrics_port = await _serve(self._metrics_runner, *self.metrics_bind)

    async def stop(self) -> None:
        for runner in (self._metrics_runner, self._runner):
            if runner is not None:
                await runner.cleanup()

    async def health(self, _: web.Request) -> web.Response:
        healthy, body = self.read_health()
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        counts, values = self.read_metrics()
        lines = ["# HELP wagate_accounts Accounts on this host by connection status.",
                 "# TYPE wagate_accounts gauge"]
        for status in ("STARTING", "SCAN_QR_CODE", "WORKING", "FAILED", "STOPPED"):
            lines.append(f'wagate_accounts{{status="{status}"}} {counts.get(status, 0)}')
        for name, kind, help_text in (
            ("messages_sent", "counter", "Messages handed to WhatsApp."),
            ("messages_failed", "counter", "Messages that ended failed on this host."),
            ("queue_lag_seconds", "gauge", "Accept-to-send delay of the last message sent."),
            ("leases_taken", "counter", "Account leases this host took."),
            ("leases_lost", "counter", "Account leases this host lost to another host."),
        ):
            lines += [f"# HELP wagate_{name} {help_text}", f"# TYPE wagate_{name} {kind}",
                      f"wagate_{name} {values.get(name, 0)}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def _serve(runner: web.AppRunner, host: str, port: int) -> int:
    """Start `runner` on host:port; the port it listens on (port 0 picks a free one)."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = [s for server in [getattr(site, "_server", None)] if server for s in server.sockets or []]
    return int(sockets[0].getsockname()[1]) if sockets else port
