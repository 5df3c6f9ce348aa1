"""Account storage. PynamoDB and botocore errors become domain exceptions here."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from functions.dal.tables import AccountItem
from functions.models.accounts import ConnectionStatus
from functions.models.common import utcnow
from functions.shared.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed

STATUS_HISTORY_LIMIT = 20


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


def _is_conditional(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class AccountRepository:
    """CRUD and queries over the accounts table."""

    def get(self, account_id: str, tenant_id: str | None = None) -> AccountItem:
        """The live account; another tenant's or a deleted account is simply not found."""
        try:
            item = AccountItem.get(account_id, consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"account {account_id} not found", code="account_not_found") from None
        if item.deleted_at or (tenant_id is not None and item.tenant_id != tenant_id):
            raise NotFound(f"account {account_id} not found", code="account_not_found")
        return item

    def create(self, item: AccountItem) -> AccountItem:
        """Insert a new account, refusing to replace an existing id."""
        try:
            item.save(condition=AccountItem.account_id.does_not_exist())
        except PutError as exc:
            if _is_conditional(exc):
                raise Conflict(f"account {item.account_id} already exists", code="account_exists") from exc
            raise
        return item

    def list_for_tenant(
        self, tenant_id: str, *, status: ConnectionStatus | None, limit: int, cursor: str | None,
        account_ids: tuple[str, ...] = (),
    ) -> tuple[list[AccountItem], str | None]:
        """Newest-first page of a tenant's live accounts, optionally by status and key scope."""
        start = decode_cursor(cursor)
        condition: Condition | None = AccountItem.deleted_at.does_not_exist()
        if account_ids:
            condition = condition & AccountItem.account_id.is_in(*account_ids)
        items: list[AccountItem] = []
        last: dict[str, Any] | None = start
        # A filter can empty a page; keep reading until the page is full or the index is exhausted.
        while True:
            if status is not None:
                result = AccountItem.tenant_status_index.query(
                    f"{tenant_id}#{status.value}", filter_condition=condition, scan_index_forward=False,
                    limit=limit - len(items), last_evaluated_key=last,
                )
            else:
                result = AccountItem.tenant_index.query(
                    tenant_id, filter_condition=condition, scan_index_forward=False,
                    limit=limit - len(items), last_evaluated_key=last,
                )
            items.extend(result)
            last = result.last_evaluated_key
            if not last or len(items) >= limit:
                return items, encode_cursor(last)

    def update(self, item: AccountItem, actions: list[Any], expected_version: int | None = None) -> AccountItem:
        """Apply update actions under optimistic locking (the item's loaded version)."""
        if expected_version is not None and item.version != expected_version:
            raise PreconditionFailed(
                f"account version is {item.version}, not {expected_version}",
                details={"current_version": item.version},
            )
        actions = [*actions, AccountItem.updated_at.set(utcnow())]
        try:
            item.update(actions=actions, condition=AccountItem.deleted_at.does_not_exist())
        except UpdateError as exc:
            if _is_conditional(exc):
                raise PreconditionFailed("account was changed concurrently; fetch it and retry") from exc
            raise
        return item

    def delete(self, item: AccountItem) -> None:
        """Remove the account item."""
        try:
            item.delete()
        except DeleteError as exc:
            if _is_conditional(exc):
                raise PreconditionFailed("account was changed concurrently; retry") from exc
            raise

    def running_accounts(self) -> list[AccountItem]:
        """Accounts whose desired state is running (what browser hosts should serve)."""
        return list(AccountItem.desired_state_index.query("running"))

    @staticmethod
    def history_entry(from_status: str | None, to_status: str, reason: str | None) -> dict[str, Any]:
        """A status-history element."""
        return {"at": utcnow(), "from": from_status, "to": to_status, "reason": reason}
