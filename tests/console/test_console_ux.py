"""Issue 13: focus discipline in the editors, drafts that outlive the console, the quit dialog,
a refused token, the full rollback diff, and room to read (zoom, result scrolling, the diff key)."""

from __future__ import annotations

import pytest
from console_fakes import refusing_platform
from console_waits import settle, until

from cloudfn_tui._textual_compat import xterm_parser
from cloudfn_tui.screens.main import MainScreen
from cloudfn_tui.screens.modals import HelpScreen
from cloudfn_tui.widgets.editors import CodeEditor, EventEditor
from cloudfn_tui.widgets.function_list import FunctionList

SIZES = [(80, 24), (120, 40)]
PRINTABLE_NAV = ["right_square_bracket", "left_square_bracket", "q", "j", "k", "slash", "colon", "question_mark"]


def esc_digit(i: int) -> str:
    """The key Textual makes of what tmux and xterm send for alt+i (ESC then the digit)."""
    [key] = list(xterm_parser().feed(f"\x1b{i}"))
    return key.key


async def focus_editor(pilot, app, pane: str) -> None:
    await pilot.press("alt+2" if pane == "code" else "alt+3")
    target = app.screen.query_one(CodeEditor if pane == "code" else EventEditor).area
    await until(pilot, lambda: app.focused is target, f"the {pane} editor focused")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pane", ["code", "event"])
async def test_navigation_keys_never_type_into_an_editor(fake, make_app, size, pane):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        screen = app.screen
        code, event = screen.editor.area, screen.event_editor.area
        before = (code.text, event.text)
        for i in range(1, 9):
            for key in (f"alt+{i}", esc_digit(i)):
                await focus_editor(pilot, app, pane)
                await pilot.press(key)
                wanted = [p for p, _, _ in __import__("cloudfn_tui.screens.main", fromlist=["PANES"]).PANES][i - 1]
                await until(pilot, lambda wanted=wanted: screen.pane == wanted, f"{key} to the {wanted} pane")
                assert (code.text, event.text) == before, f"{key} changed a buffer"
        # Printable keys are text inside an editor: typed once each, nothing else happens (no
        # quit, filter, command line, help or pane change), and esc leaves for the list.
        await focus_editor(pilot, app, pane)
        area = code if pane == "code" else event
        area.move_cursor((0, 0))
        await pilot.press(*PRINTABLE_NAV)
        assert app.is_running and app.screen is screen and app.focused is area
        assert screen.pane == pane
        assert area.text == "][qjk/:?" + before[0 if pane == "code" else 1]
        assert (event.text if pane == "code" else code.text) == before[1 if pane == "code" else 0]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.focused, FunctionList), "esc back to the list")
        assert screen.pane == "functions"


async def edit_code(pilot, app, name: str, text: str) -> None:
    screen = app.screen
    table = screen.query_one(FunctionList)
    table.select_id(next(f.id for f in table.functions.values() if f.name == name))
    await pilot.pause()
    assert screen.current.name == name
    await focus_editor(pilot, app, "code")
    screen.editor.area.move_cursor((0, 0))
    await pilot.press(*["enter" if c == "\n" else c for c in text])
    assert screen.editor.dirty


def draft_files(folder) -> dict[str, str]:
    import json

    return {p.stem: json.loads(p.read_text())["code"] for p in folder.glob("*.json")} if folder.is_dir() else {}


