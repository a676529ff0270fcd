"""Helpers for the console tests: wait on workers and conditions, never on the clock."""

from __future__ import annotations

import pytest

from cloudfn_tui.app import CloudfnApp
from console_fakes import FakePlatform


async def settle(pilot, app) -> None:
    """Wait until every worker except the endless event stream has finished, and repaint.
    A worker that waits on an open dialog is left alone: it finishes when the dialog does."""
    from textual.screen import ModalScreen

    for _ in range(50):
        if isinstance(app.screen, ModalScreen) or app.screen.__class__.__name__ == "MetricsScreen":
            busy = [w for w in app.workers if w.group not in ("events", "write") and not w.is_finished]
        else:
            busy = [w for w in app.workers if w.group != "events" and not w.is_finished]
        if not busy:
            break
        await app.workers.wait_for_complete(busy)
        await pilot.pause()
    await pilot.pause()


async def until(pilot, predicate, what: str = "condition", rounds: int = 400) -> None:
    """Let the app process messages until `predicate()` holds (bounded; no fixed sleeps)."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def make_app():
    def make(platform, **kw) -> CloudfnApp:
        kw.setdefault("theme", "cloudfn-night")
        kw.setdefault("remember_theme", False)
        return CloudfnApp(platform, **kw)
    return make
