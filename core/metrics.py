"""Metrics per function, per runtime and overall: counts, errors by type, duration statistics,
time series (1 s over 15 minutes, 1 min over 24 hours), windows for the alert engine, and a
Prometheus export. Recording one invocation costs microseconds: counters, a bounded sample for
percentiles, two ring-buffer series, and the Prometheus children.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
    sample: deque = field(default_factory=lambda: deque(maxlen=SAMPLE))

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
        summary.update(min=self.duration_min, max=self.duration_max,
                       avg=(self.duration_sum / ran) if ran else None)
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
        cols: dict[str, list] = {"count": [], "failures": [], "throttles": [], "avg_ms": [], "max_ms": []}
        for start in range(first, last + 1, self.resolution):
            i = (start // self.resolution) % self.slots
            if self._start[i] == start:
                ran = self._count[i] - self._throttle[i]
                row = (self._count[i], self._fail[i], self._throttle[i],
                       round(self._dsum[i] / ran, 3) if ran else 0.0, round(self._dmax[i], 3))
            else:
                row = (0, 0, 0, 0.0, 0.0)
            for col, value in zip(cols.values(), row):
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


@dataclass(slots=True)
class Recent:
    ts: float
    function: str
    runtime: str
    status: str
    error_type: str | None
    duration: float
    cold_start: bool


class Metrics:
    def __init__(self) -> None:
        self.started_at = time.time()
        self.overall = _Scope()
        self.functions: dict[str, _Scope] = {}
        self.runtimes: dict[str, _Scope] = {}
        self.recent: deque[Recent] = deque(maxlen=RECENT)
        self.in_flight: dict[str, int] = {}
        self.registry = CollectorRegistry()
        labels = ["function", "runtime"]
        self._p_invocations = Counter("cloudfn_invocations", "Invocations by outcome", [*labels, "status"], registry=self.registry)
        self._p_errors = Counter("cloudfn_errors", "Failed invocations by error type", [*labels, "error_type"], registry=self.registry)
        self._p_cold = Counter("cloudfn_cold_starts", "Invocations served by a new worker", labels, registry=self.registry)
        self._p_duration = Histogram("cloudfn_invocation_duration_seconds", "Invocation duration", labels,
                                     buckets=BUCKETS, registry=self.registry)
        self._p_in_flight = Gauge("cloudfn_in_flight", "Invocations running now", ["function"], registry=self.registry)
        self._p_uptime = Gauge("cloudfn_uptime_seconds", "Seconds since the platform started", registry=self.registry)
        self._p_functions = Gauge("cloudfn_functions", "Functions registered", registry=self.registry)
        self._p_warm = Gauge("cloudfn_warm_workers", "Warm worker processes", registry=self.registry)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, remembered: prometheus_client checks and converts the label
        values on every call, which was a tenth of the cost of recording an invocation."""
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[(metric, values)] = metric.labels(*values)
        return child

    # -- recording -----------------------------------------------------------------------
    def started(self, function: str) -> None:
        self.in_flight[function] = self.in_flight.get(function, 0) + 1
        self._child(self._p_in_flight, function).inc()

    def finished(self, function: str) -> None:
        self.in_flight[function] = max(0, self.in_flight.get(function, 0) - 1)
        self._child(self._p_in_flight, function).dec()

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
        self.recent.append(Recent(ts, rec.function_name, rec.runtime, rec.status, rec.error_type, rec.duration, rec.cold_start))
        self._child(self._p_invocations, rec.function_name, rec.runtime, rec.status).inc()
        if rec.status != "success":
            self._child(self._p_errors, rec.function_name, rec.runtime, rec.error_type or "Unknown").inc()
        if rec.status != "throttled":
            self._child(self._p_duration, rec.function_name, rec.runtime).observe(rec.duration / 1000.0)
            if rec.cold_start:
                self._child(self._p_cold, rec.function_name, rec.runtime).inc()

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
            if r.ts < lo:
                break
            if r.ts > now:
                continue
            if kind == "function" and r.function != target:
                continue
            if kind == "runtime" and r.runtime != target:
                continue
            out.append(r)
        return out

    # -- exports -------------------------------------------------------------------------
    def snapshot(self, function: str | None = None, function_count: int = 0,
                 warm_workers: int | None = None, now: float | None = None) -> dict[str, Any]:
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

    def prometheus(self, function_count: int = 0, warm_workers: int | None = None) -> str:
        self._p_uptime.set(time.time() - self.started_at)
        self._p_functions.set(function_count)
        if warm_workers is not None:
            self._p_warm.set(warm_workers)
        return generate_latest(self.registry).decode()
