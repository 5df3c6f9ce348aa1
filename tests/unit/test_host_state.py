"""The browser host's status machine, retry policy and id derivations, no I/O."""

from __future__ import annotations

import pytest

from browser_host.page import wa_message_id
from browser_host.state import ALLOWED, Backoff, InvalidTransition, StatusMachine, ack_status
from core.ids import inbound_message_id
from core.models.accounts import ConnectionStatus as S
from core.models.messages import MessageStatus


def test_the_happy_path_and_every_change_is_reported() -> None:
    seen: list[tuple[S, S, str | None]] = []
    machine = StatusMachine(on_change=lambda old, new, why: seen.append((old, new, why)))
    for status in (S.STARTING, S.SCAN_QR_CODE, S.WORKING):
        assert machine.set(status, f"to {status}")
    assert seen == [(S.STOPPED, S.STARTING, "to STARTING"), (S.STARTING, S.SCAN_QR_CODE, "to SCAN_QR_CODE"),
                    (S.SCAN_QR_CODE, S.WORKING, "to WORKING")]
    assert not machine.set(S.WORKING)  # no change, no report
    assert len(seen) == 3


def test_unlinked_from_the_phone_goes_back_to_the_qr() -> None:
    machine = StatusMachine(S.WORKING)
    assert machine.set(S.SCAN_QR_CODE, "logged out from the phone")


@pytest.mark.parametrize(("start", "target"), [(S.STOPPED, S.WORKING), (S.STOPPED, S.SCAN_QR_CODE),
                                               (S.FAILED, S.WORKING), (S.STOPPED, S.FAILED)])
def test_impossible_transitions_are_refused(start: S, target: S) -> None:
    machine = StatusMachine(start)
    with pytest.raises(InvalidTransition):
        machine.set(target)
    assert machine.status is start


def test_every_status_can_be_stopped_or_fail_except_from_stopped() -> None:
    for status, targets in ALLOWED.items():
        if status is not S.STOPPED:
            assert S.STOPPED in targets
        assert status not in targets


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    backoff = Backoff(base=1.0, cap=30.0, jitter=0.5)
    top = [backoff.delay(n, rand=lambda: 0.0) for n in range(8)]
    assert top == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.delay(3, rand=lambda: 1.0) == 4.0  # the jitter takes at most half
    assert all(4.0 <= backoff.delay(3) <= 8.0 for _ in range(100))


def test_acks_map_to_message_statuses() -> None:
    assert [ack_status(a) for a in (-1, 0, 1, 2, 3, 4)] == [
        MessageStatus.FAILED, None, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
        MessageStatus.READ]


def test_ids_are_stable_so_retries_find_the_first_try() -> None:
    assert wa_message_id("msg_1") == wa_message_id("msg_1") != wa_message_id("msg_2")
    assert wa_message_id("msg_1").startswith("3EB0") and len(wa_message_id("msg_1")) == 20
    first = inbound_message_id("false_1555@c.us_ABC", 1_700_000_000)
    assert first == inbound_message_id("false_1555@c.us_ABC", 1_700_000_000)
    assert first < inbound_message_id("false_1555@c.us_ABD", 1_700_000_001)  # time-ordered
