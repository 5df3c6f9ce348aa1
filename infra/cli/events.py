"""`wagate events tail`: the key's events as JSON lines, live over the WebSocket API."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from infra.cli.client import Client, CliError, Unreachable


def tail(client: Client, args: argparse.Namespace) -> int:
    """POST /realtime/tickets, connect, subscribe, print each event (one JSON line) until `--count` events,
    `--timeout` seconds of silence... or Ctrl-C."""
    try:
        import aiohttp  # noqa: F401 - in the `local` and `host` extras
    except ImportError:
        raise CliError("events tail needs aiohttp: pip install 'wagate[local]'") from None
    ticket = client.call("POST", "/realtime/tickets")
    try:
        return asyncio.run(_follow(ticket["url"], args))
    except KeyboardInterrupt:
        return 130


async def _follow(url: str, args: argparse.Namespace) -> int:
    import aiohttp

    subscribe = {"action": "subscribe", "account_ids": args.account or None, "events": args.event or None,
                 "since": args.since}
    seen = 0
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url, heartbeat=60) as ws:
            await ws.send_str(json.dumps(subscribe))
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), args.timeout or None)
                except TimeoutError:
                    return 0 if args.count is None else 1
                if message.type != aiohttp.WSMsgType.TEXT:
                    print("the server closed the connection", file=sys.stderr)
                    return 1
                seen += _print(json.loads(message.data))
                if args.count is not None and seen >= args.count:
                    return 0
    except aiohttp.ClientError as exc:
        raise Unreachable(f"cannot connect to the WebSocket API: {exc}") from None


def _print(message: dict[str, Any]) -> int:
    """Events to stdout; the server's own messages (subscribed, errors, replay gaps) to stderr. 1 for an event."""
    if "id" in message:
        print(json.dumps(message, ensure_ascii=False), flush=True)
        return 1
    print(f"# {json.dumps(message, ensure_ascii=False)}", file=sys.stderr, flush=True)
    if message.get("type") == "error":
        raise CliError(f"{message.get('code')}: {message.get('message')}")
    return 0


def register(commands: Any) -> None:
    events = commands.add_parser("events", help="follow events live (WebSocket)")
    verbs = events.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("tail", help="print events as JSON lines as they come")
    p.add_argument("--account", action="append", help="only this account (repeat for more)")
    p.add_argument("--event", action="append", help="only this event type, e.g. message.received")
    p.add_argument("--since", help="replay the events after this event id first")
    p.add_argument("--count", type=int, help="stop after this many events")
    p.add_argument("--timeout", type=float, default=0, help="stop after this many seconds without a message")
    p.set_defaults(api=tail)
