"""Invocations through a gateway (`cloudfn serve` with cluster.nats_url) run on `cloudfn worker`
processes: spread over both, refused when no worker can take them, and never run from code a
peer put under a digest it does not hash to."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from clusterproc import start_gateway, start_worker

from core.cluster import protocol as p
from core.remote import RemotePlatform

CODE = "import os\ndef handler(event, context):\n    return {'echo': event, 'pid': os.getpid()}\n"


@pytest.fixture(scope="module")
def cluster(nats_server, tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("cluster")
    workers = [start_worker(root / f"w{i}", nats_server, f"node{i}", cache=shared_cache) for i in range(2)]
    gateway = start_gateway(root / "gw", nats_server, cache=shared_cache)
    yield gateway, workers
    # Every process stopped before any check: a failed one must not leave the others running.
    codes = [gateway.stop(), *(w.stop() for w in workers)]
    assert codes == [0] * len(codes), "\n".join([gateway.stderr(), *(w.stderr() for w in workers)])


async def _served_by_node(nats_server, at_least: int) -> dict[str, int]:
    """Each worker's count of answered invocations, from its heartbeats (waited for, not slept)."""
    nc = await nats.connect(nats_server.url, token=nats_server.token)
    latest: dict[str, int] = {}
    done = asyncio.Event()

    async def beat(msg):
        doc = json.loads(msg.data)
        latest[doc["node"]] = doc["served"]
        if sum(latest.values()) >= at_least and len(latest) >= 2:
            done.set()

    await nc.subscribe(p.HEARTBEAT, cb=beat)
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await nc.close()
    return latest


async def test_invocations_spread_over_both_workers(cluster, nats_server, name):
    gateway, _ = cluster
    api = RemotePlatform(gateway.url, gateway.token)
    try:
        # Warm workers are preferred while they have room (runtime.max_concurrent each): 40 calls of
        # 0.3 s at once are more than one worker takes, so both serve.
        await api.create_function(
            {
                "name": name,
                "runtime": "python",
                "handler": "handler",
                "code": CODE.replace("    return", "    __import__('time').sleep(0.3)\n    return"),
            }
        )
        results = await asyncio.gather(*(api.invoke(name, {"n": i}) for i in range(40)))
        assert all(r.success for r in results), [r.error for r in results if not r.success]
        assert sorted(r.result["echo"]["n"] for r in results) == list(range(40))
        served = await _served_by_node(nats_server, 40)
        assert set(served) == {"node0", "node1"} and all(n > 0 for n in served.values()), served
        info = await api.info()
        assert {n["node"] for n in info["cluster"]["nodes"] if n["health"] == "up"} == {"node0", "node1"}
        # The gateway keeps the history, as the embedded platform does.
        history = await api.list_invocations(function=name, limit=100)
        assert len(history) == 40
    finally:
        await api.close()


async def test_an_update_runs_the_new_code_on_every_worker(cluster, name):
    gateway, _ = cluster
    api = RemotePlatform(gateway.url, gateway.token)
    try:
        await api.create_function({"name": name, "runtime": "python", "handler": "handler", "code": CODE})
        assert all(r.success for r in await asyncio.gather(*(api.invoke(name, 1) for i in range(8))))
        await api.update_function(name, {"code": "def handler(event, context):\n    return 'v2'\n"})
        results = await asyncio.gather(*(api.invoke(name, 1) for i in range(8)))
        assert [r.result for r in results] == ["v2"] * 8, [(r.error_type, r.error) for r in results]
    finally:
        await api.close()


async def test_a_worker_refuses_code_that_does_not_hash_to_its_digest(cluster, nats_server):
    """A peer holding the credentials stores other code under a digest: the worker refuses it."""
    nc = await nats.connect(nats_server.url, token=nats_server.token)
    try:
        obs = await nc.jetstream().object_store(p.CODE_BUCKET)
        forged = "0" * 64
        await obs.put(
            forged,
            json.dumps(
                {
                    "id": "x",
                    "name": "evil",
                    "runtime": "python",
                    "handler": "handler",
                    "code": "def handler(e, c):\n    return 'pwned'\n",
                }
            ).encode(),
        )
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, max_msgs=2)
        await nc.publish(
            f"{p.INVOKE}.python",
            json.dumps({"digest": forged, "event": None, "context": {}, "request_id": "r1", "secrets": {}}).encode(),
            reply=inbox,
        )
        assert "accepted" in json.loads((await sub.next_msg(timeout=30)).data)
        msg = await sub.next_msg(timeout=30)
        answer = json.loads(msg.data)["result"]
        assert answer["success"] is False and "refused" in answer["error"] and "pwned" not in msg.data.decode()
    finally:
        await nc.close()


