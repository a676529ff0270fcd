"""Wait or start, decided by numbers: the recent cost of an invocation and of a cold start per
function version, the expected wait for a worker that is busy now, and the counts that make the
scheduler's decisions visible (cold starts, workers started in the background, queue waits).

Why numbers rather than "start one whenever none is idle": a warm invocation costs ~0.2 ms and a
cold start 20-100 ms, so with one warm worker and a burst of 16 callers every caller that started
its own worker waited for the cold start, while the warm worker would have served all of them in
a few ms. A caller now waits for the worker expected to free up first when that wait is shorter
than a cold start; otherwise a worker is started in the background and the caller takes whichever
frees up first (never waiting longer than the warm queue would have taken).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from typing import Any

ALPHA = 0.3  # weight of the newest sample: a function that turns slow is noticed within a few calls
DEFAULT_COLD_MS = 100.0  # before any start of the runtime was measured (a sandboxed start here: 20-100 ms)
RECENT_WAITS = 512  # queue waits kept per function for the percentiles


class Ewma:
    __slots__ = ("value", "count")

    def __init__(self) -> None:
        self.value: float | None = None
        self.count = 0

    def add(self, x: float) -> None:
        self.count += 1
        self.value = x if self.value is None else self.value + ALPHA * (x - self.value)


class Demand:
    """One function version's numbers: what an invocation and a cold start take, which workers
    run since when, which starts are under way since when, and the waiting not yet paid for."""

    __slots__ = ("invoke", "cold", "running", "starts", "queued_since", "debt", "peak")

    def __init__(self) -> None:
        self.invoke = Ewma()  # ms a worker is held per invocation (wall clock, as the caller sees it)
        # ms from deciding to start a worker to its being ready, by kind: "adopt" (a pre-started
        # sandbox takes the function on: a few ms) and "fresh" (the whole launch chain: 30-100 ms).
        # One figure for both made a burst look cheap to scale after one adoption, and then
        # paid fresh starts that slowed the warm worker they were meant to relieve.
        self.cold = {"adopt": Ewma(), "fresh": Ewma()}
        self.running: dict[Any, float] = {}  # busy worker -> perf_counter() when its invocation began
        # Start under way -> (perf_counter() when it began, whether its own caller uses it first,
        # the ms it is expected to take, its kind).
        self.starts: dict[object, tuple[float, bool, float, str]] = {}
        # perf_counter() since when callers have been waiting without a break (None: nobody waits).
        # A queue that outlasts a cold start is demand, not a blip: one more worker is started then,
        # and the clock restarts. A one-off burst that one worker drains sooner starts nothing: a
        # start in the background takes CPU from the worker that is draining it (2 cores here).
        self.queued_since: float | None = None
        # Milliseconds callers waited since workers were last added for it, and the most callers
        # seen at once. Once the waiting adds up to a cold start, one more worker would have paid
        # for itself (the rent-or-buy rule): it is started when the queue drains (idle CPU), up
        # to the peak, so the next burst finds it warm.
        self.debt = 0.0
        self.peak = 0

    def cold_ms(self, kind: str, fallback: float | None) -> float:
        mine = self.cold[kind].value
        if mine is not None:
            return mine
        return fallback if fallback is not None else DEFAULT_COLD_MS

    def expected_wait(self, ahead: int, cold_ms: float, now: float | None = None) -> float | None:
        """Milliseconds until a worker is free for a caller with `ahead` callers before it, if
        nothing more is started; None when it cannot be told (no invocation measured yet while
        one runs) or nothing would ever free up (no worker runs or starts). `cold_ms`: what the
        next start would take."""
        d = self.invoke.value
        if not self.running and (d is None or not self.starts):
            return None
        now = time.perf_counter() if now is None else now
        free: list[float] = []
        for began in self.running.values():
            elapsed = (now - began) * 1000
            if d is None:
                if elapsed < cold_ms:
                    return None  # could end now or in a minute: starting one is the safe bet
                free.append(elapsed)  # already longer than a start: assume as long again (heavy tail)
            else:
                free.append(d - elapsed if elapsed < d else elapsed)
        if d is None:
            d = max(free)
        for began, owned, expect, _ in self.starts.values():
            free.append(max(0.0, expect - (now - began) * 1000) + (d if owned else 0.0))
        heapq.heapify(free)
        for _ in range(ahead):
            heapq.heapreplace(free, free[0] + d)
        return free[0]


class BurstStats:
    """Per function: how its invocations found a worker. Counted by the execution service, read by
    the metrics snapshot, Prometheus and the console's metrics pane."""

    __slots__ = (
        "name",
        "runtime",
        "workers_started",
        "cold_ms_sum",
        "background_starts",
        "spare_starts",
        "clones",
        "queue_waits",
        "queue_wait_ms_sum",
        "queue_wait_ms_max",
        "recent_waits",
    )

    def __init__(self, name: str, runtime: str) -> None:
        self.name = name
        self.runtime = runtime
        self.workers_started = 0
        self.cold_ms_sum = 0.0
        self.background_starts = 0  # of those, started in the background while callers waited
        self.spare_starts = 0  # of those, started after a burst for the next one (idle until used)
        self.clones = 0  # workers cloned from a warm template (not built yet: always 0)
        self.queue_waits = 0  # invocations that waited for a busy worker instead of starting one
        self.queue_wait_ms_sum = 0.0
        self.queue_wait_ms_max = 0.0
        self.recent_waits: deque[float] = deque(maxlen=RECENT_WAITS)

    def started(self, ms: float, how: str) -> None:
        """`how`: "caller" (its caller waited for it), "background", "spare"."""
        self.workers_started += 1
        self.cold_ms_sum += ms
        self.background_starts += how == "background"
        self.spare_starts += how == "spare"

    def waited(self, ms: float) -> None:
        self.queue_waits += 1
        self.queue_wait_ms_sum += ms
        self.queue_wait_ms_max = max(self.queue_wait_ms_max, ms)
        self.recent_waits.append(ms)

    def to_dict(self) -> dict[str, Any]:
        waits = sorted(self.recent_waits)

        def pct(p: float) -> float | None:
            return round(waits[min(len(waits) - 1, int(p * len(waits)))], 3) if waits else None

        return {
            "runtime": self.runtime,
            "workers_started": self.workers_started,
            "start_ms_avg": round(self.cold_ms_sum / self.workers_started, 3) if self.workers_started else None,
            "background_starts": self.background_starts,
            "spare_starts": self.spare_starts,
            "clones": self.clones,
            "queue_waits": self.queue_waits,
            "queue_wait_ms": {
                "sum": round(self.queue_wait_ms_sum, 3),
                "max": round(self.queue_wait_ms_max, 3),
                "p50": pct(0.5),
                "p99": pct(0.99),
            },
        }
