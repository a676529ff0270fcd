"""A worker says where an invocation is stuck, while it is stuck: its gateway gives up after the
function's timeout plus a margin with only "no answer from worker", so the worker's log is the
one place that can tell which step (code fetch, dependencies, executor) never ended."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from core.cluster import worker as w


class _Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.seen.set()


@pytest.fixture
def caught():
    handler = _Caught()
    logger = logging.getLogger("cloudfn.cluster")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_stuck_invocation_is_logged_with_the_steps_it_finished(monkeypatch, caught):
    monkeypatch.setattr(w, "SLOW_MARGIN", 0.05)
    steps = w._Steps()
    steps.invocation = "inv-1"
    steps.mark("code fetched")
    steps.limit = 0.2  # the function's timeout became known: the watch waits for the new limit
    await asyncio.wait_for(caught.seen.wait(), 30)
    steps.done()
    [line] = caught.lines
    assert line.startswith("invocation inv-1 still running on this worker after "), line
    assert "steps done: code fetched at +" in line and "dependencies" not in line, line
    assert time.monotonic() - steps.start >= 0.2  # not at the first limit: at the function's


async def test_an_invocation_that_ends_in_time_logs_nothing(monkeypatch, caught):
    monkeypatch.setattr(w, "SLOW_MARGIN", 0.05)
    steps = w._Steps()
    steps.mark("executor answered")
    steps.done()
    late = w._Steps()  # a second watch that does fire shows the first one's timer is gone
    late.invocation = "inv-late"
    await asyncio.wait_for(caught.seen.wait(), 30)
    late.done()
    assert len(caught.lines) == 1 and "inv-late" in caught.lines[0], caught.lines
