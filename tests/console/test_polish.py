"""Issue 13 items 8-10: the console's rough edges (help at 80x24, the palette, editor basics,
small things), each checked on what the user sees or gets."""

from __future__ import annotations

import re

import pytest
from console_waits import screen_text, settle, until
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable

from cloudfn_tui.screens.modals import HelpScreen

SIZES = [(80, 24), (120, 40)]
BORDERS = r"[\s█▁▂▃▄▅▆▇▔▕▏│]+"


def shown(lines: list[str], text: str) -> bool:
    """`text` is on the screen whole, maybe wrapped over lines (and a dialog's borders)."""
    pattern = BORDERS.join(re.escape(word) for word in text.split())
    return re.search(pattern, "\n".join(lines)) is not None


@pytest.mark.parametrize("size", SIZES)
async def test_help_rows_fit_with_descriptions_uncut_and_short_key_names(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.pause()
        lines = screen_text(app)
        rows = app.screen.rows
        header = next(line for line in lines if " key " in line and "does" in line)
        start = header.index("does")
        end = header.index("  where") if "  where" in header else len(header)
        column = [line[start:end] for line in lines]  # the descriptions, as wrapped
        for _, desc, _, _ in rows[:6]:
            assert shown(column, desc), f"cut: {desc!r}\n" + "\n".join(lines)
        assert not any("…" in line for line in lines)
        # the next-pane row, scrolled to: its ctrl+] as the footer would say it
        table = app.screen.query_one("#help-table", DataTable)
        index = next(i for i, r in enumerate(rows) if r[3] == "main.next_pane")
        table.move_cursor(row=index)
        await pilot.pause()
        lines = screen_text(app)
        assert any("] / ctrl+]" in line and "move to the next pane" in line for line in lines)
        assert not any("square_bracket" in line for line in lines)


@pytest.mark.parametrize("size", SIZES)
async def test_palette_entries_are_unique_with_readable_keys(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "palette")
        options = app.screen.query_one(CommandList)
        await until(pilot, lambda: options.option_count > 20, "the entries")
        await pilot.pause()
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        titles = [p.split("\n")[0] for p in prompts]
        assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
        assert titles.count("Theme") == 1 and titles.count("Quit") == 1
        assert "Metrics" in titles and "Metrics pane" in titles
        help_entry = prompts[titles.index("Help")]
        assert help_entry.endswith("· ?/F1")
        assert not any(re.search(r"question_mark|square_bracket|\[\w+(,\w+)*\]", p) for p in prompts), prompts


# -- editor basics ---------------------------------------------------------------------------------
async def open_code(pilot, app, name: str):
    table = app.screen.functions
    table.select_id(next(f.id for f in table.functions.values() if f.name == name))
    await pilot.pause()
    await pilot.press("alt+2")
    area = app.screen.editor.area
    await until(pilot, lambda: app.focused is area, "the code editor focused")
    return area


@pytest.mark.parametrize("size", SIZES)
async def test_select_all_then_typing_replaces_everything(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        area = await open_code(pilot, app, "hello-python")
        assert "def handler" in area.text
        await pilot.press("ctrl+a", *"x = 1")
        assert area.text == "x = 1"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "name, line, indent",
    [
        ("hello-python", "def f():", "    "),
        ("hello-python", "x = call(", "    "),
        ("sum-nodejs", "function f() {", "  "),
        ("ok-go", "func f() {", "\t"),
    ],
)
async def test_enter_after_a_block_opener_indents_per_language(fake, make_app, size, name, line, indent):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        area = await open_code(pilot, app, name)
        await pilot.press("ctrl+a", "delete", *line, "enter", "y")
        assert area.text == f"{line}\n{indent}y"
        await pilot.press("enter", "z")  # an ordinary line keeps its indent
        assert area.text == f"{line}\n{indent}y\n{indent}z"


@pytest.mark.parametrize("size", SIZES)
async def test_undo_after_a_save_brings_back_the_text_before_it(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        area = await open_code(pilot, app, "hello-python")
        before = area.text
        await pilot.press("end", *"  # note")
        edited = area.text
        assert edited != before
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert app.screen.current.version == 2 and app.screen.current.code == edited
        assert not app.screen.editor.dirty
        await pilot.press("ctrl+z")
        assert area.text == before
        assert app.screen.editor.dirty  # the undone text is a change against v2


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "name, broken, line",
    [
        ("hello-python", "def handler(event, context):\n    return {\n\ndef other(:\n    pass\n", 4),
        ("sum-nodejs", "function handler(e) {\n  return 1;\n}\n}\n", 4),
        ("ok-go", "func handler(e interface{}) interface{} {\n\treturn e +\n}\n", 3),
    ],
)
async def test_a_save_of_broken_code_marks_the_line_and_still_saves(fake, make_app, size, name, broken, line):
    app = make_app(fake)
    async with app.run_test(size=size, notifications=True) as pilot:
        await settle(pilot, app)
        area = await open_code(pilot, app, name)
        area.load_text(broken)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        await until(pilot, lambda: any(n.title == "Syntax error" for n in app._notifications), "the warning")
        assert app.screen.current.version == 2 and app.screen.current.code == broken
        assert area.selection.start[0] == line - 1 and area.selection.start != area.selection.end
        note = next(n.message for n in app._notifications if n.title == "Syntax error")
        assert note.startswith(f"line {line}: ") and "saved as v2" in note


# -- the small things ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
async def test_alert_banner_and_table_say_each_thing_once_with_readable_values(fake, make_app, size):
    from core.alerts import describe
    from core.models import AlertRule

    rule = AlertRule.model_validate(
        {
            "name": "okrate",
            "metric": "success_rate",
            "comparison": "<",
            "threshold": 90,
            "id": "rule-0",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z",
        }
    )
    fake.rules[rule.id] = rule
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "stream")
        await pilot.press("alt+8")
        await settle(pilot, app)
        fake.publish(
            "alert.fired",
            {
                "rule": "okrate",
                "state": "firing",
                "severity": "warning",
                "value": 53.846153,
                "summary": describe(rule, 53.846153, "firing"),
            },
        )
        await until(pilot, lambda: app.events_seen == 1, "the alert")
        await settle(pilot, app)
        lines = screen_text(app)
        text = "\n".join(lines)
        assert "● okrate: success_rate 53.8% < 90%" in text
        assert "okrate: okrate" not in text and "53.846" not in text
        assert any("okrate" in line and "53.8%" in line for line in lines if "●" not in line)  # the table's value


