"""A function's triggers: its endpoint, rate limit, schedules with their next runs, and how its
asynchronous invocations are retried."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.screens.modals import Dialog
from cloudfn_tui.triggers_text import async_line, endpoint_line, rate_line, schedule_lines
from core.models import FunctionTriggers


class TriggersScreen(Dialog):
    """Dismisses with "configure" when the user asks to edit them, else None."""

    COMMANDS_TABLE = [
        Command(
            "triggers.configure", "c", "configure", "Configure", "edit public, rate limit, schedules and async settings"
        ),
        Command("triggers.close", "escape", "dismiss_none", "Close", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, triggers: FunctionTriggers) -> None:
        super().__init__()
        self.triggers = triggers

    def compose(self) -> ComposeResult:
        t = self.triggers
        body = Text("\n").join(
            [
                Text("endpoint", style="bold"),
                Text(endpoint_line(t)),
                Text(""),
                Text("rate limit", style="bold"),
                Text(rate_line(t)),
                Text(""),
                Text("schedules", style="bold"),
                *(Text(line) for line in schedule_lines(t)),
                Text(""),
                Text("asynchronous invocation", style="bold"),
                Text(async_line(t.async_settings)),
            ]
        )
        with Vertical(classes="dialog wide"):
            yield Label(Text(f"Triggers of {t.function_name} — c configures · esc closes", style="bold"))
            with VerticalScroll(id="triggers-body"):
                yield Static(body, id="triggers-text")

    def action_configure(self) -> None:
        self.dismiss("configure")
