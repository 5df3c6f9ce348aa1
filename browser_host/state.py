"""The account status machine and the retry policy, free of I/O so they are unit-tested alone."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from core.models.accounts import ConnectionStatus as S
from core.models.messages import MessageStatus

ALLOWED: dict[S, frozenset[S]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.SCAN_QR_CODE, S.WORKING, S.FAILED, S.STOPPED}),
    S.SCAN_QR_CODE: frozenset({S.WORKING, S.FAILED, S.STOPPED, S.STARTING}),
    # WORKING → SCAN_QR_CODE: the phone unlinked the device and the page shows a new QR.
    S.WORKING: frozenset({S.SCAN_QR_CODE, S.FAILED, S.STOPPED, S.STARTING}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
}


class InvalidTransition(ValueError):
    pass


@dataclass
class StatusMachine:
    """Current status of one account; every change is validated and reported to `on_change`."""

    status: S = S.STOPPED
    on_change: Callable[[S, S, str | None], None] | None = None
    history: list[tuple[S, S, str | None]] = field(default_factory=list)

    def set(self, new: S, reason: str | None = None) -> bool:
        """Move to `new`; False when already there, InvalidTransition when the move is not allowed."""
        if new is self.status:
            return False
        if new not in ALLOWED[self.status]:
            raise InvalidTransition(f"{self.status} → {new} is not a valid account transition")
        old, self.status = self.status, new
        self.history.append((old, new, reason))
        if self.on_change:
            self.on_change(old, new, reason)
        return True


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter (no thundering herd after a shared failure)."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.5  # the delay is drawn from [(1 - jitter) * d, d]

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt)))
        return float(ceiling * (1 - self.jitter * rand()))


# wa-js ACK enum → message status (-1 FAILED, 0 CLOCK, 1 SENT, 2 RECEIVED, 3 READ, 4 PLAYED).
def ack_status(ack: int) -> MessageStatus | None:
    """The message status an ack means, or None for 'still pending'."""
    if ack < 0:
        return MessageStatus.FAILED
    return {1: MessageStatus.SENT, 2: MessageStatus.DELIVERED, 3: MessageStatus.READ,
            4: MessageStatus.READ}.get(ack)