@pytest.mark.parametrize("size", SIZES)
async def test_the_template_picker_shows_whole_descriptions_and_no_seed(fake, make_app, size):
    from textual.widgets import Select

    from cloudfn_tui.screens.forms import CreateFunctionScreen

    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateFunctionScreen), "the form")
        form = app.screen
        for runtime in ("python", "nodejs", "go"):
            form.query_one("#new-runtime", Select).value = runtime
            await pilot.pause()
            for b in (t for t in form.templates if t.spec.runtime == runtime):
                form.query_one("#new-template", Select).value = b.spec.name
                await pilot.pause()
                box = form.query_one(".dialog").region
                lines = [line[box.x : box.right] for line in screen_text(app)[box.y : box.bottom]]
                assert shown(lines, b.spec.description), b.spec.description
                assert "seed" not in "\n".join(lines)
                options = [str(p) for p, _ in form._template_options(runtime)]
                assert all("—" not in o for o in options)


@pytest.mark.parametrize("size", SIZES)
async def test_a_following_log_pane_shows_the_newest_line_as_it_first_overflows(fake, make_app, size):
    from cloudfn_tui.widgets.log_view import LogView

    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("alt+5")
        await settle(pilot, app)
        view = app.screen.query_one(LogView)
        assert view.following
        for i in range(view.size.height + 3):  # through the first overflow and past it
            view.append_record(
                {"time": "2025-01-02T03:04:05Z", "level": "info", "function": "f", "message": f"line number {i:03d}"}
            )
            view.flush()
            await pilot.pause()
            await pilot.pause()
            text = "\n".join(screen_text(app))
            assert f"line number {i:03d}" in text, f"line {i} hidden at height {view.size.height}\n{text}"


@pytest.mark.parametrize("size", SIZES)
async def test_the_functions_pane_has_a_title(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        pane = app.screen.query_one("#pane-functions").region
        assert "Functions" in screen_text(app)[pane.y]  # its top border, as the other panes'


@pytest.mark.parametrize("size", SIZES)
async def test_a_functions_result_stays_when_moving_away_and_back(fake, make_app, size):
    from cloudfn_tui.widgets.result_view import ResultView

    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        screen = app.screen
        await open_code(pilot, app, "fail-python")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        view = screen.query_one(ResultView)
        shown = view.text
        assert view.result is not None and not view.result.success
        await pilot.press("escape")
        await settle(pilot, app)
        await pilot.press("j")  # the next function: its own (empty) result
        await settle(pilot, app)
        assert screen.current.name != "fail-python" and view.result is None
        await pilot.press("ctrl+g")  # no stale stack to jump to
        await settle(pilot, app)
        assert screen.editor.area.selection.is_empty
        await pilot.press("k")
        await settle(pilot, app)
        assert screen.current.name == "fail-python"
        assert view.result is not None and view.text == shown


@pytest.mark.parametrize("size", SIZES)
async def test_no_changed_elsewhere_toast_after_ones_own_save(fake, make_app, size):
    import asyncio

    app = make_app(fake)
    original = fake.update_function

    async def update_and_announce(ref, data):
        # As the platforms do: the event goes out before the call returns, and may be read first.
        new = await original(ref, data)
        seen = app.events_seen
        fake.publish("function.updated", new.model_dump(mode="json"))
        for _ in range(1000):
            if app.events_seen > seen:
                break
            await asyncio.sleep(0)
        return new

    fake.update_function = update_and_announce
    async with app.run_test(size=size, notifications=True) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "stream")
        await settle(pilot, app)
        await open_code(pilot, app, "hello-python")
        await pilot.press("end", *"  # mine")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        await until(pilot, lambda: any("Saved" in str(n.message) for n in app._notifications), "saved")
        assert app.screen.current.version == 2
        assert not any("changed elsewhere" in str(n.message) for n in app._notifications)
        # a change made elsewhere while editing still says so
        await pilot.press(*" more")
        other = app.screen.current.model_copy(update={"version": 3, "code": "def handler(e, c):\n    return 3\n"})
        fake.publish("function.updated", other.model_dump(mode="json"))
        await until(
            pilot,
            lambda: any("changed elsewhere (now v3)" in str(n.message) for n in app._notifications),
            "the warning",
        )
