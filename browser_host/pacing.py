"""Send pacing of one account (anti-ban): a minimum gap with jitter between messages, "typing…" before texts, a
daily cap. Paced messages wait (their `scheduled_at` says until when); pacing never fails one.

The slot of a message is decided once, when it reaches the head of the account's queue, so a jittered wait is
not re-drawn on every pass. Reactions, edits, revokes and read receipts are not paced: they are not new messages.
The gap is measured from the last hand-over by any host (a new owner reads it from the messages table).
"""

from __future__ import annotations

import random

from core.models.accounts import Pacing

DAY = 86_400  # the daily cap's window: UTC days (fixed windows from the epoch start at 00:00 UTC)
TYPING_BASE_SECONDS = 1.0
TYPING_PER_CHAR_SECONDS = 0.05
TYPING_MAX_SECONDS = 8.0
_SLOTS_MAX = 1000


def typing_seconds(text: str) -> float:
    """How long "typing…" shows before a text: grows with its length, capped."""
    return min(TYPING_MAX_SECONDS, TYPING_BASE_SECONDS + TYPING_PER_CHAR_SECONDS * len(text))


class Pacer:
    def __init__(self, pacing: Pacing | None = None, rng: random.Random | None = None) -> None:
        self.pacing = pacing or Pacing()
        self.rng = rng or random.Random()
        self.last_sent: float | None = None  # epoch seconds of the last hand-over (None: none known)
        self.slots: dict[str, float] = {}  # message id → when it may go

    def slot(self, message_id: str, now: float) -> float:
        """When the message may be handed over (now or later); decided once per message."""
        known = self.slots.get(message_id)
        if known is not None:
            return known
        pacing = self.pacing
        at = now
        if self.last_sent is not None and (pacing.min_gap_seconds or pacing.jitter_seconds):
            gap = pacing.min_gap_seconds + self.rng.uniform(0, pacing.jitter_seconds)
            at = max(now, self.last_sent + gap)
        self.slots[message_id] = at
        if len(self.slots) > _SLOTS_MAX:
            del self.slots[next(iter(self.slots))]
        return at

    def postpone(self, message_id: str, until: float) -> float:
        """The daily cap is spent: the message waits for `until`."""
        self.slots[message_id] = until
        return until

    def sent(self, message_id: str, now: float) -> None:
        self.last_sent = now
        self.slots.pop(message_id, None)
