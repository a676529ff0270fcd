"""The live panes: metrics, logs, invocation history and alerts. They are fed by the app's one
event-stream worker (`platform.events()`); nothing here polls storage.

The metrics, history and alerts panes are mounted when first shown (most of a session never
opens them, and mounting them cost the start 90 ms), so they take data before they are mounted
and draw it when they are."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import Input, Label, Sparkline, Static

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.widgets.function_list import VimTable
from cloudfn_tui.widgets.log_view import LogView, SearchRequested
from core.alerts import format_value
from core.metrics import duration_summary
from core.models import Alert, AlertRule

WINDOW = 60  # seconds of sparkline


@dataclass
class Series:
    """Per-second buckets over the last WINDOW seconds, plus bounded totals since the start."""

    counts: deque = field(default_factory=lambda: deque([0] * WINDOW, maxlen=WINDOW))
    latency_sum: deque = field(default_factory=lambda: deque([0.0] * WINDOW, maxlen=WINDOW))
    second: int = 0
    invocations: int = 0
    successes: int = 0
    throttles: int = 0
    cold_starts: int = 0
    durations: deque = field(default_factory=lambda: deque(maxlen=2000))

    def _advance(self, now: int) -> None:
        if self.second == 0:
            self.second = now
        gap = min(now - self.second, WINDOW)
        for _ in range(max(0, gap)):
            self.counts.append(0)
            self.latency_sum.append(0.0)
        if now > self.second:
            self.second = now

    def add(self, now: float, status: str, duration: float, cold: bool) -> None:
        self._advance(int(now))
        self.counts[-1] += 1
        self.latency_sum[-1] += duration
        self.invocations += 1
        self.successes += status == "success"
        self.throttles += status == "throttled"
        self.cold_starts += bool(cold)
        if status != "throttled":
            self.durations.append(duration)

    def rates(self, now: float) -> list[float]:
        self._advance(int(now))
        return list(self.counts)

    def latencies(self, now: float) -> list[float]:
        self._advance(int(now))
        return [s / c if c else 0.0 for s, c in zip(self.latency_sum, self.counts, strict=True)]


class Stats:
    """What the console itself saw on the event stream, overall and per function."""

    def __init__(self) -> None:
        self.all = Series()
        self.by_function: dict[str, Series] = {}
        self.by_runtime: dict[str, Series] = {}

    def add(self, rec: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        args = (now, rec.get("status", "success"), float(rec.get("duration") or 0.0), bool(rec.get("cold_start")))
        self.all.add(*args)
        self.by_function.setdefault(rec.get("function_name", "?"), Series()).add(*args)
        self.by_runtime.setdefault(rec.get("runtime", "?"), Series()).add(*args)


def _fmt_ms(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f} ms"


def _fmt_pct(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f}%"


def summary_from(stats: dict[str, Any] | None, series: Series | None) -> dict[str, Any]:
    """Numbers to show: the platform's (a metrics snapshot, or one scope's stats of it) where it
    has them, else what the console itself saw on the event stream."""
    snap = dict(stats or {})
    if isinstance(snap.get("overall"), dict):
        snap = snap["overall"]
    lat = snap.get("duration_ms") or {}
    out: dict[str, Any] = {
        "invocations": snap.get("invocations", snap.get("total_executions")),
        "success_rate": snap.get("success_rate"),
        "p50": lat.get("p50"),
        "p95": lat.get("p95"),
        "p99": lat.get("p99"),
        "throttles": snap.get("throttles"),
        "cold_starts": snap.get("cold_starts"),
    }
    if series is not None and not out["invocations"]:
        # core's definition (nearest rank), so the console's p95 is the server's for the same runs
        lat = duration_summary(series.durations)
        out = {
            "invocations": series.invocations,
            "success_rate": 100.0 * series.successes / series.invocations if series.invocations else None,
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "throttles": series.throttles,
            "cold_starts": series.cold_starts,
        }
    return out


def summary_text(title: str, s: dict[str, Any]) -> Text:
    return Text.assemble(
        (f"{title:<14}", "bold"),
        f"{s.get('invocations') or 0:>6} inv  ",
        ("ok " + _fmt_pct(s.get("success_rate")), "green"),
        "  ",
        f"p50 {_fmt_ms(s.get('p50'))}  p95 {_fmt_ms(s.get('p95'))}  p99 {_fmt_ms(s.get('p99'))}  ",
        (f"thr {s.get('throttles') or 0}", "yellow"),
        "  ",
        f"cold {s.get('cold_starts') or 0}",
    )


def scheduling_text(s: dict[str, Any] | None) -> Text:
    """How the function's invocations found a worker (the snapshot's "scheduling"; issue 19)."""
    if not s:
        return Text("")
    waits = s.get("queue_wait_ms") or {}
    return Text.assemble(
        (f"{'  workers':<14}", "bold"),
        f"started {s.get('workers_started') or 0} (bg {s.get('background_starts') or 0}, "
        f"spare {s.get('spare_starts') or 0}, clones {s.get('clones') or 0}, avg {_fmt_ms(s.get('start_ms_avg'))})  ",
        (f"waits {s.get('queue_waits') or 0}", "yellow"),
        f"  p50 {_fmt_ms(waits.get('p50'))}  p99 {_fmt_ms(waits.get('p99'))}  max {_fmt_ms(waits.get('max'))}",
    )


class MetricsPane(Vertical):
    """Overall and selected-function numbers, with sparklines of rate and latency."""

    # Its own rules here, not in app.tcss: parsed when the pane is first shown.
    DEFAULT_CSS = """
    MetricsPane {
        height: 1fr;
        padding: 0 1;
    }
    .spark-row {
        height: 1;
    }
    .spark-label {
        width: 8;
        color: $text-muted;
    }
    Sparkline {
        width: 1fr;
        height: 1;
    }
    #spark-rate > .sparkline--max-color, #spark-fn-rate > .sparkline--max-color {
        color: $success;
    }
    #spark-latency > .sparkline--max-color {
        color: $warning;
    }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "Metrics"
        self.stats = Stats()
        self.snapshot: dict[str, Any] | None = None
        self.function_name: str | None = None
        self.drawn = False  # mounted: is_mounted turns true only after on_mount

    def compose(self) -> ComposeResult:
        yield Static(id="metrics-all")
        with Horizontal(classes="spark-row"):
            yield Label("rate/s ", classes="spark-label")
            yield Sparkline([0] * WINDOW, id="spark-rate")
        with Horizontal(classes="spark-row"):
            yield Label("latency", classes="spark-label")
            yield Sparkline([0] * WINDOW, id="spark-latency")
        yield Static(id="metrics-fn")
        with Horizontal(classes="spark-row"):
            yield Label("fn rate", classes="spark-label")
            yield Sparkline([0] * WINDOW, id="spark-fn-rate")

    def on_mount(self) -> None:
        self.drawn = True
        self.set_interval(1.0, self.redraw)  # the sparklines' clock: reads memory, not storage
        self.redraw()

    def record(self, rec: dict[str, Any]) -> None:
        self.stats.add(rec)

    def show_function(self, name: str | None) -> None:
        """The selected function's numbers, at once (not at the sparklines' next tick)."""
        if name != self.function_name:
            self.function_name = name
            self.redraw()

    def redraw(self) -> None:
        if not self.drawn:
            return
        now = time.time()
        self.query_one("#metrics-all", Static).update(
            summary_text("all functions", summary_from(self.snapshot, self.stats.all))
        )
        self.query_one("#spark-rate", Sparkline).data = self.stats.all.rates(now)
        self.query_one("#spark-latency", Sparkline).data = self.stats.all.latencies(now)
        name = self.function_name
        series = self.stats.by_function.get(name) if name else None
        fn_stats = ((self.snapshot or {}).get("functions") or {}).get(name) if name else None
        sched = ((self.snapshot or {}).get("scheduling") or {}).get(name) if name else None
        text = summary_text(name or "(no function)", summary_from(fn_stats, series))
        if sched:
            text = Text("\n").join([text, scheduling_text(sched)])
        self.query_one("#metrics-fn", Static).update(text)
        self.query_one("#spark-fn-rate", Sparkline).data = series.rates(now) if series else [0] * WINDOW


