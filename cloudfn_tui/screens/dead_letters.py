"""The dead letters: asynchronous invocations that failed for good, with their event and every
attempt's error; replay or delete one. Opened with `D` or `:dead` from the main screen."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Static

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.screens.modals import Dialog
from cloudfn_tui.widgets.function_list import VimTable
from cloudfn_tui.widgets.result_view import pretty
from core.models import DeadLetter


class DeadLettersScreen(Dialog):
    """Dismisses with ("replay", DeadLetter), ("delete", DeadLetter) or None."""

    COMMANDS_TABLE = [
        Command("dead.replay", "r,enter", "replay", "Replay", "queue the dead letter again (same id, fresh retries)"),
        Command("dead.delete", "d,delete", "delete", "Delete", "delete the dead letter (asks first)"),
        Command("dead.close", "escape", "dismiss_none", "Close", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)
    DEFAULT_CSS = """
    DeadLettersScreen #dead-table { width: 1fr; min-width: 28; }
    DeadLettersScreen #dead-preview { width: 2fr; padding-left: 1; }
    """

    def __init__(self, letters: list[DeadLetter], scope: str | None = None) -> None:
        super().__init__()
        self.letters = letters
        self.scope = scope

    def compose(self) -> ComposeResult:
        whose = f" of {self.scope}" if self.scope else ""
        with Vertical(classes="dialog wide tall"):
            yield Label(Text(f"Dead letters{whose} — r replays · d deletes · esc closes", style="bold"))
            with Horizontal():
                yield VimTable(id="dead-table", cursor_type="row")
                with VerticalScroll(id="dead-preview"):
                    yield Static(id="dead-preview-body")

    def on_mount(self) -> None:
        table = self.query_one("#dead-table", VimTable)
        table.add_columns("function", "dead at", "tries")
        for d in self.letters:
            table.add_row(d.function_name, d.dead_at.astimezone().strftime("%H:%M:%S"), str(d.attempts), key=d.id)
        table.focus()
        self._show()

    def _selected(self) -> DeadLetter | None:
        table = self.query_one("#dead-table", VimTable)
        return self.letters[table.cursor_row] if table.row_count else None

    def _show(self) -> None:
        d = self._selected()
        body = self.query_one("#dead-preview-body", Static)
        if d is None:
            body.update(
                Text(
                    "No dead letters. An asynchronous invocation lands here when it exhausts its retries, "
                    "ages out, or its function is deleted.",
                    style="dim",
                )
            )
            return
        parts: list[RenderableType] = [
            Text(f"{d.id}  dead {d.dead_at.astimezone():%Y-%m-%d %H:%M:%S}", style="dim"),
            Text(d.reason, style="bold red"),
            Text("event", style="bold"),
            Syntax(pretty(d.event), "json", theme="ansi_dark", background_color="default"),
            Text("attempts", style="bold"),
        ]
        for e in d.errors:
            when = e.time.astimezone().strftime("%H:%M:%S")
            parts.append(Text(f"{e.attempt}. {when} {e.error_type or 'error'}: {e.error}"))
        if not d.errors:
            parts.append(Text("none ran", style="dim"))
        body.update(Group(*parts))

    def on_data_table_row_highlighted(self, event) -> None:
        self._show()

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_replay()

    def action_replay(self) -> None:
        d = self._selected()
        if d:
            self.dismiss(("replay", d))

    def action_delete(self) -> None:
        d = self._selected()
        if d:
            self.dismiss(("delete", d))
