"""The scheduler's slots on their own: FIFO hand-over, timeouts, and cancelled waiters (a client
that disconnects while queued) never leaking or losing a slot."""

from __future__ import annotations

import asyncio

import pytest

from core.executors.service import Scheduler, _Throttled
from core.models import Function


def fn(name: str = "f", max_concurrency: int | None = None) -> Function:
    return Function(
        name=name, runtime="python", code="def handler(e, c):\n    return e\n", max_concurrency=max_concurrency
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_get_freed_slots_in_arrival_order():
    s = Scheduler(max_concurrent=1, queue_size=10, queue_timeout=5)
    first = await s.acquire(fn())
    order: list[int] = []

    async def wait(i: int) -> None:
        held = await s.acquire(fn())
        order.append(i)
        s.release(held)

    tasks = [asyncio.ensure_future(wait(i)) for i in range(4)]
    await _settle()
    assert s.queued == 4 and s.running == 1
    s.release(first)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert (s.running, s.queued) == (0, 0)
    assert s._global.used == 0


async def test_a_newcomer_does_not_overtake_the_queue():
    s = Scheduler(max_concurrent=1, queue_size=10, queue_timeout=5)
    first = await s.acquire(fn())
    waiter = asyncio.ensure_future(s.acquire(fn()))
    await _settle()
    s.release(first)  # the slot goes to the waiter, even before it runs again
    newcomer = asyncio.ensure_future(s.acquire(fn()))
    await _settle()
    assert waiter.done() and not newcomer.done()
    s.release(waiter.result())
    s.release(await newcomer)
    assert s._global.used == 0


async def test_waiting_past_the_queue_timeout_is_throttled_and_frees_the_queue_place():
    s = Scheduler(max_concurrent=1, queue_size=10, queue_timeout=0.05)
    held = await s.acquire(fn())
    with pytest.raises(_Throttled, match="no free slot within 0.05 s .limit: max_concurrent"):
        await s.acquire(fn())
    assert s.queued == 0 and not s._global.waiters
    s.release(held)
    assert s._global.used == 0


async def test_a_full_queue_throttles_at_once():
    s = Scheduler(max_concurrent=1, queue_size=1, queue_timeout=5)
    held = await s.acquire(fn())
    waiter = asyncio.ensure_future(s.acquire(fn()))
    await _settle()
    with pytest.raises(_Throttled, match="1 running and 1 waiting"):
        await s.acquire(fn())
    s.release(held)
    s.release(await waiter)


async def test_a_cancelled_waiter_leaves_no_trace():
    s = Scheduler(max_concurrent=1, queue_size=10, queue_timeout=5)
    held = await s.acquire(fn())
    gone = asyncio.ensure_future(s.acquire(fn()))
    behind = asyncio.ensure_future(s.acquire(fn()))
    await _settle()
    gone.cancel()
    await _settle()
    assert s.queued == 1
    s.release(held)
    s.release(await behind)  # the slot skipped the cancelled waiter
    assert (s.running, s.queued, s._global.used) == (0, 0, 0)


async def test_a_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on():
    s = Scheduler(max_concurrent=1, queue_size=10, queue_timeout=5)
    held = await s.acquire(fn())
    handed = asyncio.ensure_future(s.acquire(fn()))
    behind = asyncio.ensure_future(s.acquire(fn()))
    await _settle()
    s.release(held)  # `handed` owns the slot now, but has not run yet...
    handed.cancel()  # ...and is cancelled before it does
    await _settle()
    assert handed.cancelled()
    s.release(await behind)
    assert (s.running, s.queued, s._global.used) == (0, 0, 0)


async def test_per_function_limit_and_global_limit_both_hold():
    s = Scheduler(max_concurrent=3, queue_size=10, queue_timeout=0.05)
    limited = fn("limited", max_concurrency=1)
    a = await s.acquire(limited)
    with pytest.raises(_Throttled, match="the function's max_concurrency"):
        await s.acquire(limited)
    b = await s.acquire(fn("other"))  # other functions still run
    c = await s.acquire(fn("other"))
    assert s._global.used == 3
    with pytest.raises(_Throttled, match="max_concurrent"):
        await s.acquire(fn("other"))
    for held in (a, b, c):
        s.release(held)
    assert s._global.used == 0 and s._per_fn[limited.id].used == 0
