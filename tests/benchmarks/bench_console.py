"""Console benchmarks (a script: `python tests/benchmarks/bench_console.py`).

1. Start until the function list shows 1,000 functions, against a bare Textual hello app in the
   same run (goal: at most 3x); and until the whole main screen is complete (the first
   function's code highlighted, its event and description, the footer, the logs, the live
   event stream), against the same hello app. Both wait for the app to be idle at the end.
2. Memory of the log pane while 1,000,000 lines stream (goal: flat once the buffer is full).
3. Key press to repaint while 200 invocations per second stream on the event bus.
Headless (Textual's test driver), on the in-memory platform of tests/console, so the numbers
measure the console, not the executors.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "console")]

from console_fakes import FakePlatform  # noqa: E402
from textual.app import App  # noqa: E402
from textual.widgets import Static  # noqa: E402

from cloudfn_tui.app import CloudfnApp  # noqa: E402
from cloudfn_tui.widgets.function_list import FunctionList  # noqa: E402
from cloudfn_tui.widgets.log_view import LogView  # noqa: E402


class Hello(App):
    def compose(self):
        yield Static("hello")


async def _time_hello() -> float:
    t0 = time.perf_counter()
    app = Hello()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        return time.perf_counter() - t0


async def _time_console(n: int) -> float:
    platform = FakePlatform(n_extra=n - 4)
    t0 = time.perf_counter()
    app = CloudfnApp(platform, theme="cloudfn-night", remember_theme=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.query(FunctionList).first().row_count < n:
            await pilot.pause(0.001)
        await pilot.pause()
        return time.perf_counter() - t0


def _screen_complete(app: CloudfnApp, n: int) -> bool:
    """The whole main screen is up: the list, the first function's code highlighted in the
    editor, its event and description, the footer's keys, the logs, the live event stream."""
    from cloudfn_tui.widgets.footer import KeyFooter

    screen = app.screen
    try:
        editor, footer = screen.editor, screen.query_one(KeyFooter)
    except Exception:
        return False
    fn = editor.function
    return (
        screen.functions.row_count >= n
        and fn is not None
        and editor.area.text == fn.code
        and editor.area.language is not None
        and screen.event_editor.area.text.strip() != ""
        and "Invoke with" in str(screen.result_view.query_one("#result-body").render())
        and bool(footer._items)
        and len(screen.log_view.view) > 0
        and app.stream_state == "live"
    )


async def _time_console_complete(n: int) -> float:
    platform = FakePlatform(n_extra=n - 4)
    t0 = time.perf_counter()
    app = CloudfnApp(platform, theme="cloudfn-night", remember_theme=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while not _screen_complete(app, n):
            await pilot.pause(0.001)
        await pilot.pause()
        return time.perf_counter() - t0


async def bench_start(runs: int = 5) -> dict:
    hello = [await _time_hello() for _ in range(runs)]
    console = [await _time_console(1000) for _ in range(runs)]
    complete = [await _time_console_complete(1000) for _ in range(runs)]
    h, c, w = statistics.median(hello), statistics.median(console), statistics.median(complete)
    return {"hello_s": h, "console_1000_s": c, "ratio": c / h, "complete_1000_s": w, "complete_ratio": w / h}


async def bench_log_memory(total: int = 1_000_000) -> dict:
    class LogApp(App):
        def compose(self):
            yield LogView(id="log")

    app = LogApp()
    marks = {}
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogView)
        tracemalloc.start()
        rec = {"time": "2025-01-02T03:04:05Z", "level": "info", "logger": "bench", "function": "fn"}
        t0 = time.perf_counter()
        for i in range(1, total + 1):
            view.append_record({**rec, "message": f"line {i} of the stream"})
            if i % 20_000 == 0:
                await pilot.pause()  # let it repaint, as a live tail would
            if i in (50_000, 100_000, 500_000, total):
                marks[i] = tracemalloc.get_traced_memory()[0] / 1e6
        elapsed = time.perf_counter() - t0
        tracemalloc.stop()
    return {"lines": total, "mb_at": marks, "lines_per_s": total / elapsed, "buffer": view.max_lines}


async def bench_keypress(rate: int = 200, presses: int = 60) -> dict:
    platform = FakePlatform(n_extra=200)
    app = CloudfnApp(platform, theme="cloudfn-night", remember_theme=False)
    lat = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.stream_state != "live":
            await pilot.pause(0.01)
        stop = False

        async def stream():
            i = 0
            while not stop:
                i += 1
                fn = f"extra-{i % 200:05d}"
                platform.publish(
                    "invocation.finished",
                    {
                        "id": f"b-{i}",
                        "function_id": f"fx-{i % 200:05d}",
                        "function_name": fn,
                        "runtime": "python",
                        "status": "success",
                        "started_at": "2025-01-02T03:04:05Z",
                        "duration": 3.0,
                    },
                )
                platform.publish(
                    "log",
                    {
                        "time": "2025-01-02T03:04:05Z",
                        "level": "info",
                        "logger": "fn",
                        "function": fn,
                        "message": f"call {i}",
                    },
                )
                await asyncio.sleep(1 / rate)  # no catching up: at most `rate` a second

        task = asyncio.create_task(stream())
        table = app.screen.query_one(FunctionList)
        table.focus()
        await pilot.pause(1.0)
        for k in range(presses):
            before = table.cursor_row
            painted = asyncio.Event()
            t0 = time.perf_counter()
            app.simulate_key("j" if k % 20 < 10 else "k")  # as a terminal would: no waiting for idle
            # A bare yield, not a wait on a message: the time from the key to the repaint is what
            # is measured, and a hook of ours would add to it.
            while table.cursor_row == before:  # noqa: ASYNC110
                await asyncio.sleep(0)
            app.call_after_refresh(painted.set)  # set once the screen has been repainted
            await painted.wait()
            lat.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)
        stop = True
        await task
        seen = app.events_seen
    lat.sort()
    return {
        "rate_per_s": rate,
        "events_seen": seen,
        "p50_ms": statistics.median(lat),
        "p95_ms": lat[int(len(lat) * 0.95) - 1],
        "max_ms": lat[-1],
    }


async def main() -> None:
    start = await bench_start()
    print(
        f"start: hello app {start['hello_s'] * 1000:.0f} ms, console with 1,000 functions "
        f"{start['console_1000_s'] * 1000:.0f} ms, ratio {start['ratio']:.2f}x (goal <= 3x); "
        f"until the whole main screen is complete {start['complete_1000_s'] * 1000:.0f} ms, "
        f"ratio {start['complete_ratio']:.2f}x"
    )
    keys = await bench_keypress()
    print(
        f"key press to repaint while {keys['rate_per_s']} invocations/s stream: p50 {keys['p50_ms']:.1f} ms, "
        f"p95 {keys['p95_ms']:.1f} ms, max {keys['max_ms']:.1f} ms ({keys['events_seen']} events seen)"
    )
    mem = await bench_log_memory()
    marks = ", ".join(f"{n:,} lines {mb:.1f} MB" for n, mb in mem["mb_at"].items())
    print(f"log pane memory (buffer {mem['buffer']:,} lines): {marks}; {mem['lines_per_s']:,.0f} lines/s appended")


if __name__ == "__main__":
    asyncio.run(main())
