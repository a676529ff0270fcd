"""The full metrics screen: every function and every runtime, with a rate and latency plot each."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Label, Static

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.widgets.footer import KeyFooter
from cloudfn_tui.widgets.function_list import VimTable
from cloudfn_tui.widgets.header import ConsoleHeader
from cloudfn_tui.widgets.live import Stats, summary_from, summary_text

BARS = "▁▂▃▄▅▆▇█"

if TYPE_CHECKING:
    from cloudfn_tui.app import CloudfnApp


def spark(values: list[float], width: int = 30) -> str:
    values = values[-width:]
    top = max(values) if values else 0
    if not top:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1)))] for v in values)


def _num(v: Any, fmt: str) -> str:
    return "–" if v is None else format(float(v), fmt)


def cluster_text(snapshot: dict[str, Any]) -> Text | None:
    """Cluster mode: each node's health, load and capacity, and what each gateway served (the
    counts above are the whole cluster's); None on one machine."""
    nodes = snapshot.get("nodes")
    if not isinstance(nodes, list):
        return None
    out = Text("cluster nodes  ", style="bold")
    for n in nodes:
        if not isinstance(n, dict):
            continue
        health = str(n.get("health", "?"))
        out.append(f"{n.get('node', '?')} ", style="bold")
        out.append(health, style="green" if health == "up" else "red")
        out.append(f" {n.get('load', 0)}/{n.get('capacity', 0)} served {n.get('served', 0)}   ")
    gateways = snapshot.get("gateways")
    if isinstance(gateways, dict) and gateways:
        out.append("\ngateways       ", style="bold")
        out.append("   ".join(f"{g} {c}" for g, c in sorted(gateways.items())))
    return out


class MetricsScreen(Screen):
    app: CloudfnApp  # the console's own, with its platform: for the type checker

    # Here, not in app.tcss: parsed when the screen first opens, not while the console starts.
    DEFAULT_CSS = """
    #metrics-screen {
        padding: 0 1;
    }
    #metrics-overall {
        height: auto;
        margin: 1 0;
    }
    #metrics-cluster {
        height: auto;
        margin: 0 0 1 0;
    }
    #metrics-functions {
        height: 2fr;
    }
    #metrics-runtimes {
        height: 1fr;
    }
    """
    COMMANDS_TABLE = [
        Command("metrics.back", "escape,m", "app.pop_screen", "Back", "back to the functions"),
        Command("metrics.refresh", "r", "refresh", "Refresh", "fetch a new metrics snapshot"),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, stats: Stats, snapshot: dict[str, Any] | None) -> None:
        super().__init__()
        self.stats = stats
        self.snapshot = snapshot or {}

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="metrics-screen"):
            yield Static(id="metrics-overall")
            yield Static(id="metrics-cluster")
            yield Label(Text("per function — rate and latency over the last 60 s", style="bold"))
            yield VimTable(id="metrics-functions", cursor_type="row")
            yield Label(Text("per runtime", style="bold"))
            yield VimTable(id="metrics-runtimes", cursor_type="row")
        yield KeyFooter()

    def on_mount(self) -> None:
        for ident in ("#metrics-functions", "#metrics-runtimes"):
            t = self.query_one(ident, VimTable)
            t.add_columns(
                "name", "inv", "ok %", "p50 ms", "p95 ms", "p99 ms", "thr", "cold", "rate (60 s)", "latency (60 s)"
            )
        self.redraw()
        self.set_interval(1.0, self.redraw)
        self.query_one("#metrics-functions").focus()

    def _per(self, kind: str) -> dict[str, dict[str, Any]]:
        raw = self.snapshot.get(kind) or {}
        if isinstance(raw, list):
            raw = {str(x.get("name") or x.get("function") or x.get("runtime")): x for x in raw if isinstance(x, dict)}
        return raw if isinstance(raw, dict) else {}

    def redraw(self) -> None:
        now = time.time()
        self.query_one("#metrics-overall", Static).update(
            summary_text("all functions", summary_from(self.snapshot, self.stats.all))
        )
        nodes = cluster_text(self.snapshot)
        box = self.query_one("#metrics-cluster", Static)
        box.display = nodes is not None
        if nodes is not None:
            box.update(nodes)
        for ident, series_map, snap in (
            ("#metrics-functions", self.stats.by_function, self._per("functions") or self._per("per_function")),
            ("#metrics-runtimes", self.stats.by_runtime, self._per("runtimes") or self._per("per_runtime")),
        ):
            table = self.query_one(ident, VimTable)
            keep = table.cursor_row
            table.clear()
            for name in sorted(set(series_map) | set(snap)):
                series = series_map.get(name)
                s = summary_from(snap.get(name), series)
                rates = series.rates(now) if series else [0.0] * 60
                lats = series.latencies(now) if series else [0.0] * 60
                table.add_row(
                    name,
                    str(s.get("invocations") or 0),
                    _num(s.get("success_rate"), ".1f"),
                    _num(s.get("p50"), ".1f"),
                    _num(s.get("p95"), ".1f"),
                    _num(s.get("p99"), ".1f"),
                    str(s.get("throttles") or 0),
                    str(s.get("cold_starts") or 0),
                    Text(spark(rates), style="green"),
                    Text(spark(lats), style="yellow"),
                )
            if table.row_count:
                table.move_cursor(row=min(keep, table.row_count - 1))

    async def action_refresh(self) -> None:
        try:
            self.snapshot = await self.app.platform.metrics()
        except Exception as exc:  # the platform may not offer metrics yet
            self.notify(f"metrics unavailable: {exc}", severity="warning")
        self.redraw()
