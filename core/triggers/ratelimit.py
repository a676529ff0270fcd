"""Per-function token buckets, consulted by `LocalPlatform.run_invocation` so that every way of
invoking a function (invoke API, CLI, console, HTTP endpoint, schedule, async queue) draws on
the same bucket."""

from __future__ import annotations

import time

from core.models import Function, RateLimit


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 when a call may go now (one token taken), else the seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per function id; a changed limit starts a full bucket of the new size."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._buckets: dict[str, tuple[RateLimit, TokenBucket]] = {}

    def check(self, fn: Function) -> float:
        limit = fn.rate_limit
        if limit is None:
            if self._buckets:
                self._buckets.pop(fn.id, None)
            return 0.0
        now = self.clock()
        held = self._buckets.get(fn.id)
        if held is None or held[0] != limit:
            held = (limit, TokenBucket(limit.requests_per_second, limit.burst or 1, now))
            self._buckets[fn.id] = held
        return held[1].take(now)

    def forget(self, fn_id: str) -> None:
        self._buckets.pop(fn_id, None)
