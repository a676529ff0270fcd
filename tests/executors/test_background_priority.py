"""Starts nobody waits for run niced (spawn.py): a worker started in the background while its
function's warm workers serve, and a pre-started sandbox until it is adopted. Once a worker is
needed, every process and thread of it runs at normal priority again, whatever it started."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from exec_helpers import fn

from core.executors.spawn import BACKGROUND_NICE, NICE

# Its niceness while its module was imported (the start) and while it serves, for every thread of
# every process it can see (its own pid namespace: the runner and what it started).
PROBE = (
    "import glob, os, threading, time\n"
    "AT_IMPORT = os.getpriority(os.PRIO_PROCESS, 0)\n"
    "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a thread from the start\n"
    "def _all():\n"
    "    out = []\n"
    "    for stat in glob.glob('/proc/[0-9]*/task/*/stat'):\n"
    "        try:\n"
    "            out.append(int(open(stat).read().rsplit(')', 1)[1].split()[16]))\n"
    "        except OSError:\n"
    "            pass\n"
    "    return out\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('s', 0))\n"
    "    return {'import': AT_IMPORT, 'now': _all(), 'me': id(_all)}\n"
)

pytestmark = pytest.mark.skipif(NICE is None, reason="needs nice(1)")


def _cgroup_nice(w) -> list[int]:
    """The niceness of every thread of the worker's processes, as the host sees them."""
    if w.cg is None:
        pytest.skip("needs the worker's cgroup to find its processes")
    out = []
    for pid in w.cg.members():
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                out.append(int(stat.read_text().rsplit(")", 1)[1].split()[16]))
            except OSError:
                continue
    assert out, "no process found"
    return out


async def test_a_worker_started_in_the_background_starts_niced_and_serves_at_normal_priority(make_service):
    svc = make_service(max_concurrent=10, queue_timeout=30)
    f = fn("python", PROBE, name="bg")
    first = await svc.invoke(f, {"s": 1.0})  # its callers' own start; teaches that calls take 1 s
    assert first.success and first.cold_start, first.error
    assert first.result["import"] == 0, "a start its caller waits for alone ran niced"
    # Two callers while one worker: the second is served by a worker started in the background.
    results = await asyncio.gather(svc.invoke(f, {"s": 1.0}), svc.invoke(f, {"s": 1.0}))
    assert all(r.success for r in results), [r.error for r in results]
    new = [r for r in results if r.cold_start]
    assert len(new) == 1 and svc.stats()["burst"][f.id]["background_starts"] == 1
    assert new[0].result["import"] == BACKGROUND_NICE, "the background start ran at full priority"
    for r in results:
        assert r.result["now"] and set(r.result["now"]) == {0}, r.result["now"]
    pool = svc._pools[(f.id, f.version)]
    for w in pool.idle:
        assert set(_cgroup_nice(w)) == {0}


async def test_a_prestarted_sandbox_waits_niced_and_its_adopter_runs_at_normal_priority(make_service):
    svc = make_service(prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    await svc.prewarm.wait_ready()
    waiting = svc.prewarm.idle()
    for w in waiting:
        assert set(_cgroup_nice(w)) == {BACKGROUND_NICE}
    f = fn("python", PROBE, name="adopter")
    res = await svc.invoke(f, {})
    assert res.success and res.cold_start, res.error
    [adopted] = svc._pools[(f.id, f.version)].idle
    assert adopted in waiting, "not adopted"
    assert res.result["import"] == 0 and set(res.result["now"]) == {0}, res.result
    assert set(_cgroup_nice(adopted)) == {0}
    await svc.prewarm.wait_ready()  # the refill waits niced again
    for w in svc.prewarm.idle():
        assert set(_cgroup_nice(w)) == {BACKGROUND_NICE}
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the host process itself is untouched