@pytest.mark.parametrize("size", SIZES)
async def test_drafts_survive_a_restart_on_the_same_data_dir(fake, make_app, tmp_path, size):
    import stat

    from cloudfn_tui.screens.modals import QuitScreen

    folder = tmp_path / "drafts"
    app = make_app(fake, drafts_dir=folder)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await edit_code(pilot, app, "hello-python", "# one\n")
        await edit_code(pilot, app, "sum-nodejs", "// two\n")  # switching stashes the first
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        await pilot.press("k")
        await until(pilot, lambda: not app.is_running, "the console to quit")
    ids = {f.name: f.id for f in fake.functions.values()}
    files = draft_files(folder)
    assert files[ids["hello-python"]].startswith("# one\n") and files[ids["sum-nodejs"]].startswith("// two\n")
    assert set(files) == {ids["hello-python"], ids["sum-nodejs"]}
    for path in folder.glob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not list(folder.glob(".*"))  # no temp file left behind
    assert "# one" not in fake.functions[ids["hello-python"]].code  # kept, not saved

    again = make_app(fake, drafts_dir=folder)
    async with again.run_test(size=size) as pilot:
        await settle(pilot, again)
        await until(
            pilot,
            lambda: any("Draft restored" in str(n.message) for n in again._notifications),
            "the draft restored note",
        )
        note = next(str(n.message) for n in again._notifications if "Draft restored" in str(n.message))
        assert "hello-python" in note and "sum-nodejs" in note
        screen = again.screen
        table = screen.query_one(FunctionList)
        table.select_id(ids["hello-python"])
        await pilot.pause()
        assert screen.editor.area.text.startswith("# one\n") and screen.editor.dirty
        assert "draft restored" in str(screen.editor.border_title)
        await pilot.press("ctrl+s")  # saving it drops its file
        await settle(pilot, again)
        assert fake.functions[ids["hello-python"]].code.startswith("# one\n")
        assert set(draft_files(folder)) == {ids["sum-nodejs"]}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("choice", ["save", "keep", "discard", "cancel"])
async def test_quitting_with_unsaved_code_asks_save_keep_discard_or_cancel(fake, make_app, tmp_path, choice, size):
    from cloudfn_tui.screens.modals import QuitScreen

    folder = tmp_path / "drafts"
    app = make_app(fake, drafts_dir=folder)
    hello = next(f for f in fake.functions.values() if f.name == "hello-python")
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await edit_code(pilot, app, "hello-python", "# mine\n")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        await pilot.press({"save": "s", "keep": "k", "discard": "d", "cancel": "escape"}[choice])
        if choice == "cancel":
            await until(pilot, lambda: isinstance(app.screen, MainScreen), "back to the console")
            assert app.is_running and app.screen.editor.area.text.startswith("# mine\n")
            await pilot.press("escape", "q")  # `q` from the list: asks again
            await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the dialog again")
            return
        await until(pilot, lambda: not app.is_running, "the console to quit")
    saved = fake.functions[hello.id]
    assert saved.code.startswith("# mine\n") == (choice == "save")
    assert (hello.id in draft_files(folder)) == (choice == "keep")


async def test_quitting_without_unsaved_code_does_not_ask(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "the console to quit")


def statics_text(screen) -> str:
    import io

    from rich.console import Console

    console = Console(width=300, color_system=None, file=io.StringIO())
    for widget in screen.query("Static"):
        console.print(widget.content)
    return console.file.getvalue()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("token", [None, "wrong"])
async def test_a_refused_token_shows_what_was_wrong_and_how_to_fix_it(make_app, size, token):
    from cloudfn_tui.screens.auth import AuthScreen

    app = make_app(refusing_platform(token), config_file="/home/me/.config/cloudfn/config.yaml")
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AuthScreen), "the refused-token screen")
        await settle(pilot, app)
        text = statics_text(app.screen)
        for needle in (
            "http://cloudfn.test:8080",
            "401",
            "--token",
            "CLOUDFN_TOKEN",
            "server.token",
            "token_file",
            "/home/me/.config/cloudfn/config.yaml",
        ):
            assert needle in text, needle
        assert ("not the server's" in text) == bool(token) and ("sent no token" in text) == (not token)
        assert "token refused" in app.sub_title and "reconnecting" not in app.sub_title
        # No reconnect loop: the event stream worker has ended, and stays ended.
        assert all(w.is_finished for w in app.workers if w.group == "events")
        assert app.stream_state == "refused"
        await pilot.press("r")  # still refused: stays, and says so
        await until(pilot, lambda: any("Still refused" == n.title for n in app._notifications), "the retry")
        assert isinstance(app.screen, AuthScreen)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "quit")


