"""The "phone" control API: JSON over HTTP under /sim/ (see docs/wa_sim.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .network import Network, SimError, normalize_phone

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NETWORK_KEY: web.AppKey[Network] = web.AppKey("wa_sim_network", Network)
ACKS = {"delivered": "delivered", "read": "read", "2": "delivered", "3": "read"}


def _net(request: web.Request) -> Network:
    return request.app[NETWORK_KEY]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError as exc:
        raise SimError(400, "invalid_json", f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SimError(400, "invalid_json", "body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SimError(400, f"missing_{name}", f"{name} is required")
    return value


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn `SimError` into a JSON error response."""
    try:
        return await handler(request)
    except SimError as exc:
        return web.json_response({"error": exc.code, "message": exc.message}, status=exc.status)


async def health(request: web.Request) -> web.Response:
    """GET /sim/health."""
    return web.json_response({"ok": True, "pages": len(_net(request).pages)})


async def link(request: web.Request) -> web.Response:
    """POST /sim/link: the phone scans a QR code or types a pairing code."""
    data = await _body(request)
    phone = normalize_phone(data.get("phone_number"))
    push_name = data.get("push_name") if isinstance(data.get("push_name"), str) else None
    if data.get("qr"):
        result = _net(request).link_by_qr(_text(data, "qr"), phone, push_name)
    elif data.get("pairing_code"):
        result = _net(request).link_by_pairing_code(_text(data, "pairing_code"), phone, push_name)
    else:
        raise SimError(400, "missing_code", "give either qr or pairing_code")
    return web.json_response({"linked": True, **result})


async def unlink(request: web.Request) -> web.Response:
    """POST /sim/unlink: revoke the linked device(s) of a number from the phone."""
    data = await _body(request)
    phone = normalize_phone(data.get("phone_number"))
    device_id = data.get("device_id")
    count = _net(request).unlink(phone, int(device_id) if device_id is not None else None)
    if count == 0:
        raise SimError(404, "not_linked", f"{phone} has no linked device")
    return web.json_response({"phone_number": phone, "unlinked_devices": count})


async def accounts(request: web.Request) -> web.Response:
    """GET /sim/accounts."""
    return web.json_response({"accounts": _net(request).accounts_json()})


async def pending(request: web.Request) -> web.Response:
    """GET /sim/pending: pages showing a QR code or a pairing code."""
    return web.json_response({"pages": _net(request).pending_pages_json()})


async def messages(request: web.Request) -> web.Response:
    """GET /sim/contacts/{contact}/messages[?direction=received|sent|all]."""
    contact = normalize_phone(request.match_info["contact"])
    direction = request.query.get("direction", "received")
    if direction not in ("received", "sent", "all"):
        raise SimError(400, "invalid_direction", "direction is received, sent or all")
    rows = [m.to_json() for m in _net(request).messages.get(contact, [])
            if direction == "all" or m.direction == direction]
    return web.json_response({"contact": contact, "messages": rows})


async def contact_send(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/send: the contact writes to an account."""
    data = await _body(request)
    contact = normalize_phone(request.match_info["contact"])
    result = _net(request).inbound(contact, normalize_phone(data.get("to")), _text(data, "text"))
    return web.json_response(result, status=201)


async def contact_ack(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/ack: the contact's phone reports delivered/read."""
    data = await _body(request)
    contact = normalize_phone(request.match_info["contact"])
    ack = ACKS.get(str(data.get("ack", "")).lower())
    if ack is None:
        raise SimError(400, "invalid_ack", "ack is delivered or read")
    return web.json_response(_net(request).contact_ack(contact, _text(data, "message_id"), ack))


async def network_state(request: web.Request) -> web.Response:
    """POST /sim/network: take an account's connection down, up, or make it slow."""
    data = await _body(request)
    state = data.get("state")
    if state not in ("down", "up", "slow"):
        raise SimError(400, "invalid_state", "state is down, up or slow")
    latency = data.get("latency_ms")
    seconds = float(latency) / 1000 if isinstance(latency, int | float) else None
    return web.json_response(
        _net(request).set_network(normalize_phone(data.get("phone_number")), state, seconds))


async def reset(request: web.Request) -> web.Response:
    """POST /sim/reset: forget every account, message and code."""
    _net(request).reset()
    return web.json_response({"reset": True})


def add_routes(app: web.Application) -> None:
    """Register the /sim/ routes."""
    app.router.add_get("/sim/health", health)
    app.router.add_post("/sim/link", link)
    app.router.add_post("/sim/unlink", unlink)
    app.router.add_get("/sim/accounts", accounts)
    app.router.add_get("/sim/pending", pending)
    app.router.add_get("/sim/contacts/{contact}/messages", messages)
    app.router.add_post("/sim/contacts/{contact}/send", contact_send)
    app.router.add_post("/sim/contacts/{contact}/ack", contact_ack)
    app.router.add_post("/sim/network", network_state)
    app.router.add_post("/sim/reset", reset)
