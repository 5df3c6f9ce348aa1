"""aiohttp application of the simulator: the WhatsApp Web page, its socket, the phone page and API."""

from __future__ import annotations

import io
from pathlib import Path

import segno
from aiohttp import web

from . import control
from .config import SimConfig
from .network import Network
from .session import PageSession

STATIC = Path(__file__).with_name("static")
NO_STORE = {"Cache-Control": "no-store"}
#: Largest frame a page may send (media travel base64 in frames).
MAX_FRAME = 20 * 1024 * 1024


def _page(name: str) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), content_type="text/html",
                        charset="utf-8", headers=NO_STORE)


async def index(request: web.Request) -> web.Response:
    """GET /: the simulated WhatsApp Web page (defines window.WPP)."""
    return _page("index.html")


async def phone(request: web.Request) -> web.Response:
    """GET /phone: a person's phone, to link devices and chat as a contact."""
    return _page("phone.html")


async def socket(request: web.Request) -> web.WebSocketResponse:
    """GET /ws: the page's connection to the simulated WhatsApp network."""
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    await PageSession(request.app[control.NETWORK_KEY], ws).run()
    return ws


async def qr_svg(request: web.Request) -> web.Response:
    """GET /qr.svg?data=...: render a QR code (same origin, nothing external)."""
    data = request.query.get("data", "")
    if not data or len(data) > 1024:
        raise web.HTTPBadRequest(text="data is required (at most 1024 characters)")
    buf = io.BytesIO()
    segno.make(data, error="l", micro=False).save(buf, kind="svg", scale=5, border=2, xmldecl=False)
    return web.Response(body=buf.getvalue(), content_type="image/svg+xml", headers=NO_STORE)


async def favicon(request: web.Request) -> web.Response:
    """GET /favicon.ico: nothing, but not a 404 in the page's console."""
    return web.Response(status=204)


def build_app(config: SimConfig) -> web.Application:
    """A fresh application with its own `Network` (no shared state between instances)."""
    app = web.Application(middlewares=[control.errors])
    app[control.NETWORK_KEY] = Network(config)
    app.router.add_get("/", index)
    app.router.add_get("/phone", phone)
    app.router.add_get("/ws", socket)
    app.router.add_get("/qr.svg", qr_svg)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC, append_version=False)
    control.add_routes(app)

    async def close_pages(app: web.Application) -> None:
        # Close page sockets on shutdown so the runner does not wait for them.
        app[control.NETWORK_KEY].reset()

    app.on_shutdown.append(close_pages)
    return app
