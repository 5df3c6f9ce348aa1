"""The four modes of `sessions-to-accounts`: dry-run, apply, verify and rollback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import boto3
from botocore.config import Config

from core.errors import DependencyFailure
from core.ids import ulid
from core.store import secrets
from infra.migration.codec import canonical, checksum, differing_fields
from infra.migration.log import Checkpoint, LogState, MigrationLog
from infra.migration.mapping import InvalidRow, MappedAccount, Sealed, map_row
from infra.migration.report import Progress, Report
from infra.migration.sources import SourceRow, open_source, source_label
from infra.migration.writer import AccountsTable

Mode = Literal["dry-run", "apply", "verify", "rollback"]
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """Everything one invocation needs, read once from the command line and the environment."""

    mode: Mode
    source: str | None
    accounts_table: str
    log_table: str = "wagate-migrations"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    batch_size: int = 200
    checkpoint: Path | None = None
    skip_deleted: bool = False
    workers: int = 16
    strategy: str = "put"
    progress: bool = True
    migration_id: str | None = None
    # KMS key that seals legacy credentials (session_data, unknown columns) before they are written.
    kms_key_id: str | None = None
    keep_columns: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """Names the migration in the log: stable across re-runs, so they continue one migration."""
        if self.migration_id:
            return self.migration_id
        if not self.source:
            raise ValueError("--source (or --migration-id) is required")
        return f"sessions-to-accounts:{self.accounts_table}:{source_label(self.source)}"

    @property
    def checkpoint_path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.id)
        return self.checkpoint or Path(".wagate-migration") / f"{safe}.json"


def dynamodb_client(options: Options) -> Any:
    """A client sized for the worker pool, with botocore's adaptive (client-side rate limiting) retries."""
    config = Config(retries={"max_attempts": 10, "mode": "adaptive"},
                    max_pool_connections=options.workers + 8, connect_timeout=5, read_timeout=30)
    return boto3.session.Session().client("dynamodb", region_name=options.region,
                                          endpoint_url=options.endpoint_url, config=config)


class SealFailed(Exception):
    """A row's legacy credentials could not be encrypted: it is not written (never in plaintext)."""


