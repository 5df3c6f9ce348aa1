"""Account storage. PynamoDB and botocore errors become domain exceptions here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.errors import Conflict, DependencyFailure, LeaseLost, NotFound, PreconditionFailed
from core.models.accounts import CLOUD_PROVIDERS, ConnectionStatus, Pacing
from core.models.common import utcnow
from core.store.conditions import PageQuery, decode_cursor, encode_cursor, is_conditional
from core.store.tables import AccountItem

STATUS_HISTORY_LIMIT = 20


class Unset:
    """Marks a field of AccountChange that is left as it is (None means "remove")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = Unset()


@dataclass
class AccountChange:
    """What to change on an account, in the product's words; the store turns it into one update.

    A field left UNSET is not touched; None removes an optional field.
    """

    account_name: str | Unset = UNSET
    phone_number: str | Unset | None = UNSET
    metadata: dict[str, Any] | Unset = UNSET
    webhook: dict[str, Any] | Unset | None = UNSET
    desired_state: str | Unset = UNSET
    pending_action: str | Unset | None = UNSET
    action_requested_at: str | Unset = UNSET
    pairing: dict[str, Any] | Unset | None = UNSET
    qr: dict[str, Any] | Unset | None = UNSET
    cloud: dict[str, Any] | Unset | None = UNSET
    options: dict[str, Any] | Unset | None = UNSET
    proxy: dict[str, Any] | Unset | None = UNSET
    status: ConnectionStatus | None = None  # with `reason`: a transition recorded in the bounded history
    reason: str | None = None

    def actions(self, item: AccountItem) -> list[Any]:
        """Update actions for `item` as currently stored (the history is rebuilt from it)."""
        actions: list[Any] = []
        for name in ("account_name", "phone_number", "metadata", "webhook", "desired_state", "pending_action",
                     "action_requested_at", "pairing", "qr", "cloud", "options", "proxy"):
            value = getattr(self, name)
            if value is UNSET:
                continue
            attribute = getattr(AccountItem, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
        if self.status is not None and item.connection_status != self.status.value:
            actions += status_actions(item, self.status, self.reason)
        return actions

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not UNSET for f in fields(self) if f.name not in ("status", "reason")) \
            or self.status is not None


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
            if is_conditional(exc):
                raise Conflict(f"account {item.account_id} already exists", code="account_exists") from exc
            raise
        return item

    def list_for_tenant(
        self, tenant_id: str, *, status: ConnectionStatus | None, limit: int, cursor: str | None,
        account_ids: tuple[str, ...] = (),
    ) -> tuple[list[AccountItem], str | None]:
        """Newest-first page of a tenant's live accounts, optionally by status and key scope."""
        query = (PageQuery(AccountItem, tenant_id, AccountItem.tenant_index) if status is None else
                 PageQuery(AccountItem, f"{tenant_id}#{status.value}", AccountItem.tenant_status_index))
        start = decode_cursor(cursor, query)
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
            if is_conditional(exc):
                raise PreconditionFailed("account was changed concurrently; fetch it and retry") from exc
            raise
        return item

    def edit(self, item: AccountItem, change: AccountChange, expected_version: int | None = None) -> AccountItem:
        """A user's edit under optimistic locking: 412 when the account changed since `expected_version`."""
        return self.update(item, change.actions(item), expected_version)

    def request(self, item: AccountItem, decide: Callable[[AccountItem], AccountChange]) -> AccountItem:
        """An API request that must not fail on a concurrent host status write: decided again on a fresh read."""
        for _ in range(5):
            try:
                return self.update(item, decide(item).actions(item))
            except PreconditionFailed:
                item = self.get(item.account_id)
        return self.update(item, decide(item).actions(item))

    def remove(self, account_id: str) -> None:
        """Hide a Cloud API account at once (no device to log out): a tombstone no host opens, which the sweeper
        removes with the account's leftovers (received media, contacts rows) on its next run."""
        try:
            AccountItem(account_id).update(
                actions=[AccountItem.deleted_at.set(utcnow()), AccountItem.desired_state.set(DELETED),
                         AccountItem.updated_at.set(utcnow())],
                condition=AccountItem.account_id.exists() & AccountItem.deleted_at.does_not_exist(),
                add_version_condition=False)
        except UpdateError as exc:
            if not is_conditional(exc):
                raise

    def mark_deleted(self, item: AccountItem) -> None:
        """Hide the account from every read and ask a host to log its device out and purge it.

        The item stays as a tombstone until a host has logged the linked device out (or found none),
        failed its pending messages and deleted its snapshot; a host then removes it for good.
        """
        self.update(item, [AccountItem.deleted_at.set(utcnow()), AccountItem.desired_state.set(DELETED),
                           AccountItem.pending_action.set("delete"), AccountItem.action_requested_at.set(utcnow())])

    # --- what hosts do (every write fenced by the lease token) ---------------------------------------------

    def needing_a_host(self) -> list[AccountItem]:
        """Accounts a host must open: running ones, and ones to log out or purge (deleted included). Cloud API
        accounts never need one (nothing to open: the Graph API is their connection)."""
        return [item for state in (RUNNING, LOGOUT, DELETED) for item in AccountItem.desired_state_index.query(state)
                if item.provider not in CLOUD_PROVIDERS]

    def read(self, account_id: str) -> AccountItem | None:
        """The item as stored, tombstones included (hosts finish deleting them)."""
        try:
            return AccountItem.get(account_id, consistent_read=True)
        except DoesNotExist:
            return None

    def attach(self, account_id: str, host_id: str, token: int, inbox_url: str | None) -> AccountItem | None:
        """Record the new owner and its token on the account; None if a newer owner got there first."""
        item = AccountItem(account_id)
        condition = AccountItem.account_id.exists() & (
            AccountItem.lease_token.does_not_exist() | (AccountItem.lease_token < token))
        actions: list[Action] = [AccountItem.host_id.set(host_id), AccountItem.lease_token.set(token),
                   AccountItem.host_inbox.set(inbox_url) if inbox_url else AccountItem.host_inbox.remove()]
        try:
            item.update(actions=actions, condition=condition, add_version_condition=False)
        except UpdateError as exc:
            if is_conditional(exc):
                return None
            raise
        return self.read(account_id)

    def host_write(self, account_id: str, token: int,
                   decide: Callable[[AccountItem], AccountChange | None]) -> AccountItem | None:
        """Apply the change `decide(item)` while `token` still owns the account; LeaseLost when it does not.

        The item is re-read and rebuilt when the API changed it meanwhile (its version moved on).
        """
        for _ in range(8):
            item = self.read(account_id)
            if item is None:
                raise LeaseLost(account_id)
            if item.lease_token is None or int(item.lease_token) != token:
                raise LeaseLost(account_id)
            change = decide(item)
            actions = change.actions(item) if change else []
            if not actions:
                return item
            try:
                item.update(actions=[*actions, AccountItem.updated_at.set(utcnow())],
                            condition=AccountItem.lease_token == token)
                return item
            except UpdateError as exc:
                if not is_conditional(exc):
                    raise
        raise DependencyFailure(f"account {account_id} kept changing; giving up this update")

    def set_status(self, account_id: str, token: int, status: ConnectionStatus, reason: str | None,
                   change: AccountChange | None = None) -> AccountItem | None:
        """Record a status transition (and the bounded history) unless the account is already there."""
        change = change or AccountChange()
        change.status, change.reason = status, reason
        return self.host_write(account_id, token, lambda _: change)

    def set_pairing_code(self, account_id: str, token: int, requested_at: str | None, code: str,
                         expires_at: str) -> None:
        """The code for the pairing request made at `requested_at` (unless a newer request replaced it)."""
        def decide(item: AccountItem) -> AccountChange | None:
            current = plain(item.pairing) if item.pairing is not None else {}
            if current.get("requested_at") != requested_at:
                return None
            return AccountChange(pairing={**current, "code": code, "expires_at": expires_at})
        self.host_write(account_id, token, decide)

    def detach(self, account_id: str, token: int, status: ConnectionStatus | None, reason: str | None) -> None:
        """The owner lets go: no host (and no inbox) on the item, and the status it leaves it in."""
        def decide(item: AccountItem) -> AccountChange:
            return _Detach(qr=None, status=status, reason=reason)
        with contextlib.suppress(LeaseLost):  # somebody else holds it already: nothing of ours to undo
            self.host_write(account_id, token, decide)

    def clear_pending_action(self, account_id: str, token: int, requested_at: str | None,
                             then: AccountChange | None = None) -> None:
        """The owner did what was asked (unless a newer request arrived meanwhile)."""
        def decide(item: AccountItem) -> AccountChange | None:
            if item.action_requested_at != requested_at or not item.pending_action:
                return None
            change = then or AccountChange()
            change.pending_action = None
            return change
        self.host_write(account_id, token, decide)

    def purge(self, account_id: str, token: int) -> None:
        """Remove a deleted account's tombstone once its device is logged out."""
        try:
            AccountItem(account_id).delete(condition=(AccountItem.lease_token == token)
                                           & AccountItem.deleted_at.exists(), add_version_condition=False)
        except DeleteError as exc:
            if is_conditional(exc):
                raise LeaseLost(account_id) from exc
            raise

    # --- what the sweeper's cleanup does (functions/service/cleanup.py); every write conditional on what it read

    def failing(self) -> Iterator[AccountItem]:
        """Accounts FAILED while their desired state is still running (hosts keep reopening them), read lazily."""
        return iter(AccountItem.desired_state_index.query(
            RUNNING, filter_condition=AccountItem.connection_status == ConnectionStatus.FAILED.value))

    def give_up(self, item: AccountItem, reason: str) -> bool:
        """Stop retrying a FAILED account: desired state stopped, `reason` as its status reason and in its history.
        False when anything changed since `item` was read (a start, a host's write: theirs wins)."""
        failed = ConnectionStatus.FAILED.value
        history = [*(item.status_history or []), {"at": utcnow(), "from": failed, "to": failed, "reason": reason}]
        try:
            item.update(actions=[AccountItem.desired_state.set(STOPPED), AccountItem.status_reason.set(reason),
                                 AccountItem.status_history.set(history[-STATUS_HISTORY_LIMIT:]),
                                 AccountItem.updated_at.set(utcnow())],
                        condition=(AccountItem.connection_status == failed) & (AccountItem.desired_state == RUNNING)
                        & AccountItem.deleted_at.does_not_exist())  # and the version read (PynamoDB adds it)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def tombstones(self) -> Iterator[AccountItem]:
        """Deleted accounts whose item is still there (web: no host purged it yet; cloud: all), read lazily."""
        return iter(AccountItem.desired_state_index.query(DELETED))

    def remove_tombstone(self, item: AccountItem) -> bool:
        """Remove a deleted account's item unless it changed since `item` was read (a host attached to purge it)."""
        condition = AccountItem.deleted_at == item.deleted_at
        condition &= (AccountItem.lease_token.does_not_exist() if item.lease_token is None
                      else AccountItem.lease_token == item.lease_token)
        try:
            item.delete(condition=condition)  # and the version read
        except DeleteError as exc:
            if is_conditional(exc):
                return False
            raise
        return True

    def existing(self, account_ids: list[str]) -> dict[str, AccountItem]:
        """The items (tombstones included) of those of `account_ids` that exist."""
        found: dict[str, AccountItem] = {}
        for start in range(0, len(account_ids), 100):
            for item in AccountItem.batch_get(account_ids[start:start + 100]):
                found[item.account_id] = item
        return found

    def let_go(self, item: AccountItem, host_id: str, token: int, status: ConnectionStatus | None,
               reason: str | None) -> bool:
        """A dead host's stale hold on the account: no host (nor inbox) on the item, and `status` (with `reason`)
        if given; only while that host and token are still the ones recorded (a new owner's attach wins)."""
        actions: list[Any] = [AccountItem.host_id.remove(), AccountItem.host_inbox.remove(),
                              AccountItem.updated_at.set(utcnow())]
        if status is not None and item.connection_status != status.value:
            actions += status_actions(item, status, reason)
        try:
            item.update(actions=actions, condition=(AccountItem.host_id == host_id)
                        & (AccountItem.lease_token == token), add_version_condition=False)
        except UpdateError as exc:
            if is_conditional(exc):
                return False
            raise
        return True