class OpenInvocation(Message):
    def __init__(self, invocation_id: str) -> None:
        super().__init__()
        self.invocation_id = invocation_id


HISTORY_COMMANDS = [
    Command("history.open", "enter,o", "open", "Open", "open the invocation: event, result and logs"),
    Command(
        "history.trigger",
        "t",
        "cycle_trigger",
        "Trigger",
        "show only one trigger: manual, http, schedule, async, retry, then all again",
    ),
]
TRIGGER_CYCLE = (None, "manual", "http", "schedule", "async", "retry")


class HistoryTable(VimTable):
    BINDINGS = bindings(HISTORY_COMMANDS)
    MAX_ROWS = 200

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", **kw)
        self.function_filter: str | None = None
        self.trigger_filter: str | None = None
        self.records: deque[dict[str, Any]] = deque(maxlen=self.MAX_ROWS)
        self.drawn = False

    def on_mount(self) -> None:
        self.drawn = True
        self._title()
        for col, width in (
            ("time", 8),
            ("function", 18),
            ("status", 14),
            ("duration", 10),
            ("start", 5),
            ("trigger", 8),
        ):
            self.add_column(col, key=col, width=width)
        self.set_interval(0.4, self.flush)
        self.rebuild()

    def _row(self, rec: dict[str, Any]) -> tuple:
        t = str(rec.get("started_at", ""))[11:19]
        status = rec.get("status", "")
        style = {"success": "green", "failed": "red", "throttled": "yellow"}.get(status, "")
        label = status if status == "success" else (rec.get("error_type") or status)
        return (
            t,
            rec.get("function_name", ""),
            Text(label, style=style),
            f"{float(rec.get('duration') or 0):.1f} ms",
            "cold" if rec.get("cold_start") else "warm",
            rec.get("trigger") or "manual",
        )

    def set_records(self, records: list[dict[str, Any]]) -> None:
        """Newest first."""
        self.records = deque(records[: self.MAX_ROWS], maxlen=self.MAX_ROWS)
        self.rebuild()

    def add_record(self, rec: dict[str, Any]) -> None:
        """Batched: the table is rebuilt at most a few times a second, newest on top."""
        self.records.appendleft(rec)
        self._pending_flush = True

    def flush(self) -> None:
        if getattr(self, "_pending_flush", False):
            self._pending_flush = False
            self.rebuild()

    def rebuild(self) -> None:
        if not self.drawn:  # on_mount draws the records
            return
        keep = self.cursor_row
        self.clear()
        for rec in self.records:
            if self.function_filter and rec.get("function_name") != self.function_filter:
                continue
            if self.trigger_filter and (rec.get("trigger") or "manual") != self.trigger_filter:
                continue
            # Every attempt of an asynchronous invocation keeps its id: one row per attempt.
            key = f"{rec['id']}@{rec.get('started_at', '')}"
            if key in self.rows:
                continue
            self.add_row(*self._row(rec), key=key)
        if self.row_count and keep:
            self.move_cursor(row=min(keep, self.row_count - 1))

    def action_open(self) -> None:
        if self.row_count:
            key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
            if key is not None:  # every row is added with a key
                self.post_message(OpenInvocation(key.split("@", 1)[0]))

    def _title(self) -> None:
        self.border_title = "History" + (f" · {self.trigger_filter}" if self.trigger_filter else "")
        self.border_subtitle = "t: trigger"

    def set_trigger(self, trigger: str | None) -> None:
        self.trigger_filter = trigger
        self._title()
        self.rebuild()

    def action_cycle_trigger(self) -> None:
        i = TRIGGER_CYCLE.index(self.trigger_filter) if self.trigger_filter in TRIGGER_CYCLE else 0
        self.set_trigger(TRIGGER_CYCLE[(i + 1) % len(TRIGGER_CYCLE)])


