"""Snapshots of every screen at 80x24 and 120x40 (pytest-textual-snapshot). The in-memory
platform has fixed ids, times and durations, so the pictures are the same on every run.
Update after a deliberate change with `pytest tests/console --snapshot-update`."""

from __future__ import annotations

import pytest
from console_fakes import FakePlatform
from console_waits import settle, until

from cloudfn_tui.app import CloudfnApp
from cloudfn_tui.widgets.function_list import FunctionList

SIZES = [(80, 24), (120, 40)]


def app(platform=None) -> CloudfnApp:
    # drafts_dir "": no drafts on disk (the fake's data dir is not a real one)
    return CloudfnApp(platform or FakePlatform(), theme="cloudfn-night", remember_theme=False, drafts_dir="")


def after(*keys: str, select: str | None = "hello-python", invoke: bool = False, screen: str | None = None):
    async def run_before(pilot) -> None:
        a = pilot.app
        await until(pilot, lambda: a.stream_state == "live", "stream")
        await settle(pilot, a)
        if select:
            table = a.screen.query_one(FunctionList)
            table.select_id(next(f.id for f in table.functions.values() if f.name == select))
            await pilot.pause()
        if invoke:
            await pilot.press("ctrl+r")
            await settle(pilot, a)
        for key in keys:
            await pilot.press(key)
            await settle(pilot, a)
        if screen:
            await until(pilot, lambda: a.screen.__class__.__name__ == screen, screen)
        for widget in a.screen.query("Input, TextArea"):
            widget.cursor_blink = False  # a blinking cursor would make the picture depend on timing
        await settle(pilot, a)

    return run_before


CASES = {
    "main": after(),
    "result-ok": after(invoke=True),
    "result-error": after(select="fail-python", invoke=True),
    "help": after("f1", screen="HelpScreen"),
    "create": after("n", screen="CreateFunctionScreen"),
    "configure": after("c", screen="ConfigureScreen"),
    "versions": after("v", screen="VersionsScreen"),
    "saved-events": after("ctrl+o", screen="SavedEventsScreen"),
    "logs": after("alt+5"),
    "metrics-pane": after("alt+6"),
    "history": after("alt+7", invoke=True),
    "alerts": after("alt+8"),
    "metrics-screen": after("m", invoke=True, screen="MetricsScreen"),
    "delete-confirm": after("d", screen="ConfirmScreen"),
    "editor-help": after("alt+2", "f1", screen="HelpScreen"),
    "quit-dialog": after("alt+2", "x", "ctrl+q", screen="QuitScreen"),
    "zoom": after("alt+2", "f11"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", list(CASES))
def test_screen(snap_compare, case, size):
    assert snap_compare(app(), terminal_size=size, run_before=CASES[case])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_refused_token_screen(snap_compare, size):
    from console_fakes import refusing_platform

    async def run_before(pilot) -> None:
        await until(pilot, lambda: pilot.app.screen.__class__.__name__ == "AuthScreen", "the auth screen")
        await settle(pilot, pilot.app)

    refused = app(refusing_platform("wrong"))
    refused.config_file = "/home/me/.config/cloudfn/config.yaml"  # not this machine's path
    assert snap_compare(refused, terminal_size=size, run_before=run_before)