RUNNING, STOPPED, LOGOUT, DELETED = "running", "stopped", "logout", "deleted"


class _Detach(AccountChange):
    """No host on the item any more (and no inbox to nudge)."""

    def actions(self, item: AccountItem) -> list[Any]:
        return [AccountItem.host_id.remove(), AccountItem.host_inbox.remove(), *super().actions(item)]


def status_actions(item: AccountItem, status: ConnectionStatus, reason: str | None) -> list[Any]:
    """Update actions that move an account to `status` and record it in the bounded history."""
    history = [*(item.status_history or []),
               {"at": utcnow(), "from": item.connection_status, "to": status.value, "reason": reason}]
    return [
        AccountItem.connection_status.set(status.value),
        AccountItem.tenant_status.set(f"{item.tenant_id}#{status.value}"),
        AccountItem.status_reason.set(reason) if reason else AccountItem.status_reason.remove(),
        AccountItem.status_history.set(history[-STATUS_HISTORY_LIMIT:]),
    ]


def plain(value: Any) -> Any:
    """MapAttribute values as plain dicts/lists."""
    if hasattr(value, "as_dict"):
        return plain(value.as_dict())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def pacing_of(account: AccountItem) -> Pacing:
    """The account's send pacing from its stored options (anything unreadable: no pacing)."""
    return Pacing.of(plain(account.options))
