"""Waiting in console tests: on workers and conditions, never on the clock.

A module of its own, not conftest: several conftest modules share that name in one run, so
`from conftest import ...` would find whichever was imported last."""

from __future__ import annotations


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


def screen_text(app) -> list[str]:
    """The lines the user sees now (the screen's last composition, as plain text)."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]
