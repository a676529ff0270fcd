"""The console's side of asynchronous invocation: the history's trigger column and filter, and
the dead-letter list with replay and delete, by key and by the `:` command line, at 80x24."""

from __future__ import annotations

from console_fakes import T0
from console_waits import screen_text, settle, until

from cloudfn_tui.screens.dead_letters import DeadLettersScreen
from cloudfn_tui.screens.main import MainScreen
from cloudfn_tui.screens.modals import ConfirmScreen
from cloudfn_tui.widgets.live import HistoryTable
from core.models import InvocationRecord


def record(i: int, trigger: str, inv: str | None = None) -> InvocationRecord:
    return InvocationRecord(
        id=inv or f"inv-{i:04d}",
        function_id="fn-0000",
        function_name="hello-python",
        function_version=1,
        runtime="python",
        status="success" if i % 2 else "failed",
        started_at=T0.replace(second=i),
        trigger=trigger,
    )


def rows(table: HistoryTable) -> list[tuple[str, str]]:
    return [(str(table.get_row_at(i)[1]), str(table.get_row_at(i)[5])) for i in range(table.row_count)]


async def test_history_shows_the_trigger_and_filters_by_it(fake, make_app):
    # Three attempts of one asynchronous invocation share an id: one row each.
    fake.records = [
        record(5, "retry", "inv-a"),
        record(4, "retry", "inv-a"),
        record(3, "async", "inv-a"),
        record(2, "http"),
        record(1, "manual"),
    ]
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("alt+7")
        await settle(pilot, app)
        table = app.screen.query_one(HistoryTable)
        await until(pilot, lambda: table.row_count == 5, "five history rows")
        assert [t for _, t in rows(table)] == ["retry", "retry", "async", "http", "manual"]
        await pilot.press("t")  # manual
        assert [t for _, t in rows(table)] == ["manual"] and "manual" in table.border_title
        await pilot.press("t", "t", "t")  # http, schedule, async
        assert [t for _, t in rows(table)] == ["async"]
        await pilot.press("t")
        assert [t for _, t in rows(table)] == ["retry", "retry"]
        await pilot.press("t")
        assert table.row_count == 5 and table.border_title == "History"
        await pilot.press("colon", *"trigger http", "enter")
        await settle(pilot, app)
        assert [t for _, t in rows(table)] == ["http"]
        await pilot.press("colon", *"trigger carrier", "enter")
        await settle(pilot, app)
        assert any("triggers:" in n.message for n in app._notifications)


async def test_dead_letters_replay_and_delete_by_key_and_command(fake, make_app):
    first, second = fake.add_dead_letter("fail-python", 1), fake.add_dead_letter("fail-python", 2)
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen), "dead letters")
        await settle(pilot, app)
        seen = "\n".join(screen_text(app))  # what the user sees at 80x24
        assert "retries exhausted" in seen and "fail-python" in seen and "r replays" in seen
        await pilot.press("r")  # replays the highlighted (first) one
        await until(pilot, lambda: fake.replayed == [first.id], "replayed")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("colon", *"dead", "enter")
        await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen), "dead letters again")
        assert app.screen.letters == [second]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await until(pilot, lambda: fake.dead == {}, "deleted")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen), "empty list")
        await settle(pilot, app)
        assert "No dead letters" in "\n".join(screen_text(app))
        await pilot.press("escape")
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen)


async def test_configure_edits_the_async_settings(fake, make_app):
    from textual.widgets import Input

    from cloudfn_tui.screens.forms import ConfigureScreen

    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        name = app.screen.fn.name
        app.screen.query_one("#cfg-async-retries", Input).value = "9"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        # The platform's answer names the field; the form stays open and nothing changed.
        assert isinstance(app.screen, ConfigureScreen) or any(
            "async.max_retries" in n.message for n in app._notifications
        )
        assert (await fake.get_function(name)).async_.max_retries == 2
        if not isinstance(app.screen, ConfigureScreen):
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure again")
        app.screen.query_one("#cfg-async-retries", Input).value = "0"
        app.screen.query_one("#cfg-async-failure", Input).value = "sum-nodejs"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ConfigureScreen), "saved")
        fn = await fake.get_function(name)
        assert (fn.async_.max_retries, fn.async_.on_failure, fn.version) == (0, "sum-nodejs", 2)
