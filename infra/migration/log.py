"""Where a migration remembers what it did: a DynamoDB log (ownership) and a local checkpoint (position).

The log lives in its own table (default `wagate-migrations`, created on demand) so the accounts table
holds accounts only and a rollback works from any machine, after any crash. Each chunk of writes is
recorded twice: an *intent* (ids found absent and about to be created, with checksums) before the
first write, and its *outcome* (ids created) after, for the audit. Ownership comes from the intents:
an account whose id this migration intended to create and which holds exactly what it intended was
written by it, whether or not the outcome (or even the write's response) ever arrived.

The checkpoint is only a shortcut: losing it costs a re-scan, never correctness, since writes are
conditional and ownership comes from the log.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from core.models.common import utcnow

META = "meta"


@dataclass
class LogState:
    """What the log knows about one migration: its epoch and the accounts it may have created."""

    epoch: int = 0
    owned: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    meta: dict[str, Any] = field(default_factory=dict)

    def owns(self, account_id: str, checksum: str) -> bool:
        """Whether an account with this id and content was written by this migration."""
        return checksum in self.owned.get(account_id, ())


class MigrationLog:
    """The `wagate-migrations` table: hash key `migration_id`, range key `record`."""

    def __init__(self, client: Any, table: str, migration_id: str) -> None:
        self.client = client
        self.table = table
        self.migration_id = migration_id

    def exists(self) -> bool:
        try:
            self.client.describe_table(TableName=self.table)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return True

    def ensure_table(self) -> None:
        """Create the log table if it is missing (on-demand billing, nothing else)."""
        if self.exists():
            return
        try:
            self.client.create_table(
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "migration_id", "KeyType": "HASH"},
                           {"AttributeName": "record", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "migration_id", "AttributeType": "S"},
                                      {"AttributeName": "record", "AttributeType": "S"}])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":  # another run created it
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def load(self) -> LogState:
        """Meta record and every chunk record of the current epoch (empty if the table is missing)."""
        state = LogState()
        if not self.exists():
            return state
        meta = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                    Key=self._key(META)).get("Item")
        if meta:
            state.meta = {k: json.loads(v["S"]) if k == "details" else next(iter(v.values()))
                          for k, v in meta.items()}
            state.epoch = int(state.meta.get("epoch", 0))
        for record in self._chunks(state.epoch):
            for kind in ("intent", "created"):
                for account_id, value in record.get(kind, {}).get("M", {}).items():
                    state.owned[account_id].add(value["S"])
        return state

    def _chunks(self, epoch: int) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "migration_id = :m AND begins_with(#r, :p)",
            "ExpressionAttributeNames": {"#r": "record"},
            "ExpressionAttributeValues": {":m": {"S": self.migration_id}, ":p": {"S": f"chunk#{epoch:06d}#"}},
        }
        while True:
            page = self.client.query(**params)
            records.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return records
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_meta(self, epoch: int, state: str, details: dict[str, Any]) -> None:
        """The migration's summary record: epoch, state and the last report."""
        self.client.put_item(TableName=self.table, Item={
            **self._key(META), "epoch": {"N": str(epoch)}, "state": {"S": state},
            "updated_at": {"S": utcnow()}, "details": {"S": json.dumps(details, default=str)[:300_000]}})

    def record_intent(self, chunk: str, intents: dict[str, str]) -> None:
        """Before writing: these ids (absent when read) are about to be created with these checksums."""
        self._put_chunk(chunk, "open", intent=intents, created={})

    def record_outcome(self, chunk: str, intents: dict[str, str], created: dict[str, str]) -> None:
        """After writing: the ids this chunk actually created (the intent is kept for the audit)."""
        self._put_chunk(chunk, "done", intent=intents, created=created)

    def _put_chunk(self, chunk: str, state: str, intent: dict[str, str], created: dict[str, str]) -> None:
        item = {**self._key(chunk), "state": {"S": state}, "at": {"S": utcnow()},
                "intent": {"M": {k: {"S": v} for k, v in intent.items()}},
                "created": {"M": {k: {"S": v} for k, v in created.items()}}}
        for attempt in range(8):  # the log must not be the thing that loses track of a write
            try:
                self.client.put_item(TableName=self.table, Item=item)
                return
            except ClientError as error:
                if attempt == 7 or not _retryable(error):
                    raise
                time.sleep(min(5.0, 0.1 * 2**attempt))

    @staticmethod
    def chunk_name(epoch: int, run_id: str, sequence: int) -> str:
        return f"chunk#{epoch:06d}#{run_id}#{sequence:08d}"

    def _key(self, record: str) -> dict[str, Any]:
        return {"migration_id": {"S": self.migration_id}, "record": {"S": record}}


def _retryable(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in {
        "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
        "InternalServerError", "ServiceUnavailable"}


@dataclass
class Checkpoint:
    """Resume position plus the tallies of the rows before it, in a local JSON file."""

    path: Path
    migration_id: str
    epoch: int
    skip_deleted: bool
    position: dict[str, Any] | None = None
    rows: int = 0
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, migration_id: str, epoch: int, skip_deleted: bool) -> tuple[Checkpoint, str]:
        """The stored checkpoint if it belongs to this migration, epoch and options; else a fresh one."""
        fresh = cls(path, migration_id, epoch, skip_deleted)
        if not path.is_file():
            return fresh, "none"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return fresh, "unreadable, starting over"
        expected = (migration_id, epoch, skip_deleted)
        if (data.get("migration_id"), data.get("epoch"), data.get("skip_deleted")) != expected:
            return fresh, "from another migration, epoch or --skip-deleted setting, starting over"
        fresh.position = data.get("position")
        fresh.rows = int(data.get("rows", 0))
        fresh.tallies = data.get("tallies", {})
        return fresh, f"resuming after {fresh.rows} rows"

    def save(self) -> None:
        """Write atomically: a crash leaves the old or the new checkpoint, never half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"migration_id": self.migration_id, "epoch": self.epoch, "skip_deleted": self.skip_deleted,
                   "position": self.position, "rows": self.rows, "tallies": self.tallies,
                   "updated_at": utcnow()}
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def discard(path: Path, migration_id: str) -> None:
        """Remove the checkpoint file at `path` if it belongs to this migration."""
        try:
            if json.loads(path.read_text()).get("migration_id") == migration_id:
                path.unlink()
        except (OSError, ValueError):
            pass
