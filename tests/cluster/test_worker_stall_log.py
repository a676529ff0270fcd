"""A worker says where an invocation is stuck, while it is stuck: its gateway gives up after the
function's timeout plus a margin with only "no answer from worker", so the worker's log is the
one place that can tell which step (code fetch, dependencies, executor) never ended. Each
heartbeat looks at the invocations in flight (`report_stuck`); here it is called with the time
a beat would see."""

from __future__ import annotations

import logging

import pytest

from core.cluster import worker as w


class _Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def caught():
    handler = _Caught()
    logger = logging.getLogger("cloudfn.cluster")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_stuck_invocation_is_logged_once_with_the_steps_it_finished(caught):
    steps = w._Steps()
    steps.invocation = "inv-1"
    steps.mark("code fetched")
    steps.limit = 90.0  # the function's timeout became known: past the first limit is not stuck yet
    w.report_stuck({steps}, steps.start + w.SLOW_MARGIN + 1)
    assert caught.lines == []
    w.report_stuck({steps}, steps.start + 91)
    w.report_stuck({steps}, steps.start + 92)  # the next beat: said once is enough
    [line] = caught.lines
    assert line.startswith("invocation inv-1 still running on this worker after 91 s"), line
    assert "steps done: code fetched at +" in line and "dependencies" not in line, line


def test_an_invocation_within_its_limit_logs_nothing(caught):
    steps = w._Steps()
    steps.mark("executor answered")
    w.report_stuck({steps}, steps.start + w.SLOW_MARGIN - 1)
    assert caught.lines == []
