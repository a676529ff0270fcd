"""List dialogs: the versions of a function (roll back), its saved test events (pick, delete),
and one invocation from the history."""

from __future__ import annotations

import difflib

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
from core.models import Function, InvocationRecord, SavedEvent


def code_diff(old: str, new: str, a: str, b: str) -> Text:
    out = Text()
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), a, b, lineterm="", n=2):
        style = (
            "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith("@@")
            else "dim"
        )
        out.append(line + "\n", style=style)
    return out or Text("(same code)", style="dim")


UNITS = {"timeout": " s", "memory": " MB"}


def setting_changes(old: Function, new: Function) -> list[tuple[str, object, object]]:
    """(field, old value, new value) of every setting but the code that differs; the
    environment per variable (`environment.KEY`, None for absent). What a rollback reverts is
    every field an update may set (FunctionPatch), so those are compared."""
    from core.models import FunctionPatch

    changes: list[tuple[str, object, object]] = []
    for field in FunctionPatch.model_fields:
        if field in ("code", "name"):
            continue
        a, b = getattr(old, field, None), getattr(new, field, None)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a or {}, b or {}
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    changes.append((f"{field}.{key}", a.get(key), b.get(key)))
        else:
            changes.append((field, a, b))
    return changes


def _shown(field: str, value: object) -> str:
    if value is None:
        return "(unset)"
    return f"{value}{UNITS.get(field, '')}"


def settings_diff(old: Function, new: Function, a: str, b: str) -> Text:
    changes = setting_changes(old, new)
    if not changes:
        return Text("(same settings)\n", style="dim")
    out = Text(f"--- {a}\n+++ {b}\n", style="dim")
    for field, before, after in changes:
        if before is not None:
            out.append(f"-{field}: {_shown(field, before)}\n", style="red")
        if after is not None:
            out.append(f"+{field}: {_shown(field, after)}\n", style="green")
    return out


def describe_changes(old: Function, new: Function) -> str:
    """What became different, for a toast: `code, timeout 30 → 5 s, environment +MODE −DEBUG`."""
    parts = ["code"] if old.code != new.code else []
    env_added: list[str] = []
    env_removed: list[str] = []
    env_changed: list[str] = []
    for field, before, after in setting_changes(old, new):
        if "." in field:
            key = field.split(".", 1)[1]
            (env_added if before is None else env_removed if after is None else env_changed).append(key)
        else:
            parts.append(f"{field} {_shown(field, before)} → {_shown(field, after)}")
    if env_added or env_removed or env_changed:
        env = [f"+{k}" for k in env_added] + [f"−{k}" for k in env_removed] + [f"~{k}" for k in env_changed]
        parts.append("environment " + " ".join(env))
    return ", ".join(parts) if parts else "nothing changed"


