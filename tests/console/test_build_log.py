"""The console's live build log: while a function's dependencies install, a panel shows the
installer's lines under an indeterminate progress bar (from build.* events, so attached to a
server too); a success closes it, a failure stays with the error until esc."""

from __future__ import annotations

import asyncio

from console_waits import screen_text, settle, until
from textual.widgets import Log, ProgressBar

from cloudfn_tui.widgets.build_log import BuildLog


async def _select(pilot, app, name: str) -> None:
    from cloudfn_tui.widgets.function_list import FunctionList

    table = app.screen.query_one(FunctionList)
    table.select_id(next(f.id for f in table.functions.values() if f.name == name))
    await pilot.pause()


def _with_dependencies(fake, name: str) -> None:
    """A rebuild installs a manifest: without one the platform (and the fake) has nothing to build."""
    fn = next(f for f in fake.functions.values() if f.name == name)
    fake.functions[fn.id] = fn.model_copy(update={"dependencies": "tinypkg==1.0\n"})


async def test_rebuild_shows_live_progress_then_closes(fake, make_app):
    _with_dependencies(fake, "hello-python")
    fake.build_gate = asyncio.Event()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "event stream")
        await _select(pilot, app, "hello-python")
        panel = app.screen.query_one(BuildLog)
        assert not panel.display
        await pilot.press("colon", *"deps rebuild", "enter")
        await until(pilot, lambda: panel.display and panel.lines == 1, "the build log to open")
        # Mid-install: the progress bar runs and the installer's line is on screen.
        assert panel.running and panel.query_one(ProgressBar).display
        assert "Resolved 1 package in 1ms" in panel.query_one(Log).lines
        text = "\n".join(screen_text(app))
        assert "Installing the dependencies of hello-python (requirements.txt)" in text
        assert "Resolved 1 package in 1ms" in text
        fake.build_gate.set()
        await until(pilot, lambda: not panel.display, "the build log to close")
        await pilot.pause()
        assert not panel.query(ProgressBar)  # the animated bar lives only while an install runs
        await settle(pilot, app)
        assert any("hello-python (requirements.txt): tinypkg 1.0" in str(n.message) for n in app._notifications)


async def test_a_failed_install_keeps_the_log_open_until_esc(fake, make_app):
    _with_dependencies(fake, "hello-python")
    fake.build_gate = asyncio.Event()
    fake.build_gate.set()
    fake.build_fails = True
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "event stream")
        await _select(pilot, app, "hello-python")
        panel = app.screen.query_one(BuildLog)
        await pilot.press("colon", *"deps rebuild", "enter")
        await until(pilot, lambda: panel.has_class("failed"), "the failure")
        await settle(pilot, app)
        assert panel.display and not panel.running
        text = "\n".join(screen_text(app))
        assert "Install failed" in text and "reqeusts" in text
        assert any("No solution found" in str(n.message) for n in app._notifications)
        app.screen.query_one("#functions").focus()
        await pilot.press("escape")
        await pilot.pause()
        assert not panel.display


async def test_configure_edits_dependencies_and_shows_the_install(fake, make_app):
    """The configure form holds the manifest's text; saving a change installs it first, with the
    same live build log, and the new version carries it."""
    from textual.widgets import TextArea

    from cloudfn_tui.screens.forms import ConfigureScreen

    fake.build_gate = asyncio.Event()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "event stream")
        await _select(pilot, app, "hello-python")
        panel = app.screen.query_one(BuildLog)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        deps = app.screen.query_one("#cfg-dependencies", TextArea)
        assert deps.text == ""
        deps.load_text("tinypkg==1.0\n")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: panel.display and panel.lines == 1, "the build log to open")
        assert (await fake.get_function("hello-python")).version == 1  # not current before it installed
        fake.build_gate.set()
        await until(pilot, lambda: not panel.display, "the build log to close")
        await settle(pilot, app)
        fn = await fake.get_function("hello-python")
        assert fn.dependencies == "tinypkg==1.0\n" and fn.version == 2


async def test_configure_with_a_failing_install_changes_nothing(fake, make_app):
    from cloudfn_tui.screens.forms import ConfigureScreen

    fake.build_gate = asyncio.Event()
    fake.build_gate.set()
    fake.build_fails = True
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.stream_state == "live", "event stream")
        await _select(pilot, app, "hello-python")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        app.screen.query_one("#cfg-dependencies").load_text("reqeusts\n")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.query_one(BuildLog).has_class("failed"), "the failure")
        await settle(pilot, app)
        assert any("No solution found" in str(n.message) for n in app._notifications)
        fn = await fake.get_function("hello-python")
        assert fn.version == 1 and fn.dependencies == ""


async def test_go_has_no_dependencies_field(fake, make_app):
    from cloudfn_tui.screens.forms import ConfigureScreen

    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        names = [f.name for f in await fake.list_functions() if f.runtime == "go"]
        await _select(pilot, app, names[0])
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        assert not app.screen.query("#cfg-dependencies")
