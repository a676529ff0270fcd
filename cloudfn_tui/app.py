"""The cloudfn console: a Textual application over `PlatformAPI`.

It talks only to the PlatformAPI it is given, so it behaves the same on the embedded
`LocalPlatform` and attached to a `cloudfn serve` through `RemotePlatform`. One worker reads the
platform's event stream and feeds the live panes; if the stream drops it says so in the header
and reconnects.
"""

from __future__ import annotations

import asyncio
import gc
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.theme import Theme

from cloudfn_tui import themes as theme_files
from cloudfn_tui._textual_compat import start_with_theme
from cloudfn_tui.keymap import Command, bindings, display_keys, known_ids
from cloudfn_tui.screens.main import MainScreen
from cloudfn_tui.screens.modals import HelpScreen
from core.api import PlatformAPI

APP_COMMANDS = [
    Command("app.quit", "ctrl+q", "quit", "Quit", "leave the console", show=False, priority=True),
    Command("app.theme", "f2", "change_theme", "Theme", "choose a theme (remembered)", show=False),
]
RECONNECT_DELAYS = (0.5, 1, 2, 5, 10)


def _widget_tables() -> list[tuple[str, str, list[Command]]]:
    """(where, css selector of the target, commands) of the widgets that own keys."""
    from cloudfn_tui.widgets.function_list import LIST_COMMANDS
    from cloudfn_tui.widgets.live import ALERT_COMMANDS, HISTORY_COMMANDS
    from cloudfn_tui.widgets.log_view import LOG_COMMANDS
    from cloudfn_tui.widgets.result_view import RESULT_COMMANDS
    from cloudfn_tui.widgets.tab_bar import TAB_COMMANDS

    return [
        ("function list", "#functions", LIST_COMMANDS),
        ("result pane", "#pane-result", RESULT_COMMANDS),
        ("logs pane", "#log-view", LOG_COMMANDS),
        ("history pane", "#history", HISTORY_COMMANDS),
        ("alerts pane", "#alerts-table", ALERT_COMMANDS),
        ("live tabs", "#live-tabs", TAB_COMMANDS),
    ]


def all_binding_ids() -> set[str]:
    from cloudfn_tui.screens import auth, forms, metrics, modals, pickers, secrets
    from cloudfn_tui.screens.main import MAIN_COMMANDS

    tables = [
        APP_COMMANDS,
        MAIN_COMMANDS,
        forms.FORM_COMMANDS,
        modals.DIALOG_COMMANDS,
        modals.QuitScreen.COMMANDS_TABLE,
        modals.ConfirmScreen.COMMANDS_TABLE,
        modals.HelpScreen.COMMANDS_TABLE,
        pickers.VersionsScreen.COMMANDS_TABLE,
        pickers.SavedEventsScreen.COMMANDS_TABLE,
        pickers.InvocationScreen.COMMANDS_TABLE,
        metrics.MetricsScreen.COMMANDS_TABLE,
        auth.AUTH_COMMANDS,
        secrets.SecretsScreen.COMMANDS_TABLE,
    ]
    from cloudfn_tui.widgets.editors import EDITOR_COMMANDS

    tables += [t for _, _, t in _widget_tables()] + [EDITOR_COMMANDS]
    return known_ids(*tables)


class ConsoleCommands(Provider):
    """Every action of the current screen and its panes, plus the themes, in the palette."""

    def _entries(self) -> list[tuple[str, str, Any]]:
        screen = self.screen
        keymap = self.app._keymap
        entries: list[tuple[str, str, Any]] = []

        def described(cmd: Command) -> str:
            return f"{cmd.help} · {display_keys(keymap.get(cmd.id, cmd.keys), sep='/')}"

        for cmd in getattr(screen, "COMMANDS_TABLE", []):
            if cmd.palette:
                entries.append((cmd.description, described(cmd), partial(screen.run_action, cmd.action)))
        if isinstance(screen, MainScreen):
            for where, selector, table in _widget_tables():
                for cmd in table:
                    if not cmd.palette:
                        continue

                    async def run(selector=selector, action=cmd.action, where=where) -> None:
                        pane = {"logs pane": "logs", "history pane": "history", "alerts pane": "alerts"}.get(where)
                        if pane:
                            screen.action_show_pane(pane)
                            await screen.panes_mounted()
                        await screen.query_one(selector).run_action(action)

                    entries.append((f"{where.split()[0].capitalize()}: {cmd.description}", described(cmd), run))
        for cmd in APP_COMMANDS:
            entries.append((cmd.description, described(cmd), partial(self.app.run_action, cmd.action)))
        for name in sorted(self.app.available_themes):
            entries.append(
                (f"Theme: {name}", "switch to this theme (remembered)", partial(setattr, self.app, "theme", name))
            )
        # One entry per title: the main screen's q and the app's ctrl+q both read "Quit".
        unique: dict[str, tuple[str, str, Any]] = {}
        for entry in entries:
            unique.setdefault(entry[0], entry)
        return list(unique.values())

    async def discover(self) -> Hits:
        for title, help, callback in self._entries():
            if not title.startswith("Theme: "):
                yield DiscoveryHit(title, callback, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help)


