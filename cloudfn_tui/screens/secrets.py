"""The secrets screen: the names, sizes, when set and who holds them (never a value), a masked
input to set one, and delete (asks first). Reached by `s`, `:secrets` or the palette."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.output import when
from cloudfn_tui.screens.modals import ConfirmScreen
from cloudfn_tui.widgets.footer import KeyFooter
from cloudfn_tui.widgets.function_list import VimTable
from cloudfn_tui.widgets.header import ConsoleHeader
from core.errors import CloudfnError
from core.secrets import MIN_MASK_CHARS, name_problem

if TYPE_CHECKING:
    from cloudfn_tui.app import CloudfnApp


class SecretsScreen(Screen):
    app: CloudfnApp  # the console's own, with its platform: for the type checker

    DEFAULT_CSS = """
    #secrets-screen {
        padding: 0 1;
    }
    #secrets-table {
        height: 1fr;
    }
    #secret-form {
        height: auto;
    }
    #secret-form > Vertical {
        height: auto;
        width: 1fr;
        margin-right: 1;
    }
    #secret-note {
        height: auto;
    }
    """
    COMMANDS_TABLE = [
        Command("secrets.back", "escape", "back", "Back", "back to the functions"),
        Command("secrets.new", "n", "new_secret", "Set", "set a secret: a name, then the value (masked)"),
        Command("secrets.edit", "e,enter", "edit_secret", "New value", "set a new value for the selected secret"),
        Command("secrets.delete", "d,delete", "delete_secret", "Delete", "delete the selected secret (asks first)"),
        Command("secrets.refresh", "r", "refresh", "Refresh", "reload the list", show=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="secrets-screen"):
            yield Label(Text("Secrets — write-only: values are never shown, only set", style="bold"))
            yield VimTable(id="secrets-table", cursor_type="row")
            with Horizontal(id="secret-form"):
                with Vertical():
                    yield Label("name")
                    yield Input(placeholder="db-password", id="secret-name")
                with Vertical():
                    yield Label("value (hidden; enter sets it)")
                    yield Input(password=True, placeholder="value", id="secret-value")
            yield Static("", id="secret-note", classes="dim")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#secrets-table", VimTable)
        table.add_columns("name", "size", "set", "used by")
        self.note("n: set a secret · e/enter: new value for the selected one · d: delete · esc: back")
        self.refresh_list()
        table.focus()

    def note(self, text: str, error: bool = False) -> None:
        self.query_one("#secret-note", Static).update(Text(text, style="bold red" if error else ""))

    @work(exclusive=True, group="secrets-list")
    async def refresh_list(self) -> None:
        try:
            items = await self.app.platform.list_secrets()
        except CloudfnError as exc:
            self.note(exc.message, error=True)
            return
        table = self.query_one("#secrets-table", VimTable)
        table.clear()
        for s in items:
            table.add_row(s.name, f"{s.size} B", when(s.set_at), ", ".join(s.used_by) or "-", key=s.name)
        if not items:
            self.note("no secrets yet: n sets one (the value is typed hidden)")

    def selected(self) -> str | None:
        table = self.query_one("#secrets-table", VimTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_back(self) -> None:
        if self.focused is not None and isinstance(self.focused, Input):
            self._clear_inputs()
            self.query_one("#secrets-table").focus()
            return
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.refresh_list()

    def action_new_secret(self) -> None:
        self._clear_inputs()
        self.query_one("#secret-name", Input).focus()

    def action_edit_secret(self) -> None:
        name = self.selected()
        if name is None:
            self.action_new_secret()
            return
        self.query_one("#secret-name", Input).value = name
        self.query_one("#secret-value", Input).focus()

    def _clear_inputs(self) -> None:
        for ident in ("#secret-name", "#secret-value"):
            self.query_one(ident, Input).value = ""

    @on(Input.Submitted, "#secret-name")
    def _name_entered(self) -> None:
        why = name_problem(self.query_one("#secret-name", Input).value.strip())
        if why:
            self.note(f"name: {why}", error=True)
            return
        self.query_one("#secret-value", Input).focus()

    @on(Input.Submitted, "#secret-value")
    async def _value_entered(self) -> None:
        name = self.query_one("#secret-name", Input).value.strip()
        value_box = self.query_one("#secret-value", Input)
        value = value_box.value
        value_box.value = ""  # the typed value leaves the screen at once, set or not
        try:
            info = await self.app.platform.set_secret(name, value)
        except CloudfnError as exc:
            self.note(exc.message.replace("\n", " "), error=True)
            return
        self._clear_inputs()
        held = f"; the workers of {', '.join(info.used_by)} were replaced" if info.used_by else ""
        short = f" (shorter than {MIN_MASK_CHARS} characters: not masked in logs)" if info.size < MIN_MASK_CHARS else ""
        self.note(f"set {info.name} ({info.size} bytes){held}{short}")
        self.query_one("#secrets-table").focus()
        self.refresh_list()

    @work(group="secrets-write")
    async def action_delete_secret(self) -> None:
        name = self.selected()
        if name is None:
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(f"Delete secret {name}?", "Refused while a function holds it.")
        )
        if not ok:
            return
        try:
            await self.app.platform.delete_secret(name)
        except CloudfnError as exc:
            self.note(exc.message, error=True)
            return
        self.note(f"deleted {name}")
        self.refresh_list()