@pytest.mark.parametrize("size", SIZES)
async def test_rollback_previews_and_reports_settings_as_well_as_code(fake, make_app, size):
    from cloudfn_tui.screens.modals import ConfirmScreen
    from cloudfn_tui.screens.pickers import VersionsScreen

    app = make_app(fake)
    hello = next(f for f in fake.functions.values() if f.name == "hello-python")
    v1 = hello
    await fake.update_function(
        hello.id,
        {"code": "def handler(e, c):\n    return 2\n", "timeout": 5, "memory": 256, "environment": {"MODE": "fast"}},
    )
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        table = app.screen.query_one(FunctionList)
        table.select_id(hello.id)
        await pilot.pause()
        await pilot.press("escape", "v")
        await until(pilot, lambda: isinstance(app.screen, VersionsScreen), "versions")
        await pilot.press("j")  # v1
        await pilot.pause()
        preview = statics_text(app.screen)
        for needle in (
            "-timeout: 5 s",
            "+timeout: 30 s",
            "-memory: 256 MB",
            "+memory: 128 MB",
            "-environment.MODE: fast",
            "-def handler(e, c):",
            "+def handler(event, context):",
        ):
            assert needle in preview, needle
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await settle(pilot, app)
        fn = fake.functions[hello.id]
        assert (fn.timeout, fn.memory, fn.environment, fn.code) == (v1.timeout, v1.memory, v1.environment, v1.code)
        await until(pilot, lambda: any(n.title == "Rolled back" for n in app._notifications), "the toast")
        toast = next(str(n.message) for n in app._notifications if n.title == "Rolled back")
        assert "code" in toast and "timeout 5 s → 30 s" in toast and "memory 256 MB → 128 MB" in toast
        assert "environment −MODE" in toast and "the code of" not in toast


@pytest.mark.parametrize("size", SIZES)
async def test_help_from_an_editor_lists_the_editors_own_keys(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await focus_editor(pilot, app, "event")
        await pilot.press("f1")  # ? is text in here
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert app.screen.title_text == "Keys — Event editor"
        first = [row for row in app.screen.rows if row[2] == "event editor"]
        assert app.screen.rows[: len(first)] == first  # the editor's keys come first
        ids = {row[3] for row in first}
        assert {"main.back", "main.pane_*", "main.zoom", "main.saved_events", "app.quit"} <= ids
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "help closed")
        await pilot.press("escape", "question_mark")  # from the list: no editor rows
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert not any(row[2].endswith("editor") and row[3] == "main.pane_*" for row in app.screen.rows)


@pytest.mark.parametrize("size", SIZES)
async def test_zoom_fills_the_screen_with_the_focused_pane_and_back(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        screen = app.screen
        await focus_editor(pilot, app, "code")
        await pilot.press("f11")  # z would be text in an editor
        await pilot.pause()
        code = screen.query_one(CodeEditor)
        assert screen.maximized is code and code.region.width == size[0]
        assert not screen.query_one(FunctionList).region  # the rest is hidden
        assert "z" not in code.area.text.splitlines()[0][:1]
        await pilot.press("alt+4")  # zoom follows a move to another pane
        await until(pilot, lambda: screen.maximized is screen.result_view, "the result zoomed")
        await pilot.press("z")
        await until(pilot, lambda: screen.maximized is None, "zoom off")
        assert screen.query_one(FunctionList).region or screen.narrow


@pytest.mark.parametrize("size", SIZES)
async def test_the_result_scrolls_with_g_end_and_page_keys_and_f4_shows_the_diff(fake, make_app, size):
    from cloudfn_tui.widgets.result_view import ResultView

    hello = next(f for f in fake.functions.values() if f.name == "hello-python")
    event = {"name": "Ada", "pad": list(range(60))}  # the fake answers with the event: a long result
    await fake.save_event(hello.id, "ada", event, last_result={"success": True, "result": {"message": "Bye!"}})
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        screen = app.screen
        screen.query_one(FunctionList).select_id(hello.id)
        await settle(pilot, app)  # the saved event is pre-filled
        assert screen.event_editor.saved_name == "ada"
        await pilot.press("f4")  # no result yet: says why
        await until(pilot, lambda: any("No diff" in str(n.message) for n in app._notifications), "no diff yet")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        view = screen.query_one(ResultView)
        await until(pilot, lambda: view.max_scroll_y > 0, "a result taller than its pane")
        assert view.has_diff and "F4 diff" in str(view.border_subtitle)
        await pilot.press("alt+4")
        await until(pilot, lambda: app.focused is view, "the result focused")
        await pilot.press("G")
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y, "G to the end")
        await pilot.press("g")
        await until(pilot, lambda: view.scroll_y == 0, "g to the top")
        await pilot.press("pagedown")
        await until(pilot, lambda: view.scroll_y > 0, "a page down")
        await pilot.press("home", "end")
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y, "end")
        await pilot.press("home", "escape")  # back to the list, then one key to the diff
        await until(pilot, lambda: isinstance(app.focused, FunctionList), "the list")
        await pilot.press("f4")
        await until(pilot, lambda: app.focused is view, "F4 focuses the result")
        await until(pilot, lambda: view.scroll_y > 0, "F4 scrolls to the diff")
        diff_top = view.diff.virtual_region.y
        assert view.scroll_y == min(diff_top, view.max_scroll_y)


