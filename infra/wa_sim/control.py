"""The "phone" control API: JSON over HTTP under /sim/ (see docs/wa_sim.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .content import from_phone
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


async def contact_typing(request: web.Request) -> web.Response:
    """GET /sim/contacts/{contact}/typing: the accounts whose chat shows "typing…" on the contact's phone."""
    contact = normalize_phone(request.match_info["contact"])
    return web.json_response({"contact": contact, "typing": _net(request).typing(contact)})


async def contact_send(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/send: the contact writes (any type) to an account."""
    data = await _body(request)
    contact = normalize_phone(request.match_info["contact"])
    quoted = data.get("quoted_id")
    result = _net(request).inbound(contact, normalize_phone(data.get("to")), from_phone(data),
                                   quoted_id=quoted if isinstance(quoted, str) and quoted else None,
                                   as_lid=data.get("as_lid") is True)
    return web.json_response(result, status=201)


async def contact_info(request: web.Request) -> web.Response:
    """GET /sim/contacts/{contact}: whether the number is on WhatsApp, and its LID."""
    contact = normalize_phone(request.match_info["contact"])
    net = _net(request)
    registered = net.is_registered(contact)
    return web.json_response({"contact": contact, "wid": f"{contact}@c.us", "on_whatsapp": registered,
                              "lid": f"{net.lid_of(contact)}@lid" if registered else None})


async def contact_react(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/react: react to a message ('' or null emoji removes it)."""
    data = await _body(request)
    emoji = data.get("emoji") or ""
    if not isinstance(emoji, str):
        raise SimError(400, "invalid_emoji", "emoji is a string")
    result = _net(request).contact_react(normalize_phone(request.match_info["contact"]),
                                         data.get("message_id"), emoji)
    return web.json_response(result, status=201)


async def contact_edit(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/edit: edit a text (or caption) the contact sent."""
    data = await _body(request)
    result = _net(request).contact_edit(normalize_phone(request.match_info["contact"]),
                                        data.get("message_id"), _text(data, "text"))
    return web.json_response(result, status=201)


async def contact_revoke(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/revoke: delete a message the contact sent, for everyone."""
    data = await _body(request)
    result = _net(request).contact_revoke(normalize_phone(request.match_info["contact"]), data.get("message_id"))
    return web.json_response(result, status=201)


async def contact_vote(request: web.Request) -> web.Response:
    """POST /sim/contacts/{contact}/vote: vote in a poll the account sent."""
    data = await _body(request)
    options = data.get("options")
    if not isinstance(options, list):
        raise SimError(400, "invalid_options", "options is a list of option names or indexes")
    result = _net(request).contact_vote(normalize_phone(request.match_info["contact"]),
                                        data.get("message_id"), options)
    return web.json_response(result, status=201)


async def message_media(request: web.Request) -> web.Response:
    """GET /sim/contacts/{contact}/messages/{id}/media: the exact bytes of a media message."""
    contact = normalize_phone(request.match_info["contact"])
    msg = _net(request).find_message(contact, request.match_info["id"])
    if msg is None or msg.media is None:
        raise SimError(404, "media_not_found", "no media message with this id")
    headers = {"Content-Disposition": f'attachment; filename="{msg.filename or msg.id}"'}
    return web.Response(body=msg.media, content_type=(msg.mimetype or "application/octet-stream").split(";")[0],
                        headers=headers)


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
    unknown = sorted(set(data) - {"phone_number", "state", "latency_ms"})
    if unknown:  # a misspelt setting ignored would quietly test something else
        raise SimError(400, "unknown_field", f"unknown field(s) {', '.join(unknown)}: phone_number, state, latency_ms")
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
    app.router.add_get("/sim/contacts/{contact}", contact_info)
    app.router.add_get("/sim/contacts/{contact}/typing", contact_typing)
    app.router.add_get("/sim/contacts/{contact}/messages/{id}/media", message_media)
    app.router.add_post("/sim/contacts/{contact}/send", contact_send)
    app.router.add_post("/sim/contacts/{contact}/react", contact_react)
    app.router.add_post("/sim/contacts/{contact}/edit", contact_edit)
    app.router.add_post("/sim/contacts/{contact}/revoke", contact_revoke)
    app.router.add_post("/sim/contacts/{contact}/vote", contact_vote)
    app.router.add_post("/sim/contacts/{contact}/ack", contact_ack)
    app.router.add_post("/sim/network", network_state)
    app.router.add_post("/sim/reset", reset)
