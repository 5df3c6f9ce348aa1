"""Small helpers every repository shares: conditional-failure detection, opaque cursors, fenced host writes."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from core.errors import InvalidRequest, LeaseLost


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """Opaque cursor from DynamoDB's LastEvaluatedKey."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """LastEvaluatedKey from a cursor; a tampered cursor is a 400, not a 500."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not valid", code="invalid_cursor") from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise InvalidRequest("cursor is not valid", code="invalid_cursor")
    return key


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
