"""A gateway SIGKILLed mid-stream: a client attached to another gateway keeps working; and
the event stream of each gateway carries the other's invocations (cloudfn.events.* subjects).

What two gateways share here: the NATS server, the workers, the code store and the lease. Their
registries and histories are each gateway's own embedded store until the PostgreSQL backend
(issue 18, part 1: `storage.url`) lands; then the same function would be seen through both. So the
client creates its function on the surviving gateway, and one on the doomed gateway keeps
invoking (mid-stream) when it is killed.
"""

from __future__ import annotations

import asyncio
import signal

from clusterproc import start_gateway, start_worker

from core.remote import RemotePlatform

CODE = "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n"


async def test_a_client_of_another_gateway_keeps_working(nats_server, tmp_path, shared_cache, name):
    workers = [start_worker(tmp_path / f"w{i}", nats_server, f"gl{i}", cache=shared_cache) for i in range(2)]
    doomed = start_gateway(tmp_path / "a", nats_server, cache=shared_cache)
    survivor = start_gateway(tmp_path / "b", nats_server, cache=shared_cache)
    a, b = RemotePlatform(doomed.url, doomed.token), RemotePlatform(survivor.url, survivor.token)
    try:
        for api in (a, b):
            await api.create_function({"name": name, "runtime": "python", "handler": "handler", "code": CODE})
        seen: list[object] = []
        got = asyncio.Event()

        async def collect() -> None:
            async for ev in b.events({"invocation.finished"}):
                if ev.data.get("function_name") == name:
                    seen.append(ev.data.get("event"))
                    got.set()

        collector = asyncio.create_task(collect())
        for _ in range(50):  # until the survivor's stream is live (it shows our probe)
            await b.invoke(name, "probe")
            try:
                await asyncio.wait_for(got.wait(), 1.0)
                break
            except TimeoutError:
                continue
        busy = [asyncio.create_task(a.invoke(name, i)) for i in range(20)]  # in flight on the doomed one
        assert (await a.invoke(name, "first")).success
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait()
        await asyncio.gather(*busy, return_exceptions=True)  # its clients see it go; not ours
        results = await asyncio.gather(*(b.invoke(name, {"after": i}) for i in range(10)))
        assert all(r.success for r in results), [r.error for r in results if not r.success]
        while sum(1 for e in seen if isinstance(e, dict)) < 10:  # the stream carried on through the kill
            got.clear()
            await asyncio.wait_for(got.wait(), 30)
        collector.cancel()
        # Events are cluster-wide: the doomed gateway's invocation reached the survivor's stream too.
        assert "first" in seen
        history = await b.list_invocations(function=name, limit=100)
        assert len([r for r in history if r.status == "success" and isinstance(r.event, dict)]) == 10
    finally:
        await a.close()
        await b.close()
        assert survivor.stop() == 0, survivor.stderr()
        for w in workers:
            w.stop()
