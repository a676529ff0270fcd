"""Issue 15 in the console: the code editor switches between a function's files (f6, shift+f6,
`:file NAME`), adds, renames and removes files from the command line, saves every file as one
new version, and keeps per-file edits in drafts that outlive the console. At 120x40 and 80x24."""

from __future__ import annotations

import json

import pytest
from console_waits import screen_text, settle, until

from cloudfn_tui.screens.main import MainScreen
from cloudfn_tui.widgets.function_list import FunctionList

SIZES = [(120, 40), (80, 24)]
CODE = "import helper\ndef handler(event, context):\n    return helper.X\n"
FILES = {"helper.py": "X = 1\n", "data/table.json": '{"a": 1}\n'}


async def multi(fake):
    return await fake.create_function({"name": "multi", "runtime": "python", "code": CODE, "files": FILES})


async def open_multi(pilot, app, fn) -> MainScreen:
    await settle(pilot, app)
    screen = app.screen
    screen.query_one(FunctionList).select_id(fn.id)
    await pilot.pause()
    assert screen.current.id == fn.id
    return screen


async def command(pilot, app, line: str) -> None:
    await pilot.press("escape")
    await pilot.press("colon")
    await pilot.press(*line)
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_f6_walks_the_files_and_the_strip_names_them(fake, make_app, size):
    fn = await multi(fake)
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        screen = await open_multi(pilot, app, fn)
        editor = screen.editor
        assert editor.file_names() == ["handler.py", "data/table.json", "helper.py"]
        assert editor.shown == "handler.py" and editor.area.text == CODE
        screen.action_show_pane("code")  # at 80x24 one pane is shown at a time
        await until(pilot, lambda: any("1/3 handler.py" in line for line in screen_text(app)), "the file strip")
        await pilot.press("f6")
        await pilot.pause()
        assert editor.shown == "data/table.json" and editor.area.text == FILES["data/table.json"]
        assert editor.area.language == "json"
        assert "data/table.json" in str(editor.border_title)
        await pilot.press("shift+f6", "shift+f6")
        await pilot.pause()
        assert editor.shown == "helper.py" and editor.area.text == "X = 1\n"
        await command(pilot, app, "file handler.py")
        assert editor.shown == "handler.py"


async def test_a_single_file_function_shows_no_strip(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        editor = app.screen.editor
        assert editor.file_names() == [editor.handler_file]
        assert not editor.query_one("#file-strip").display
        await pilot.press("f6")
        await pilot.pause()
        assert any("has one file" in str(n.message) for n in app._notifications)


@pytest.mark.parametrize("size", SIZES)
async def test_edits_in_two_files_save_as_one_version(fake, make_app, size):
    fn = await multi(fake)
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        screen = await open_multi(pilot, app, fn)
        editor = screen.editor
        await command(pilot, app, "file helper.py")
        editor.area.focus()
        editor.area.move_cursor((0, 0))
        await pilot.press(*"Y = 2", "enter")
        assert editor.dirty
        await pilot.press("f6")  # to handler.py: the edit of helper.py is kept
        await pilot.pause()
        assert editor.shown == "handler.py" and editor.dirty
        editor.area.move_cursor((0, 0))
        await pilot.press(*"# top", "enter")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fake.functions[fn.id].version == 2, "the save")
        saved = fake.functions[fn.id]
        assert saved.code == "# top\n" + CODE
        assert saved.files == {**FILES, "helper.py": "Y = 2\nX = 1\n"}
        assert len(fake.versions[fn.id]) == 2  # one version for both files
        await settle(pilot, app)
        assert not editor.dirty


async def test_add_rename_and_remove_files_from_the_command_line(fake, make_app):
    fn = await multi(fake)
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_multi(pilot, app, fn)
        editor = screen.editor
        await command(pilot, app, "file lib/util.py")
        assert editor.shown == "lib/util.py" and editor.area.text == "" and editor.dirty
        await pilot.press(*"def f(): pass")
        await command(pilot, app, "file mv lib/tools.py")
        assert editor.shown == "lib/tools.py" and "lib/util.py" not in editor.texts
        await command(pilot, app, "file data/table.json")
        await command(pilot, app, "file rm")
        assert editor.shown == "handler.py" and "data/table.json" not in editor.texts
        # bad names are refused with the reason, and the handler file stays
        await command(pilot, app, "file ../escape.py")
        await command(pilot, app, "file rm")
        messages = " | ".join(str(n.message) for n in app._notifications)
        assert "'..'" in messages and "cannot be removed" in messages
        assert "../escape.py" not in editor.texts and editor.shown == "handler.py"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fake.functions[fn.id].version == 2, "the save")
        assert fake.functions[fn.id].files == {"helper.py": "X = 1\n", "lib/tools.py": "def f(): pass"}
        await command(pilot, app, "files")
        assert any("3 files: handler.py, helper.py, lib/tools.py" in str(n.message) for n in app._notifications)
        # a :file command is not also reported as unknown (it fell through to the name lookup)
        assert not any("unknown command" in str(n.message) for n in app._notifications)


async def test_per_file_drafts_outlive_the_console(fake, make_app, tmp_path):
    from cloudfn_tui.screens.modals import QuitScreen

    fn = await multi(fake)
    folder = tmp_path / "drafts"
    app = make_app(fake, drafts_dir=folder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_multi(pilot, app, fn)
        await command(pilot, app, "file helper.py")
        screen.editor.area.focus()
        screen.editor.area.move_cursor((0, 0))
        await pilot.press(*"# kept", "enter")
        await command(pilot, app, "file new.txt")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        await pilot.press("k")
        await until(pilot, lambda: not app.is_running, "the console to quit")
    doc = json.loads((folder / f"{fn.id}.json").read_text())
    assert doc["code"] == CODE and doc["files"] == {**FILES, "helper.py": "# kept\nX = 1\n", "new.txt": ""}

    again = make_app(fake, drafts_dir=folder)
    async with again.run_test(size=(80, 24)) as pilot:
        screen = await open_multi(pilot, again, fn)
        editor = screen.editor
        assert editor.dirty and "draft restored" in str(editor.border_title)
        assert editor.workspace() == (CODE, {**FILES, "helper.py": "# kept\nX = 1\n", "new.txt": ""})
        await command(pilot, again, "discard")
        assert editor.workspace() == (CODE, FILES) and not editor.dirty


async def test_files_changed_elsewhere_reach_the_editor_though_events_carry_names_only(fake, make_app):
    fn = await multi(fake)
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_multi(pilot, app, fn)
        assert screen.editor.texts["helper.py"] == FILES["helper.py"]
        # another client saves new texts: the event names the files with their sizes only
        new = await fake.update_function(fn.id, {"files": {**FILES, "helper.py": "X = 2\n"}})
        doc = new.summary().to_doc()
        assert "files" not in doc and doc["file_sizes"]["helper.py"] == 6
        fake.publish("function.updated", doc)
        await until(pilot, lambda: screen.editor.texts.get("helper.py") == "X = 2\n", "the new text in the editor")
        assert screen.current.version == new.version and screen.current.complete
        # a refresh of the list fetches nothing it already holds whole
        gets = fake.gets
        await screen._load_functions()
        assert fake.gets == gets and screen.editor.texts["helper.py"] == "X = 2\n"
