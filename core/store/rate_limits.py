"""Token buckets in DynamoDB, one conditional write per allowed request (GCRA).

A bucket of `burst` tokens refilling at `per_second` is kept as one number: its theoretical arrival time (TAT),
the moment it would be full again. A request at `now` is allowed when, after adding its cost (one interval
`1/per_second`), the bucket is no more than `burst` intervals ahead of now. Every instance of every function
shares the row, so the limit holds across Lambda containers; the write is conditional, so two requests never
spend the same token.

The common cases cost one write: a busy bucket (`tat += interval` if the result stays within the burst), an idle
one (`tat = now + interval` if it had refilled). Which to try first comes from what this process saw last; a
refused request costs a consistent read more, to say how long to wait.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, UpdateError

from core.store.conditions import is_conditional
from core.store.tables import RateBucketItem

_IDLE_AFTER_MS = 3_600_000  # rows of buckets unused this long are left to the TTL
_HINTS_MAX = 4096


@dataclass(frozen=True)
class Decision:
    """What the limiter decided, and what the `RateLimit` headers say."""

    allowed: bool
    limit: int  # the burst: requests allowed at once
    window: int  # seconds a full bucket takes to refill
    remaining: int  # requests allowed right now after this one
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next request is allowed (0 when allowed)


class RateLimiter:
    def __init__(self) -> None:
        self._last_tat: dict[str, int] = {}  # this process's last view of a bucket: which write to try first

    def take(self, bucket: str, per_second: float, burst: int, now: float | None = None) -> Decision:
        """Spend one token of `bucket`, or say how long until one is there."""
        now_ms = int((time.time() if now is None else now) * 1000)
        interval = max(1, round(1000 / per_second))
        ahead_max = (burst - 1) * interval  # how far the TAT may be ahead of now before this request's cost
        idle_first = self._last_tat.get(bucket, 0) < now_ms
        for attempt in range(4):
            idle = idle_first if attempt % 2 == 0 else not idle_first
            tat = self._refill(bucket, now_ms, interval) if idle else self._spend(bucket, now_ms, interval, ahead_max)
            if tat is not None:
                self._remember(bucket, tat)
                return _decision(True, tat, now_ms, interval, burst)
            if not idle or attempt % 2 == 1:
                current = self._read(bucket)
                if current is not None and current > now_ms + ahead_max:
                    self._remember(bucket, current)
                    return _decision(False, current, now_ms, interval, burst)
        # Four conditional writes lost to concurrent requests of the same key: that key is busy enough to wait.
        return _decision(False, now_ms + burst * interval, now_ms, interval, burst)

    def _spend(self, bucket: str, now_ms: int, interval: int, ahead_max: int) -> int | None:
        """A busy bucket: one more interval, if that stays within the burst."""
        item = RateBucketItem(bucket)
        try:
            item.update(
                actions=[RateBucketItem.tat_ms.add(interval),
                         RateBucketItem.expires_at.set(now_ms // 1000 + _IDLE_AFTER_MS // 1000)],
                condition=(RateBucketItem.tat_ms >= now_ms) & (RateBucketItem.tat_ms <= now_ms + ahead_max))
        except UpdateError as exc:
            if is_conditional(exc):
                return None
            raise
        return int(item.tat_ms)

    def _refill(self, bucket: str, now_ms: int, interval: int) -> int | None:
        """An idle (or new) bucket: full again, this request takes one token."""
        tat = now_ms + interval
        try:
            RateBucketItem(bucket).update(
                actions=[RateBucketItem.tat_ms.set(tat),
                         RateBucketItem.expires_at.set(now_ms // 1000 + _IDLE_AFTER_MS // 1000)],
                condition=RateBucketItem.tat_ms.does_not_exist() | (RateBucketItem.tat_ms < now_ms))
        except UpdateError as exc:
            if is_conditional(exc):
                return None
            raise
        return tat

    def _read(self, bucket: str) -> int | None:
        try:
            return int(RateBucketItem.get(bucket, consistent_read=True).tat_ms)
        except DoesNotExist:
            return None

    def _remember(self, bucket: str, tat: int) -> None:
        self._last_tat[bucket] = tat
        if len(self._last_tat) > _HINTS_MAX:
            del self._last_tat[next(iter(self._last_tat))]


def _decision(allowed: bool, tat: int, now_ms: int, interval: int, burst: int) -> Decision:
    ahead = max(0, tat - now_ms)
    capacity = burst * interval
    remaining = max(0, (capacity - ahead) // interval) if allowed else 0
    retry = 0 if allowed else max(1, math.ceil((ahead - (burst - 1) * interval) / 1000))
    return Decision(allowed=allowed, limit=burst, window=max(1, math.ceil(capacity / 1000)), remaining=remaining,
                    reset=math.ceil(ahead / 1000), retry_after=retry)
