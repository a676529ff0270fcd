"""Metrics: exact counts, percentiles against a known distribution, series, Prometheus."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from core.metrics import Metrics, Series, duration_summary
from core.models import InvocationRecord


def rec(
    i: int,
    duration: float,
    status: str = "success",
    error_type: str | None = None,
    fn: str = "f",
    runtime: str = "python",
    cold: bool = False,
    ts: float | None = None,
) -> InvocationRecord:
    at = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return InvocationRecord(
        id=str(i),
        function_id=fn,
        function_name=fn,
        function_version=1,
        runtime=runtime,
        status=status,
        error_type=error_type,
        started_at=at,
        duration=duration,
        cold_start=cold,
    )


def test_percentiles_of_a_known_distribution():
    m = Metrics()
    durations = list(range(1, 1001))  # 1..1000 ms, shuffled
    random.Random(7).shuffle(durations)
    for i, d in enumerate(durations):
        m.record(rec(i, float(d)))
    d = m.snapshot()["overall"]["duration_ms"]
    assert (d["p50"], d["p95"], d["p99"]) == (500.0, 950.0, 990.0)
    assert (d["min"], d["max"], d["avg"]) == (1.0, 1000.0, 500.5)
    assert duration_summary([]) == {k: None for k in ("avg", "min", "max", "p50", "p95", "p99")}


def test_counts_per_function_runtime_and_overall_are_exact():
    m = Metrics()
    m.record(rec(1, 10, fn="a", cold=True))
    m.record(rec(2, 20, fn="a"))
    m.record(rec(3, 5, "failed", "HandlerError", fn="b", runtime="go"))
    m.record(rec(4, 3000, "failed", "Timeout", fn="b", runtime="go"))
    m.record(rec(5, 0, "throttled", "Throttled", fn="a"))
    s = m.snapshot(function_count=2)
    o = s["overall"]
    assert (o["invocations"], o["successes"], o["failures"], o["throttles"], o["timeouts"], o["cold_starts"]) == (
        5,
        2,
        3,
        1,
        1,
        1,
    )
    assert o["errors_by_type"] == {"HandlerError": 1, "Timeout": 1, "Throttled": 1}
    assert o["duration_ms"]["min"] == 5 and o["duration_ms"]["max"] == 3000  # throttled never ran
    assert s["runtime_distribution"] == {"go": 2, "python": 3}
    assert (s["success_rate"], s["failure_rate"]) == (40.0, 60.0)
    assert s["functions"]["a"]["invocations"] == 3 and s["functions"]["b"]["timeouts"] == 1
    assert m.snapshot("b")["scope"] == "b"


def test_series_buckets_by_second_and_minute_and_forgets_old_buckets():
    s = Series(1, 5)
    base = 1_000_000
    s.add(base, False, False, 10)
    s.add(base + 0.5, True, False, 30)
    s.add(base + 2, False, True, 0)
    pts = s.points(now=base + 2)
    assert pts["start"] == base - 2 and pts["step"] == 1
    assert pts["count"] == [0, 0, 2, 0, 1]
    assert pts["failures"] == [0, 0, 1, 0, 0]
    assert pts["throttles"] == [0, 0, 0, 0, 1]
    assert pts["avg_ms"][2] == 20.0 and pts["max_ms"][2] == 30.0
    # Five seconds later the first bucket's slot is reused, not added to.
    s.add(base + 5, False, False, 1)
    assert s.points(now=base + 5)["count"] == [0, 1, 0, 0, 1]  # base+5 holds 1, not 2+1
    minute = Metrics().overall.per_minute
    assert minute.resolution == 60 and minute.slots == 1440


def test_windows_for_alerts_filter_by_scope_and_time():
    m = Metrics()
    now = time.time()
    m.record(rec(1, 1, fn="a", ts=now - 100))
    m.record(rec(2, 1, fn="a", ts=now - 10))
    m.record(rec(3, 1, fn="b", runtime="go", ts=now - 5))
    assert len(m.window("all", 60, now)) == 2
    assert [r.function for r in m.window("function:a", 60, now)] == ["a"]
    assert [r.function for r in m.window("runtime:go", 600, now)] == ["b"]


def test_prometheus_text_has_histogram_buckets_from_a_millisecond_to_minutes():
    m = Metrics()
    m.record(rec(1, 2.0, fn="hello"))
    m.record(rec(2, 1.0, "failed", "HandlerError", fn="hello"))
    text = m.prometheus(function_count=3)
    assert 'cloudfn_invocations_total{function="hello",runtime="python",status="success"} 1.0' in text
    assert 'cloudfn_errors_total{error_type="HandlerError",function="hello",runtime="python"} 1.0' in text
    assert 'cloudfn_invocation_duration_seconds_bucket{function="hello",le="0.001",runtime="python"} 1.0' in text
    assert 'le="900.0"' in text
    assert "cloudfn_functions 3.0" in text


def test_running_window_totals_equal_a_scan_of_the_recent_invocations():
    """The alert engine's window totals are kept as invocations are recorded; at every moment
    they equal what a scan of the recent invocations gives, for every scope and window."""
    from core.alerts import metric_value
    from core.metrics import WindowStats

    m = Metrics()
    rnd = random.Random(11)
    t = 1_000_000.0
    scopes = [("all", 5), ("all", 30), ("function:a", 10), ("runtime:go", 7)]
    metrics = [
        "invocation_rate",
        "failures",
        "throttles",
        "timeouts",
        "cold_starts",
        "error_rate",
        "success_rate",
        "duration_avg",
        "duration_p95",
    ]
    for step in range(400):
        for _ in range(rnd.randrange(0, 6)):
            status, error = rnd.choice(
                [
                    ("success", None),
                    ("success", None),
                    ("failed", "HandlerError"),
                    ("failed", "Timeout"),
                    ("throttled", "Throttled"),
                ]
            )
            m.record(
                rec(
                    step,
                    rnd.uniform(0.1, 900.0),
                    status,
                    error,
                    fn=rnd.choice("ab"),
                    runtime=rnd.choice(["python", "go"]),
                    cold=rnd.random() < 0.2,
                    ts=t,
                )
            )
            t += rnd.uniform(0.0, 0.3)
        now = t + rnd.uniform(0.0, 0.5)
        for scope, seconds in scopes:
            kept = m.window_stats(scope, seconds, now)
            scanned = WindowStats.of(m.window(scope, seconds, now))
            for metric in metrics:
                a, b = metric_value(metric, kept, seconds), metric_value(metric, scanned, seconds)
                assert (a is None) == (b is None), (step, scope, metric)
                if a is not None:
                    assert abs(a - b) <= 1e-6 * max(1.0, abs(b)), (step, scope, metric, a, b)
    assert len(m._windows) == len(scopes)
    m.keep_windows([("all", 5)])
    assert list(m._windows) == [("all", 5)]


def test_kept_invocations_are_not_tracked_by_the_cyclic_gc():
    """200,000 are kept for alert windows on a busy platform; a full collection walking them
    paused the event loop for tens of milliseconds."""
    import gc

    m = Metrics()
    m.window_stats("all", 60)
    for i in range(50):
        m.record(rec(i, 1.0))
    gc.collect()
    assert len(m.recent) == 50 and not any(gc.is_tracked(r) for r in m.recent)
    assert not any(gc.is_tracked(r) for w in m._windows.values() for r in w.items)


def test_the_console_and_the_server_share_one_percentile():
    """The console's own p50/p95/p99 (from the event stream) is core's nearest rank, not a
    formula of its own: the same runs give the same numbers in both places."""
    from cloudfn_tui.widgets.live import Series, summary_from

    for n in range(1, 41):
        series = Series()
        series.invocations = n
        series.durations.extend(float(d) for d in range(n, 0, -1))
        shown = summary_from(None, series)
        server = duration_summary(range(1, n + 1))
        assert (shown["p50"], shown["p95"], shown["p99"]) == (server["p50"], server["p95"], server["p99"]), n