class LogsPane(Vertical):
    """The log tail plus its search box."""

    def compose(self) -> ComposeResult:
        yield LogView(id="log-view")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def _search_box(self) -> Input | None:
        for box in self.query("#log-search").results(Input):
            return box
        return None

    def on_search_requested(self, message: SearchRequested) -> None:
        box = self._search_box()
        if box is None:  # made when first asked for: a hidden box costs the start its styling
            box = Input(
                self.view.search_text, placeholder="search logs (enter to apply, esc to close)", id="log-search"
            )
            self.mount(box, before=self.view)
        else:
            box.display = True
            box.value = self.view.search_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            event.stop()
            self.view.search_text = event.value.strip()
            event.input.display = False
            self.view.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            event.stop()
            self.view.search_text = event.value.strip()

    def close_search(self) -> bool:
        box = self._search_box()
        if box is not None and box.display:
            box.display = False
            self.view.focus()
            return True
        return False


ALERT_COMMANDS = [
    Command("alerts.new", "n", "new_rule", "New rule", "create an alert rule"),
    Command("alerts.edit", "enter,e", "edit_rule", "Edit rule", "edit the selected rule"),
    Command("alerts.delete", "d,delete", "delete_rule", "Delete rule", "delete the selected rule (asks first)"),
]


class EditRule(Message):
    def __init__(self, rule: AlertRule | None) -> None:
        super().__init__()
        self.rule = rule


