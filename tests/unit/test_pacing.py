"""Send pacing's arithmetic: a message's slot is decided once, gaps grow by the jitter drawn, typing time grows
with the text and is capped, unreadable stored options mean no pacing."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from browser_host.pacing import TYPING_MAX_SECONDS, Pacer, typing_seconds
from core.models.accounts import AccountOptions, Pacing
from core.store.accounts import pacing_of
from core.store.tables import AccountItem


def test_the_first_message_goes_at_once_and_the_next_waits_the_gap_plus_jitter() -> None:
    pacer = Pacer(Pacing(min_gap_seconds=10, jitter_seconds=5), random.Random(7))
    assert pacer.slot("m1", 1000.0) == 1000.0
    pacer.sent("m1", 1000.5)
    slot = pacer.slot("m2", 1001.0)
    assert 1010.5 <= slot <= 1015.5
    assert pacer.slot("m2", 1003.0) == slot  # decided once: not re-drawn on every pass
    pacer.sent("m2", slot)
    assert pacer.slot("m3", slot + 60) == slot + 60  # a gap already over: at once


def test_jitter_draws_differ_and_stay_within_bounds() -> None:
    pacer = Pacer(Pacing(min_gap_seconds=1, jitter_seconds=4), random.Random(1))
    pacer.sent("m0", 0.0)
    slots = [pacer.slot(f"m{i}", 0.0) for i in range(1, 50)]
    assert all(1.0 <= s <= 5.0 for s in slots) and len(set(slots)) > 40


def test_a_postponed_message_keeps_its_new_slot_until_sent() -> None:
    pacer = Pacer(Pacing(daily_cap=1))
    assert pacer.slot("m1", 50.0) == 50.0
    assert pacer.postpone("m1", 86_400.0) == 86_400.0
    assert pacer.slot("m1", 60.0) == 86_400.0


def test_typing_time_grows_with_the_text_and_is_capped() -> None:
    assert typing_seconds("") == 1.0
    assert typing_seconds("x" * 40) == pytest.approx(3.0)
    assert typing_seconds("x" * 10_000) == TYPING_MAX_SECONDS


def test_stored_options_that_cannot_be_read_mean_no_pacing() -> None:
    assert Pacing.of(None) == Pacing() and not Pacing().active
    assert Pacing.of({"pacing": {"min_gap_seconds": -1}}) == Pacing()
    assert Pacing.of({"pacing": "fast"}) == Pacing()
    assert Pacing.of({"pacing": {"daily_cap": 5}}).daily_cap == 5
    # and an account's, as its stored map reads back
    assert pacing_of(AccountItem("acc_x", options={"pacing": {"daily_cap": 5}})).daily_cap == 5
    assert pacing_of(AccountItem("acc_x")) == Pacing()


def test_pacing_is_validated_at_the_api() -> None:
    for bad in ({"min_gap_seconds": -1}, {"jitter_seconds": 601}, {"daily_cap": 0}, {"checks_per_minute": 61},
                {"typing": "yes please"}, {"burst": 3}):
        with pytest.raises(ValidationError):
            AccountOptions.model_validate({"pacing": bad})
    assert AccountOptions.model_validate({"pacing": {"min_gap_seconds": 2.5, "typing": True}}).pacing.active
