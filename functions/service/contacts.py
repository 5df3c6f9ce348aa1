"""Contacts: "is this number on WhatsApp?", asked of the account's own WhatsApp Web page.

Bulk number checks are a classic reason WhatsApp bans accounts, so answers are cached (`contact_cache_hours`)
and each account may ask at most `contact_checks_per_minute` new numbers a minute (429 beyond), or its own
`options.pacing.checks_per_minute`.
"""

from __future__ import annotations

import time

from core.errors import Conflict, DependencyFailure, InvalidRequest, RateLimited
from core.models.accounts import ConnectionStatus
from core.models.common import Principal
from core.models.contacts import ContactCheck
from core.models.validators import normalise_phone
from core.store.accounts import pacing_of
from core.store.tables import AccountItem, ContactItem
from functions.service.accounts import load
from functions.service.context import Services

WAIT_SECONDS = 10.0  # how long the API waits for the page's answer before "ask again" (503 + Retry-After)


def _checks_per_minute(svc: Services, account: AccountItem) -> int:
    """The account's own cap (`options.pacing.checks_per_minute`), else the stack's."""
    return pacing_of(account).checks_per_minute or svc.settings.contact_checks_per_minute


def exists(svc: Services, principal: Principal, account_id: str, phone: str) -> ContactCheck:
    account = load(svc, principal, account_id)
    try:
        number = str(normalise_phone(phone))
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="invalid_phone_number") from exc
    cached = svc.contacts.get(account_id, number)
    if svc.contacts.fresh(cached, svc.settings.contact_cache_hours):
        assert cached is not None
        return _view(cached, cached=True)
    if account.connection_status != ConnectionStatus.WORKING.value:
        raise Conflict("the account must be connected (WORKING) to check numbers", code="account_not_connected")
    per_minute = _checks_per_minute(svc, account)
    wait = svc.contacts.take_check(account_id, per_minute)
    if wait:
        raise RateLimited(f"at most {per_minute} number checks a minute for this account "
                          "(bulk checks get WhatsApp accounts banned)", retry_after=wait,
                          code="contact_checks_rate_limited")
    svc.contacts.request(account_id, number, svc.settings.contact_cache_hours)
    svc.nudges.send(account_id, "contact_check", account.host_inbox)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.2)
        item = svc.contacts.get(account_id, number)
        if svc.contacts.fresh(item, svc.settings.contact_cache_hours):
            assert item is not None
            return _view(item, cached=False)
    raise DependencyFailure("WhatsApp has not answered yet; ask again in a few seconds (the answer is cached)",
                            code="contact_check_pending")


def _view(item: ContactItem, cached: bool) -> ContactCheck:
    return ContactCheck(phone=item.contact, on_whatsapp=bool(item.on_whatsapp), wa_id=item.wa_id, lid=item.lid,
                        business=bool(item.business), checked_at=str(item.checked_at), cached=cached)