async def test_a_worker_asked_directly_answers_once_with_the_result(cluster, nats_server):
    """Sent to one worker's own subject (what a gateway does when it knows a worker with room),
    the answer is the result alone: no "accepted" round trip first (issue 18's dispatch cost)."""
    nc = await nats.connect(nats_server.url, token=nats_server.token)
    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        request = {"digest": "1" * 64, "event": None, "context": {}, "request_id": "r2", "secrets": {}}
        await nc.publish(p.node_invoke("node1"), json.dumps(request).encode(), reply=inbox)
        first = json.loads((await sub.next_msg(timeout=30)).data)
        assert "accepted" not in first and first["node"] == "node1", first
        assert first["result"]["success"] is False and "refused" in first["result"]["error"]
    finally:
        await nc.close()


async def test_a_lone_gateway_sends_its_events_only_once_another_gateway_is_up(cluster, nats_server, name):
    """Events go over NATS for the other gateways' streams; with none up, a gateway sends none
    (two messages per invocation that nobody would read). A gateway beating makes it share."""
    gateway, _ = cluster
    api = RemotePlatform(gateway.url, gateway.token)
    nc = await nats.connect(nats_server.url, token=nats_server.token)
    events: list[str] = []
    beats: asyncio.Queue[str] = asyncio.Queue()

    async def on_event(msg):
        events.append(msg.subject)

    async def on_beat(msg):
        beats.put_nowait(json.loads(msg.data)["node"])

    try:
        await nc.subscribe(f"{p.EVENTS}.>", cb=on_event)
        await nc.subscribe(p.GATEWAYS, cb=on_beat)
        await api.create_function({"name": name, "runtime": "python", "handler": "handler", "code": CODE})
        assert (await api.invoke(name, 1)).success
        # A fence: what the gateway sent before answering our ping precedes its beat (one
        # connection, in order); two beats, in case one was already on its way.
        await nc.publish(p.PING, b"")
        gateway_node = await asyncio.wait_for(beats.get(), 30)
        await asyncio.wait_for(beats.get(), 30)
        assert events == [], events
        await nc.publish(p.GATEWAYS, p.dumps({"node": "probe"}))  # another gateway, as far as it knows
        await nc.flush()
        for _ in range(100):  # bounded: the beat and the invocation race on two connections
            assert (await api.invoke(name, 2)).success
            if any(e.endswith("invocation.finished") for e in events):
                break
        assert f"{p.EVENTS}.{gateway_node}.invocation.finished" in events, events
        assert set((await api.info())["cluster"]["gateways"]) == {gateway_node, "probe"}
    finally:
        await nc.close()
        await api.close()


async def test_a_peer_without_the_cluster_token_cannot_connect(nats_server):
    with pytest.raises(Exception, match="Authorization"):
        await nats.connect(nats_server.url, token="wrong", allow_reconnect=False, connect_timeout=5)


async def test_no_worker_connected_is_a_clear_unavailable(tmp_path, shared_cache):
    from clusterproc import start_test_nats

    lone = start_test_nats(tmp_path)
    gateway = start_gateway(tmp_path / "gw", lone, cache=shared_cache)
    api = RemotePlatform(gateway.url, gateway.token)
    try:
        await api.create_function({"name": "lonely", "runtime": "python", "handler": "handler", "code": CODE})
        res = await api.invoke("lonely", 1)
        assert not res.success and res.error_type == "RuntimeUnavailable"
        assert "no cloudfn worker is connected" in res.error and "cloudfn worker" in res.error
        lone.kill()  # NATS itself goes away
        res = await api.invoke("lonely", 1)
        assert not res.success and "Unavailable" in res.error, res.error
    finally:
        await api.close()
        assert gateway.stop() == 0, gateway.stderr()
