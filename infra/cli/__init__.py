"""`wagate`: the operator's command line.

Local tools (`local`, `bootstrap-key`, `migrate`) work on the stack's resources directly; the rest (`accounts`,
`qr`, `send`, `keys`, `events`, `doctor`) call the public API with a key: `--url`/`--api-key`, else `WAGATE_URL`/
`WAGATE_API_KEY`, else `~/.config/wagate/config.json` (`{"url": ..., "api_key": ...}`). Errors print one line on
stderr and exit 1 (3 when the API cannot be reached; `doctor` documents its own codes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from infra.cli import accounts, doctor, events
from infra.cli.client import Client, CliError, Target


def _run_local(args: argparse.Namespace) -> int:
    from infra.local.__main__ import main as run_local

    run_local(args.rest)
    return 0


def _bootstrap_key(args: argparse.Namespace) -> int:
    """Create the bootstrap tenant's admin key in the configured tables (AWS or an emulator)."""
    from functions.service.api_keys import ensure_bootstrap_key
    from functions.service.context import services

    key, created = ensure_bootstrap_key(services(), args.key)
    print(key if created else "the key already exists", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wagate", description="wagate operator tools")
    parser.add_argument("--url", help="the API's base URL (default: $WAGATE_URL, then the config file)")
    parser.add_argument("--api-key", help="the API key (default: $WAGATE_API_KEY, then the config file)")
    parser.add_argument("--json", action="store_true", help="print the API's answers as JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="run the whole gateway locally (what `make run` does)")
    local.add_argument("rest", nargs=argparse.REMAINDER, help="options of python -m infra.local")
    local.set_defaults(func=_run_local)
    boot = commands.add_parser("bootstrap-key",
                               help="create the bootstrap admin key (reads API_KEYS_TABLE, AWS_ENDPOINT_URL, ...)")
    boot.add_argument("--key", help="store this key instead of generating one")
    boot.set_defaults(func=_bootstrap_key)
    accounts.register(commands)
    events.register(commands)
    doctor.register(commands)
    try:
        from infra.migration.cli import register
    except ImportError:  # the migration tool is optional in slim installs
        pass
    else:
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api: Callable[[Client, argparse.Namespace], int] | None = getattr(args, "api", None)
    try:
        if api is not None:
            return int(api(Client(Target.resolve(args.url, args.api_key)), args))
        func: Callable[[argparse.Namespace], Any] = args.func
        return int(func(args) or 0)
    except CliError as exc:
        print(f"wagate: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