class CloudfnApp(App):
    TITLE = "cloudfn"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    COMMANDS_TABLE = APP_COMMANDS
    BINDINGS = bindings(APP_COMMANDS)

    def __init__(
        self,
        platform: PlatformAPI,
        *,
        keymap: dict[str, str] | None = None,
        theme: str | None = None,
        attached: str | None = None,
        remember_theme: bool = True,
        close_platform: bool = True,
        drafts_dir: Any = None,  # None: beside the platform's data (drafts.py); "": keep no drafts on disk
        config_file: Any = None,
    ):
        super().__init__()
        # What exists before the console starts (the modules, the platform) lives as long as
        # it: keep it out of the collector's passes, which otherwise rescan it all while the
        # start allocates its widgets (50-150 ms a full pass). Undone when the console closes.
        gc.freeze()
        self._gc_paused = False
        self.platform = platform
        config = getattr(platform, "config", None)  # LocalPlatform carries its Config
        if keymap is None:
            keymap = _setting(config, "console.keymap", {})
        if theme is None:
            theme = _setting(config, "console.theme", None)
        self.user_keymap = dict(keymap or {})
        self.start_theme = theme
        self.attached = attached or describe_platform(platform)
        self.remember = remember_theme
        self.close_platform = close_platform
        self.config_file = config_file or getattr(config, "file", None)  # named in the refused-token screen
        from cloudfn_tui.drafts import DraftStore, drafts_folder

        self.drafts = DraftStore(drafts_dir if drafts_dir is not None else drafts_folder(platform))
        self.stream_state = "connecting"
        self.sandbox_note = ""
        self.events_seen = 0
        self.stream_ready = asyncio.Event()  # set once the event stream is open (tests wait on it)
        found = theme_files.discover()
        for t in found.themes:
            self.register_theme(t)
        self.theme_problems: list[str] = found.problems
        start_with_theme(self, self._initial_theme())

    def get_driver_class(self) -> type:
        driver_class = super().get_driver_class()
        if driver_class.__module__ != "textual.drivers.linux_driver":
            return driver_class  # the web, headless and inline drivers keep no alternate screen of ours

        # a subclass of whichever driver Textual picked at run time: mypy cannot type a dynamic base
        class ClearingDriver(driver_class):  # type: ignore[valid-type, misc]
            def stop_application_mode(self) -> None:
                # tmux from 3.2 (tmux issue 3510; Debian 12 has 3.3a) keeps lines of an alternate
                # screen that grew when the program leaves it: they show above the shell's prompt
                # and in its scrollback. A blank alternate screen has nothing for it to keep.
                self.write("\x1b[2J")
                super().stop_application_mode()

        return ClearingDriver

    def get_system_commands(self, screen: Any):
        """Textual's own entries, less those the console lists itself with its keys (Theme,
        Quit): the palette showed each of them twice."""
        for command in super().get_system_commands(screen):
            if command.title not in {c.description for c in APP_COMMANDS}:
                yield command

    @classmethod
    def from_config(cls, platform: PlatformAPI, config: Any, **kw: Any) -> CloudfnApp:
        kw.setdefault("config_file", getattr(config, "file", None))
        return cls(
            platform, keymap=_setting(config, "console.keymap", {}), theme=_setting(config, "console.theme", None), **kw
        )

    # -- start -----------------------------------------------------------------------------
    def on_load(self) -> None:
        # No collections at all while the main screen is built (some seventy young passes,
        # 7-10 ms of the start): `started()` freezes what the start made and collects again.
        if gc.isenabled():
            self._gc_paused = True
            gc.disable()

    async def on_mount(self) -> None:
        await self.platform.start()  # a local platform's history flushing, alert evaluation
        for problem in self.theme_problems:
            self.notify(problem, title="Theme file", severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.user_keymap:
            unknown = sorted(set(self.user_keymap) - all_binding_ids())
            if unknown:
                self.notify(
                    f"console.keymap: unknown binding ids {', '.join(unknown)} (press ? for the ids)",
                    severity="warning",
                    timeout=10,
                )
            self.set_keymap({k: v for k, v in self.user_keymap.items() if k not in unknown})
        self._update_subtitle()
        self.run_worker(self._event_stream(), group="events", name="event-stream", exit_on_error=False)
        self.run_worker(self._sandbox_warning(), group="info", name="sandbox-warning", exit_on_error=False)

    async def _sandbox_warning(self) -> None:
        """Functions running without the namespace sandbox is said in the header, not only in
        `cloudfn info` (a server refuses to start so; a laptop's console degrades)."""
        executor = getattr(self.platform, "executor", None)
        if executor is not None:  # in process: no runtime probing (info's) on the start's path
            warning = executor.protections().get("warning", "")
        else:
            try:
                warning = ((await self.platform.info()).get("protections") or {}).get("warning", "")
            except Exception:
                return  # unreachable or refused: the event stream's state says so already
        if warning:
            self.sandbox_note = " · ⚠ functions run unsandboxed"
            self._update_subtitle()
            self.notify(
                warning + " (cloudfn info lists every protection)", title="Sandbox", severity="warning", timeout=15
            )

    def started(self) -> None:
        """The main screen is up (called after its first paint): what the start allocated (the
        widgets, the functions) lives on, so it joins the frozen objects; collections resume."""
        if self._gc_paused:
            self._gc_paused = False
            gc.freeze()
            gc.enable()

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    def _initial_theme(self) -> str:
        for name in (
            self.start_theme,
            theme_files.remembered_theme() if self.remember else None,
            theme_files.DEFAULT_THEME,
        ):
            if name and name in self.available_themes:
                return name
        return "textual-dark"

    def _theme_changed(self, theme: Theme) -> None:
        if self.remember:
            theme_files.remember_theme(theme.name)

    def _update_subtitle(self) -> None:
        state = {
            "live": "",
            "connecting": " · connecting to the event stream…",
            "lost": " · ⚠ event stream lost — reconnecting",
            "none": " · no event stream",
            "refused": " · ⚠ token refused (401)",
        }.get(self.stream_state, "")
        self.sub_title = f"{self.attached}{self.sandbox_note}{state}"

    # -- the event stream --------------------------------------------------------------------
    async def _event_stream(self) -> None:
        attempt = 0
        on_open = self._stream_opened
        if hasattr(self.platform, "on_stream_state"):  # it knows better than a first read can
            self.platform.on_stream_state = self._remote_stream_state
            on_open = _nothing
        while True:
            try:
                stream = self.platform.events()
            except (AttributeError, NotImplementedError):
                self.stream_state = "none"
                self._update_subtitle()
                return
            try:
                first = True
                async for ev in _opened(stream, on_open):
                    if first:
                        first = False
                        attempt = 0
                    self.events_seen += 1
                    self._dispatch(ev)
                raise ConnectionError("the event stream ended")
            except asyncio.CancelledError:
                raise
            except (AttributeError, NotImplementedError):
                self.stream_state = "none"
                self._update_subtitle()
                return
            except Exception as exc:
                if _is_unauthorized(exc):  # the same token will not do better next time
                    self.auth_failed(exc)
                    return
                self._stream_lost(str(exc))
                await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1

    # -- a refused token ---------------------------------------------------------------------------
    def auth_failed(self, exc: Exception) -> None:
        from cloudfn_tui.screens.auth import AuthScreen

        if self.stream_state == "refused":
            return
        self.stream_state = "refused"
        self.stream_ready.clear()
        self._update_subtitle()
        url = getattr(self.platform, "url", None) or self.attached
        token_sent = bool(getattr(self.platform, "token", None))
        from core import paths

        config_file = str(self.config_file or paths.default_config_file())
        self.push_screen(AuthScreen(url, str(getattr(exc, "message", exc)), token_sent, config_file))

    def retry_auth(self) -> None:
        self.run_worker(self._retry_auth(), group="info", name="retry-auth", exclusive=True)

    async def _retry_auth(self) -> None:
        from cloudfn_tui.screens.auth import AuthScreen

        try:
            await self.platform.list_functions()
        except Exception as exc:
            self.notify(str(getattr(exc, "message", exc)), title="Still refused", severity="error")
            return
        self.stream_state = "connecting"
        self._update_subtitle()
        if isinstance(self.screen, AuthScreen):
            self.pop_screen()
        self.run_worker(self._event_stream(), group="events", name="event-stream", exit_on_error=False)
        main = self._main()
        if main is not None:
            main.load_all()

    def _stream_lost(self, reason: str) -> None:
        was_live = self.stream_state == "live"
        self.stream_state = "lost"
        self.stream_ready.clear()
        self._update_subtitle()
        if was_live:
            self.notify(f"Event stream lost ({reason}). Reconnecting…", title="Connection", severity="warning")

    def _remote_stream_state(self, state: str) -> None:
        """A RemotePlatform reconnects its stream by itself and reports the state here."""
        if state == "live":
            self._stream_opened()
        elif state == "lost":
            self._stream_lost(f"{getattr(self.platform, 'url', 'the server')} is not answering")

    def _stream_opened(self) -> None:
        reconnected = self.stream_state == "lost"
        self.stream_state = "live"
        self.stream_ready.set()
        self._update_subtitle()
        if reconnected:
            self.notify("Event stream back.", title="Connection")
            main = self._main()
            if main is not None:
                main.load_all()  # catch up on what happened while away

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _dispatch(self, ev: Any) -> None:
        if ev.kind == "alert.fired":
            d = ev.data
            self.notify(
                d.get("summary") or f"{d.get('rule')} is firing",
                title=f"Alert: {d.get('rule')}",
                severity="error" if d.get("severity") == "critical" else "warning",
                timeout=8,
            )
        elif ev.kind == "alert.resolved":
            self.notify(ev.data.get("summary") or "resolved", title=f"Alert: {ev.data.get('rule')}", timeout=4)
        main = self._main()
        if main is not None and main.is_mounted:
            main.on_platform_event(ev)

    # -- quit: never with unsaved code unasked ------------------------------------------------------
    async def action_quit(self) -> None:
        from cloudfn_tui.screens.auth import AuthScreen
        from cloudfn_tui.screens.modals import QuitScreen

        if isinstance(self.screen, (QuitScreen, AuthScreen)):
            if isinstance(self.screen, AuthScreen):
                self.exit(return_code=5)  # the CLI's "platform unavailable"
            return
        main = self._main()
        if main is None or not main.is_mounted or not (pending := main.pending_drafts()):
            self.exit()
            return
        names = sorted(main.functions.functions[i].name for i in pending)
        self.push_screen(QuitScreen(names), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        main = self._main()
        if choice is None or main is None:
            return
        if choice == "discard":
            main.discard_drafts()
            self.exit()
        elif choice == "keep":
            main.keep_drafts()
            self.exit()
        elif choice == "save":
            self.run_worker(self._save_and_quit(main), group="write", name="save-and-quit")

    async def _save_and_quit(self, main: MainScreen) -> None:
        problems = await main.save_drafts()
        if problems:
            main.keep_drafts()
            self.notify(
                "Not saved, so not quitting: " + "; ".join(problems), title="Quit", severity="error", timeout=15
            )
            return
        self.exit()

    # -- help --------------------------------------------------------------------------------
    def help_rows(self, screen: Any = None, editor: str | None = None) -> list[tuple[str, str, str, str]]:
        """Every key of `screen`; opened from an editor (`editor`: "code" or "event"), that
        editor's own keys first, since there printable keys are text."""
        screen = screen or self.screen
        keymap = self._keymap
        rows: list[tuple[str, str, str, str]] = []
        seen: set[str] = set()
        if editor:
            rows += self._editor_rows(editor)

        def add(cmd: Command, where: str) -> None:
            if cmd.id in seen:
                return
            seen.add(cmd.id)
            rows.append((keymap.get(cmd.id, cmd.keys), cmd.help or cmd.description, where, cmd.id))

        for cmd in getattr(screen, "COMMANDS_TABLE", []):
            add(cmd, "this screen")
        if isinstance(screen, MainScreen):
            for where, _, table in _widget_tables():
                for cmd in table:
                    add(cmd, where)
            from cloudfn_tui.widgets.editors import EDITOR_COMMANDS

            for cmd in EDITOR_COMMANDS:
                add(cmd, "editor")
            for keys, desc in (
                ("ctrl+z", "undo (also after a save)"),
                ("ctrl+y", "redo"),
                ("home,end", "line start / end"),
                ("f6 / f7", "select line / select all"),
            ):
                rows.append((keys, desc, "editor", "(textual)"))
        for cmd in APP_COMMANDS:
            add(cmd, "everywhere")
        rows.append(("ctrl+p", "command palette: every action, themes", "everywhere", "(textual)"))
        return rows

    def _editor_rows(self, editor: str) -> list[tuple[str, str, str, str]]:
        where = f"{editor} editor"

        def key(ident: str, default: str) -> str:
            return self._keymap.get(ident, default)

        rows = [
            (key("main.back", "escape"), "leave the editor, back to the function list", where, "main.back"),
            ("alt+1…8", "go to a pane (never typed here, even as ESC+digit in tmux)", where, "main.pane_*"),
            ("q j k / : ? [ ]", "typed as text in here: esc or alt+N first", where, "(text)"),
            (key("main.help", "f1"), "this help (? is text in here)", where, "main.help"),
            (key("main.zoom", "f11"), "maximise the editor, and back (z is text in here)", where, "main.zoom"),
            (key("main.invoke", "ctrl+r"), "invoke the function with the event", where, "main.invoke"),
        ]
        if editor == "code":
            rows.append((key("main.save", "ctrl+s"), "save the code as a new version", where, "main.save"))
        else:
            rows.append((key("main.saved_events", "ctrl+o"), "pick a saved event", where, "main.saved_events"))
            rows.append((key("main.save_event", "ctrl+t"), "save the event under a name", where, "main.save_event"))
        rows.append((key("editor.select_all", "ctrl+a"), "select all (home: line start)", where, "editor.select_all"))
        rows.append(("ctrl+z,ctrl+y", "undo / redo (a save keeps the history)", where, "(textual)"))
        rows.append((key("app.quit", "ctrl+q"), "quit (asks about unsaved drafts)", where, "app.quit"))
        return rows

    def show_help(self) -> None:
        from cloudfn_tui.widgets.editors import EditorArea

        focused = self.focused
        editor = None
        if isinstance(focused, EditorArea) and isinstance(self.screen, MainScreen):
            editor = "code" if focused.id == "code" else "event"
        name = f"{editor.capitalize()} editor" if editor else self.screen.__class__.__name__.removesuffix("Screen")
        self.push_screen(HelpScreen(self.help_rows(editor=editor), "Keys — " + (name or "screen")))

    async def on_unmount(self) -> None:
        self.started()  # a console closed before its main screen was up
        gc.unfreeze()
        if self.close_platform:
            await self.platform.close()


def _setting(config: Any, name: str, default: Any) -> Any:
    try:
        return config.settings[name].value
    except (KeyError, AttributeError):
        return default


def _is_unauthorized(exc: BaseException) -> bool:
    from core.remote import Unauthorized

    return isinstance(exc, Unauthorized)


def _nothing() -> None:
    pass


async def _opened(stream: Any, on_open) -> Any:
    """Yield from `stream`, calling `on_open` once the first read was attempted without error.

    An async generator only starts when first awaited, so the stream counts as open as soon
    as its first `__anext__` has run up to its wait for an event; errors before that propagate
    to the reconnect loop. (A stream whose first read can fail later, over a network, reports
    its state itself: `on_stream_state`, as RemotePlatform does.) It used to wait 0.2 s for
    an error first, so every start repainted its header once more, a fifth of a second in."""
    it = stream.__aiter__()
    first = asyncio.ensure_future(it.__anext__())
    try:
        await asyncio.sleep(0)  # the read's first step runs before this returns
    except asyncio.CancelledError:
        first.cancel()
        raise
    if first.done() and first.exception() is not None:
        if isinstance(first.exception(), StopAsyncIteration):
            return
        raise first.exception()
    on_open()
    try:
        yield await first
    except StopAsyncIteration:
        return
    async for ev in it:
        yield ev


def describe_platform(platform: Any) -> str:
    """Where the console is attached: the local data directory or the server's URL."""
    for attr in ("base_url", "url", "server_url"):
        url = getattr(platform, attr, None)
        if url:
            return f"remote · {url}"
    data_dir = getattr(platform, "data_dir", None)
    if data_dir:
        return f"local · {data_dir}"
    return platform.__class__.__name__
