"""Workers run under SCHED_BATCH (core/executors/schedpolicy.py), so a worker woken by its request
does not preempt the server; the server's own thread keeps its policy. Real workers in the real
sandbox: the function reads its own policy."""

from __future__ import annotations

import os

from exec_helpers import fn

POLICY_PY = "import os\ndef handler(event, context):\n    return os.sched_getscheduler(0)\n"
POLICY_NODE = (
    "const fs = require('fs');\nfunction handler(event, context) {\n"
    "  return fs.readFileSync('/proc/self/sched', 'utf8').match(/policy\\s*:\\s*(\\d+)/)[1];\n}\n"
)


async def test_a_python_worker_runs_under_sched_batch_and_the_server_keeps_its_policy(make_service):
    svc = make_service()
    before = os.sched_getscheduler(0)
    res = await svc.invoke(fn("python", POLICY_PY, name="policy"), {})
    assert res.success, res.error
    assert res.result == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER


async def test_a_nodejs_worker_runs_under_sched_batch_too(make_service):
    res = await make_service().invoke(fn("nodejs", POLICY_NODE, name="policy-node"), {})
    assert res.success, res.error
    assert int(res.result) == os.SCHED_BATCH


async def test_the_switch_leaves_workers_under_sched_other(make_service, monkeypatch):
    monkeypatch.setenv("CLOUDFN_WORKER_SCHED", "other")
    res = await make_service().invoke(fn("python", POLICY_PY, name="policy-other"), {})
    assert res.success, res.error
    assert res.result == os.SCHED_OTHER
