"""Contacts of an account: "is this number on WhatsApp?" (asked of the account's page, cached), LIDs seen, and
the per-account budget of such checks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition

from core.models.choices import REPLY_WINDOW, ChoiceMenu
from core.models.common import utcnow
from core.store.conditions import fenced_write, is_conditional
from core.store.tables import ContactItem

PENDING = "pending"
DONE = "done"
RATE_PREFIX = "#rate#"
# A chat's numbered choices live in a row of their own: their 24 h must not hang on the number-check cache's TTL.
CHOICES_PREFIX = "#choices#"


class ContactRepository:
    def get(self, account_id: str, phone: str) -> ContactItem | None:
        try:
            return ContactItem.get(account_id, phone, consistent_read=True)
        except DoesNotExist:
            return None

    def fresh(self, item: ContactItem | None, max_age_hours: int) -> bool:
        """A finished check younger than `max_age_hours`."""
        if item is None or item.state != DONE or not item.checked_at:
            return False
        try:
            checked = datetime.fromisoformat(item.checked_at.replace("Z", "+00:00"))
        except ValueError:
            return False
        return datetime.now(UTC) - checked < timedelta(hours=max_age_hours)

    def take_check(self, account_id: str, per_minute: int) -> int:
        """Count one check against this minute's budget; 0 when allowed, else seconds until the next minute."""
        return self.take_budget(account_id, "", per_minute)

    def take_budget(self, account_id: str, name: str, limit: int, *, window: int = 60,
                    now: float | None = None) -> int:
        """Count one use of the account's `name` budget (at most `limit` in each fixed window of `window` seconds
        from the epoch; a row in the contacts table): 0 when allowed, else the seconds until the next window."""
        now = time.time() if now is None else now
        slot = int(now // window)
        scope = f"{name}#" if name else ""
        key = f"{RATE_PREFIX}{scope}{slot}" if window == 60 else f"{RATE_PREFIX}{scope}{window}#{slot}"
        try:
            ContactItem(account_id, key).update(
                actions=[ContactItem.checks.add(1), ContactItem.expires_at.set((slot + 1) * window + 120)],
                condition=ContactItem.checks.does_not_exist() | (ContactItem.checks < limit))
        except UpdateError as exc:
            if is_conditional(exc):
                return max(1, (slot + 1) * window - int(now))
            raise
        return 0

    def request(self, account_id: str, phone: str, ttl_hours: int) -> None:
        """Ask the account's host to check `phone` (it keeps a LID learned earlier)."""
        ContactItem(account_id, phone).update(actions=[
            ContactItem.state.set(PENDING), ContactItem.requested_at.set(utcnow()),
            ContactItem.expires_at.set(int(time.time()) + ttl_hours * 3600)])

    def pending(self, account_id: str) -> list[ContactItem]:
        return [item for item in ContactItem.query(account_id, filter_condition=ContactItem.state == PENDING,
                                                     consistent_read=True)
                if not item.contact.startswith(RATE_PREFIX)]

    def record_check(self, account_id: str, phone: str, token: int, *, on_whatsapp: bool, wa_id: str | None,
                     lid: str | None, business: bool, ttl_hours: int) -> bool:
        """The page's answer (fenced: only the account's owner answers)."""
        actions = [ContactItem.state.set(DONE), ContactItem.on_whatsapp.set(on_whatsapp),
                   ContactItem.business.set(business), ContactItem.checked_at.set(utcnow()),
                   ContactItem.expires_at.set(int(time.time()) + ttl_hours * 3600)]
        actions.append(ContactItem.wa_id.set(wa_id) if wa_id else ContactItem.wa_id.remove())
        if lid:
            actions.append(ContactItem.lid.set(lid))
        return fenced_write(account_id, token, update=(ContactItem(account_id, phone), actions, None))

    def remember_lid(self, account_id: str, phone: str, lid: str, token: int, ttl_hours: int) -> bool:
        """A sender's LID ↔ phone mapping learned from an inbound message."""
        condition: Condition | None = None
        return fenced_write(account_id, token, update=(ContactItem(account_id, phone), [
            ContactItem.lid.set(lid), ContactItem.expires_at.set(int(time.time()) + ttl_hours * 3600)], condition))

    def remember_choices(self, account_id: str, chat: str, menu: ChoiceMenu, token: int) -> bool:
        """The numbered choices just sent to a chat (a phone number or group id), replacing earlier ones; fenced
        by the lease, kept an hour past the 24 h a reply may take."""
        expires = int(time.time() + REPLY_WINDOW.total_seconds()) + 3600
        return fenced_write(account_id, token, update=(ContactItem(account_id, CHOICES_PREFIX + chat), [
            ContactItem.choices.set(menu.model_dump_json()), ContactItem.expires_at.set(expires)], None))

    def choices(self, account_id: str, chat: str) -> ChoiceMenu | None:
        """What the numbers of the last numbered-text interactive message to a chat mean, if any."""
        item = self.get(account_id, CHOICES_PREFIX + chat)
        return ChoiceMenu.parse(item.choices) if item is not None else None

    def forget_account(self, account_id: str, limit: int) -> tuple[int, bool]:
        """Remove up to `limit` rows of a deleted account (checks, LIDs, budgets, choices): (how many, whether more
        remain). Each delete is conditional on the row's expiry as read, so a write in between keeps its row."""
        removed, more = 0, False
        for item in ContactItem.query(account_id, consistent_read=True, limit=limit + 1):
            if removed >= limit:
                more = True
                break
            expiry = (ContactItem.expires_at.does_not_exist() if item.expires_at is None
                      else ContactItem.expires_at == item.expires_at)
            try:
                item.delete(condition=ContactItem.contact.exists() & expiry)
            except DeleteError as exc:
                if not is_conditional(exc):
                    raise
                more = True  # changed meanwhile: looked at again next time
                continue
            removed += 1
        return removed, more
