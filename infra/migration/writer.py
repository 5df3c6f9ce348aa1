"""Conditional reads, creates and deletes on the accounts table, with retries and backoff.

Creates never overwrite: every put carries `attribute_not_exists(account_id)`. BatchWriteItem cannot
carry a condition, so it is not used. Two strategies, measured in bench/migration_bench.py:
- `put` (default): one conditional PutItem per account on a thread pool. 1 WCU per item, per-item
  outcomes, no item-size arithmetic.
- `transact`: TransactWriteItems of up to 25 conditional puts. One request per chunk but 2 WCU per
  item, the whole transaction is cancelled by one existing account, and moto copies the table per
  transaction, so it is slower everywhere we measured.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from infra.migration.codec import deserialize_item, serialize_item
from infra.migration.mapping import MappedAccount

RETRYABLE = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
})
_CREATE_CONDITION = "attribute_not_exists(account_id)"
_TRANSACTION_SIZE = 25  # also keeps a transaction of large items well under the 4 MB request limit
T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    outcome: Literal["created", "exists", "failed"]
    existing: dict[str, Any] | None = None
    error: str | None = None


class AccountsTable:
    """The accounts table as the migration sees it (low-level client, items as Python values)."""

    def __init__(self, client: Any, table: str, workers: int = 16, strategy: str = "put",
                 attempts: int = 8) -> None:
        self.client = client
        self.table = table
        self.strategy = strategy
        self.attempts = attempts
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="migrate")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _retry(self, call: Callable[[], T]) -> T:
        """Exponential backoff with full jitter on throttling (after botocore's own retries)."""
        for attempt in range(self.attempts):
            try:
                return call()
            except ClientError as error:
                if error.response["Error"]["Code"] not in RETRYABLE or attempt == self.attempts - 1:
                    raise
                time.sleep(random.uniform(0, min(10.0, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")

    def get_many(self, account_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Current items by id (strongly consistent), missing ids absent."""
        ids = list(dict.fromkeys(account_ids))
        found: dict[str, dict[str, Any]] = {}
        for part in self.pool.map(self._get_batch, [ids[i:i + 100] for i in range(0, len(ids), 100)]):
            found.update(part)
        return found

    def _get_batch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self.table: {"Keys": [{"account_id": {"S": i}} for i in ids],
                                                "ConsistentRead": True}}
        for attempt in range(self.attempts * 4):
            response: dict[str, Any] = self._retry(partial(self.client.batch_get_item, RequestItems=request))
            for raw in response.get("Responses", {}).get(self.table, []):
                item = deserialize_item(raw)
                found[item["account_id"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))  # throttled: back off, retry rest
        raise RuntimeError(f"BatchGetItem kept leaving keys unprocessed on {self.table}")

    def create_many(self, accounts: list[MappedAccount]) -> dict[str, WriteResult]:
        """Create each account unless one with its id exists; ids must be distinct."""
        if self.strategy == "transact":
            return self._create_transactions(accounts)
        return dict(zip((a.account_id for a in accounts), self.pool.map(self._create_one, accounts),
                        strict=True))

    def _create_one(self, account: MappedAccount) -> WriteResult:
        try:
            self._retry(lambda: self.client.put_item(
                TableName=self.table, Item=serialize_item(account.item),
                ConditionExpression=_CREATE_CONDITION, ReturnValuesOnConditionCheckFailure="ALL_OLD"))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                response: dict[str, Any] = dict(error.response)
                return self._exists(account.account_id, response.get("Item"))
            return WriteResult("failed", error=_describe(error))
        except BotoCoreError as error:  # e.g. a read timeout: written or not, the re-run will tell
            return WriteResult("failed", error=str(error)[:500])
        return WriteResult("created")

    def _exists(self, account_id: str, raw: dict[str, Any] | None) -> WriteResult:
        if raw is None:  # older emulators do not return the item with the failure
            raw = self._retry(lambda: self.client.get_item(
                TableName=self.table, Key={"account_id": {"S": account_id}}, ConsistentRead=True)).get("Item")
        return WriteResult("exists", existing=deserialize_item(raw) if raw else None)

    def _create_transactions(self, accounts: list[MappedAccount]) -> dict[str, WriteResult]:
        groups = [accounts[i:i + _TRANSACTION_SIZE] for i in range(0, len(accounts), _TRANSACTION_SIZE)]
        results: dict[str, WriteResult] = {}
        for part in self.pool.map(self._transaction, groups):
            results.update(part)
        return results

    def _transaction(self, accounts: list[MappedAccount]) -> dict[str, WriteResult]:
        results: dict[str, WriteResult] = {}
        remaining = accounts
        for attempt in range(self.attempts * 2):
            if not remaining:
                break
            try:
                self.client.transact_write_items(TransactItems=[{"Put": {
                    "TableName": self.table, "Item": serialize_item(a.item),
                    "ConditionExpression": _CREATE_CONDITION,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }} for a in remaining])
            except BotoCoreError:
                # e.g. a read timeout: the transaction may have been applied; put one by one to find out
                results.update({a.account_id: self._create_one(a) for a in remaining})
                return results
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code != "TransactionCanceledException":
                    if code in RETRYABLE:
                        time.sleep(random.uniform(0, min(10.0, 0.05 * 2**attempt)))
                        continue
                    # e.g. one item too large: find out which, one put at a time
                    results.update({a.account_id: self._create_one(a) for a in remaining})
                    return results
                retry: list[MappedAccount] = []
                response: dict[str, Any] = dict(error.response)
                reasons: list[dict[str, Any]] = response.get("CancellationReasons", [])
                for account, reason in zip(remaining, reasons, strict=False):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        results[account.account_id] = self._exists(account.account_id, reason.get("Item"))
                    else:  # cancelled because of a sibling, or a conflict/throttle: try again
                        retry.append(account)
                remaining = retry
                continue
            results.update({a.account_id: WriteResult("created") for a in remaining})
            remaining = []
        for account in remaining:
            results[account.account_id] = WriteResult("failed", error="transaction kept being cancelled")
        return results

    def delete_many(self, items: list[dict[str, Any]]) -> dict[str, str]:
        """Delete each item unless it changed since read: `deleted`, `changed` or `failed: ...`."""
        outcomes = self.pool.map(self._delete_one, items)
        return dict(zip((i["account_id"] for i in items), outcomes, strict=True))

    def _delete_one(self, item: dict[str, Any]) -> str:
        # Every application write bumps `version` (PynamoDB VersionAttribute), so "still version N with
        # the same updated_at" means "still exactly what was checked", with no window in between.
        try:
            self._retry(lambda: self.client.delete_item(
                TableName=self.table, Key={"account_id": {"S": item["account_id"]}},
                ConditionExpression="#v = :v AND updated_at = :u",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(item["version"])},
                                           ":u": {"S": item["updated_at"]}}))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return "changed"
            return f"failed: {_describe(error)}"
        except BotoCoreError as error:
            return f"failed: {error}"[:500]
        return "deleted"


def _describe(error: ClientError) -> str:
    return f"{error.response['Error']['Code']}: {error.response['Error'].get('Message', '')}"[:500]