class VersionsScreen(Dialog):
    """Dismisses with the version number to roll back to, or None."""

    COMMANDS_TABLE = [
        Command("versions.rollback", "enter,r", "rollback", "Roll back", "roll back to the selected version"),
        Command("versions.close", "escape", "dismiss_none", "Close", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, current: Function, versions: list[Function]) -> None:
        super().__init__()
        self.current = current
        self.versions = sorted(versions, key=lambda f: f.version, reverse=True)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label(Text(f"Versions of {self.current.name} — enter rolls back (as a new version)", style="bold"))
            with Horizontal():
                yield VimTable(id="versions-table", cursor_type="row")
                with VerticalScroll(id="versions-diff"):
                    yield Static(id="versions-diff-body")

    def on_mount(self) -> None:
        table = self.query_one("#versions-table", VimTable)
        table.add_columns("v", "updated", "vs current")
        for f in self.versions:
            mark = " (current)" if f.version == self.current.version else ""
            table.add_row(
                f"{f.version}{mark}", f.updated_at.strftime("%m-%d %H:%M"), self._against_current(f), key=str(f.version)
            )
        table.focus()
        self._show(0)

    def _against_current(self, f: Function) -> str:
        """What rolling back to `f` would change (short: the list is 40 columns wide)."""
        parts = ["code"] if f.code != self.current.code else []
        parts += ["settings"] if setting_changes(self.current, f) else []
        return "+".join(parts) or "same"

    def _selected(self) -> Function | None:
        table = self.query_one("#versions-table", VimTable)
        if not table.row_count:
            return None
        return self.versions[table.cursor_row]

    def _show(self, _row: int) -> None:
        f = self._selected()
        body = self.query_one("#versions-diff-body", Static)
        if f is None:
            body.update("no versions")
            return
        a, b = f"v{self.current.version} (current)", f"v{f.version}"
        body.update(
            Group(
                Text("settings", style="bold"),
                settings_diff(self.current, f, a, b),
                Text("code", style="bold"),
                code_diff(self.current.code, f.code, a, b),
            )
        )

    def on_data_table_row_highlighted(self, event) -> None:
        self._show(event.cursor_row)

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_rollback()

    def action_rollback(self) -> None:
        f = self._selected()
        if f is None or f.version == self.current.version:
            self.notify("That is the current version.", severity="warning")
            return
        self.dismiss(f.version)


class SavedEventsScreen(Dialog):
    """Dismisses with ("pick", SavedEvent), ("delete", SavedEvent) or None."""

    COMMANDS_TABLE = [
        Command("saved.pick", "enter", "pick", "Use", "load the saved event into the event editor"),
        Command("saved.delete", "d,delete", "delete", "Delete", "delete the saved event (asks first)"),
        Command("saved.close", "escape", "dismiss_none", "Close", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, fn: Function, events: list[SavedEvent]) -> None:
        super().__init__()
        self.fn = fn
        self.events = sorted(events, key=lambda e: e.name)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label(Text(f"Saved events of {self.fn.name} — enter uses · d deletes · esc closes", style="bold"))
            with Horizontal():
                yield VimTable(id="saved-table", cursor_type="row")
                with VerticalScroll(id="saved-preview"):
                    yield Static(id="saved-preview-body")

    def on_mount(self) -> None:
        table = self.query_one("#saved-table", VimTable)
        table.add_columns("name", "last result")
        for e in self.events:
            last = e.last_result
            status = (
                Text("–", style="dim")
                if last is None
                else (
                    Text("✓", style="green")
                    if last.get("success")
                    else Text("✗ " + str(last.get("error_type") or ""), style="red")
                )
            )
            table.add_row(e.name, status, key=e.name)
        table.focus()
        self._show()

    def _selected(self) -> SavedEvent | None:
        table = self.query_one("#saved-table", VimTable)
        return self.events[table.cursor_row] if table.row_count else None

    def _show(self) -> None:
        e = self._selected()
        body = self.query_one("#saved-preview-body", Static)
        if e is None:
            body.update(Text("No saved events yet. In the event editor, ctrl+t saves the current one.", style="dim"))
            return
        parts: list[RenderableType] = [
            Text("event", style="bold"),
            Syntax(pretty(e.event), "json", theme="ansi_dark", background_color="default"),
        ]
        if e.last_result is not None:
            parts += [
                Text("last result", style="bold"),
                Syntax(pretty(e.last_result), "json", theme="ansi_dark", background_color="default"),
            ]
        body.update(Group(*parts))

    def on_data_table_row_highlighted(self, event) -> None:
        self._show()

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_pick()

    def action_pick(self) -> None:
        e = self._selected()
        if e:
            self.dismiss(("pick", e))

    def action_delete(self) -> None:
        e = self._selected()
        if e:
            self.dismiss(("delete", e))


class InvocationScreen(Dialog):
    """One invocation from the history: its event, result and logs."""

    COMMANDS_TABLE = [
        Command(
            "invocation.replay", "ctrl+l", "replay", "Load event", "load this invocation's event into the event editor"
        ),
        Command("invocation.close", "escape", "dismiss_none", "Close", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, record: InvocationRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        r = self.record
        status_style = {"success": "bold green", "failed": "bold red", "throttled": "bold yellow"}[r.status]
        head = Text.assemble(
            (f"{r.function_name} v{r.function_version}", "bold"),
            "  ",
            (r.status + (f" · {r.error_type}" if r.error_type else ""), status_style),
            "  ",
            f"{r.duration:.1f} ms  {'cold' if r.cold_start else 'warm'}  {r.memory_used:.1f} MB  ",
            (r.started_at.strftime("%Y-%m-%d %H:%M:%S"), "dim"),
        )
        parts: list[RenderableType] = [
            head,
            Text(r.id, style="dim"),
            Text(""),
            Text("event" + (" (truncated)" if r.event_truncated else ""), style="bold"),
            Syntax(pretty(r.event), "json", theme="ansi_dark", background_color="default", word_wrap=True),
        ]
        if r.status == "success":
            parts += [
                Text("result" + (" (truncated)" if r.result_truncated else ""), style="bold"),
                Syntax(pretty(r.result), "json", theme="ansi_dark", background_color="default", word_wrap=True),
            ]
        else:
            parts += [Text("error", style="bold"), Text(r.error, style="red")]
        if r.logs:
            parts += [
                Text("logs" + (" (truncated)" if r.logs_truncated else ""), style="bold"),
                Text(r.logs.rstrip(), style="dim"),
            ]
        with Vertical(classes="dialog wide tall"):
            yield Label(Text("Invocation — ctrl+l loads its event · esc closes", style="bold"))
            with VerticalScroll(id="invocation-body"):
                yield Static(Group(*parts))

    def action_replay(self) -> None:
        self.dismiss(("replay", self.record))
