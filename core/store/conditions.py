"""Small helpers every repository shares: conditional-failure detection, opaque cursors, fenced host writes."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import Index
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from core.errors import InvalidRequest, LeaseLost


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """Opaque cursor from DynamoDB's LastEvaluatedKey."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, query: PageQuery | None = None) -> dict[str, Any] | None:
    """LastEvaluatedKey from a cursor; a tampered cursor is a 400, not a 500. With `query`, the key must be one
    that query can have returned: exactly its key attributes, as non-empty strings, in the partition it reads
    (DynamoDB refuses any other start key, and moto fails on some)."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest("cursor is not valid", code="invalid_cursor") from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise InvalidRequest("cursor is not valid", code="invalid_cursor")
    if query is not None and not query.accepts(key):
        raise InvalidRequest("cursor is not valid", code="invalid_cursor")
    return key


@dataclass(frozen=True)
class PageQuery:
    """The shape of the start keys of one paginated query: a table or index, read in one partition."""

    model: type[Model]
    partition: str
    index: Index[Any] | None = None

    def key_names(self) -> tuple[str, frozenset[str]]:
        """(the query's partition key, every attribute of its LastEvaluatedKey: the table's keys and the index's)."""
        keys = [self.model._hash_key_attribute(), self.model._range_key_attribute()]  # type: ignore[no-untyped-call]
        partition_key = keys[0]
        if self.index is not None:
            index_keys = [a for a in self.index.Meta.attributes.values() if a.is_hash_key or a.is_range_key]
            partition_key = next(a for a in index_keys if a.is_hash_key)
            keys.extend(index_keys)
        return partition_key.attr_name, frozenset(a.attr_name for a in keys if a is not None)

    def accepts(self, key: dict[str, Any]) -> bool:
        hash_name, names = self.key_names()
        if set(key) != names or key[hash_name] != {"S": self.partition}:
            return False
        return all(set(value) == {"S"} and _is_key_string(value["S"]) for value in key.values())


def _is_key_string(value: Any) -> bool:
    """A string DynamoDB takes as a key value (our keys are all strings): non-empty, at most 1 KB of UTF-8."""
    if not isinstance(value, str) or not value:
        return False
    try:
        return len(value.encode()) <= 1024
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return False


def is_conditional(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause in {"ConditionalCheckFailedException", "TransactionCanceledException"}


@functools.cache
def _connection(region: str, host: str | None) -> Connection:
    """One low-level connection for transactions (it holds a boto client: not one per write)."""
    return Connection(region=region, host=host)


def fenced_write(account_id: str, token: int, *, update: tuple[Model, list[Any], Condition | None] | None = None,
                 save: tuple[Model, Condition | None] | None = None) -> bool:
    """One write a host makes about an account, applied only while `token` still owns it (a transaction with a
    condition on the account's lease token). LeaseLost when a newer owner holds it; False when the write's own
    condition failed."""
    from core.store.tables import AccountItem

    model = (update or save or (None,))[0]
    assert model is not None
    try:
        with TransactWrite(connection=_connection(model.Meta.region, model.Meta.host)) as tx:
            tx.condition_check(AccountItem, account_id, condition=AccountItem.lease_token == token)
            if update is not None:
                tx.update(update[0], actions=update[1], condition=update[2])
            if save is not None:
                tx.save(save[0], condition=save[1])
    except TransactWriteError as exc:
        reasons = [getattr(r, "code", None) for r in (getattr(exc, "cancellation_reasons", None) or [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise LeaseLost(account_id) from exc
        if "ConditionalCheckFailed" in reasons or (not reasons and is_conditional(exc)):
            return False
        raise  # e.g. a ValidationError of the write itself
    return True
