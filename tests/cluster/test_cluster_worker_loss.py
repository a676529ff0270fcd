"""A worker SIGKILLed during 100 asynchronous invocations loses none.

Semantics: at least once, with the same invocation id. The gateway's queue keeps each item until
an attempt succeeds; an attempt on the killed worker is reported lost as soon as its heartbeats
stop (the worker accepted it, so the gateway knows which node to watch) and is retried on the
other worker with the same id. The function may therefore have started twice for one id (it ran
partly on the dead node), and the history holds the lost attempt as failed, then the success:
exactly one success per id.
"""

from __future__ import annotations

import asyncio
import signal

from clusterproc import start_gateway, start_worker

from core.remote import RemotePlatform

CODE = "import time\ndef handler(event, context):\n    time.sleep(0.2)\n    return event\n"
N = 100


async def test_a_killed_worker_loses_no_async_invocation(nats_server, tmp_path, shared_cache, name):
    workers = [start_worker(tmp_path / f"w{i}", nats_server, f"loss{i}", cache=shared_cache) for i in range(2)]
    gateway = start_gateway(tmp_path / "gw", nats_server, cache=shared_cache, CLOUDFN_ASYNC_WORKERS="8")
    api = RemotePlatform(gateway.url, gateway.token)
    try:
        await api.create_function(
            {
                "name": name,
                "runtime": "python",
                "handler": "handler",
                "code": CODE,
                "async": {"max_retries": 3, "retry_backoff": 0.1},
            }
        )
        accepted = [await api.invoke_async(name, {"n": i}) for i in range(N)]
        ids = {a.invocation_id for a in accepted}
        # Kill one worker once the first invocations have finished: mid-run, not before it.
        first = await api.invocation_status(accepted[5].invocation_id, wait=60)
        assert first.status == "success", first
        workers[0].proc.send_signal(signal.SIGKILL)
        workers[0].proc.wait()
        states = await asyncio.gather(*(api.invocation_status(i, wait=60) for i in ids))
        assert {s.status for s in states} == {"success"}, [
            (s.status, s.errors) for s in states if s.status != "success"
        ][:3]
        history = await api.list_invocations(function=name, limit=1000)
        succeeded = [r.id for r in history if r.status == "success"]
        assert sorted(succeeded) == sorted(ids)  # every id once, none lost, none twice
        lost = [r for r in history if r.status != "success"]
        # The lost attempts were noticed by the silence of its heartbeats: `cloudfn info` marks it down.
        health = {n["node"]: n["health"] for n in (await api.info())["cluster"]["nodes"]}
        assert health == {"loss0": "down", "loss1": "up"}, health
        assert lost and all(r.error_type == "WorkerCrashed" and r.id in ids for r in lost), [  # it hit mid-run
            (r.error_type, r.error) for r in lost
        ]
    finally:
        await api.close()
        code = gateway.stop()
        for w in workers:  # stopped before the check: a failure leaves no worker running
            w.stop()
        assert code == 0, gateway.stderr()