def test_drafts_of_a_remote_go_to_the_xdg_state_folder_one_per_server(tmp_path, monkeypatch):
    from cloudfn_tui.drafts import DraftStore, drafts_folder
    from core.remote import RemotePlatform

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    a = drafts_folder(RemotePlatform("http://10.0.0.1:8080", "t"))
    b = drafts_folder(RemotePlatform("https://cloudfn.example.com", "t"))
    assert a != b and a.parent == b.parent == tmp_path / "state" / "cloudfn" / "drafts"
    assert "10.0.0.1" in a.name
    store = DraftStore(a)
    assert store.write("fn-1", "code", 3, "hello") and store.load_all()["fn-1"]["version"] == 3
    assert not store.write("../escape", "x", 1)  # ids are file names: nothing outside the folder
    store.remove("fn-1")
    assert store.load_all() == {}


def test_an_unwritable_drafts_folder_is_said_once_and_the_console_goes_on(tmp_path):
    from cloudfn_tui.drafts import DraftStore

    blocker = tmp_path / "file"
    blocker.write_text("")
    store = DraftStore(blocker / "drafts")  # a folder under a file: cannot exist
    assert not store.write("fn-1", "code", 1, "hello")
    assert "hello" in store.problem


async def test_discard_drops_the_shown_draft_and_its_file(fake, make_app, tmp_path):
    folder = tmp_path / "drafts"
    app = make_app(fake, drafts_dir=folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await edit_code(pilot, app, "hello-python", "# mine\n")
        screen = app.screen
        screen._persist_current_draft()  # what the 2 s timer does
        assert list(draft_files(folder).values())[0].startswith("# mine")
        await pilot.press("escape", "colon", *"discard", "enter")
        await settle(pilot, app)
        assert not screen.editor.dirty and not screen.editor.area.text.startswith("# mine")
        assert draft_files(folder) == {}


async def test_command_words_run_their_action(fake, make_app):
    """`:q` and the other words used to build a coroutine nobody awaited, and did nothing."""
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("colon", *"help", "enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), ":help")
        await pilot.press("escape", "colon", "q", "enter")
        await until(pilot, lambda: not app.is_running, ":q quits")


async def test_save_and_quit_stays_when_a_save_fails_and_keeps_the_draft(fake, make_app, tmp_path):
    from cloudfn_tui.screens.modals import QuitScreen
    from core.errors import FieldError, InvalidInput

    async def refuse(ref, data):
        raise InvalidInput("function", [FieldError("code", "does not compile")])

    folder = tmp_path / "drafts"
    app = make_app(fake, drafts_dir=folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await edit_code(pilot, app, "hello-python", "# mine\n")
        fake.update_function = refuse
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        await pilot.press("s")
        await until(pilot, lambda: any(n.title == "Quit" for n in app._notifications), "the failure")
        assert app.is_running and isinstance(app.screen, MainScreen)
        assert "does not compile" in next(str(n.message) for n in app._notifications if n.title == "Quit")
        assert list(draft_files(folder).values())[0].startswith("# mine")
