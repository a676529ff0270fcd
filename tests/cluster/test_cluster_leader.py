"""Exactly one gateway leads (alerts, schedules); when it is killed another takes over within the
lease. The gateways share PostgreSQL as a cluster's do (the lease lives in NATS KV, not there):
the lease itself is what is tested, through `cloudfn info` and the KV entry."""

from __future__ import annotations

import asyncio
import signal
import time

import nats
from clusterproc import start_gateway

from core.cluster.leader import BUCKET, KEY, LEASE_TTL, RENEW_EVERY
from core.remote import RemotePlatform


async def _watch_leader(nats_server):
    """The lease's KV entry, watched (updates are events, not polls)."""
    nc = await nats.connect(nats_server.url, token=nats_server.token)
    kv = await nc.jetstream().key_value(BUCKET)
    return nc, await kv.watch(KEY)


async def _next_holder(watcher, other_than: str, deadline: float) -> str:
    end = time.monotonic() + deadline
    while True:
        entry = await watcher.updates(timeout=max(0.1, end - time.monotonic()))
        if entry is not None and entry.value and entry.value.decode() != other_than:
            return entry.value.decode()


async def test_one_leader_and_failover_within_the_lease(nats_server, tmp_path, shared_cache, pg_url):
    a = start_gateway(
        tmp_path / "a", nats_server, cache=shared_cache, CLOUDFN_CLUSTER_NODE_ID="gw-a", CLOUDFN_STORAGE_URL=pg_url
    )
    b = start_gateway(
        tmp_path / "b", nats_server, cache=shared_cache, CLOUDFN_CLUSTER_NODE_ID="gw-b", CLOUDFN_STORAGE_URL=pg_url
    )
    apis = {"gw-a": RemotePlatform(a.url, a.token), "gw-b": RemotePlatform(b.url, b.token)}
    try:
        for _ in range(100):  # bounded: each gateway learns the holder at its next renewal (1 s)
            infos = {n: (await api.info())["cluster"] for n, api in apis.items()}
            if all(i["leader"] for i in infos.values()):
                break
            await asyncio.sleep(0.1)
        leaders = [n for n, i in infos.items() if i["is_leader"]]
        assert len(leaders) == 1, infos
        assert {i["leader"] for i in infos.values()} == set(leaders)
        leader = leaders[0]
        other = "gw-b" if leader == "gw-a" else "gw-a"
        nc, watcher = await _watch_leader(nats_server)
        try:
            killed_at = time.monotonic()
            (a if leader == "gw-a" else b).proc.send_signal(signal.SIGKILL)
            assert await _next_holder(watcher, leader, LEASE_TTL + 10) == other
        finally:
            await nc.close()
        took = time.monotonic() - killed_at
        assert took <= LEASE_TTL + 2 * RENEW_EVERY + 1, took
        for _ in range(100):  # the KV update can reach us before the gateway's own code resumes
            info = (await apis[other].info())["cluster"]
            if info["is_leader"]:
                break
        assert info["is_leader"] and info["leader"] == other
    finally:
        for api in apis.values():
            await api.close()
        for g in (a, b):
            g.stop()
