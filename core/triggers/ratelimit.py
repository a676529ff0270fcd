"""Per-function token buckets, consulted by `LocalPlatform.run_invocation` so that every way of
invoking a function (invoke API, CLI, console, HTTP endpoint, schedule, async queue) draws on
the same bucket.

The buckets outlive the process in `<data_dir>/rate_limits.json` (saved at close, read at open):
a `cloudfn invoke` that owns the data directory for one call must not start with a full bucket
each time, or a shell loop would pass any limit. Wall-clock time, as it is compared across
processes; a clock stepping back refills nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.models import Function, RateLimit
from core.storage import atomic_write_bytes

log = logging.getLogger("cloudfn.platform")
STATE_FILE = "rate_limits.json"


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 when a call may go now (one token taken), else the seconds until one may."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per function id; a changed limit starts a full bucket of the new size."""

    def __init__(self, state_path: Path | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.path = state_path
        self._buckets: dict[str, tuple[RateLimit, TokenBucket]] = {}
        self._saved: dict[str, dict[str, Any]] = {}
        if state_path is not None:
            try:
                data = json.loads(state_path.read_bytes())
                self._saved = {k: v for k, v in data.get("buckets", {}).items() if isinstance(v, dict)}
            except FileNotFoundError:
                pass
            except (ValueError, AttributeError, OSError) as exc:  # only the buckets' fill is lost
                log.warning("ignoring the unreadable rate limit state %s (%s): buckets start full", state_path, exc)

    def check(self, fn: Function) -> float:
        limit = fn.rate_limit
        if limit is None:
            if self._buckets:
                self._buckets.pop(fn.id, None)
            return 0.0
        now = self.clock()
        held = self._buckets.get(fn.id)
        if held is None or held[0] != limit:
            bucket = TokenBucket(limit.requests_per_second, limit.burst or 1, now)
            saved = self._saved.pop(fn.id, None)
            if held is None and saved and saved.get("limit") == limit.model_dump(mode="json"):
                try:
                    bucket.tokens, bucket.stamp = min(float(saved["tokens"]), bucket.burst), float(saved["stamp"])
                except (KeyError, TypeError, ValueError):
                    pass
            held = (limit, bucket)
            self._buckets[fn.id] = held
        return held[1].take(now)

    def forget(self, fn_id: str) -> None:
        self._buckets.pop(fn_id, None)
        self._saved.pop(fn_id, None)

    def save(self) -> None:
        if self.path is None or not (self._buckets or self._saved):
            return
        buckets = dict(self._saved)
        buckets.update(
            {
                fid: {"limit": limit.model_dump(mode="json"), "tokens": b.tokens, "stamp": b.stamp}
                for fid, (limit, b) in self._buckets.items()
            }
        )
        try:
            atomic_write_bytes(self.path, json.dumps({"version": 1, "buckets": buckets}).encode())
        except OSError as exc:
            log.warning("could not save the rate limit state %s: %s", self.path, exc)
