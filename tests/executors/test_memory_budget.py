"""Issue 12, part 2: runtime.max_memory caps the sum of live workers' memory limits. With a
300 MB budget and functions of 128 MB: a third cold worker reaps the oldest idle one; with all
busy the next one waits for one to finish (or is throttled after the queue timeout); a function
larger than the whole budget fails at once; pre-started sandboxes count. The sum is checked from
the service's own accounting and from the cgroups' memory limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from exec_helpers import fn

from core.executors.worker import Worker
from core.models import ErrorType

MB = 1024 * 1024
BUDGET = 300


def _code(tag: str) -> str:
    return f"def handler(event, context):\n    return '{tag}'\n"


def cgroup_limits_mb(svc) -> int | None:
    """The sum of the memory limits of every worker cgroup of this process (None: no cgroups)."""
    cg = svc.sandbox.cgroups
    base = cg.memory_base if cg is not None else None
    if base is None:
        return None
    total = 0
    for d in Path(base).iterdir():
        if not d.is_dir() or not d.name.startswith("w-"):
            continue
        f = d / ("memory.max" if cg.v2 else "memory.limit_in_bytes")
        try:
            total += int(f.read_text().split()[0]) // MB
        except (OSError, ValueError):
            pass  # removed while read
    return total


def assert_within_budget(svc) -> None:
    b = svc.budget
    assert b.used <= b.limit and b.peak <= b.limit, f"the budget's own count: {b.used} (peak {b.peak}) > {b.limit}"
    assert b.used == sum(b.held.values())
    live = [w for p in svc._pools.values() for w in (*p.idle, *p.busy)] + svc.prewarm.idle()
    assert sum(b.held.get(w, 0) for w in live) <= b.limit
    limits = cgroup_limits_mb(svc)
    if limits is not None:
        assert limits <= b.limit, f"the cgroups' memory limits add up to {limits} MB > {b.limit} MB"


class Gate:
    """Holds invocations of chosen functions in their worker (a real, started worker) until
    opened, so a test decides when a busy worker finishes without sleeping."""

    def __init__(self, monkeypatch):
        self.open: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        real = Worker.invoke
        gate = self

        async def invoke(worker, *a, **kw):
            fid = worker.key[0]
            if fid in gate.open:
                gate.entered[fid].set()
                await gate.open[fid].wait()
            return await real(worker, *a, **kw)

        monkeypatch.setattr(Worker, "invoke", invoke)

    def hold(self, f) -> None:
        self.open[f.id] = asyncio.Event()
        self.entered[f.id] = asyncio.Event()


def watch_waiting(svc) -> asyncio.Event:
    """Set when an invocation starts waiting for memory."""
    evt = asyncio.Event()
    real = svc.budget.wait_change

    async def wait_change(deadline):
        evt.set()
        return await real(deadline)

    svc.budget.wait_change = wait_change
    return evt


async def test_a_third_cold_worker_reaps_the_oldest_idle_one(make_service):
    svc = make_service(max_memory=BUDGET)
    a, b, c = (fn("python", _code(t), name=t, memory=128) for t in "abc")
    for f in (a, b):
        r = await svc.invoke(f, {})
        assert r.success and r.cold_start, r.error
    assert svc.budget.used == 256
    assert_within_budget(svc)
    old = svc._pools[(a.id, a.version)].idle[0]
    r = await svc.invoke(c, {})
    assert r.success and r.cold_start and r.result == "c", r.error
    assert old.dead and old.proc.returncode is not None, "the oldest idle worker was not reaped"
    workers = svc.stats()["workers"]
    assert (workers[a.id]["warm"], workers[b.id]["warm"], workers[c.id]["warm"]) == (0, 1, 1)
    assert svc.budget.used == 256 and svc.budget.peak <= BUDGET
    assert_within_budget(svc)


async def test_with_all_busy_the_next_waits_then_runs_when_one_finishes(make_service, monkeypatch):
    gate = Gate(monkeypatch)
    svc = make_service(max_memory=BUDGET, queue_timeout=30)
    waiting = watch_waiting(svc)
    a, b, c = (fn("python", _code(t), name=t, memory=128) for t in "abc")
    gate.hold(a)
    gate.hold(b)
    ta = asyncio.ensure_future(svc.invoke(a, {}))
    tb = asyncio.ensure_future(svc.invoke(b, {}))
    await asyncio.wait_for(asyncio.gather(gate.entered[a.id].wait(), gate.entered[b.id].wait()), 30)
    assert svc.budget.used == 256
    tc = asyncio.ensure_future(svc.invoke(c, {}))
    await asyncio.wait_for(waiting.wait(), 30)
    assert not tc.done() and svc.stats()["memory"]["waiting"] == 1
    assert_within_budget(svc)
    gate.open[a.id].set()  # a finishes: its worker goes idle, c reaps it and starts
    ra = await ta
    rc = await asyncio.wait_for(tc, 30)
    assert ra.success and rc.success and rc.result == "c" and rc.cold_start, (ra.error, rc.error)
    assert svc.stats()["workers"][a.id]["warm"] == 0, "a's idle worker was not reaped for c"
    assert_within_budget(svc)
    gate.open[b.id].set()
    assert (await tb).success
    assert svc.budget.used == 256 and svc.budget.peak <= BUDGET
    assert svc.stats()["memory"]["waiting"] == 0
    assert_within_budget(svc)


async def test_a_warm_worker_of_the_same_function_is_used_when_it_comes_back(make_service, monkeypatch):
    gate = Gate(monkeypatch)
    svc = make_service(max_memory=BUDGET, queue_timeout=30)
    waiting = watch_waiting(svc)
    a, b = (fn("python", _code(t), name=t, memory=128) for t in "ab")
    gate.hold(a)
    gate.hold(b)
    ta1 = asyncio.ensure_future(svc.invoke(a, {}))
    tb = asyncio.ensure_future(svc.invoke(b, {}))
    await asyncio.wait_for(asyncio.gather(gate.entered[a.id].wait(), gate.entered[b.id].wait()), 30)
    ta2 = asyncio.ensure_future(svc.invoke(a, {}))
    await asyncio.wait_for(waiting.wait(), 30)
    gate.open[a.id].set()  # a's first invocation ends: its worker serves the waiting one, warm
    r1, r2 = await asyncio.wait_for(asyncio.gather(ta1, ta2), 30)
    assert r1.success and r2.success
    assert r1.cold_start and not r2.cold_start, "the waiting invocation did not take the worker that came back"
    gate.open[b.id].set()
    await tb
    assert svc.budget.used == 256
    assert_within_budget(svc)


async def test_waiting_past_the_queue_timeout_is_throttled_naming_the_budget(make_service, monkeypatch):
    gate = Gate(monkeypatch)
    svc = make_service(max_memory=BUDGET, queue_timeout=0.3)
    a, b, c = (fn("python", _code(t), name=t, memory=128) for t in "abc")
    gate.hold(a)
    gate.hold(b)
    ta = asyncio.ensure_future(svc.invoke(a, {}))
    tb = asyncio.ensure_future(svc.invoke(b, {}))
    await asyncio.wait_for(asyncio.gather(gate.entered[a.id].wait(), gate.entered[b.id].wait()), 30)
    rc = await svc.invoke(c, {})
    assert rc.error_type == ErrorType.THROTTLED, (rc.error_type, rc.error)
    assert "runtime.max_memory (300 MB)" in rc.error and "within 0.3 s" in rc.error, rc.error
    assert svc.stats()["memory"]["waiting"] == 0
    assert c.id not in svc.stats()["workers"] or svc.stats()["workers"][c.id]["busy"] == 0
    gate.open[a.id].set()
    gate.open[b.id].set()
    assert (await ta).success and (await tb).success
    assert svc.budget.used == 256
    assert_within_budget(svc)


async def test_a_full_queue_throttles_memory_waiters_at_once(make_service, monkeypatch):
    gate = Gate(monkeypatch)
    svc = make_service(max_memory=BUDGET, queue_size=0, queue_timeout=30)
    a, b, c = (fn("python", _code(t), name=t, memory=128) for t in "abc")
    gate.hold(a)
    gate.hold(b)
    ta = asyncio.ensure_future(svc.invoke(a, {}))
    tb = asyncio.ensure_future(svc.invoke(b, {}))
    await asyncio.wait_for(asyncio.gather(gate.entered[a.id].wait(), gate.entered[b.id].wait()), 30)
    rc = await asyncio.wait_for(svc.invoke(c, {}), 5)  # not the 30 s of the queue timeout
    assert rc.error_type == ErrorType.THROTTLED and "runtime.max_memory" in rc.error, rc.error
    assert "queue is full" in rc.error
    gate.open[a.id].set()
    gate.open[b.id].set()
    await asyncio.gather(ta, tb)


async def test_a_function_larger_than_the_whole_budget_fails_at_once(make_service):
    svc = make_service(max_memory=BUDGET)
    big = fn("python", _code("big"), name="big", memory=512)
    r = await svc.invoke(big, {})
    assert r.error_type == ErrorType.RUNTIME_UNAVAILABLE
    assert "512 MB" in r.error and "runtime.max_memory (300 MB)" in r.error, r.error
    assert svc.budget.used == 0 and svc.stats()["workers"][big.id]["warm"] == 0


async def test_memory_is_released_when_workers_end(make_service):
    svc = make_service(max_memory=BUDGET, keep_warm=0)
    a = fn("python", "import os\ndef handler(e, c):\n    os._exit(3)\n", name="exits", memory=128)
    r = await svc.invoke(a, {})
    assert not r.success
    assert svc.budget.used == 0, "a worker that died still holds its memory"
    b = fn("python", _code("b"), name="b", memory=128)
    assert (await svc.invoke(b, {})).success
    assert await svc.reap_idle() == 1
    assert svc.budget.used == 0, "a reaped worker still holds its memory"
    assert cgroup_limits_mb(svc) in (None, 0)


async def test_pre_started_sandboxes_count_and_are_reaped_for_room(make_service):
    svc = make_service(max_memory=BUDGET, prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap namespaces")
    await svc.prewarm.wait_ready()
    ready = svc.prewarm.idle()
    assert ready, f"no sandbox started: {svc.prewarm.problem}"
    # 300 MB hold two sandboxes of 128 MB: a third runtime's says why it did not start.
    assert svc.budget.used == 128 * len(ready) <= BUDGET
    if len(svc.prewarm.specs) > len(ready):
        assert "runtime.max_memory" in svc.prewarm.problem
    assert_within_budget(svc)
    f = fn("python", _code("p"), name="p", memory=256)
    r = await svc.invoke(f, {})
    assert r.success and r.cold_start, r.error
    assert_within_budget(svc)
    assert svc.budget.used <= BUDGET
    await svc.prewarm.wait_ready()
    assert_within_budget(svc)
