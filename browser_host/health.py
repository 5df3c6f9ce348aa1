"""`GET /health` (per-status counts) and `GET /metrics` (Prometheus text) on a loopback port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from browser_host.host import BrowserHost


class HealthServer:
    def __init__(self, host: BrowserHost) -> None:
        self.host = host
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host.config.health_host, self.host.config.health_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.host.config.health_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def health(self, _: web.Request) -> web.Response:
        browser = self.host.browser
        healthy = browser is not None and browser.is_connected()
        body = {"status": "ok" if healthy else "degraded", "host_id": self.host.config.host_id,
                "accounts": self.host.status_counts(), "capacity": self.host.config.max_accounts}
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        lines = ["# HELP wagate_accounts Accounts on this host by connection status.",
                 "# TYPE wagate_accounts gauge"]
        counts = self.host.status_counts()
        for status in ("STARTING", "SCAN_QR_CODE", "WORKING", "FAILED", "STOPPED"):
            lines.append(f'wagate_accounts{{status="{status}"}} {counts.get(status, 0)}')
        for name, kind, help_text in (
            ("messages_sent", "counter", "Messages handed to WhatsApp."),
            ("messages_failed", "counter", "Messages that ended failed on this host."),
            ("queue_lag_seconds", "gauge", "Enqueue-to-send delay of the last message sent."),
        ):
            lines += [f"# HELP wagate_{name} {help_text}", f"# TYPE wagate_{name} {kind}",
                      f"wagate_{name} {self.host.metrics.get(name, 0)}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
