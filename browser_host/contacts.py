"""Number checks the API asked for (`GET /accounts/{id}/contacts/{phone}/exists`), answered by the page."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError

from browser_host.page import TransientSendError

if TYPE_CHECKING:
    from browser_host.runner import AccountRunner

log = logging.getLogger("browser_host.contacts")


async def answer_checks(runner: AccountRunner) -> None:
    """Ask WhatsApp (`WPP.contact.queryExists`) about each pending number of the account; write the answers
    (fenced by the lease). A check that fails stays pending: the API's next call asks again."""
    for phone in await runner.store.pending_contact_checks(runner.account_id):
        if runner.page is None or not runner.lease_valid():
            return
        try:
            result = await runner.page.query_exists(phone)
        except (TransientSendError, PlaywrightError, TimeoutError) as exc:
            log.warning("account %s: number check failed: %s", runner.account_id, exc)
            continue
        await runner.store.record_contact_check(runner.lease, phone, result)
