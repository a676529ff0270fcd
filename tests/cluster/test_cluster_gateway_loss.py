"""A gateway SIGKILLed mid-stream: a client attached to another gateway keeps working, and
sees the function created through the dead one (the two share PostgreSQL: registry, history);
the event stream of each gateway carries the other's invocations (cloudfn.events.* subjects).
"""

from __future__ import annotations

import asyncio
import signal

from clusterproc import start_gateway, start_worker

from core.remote import RemotePlatform

CODE = "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n"


async def test_a_client_of_another_gateway_keeps_working(nats_server, tmp_path, shared_cache, name, pg_url):
    workers = [start_worker(tmp_path / f"w{i}", nats_server, f"gl{i}", cache=shared_cache) for i in range(2)]
    shared = {"CLOUDFN_STORAGE_URL": pg_url, "CLOUDFN_MONITOR_ALERT_INTERVAL": "0"}
    doomed = start_gateway(tmp_path / "a", nats_server, cache=shared_cache, **shared)
    survivor = start_gateway(tmp_path / "b", nats_server, cache=shared_cache, **shared)
    a, b = RemotePlatform(doomed.url, doomed.token), RemotePlatform(survivor.url, survivor.token)
    try:
        # Created through the gateway about to die: the survivor's client sees it all the same.
        await a.create_function({"name": name, "runtime": "python", "handler": "handler", "code": CODE})
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
        # Events are cluster-wide: the doomed gateway's invocation reaches the survivor's stream.
        # Waited for before the kill: the answer leaves before the event is handed to NATS, and
        # a SIGKILL in between loses that event (the history keeps the invocation).
        while "first" not in seen:
            got.clear()
            await asyncio.wait_for(got.wait(), 30)
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait()
        await asyncio.gather(*busy, return_exceptions=True)  # its clients see it go; not ours
        results = await asyncio.gather(*(b.invoke(name, {"after": i}) for i in range(10)))
        assert all(r.success for r in results), [r.error for r in results if not r.success]
        while sum(1 for e in seen if isinstance(e, dict)) < 10:  # the stream carried on through the kill
            got.clear()
            await asyncio.wait_for(got.wait(), 30)
        collector.cancel()
        assert "first" in seen
        history = await b.list_invocations(function=name, limit=100)
        assert len([r for r in history if r.status == "success" and isinstance(r.event, dict)]) == 10
        # After the kill, through the survivor: the function made on the dead gateway is there and changes.
        assert (await b.update_function(name, {"description": "after the kill"})).version == 2
        assert (await b.invoke(name, "v2")).success
    finally:
        if doomed.proc.poll() is None:  # the test failed before its kill: no gateway outlives it
            doomed.proc.kill()
            doomed.proc.wait()
        await a.close()
        await b.close()
        code = survivor.stop()
        for w in workers:  # stopped before the check: a failure leaves no worker running
            w.stop()
        assert code == 0, survivor.stderr()
