"""The main screen: functions, code, event, result, and the live panes (logs, metrics, history,
alerts), and what the user does with them (invoke, save, create, configure, delete, roll back).
Their arrangement is the pane layout's (widgets/pane_layout.py); unsaved code is the editors'
(widgets/editors.py, drafts.py); the filter box and the `:` command line are its base class's
(command_line.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widgets import Tabs

from cloudfn_tui.keymap import ESC_DIGIT_KEYS, Command, bindings
from cloudfn_tui.screens.command_line import CommandLineScreen
from cloudfn_tui.screens.forms import AlertRuleScreen, ConfigureScreen, CreateFunctionScreen
from cloudfn_tui.screens.modals import ConfirmScreen, PromptScreen
from cloudfn_tui.screens.panes import PANES
from cloudfn_tui.screens.pickers import InvocationScreen, SavedEventsScreen, VersionsScreen
from cloudfn_tui.widgets.build_log import BuildLog
from cloudfn_tui.widgets.editors import CodeEditor, EditorArea, EventEditor, EventError
from cloudfn_tui.widgets.footer import KeyFooter
from cloudfn_tui.widgets.function_list import FunctionList, outcome_of
from cloudfn_tui.widgets.header import ConsoleHeader
from cloudfn_tui.widgets.live import (
    AlertsPane,
    DeleteRule,
    EditRule,
    HistoryTable,
    LogsPane,
    MetricsPane,
    OpenInvocation,
)
from cloudfn_tui.widgets.log_view import LogView
from cloudfn_tui.widgets.pane_layout import PaneLayout
from cloudfn_tui.widgets.result_view import ResultView, result_doc
from core.errors import CloudfnError
from core.models import Alert, Event, Function, InvokeResult
from core.syntax import check_syntax

MAIN_COMMANDS = [
    Command("main.help", "question_mark,f1", "help", "Help", "list every key of this screen"),
    Command("main.filter", "slash", "filter", "Filter", "filter the function list"),
    Command("main.command", "colon", "command_mode", "Command", "type a command (:help lists them)", show=False),
    Command(
        "main.invoke",
        "ctrl+enter,ctrl+r,f5",
        "invoke",
        "Invoke",
        "invoke the function with the event (ctrl+r / F5 work in tmux)",
        priority=True,
    ),
    Command("main.save", "ctrl+s", "save", "Save", "save the code as a new version", priority=True),
    Command(
        "main.goto_error", "ctrl+g", "goto_error", "Error line", "move the editor to the line that failed", show=False
    ),
    Command("main.new", "n", "new_function", "New", "create a function from a template"),
    Command(
        "main.configure",
        "c",
        "configure",
        "Configure",
        "handler, timeout, memory, environment, concurrency, network",
        show=False,
    ),
    Command("main.delete", "d,delete", "delete_function", "Delete", "delete the function (asks first)"),
    Command(
        "main.triggers", "t", "triggers", "Triggers", "endpoint URL, schedules with next runs, rate limit", show=False
    ),
    Command("main.versions", "v", "versions", "Versions", "list versions and roll back", show=False),
    Command(
        "main.saved_events",
        "ctrl+o",
        "saved_events",
        "Saved events",
        "pick or delete a saved test event",
        show=False,
        priority=True,
    ),
    Command(
        "main.save_event",
        "ctrl+t",
        "save_event",
        "Save event",
        "save the event under a name",
        show=False,
        priority=True,
    ),
    Command("main.metrics", "m", "metrics", "Metrics", "the full metrics screen"),
    Command("main.secrets", "s", "secrets", "Secrets", "the secrets screen: set (masked), list, delete", show=False),
    Command("main.refresh", "r", "refresh", "Refresh", "reload functions, history and alerts", show=False),
    Command(
        "main.back",
        "escape",
        "back",
        "Back",
        "close the filter or command line; back to the list",
        show=False,
        palette=False,
    ),
    Command(
        "main.next_pane",
        "right_square_bracket,ctrl+right_square_bracket",
        "next_pane",
        "Next pane",
        "move to the next pane",
        show=False,
    ),
    Command(
        "main.prev_pane", "left_square_bracket", "prev_pane", "Previous pane", "move to the previous pane", show=False
    ),
    *[
        # priority: ahead of the focused editor or input, which would type the key as text
        Command(
            f"main.pane_{tab}",
            f"alt+{i},{ESC_DIGIT_KEYS[i - 1]}",
            f"show_pane('{tab}')",
            f"{label} pane",
            f"go to the {label} pane",
            show=False,
            priority=True,
        )
        for i, (tab, label, _) in enumerate(PANES, 1)
    ],
    Command(
        "main.zoom", "z,f11", "zoom", "Zoom", "maximise the focused pane, and back (F11 inside an editor)", show=False
    ),
    # multi-file functions (issue #15): the editor shows one file at a time. priority: the
    # editor's own f6 (select line) would take the key where it matters most
    Command(
        "main.next_file",
        "f6,ctrl+pagedown",
        "next_file",
        "Next file",
        "show the function's next file in the editor (:file NAME opens or adds one)",
        show=False,
        priority=True,
    ),
    Command(
        "main.prev_file",
        "shift+f6,ctrl+pageup",
        "prev_file",
        "Previous file",
        "show the function's previous file in the editor",
        show=False,
        priority=True,
    ),
    Command(
        "main.result_diff",
        "f4",
        "result_diff",
        "Result diff",
        "show the result's diff against the saved event's last run",
        show=False,
    ),
    Command("main.quit", "q", "app.quit", "Quit", "leave the console", show=False),
    Command(
        "main.dead_letters",
        "D",
        "dead_letters",
        "Dead letters",
        "asynchronous invocations that failed for good: replay or delete",
        show=False,
    ),
]


class SampleEvents(dict):
    """The bundled examples' sample events, by function name (pre-fills the event editor).

    Read one example at a time, when a function of that name is first shown: reading all of
    them cost the start 45 ms of YAML. Each example's folder is named after its function (a
    test keeps it so)."""

    def __missing__(self, name: str) -> Any:
        event = None
        try:
            from core import paths
            from core.bundle import MANIFEST, load_bundle

            folder = paths.bundled_functions_dir() / name
            if (folder / MANIFEST).is_file():
                bundle = load_bundle(folder)
                if bundle.spec.name == name:
                    event = bundle.event
        except Exception:
            pass
        self[name] = event
        return event


class MainScreen(CommandLineScreen):
    COMMANDS_TABLE = MAIN_COMMANDS
    AUTO_FOCUS = "#functions"  # not the first focusable widget, then the list: a restyle less
    BINDINGS = bindings(MAIN_COMMANDS)

    def __init__(self) -> None:
        super().__init__()
        self.current: Function | None = None
        self.last_results: dict[tuple[str, str], dict[str, Any]] = {}  # (fn id, event json) -> doc
        self._saved_versions: set[tuple[str, int]] = set()  # (fn id, version) this console saved
        self._saving: tuple[str, str] | None = None  # (fn id, code) of a save under way
        # The last result shown per function, for the session: moving away and back keeps it.
        self.shown_results: dict[str, tuple[InvokeResult, dict[str, Any] | None]] = {}
        self.samples = SampleEvents()
        self._metrics_pending = False
        self.snapshot: dict[str, Any] | None = None
        self.pane_layout = PaneLayout(id="panes")

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield self.pane_layout
        yield BuildLog(id="build-log")
        yield KeyFooter()

    @property
    def functions(self) -> FunctionList:
        return self.query_one(FunctionList)

    @property
    def editor(self) -> CodeEditor:
        return self.query_one(CodeEditor)

    @property
    def event_editor(self) -> EventEditor:
        return self.query_one(EventEditor)

    @property
    def result_view(self) -> ResultView:
        return self.query_one(ResultView)

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)

    # -- the panes (widgets/pane_layout.py) -------------------------------------------------------
    @property
    def narrow(self) -> bool:
        return self.pane_layout.narrow

    @property
    def pane(self) -> str:
        return self.pane_layout.pane

    @property
    def pane_tabs(self) -> Tabs | None:
        return self.pane_layout.pane_tabs

    @property
    def metrics_pane(self) -> MetricsPane:
        return self.pane_layout.metrics_pane

    @property
    def history_table(self) -> HistoryTable:
        return self.pane_layout.history_table

    @property
    def alerts_pane(self) -> AlertsPane:
        return self.pane_layout.alerts_pane

    async def panes_mounted(self) -> None:
        await self.pane_layout.panes_mounted()

    def action_show_pane(self, pane: str, focus: bool = True) -> None:
        self.pane_layout.show_pane(pane, focus)

    def action_next_pane(self) -> None:
        self.pane_layout.step_pane(1)

    def action_prev_pane(self) -> None:
        self.pane_layout.step_pane(-1)

    def action_zoom(self) -> None:
        self.pane_layout.toggle_zoom()

    async def on_mount(self) -> None:
        tabs_mounted = self.pane_layout.apply_layout(self.app.size.width, self.app.size.height)
        self.functions.focus()
        if tabs_mounted is not None:
            await tabs_mounted
        editor = self.editor
        editor.drafts.attach(self.app.drafts, lambda fn_id: self.functions.functions.get(fn_id))
        await self._load_functions()
        self._restore_drafts()
        if self.current is None:  # else the first function is shown already
            self.select(None)
        self.load_all(functions=False)
        self.call_after_refresh(self.app.started)

    def on_resize(self, event: Resize) -> None:
        self.pane_layout.apply_layout(event.size.width, event.size.height)

    # -- loading ---------------------------------------------------------------------------
    async def _load_functions(self) -> None:
        from cloudfn_tui.whole_functions import whole_functions

        try:  # lists name files only: their texts are fetched for the versions not held yet
            fns = await whole_functions(self.app, self.functions.functions)
        except CloudfnError as exc:
            from core.remote import Unauthorized

            if isinstance(exc, Unauthorized):
                self.app.auth_failed(exc)
                return
            self.notify(f"cannot list functions: {exc.message}", severity="error", timeout=10)
            return
        self.functions.set_functions(fns)
        self._expect_list_scrollbars()
        if fns and (self.current is None or self.current.id not in self.functions.functions):
            self.current = None
            self.functions.move_cursor(row=0)
            self.select(self.functions.selected_id)
        elif self.current is not None and self.functions.functions[self.current.id] != self.current:
            # Changed elsewhere (a refresh after another client saved): show the new version,
            # keeping the drafts.
            fresh = self.current.id
            self._stash_drafts()
            self.current = None
            self.select(fresh)

    def _expect_list_scrollbars(self) -> None:
        """Before the first layout, show the list's scrollbar when it is sure to be needed: a
        list taller than the terminal. Textual decides only after laying the list out, then lays
        it out once more to place the bar, and once more again as the bar takes its size; a
        wrong guess is undone at the first layout."""
        fl = self.functions
        if fl.size:  # laid out already: Textual knows
            return
        if fl.row_count + 1 > self.app.size.height:
            fl.show_vertical_scrollbar = True

    @work(group="load", exclusive=True)
    async def load_all(self, functions: bool = True) -> None:
        try:
            if functions:
                await self._load_functions()
            await self._load_history()
            await self._load_alerts()
            await self._load_logs()
            await self.refresh_metrics()
        except NoMatches:
            if self.query(FunctionList):  # the screen is whole: a real bug, not a quit mid-reload
                raise

    async def _load_history(self) -> None:
        try:
            records = await self.app.platform.list_invocations(limit=200)
        except Exception:  # history lands with observability; the pane fills from events anyway
            return
        docs = [r.model_dump(mode="json") for r in records]
        seen: set[str] = set()
        for r in records:  # newest first: the first one per function is its last outcome
            if r.function_id not in seen:
                seen.add(r.function_id)
                self.functions.set_outcome(r.function_id, outcome_of(r.status, r.duration, r.error_type))
        self.history_table.set_records(docs)

    async def _load_alerts(self) -> None:
        try:
            rules = await self.app.platform.list_alert_rules()
            states = await self.app.platform.alerts()
        except Exception:
            return
        table = self.alerts_pane.table
        table.states = {a.rule: a for a in states}
        table.set_rules(rules)
        self.alerts_pane.show_firing(states)

    async def _load_logs(self) -> None:
        try:
            records = await self.app.platform.query_logs(limit=200)
        except Exception:
            return
        view = self.log_view
        for rec in records:
            view.append_record(rec.model_dump(mode="json"))
        view.flush()  # now, with the rest of the start, not in a layout of its own on the next tick

    async def refresh_metrics(self) -> None:
        self._metrics_pending = False
        pane = self.metrics_pane
        try:
            pane.snapshot = self.snapshot = await self.app.platform.metrics()
        except Exception:
            return
        pane.redraw()

    def _schedule_metrics(self) -> None:
        """Event-driven and debounced: at most one snapshot a second while invocations stream."""
        if not self._metrics_pending:
            self._metrics_pending = True
            self.set_timer(1.0, lambda: self.run_worker(self.refresh_metrics(), group="metrics", exclusive=True))

    # -- selection -------------------------------------------------------------------------
    @on(FunctionList.Highlighted)
    def _row_highlighted(self, event: FunctionList.Highlighted) -> None:
        self.select(event.fn_id)

    @on(FunctionList.Selected)
    def _row_selected(self, event: FunctionList.Selected) -> None:
        self.action_show_pane("code")

    # -- drafts: the editors keep them (widgets/editors.py, drafts.py); the screen says when ----------
    def _stash_drafts(self) -> None:
        if self.current is None:
            return
        self.editor.stash_draft()
        self.event_editor.stash_draft(self.current.id)

    def _persist_current_draft(self) -> None:
        self.editor.autosave_draft()  # what the editor's 2 s timer does

    def _drop_draft(self, fn_id: str) -> None:
        self.editor.drafts.drop(fn_id)

    def _restore_drafts(self) -> None:
        """Unsaved code from an earlier console: back in the editors, with a note saying so."""
        restored = self.editor.restore_drafts()
        if restored:
            self.notify(
                f"Draft restored: {', '.join(restored)}. ctrl+s saves; :discard drops the one shown.",
                title="Unsaved code",
                timeout=10,
            )

    def pending_drafts(self) -> dict[str, str]:
        """{function id: code} of every unsaved draft, the one in the editor included."""
        self._stash_drafts()
        return self.editor.drafts.pending()

    def keep_drafts(self) -> None:
        self.editor.keep_drafts()

    def discard_drafts(self) -> None:
        self.editor.drafts.drop_all()

    async def save_drafts(self) -> list[str]:
        """Save every draft as a new version; returns the problems (none: all saved)."""
        problems = []
        drafts = self.editor.drafts
        for fn_id, code in list(self.pending_drafts().items()):
            fn = self.functions.functions[fn_id]
            patch: dict[str, Any] = {"code": code}
            if fn_id in drafts.files:
                patch["files"] = drafts.files[fn_id]
            try:
                updated = await self.app.platform.update_function(fn_id, patch)
            except CloudfnError as exc:
                problems.append(f"{fn.name}: {exc.message}")
                continue
            self._drop_draft(fn_id)
            self._replace(updated)
        return problems

    def action_discard_draft(self) -> None:
        fn = self.current
        if fn is None or not self.editor.dirty:
            self.notify("No unsaved code to drop here.")
            return
        self._drop_draft(fn.id)
        self.editor.load(fn, keep_edits=False)
        self.notify(f"Dropped the unsaved code of {fn.name}; v{fn.version} is shown.")

    def select(self, fn_id: str | None) -> None:
        fn = self.functions.functions.get(fn_id) if fn_id else None
        if fn is not None and self.current is not None and fn.id == self.current.id:
            return
        self._stash_drafts()
        self.current = fn
        self.editor.load(fn)
        self.metrics_pane.show_function(fn.name if fn else None)
        if fn is None:
            self.event_editor.set_event({})
            return
        self.editor.show_draft()
        if not self.event_editor.show_draft(fn.id):
            sample = self.samples[fn.name]
            self.event_editor.set_event(sample if sample is not None else {})
            self.prefill_event(fn)
        if fn.id in self.shown_results:
            self.result_view.show(*self.shown_results[fn.id])
        else:
            self.result_view.show_message(
                f"{fn.name}: {fn.description or 'no description'}\n\nInvoke with ctrl+enter, ctrl+r or F5."
            )

    @work(group="prefill", exclusive=True)
    async def prefill_event(self, fn: Function) -> None:
        try:
            saved = await self.app.platform.list_saved_events(fn.id)
        except Exception:
            return
        if not saved or self.current is None or self.current.id != fn.id:
            return
        if fn.id in self.event_editor.drafts:
            return
        newest = max(saved, key=lambda e: e.updated_at)
        self.event_editor.set_event(newest.event, newest.name)

    # -- invoke ----------------------------------------------------------------------------
    def action_invoke(self) -> None:
        fn = self.current
        if fn is None:
            self.notify("Select a function first.", severity="warning")
            return
        try:
            event = self.event_editor.value()
        except EventError as exc:
            self.notify(str(exc), title="Event", severity="error")
            if self.narrow:
                self.action_show_pane("event")
            else:
                self.event_editor.area.focus()
            return
        if self.editor.dirty:
            self.notify(f"Invoking the saved v{fn.version}; ctrl+s saves your edits first.", severity="warning")
        self.result_view.show_message(f"invoking {fn.name} …")
        self.invoke_worker(fn, event, self.event_editor.saved_name)

    @work(group="invoke")
    async def invoke_worker(self, fn: Function, event: Any, saved_name: str | None) -> InvokeResult | None:
        platform = self.app.platform
        key = (fn.id, json.dumps(event, sort_keys=True, default=str))
        previous = self.last_results.get(key)
        if saved_name:
            try:
                for saved in await platform.list_saved_events(fn.id):
                    if saved.name == saved_name and saved.event == event and saved.last_result is not None:
                        previous = saved.last_result
            except Exception:
                pass
        try:
            result = await platform.invoke(fn.id, event)
        except CloudfnError as exc:
            self.result_view.show_message(f"{fn.name}: {exc.message}", style="red")
            self.notify(exc.message, title="Invoke", severity="error")
            return None
        doc = result_doc(result)
        self.last_results[key] = doc
        self.shown_results[fn.id] = (result, previous)
        if saved_name:
            try:
                await platform.save_event(fn.id, saved_name, event, last_result=doc)
            except Exception:
                pass
        if self.current is not None and self.current.id == fn.id:
            self.result_view.show(result, previous)
            if self.narrow and self.pane in ("event", "code", "functions"):
                self.action_show_pane("result")
        status = "success" if result.success else "failed"
        if result.error_type and result.error_type.value == "Throttled":
            status = "throttled"
        self.functions.set_outcome(
            fn.id, outcome_of(status, result.duration_ms, result.error_type.value if result.error_type else None)
        )
        return result

    def action_goto_error(self) -> None:
        frame = self.result_view.failing_frame
        if frame is None:
            self.notify("No failing line: the last result has no stack.", severity="warning")
            return
        self._mark_line(frame.line, frame.column, frame.file)
        # The line is selected, so a key typed next replaces it: say how to leave instead.
        self.notify(
            f"{frame.file}:{frame.line} in {frame.function or '?'} · esc: back to list, alt+N: pane",
            title="Failing line",
        )

    def _mark_line(self, line: int, column: int | None, file: str | None = None) -> None:
        editor = self.editor
        target = file if file in editor.texts else editor.handler_file  # a stack frame names its file
        if target != editor.shown:
            editor.show_file(target)
        if self.narrow and self.pane != "code":  # the editor must be shown and laid out before it can scroll
            self.action_show_pane("code", focus=False)
            self.call_after_refresh(self.editor.goto_line, line, column)
        else:
            self.editor.goto_line(line, column)

    # -- save, create, configure, delete, roll back --------------------------------------------
    @work(group="write")
    async def action_save(self) -> None:
        fn = self.current
        if fn is None:
            return
        if not self.editor.dirty:
            self.notify("No changes to save.")
            return
        code, files = self.editor.workspace()
        # Off the event loop: node and gofmt take a process each (up to core.syntax.TIMEOUT).
        problem = await asyncio.to_thread(check_syntax, fn.runtime, code)
        self._saving = (fn.id, code)
        # every file in one new version; `files` only when they changed (a client sending code
        # alone leaves them as they are)
        patch: dict[str, Any] = {"code": code, **({"files": files} if files != fn.files else {})}
        try:
            updated = await self.app.platform.update_function(fn.id, patch)
        except CloudfnError as exc:
            self.notify(exc.message, title="Save failed", severity="error", timeout=10)
            return
        finally:
            self._saving = None
        self._saved_versions.add((fn.id, updated.version))
        self._drop_draft(fn.id)
        self._replace(updated)
        if problem is None:
            self.notify(f"Saved {updated.name} as v{updated.version}.")
            return
        self._mark_line(problem.line, problem.column)
        self.notify(
            f"line {problem.line}: {problem.message} · saved as v{updated.version} all the same",
            title="Syntax error",
            severity="warning",
            timeout=10,
        )

    def _replace(self, fn: Function, reload_editor: bool = True) -> None:
        self.functions.upsert(fn)
        if self.current is not None and self.current.id == fn.id:
            self.current = fn
            if reload_editor:
                self.editor.load(fn, keep_edits=False)
            else:
                self.editor.load(fn, keep_edits=True)

    @work(group="write")
    async def action_new_function(self) -> None:
        from core import paths
        from core.bundle import bundles_in

        try:
            templates = bundles_in(paths.bundled_functions_dir())
        except Exception:
            templates = []
        body = await self.app.push_screen_wait(CreateFunctionScreen(templates))
        if not body:
            return
        event = body.pop("_event", None)
        try:
            fn = await self.app.platform.create_function(body)
        except CloudfnError as exc:
            self.notify(exc.message, title="Create failed", severity="error", timeout=10)
            return
        if event is not None:
            self.samples[fn.name] = event
        self.functions.upsert(fn)
        self.functions.select_id(fn.id)
        self.select(fn.id)
        self.notify(f"Created {fn.name} ({fn.runtime}).")
        self.action_show_pane("code")

    @work(group="write")
    async def action_configure(self) -> None:
        fn = self.current
        if fn is None:
            return
        patch = await self.app.push_screen_wait(ConfigureScreen(fn))
        if not patch:
            return
        try:
            updated = await self.app.platform.update_function(fn.id, patch)
        except CloudfnError as exc:
            self.notify(exc.message, title="Configure failed", severity="error", timeout=10)
            return
        self._replace(updated, reload_editor=False)
        self.notify(f"Configured {updated.name}: {', '.join(patch)} (v{updated.version}).")

    @work(group="write")
    async def action_triggers(self) -> None:
        fn = self.current
        if fn is None:
            return
        from cloudfn_tui.screens.triggers import TriggersScreen

        try:
            triggers = await self.app.platform.function_triggers(fn.id)
        except CloudfnError as exc:
            self.notify(exc.message, title="Triggers", severity="error", timeout=10)
            return
        if await self.app.push_screen_wait(TriggersScreen(triggers)) == "configure":
            self.action_configure()

    @work(group="write")
    async def action_delete_function(self) -> None:
        fn = self.current
        if fn is None:
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(f"Delete {fn.name}?", f"{fn.runtime} · v{fn.version} — its versions and saved events go too.")
        )
        if not ok:
            return
        try:
            await self.app.platform.delete_function(fn.id)
        except CloudfnError as exc:
            self.notify(exc.message, title="Delete failed", severity="error")
            return
        self._forget(fn.id)
        self.notify(f"Deleted {fn.name}.")

    def _forget(self, fn_id: str) -> None:
        self.functions.remove_function(fn_id)
        self._drop_draft(fn_id)
        self.event_editor.drafts.pop(fn_id, None)
        self.shown_results.pop(fn_id, None)
        if self.current is not None and self.current.id == fn_id:
            self.current = None
            self.select(self.functions.selected_id)

    @work(group="write")
    async def action_versions(self) -> None:
        fn = self.current
        if fn is None:
            return
        try:
            versions = await self.app.platform.function_versions(fn.id)
        except CloudfnError as exc:
            self.notify(exc.message, severity="error")
            return
        version = await self.app.push_screen_wait(VersionsScreen(fn, versions))
        if version is None:
            return
        await self.rollback(fn, version)

    async def import_folder(self, folder: Path) -> None:
        """`:import DIR` (the command line expands `~`, off this coroutine)."""
        from core.importer import import_seed_folder, summary

        try:
            outcomes = await import_seed_folder(self.app.platform, folder)
        except CloudfnError as exc:
            self.notify(exc.message, title="Import failed", severity="error", timeout=10)
            return
        failed = [o for o in outcomes if o.action == "failed"]
        details = "\n".join(o.line() for o in failed[:5])
        self.notify(
            summary(outcomes) + (f"\n{details}" if details else ""),
            title="Import",
            severity="error" if failed else "information",
            timeout=12 if failed else 5,
        )
        self.load_all()

    async def rollback(self, fn: Function, version: int) -> None:
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Roll {fn.name} back to v{version}?",
                "The code and settings of that version become a new version.",
                yes="Roll back",
            )
        )
        if not ok:
            return
        try:
            updated = await self.app.platform.rollback_function(fn.id, version)
        except CloudfnError as exc:
            self.notify(exc.message, title="Roll back failed", severity="error")
            return
        from cloudfn_tui.screens.pickers import describe_changes

        self._drop_draft(fn.id)
        self._replace(updated)
        self.notify(
            f"{updated.name} is now v{updated.version}, as v{version}: {describe_changes(fn, updated)}.",
            title="Rolled back",
            timeout=8,
        )

    async def dependencies(self, fn: Function, rebuild: bool = False) -> None:
        """`:deps` lists a function's installed packages; `:deps rebuild` reinstalls them (the
        build log shows the install live)."""
        try:
            report = await self.app.platform.function_dependencies(fn.id, rebuild=rebuild)
        except CloudfnError as exc:
            self.notify(exc.message, title="Dependencies", severity="error", timeout=10)
            return
        except AttributeError:
            self.notify("this platform does not report dependencies", severity="error")
            return
        if not report.get("manifest"):
            self.notify(f"{fn.name} has no dependencies.", title="Dependencies")
            return
        packages = ", ".join(f"{p['name']} {p['version']}" for p in report.get("packages", [])) or "none installed"
        self.notify(f"{fn.name} ({report['manifest']}): {packages}", title="Dependencies", timeout=8)

    # -- saved events ------------------------------------------------------------------------
    @work(group="write")
    async def action_saved_events(self) -> None:
        fn = self.current
        if fn is None:
            return
        try:
            saved = await self.app.platform.list_saved_events(fn.id)
        except Exception as exc:
            self.notify(f"saved events unavailable: {exc}", severity="error")
            return
        choice = await self.app.push_screen_wait(SavedEventsScreen(fn, saved))
        if not choice:
            return
        what, ev = choice
        if what == "pick":
            self.event_editor.set_event(ev.event, ev.name)
            if ev.last_result is not None:
                self.last_results[(fn.id, json.dumps(ev.event, sort_keys=True, default=str))] = ev.last_result
            return
        ok = await self.app.push_screen_wait(ConfirmScreen(f"Delete the saved event {ev.name!r}?"))
        if ok:
            await self.app.platform.delete_saved_event(fn.id, ev.name)
            if self.event_editor.saved_name == ev.name:
                self.event_editor.saved_name = None
                self.event_editor._update_title()
            self.notify(f"Deleted the saved event {ev.name}.")

    @work(group="write")
    async def action_save_event(self) -> None:
        fn = self.current
        if fn is None:
            return
        try:
            event = self.event_editor.value()
        except EventError as exc:
            self.notify(str(exc), severity="error")
            return
        name = await self.app.push_screen_wait(
            PromptScreen("Save the event as", self.event_editor.saved_name or "", "a name, e.g. happy-path")
        )
        if not name:
            return
        key = (fn.id, json.dumps(event, sort_keys=True, default=str))
        try:
            await self.app.platform.save_event(fn.id, name, event, last_result=self.last_results.get(key))
        except CloudfnError as exc:
            self.notify(exc.message, severity="error")
            return
        self.event_editor.saved_name = name
        self.event_editor._update_title()
        self.notify(f"Saved the event as {name!r}.")

    # -- dead letters (asynchronous invocation) -------------------------------------------------
    @work(group="write")
    async def action_dead_letters(self) -> None:
        from cloudfn_tui.screens.dead_letters import DeadLettersScreen

        try:
            letters = await self.app.platform.list_dead_letters()
        except Exception as exc:
            self.notify(f"dead letters unavailable: {exc}", severity="error")
            return
        choice = await self.app.push_screen_wait(DeadLettersScreen(letters))
        if not choice:
            return
        what, dead = choice
        try:
            if what == "replay":
                await self.app.platform.replay_dead_letter(dead.id)
                self.notify(f"Queued {dead.function_name}'s event again ({dead.id[:8]}).", title="Replayed")
                return
            ok = await self.app.push_screen_wait(
                ConfirmScreen(f"Delete this dead letter of {dead.function_name}?", "Its event is lost.")
            )
            if ok:
                await self.app.platform.delete_dead_letter(dead.id)
                self.notify(f"Deleted the dead letter {dead.id[:8]}.")
        except Exception as exc:
            self.notify(f"{what} failed: {getattr(exc, 'message', exc)}", severity="error")

    # -- history and alerts --------------------------------------------------------------------
    @on(OpenInvocation)
    @work(group="write")
    async def open_invocation(self, message: OpenInvocation) -> None:
        try:
            record = await self.app.platform.get_invocation(message.invocation_id)
        except Exception as exc:
            self.notify(f"cannot open the invocation: {exc}", severity="error")
            return
        choice = await self.app.push_screen_wait(InvocationScreen(record))
        if choice and choice[0] == "replay":
            fn = self.functions.functions.get(record.function_id)
            if fn is not None:
                self.functions.select_id(fn.id)
                self.select(fn.id)
                self.event_editor.set_event(record.event)
                self.action_show_pane("event")

    @on(EditRule)
    @work(group="write")
    async def edit_rule(self, message: EditRule) -> None:
        names = sorted(f.name for f in self.functions.functions.values())
        body = await self.app.push_screen_wait(AlertRuleScreen(message.rule, names))
        if not body:
            return
        try:
            if message.rule is None:
                await self.app.platform.create_alert_rule(body)
            else:
                body.pop("name", None)
                await self.app.platform.update_alert_rule(message.rule.id, body)
        except CloudfnError as exc:
            self.notify(exc.message, title="Alert rule", severity="error", timeout=10)
            return
        await self._load_alerts()

    @on(DeleteRule)
    @work(group="write")
    async def delete_rule(self, message: DeleteRule) -> None:
        ok = await self.app.push_screen_wait(ConfirmScreen(f"Delete the alert rule {message.rule.name}?"))
        if not ok:
            return
        try:
            await self.app.platform.delete_alert_rule(message.rule.id)
        except CloudfnError as exc:
            self.notify(exc.message, severity="error")
            return
        await self._load_alerts()

    # -- the event stream ----------------------------------------------------------------------
    @work(group="whole")
    async def _fetch_changed(self, fn_id: str) -> None:
        from cloudfn_tui.whole_functions import whole_function

        fn = await whole_function(self.app, fn_id)
        if fn is not None:  # None: deleted meanwhile, and its own event says so
            self.on_platform_event(Event(kind="function.updated", data=fn.to_doc()))

    def on_platform_event(self, ev: Event) -> None:
        kind, data = ev.kind, ev.data
        if kind in ("function.created", "function.updated"):
            try:
                fn = Function.model_validate(data)
            except Exception:
                return
            current = self.current
            mine = current is not None and current.id == fn.id
            if current is not None and mine and current.version == fn.version:
                return
            # This console's own save, its event arriving before or after the save returned:
            # not a change made elsewhere (it warned "changed elsewhere" after every ctrl+s).
            if (fn.id, fn.version) in self._saved_versions or self._saving == (fn.id, fn.code):
                return
            if not fn.complete:  # events name files only: the texts come with the function
                self._fetch_changed(fn.id)
                return
            self.functions.upsert(fn)
            if mine:
                dirty = self.editor.dirty
                self._replace(fn, reload_editor=not dirty)
                if dirty:
                    self.notify(
                        f"{fn.name} changed elsewhere (now v{fn.version}); your edits are kept.", severity="warning"
                    )
        elif kind == "function.deleted":
            fn_id = data.get("id")
            if fn_id:
                self._forget(fn_id)
        elif kind == "invocation.finished":
            self.functions.set_outcome(
                data.get("function_id", ""),
                outcome_of(data.get("status", ""), float(data.get("duration") or 0), data.get("error_type")),
            )
            self.history_table.add_record(data)
            self.metrics_pane.record(data)
            self._schedule_metrics()
        elif kind == "log":
            self.log_view.append_record(data)
        elif kind.startswith("build."):
            self.query_one(BuildLog).on_build(kind, data)
        elif kind in ("alert.fired", "alert.resolved"):
            try:
                alert = Alert.model_validate(data)
            except Exception:
                return
            self.alerts_pane.table.set_state(alert)
            self.alerts_pane.show_firing(list(self.alerts_pane.table.states.values()))

    # -- the function's files (issue #15) -------------------------------------------------------
    def action_next_file(self) -> None:
        self._cycle_file(1)

    def action_prev_file(self) -> None:
        self._cycle_file(-1)

    def _cycle_file(self, step: int) -> None:
        if self.current is None:
            return
        if len(self.editor.file_names()) < 2:
            self.notify("This function has one file. :file NAME adds another (helper.py, lib/util.js, data.json).")
            return
        if self.narrow and self.pane != "code":
            self.action_show_pane("code")
        self.editor.cycle(step)

    # -- back, help, the other screens --------------------------------------------------------
    def action_back(self) -> None:
        if self.query_one(BuildLog).close():
            return
        for ident in ("command", "filter"):
            box = self._open_box(ident)
            if box is not None and box.has_focus:
                if ident == "filter":
                    box.value = ""
                box.display = False
                self.functions.focus()
                return
        in_editor = isinstance(self.app.focused, EditorArea)  # esc there leaves it, whatever else is open
        if not in_editor and self.query_one(LogsPane).close_search():
            return
        if self.narrow and self.pane != "functions":
            self.action_show_pane("functions")
            return
        self.functions.focus()

    def action_result_diff(self) -> None:
        view = self.result_view
        if not view.has_diff:
            self.notify(
                "No diff: it compares a saved event's run with its last one (ctrl+o picks one, then invoke).",
                severity="warning",
            )
            return
        self.action_show_pane("result")
        self.call_after_refresh(view.show_diff)

    def action_help(self) -> None:
        self.app.show_help()

    def action_metrics(self) -> None:
        from cloudfn_tui.screens.metrics import MetricsScreen

        self.app.push_screen(MetricsScreen(self.metrics_pane.stats, self.snapshot))

    def action_refresh(self) -> None:
        self.load_all()

    def action_secrets(self) -> None:
        from cloudfn_tui.screens.secrets import SecretsScreen

        self.app.push_screen(SecretsScreen())
