"""`wagate doctor`: `GET /health/details`, printed for a human, with an exit code for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from infra.cli.accounts import table
from infra.cli.client import ApiError, Client, Unreachable

#: Exit codes (docs/operations.md).
HEALTHY, WARNINGS, PROBLEMS, UNREACHABLE = 0, 1, 2, 3
EXIT = {"ok": HEALTHY, "warning": WARNINGS, "problem": PROBLEMS}
MARK = {"ok": "OK", "warning": "WARN", "problem": "FAIL"}


def doctor(client: Client, args: argparse.Namespace) -> int:
    try:
        health = client.call("GET", "/health/details")
    except ApiError as exc:
        hint = " (doctor needs an admin key of the bootstrap tenant)" if exc.status in (401, 403) else ""
        print(f"cannot read the stack's health: {exc}{hint}", file=sys.stderr)
        return UNREACHABLE
    except Unreachable as exc:
        print(str(exc), file=sys.stderr)
        return UNREACHABLE
    if args.json:
        print(json.dumps(health, indent=2))
    else:
        report(health)
    return EXIT.get(str(health.get("status")), PROBLEMS)


def report(health: dict[str, Any]) -> None:
    """The details as sections a human reads top-down: verdict and findings first."""
    status = str(health.get("status"))
    print(f"wagate doctor: {MARK.get(status, status.upper())} ({health.get('checked_at')})")
    for finding in health.get("findings", []):
        print(f"  [{MARK.get(finding['level'], finding['level'])}] {finding['code']}: {finding['message']}")

    print("\nqueues")
    table([[q["name"], q["visible"], q["in_flight"], q["delayed"],
            q.get("error") or ("" if q.get("configured", True) else "not configured")]
           for q in health.get("queues", [])], ["QUEUE", "WAITING", "IN FLIGHT", "DELAYED", "NOTE"])

    print("\ndead letter queues")
    table([[d["name"], d["messages"], "; ".join(f"{s.get('reason') or 'redriven'} @ {s.get('sent_at')}"
                                                for s in d.get("samples", [])),
            d.get("error") or ("" if d.get("configured", True) else "not configured")]
           for d in health.get("dead_letter_queues", [])], ["DLQ", "MESSAGES", "SAMPLES", "NOTE"])

    hosts = health.get("hosts", [])
    print(f"\nhosts ({sum(1 for h in hosts if h['alive'])} alive)")
    if hosts:
        table([[h["host_id"], "alive" if h["alive"] else "gone", f"{h['accounts']}/{h['capacity']}", h["assigned"],
                h["registered_until"]] for h in hosts], ["HOST", "STATE", "HELD/CAP", "ASSIGNED", "REGISTERED UNTIL"])
    else:
        print("  none registered")

    accounts = health.get("accounts", {})
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(accounts.get("by_status", {}).items())) or "none"
    print(f"\naccounts: {accounts.get('total', 0)} ({by_status}); "
          f"{accounts.get('pending_deletion', 0)} being deleted" + (" [partial]" if accounts.get("truncated") else ""))
    stuck = accounts.get("stuck", [])
    if stuck:
        print("stuck")
        table([[s["account_id"], s["tenant_id"], s["connection_status"], s["since"], s.get("host_id"), s["reason"]]
               for s in stuck], ["ACCOUNT", "TENANT", "STATUS", "SINCE", "HOST", "WHY"])


def register(commands: Any) -> None:
    p = commands.add_parser("doctor", help="the stack's health; exit 0 healthy, 1 warnings, 2 problems, "
                                           "3 cannot reach the API")
    p.set_defaults(api=doctor)
