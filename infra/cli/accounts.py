"""`wagate accounts|qr|send|keys`: accounts, linking, sending and API keys over the public API."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any, TextIO

from infra.cli.client import Client, CliError

ACTIONS = ("start", "stop", "restart", "logout")
ROLES = ("viewer", "operator", "admin")


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None) -> None:
    """Columns padded to their widest cell; `-` for empty cells."""
    out = out or sys.stdout
    cells = [[("-" if c in (None, "", []) else ",".join(map(str, c)) if isinstance(c, list) else str(c))
              for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def show(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# --- accounts ------------------------------------------------------------------------------------------------

def accounts_list(client: Client, args: argparse.Namespace) -> int:
    items = list(client.pages("/accounts", {"status": args.status}, limit=args.limit))
    if args.json:
        show(items)
    else:
        table([[a["account_id"], a["account_name"], a["connection_status"], a.get("provider"), a.get("phone_number"),
                a.get("host_id")] for a in items], ["ACCOUNT", "NAME", "STATUS", "PROVIDER", "PHONE", "HOST"])
    return 0


def accounts_show(client: Client, args: argparse.Namespace) -> int:
    show(client.call("GET", f"/accounts/{quote(args.account)}"))
    return 0


def accounts_create(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"account_name": args.name}
    if args.phone:
        body["phone_number"] = args.phone
    if args.metadata:
        try:
            body["metadata"] = json.loads(args.metadata)
        except ValueError as exc:
            raise CliError(f"--metadata is not JSON: {exc}") from None
    account = client.call("POST", "/accounts", body)
    if args.json:
        show(account)
    else:
        print(account["account_id"])
    return 0


def accounts_action(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("POST", f"/accounts/{quote(args.account)}/{args.action}")
    if args.json:
        show(answer)
    else:
        print(f"{args.action} accepted for {answer['account_id']} (now {answer['connection_status']}, "
              f"desired {answer['desired_state']})")
    return 0


def accounts_delete(client: Client, args: argparse.Namespace) -> int:
    if not args.yes and sys.stdin.isatty():
        reply = input(f"delete {args.account} (its device is logged out, its messages fail)? [y/N] ")
        if reply.strip().lower() not in {"y", "yes"}:
            print("not deleted")
            return 1
    client.call("DELETE", f"/accounts/{quote(args.account)}")
    print(f"deleted {args.account}")
    return 0


# --- qr, send ------------------------------------------------------------------------------------------------

def qr(client: Client, args: argparse.Namespace) -> int:
    """Print the account's QR in the terminal, again each time it rotates, until WORKING (0), FAILED (1),
    `--timeout` (1) or Ctrl-C (130)."""
    import segno

    path = f"/accounts/{quote(args.account)}"
    if args.start:
        client.call("POST", f"{path}/start")
    deadline = time.monotonic() + args.timeout if args.timeout else None
    shown: str | None = None
    try:
        while True:
            account = client.call("GET", path)
            status = account["connection_status"]
            if status == "WORKING":
                print(f"{args.account} is linked (WORKING)")
                return 0
            if status == "FAILED":
                print(f"{args.account} FAILED: {account.get('status_reason') or 'no reason given'}", file=sys.stderr)
                return 1
            if status == "STOPPED" and account.get("desired_state") != "running":
                print(f"{args.account} is stopped: start it first (or pass --start)", file=sys.stderr)
                return 1
            code = client.call("GET", f"{path}/qr", params={"format": "raw"}, ok_missing=True)
            if code and code.get("value") != shown:
                shown = code["value"]
                if sys.stdout.isatty():
                    print("\x1b[2J\x1b[H", end="")  # a fresh screen for the new code
                segno.make(shown, error="l").terminal(out=sys.stdout, compact=True)
                print(f"scan with WhatsApp > Linked devices ({args.account}, {status}; expires "
                      f"{code.get('expires_at') or '?'}); Ctrl-C to stop", flush=True)
            elif not code and shown is None:
                print(f"waiting for a QR ({status})...", flush=True)
                shown = ""
            if deadline is not None and time.monotonic() >= deadline:
                print("timed out before the account was linked", file=sys.stderr)
                return 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 130


def send(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"to": args.to, "type": "text", "text": {"body": args.text}}
    if args.reference:
        body["client_reference"] = args.reference
    answer = client.call("POST", f"/accounts/{quote(args.account)}/messages", body)
    if args.json:
        show(answer)
    else:
        print(f"{answer['message_id']} {answer['status']}")
    return 0


# --- keys ----------------------------------------------------------------------------------------------------

def keys_create(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.account:
        body["account_ids"] = args.account
    if args.tenant:
        body["tenant"] = args.tenant
    key = client.call("POST", "/api-keys", body)
    if args.json:
        show(key)
    else:
        print(key["api_key"])
        print(f"key id {key['key_id']} ({key['role']}, tenant {key['tenant_id']}): the key is shown only now",
              file=sys.stderr)
    return 0


def keys_list(client: Client, args: argparse.Namespace) -> int:
    items = client.call("GET", "/api-keys")["items"]
    if args.json:
        show(items)
    else:
        table([[k["key_id"], k["name"], k["role"], k["prefix"], k.get("account_ids"), k["created_at"]]
               for k in items], ["KEY", "NAME", "ROLE", "PREFIX", "ACCOUNTS", "CREATED"])
    return 0


def keys_revoke(client: Client, args: argparse.Namespace) -> int:
    client.call("DELETE", f"/api-keys/{quote(args.key_id)}")
    print(f"revoked {args.key_id}")
    return 0


def register(commands: Any) -> None:
    """Add `accounts`, `qr`, `send` and `keys` to the top-level sub-commands."""
    accounts = commands.add_parser("accounts", help="list, show, create, start/stop/restart/logout, delete")
    verbs = accounts.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("list", help="accounts of the key's tenant, newest first")
    p.add_argument("--status", choices=["STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED"])
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(api=accounts_list)
    p = verbs.add_parser("show", help="one account as JSON")
    p.add_argument("account")
    p.set_defaults(api=accounts_show)
    p = verbs.add_parser("create", help="a new (stopped) account; prints its id")
    p.add_argument("name")
    p.add_argument("--phone")
    p.add_argument("--metadata", help="a JSON object")
    p.set_defaults(api=accounts_create)
    for action in ACTIONS:
        p = verbs.add_parser(action, help=f"ask the fleet to {action} it")
        p.add_argument("account")
        p.set_defaults(api=accounts_action, action=action)
    p = verbs.add_parser("delete", help="delete it (asks first on a terminal, unless --yes)")
    p.add_argument("account")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(api=accounts_delete)

    p = commands.add_parser("qr", help="show the account's QR in the terminal until it is linked")
    p.add_argument("account")
    p.add_argument("--start", action="store_true", help="start the account first")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks (default 2)")
    p.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (default: never)")
    p.set_defaults(api=qr)

    p = commands.add_parser("send", help="send a text message")
    p.add_argument("account")
    p.add_argument("--to", required=True, help="phone number (digits, country code first)")
    p.add_argument("--text", required=True)
    p.add_argument("--reference", help="client_reference, echoed in status events")
    p.set_defaults(api=send)

    keys = commands.add_parser("keys", help="create, list, revoke API keys (admins)")
    verbs = keys.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("create", help="a new key; prints it (shown only once)")
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=ROLES, default="operator")
    p.add_argument("--account", action="append", help="limit it to this account (repeat for more)")
    p.add_argument("--tenant", help="the first key of a new tenant (bootstrap-tenant admins)")
    p.set_defaults(api=keys_create)
    p = verbs.add_parser("list", help="the tenant's keys (never the keys themselves)")
    p.set_defaults(api=keys_list)
    p = verbs.add_parser("revoke", help="delete a key: it and its access tokens stop working at once")
    p.add_argument("key_id")
    p.set_defaults(api=keys_revoke)
