"""Issue 19: the metrics pane shows how the selected function's invocations found a worker."""

from __future__ import annotations

from console_waits import screen_text, settle, until

SCHED = {
    "runtime": "python",
    "workers_started": 3,
    "start_ms_avg": 41.5,
    "background_starts": 1,
    "spare_starts": 1,
    "clones": 0,
    "queue_waits": 15,
    "queue_wait_ms": {"sum": 120.0, "max": 19.0, "p50": 8.0, "p99": 19.0},
}


async def test_the_metrics_pane_shows_starts_and_queue_waits_of_the_selected_function(fake, make_app):
    real = fake.metrics

    async def metrics(function=None):
        snap = await real(function)
        snap["scheduling"] = {"hello-python": SCHED}
        return snap

    fake.metrics = metrics
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("alt+6")
        await settle(pilot, app)
        app.screen.metrics_pane.show_function("hello-python")
        await until(pilot, lambda: any("waits 15" in line for line in screen_text(app)), "the workers line")
        line = next(line for line in screen_text(app) if "waits 15" in line)
        assert "started 3 (bg 1, spare 1, clones 0, avg 41.5 ms)" in line and "p99 19.0 ms" in line
        app.screen.metrics_pane.show_function("fail-python")  # no starts recorded: no line
        await until(pilot, lambda: not any("waits 15" in line for line in screen_text(app)), "the line to go")


def test_cloudfn_metrics_prints_a_workers_table_when_the_owner_reports_one():
    from cloudfn_tui.output import metrics_text

    stats = {
        "invocations": 16,
        "success_rate": 100.0,
        "failures": 0,
        "throttles": 0,
        "timeouts": 0,
        "cold_starts": 1,
        "errors_by_type": {},
        "duration_ms": dict.fromkeys(("avg", "min", "max", "p50", "p95", "p99"), 1.0),
    }
    snap = {
        "uptime_seconds": 5,
        "function_count": 1,
        "in_flight": 0,
        "warm_workers": 3,
        "overall": stats,
        "functions": {"hello-python": stats},
        "runtimes": {"python": stats},
        "scheduling": {"hello-python": SCHED},
    }
    text = metrics_text(snap)
    head = next(line for line in text.splitlines() if line.startswith("WORKERS OF"))
    row = next(line for line in text.splitlines() if line.startswith("hello-python") and "41.5" in line)
    assert head.split()[:4] == ["WORKERS", "OF", "STARTED", "START"]
    assert row.split()[1] == "3" and "19.0ms" in row.replace(" ms", "ms")
