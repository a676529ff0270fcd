"""Warm workers, cold starts, updates, reaping and scheduling."""

from __future__ import annotations

import asyncio

import pytest
from exec_helpers import fn

from core.models import ErrorType

PID_CODE = {
    "python": "import os\ndef handler(event, context):\n    return os.getpid()\n",
    "nodejs": "function handler() { return process.pid; }",
    "go": 'import "os"\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
    "\treturn os.Getpid()\n}\n",
}


@pytest.mark.parametrize("runtime", ["python", "nodejs", pytest.param("go", marks=pytest.mark.go)])
async def test_warm_worker_is_reused_and_cold_start_reported(service, runtime):
    f = fn(runtime, PID_CODE[runtime])
    first = await service.invoke(f, {})
    assert first.success and first.cold_start and first.init_duration > 0
    second = await service.invoke(f, {})
    assert second.success and not second.cold_start and second.init_duration == 0
    assert second.result == first.result  # the same process
    assert first.memory_used > 0 and second.duration_ms > 0
    assert service.stats()["workers"][f.id]["warm"] == 1


def _versioned(code_for):
    return {
        "python": lambda v: f"def handler(event, context):\n    return 'v{v}'\n",
        "nodejs": lambda v: f"function handler() {{ return 'v{v}'; }}",
        "go": lambda v: (
            f'func handler(event interface{{}}, context map[string]string) interface{{}} {{\n\treturn "v{v}"\n}}\n'
        ),
    }[code_for]


@pytest.mark.parametrize("runtime", ["python", "nodejs", pytest.param("go", marks=pytest.mark.go)])
async def test_update_then_invoke_never_runs_old_code(service, runtime):
    code = _versioned(runtime)
    f = fn(runtime, code(1))
    assert (await service.invoke(f, {})).result == "v1"
    for v in range(2, 5):
        f = f.model_copy(update={"code": code(v), "version": v})
        await service.retire(f.id)  # what the platform does once an update is stored
        res = await service.invoke(f, {})
        assert res.result == f"v{v}" and res.cold_start
    stale = await service.invoke(f.model_copy(update={"code": code(1), "version": 1}), {})
    assert not stale.success and "replaced or deleted" in stale.error
    assert service.stats()["workers"][f.id] == {"warm": 1, "busy": 0, "version": 4}


async def test_new_version_is_never_served_by_an_old_worker_even_without_retire(service):
    f1 = fn("python", "def handler(e, c):\n    return 1\n")
    assert (await service.invoke(f1, {})).result == 1
    f2 = f1.model_copy(update={"code": "def handler(e, c):\n    return 2\n", "version": 2})
    results = await asyncio.gather(*(service.invoke(f2, {}) for _ in range(4)))
    assert [r.result for r in results] == [2, 2, 2, 2]


async def test_retire_stops_an_invocation_in_flight(service):
    f = fn("python", "import time\ndef handler(e, c):\n    time.sleep(5)\n    return 'old'\n")
    running = asyncio.ensure_future(service.invoke(f, {}))
    # Wait until it really runs (no fixed sleep); the service announces no start to wait on.
    while not service.stats()["busy_workers"]:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await service.retire(f.id)
    res = await running
    assert not res.success and res.result != "old"
    assert res.error_type == ErrorType.WORKER_CRASHED and "updated or deleted" in res.error
    assert service.stats()["busy_workers"] == 0 and service.stats()["warm_workers"] == 0


async def test_idle_workers_are_reaped_after_keep_warm(make_service):
    svc = make_service(keep_warm=0)
    f = fn("python", "def handler(e, c):\n    return 1\n")
    assert (await svc.invoke(f, {})).success
    assert svc.stats()["warm_workers"] == 1
    assert await svc.reap_idle() == 1
    assert svc.stats()["warm_workers"] == 0
    res = await svc.invoke(f, {})
    assert res.success and res.cold_start


CONC_CODE = (
    "import time\ndef handler(event, context):\n    t0 = time.time()\n    time.sleep(event['s'])\n"
    "    return [t0, time.time()]\n"
)


def _max_overlap(spans):
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    cur = best = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


async def test_50_concurrent_under_max_concurrent_10_none_lost(make_service):
    svc = make_service(max_concurrent=10, queue_size=100, queue_timeout=30)
    f = fn("python", CONC_CODE)
    results = await asyncio.gather(*(svc.invoke(f, {"s": 0.05}) for _ in range(50)))
    assert len(results) == 50 and len({r.invocation_id for r in results}) == 50
    assert all(r.success or r.error_type == ErrorType.THROTTLED for r in results)
    done = [r for r in results if r.success]
    assert len(done) == 50  # the queue holds them all
    assert _max_overlap([r.result for r in done]) <= 10
    assert svc.stats()["in_flight"] == 0 and svc.stats()["queued"] == 0


async def test_50_concurrent_with_a_short_queue_complete_or_throttle(make_service):
    svc = make_service(max_concurrent=10, queue_size=15, queue_timeout=30)
    f = fn("python", CONC_CODE)
    results = await asyncio.gather(*(svc.invoke(f, {"s": 0.2}) for _ in range(50)))
    ok = [r for r in results if r.success]
    throttled = [r for r in results if r.error_type == ErrorType.THROTTLED]
    assert len(ok) + len(throttled) == 50, [r.error for r in results if not r.success and r not in throttled]
    assert len(ok) == 25 and len(throttled) == 25  # 10 running + 15 waiting; the rest refused at once
    assert _max_overlap([r.result for r in ok]) <= 10


async def test_per_function_max_concurrency(make_service):
    svc = make_service(max_concurrent=10, queue_timeout=30)
    limited = fn("python", CONC_CODE, name="limited", max_concurrency=2)
    free = fn("python", CONC_CODE, name="free")
    results = await asyncio.gather(
        *(svc.invoke(limited, {"s": 0.1}) for _ in range(6)), *(svc.invoke(free, {"s": 0.1}) for _ in range(4))
    )
    assert all(r.success for r in results), [r.error for r in results]
    assert _max_overlap([r.result for r in results[:6]]) <= 2
    assert svc.stats()["workers"][limited.id]["warm"] <= 2
