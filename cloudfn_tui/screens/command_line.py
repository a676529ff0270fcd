"""The main screen's filter box and `:` command line: the boxes (made when first opened), the
command words, and what each command does. MainScreen builds on this class; what it needs of the
screen is declared below, so the command line can be read, and type-checked, on its own."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.widgets import Input

from cloudfn_tui._textual_compat import PaintOnceScreen
from cloudfn_tui.screens.panes import PANES
from cloudfn_tui.widgets.editors import CodeEditor, is_navigation_key
from cloudfn_tui.widgets.function_list import FunctionList
from cloudfn_tui.widgets.live import HistoryTable
from cloudfn_tui.widgets.log_view import LogView
from core.models import Function, name_key

if TYPE_CHECKING:
    from cloudfn_tui.app import CloudfnApp

# The boxes made when first opened: (placeholder, mounted in (None: the screen), before)
BOXES = {
    "filter": ("filter: name, runtime or words of the description", "#pane-functions", "#functions"),
    "command": (":command — help, new, invoke, save, delete, rollback N, theme NAME, goto PANE, q", None, "KeyFooter"),
}

COMMAND_WORDS = {
    "q": "app.quit",
    "quit": "app.quit",
    "new": "new_function",
    "create": "new_function",
    "delete": "delete_function",
    "rm": "delete_function",
    "invoke": "invoke",
    "run": "invoke",
    "save": "save",
    "w": "save",
    "config": "configure",
    "configure": "configure",
    "versions": "versions",
    "rollback": "versions",
    "events": "saved_events",
    "metrics": "metrics",
    "help": "help",
    "refresh": "refresh",
    "secrets": "secrets",
    "discard": "discard_draft",
    "zoom": "zoom",
    "diff": "result_diff",
    "triggers": "triggers",
    "schedules": "triggers",
    "dead": "dead_letters",
    "dead-letters": "dead_letters",
    "dlq": "dead_letters",
}


class BoxInput(Input):
    """The filter and command boxes: alt+digit (ESC+digit) moves to a pane, it is never typed."""

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        return not is_navigation_key(key) and super().check_consume_key(key, character)


class CommandLineScreen(PaintOnceScreen):
    """The filter and the command line of the main screen (MainScreen supplies the rest)."""

    app: CloudfnApp  # the console's own, with its platform and drafts: for the type checker

    # What the commands act on: MainScreen's.
    current: Function | None

    @property
    def narrow(self) -> bool:
        raise NotImplementedError

    @property
    def pane(self) -> str:
        raise NotImplementedError

    @property
    def history_table(self) -> HistoryTable:
        raise NotImplementedError

    @property
    def functions(self) -> FunctionList:
        raise NotImplementedError

    @property
    def editor(self) -> CodeEditor:
        raise NotImplementedError

    @property
    def log_view(self) -> LogView:
        raise NotImplementedError

    def select(self, fn_id: str | None) -> None:
        raise NotImplementedError

    def action_show_pane(self, pane: str, focus: bool = True) -> None:
        raise NotImplementedError

    def _stash_drafts(self) -> None:
        raise NotImplementedError

    def import_folder(self, folder: Path) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def dependencies(self, fn: Function, rebuild: bool = False) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def rollback(self, fn: Function, version: int) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def _box(self, name: str, value: str | None = None) -> Input:
        """The filter or the command box, shown. Each is made when first opened: hidden, they
        cost the start their styling all the same."""
        box = self._open_box(name)
        if box is None:
            placeholder, where, before = BOXES[name]
            box = BoxInput(value, placeholder=placeholder, id=name)
            (self.query_one(where) if where else self).mount(box, before=self.query_one(before))
        else:
            box.display = True
            if value is not None:
                box.value = value
        return box

    def _open_box(self, name: str) -> Input | None:
        for box in self.query(f"#{name}").results(Input):
            return box
        return None

    def action_filter(self) -> None:
        if self.narrow:
            # Without focus=False the pane's own focus, applied after the refresh, would take
            # the keys away from the filter box.
            self.action_show_pane("functions", focus=False)
        self._box("filter").focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.functions.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.display = False
        self.functions.focus()

    def action_command_mode(self) -> None:
        self._box("command", "").focus()

    @on(Input.Submitted, "#command")
    def _command_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.functions.focus()
        self.run_command_line(event.value)

    def run_command_line(self, line: str) -> None:
        words = line.strip().lstrip(":").split()
        if not words:
            return
        head, args = words[0].lower(), words[1:]
        if head == "import":
            # The rest of the line, spaces kept: a folder name may hold them.
            folder = line.strip().lstrip(":").strip()[len(words[0]) :].strip()
            if not folder:
                self.notify(
                    "import needs a folder: :import DIR (the original's data folder with functions.json)",
                    severity="error",
                )
                return
            self.run_worker(self.import_folder(Path(folder).expanduser()), group="write")
            return
        if head == "theme" and args:
            if args[0] in self.app.available_themes:
                self.app.theme = args[0]
            else:
                known = ", ".join(sorted(self.app.available_themes))
                self.notify(f"no theme {args[0]!r}; known: {known}", severity="error")
            return
        if head == "filter":
            self._box("filter", " ".join(args))
            return
        if head in ("goto", "pane") and args:
            names = [p for p, _, _ in PANES]
            if args[0] in names:
                self.action_show_pane(args[0])
            else:
                self.notify(f"panes: {', '.join(names)}", severity="error")
            return
        if head == "trigger":
            from core.models import TRIGGERS

            want = args[0].lower() if args else "all"
            if want in (*TRIGGERS, "all"):
                self.history_table.set_trigger(None if want == "all" else want)
                self.action_show_pane("history")
            else:
                self.notify(f"triggers: {', '.join(TRIGGERS)}, or all", severity="error")
            return
        if head == "level" and args:
            if args[0] in ("debug", "info", "warning", "error"):
                self.log_view.min_level = args[0]
            else:
                self.notify("levels: debug, info, warning, error", severity="error")
            return
        if head in ("file", "files"):
            self.file_command(line.strip().lstrip(":").strip()[len(words[0]) :].strip())
            return
        if head == "deps" and self.current is not None:
            self.run_worker(self.dependencies(self.current, rebuild=args[:1] == ["rebuild"]), group="write")
            return
        if head == "rollback" and args and args[0].lstrip("v").isdigit() and self.current is not None:
            fn, version = self.current, int(args[0].lstrip("v"))
            self.run_worker(self.rollback(fn, version), group="write")
            return
        action = COMMAND_WORDS.get(head)
        if action:
            # run_action is a coroutine: called bare it never ran (`:q`, `:save`... did nothing)
            self.call_later(self.run_action, action)
            return
        # A name may hold spaces and capitals: the whole line names it, compared as names are.
        target = name_key(line.strip().lstrip(":").strip())
        for fn in self.functions.functions.values():
            if name_key(fn.name) == target:
                self.functions.select_id(fn.id)
                self.select(fn.id)
                return
        self.notify(
            f"unknown command {head!r}: try help, new, invoke, save, delete, rollback N, deps \\[rebuild], "
            "theme NAME, goto PANE, level L, filter TEXT, trigger T, dead, import DIR, "
            "file [NAME|mv NEW|rm], q, "
            "or a function name",
            severity="error",
            timeout=8,
        )

    def file_command(self, rest: str) -> None:
        """`:file` lists the files; `:file NAME` shows NAME (adding it, empty, if new);
        `:file mv NEW` renames the shown file; `:file rm` removes it. Saved with ctrl+s, all at once."""
        fn = self.current
        editor = self.editor
        if fn is None:
            self.notify("Select a function first.", severity="warning")
            return
        verb, _, arg = rest.partition(" ")
        arg = arg.strip()
        if not rest:
            names = editor.file_names()
            self.notify(
                f"{len(names)} files: " + ", ".join(names) + " · f6 next · :file NAME opens or adds · "
                ":file mv NEW renames · :file rm removes",
                title=fn.name,
                timeout=10,
            )
            return
        if verb in ("rm", "remove", "delete") and not arg:
            if editor.shown == editor.handler_file:
                self.notify(f"{editor.handler_file} holds the handler and cannot be removed.", severity="error")
                return
            gone = editor.remove_shown()
            self.notify(f"Removed {gone} from the draft; ctrl+s saves, :discard brings it back.")
            self._stash_drafts()
            return
        if verb in ("mv", "rename") and arg:
            if editor.shown == editor.handler_file:
                self.notify(f"{editor.handler_file} holds the handler and keeps its name.", severity="error")
                return
            if not self._file_name_ok(arg, renaming=True):
                return
            old = editor.shown
            editor.rename_shown(arg)
            self.notify(f"Renamed {old} to {arg} in the draft; ctrl+s saves.")
            self._stash_drafts()
            return
        if self.narrow and self.pane != "code":
            self.action_show_pane("code")
        if rest in editor.texts:
            editor.show_file(rest)
            editor.area.focus()
            return
        if not self._file_name_ok(rest):
            return
        editor.add_file(rest)
        editor.area.focus()
        self.notify(f"Added {rest} (empty) to the draft; ctrl+s saves it with the rest.")
        self._stash_drafts()

    def _file_name_ok(self, path: str, renaming: bool = False) -> bool:
        from core.funcfiles import files_errors, shown_path

        editor = self.editor
        if path in editor.texts:
            self.notify(f"{shown_path(path)} exists already; :file {shown_path(path)} shows it.", severity="error")
            return False
        others = {p: "" for p in editor.texts if p != editor.handler_file and not (renaming and p == editor.shown)}
        problems = [
            e
            for e in files_errors(
                {**others, path: ""},
                self.current.runtime if self.current else None,
                self.current.handler_file if self.current else "",
            )
            if e.field in (f"files.{shown_path(path)}", "files")
        ]
        if problems:
            self.notify(f"{shown_path(path)!r} {problems[0].message}", title="File name", severity="error", timeout=10)
            return False
        return True
