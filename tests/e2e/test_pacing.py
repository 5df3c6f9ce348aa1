"""Send pacing (anti-ban) through the API, a real host and wa_sim: a minimum gap with jitter between messages,
"typing…" before each text, a daily cap whose overflow waits (queued, `scheduled_at` at the next UTC day) and is
released when the operator lifts the cap; pacing never fails a message."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.models.common import epoch_of
from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Fleet, Phone, account_status, link_by_qr, send_text, wait_until

GAP = 1.5


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def _sending_at(message: dict[str, Any]) -> float:
    at = next(h["at"] for h in message["status_history"] if h["status"] == "sending")
    moment = epoch_of(at)
    assert moment is not None
    return moment


def test_paced_messages_keep_their_gap_show_typing_and_wait_for_the_daily_cap(
        tenant_admin: Api, phone: Phone, host: HostProcess) -> None:
    business, contact = _number(), _number()
    pacing = {"min_gap_seconds": GAP, "jitter_seconds": 0.5, "typing": True, "daily_cap": 3}
    account_id = create_account(tenant_admin, "paced", options={"pacing": pacing})["account_id"]
    assert tenant_admin.get(f"/accounts/{account_id}").json()["options"]["pacing"] == {**pacing,
                                                                                        "checks_per_minute": None}
    link_by_qr(tenant_admin, phone, account_id, business)

    ids = [send_text(tenant_admin, account_id, contact, f"paced {i}") for i in range(4)]
    typing_seen = False
    deadline = time.monotonic() + 60
    while len(phone.received(contact)) < 3 and time.monotonic() < deadline:
        shown = phone.call("GET", f"/sim/contacts/{contact}/typing")[1]["typing"]
        typing_seen = typing_seen or any(t["account"] == business and t["state"] == "composing" for t in shown)
        time.sleep(0.1)
    assert [m["body"] for m in phone.received(contact)] == ["paced 0", "paced 1", "paced 2"]
    assert typing_seen, "the contact never saw typing… before a paced text"

    messages = [tenant_admin.get(f"/accounts/{account_id}/messages/{i}").json() for i in ids]
    sent_at = [_sending_at(m) for m in messages[:3]]
    assert all(later - earlier >= GAP for earlier, later in itertools.pairwise(sent_at)), sent_at
    assert messages[0]["scheduled_at"] is None  # the first had nothing to wait for
    for message, went in zip(messages[1:3], sent_at[1:], strict=True):
        assert message["scheduled_at"] is not None and went >= (epoch_of(message["scheduled_at"]) or 0) - 0.01

    # The fourth is over the daily cap: it waits, queued, for the next UTC day (never failed for pacing)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00.000Z")
    fourth = wait_until(lambda: (m := tenant_admin.get(f"/accounts/{account_id}/messages/{ids[3]}").json())
                        ["scheduled_at"] == tomorrow and m, 20, "the fourth message held for the next day")
    assert (fourth["status"], fourth["scheduled_at"], fourth["error"]) == ("queued", tomorrow, None)
    time.sleep(GAP * 2)
    assert len(phone.received(contact)) == 3

    # Lifting the cap releases it within the host's reconcile interval
    lifted = tenant_admin.patch(f"/accounts/{account_id}", json={"options": {"pacing": {"min_gap_seconds": GAP}}})
    assert lifted.status_code == 200, lifted.text
    wait_until(lambda: len(phone.received(contact)) == 4, 30, "the fourth message after the cap was lifted")
    final = wait_until(lambda: (m := tenant_admin.get(f"/accounts/{account_id}/messages/{ids[3]}").json())
                       ["status"] == "sent" and m, 15, "the fourth sent")
    assert final["error"] is None


def test_the_gap_holds_across_a_move_to_another_host(tenant_admin: Api, phone: Phone, fleet: Fleet) -> None:
    # Given a paced account (a long gap) that just sent a message from one host
    gap = 12.0
    first_host = fleet.start()
    business, contact = _number(), _number()
    account_id = create_account(tenant_admin, "paced move", options={"pacing": {"min_gap_seconds": gap}})[
        "account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    wait_until(lambda: "snapshot saved" in fleet.logs(), 15, "a snapshot")
    before = send_text(tenant_admin, account_id, contact, "before the move")
    wait_until(lambda: [m["body"] for m in phone.received(contact)] == ["before the move"], 30, "the first message")

    # When that host stops (it hands the account over at once), another takes it and a message is sent
    fleet.start()
    first_host.stop()
    wait_until(lambda: account_status(tenant_admin, account_id) == "WORKING"
               and tenant_admin.get(f"/accounts/{account_id}").json()["host_id"] is not None, 60, "the new owner")
    after = send_text(tenant_admin, account_id, contact, "after the move")

    # Then the new owner keeps the gap from the old owner's hand-over (it waits, scheduled_at shown)
    wait_until(lambda: len(phone.received(contact)) == 2, 60, "the second message")
    first, second = (tenant_admin.get(f"/accounts/{account_id}/messages/{m}").json() for m in (before, after))
    assert _sending_at(second) - _sending_at(first) >= gap, (first["status_history"], second["status_history"])
    assert second["scheduled_at"] is not None
