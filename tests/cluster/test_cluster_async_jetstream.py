"""A gateway SIGKILLed with accepted asynchronous invocations in flight: another gateway runs
them all (the queue is JetStream's, shared by every gateway; core/triggers/jsqueue.py).

Semantics: at least once, with the same invocation id. What the killed gateway held (fetched, or
running on a worker) comes back to the consumer after `cluster.async_ack_wait` seconds (2 here)
and runs again on the survivor; what it had not fetched goes to the survivor at once. The two
gateways share PostgreSQL (registry and history), as a cluster's gateways must: the survivor has
to know the function the dead one accepted an event for.
"""

from __future__ import annotations

import asyncio
import signal

from clusterproc import start_gateway, start_worker

from core.remote import RemotePlatform

CODE = "import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return event\n"
N = 30


async def test_another_gateway_finishes_a_killed_gateways_async_work(nats_server, pg_url, tmp_path, shared_cache, name):
    env = {"CLOUDFN_STORAGE_URL": pg_url, "CLOUDFN_CLUSTER_ASYNC_ACK_WAIT": "2"}
    worker = start_worker(tmp_path / "w", nats_server, "jsq-w", cache=shared_cache)
    doomed = start_gateway(tmp_path / "a", nats_server, cache=shared_cache, CLOUDFN_ASYNC_WORKERS="4", **env)
    a = RemotePlatform(doomed.url, doomed.token)
    b = None
    survivor = None
    try:
        await a.create_function({"name": name, "runtime": "python", "handler": "handler", "code": CODE})
        accepted = [await a.invoke_async(name, {"n": i}) for i in range(N)]
        ids = [x.invocation_id for x in accepted]
        # Killed once it is running some of them (their state, in JetStream's KV, says so).
        first = await a.invocation_status(ids[0], wait=30)
        assert first.status == "success"
        states = [(await a.invocation_status(i)).status for i in ids]
        assert "running" in states, states  # on the worker for it: back to the consumer after ack_wait
        assert "queued" in states, states  # accepted, not yet fetched: to the survivor at once
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait()

        survivor = start_gateway(tmp_path / "b", nats_server, cache=shared_cache, **env)
        b = RemotePlatform(survivor.url, survivor.token)
        ends = await asyncio.gather(*(b.invocation_status(i, wait=60) for i in ids))
        assert [e.status for e in ends] == ["success"] * N, [(e.invocation_id, e.status) for e in ends]
        assert [e.record.result for e in ends] == [{"n": i} for i in range(N)]  # the same ids, their own events
        history = await b.list_invocations(function=name, limit=1000)
        succeeded = {r.id for r in history if r.status == "success"}
        assert set(ids) <= succeeded  # every accepted id ran to success, some perhaps twice (at least once)
        info = await b.info()
        assert "JetStream" in info["paths"]["async_queue"]
    finally:
        if doomed.proc.poll() is None:  # the test failed before its kill: no gateway outlives it
            doomed.proc.kill()
            doomed.proc.wait()
        await a.close()
        if b is not None:
            await b.close()
        code = survivor.stop() if survivor is not None else 0
        worker.stop()  # stopped before the check: a failure leaves no worker running
        assert code == 0, survivor.stderr() if survivor is not None else ""
