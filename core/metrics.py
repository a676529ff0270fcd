"""Metrics per function, per runtime and overall: counts, errors by type, duration statistics,
time series (1 s over 15 minutes, 1 min over 24 hours), windows for the alert engine, and a
Prometheus export. Recording one invocation costs microseconds: counters, a bounded sample for
percentiles, two ring-buffer series, and the Prometheus children.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from core.models import InvocationRecord

SAMPLE = 10_000  # durations kept per scope for percentiles
RECENT = 200_000  # invocations kept for alert windows (at most 24 hours of them)
# Functions run from about a millisecond to many minutes.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def duration_summary(durations: Iterable[float]) -> dict[str, float | None]:
    values = sorted(durations)
    if not values:
        return {"avg": None, "min": None, "max": None, "p50": None, "p95": None, "p99": None}
    return {
        "avg": sum(values) / len(values),
        "min": values[0],
        "max": values[-1],
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }


@dataclass
class Stats:
    invocations: int = 0
    successes: int = 0
    failures: int = 0
    throttles: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    duration_sum: float = 0.0
    duration_min: float | None = None
    duration_max: float | None = None
    sample: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE))

    def add(self, rec: InvocationRecord) -> None:
        self.invocations += 1
        if rec.status == "success":
            self.successes += 1
        else:
            self.failures += 1
            kind = rec.error_type or "Unknown"
            self.errors_by_type[kind] = self.errors_by_type.get(kind, 0) + 1
        if rec.status == "throttled":
            self.throttles += 1
            return  # never ran: no duration, no cold start
        if rec.error_type == "Timeout":
            self.timeouts += 1
        if rec.cold_start:
            self.cold_starts += 1
        d = rec.duration
        self.duration_sum += d
        self.duration_min = d if self.duration_min is None else min(self.duration_min, d)
        self.duration_max = d if self.duration_max is None else max(self.duration_max, d)
        self.sample.append(d)

    def to_dict(self) -> dict[str, Any]:
        ran = self.invocations - self.throttles
        summary = duration_summary(self.sample)
        summary.update(min=self.duration_min, max=self.duration_max, avg=(self.duration_sum / ran) if ran else None)
        return {
            "invocations": self.invocations,
            "successes": self.successes,
            "failures": self.failures,
            "throttles": self.throttles,
            "timeouts": self.timeouts,
            "cold_starts": self.cold_starts,
            "success_rate": _rate(self.successes, self.invocations),
            "error_rate": _rate(self.failures, self.invocations),
            "errors_by_type": dict(self.errors_by_type),
            "duration_ms": summary,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


class Series:
    """A ring of fixed-width time buckets: count, failures, throttles, duration sum and max."""

    def __init__(self, resolution: int, slots: int):
        self.resolution = resolution
        self.slots = slots
        self._start = [0] * slots  # bucket start time (epoch seconds); 0 = never used
        self._count = [0] * slots
        self._fail = [0] * slots
        self._throttle = [0] * slots
        self._dsum = [0.0] * slots
        self._dmax = [0.0] * slots

    def add(self, ts: float, failed: bool, throttled: bool, duration: float) -> None:
        start = int(ts) // self.resolution * self.resolution
        i = (start // self.resolution) % self.slots
        if self._start[i] != start:
            self._start[i] = start
            self._count[i] = self._fail[i] = self._throttle[i] = 0
            self._dsum[i] = self._dmax[i] = 0.0
        self._count[i] += 1
        self._fail[i] += failed
        self._throttle[i] += throttled
        if not throttled:
            self._dsum[i] += duration
            self._dmax[i] = max(self._dmax[i], duration)

    def points(self, now: float | None = None) -> dict[str, Any]:
        """The span ending now as columns, oldest first, empty buckets as zeros:
        {"start", "step", "count": [...], "failures", "throttles", "avg_ms", "max_ms"}."""
        now = time.time() if now is None else now
        last = int(now) // self.resolution * self.resolution
        first = last - (self.slots - 1) * self.resolution
        cols: dict[str, list[float]] = {"count": [], "failures": [], "throttles": [], "avg_ms": [], "max_ms": []}
        for start in range(first, last + 1, self.resolution):
            i = (start // self.resolution) % self.slots
            if self._start[i] == start:
                ran = self._count[i] - self._throttle[i]
                row = (
                    self._count[i],
                    self._fail[i],
                    self._throttle[i],
                    round(self._dsum[i] / ran, 3) if ran else 0.0,
                    round(self._dmax[i], 3),
                )
            else:
                row = (0, 0, 0, 0.0, 0.0)
            for col, value in zip(cols.values(), row, strict=True):
                col.append(value)
        return {"start": first, "step": self.resolution, **cols}


class _Scope:
    __slots__ = ("stats", "per_second", "per_minute")

    def __init__(self) -> None:
        self.stats = Stats()
        self.per_second = Series(1, 900)
        self.per_minute = Series(60, 1440)

    def add(self, rec: InvocationRecord, ts: float) -> None:
        self.stats.add(rec)
        failed = rec.status != "success"
        throttled = rec.status == "throttled"
        self.per_second.add(ts, failed, throttled, rec.duration)
        self.per_minute.add(ts, failed, throttled, rec.duration)


class Recent(NamedTuple):
    """One invocation, as alert windows read it. Kept as a plain tuple of the same fields (index
    with the constants below): the cyclic GC stops tracking those, never a tuple subclass, and
    full collections walking the 200,000 kept paused the event loop."""

    ts: float
    function: str
    runtime: str
    status: str
    error_type: str | None
    duration: float
    cold_start: bool


# Recent's fields as the plain tuple kept. Final so that mypy reads each index as a literal and
# knows the type of the field it picks.
RecentFields = tuple[float, str, str, str, str | None, float, bool]
TS: Final = 0
FUNCTION: Final = 1
RUNTIME: Final = 2
STATUS: Final = 3
ERROR_TYPE: Final = 4
DURATION: Final = 5
COLD_START: Final = 6


@dataclass
class WindowStats:
    """What the alert engine judges a rule on: totals of one scope over a window, and its
    invocations (read only for a percentile)."""

    count: int = 0
    failures: int = 0
    throttles: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    duration_sum: float = 0.0  # over the invocations that ran (not throttled)
    ran: int = 0
    items: Iterable[RecentFields] = ()

    @classmethod
    def of(cls, recents: Iterable[RecentFields]) -> WindowStats:
        w = _Window("all", "", 0)
        for r in recents:
            w.add(r)
        return w.stats()


class _Window:
    """Running totals of one scope over the last `seconds`: added to as invocations are recorded,
    trimmed when judged. Scanning the recent invocations instead held the event loop for tens of
    milliseconds every second on a busy platform (200,000 of them per rule)."""

    __slots__ = (
        "kind",
        "target",
        "seconds",
        "items",
        "count",
        "failures",
        "throttles",
        "timeouts",
        "cold_starts",
        "duration_sum",
        "ran",
        "judged_at",
    )

    def __init__(self, kind: str, target: str, seconds: float):
        self.kind, self.target, self.seconds = kind, target, seconds
        self.items: deque[RecentFields] = deque()
        self.count = self.failures = self.throttles = self.timeouts = self.cold_starts = self.ran = 0
        self.duration_sum = 0.0
        self.judged_at = -math.inf

    def matches(self, r: RecentFields) -> bool:
        return (
            self.kind == "all"
            or (self.kind == "function" and r[FUNCTION] == self.target)
            or (self.kind == "runtime" and r[RUNTIME] == self.target)
        )

    def _count(self, r: RecentFields, sign: int) -> None:
        self.count += sign
        if r[STATUS] != "success":
            self.failures += sign
        if r[STATUS] == "throttled":
            self.throttles += sign
        else:
            self.ran += sign
            self.duration_sum += sign * r[DURATION]
        if r[ERROR_TYPE] == "Timeout":
            self.timeouts += sign
        if r[COLD_START]:
            self.cold_starts += sign

    def add(self, r: RecentFields) -> None:
        self.items.append(r)
        self._count(r, 1)
        if len(self.items) > RECENT:  # no more than the recent invocations hold
            self._count(self.items.popleft(), -1)

    def trim(self, now: float) -> None:
        # In the order recorded: one started long ago and finished late leaves with the ones
        # recorded around it (the scan this replaces stopped at the same place).
        lo = now - self.seconds
        items = self.items
        while items and items[0][TS] < lo:
            self._count(items.popleft(), -1)
        if not items:  # no float drift left behind
            self.duration_sum = 0.0
        self.judged_at = now

    def stats(self) -> WindowStats:
        return WindowStats(
            self.count,
            self.failures,
            self.throttles,
            self.timeouts,
            self.cold_starts,
            self.duration_sum,
            self.ran,
            self.items,
        )


class Metrics:
    def __init__(self) -> None:
        self.started_at = time.time()
        self.overall = _Scope()
        self.functions: dict[str, _Scope] = {}
        self.runtimes: dict[str, _Scope] = {}
        self.recent: deque[RecentFields] = deque(maxlen=RECENT)  # Recent's fields, as plain tuples
        self.in_flight: dict[str, int] = {}
        self._windows: dict[tuple[str, float], _Window] = {}  # kept for the alert rules
        self.registry = CollectorRegistry()
        self._prom = _Exposition(self)
        self.registry.register(self._prom)

    # -- recording -----------------------------------------------------------------------
    def started(self, function: str) -> None:
        self.in_flight[function] = self.in_flight.get(function, 0) + 1

    def finished(self, function: str) -> None:
        self.in_flight[function] = max(0, self.in_flight.get(function, 0) - 1)

    def record(self, rec: InvocationRecord) -> None:
        ts = rec.started_at.timestamp()
        self.overall.add(rec, ts)
        fn = self.functions.get(rec.function_name)
        if fn is None:
            fn = self.functions[rec.function_name] = _Scope()
        fn.add(rec, ts)
        rt = self.runtimes.get(rec.runtime)
        if rt is None:
            rt = self.runtimes[rec.runtime] = _Scope()
        rt.add(rec, ts)
        recent: RecentFields = (
            ts,
            rec.function_name,
            rec.runtime,
            rec.status,
            rec.error_type,
            rec.duration,
            rec.cold_start,
        )
        self.recent.append(recent)
        for w in self._windows.values():
            if w.matches(recent):
                w.add(recent)
        self._prom.add(rec)

    def forget_function(self, name: str) -> None:
        self.functions.pop(name, None)

    # -- windows (alert engine) ----------------------------------------------------------
    def window(self, scope: str, seconds: float, now: float | None = None) -> list[Recent]:
        """Invocations of `scope` (all, function:NAME, runtime:RT) in the last `seconds`."""
        now = time.time() if now is None else now
        lo = now - seconds
        kind, _, target = scope.partition(":")
        out = []
        for r in reversed(self.recent):
            if r[TS] < lo:
                break
            if r[TS] > now:
                continue
            if kind == "function" and r[FUNCTION] != target:
                continue
            if kind == "runtime" and r[RUNTIME] != target:
                continue
            out.append(Recent._make(r))
        return out

    def window_stats(self, scope: str, seconds: float, now: float | None = None) -> WindowStats:
        """`window`'s totals, from running totals kept per (scope, seconds) once asked for. A
        `now` earlier than the last judged one, or before the newest invocation (tests judge
        arbitrary moments), is answered by a scan."""
        now = time.time() if now is None else now
        key = (scope, seconds)
        w = self._windows.get(key)
        if w is None:
            kind, _, target = scope.partition(":")
            w = _Window(kind, target, seconds)
            for r in self.window(scope, seconds, now)[::-1]:
                w.add(r[:])  # a plain tuple (a slice drops the class), untracked by the GC like the rest
            self._windows[key] = w
        if now < w.judged_at or (self.recent and self.recent[-1][TS] > now):
            return WindowStats.of(self.window(scope, seconds, now))
        w.trim(now)
        return w.stats()

    def keep_windows(self, keys: Iterable[tuple[str, float]]) -> None:
        """Drop the running totals no rule asks for any more."""
        keep = set(keys)
        for key in [k for k in self._windows if k not in keep]:
            del self._windows[key]

    # -- exports -------------------------------------------------------------------------
    def snapshot(
        self,
        function: str | None = None,
        function_count: int = 0,
        warm_workers: int | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        overall = self.overall.stats.to_dict()
        scope = self.functions.get(function, _Scope()) if function else self.overall
        by_runtime = {name: s.stats.to_dict() for name, s in sorted(self.runtimes.items())}
        snap: dict[str, Any] = {
            # The seed's fields.
            "total_executions": overall["invocations"],
            "success_rate": overall["success_rate"] or 0.0,
            "failure_rate": overall["error_rate"] or 0.0,
            "avg_execution_time": overall["duration_ms"]["avg"] or 0.0,
            "min_execution_time": overall["duration_ms"]["min"] or 0.0,
            "max_execution_time": overall["duration_ms"]["max"] or 0.0,
            "runtime_distribution": {name: s["invocations"] for name, s in by_runtime.items()},
            "errors_by_type": overall["errors_by_type"],
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "function_count": function_count,
            # And the rest.
            "overall": overall,
            "functions": {name: s.stats.to_dict() for name, s in sorted(self.functions.items())},
            "runtimes": by_runtime,
            "in_flight": sum(self.in_flight.values()),
            "in_flight_by_function": {k: v for k, v in self.in_flight.items() if v},
            "warm_workers": warm_workers,
            "scope": function or "all",
            "series": {"1s": scope.per_second.points(now), "1m": scope.per_minute.points(now)},
        }
        return snap

    def prometheus(
        self,
        function_count: int = 0,
        warm_workers: int | None = None,
        scheduling: dict[str, dict[str, Any]] | None = None,
    ) -> str:
        """`scheduling`: how invocations found a worker, per function name (the executor's
        stats()["burst"] by name; core/executors/demand.py)."""
        self._prom.gauges = {"functions": function_count, "warm_workers": warm_workers}
        self._prom.scheduling = scheduling or {}
        return generate_latest(self.registry).decode()


_Key = TypeVar("_Key", bound=tuple[str, ...])  # a counter's label values


class _Exposition:
    """The Prometheus series, counted in plain dicts as invocations are recorded and made into
    metric families only when scraped: prometheus_client's counters and histogram took a lock
    each and walked the buckets in Python on every invocation."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.invocations: dict[tuple[str, str, str], int] = {}  # (function, runtime, status)
        self.errors: dict[tuple[str, str, str], int] = {}  # (function, runtime, error type)
        self.cold: dict[tuple[str, str], int] = {}
        # (function, runtime) -> per-bucket counts (the last one: above every bound), then the sum.
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.created: dict[tuple[str, tuple[str, ...]], float] = {}
        self.gauges: dict[str, int | None] = {}
        self.scheduling: dict[str, dict[str, Any]] = {}

    def _bump(self, name: str, table: dict[_Key, int], key: _Key) -> None:
        n = table.get(key)
        if n is None:
            self.created[(name, key)] = time.time()
            n = 0
        table[key] = n + 1

    def add(self, rec: InvocationRecord) -> None:
        fr = (rec.function_name, rec.runtime)
        self._bump("invocations", self.invocations, (*fr, rec.status))
        if rec.status != "success":
            self._bump("errors", self.errors, (*fr, rec.error_type or "Unknown"))
        if rec.status == "throttled":
            return
        if rec.cold_start:
            self._bump("cold_starts", self.cold, fr)
        hist = self.durations.get(fr)
        if hist is None:
            self.created[("durations", fr)] = time.time()
            hist = self.durations[fr] = [0] * (len(BUCKETS) + 1) + [0.0]
        seconds = rec.duration / 1000.0
        hist[bisect_left(BUCKETS, seconds)] += 1  # a bucket counts values up to its bound
        hist[-1] += seconds

    def _counter(self, name: str, doc: str, labels: list[str], table: Mapping[_Key, int]) -> CounterMetricFamily:
        family = CounterMetricFamily(f"cloudfn_{name}", doc, labels=labels)
        for key, n in table.items():
            family.add_metric(list(key), n, created=self.created.get((name, key)))
        return family

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield self._counter(
            "invocations", "Invocations by outcome", ["function", "runtime", "status"], self.invocations
        )
        yield self._counter(
            "errors", "Failed invocations by error type", ["function", "runtime", "error_type"], self.errors
        )
        yield self._counter("cold_starts", "Invocations served by a new worker", ["function", "runtime"], self.cold)
        family = HistogramMetricFamily(
            "cloudfn_invocation_duration_seconds", "Invocation duration", labels=["function", "runtime"]
        )
        for key, hist in self.durations.items():
            total: float = 0
            buckets: list[tuple[str, float]] = []
            # hist has one more entry, the sum, which is not a bucket
            for bound, n in zip([*BUCKETS, math.inf], hist[:-1], strict=True):
                total += n
                buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), total))
            family.add_metric(list(key), buckets, hist[-1])
            labels = dict(zip(["function", "runtime"], key, strict=True))
            family.samples.append(
                Sample("cloudfn_invocation_duration_seconds_created", labels, self.created[("durations", key)])
            )
        yield family
        in_flight = GaugeMetricFamily("cloudfn_in_flight", "Invocations running now", labels=["function"])
        for function, n in m.in_flight.items():
            in_flight.add_metric([function], n)
        yield in_flight
        yield GaugeMetricFamily(
            "cloudfn_uptime_seconds", "Seconds since the platform started", value=time.time() - m.started_at
        )
        yield GaugeMetricFamily("cloudfn_functions", "Functions registered", value=self.gauges.get("functions") or 0)
        warm = self.gauges.get("warm_workers")
        yield GaugeMetricFamily("cloudfn_warm_workers", "Warm worker processes", value=warm if warm is not None else 0)
        yield from self._scheduling()

    def _scheduling(self) -> Iterator[Metric]:
        """The scheduler's decisions per function: the executor counts them, so they are read
        from its totals at scrape time (issue 19)."""
        started = CounterMetricFamily(
            "cloudfn_workers_started",
            "Workers started, by why: a caller waited for it (caller), callers waited "
            "while it started (background), or after a burst for the next one (spare)",
            labels=["function", "runtime", "how"],
        )
        clones = CounterMetricFamily(
            "cloudfn_worker_clones", "Workers cloned from a warm template", labels=["function", "runtime"]
        )
        waits = SummaryMetricFamily(
            "cloudfn_queue_wait_seconds",
            "Time invocations waited for a busy worker instead of starting one",
            labels=["function", "runtime"],
        )
        for name, st in sorted(self.scheduling.items()):
            key = [name, st.get("runtime", "")]
            caller = st["workers_started"] - st["background_starts"] - st["spare_starts"]
            for how, n in (("caller", caller), ("background", st["background_starts"]), ("spare", st["spare_starts"])):
                started.add_metric([*key, how], n)
            clones.add_metric(key, st.get("clones", 0))
            waits.add_metric(key, st["queue_waits"], st["queue_wait_ms"]["sum"] / 1000.0)
        yield started
        yield clones
        yield waits