class Sealer:
    """Replaces a mapped item's `Sealed` credentials with their KMS envelope (purpose LEGACY_PURPOSE), which no
    function of the stack may decrypt; `python -m infra.migration` operators holding kms:Decrypt can."""

    def __init__(self, options: Options, kms: Any | None = None) -> None:
        self.options = options
        self._kms = kms

    def __call__(self, mapped: MappedAccount) -> MappedAccount:
        value = mapped.item.get("legacy_secrets")
        if not isinstance(value, Sealed):
            return mapped
        if not self.options.kms_key_id:
            raise SealFailed("the row holds legacy credentials (session_data or unknown columns): give --kms-key-id "
                             "(default $SNAPSHOT_KEY_ID, the stack's key) to store them encrypted")
        if self._kms is None:
            self._kms = boto3.session.Session().client("kms", region_name=self.options.region,
                                                       endpoint_url=self.options.endpoint_url)
        text = json.dumps(canonical(value.values), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        try:
            sealed = secrets.seal(text, purpose=secrets.LEGACY_PURPOSE, key_id=self.options.kms_key_id, kms=self._kms)
        except DependencyFailure as error:
            raise SealFailed(f"KMS refused or failed: {error.__cause__ or error}"[:500]) from error
        return replace(mapped, item={**mapped.item, "legacy_secrets": sealed})


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run(options: Options, client: Any | None = None, kms: Any | None = None) -> Report:
    """Run one mode and return its report (the caller prints it); `kms` seals credentials (default: a client of
    `options.endpoint_url`)."""
    client = client or dynamodb_client(options)
    report = Report(options.mode, options.id, options.source or "-", options.accounts_table)
    accounts = AccountsTable(client, options.accounts_table, options.workers, options.strategy)
    log = MigrationLog(client, options.log_table, options.id)
    try:
        if options.mode == "rollback":
            _rollback(options, log, accounts, report)
        elif options.mode == "verify":
            _verify(options, client, log, accounts, report)
        else:
            _migrate(options, client, log, accounts, report, Sealer(options, kms))
    finally:
        accounts.close()
    return report.finish()


class _Rows:
    """Maps a chunk of source rows; tallies invalid, skipped and duplicate rows on the way."""

    def __init__(self, options: Options, report: Report) -> None:
        self.options = options
        self.report = report
        self.seen: dict[str, str] = {}
        self.phones: set[tuple[str, str]] = set()

    def map(self, chunk: list[SourceRow]) -> list[tuple[str, MappedAccount]]:
        report, kept = self.report, []
        for source_row in chunk:
            report.rows += 1
            try:
                if source_row.row is None:
                    raise InvalidRow(source_row.error or "unreadable row")
                mapped = map_row(source_row.row, frozenset(self.options.keep_columns))
            except (InvalidRow, TypeError, ValueError, ArithmeticError) as error:  # odd values in odd columns
                report.outcomes["invalid"] += 1
                report.problem("invalid", row=source_row.ref, reason=str(error))
                continue
            report.warnings.update(mapped.warnings)
            report.mappings[mapped.status_mapping] += 1
            if mapped.deleted and self.options.skip_deleted:
                report.outcomes["skipped_deleted"] += 1
                continue
            previous = self.seen.get(mapped.account_id)
            if previous is not None:  # the same session_id twice (possible in exports only)
                report.outcomes["duplicate"] += 1
                report.problem("duplicate", row=source_row.ref, account_id=mapped.account_id,
                               identical=previous == mapped.checksum)
                continue
            self.seen[mapped.account_id] = mapped.checksum
            phone = mapped.item.get("phone_number")
            if phone:
                key = (str(mapped.item["tenant_id"]), str(phone))
                if key in self.phones:
                    report.warnings["duplicate_phone_number"] += 1
                self.phones.add(key)
            kept.append((source_row.ref, mapped))
        return kept


def _migrate(options: Options, client: Any, log: MigrationLog, accounts: AccountsTable,
             report: Report, sealer: Sealer) -> None:
    assert options.source is not None  # Options.id already insisted
    apply = options.mode == "apply"
    source = open_source(options.source, client)
    report.source = source.name
    if apply:
        log.ensure_table()
    state = log.load()
    start: dict[str, Any] | None = None
    checkpoint: Checkpoint | None = None
    if apply:
        checkpoint, note = Checkpoint.load(options.checkpoint_path, options.id, state.epoch,
                                           options.skip_deleted)
        report.notes.append(f"checkpoint {options.checkpoint_path}: {note}")
        start = checkpoint.position
        report.rows = report.resumed_rows = checkpoint.rows
        report.restore(checkpoint.tallies)
        log.save_meta(state.epoch, "applying",
                      {"source": source.name, "accounts_table": options.accounts_table})
    report.extra.update(log_table=options.log_table, write_strategy=options.strategy, workers=options.workers,
                        batch_size=options.batch_size)
    run_id, rows = ulid(), _Rows(options, report)
    progress = Progress(source.estimate(), options.progress, label=f"{options.mode} ")
    progress.done = report.rows
    for sequence, chunk in enumerate(chunked(source.rows(start), options.batch_size)):
        candidates = rows.map(chunk)
        name = MigrationLog.chunk_name(state.epoch, run_id, sequence) if apply else None
        _migrate_chunk(candidates, state, log, accounts, report, name, sealer)
        if checkpoint is not None:  # only after the chunk's outcome is in the log
            checkpoint.position, checkpoint.rows = chunk[-1].position, report.rows
            checkpoint.tallies = report.tallies()
            checkpoint.save()
        progress.advance(len(chunk))
    progress.close()
    if checkpoint is not None:
        # Finished: the next apply re-checks every row (and so reports accounts changed since).
        checkpoint.remove()
        log.save_meta(state.epoch, "applied", report.finish().to_dict())


def _migrate_chunk(candidates: list[tuple[str, MappedAccount]], state: LogState, log: MigrationLog,
                   accounts: AccountsTable, report: Report, chunk_name: str | None, sealer: Sealer) -> None:
    """Classify against the table, then (when applying) seal credentials, log the intent, create, log the outcome."""
    existing = accounts.get_many(m.account_id for _, m in candidates)
    to_create: list[tuple[str, MappedAccount]] = []
    for ref, mapped in candidates:
        current = existing.get(mapped.account_id)
        if current is None:
            to_create.append((ref, mapped))
        elif checksum(current) != mapped.checksum:
            report.outcomes["conflict"] += 1
            report.problem("conflict", row=ref, account_id=mapped.account_id,
                           fields=differing_fields(mapped.item, current))
        elif state.owns(mapped.account_id, mapped.checksum):
            report.outcomes["created"] += 1  # by an earlier (perhaps interrupted) run of this migration
        else:
            report.outcomes["already_present"] += 1
    if chunk_name is None:
        report.outcomes["would_create"] += len(to_create)
        return
    sealed: list[tuple[str, MappedAccount]] = []
    for ref, mapped in to_create:
        try:
            sealed.append((ref, sealer(mapped)))
        except SealFailed as error:
            report.outcomes["failed"] += 1
            report.problem("failed", row=ref, account_id=mapped.account_id, reason=str(error))
    to_create = sealed
    intents = {m.account_id: m.checksum for _, m in to_create}
    if intents:
        log.record_intent(chunk_name, intents)
    results = accounts.create_many([m for _, m in to_create]) if to_create else {}
    created: dict[str, str] = {}
    for ref, mapped in to_create:
        result = results[mapped.account_id]
        if result.outcome == "created" or (result.existing is not None
                                           and checksum(result.existing) == mapped.checksum):
            # An identical item found after the intent was logged is this run's own write whose
            # response got lost and was retried, not someone else's account.
            created[mapped.account_id] = mapped.checksum
            report.outcomes["created"] += 1
        elif result.outcome == "exists" and result.existing is not None:
            report.outcomes["conflict"] += 1
            report.problem("conflict", row=ref, account_id=mapped.account_id,
                           fields=differing_fields(mapped.item, result.existing))
        else:
            report.outcomes["failed"] += 1
            report.problem("failed", row=ref, account_id=mapped.account_id,
                           reason=result.error or "account vanished while being written")
    if intents:
        log.record_outcome(chunk_name, intents, created)


def _verify(options: Options, client: Any, log: MigrationLog, accounts: AccountsTable,
            report: Report) -> None:
    """Re-map every source row and compare it field by field with what the accounts table holds."""
    assert options.source is not None
    source = open_source(options.source, client)
    report.source = source.name
    state = log.load()
    rows = _Rows(options, report)
    digests = {"source": 0, "target": 0}
    progress = Progress(source.estimate(), options.progress, label="verify ")
    expected = 0
    for chunk in chunked(source.rows(), options.batch_size):
        candidates = rows.map(chunk)
        expected += len(candidates)
        existing = accounts.get_many(m.account_id for _, m in candidates)
        for ref, mapped in candidates:
            current = existing.get(mapped.account_id)
            digests["source"] ^= int(mapped.checksum, 16)
            if current is None:
                report.outcomes["missing"] += 1
                report.problem("missing", row=ref, account_id=mapped.account_id, expected=mapped.checksum)
                continue
            actual = checksum(current)
            digests["target"] ^= int(actual, 16)
            if actual == mapped.checksum:
                report.outcomes["match"] += 1
            else:
                report.outcomes["mismatch"] += 1
                report.problem("mismatch", row=ref, account_id=mapped.account_id, expected=mapped.checksum,
                               actual=actual, fields=differing_fields(mapped.item, current))
        progress.advance(len(chunk))
    progress.close()
    report.extra.update(expected_accounts=expected,
                        owned_by_migration=len(state.owned),
                        source_digest=f"{digests['source']:064x}", target_digest=f"{digests['target']:064x}")


def _rollback(options: Options, log: MigrationLog, accounts: AccountsTable, report: Report) -> None:
    """Delete exactly the accounts this migration created and nobody changed since."""
    if not log.exists():
        report.notes.append(f"no migration log table {options.log_table}: nothing to roll back")
        return
    state = log.load()
    owned = state.owned
    report.extra.update(log_table=options.log_table, epoch=state.epoch, owned_by_migration=len(owned))
    progress = Progress(len(owned), options.progress, label="rollback ")
    for chunk in chunked(sorted(owned), 100):
        current = accounts.get_many(chunk)
        to_delete = []
        for account_id in chunk:
            report.rows += 1
            item = current.get(account_id)
            if item is None:
                report.outcomes["already_absent"] += 1
            elif checksum(item) in owned[account_id]:
                to_delete.append(item)
            else:
                report.outcomes["kept_changed"] += 1
                report.problem("kept_changed", account_id=account_id, version=str(item.get("version")))
        for account_id, result in accounts.delete_many(to_delete).items():
            outcome = "kept_changed" if result == "changed" else result.split(":")[0]
            report.outcomes[outcome] += 1
            if outcome != "deleted":
                report.problem(outcome, account_id=account_id, reason=result)
        progress.advance(len(chunk))
    progress.close()
    if report.outcomes.get("failed"):
        report.notes.append("some deletes failed: the log is kept as is, run --rollback again")
        return
    # A new epoch: later applies start a fresh log and checkpoint; the old records stay for the audit.
    log.save_meta(state.epoch + 1, "rolled_back", report.to_dict())
    Checkpoint.discard(options.checkpoint_path, options.id)
