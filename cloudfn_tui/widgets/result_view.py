"""The result of an invocation: status, timings, the pretty JSON, the logs, an error's stack, and
a diff against the last result of the same saved event."""

from __future__ import annotations

import difflib
import json
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from cloudfn_tui.keymap import Command, bindings
from core.models import InvokeResult

RESULT_COMMANDS = [
    Command(
        "result.bottom", "G,end", "scroll_end", "Bottom", "scroll the result to its end", show=False, palette=False
    ),
    Command("result.top", "g,home", "scroll_home", "Top", "scroll the result to its start", show=False, palette=False),
    Command("result.down", "j", "scroll_down", "Down", "scroll the result down a line", show=False, palette=False),
    Command("result.up", "k", "scroll_up", "Up", "scroll the result up a line", show=False, palette=False),
    Command(
        "result.page_down",
        "pagedown,space",
        "page_down",
        "Page down",
        "scroll the result a page down",
        show=False,
        palette=False,
    ),
    Command(
        "result.page_up", "pageup,b", "page_up", "Page up", "scroll the result a page up", show=False, palette=False
    ),
]


def pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def result_doc(result: InvokeResult) -> dict[str, Any]:
    """What a saved event keeps as its last result (and what the diff compares)."""
    if result.success:
        return {"success": True, "result": result.result}
    return {
        "success": False,
        "error_type": result.error_type.value if result.error_type else None,
        "error": result.error,
    }


def diff_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    a = pretty(before).splitlines()
    b = pretty(after).splitlines()
    return list(difflib.unified_diff(a, b, "last", "now", lineterm="", n=1))


def _heading(text: str) -> Text:
    return Text(text, style="bold")


def render_result(
    result: InvokeResult, previous: dict[str, Any] | None = None, theme: str = "ansi_dark"
) -> RenderableType:
    """The result, then (if `previous`) the diff against the saved event's last run."""
    diff = render_diff(result, previous)
    body = render_body(result, theme)
    return body if diff is None else Group(body, diff)


def render_diff(result: InvokeResult, previous: dict[str, Any] | None) -> RenderableType | None:
    if previous is None:
        return None
    lines = diff_lines(previous, result_doc(result))
    if not lines:
        return Text("= same as the last run of this saved event", style="green")
    parts: list[RenderableType] = [_heading("diff against the last run of this saved event")]
    for line in lines[2:]:
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "dim")
        parts.append(Text(line, style=style))
    return Group(*parts)


def render_body(result: InvokeResult, theme: str = "ansi_dark") -> RenderableType:
    parts: list[RenderableType] = []
    if result.success:
        status = Text.assemble(("✓ success", "bold green"))
    else:
        kind = result.error_type.value if result.error_type else "Error"
        status = Text.assemble(("✗ ", "bold red"), (kind, "bold red"))
    start = "cold" if result.cold_start else "warm"
    init = f" (init {result.init_duration:.0f} ms)" if result.cold_start and result.init_duration else ""
    parts.append(
        Text.assemble(
            status,
            " · ",
            (f"{result.duration_ms:.1f} ms", "bold"),
            " · ",
            (start + init, "yellow" if result.cold_start else "cyan"),
            " · ",
            f"{result.memory_used:.1f} MB",
        )
    )
    if result.success:
        parts.append(Syntax(pretty(result.result), "json", theme=theme, background_color="default", word_wrap=True))
    else:
        parts.append(Text(result.error, style="red"))
        if result.stack:
            parts.append(_heading("stack, innermost first (ctrl+g: go to the line)"))
            for i, frame in enumerate(result.stack):
                where = f"{frame.file}:{frame.line}" + (f":{frame.column}" if frame.column else "")
                marker = "→ " if i == 0 else "  "
                parts.append(
                    Text.assemble(
                        (marker, "bold red"),
                        (where, "bold" if i == 0 else ""),
                        (f"  in {frame.function}" if frame.function else "", "dim"),
                    )
                )
    if result.logs:
        parts.append(_heading("logs"))
        parts.append(Text(result.logs.rstrip("\n"), style="dim"))
    ident = (
        f"{result.function_name} v{result.function_version} · {result.invocation_id}"
        if result.function_name
        else result.invocation_id
    )
    parts.append(Text(ident, style="dim"))
    return Group(*parts)


class ResultView(VerticalScroll):
    """Scrollable; `show()` replaces what it shows."""

    can_focus = True
    BINDINGS = bindings(RESULT_COMMANDS)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "Result"
        self.result: InvokeResult | None = None
        self.previous: dict[str, Any] | None = None

    def compose(self):
        yield Static(Text("Invoke with ctrl+enter, ctrl+r or F5.", style="dim"), id="result-body")

    @property
    def diff(self) -> Static | None:
        """The saved-event diff: a widget of its own, so F4 can scroll to it; made when first
        needed (a widget less to mount while the console starts)."""
        for widget in self.query("#result-diff").results(Static):
            return widget
        return None

    @property
    def has_diff(self) -> bool:
        diff = self.diff
        return diff is not None and diff.display

    def show(self, result: InvokeResult, previous: dict[str, Any] | None = None) -> None:
        self.result = result
        self.previous = previous
        self.query_one("#result-body", Static).update(render_body(result))
        diff = render_diff(result, previous)
        widget = self.diff
        if widget is None and diff is not None:
            widget = Static(id="result-diff")
            self.mount(widget)
        if widget is not None:
            widget.update(diff or "")
            widget.display = diff is not None
        self.border_title = (
            "Result · ✓" if result.success else f"Result · ✗ {result.error_type.value if result.error_type else ''}"
        )
        self.border_subtitle = "F4 diff · G end" if diff is not None else ""
        self.set_class(not result.success, "-error")
        self.scroll_home(animate=False)

    def show_message(self, text: str, style: str = "dim") -> None:
        self.result = None  # ctrl+g must not jump to the line of a result no longer shown
        self.previous = None
        self.query_one("#result-body", Static).update(Text(text, style=style))
        if self.diff is not None:
            self.diff.display = False
        self.border_title = "Result"
        self.border_subtitle = ""
        self.remove_class("-error")

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_relative(y=1, animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_relative(y=-1, animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def show_diff(self) -> bool:
        """Scroll the diff into view; False when the result has none."""
        diff = self.diff
        if diff is None or not diff.display:  # has_diff, spelled out for the type checker
            return False
        self.scroll_to_widget(diff, animate=False, top=True)
        return True

    @property
    def failing_frame(self):
        if self.result is None or not self.result.stack:
            return None
        return self.result.stack[0]

    @property
    def text(self) -> str:
        """The rendered result as plain text (tests, copy)."""
        import io

        from rich.console import Console

        out = io.StringIO()
        console = Console(width=200, color_system=None, file=out)
        console.print(render_result(self.result, self.previous) if self.result else "")
        return out.getvalue()