class DeleteRule(Message):
    def __init__(self, rule: AlertRule) -> None:
        super().__init__()
        self.rule = rule


class AlertsTable(VimTable):
    BINDINGS = bindings(ALERT_COMMANDS)

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", **kw)
        self.rules: dict[str, AlertRule] = {}
        self.states: dict[str, Alert] = {}
        self.drawn = False

    def on_mount(self) -> None:
        self.drawn = True
        for col in ("rule", "condition", "scope", "state", "value"):
            self.add_column(col, key=col)
        self.rebuild()

    def set_rules(self, rules: list[AlertRule]) -> None:
        self.rules = {r.name: r for r in rules}
        self.rebuild()

    def set_state(self, alert: Alert) -> None:
        self.states[alert.rule] = alert
        self.rebuild()

    def rebuild(self) -> None:
        if not self.drawn:  # on_mount draws the rules
            return
        keep = self.cursor_row
        self.clear()
        for name, rule in sorted(self.rules.items()):
            state = self.states.get(name)
            st = state.state if state else "inactive"
            style = {"firing": "bold red", "pending": "yellow", "resolved": "green"}.get(st, "dim")
            value = "" if not state or state.value is None else format_value(rule.metric, state.value)
            cond = f"{rule.metric} {rule.comparison} {rule.threshold:g}" + ("" if rule.enabled else " (off)")
            self.add_row(name, cond, rule.scope, Text(st, style=style), value, key=name)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))

    def selected(self) -> AlertRule | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return self.rules.get(key) if key is not None else None

    def action_new_rule(self) -> None:
        self.post_message(EditRule(None))

    def action_edit_rule(self) -> None:
        rule = self.selected()
        if rule:
            self.post_message(EditRule(rule))

    def action_delete_rule(self) -> None:
        rule = self.selected()
        if rule:
            self.post_message(DeleteRule(rule))


class AlertsPane(Vertical):
    DEFAULT_CSS = """
    #alerts-firing {
        height: auto;
        max-height: 4;
        padding: 0 1;
    }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.table = AlertsTable(id="alerts-table")
        self.firing: list[Alert] = []
        self.drawn = False

    def compose(self) -> ComposeResult:
        yield self.table
        yield Static("", id="alerts-firing")

    def on_mount(self) -> None:
        self.drawn = True
        self.table.border_title = "Alert rules · n new · e edit · d delete"
        self.show_firing(self.firing)

    def show_firing(self, alerts: list[Alert]) -> None:
        firing = self.firing = [a for a in alerts if a.state == "firing"]
        if not self.drawn:
            return
        if not firing:
            self.query_one("#alerts-firing", Static).update(Text("no alert firing", style="green"))
            return
        t = Text()
        for a in firing:
            t.append("● ", style="bold red")
            t.append(f"{a.rule}: {a.summary or a.state}\n")
        self.query_one("#alerts-firing", Static).update(t)
