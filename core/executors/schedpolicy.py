"""Workers run under SCHED_BATCH: a worker woken by its request pipe does not preempt the
server that woke it.

The server writes a request to a worker's pipe and goes on serving other connections. Under
SCHED_OTHER the woken worker often preempts the server on its own CPU at once (the other CPU
is busy with clients or other workers), and the server thread waits out the function's turn
in the middle of its write: profiled at 16 connections on /fn/<name>, that one pipe write was
20% of the server thread's time; with the workers under SCHED_BATCH, 2.6%. A batch task still
gets its full CFS share and runs at once on an idle CPU; it only gives up the wake-up
preemption. The policy is inherited over fork and exec, so it is set on the thread that spawns
the launcher chain for the span of the spawn, and everything the function starts keeps it.
`CLOUDFN_WORKER_SCHED=other` leaves the workers as they were (to measure the difference).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_PARAM = os.sched_param(0)


def _wanted() -> bool:
    return hasattr(os, "SCHED_BATCH") and os.environ.get("CLOUDFN_WORKER_SCHED", "batch").lower() != "other"


@contextlib.contextmanager
def batch_children() -> Iterator[None]:
    """Processes forked by this thread inside the block start under SCHED_BATCH."""
    if not _wanted():
        yield
        return
    try:
        before: int | None = os.sched_getscheduler(0)
        if before != os.SCHED_OTHER:  # a server run under another policy on purpose keeps it
            before = None
        else:
            os.sched_setscheduler(0, os.SCHED_BATCH, _PARAM)
    except OSError:  # a seccomp'd or exotic host: the workers run as before
        before = None
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, before, _PARAM)
