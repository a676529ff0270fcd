"""The host-wide memory budget (`runtime.max_memory`): the memory limits of every live worker and
pre-started sandbox, added up, stay within it. Idle workers keep what they allocated (a warm
worker is a process that already grew), so the limit, not the use, is what is counted: ten
running plus 64 idle workers of 8 GB each could otherwise promise 592 GB on a 16 GB host.

A holder (a worker, or a start under way) holds some MB; the service reaps idle workers to make
room and waits for `wait_change` when none can go. Moving a charge from a worker being reaped to
the start that needs the room keeps a second start from taking that room first, and keeps the
count covering the old worker's cgroup until it is removed.
"""

from __future__ import annotations

import asyncio


class MemoryBudget:
    def __init__(self, limit_mb: int):
        self.limit = int(limit_mb)
        self.used = 0
        self.peak = 0  # the most ever held at once (tests and stats)
        self.held: dict[object, int] = {}
        self._waiters: list[asyncio.Future[bool]] = []

    def free(self) -> int:
        return self.limit - self.used

    def charge(self, holder: object, mb: int) -> bool:
        """Add `mb` to what `holder` holds, if it fits."""
        if mb > 0 and self.used + mb > self.limit:
            return False
        self.held[holder] = self.held.get(holder, 0) + mb
        self.used += mb
        self.peak = max(self.peak, self.used)
        return True

    def move(self, src: object, dst: object) -> None:
        mb = self.held.pop(src, 0)
        if mb:
            self.held[dst] = self.held.get(dst, 0) + mb

    def shrink(self, holder: object, mb: int) -> None:
        """Let `holder` keep at most `mb` (what it took to make room can be more than it needs)."""
        have = self.held.get(holder, 0)
        if have > mb:
            self.held[holder] = mb
            self.used -= have - mb
            self.wake()

    def release(self, holder: object) -> None:
        mb = self.held.pop(holder, 0)
        if mb:
            self.used -= mb
            self.wake()

    def wake(self) -> None:
        """Something changed (room freed, a worker went idle): every waiter looks again."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(True)

    async def wait_change(self, deadline: float) -> bool:
        """Until `wake` or `deadline` (loop time). False: the deadline passed."""
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            return False
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)

        def expire() -> None:
            if not fut.done():
                fut.set_result(False)

        timer = loop.call_at(deadline, expire)
        try:
            return await fut
        finally:
            timer.cancel()
            if fut in self._waiters:
                self._waiters.remove(fut)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def __repr__(self) -> str:
        return f"MemoryBudget({self.used}/{self.limit} MB, {len(self.held)} holders)"
