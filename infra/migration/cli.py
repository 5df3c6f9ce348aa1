"""`wagate migrate sessions-to-accounts` and `reseal-legacy-credentials`: argument parsing and the entry point
`infra.cli` dispatches to."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.config import Settings
from core.errors import DependencyFailure
from infra.migration.runner import Options, run

DEFAULT_LOG_TABLE = "wagate-migrations"


def register(subparsers: Any) -> None:
    """Add `migrate` (with sub-command `sessions-to-accounts`) to a `_SubParsersAction`.

    The parsed namespace carries `func`: call `args.func(args)`, it returns the exit code.
    """
    migrate = subparsers.add_parser("migrate", help="Move data from legacy stores into wagate's tables.")
    commands = migrate.add_subparsers(dest="migration", metavar="MIGRATION", required=True)
    parser = commands.add_parser(
        "sessions-to-accounts",
        help="Copy a legacy whatsapp_sessions store into the accounts table.",
        description="Copy a legacy whatsapp_sessions store (DynamoDB table, JSON lines or CSV export) "
                    "into the accounts table: dry-run, checkpoints, verification and rollback. "
                    "See docs/migration.md.")
    add_arguments(parser)
    parser.set_defaults(func=run_sessions_to_accounts)
    settings = Settings.from_env()
    reseal = commands.add_parser(
        "reseal-legacy-credentials",
        help="Encrypt legacy credentials that migrations before sealing left in metadata.legacy.",
        description="Accounts migrated before legacy credentials were sealed keep whatsapp-web.js session_data "
                    "and unknown columns in plaintext in metadata.legacy (never shown by the API). This moves them "
                    "into legacy_secrets, KMS-encrypted for no function to read. Dry run unless --apply.")
    reseal.add_argument("--apply", action="store_true", help="write (default: report what would be sealed)")
    reseal.add_argument("--accounts-table", default=settings.accounts_table,
                        help="the accounts table (default: $ACCOUNTS_TABLE or %(default)s)")
    reseal.add_argument("--endpoint-url", default=settings.endpoint_url,
                        help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    reseal.add_argument("--kms-key-id", default=settings.snapshot_key_id or None,
                        help="KMS key to seal with (default: $SNAPSHOT_KEY_ID, the stack's key)")
    reseal.set_defaults(func=run_reseal)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings = Settings.from_env()
    parser.add_argument("--source",
                        help="dynamodb:TABLE | jsonl:PATH | csv:PATH (e.g. dynamodb:whatsapp_sessions)")
    modes = parser.add_mutually_exclusive_group()
    for flag, text in (
        ("--dry-run", "report what would happen, write nothing (the default)"),
        ("--apply", "create the accounts (resumable; re-running is safe)"),
        ("--verify", "compare every source row with the accounts table, field by field"),
        ("--rollback", "delete exactly the accounts this migration created and nobody changed"),
    ):
        modes.add_argument(flag, dest="mode", action="store_const", const=flag[2:], help=text)
    parser.set_defaults(mode="dry-run")
    parser.add_argument("--accounts-table", default=settings.accounts_table,
                        help="target table (default: $ACCOUNTS_TABLE or %(default)s)")
    parser.add_argument("--endpoint-url", default=settings.endpoint_url,
                        help="AWS endpoint, e.g. moto or LocalStack (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--log-table", default=os.environ.get("MIGRATIONS_TABLE") or DEFAULT_LOG_TABLE,
                        help="migration log table, created on demand "
                             "(default: $MIGRATIONS_TABLE or %(default)s)")
    parser.add_argument("--migration-id",
                        help="name of the migration in the log (default: from table and source)")
    parser.add_argument("--batch-size", type=_positive, default=200,
                        help="rows per chunk: one checkpoint, two log writes (default %(default)s)")
    parser.add_argument("--workers", type=_positive, default=16,
                        help="concurrent writes (default %(default)s)")
    parser.add_argument("--write-strategy", choices=("put", "transact"), default="put",
                        help="conditional PutItem on a thread pool, or TransactWriteItems "
                             "(default %(default)s)")
    parser.add_argument("--checkpoint", type=Path,
                        help="checkpoint file (default: .wagate-migration/<migration id>.json)")
    parser.add_argument("--skip-deleted", action="store_true", help="do not migrate soft-deleted rows")
    parser.add_argument("--kms-key-id", default=settings.snapshot_key_id or None,
                        help="KMS key that encrypts legacy credentials (session_data, unknown columns) before they "
                             "are written (default: $SNAPSHOT_KEY_ID, the stack's key)")
    parser.add_argument("--keep-column", action="append", default=[], metavar="NAME",
                        help="an unknown legacy column known to hold no credentials: kept readable in "
                             "metadata.legacy.columns instead of sealed (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def options_from(args: argparse.Namespace) -> Options:
    """Options from parsed arguments; region comes from the environment like every other client."""
    return Options(mode=args.mode, source=args.source, accounts_table=args.accounts_table,
                   log_table=args.log_table, endpoint_url=args.endpoint_url,
                   region=Settings.from_env().region,
                   batch_size=args.batch_size, checkpoint=args.checkpoint, skip_deleted=args.skip_deleted,
                   workers=args.workers, strategy=args.write_strategy, progress=not args.no_progress,
                   migration_id=args.migration_id, kms_key_id=args.kms_key_id,
                   keep_columns=tuple(args.keep_column))


def run_sessions_to_accounts(args: argparse.Namespace) -> int:
    """Run the command; 0 when clean, 1 when rows need attention (or verify found mismatches), 2 on errors."""
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if not args.source and not (args.mode == "rollback" and args.migration_id):
        print("error: --source is required (rollback also accepts --migration-id)", file=sys.stderr)
        return 2
    try:
        report = run(options_from(args))
    except (ValueError, OSError, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report.to_text())
    if args.mode == "dry-run":
        return 0
    return 0 if report.ok else 1


def run_reseal(args: argparse.Namespace) -> int:
    """0 when nothing is left in plaintext (or a dry run), 1 when accounts changed meanwhile, 2 on errors."""
    import boto3

    from infra.migration.reseal import reseal

    logging.getLogger("botocore").setLevel(logging.WARNING)
    if args.apply and not args.kms_key_id:
        print("error: --kms-key-id is required with --apply (or set $SNAPSHOT_KEY_ID)", file=sys.stderr)
        return 2
    region = Settings.from_env().region
    try:
        report = reseal(boto3.client("dynamodb", region_name=region, endpoint_url=args.endpoint_url),
                        boto3.client("kms", region_name=region, endpoint_url=args.endpoint_url),
                        args.accounts_table, args.kms_key_id or "", apply=args.apply)
    except (ValueError, OSError, ClientError, BotoCoreError, DependencyFailure) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.to_text(args.apply))
    return 1 if report.changed_meanwhile else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.migration migrate sessions-to-accounts ...`, the same command line as `wagate`."""
    parser = argparse.ArgumentParser(prog="python -m infra.migration")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
