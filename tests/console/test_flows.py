"""Pilot tests of every console flow, on an in-memory platform (fast, deterministic)."""

from __future__ import annotations

import json

import pytest
from console_waits import settle, until
from textual.widgets import Input, Tabs

from cloudfn_tui.screens.forms import ConfigureScreen, CreateFunctionScreen
from cloudfn_tui.screens.main import MainScreen
from cloudfn_tui.screens.modals import ConfirmScreen, HelpScreen
from cloudfn_tui.screens.pickers import InvocationScreen, SavedEventsScreen, VersionsScreen
from cloudfn_tui.widgets.editors import CodeEditor, EventEditor
from cloudfn_tui.widgets.function_list import FunctionList
from cloudfn_tui.widgets.log_view import LogView
from cloudfn_tui.widgets.result_view import ResultView


def names(app) -> list[str]:
    table = app.screen.query_one(FunctionList)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def select(pilot, app, name: str) -> None:
    table = app.screen.query_one(FunctionList)
    table.select_id(next(f.id for f in table.functions.values() if f.name == name))
    await pilot.pause()
    assert app.screen.current.name == name


def notes(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_list_shows_the_functions_with_runtime_and_filters_on_slash(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        assert names(app) == ["fail-python", "hello-python", "ok-go", "sum-nodejs"]
        await pilot.press("slash")
        assert app.focused.id == "filter"
        await pilot.press(*"python")
        assert names(app) == ["fail-python", "hello-python"]
        await pilot.press("enter")
        assert isinstance(app.focused, FunctionList)
        await pilot.press("j")  # j/k move in the list
        assert app.screen.current.name == "hello-python"
        await pilot.press("slash", "escape")  # esc clears the filter
        assert len(names(app)) == 4


async def test_the_filter_takes_the_keys_at_80x24_too(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("slash")
        await settle(pilot, app)
        assert app.focused.id == "filter"
        await pilot.press(*"fail")
        assert names(app) == ["fail-python"]


async def test_create_from_a_template(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, CreateFunctionScreen)
        await pilot.press(*"my-fn")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen)
        assert "my-fn" in names(app)
        assert app.screen.current.name == "my-fn"
        assert "def handler" in app.screen.query_one(CodeEditor).area.text


async def test_create_reports_an_invalid_name(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", *"Bad/Name", "ctrl+s")
        await settle(pilot, app)
        assert "Bad/Name" not in names(app)
        assert any("name" in n for n in notes(app))


async def test_edit_marks_dirty_undo_and_ctrl_s_saves_a_new_version(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        editor = app.screen.query_one(CodeEditor)
        editor.area.focus()
        await pilot.press("end", "x")
        assert editor.dirty and "modified" in str(editor.border_title)
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert not editor.dirty
        await pilot.press("#", " ", "h", "i")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        fn = await fake.get_function("hello-python")
        assert fn.version == 2 and "# hi" in fn.code
        assert not editor.dirty and "v2" in str(editor.border_title)


async def test_invoke_success_with_ctrl_r_and_f5(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        app.screen.query_one(EventEditor).area.load_text('{"name": "Ada"}')
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        view = app.screen.query_one(ResultView)
        assert view.result.success
        text = view.text
        assert "✓ success" in text and "12.5 ms" in text and "cold" in text and "6.0 MB" in text
        assert '"Ada"' in text and "hi from the function" in text
        assert "✓" in str(app.screen.query_one(FunctionList).get_row(app.screen.current.id)[3])
        await pilot.press("f5")
        await settle(pilot, app)
        assert fake.invocations == 2 and "warm" in view.text


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_invoke_error_shows_stack_and_ctrl_g_jumps_to_the_line(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await select(pilot, app, "fail-python")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        text = app.screen.query_one(ResultView).text
        assert "HandlerError" in text and "out of stock" in text and "handler.py:2:5" in text
        await pilot.press("ctrl+g")
        await pilot.pause()
        area = app.screen.query_one(CodeEditor).area
        assert area.has_focus and area.cursor_location == (1, 4)  # line 2, column 5
        assert area.selected_text.strip().startswith("raise")  # the line is highlighted
        assert area.scroll_offset.x == 0  # and its start is in sight


async def test_a_bad_event_is_refused_before_invoking(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        app.screen.query_one(EventEditor).area.load_text('{"name": ')
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert fake.invocations == 0
        assert any("not valid JSON" in n for n in notes(app))
        assert app.screen.query_one(EventEditor).area.has_focus


async def test_saved_event_keeps_the_last_result_and_a_new_run_shows_a_diff(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        app.screen.query_one(EventEditor).area.load_text('{"name": "Ada"}')
        await pilot.press("ctrl+t")
        await pilot.press(*"ada", "enter")
        await settle(pilot, app)
        assert (await fake.list_saved_events("hello-python"))[0].name == "ada"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        saved = (await fake.list_saved_events("hello-python"))[0]
        assert saved.last_result == {"success": True, "result": {"message": "Hello!", "event": {"name": "Ada"}}}
        # The function changes; the same saved event now answers differently.
        await fake.update_function("hello-python", {"environment": {"GREETING": "Hi"}})
        app.screen._replace(await fake.get_function("hello-python"))
        # Pick it from the list (ctrl+o), as a user would after a restart.
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, SavedEventsScreen), "saved events")
        await pilot.press("enter")
        await settle(pilot, app)
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        text = app.screen.query_one(ResultView).text
        assert "diff against the last run" in text
        assert '-    "message": "Hello!"' in text and '+    "message": "Hi!"' in text
        # Delete it, with confirmation.
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, SavedEventsScreen), "saved events")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await settle(pilot, app)
        assert await fake.list_saved_events("hello-python") == []


async def test_delete_asks_first(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "ok-go")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("n")
        await settle(pilot, app)
        assert "ok-go" in names(app)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await settle(pilot, app)
        assert "ok-go" not in names(app)
        assert all(f.name != "ok-go" for f in await fake.list_functions())


async def test_configure_changes_settings(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        timeout = app.screen.query_one("#cfg-timeout", Input)
        timeout.value = "12"
        app.screen.query_one("#cfg-env").load_text("GREETING=Hey\nDEBUG=1")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        fn = await fake.get_function("hello-python")
        assert fn.timeout == 12 and fn.environment == {"GREETING": "Hey", "DEBUG": "1"} and fn.version == 2


async def test_rollback_to_an_earlier_version(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await fake.update_function("hello-python", {"code": "def handler(e, c):\n    return 2\n"})
        await select(pilot, app, "hello-python")
        await pilot.press("r")  # refresh picks up v2
        await settle(pilot, app)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, VersionsScreen), "versions")
        await pilot.press("j", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await settle(pilot, app)
        fn = await fake.get_function("hello-python")
        assert fn.version == 3 and "Hello" in fn.code
        assert app.screen.query_one(CodeEditor).area.text == fn.code


async def test_live_panes_follow_the_event_stream_and_an_alert_fires_a_toast(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "stream")
        fake.publish(
            "log",
            {"time": "2025-01-02T03:04:05Z", "level": "error", "logger": "fn", "function": "ok-go", "message": "boom"},
        )
        fake.publish(
            "invocation.finished",
            {
                "id": "inv-x",
                "function_id": "fn-0003",
                "function_name": "ok-go",
                "runtime": "go",
                "status": "failed",
                "error_type": "Timeout",
                "started_at": "2025-01-02T03:04:05Z",
                "duration": 30000.0,
            },
        )
        fake.publish(
            "alert.fired",
            {"rule": "errors", "state": "firing", "severity": "critical", "summary": "error rate 50% > 10%"},
        )
        await until(pilot, lambda: app.events_seen == 3, "events")
        await pilot.pause()
        assert "boom" in app.screen.query_one(LogView).plain_lines()[-1]
        assert "Timeout" in str(app.screen.query_one(FunctionList).get_row("fn-0003")[3])
        assert any("error rate 50% > 10%" in n for n in notes(app))
        assert app.screen.alerts_pane.table.states["errors"].state == "firing"


async def test_alert_rules_can_be_created_edited_and_deleted(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("alt+8")
        await pilot.pause()
        assert app.focused.id == "alerts-table"
        await pilot.press("n")
        await until(pilot, lambda: app.screen.__class__.__name__ == "AlertRuleScreen", "rule form")
        app.screen.query_one("#rule-name", Input).value = "slow"
        app.screen.query_one("#rule-threshold", Input).value = "250"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        (rule,) = await fake.list_alert_rules()
        assert rule.name == "slow" and rule.threshold == 250
        await pilot.press("e")
        await until(pilot, lambda: app.screen.__class__.__name__ == "AlertRuleScreen", "rule form")
        app.screen.query_one("#rule-threshold", Input).value = "500"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert (await fake.list_alert_rules())[0].threshold == 500
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await settle(pilot, app)
        assert await fake.list_alert_rules() == []


async def test_log_pane_level_filter_search_and_pause(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(LogView)
        for i, level in enumerate(["debug", "info", "warning", "error"] * 5):
            view.append_record(
                {"time": "2025-01-02T03:04:05Z", "level": level, "logger": "x", "message": f"line {i} {level}"}
            )
        await pilot.press("alt+5")
        await pilot.pause()
        assert app.focused is view
        total = len(view.view)
        await pilot.press("l", "l")  # debug -> info -> warning
        # 5 warnings + 5 errors, and the platform's one warning ("... HandlerError")
        assert view.min_level == "warning" and len(view.view) == 11
        await pilot.press("slash", *"error", "enter")
        assert view.search_text == "error" and len(view.view) == 6
        assert all("error" in line.lower() for line in view.plain_lines())
        await pilot.press("p")
        view.append_record({"level": "error", "message": "while paused error"})
        assert view.paused and view.pending == 1 and len(view.view) == 6
        await pilot.press("p")
        assert len(view.view) == 7
        assert total == 22  # 20 + the fake platform's 2 recent lines


async def test_log_buffer_is_bounded():
    view = LogView(max_lines=100)
    for i in range(10_000):
        view.append_record({"level": "info", "message": str(i)})
    assert len(view.buffer) == 100 and len(view.view) == 100 and view.total == 10_000
    assert view.view[0].message == "9900"


async def test_history_opens_an_invocation(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        await pilot.press("r")  # reload history from the platform
        await settle(pilot, app)
        await pilot.press("alt+7", "enter")
        await until(pilot, lambda: isinstance(app.screen, InvocationScreen), "invocation")
        assert app.screen.record.id == "inv-0001"
        await pilot.press("escape")
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen)


async def test_help_lists_every_key_with_its_id(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[3] for row in app.screen.rows}
        from cloudfn_tui.screens.main import MAIN_COMMANDS

        assert {c.id for c in MAIN_COMMANDS} <= ids
        assert {"logs.level", "alerts.new", "list.down", "app.quit"} <= ids
        await pilot.press("escape")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_every_binding_has_an_id():
    from textual.binding import Binding

    from cloudfn_tui import app as app_module
    from cloudfn_tui.screens import auth, forms, main, metrics, modals, pickers
    from cloudfn_tui.widgets import editors, function_list, live, log_view, result_view, tab_bar

    classes = [
        app_module.CloudfnApp,
        main.MainScreen,
        metrics.MetricsScreen,
        modals.ConfirmScreen,
        modals.HelpScreen,
        modals.PromptScreen,
        forms.CreateFunctionScreen,
        forms.ConfigureScreen,
        forms.AlertRuleScreen,
        pickers.VersionsScreen,
        pickers.SavedEventsScreen,
        pickers.InvocationScreen,
        function_list.FunctionList,
        live.HistoryTable,
        live.AlertsTable,
        log_view.LogView,
        tab_bar.TabBar,
        modals.QuitScreen,
        auth.AuthScreen,
        result_view.ResultView,
        editors.EditorArea,
    ]
    for cls in classes:
        for b in cls.__dict__.get("BINDINGS", []):
            assert isinstance(b, Binding) and b.id, f"{cls.__name__}: {b}"


async def test_the_config_keymap_remaps_a_key(fake, make_app):
    app = make_app(fake, keymap={"main.invoke": "f9", "nope.nothing": "x"})
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("f5")
        await settle(pilot, app)
        assert fake.invocations == 0
        await pilot.press("f9")
        await settle(pilot, app)
        assert fake.invocations == 1
        assert any("nope.nothing" in n for n in notes(app))
        rows = {r[3]: r[0] for r in app.help_rows(app.screen)}
        assert rows["main.invoke"] == "f9"


async def test_narrow_terminal_collapses_panes_into_tabs(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.narrow and screen.query_one("#pane-tabs", Tabs).display
        assert screen.query_one("#pane-functions").display and not screen.query_one("#pane-code").display
        await pilot.press("enter")  # open the selected function's code
        await pilot.pause()
        assert screen.query_one("#pane-code").display and not screen.query_one("#pane-functions").display
        await pilot.press("alt+5")
        await pilot.pause()
        assert screen.query_one("#live").display and not screen.query_one("#top").display
        await pilot.press("alt+1")
        await select(pilot, app, "fail-python")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert screen.pane == "result" and screen.query_one("#pane-result").display
        await pilot.press("escape")
        assert screen.pane == "functions"


async def test_command_mode(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"ok-go", "enter")
        assert app.screen.current.name == "ok-go"
        await pilot.press("colon", *"theme cloudfn-day", "enter")
        assert app.theme == "cloudfn-day"
        await pilot.press("colon", *"goto history", "enter")
        await pilot.pause()
        assert app.focused.id == "history"


async def test_palette_runs_actions(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("ctrl+p")
        await pilot.press(*"Invoke")
        from textual.command import CommandList

        await until(
            pilot,
            lambda: bool(app.screen.query(CommandList)) and app.screen.query_one(CommandList).option_count > 0,
            "hits",
        )
        await pilot.press("enter")
        await settle(pilot, app)
        assert fake.invocations == 1


async def test_theme_files_and_the_choice_is_remembered(fake, make_app, tmp_path, monkeypatch):
    (tmp_path / "xdg-config" / "cloudfn" / "themes").mkdir(parents=True)
    (tmp_path / "xdg-config" / "cloudfn" / "themes" / "mine.yaml").write_text(
        "name: mine\nprimary: '#ff00ff'\ndark: true\n"
    )
    app = make_app(fake, remember_theme=True, theme=None)
    async with app.run_test(size=(80, 24)) as pilot:
        assert {"cloudfn-night", "cloudfn-day", "cloudfn-contrast", "mine", "textual-dark"} <= set(app.available_themes)
        assert app.theme == "cloudfn-night"
        app.theme = "mine"
        await pilot.pause()
    app2 = make_app(fake, remember_theme=True, theme=None)
    async with app2.run_test(size=(80, 24)):
        assert app2.theme == "mine"


async def test_the_event_stream_reconnects_and_says_so(fake, make_app):
    fake.fail_events = 1
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "first connect")
        assert "⚠" not in app.sub_title
        fake.queue.put_nowait(ConnectionError("server went away"))
        await until(pilot, lambda: app.stream_state == "lost", "loss")
        assert "event stream lost" in app.sub_title
        await until(pilot, lambda: app.stream_state == "live", "reconnect")
        assert app.sub_title == "local · /data/cloudfn"


def test_each_bundled_example_is_in_a_folder_named_after_it():
    """The console finds an example's sample event by the function's name as a folder name."""
    from core import paths
    from core.bundle import bundles_in

    for bundle in bundles_in(paths.bundled_functions_dir()):
        assert bundle.folder.name == bundle.spec.name


async def test_a_wide_console_made_narrow_gets_the_pane_tabs(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await select(pilot, app, "ok-go")
        assert screen.pane_tabs is None  # made only when the terminal is small
        await pilot.resize_terminal(80, 24)
        await settle(pilot, app)
        assert screen.narrow and screen.query_one("#pane-tabs", Tabs).display
        assert screen.query_one("#pane-functions").display and not screen.query_one("#pane-code").display
        await pilot.press("alt+2")
        await pilot.pause()
        assert screen.query_one("#pane-tabs", Tabs).active == "tab-code" and screen.query_one("#pane-code").display
        await pilot.resize_terminal(120, 40)
        await settle(pilot, app)
        assert not screen.narrow and not screen.query_one("#pane-tabs", Tabs).display
        assert screen.query_one("#pane-functions").display and screen.query_one("#pane-code").display


async def test_alt_digit_switches_pane_as_xterm_and_tmux_send_it(fake, make_app):
    """Those terminals send ESC and the digit, which Textual reads as the character macOS's
    Option+digit types (alt+2 arrives as "™"); both forms move to the pane."""
    from cloudfn_tui._textual_compat import xterm_parser

    [key] = list(xterm_parser().feed("\x1b6"))  # what the terminal sends for alt+6
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press(key.key)
        await pilot.pause()
        assert screen.pane == "metrics" and screen.query_one("#live").display
        await pilot.press("alt+1")
        await pilot.pause()
        assert screen.pane == "functions" and screen.query_one("#pane-functions").display
        await pilot.press(list(xterm_parser().feed("\x1b2"))[0].key)  # alt+2: the code
        await pilot.pause()
        assert screen.pane == "code" and "™" not in screen.query_one(CodeEditor).area.text


@pytest.mark.parametrize("warning", ["runtime.sandbox is 'none': functions run unsandboxed", ""])
async def test_the_header_says_when_functions_run_unsandboxed(fake, make_app, warning):
    async def info():
        return {"protections": {"warning": warning}}

    fake.info = info
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        if warning:
            await until(pilot, lambda: "⚠ functions run unsandboxed" in app.sub_title, "the header's warning")
            assert any(warning in n.message for n in app._notifications)
        else:
            await settle(pilot, app)
            assert "unsandboxed" not in app.sub_title


async def test_command_mode_imports_the_originals_data_folder(fake, make_app, tmp_path):
    folder = tmp_path / "seed data"  # the rest of the line is the folder, spaces kept
    folder.mkdir()
    (folder / "functions.json").write_text(
        json.dumps(
            [
                {
                    "id": "fn_1",
                    "name": "Imported Fn",
                    "runtime": "python",
                    "code": "def handler(e, c):\n    return 1\n",
                    "handler": "",
                    "environment": None,
                    "timeout": 0,
                    "memory": 0,
                },
                {"id": "fn_2", "name": "a/b", "runtime": "python", "code": "x"},
            ]
        ),
        encoding="utf-8",
    )
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"import {folder}", "enter")
        await settle(pilot, app)
        assert "Imported Fn" in names(app)
        assert any(
            "1 created" in n and "1 failed" in n and "'a/b' [fn_2]: name must not contain '/'" in n for n in notes(app)
        )
        await pilot.press("colon", *"imported fn", "enter")  # a name with a space, in another case
        await settle(pilot, app)
        assert app.screen.current.name == "Imported Fn"
