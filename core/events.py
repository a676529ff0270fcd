"""The event bus: function changes, invocations, log lines and alerts, to every live reader.

Publishing never waits for a reader. Each subscription has a bounded queue; when a slow reader
lets it fill, new events for that reader are dropped and counted, so an invocation is never
held up by a console or an SSE client that stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from core.errors import FieldError, InvalidInput
from core.models import EVENT_KINDS, Event

_T = TypeVar("_T")


class DroppingQueue(asyncio.Queue[_T]):
    """A bounded queue whose writer never waits: what arrives while it is full is dropped and
    counted. The bus's subscriptions and the SSE writer both use it."""

    def __init__(self, maxsize: int):
        super().__init__(maxsize)
        self.dropped = 0

    def offer(self, item: _T) -> bool:
        try:
            self.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            return False

    def take_dropped(self) -> int:
        """How many were dropped since the last call."""
        n, self.dropped = self.dropped, 0
        return n

    def end(self, mark: _T) -> None:
        """Put the end mark even when full (the oldest item makes room), so the reader always
        learns that nothing more comes."""
        if self.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.get_nowait()
                self.dropped += 1
        self.put_nowait(mark)


class Subscription:
    def __init__(self, bus: EventBus, kinds: set[str] | None, maxsize: int):
        self.bus = bus
        self.kinds = kinds
        self.loop = asyncio.get_running_loop()
        self.queue: DroppingQueue[Event] = DroppingQueue(maxsize)

    def offer(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        if self.bus._on_loop(self.loop):
            self._put(event)
        else:
            try:
                self.loop.call_soon_threadsafe(self._put, event)
            except RuntimeError:  # the reader's loop is gone
                self.bus._subs.discard(self)

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def _put(self, event: Event) -> None:
        if not self.queue.offer(event):
            self.bus.dropped += 1

    async def get(self) -> Event:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.close()

    def close(self) -> None:
        self.bus._subs.discard(self)


class EventBus:
    def __init__(self, maxsize: int = 10_000):
        self.maxsize = maxsize
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self.published = 0
        self.dropped = 0

    @staticmethod
    def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def subscribe(self, kinds: set[str] | None = None, maxsize: int | None = None) -> Subscription:
        """Must be called inside the event loop the reader runs in."""
        unknown = set(kinds or ()) - set(EVENT_KINDS)
        if unknown:
            raise InvalidInput(
                "event subscription",
                [FieldError("kinds", f"unknown: {', '.join(sorted(unknown))} (known: {', '.join(EVENT_KINDS)})")],
            )
        sub = Subscription(self, kinds, maxsize or self.maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, kind: str, data: dict[str, Any] | Callable[[], dict[str, Any]]) -> Event | None:
        """Safe from any thread; returns at once whatever the readers do. `data` may be a
        function building the payload, called only when some reader wants this kind."""
        with self._seq_lock:
            seq = next(self._seq)
        self.published += 1
        subs = [sub for sub in self._subs if sub.kinds is None or kind in sub.kinds]
        if not subs:
            return None
        event = Event(seq=seq, kind=kind, data=data() if callable(data) else data)
        for sub in subs:
            sub.offer(event)
        return event

    @property
    def subscribers(self) -> int:
        return len(self._subs)
