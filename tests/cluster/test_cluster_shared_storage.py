"""Two gateways over one PostgreSQL and one NATS (issue 18, both halves together): the same
functions, versions, history and secrets through either; a secret set on one is what the workers
serving the other use (and mask); PostgreSQL restarted under load through a gateway: a clear
503 `Unavailable`, then success, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
from clusterproc import start_gateway, start_worker

from core.errors import Unavailable
from core.remote import RemotePlatform

CODE = (
    "import os\ndef handler(event, context):\n    print('using', os.environ['TOKEN'])\n"
    "    return {'v': %d, 'token': os.environ['TOKEN']}\n"
)
PLAIN = "def handler(event, context):\n    return {'v': %d}\n"
FIRST, SECOND = "first-s3cret-value", "second-s3cret-value"


def _cluster(tmp_path, nats_server, shared_cache, pg_url, node_prefix):
    key = base64.b64encode(os.urandom(32)).decode()  # one key for every gateway (they share the secrets)
    env = {"CLOUDFN_STORAGE_URL": pg_url, "CLOUDFN_SECRETS_KEY": key, "CLOUDFN_MONITOR_ALERT_INTERVAL": "0"}
    workers = [
        start_worker(tmp_path / f"w{i}", nats_server, f"{node_prefix}w{i}", cache=shared_cache) for i in range(2)
    ]
    gateways = [
        start_gateway(tmp_path / g, nats_server, cache=shared_cache, CLOUDFN_CLUSTER_NODE_ID=f"{node_prefix}{g}", **env)
        for g in ("a", "b")
    ]
    return workers, gateways


def _stop(workers, gateways):
    codes = [g.stop() for g in gateways]  # all stopped before any check: none outlives a failure
    for w in workers:
        w.stop()
    assert codes == [0] * len(codes), "\n".join(g.stderr() for g in gateways)


async def test_two_gateways_share_functions_versions_history_and_secrets(
    nats_server, tmp_path, shared_cache, pg_url, name
):
    workers, gateways = _cluster(tmp_path, nats_server, shared_cache, pg_url, "ss")
    a, b = (RemotePlatform(g.url, g.token) for g in gateways)
    try:
        await a.set_secret("token", FIRST)
        assert [s.name for s in await b.list_secrets()] == ["token"]
        spec = {
            "name": name,
            "runtime": "python",
            "handler": "handler",
            "code": CODE % 1,
            "secret_env": {"TOKEN": "token"},
        }
        created = await a.create_function(spec)
        assert (await b.get_function(name)).id == created.id
        first = await b.invoke(name, {"n": 1})
        assert first.success and first.result == {"v": 1, "token": FIRST}, first  # the caller's own answer
        await a.update_function(name, {"code": CODE % 2})
        assert [v.version for v in await b.function_versions(name)] == [1, 2]
        # A set through gateway a: the workers replace theirs; b's invokes carry the new value,
        # and b masks both values in what it keeps (history, logs).
        await a.set_secret("token", SECOND)
        ids = {first.invocation_id}
        for i in range(6):  # several invokes: the queue group spreads them over both workers
            api = b if i else a  # one through a: its record, seen by b once flushed (below)
            r = await api.invoke(name, {"n": i})
            assert r.success and r.result == {"v": 2, "token": SECOND}, r
            ids.add(r.invocation_id)
            kept = (await api.get_invocation(r.invocation_id)).model_dump(mode="json")
            assert kept["result"] == {"v": 2, "token": "***"} and "using ***" in kept["logs"], kept
            assert FIRST not in str(kept) and SECOND not in str(kept)
        # History: each gateway writes its records every second; both read the shared table.
        for api in (a, b):
            for _ in range(100):
                got = {r.id for r in await api.list_invocations(function=name, limit=100)}
                if ids <= got:
                    break
                await asyncio.sleep(0.1)  # bounded: the flush loop runs every second
            assert got == ids, (api, len(got))
        # Metrics are the cluster's: each gateway counts the other's invocations too (events).
        for api in (a, b):
            for _ in range(100):
                m = await api.metrics(name)
                if m["functions"].get(name, {}).get("invocations") == len(ids):
                    break
                await asyncio.sleep(0.1)  # bounded: the other gateway's events are in flight
            assert m["functions"][name]["invocations"] == len(ids), m["functions"]
            assert m["gateways"]["ssa"] >= 1 and m["gateways"]["ssb"] >= len(ids) - 1, m["gateways"]
        await b.delete_function(name)
        assert name not in {f.name for f in await a.list_functions()}
    finally:
        await a.close()
        await b.close()
        _stop(workers, gateways)


async def test_postgresql_restarted_under_load_through_a_gateway(
    nats_server, tmp_path, shared_cache, pg_url, postgres_server, name
):
    workers, gateways = _cluster(tmp_path, nats_server, shared_cache, pg_url, "pr")
    a, b = (RemotePlatform(g.url, g.token) for g in gateways)
    acked: list[str] = []
    refused: list[Unavailable] = []
    progress = asyncio.Event()
    outage = asyncio.Event()  # set at the first refusal
    stop = asyncio.Event()

    async def creator() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            fn = f"{name}-{i}"
            try:
                await a.create_function({"name": fn, "runtime": "python", "handler": "handler", "code": PLAIN % i})
            except Unavailable as exc:
                refused.append(exc)
                outage.set()
                continue
            acked.append(fn)
            progress.set()

    try:
        task = asyncio.create_task(creator())
        while len(acked) < 10:
            progress.clear()
            await asyncio.wait_for(progress.wait(), 60)
        assert (await b.invoke(acked[0], {})).success  # b has read it: in its registry cache
        await asyncio.to_thread(postgres_server.stop, "fast")
        await asyncio.wait_for(outage.wait(), 30)
        async with httpx.AsyncClient(base_url=gateways[0].url) as raw:  # what REST clients see
            spec = {"name": f"{name}-during", "runtime": "python", "handler": "handler", "code": PLAIN % 0}
            auth = {"Authorization": f"Bearer {gateways[0].token}"}
            r = await raw.post("/api/v1/functions", json=spec, headers=auth)
        assert r.status_code == 503 and r.json()["type"] == "Unavailable", r.text
        assert "retry" in r.json()["error"] and postgres_server.password not in r.text
        # Invocations keep running on the registry read last (the workers need no database);
        # their records wait in memory for the next flush.
        during = await b.invoke(acked[0], {})
        assert during.success, during.error
        await asyncio.to_thread(postgres_server.start)
        before = len(acked)
        while len(acked) < before + 10:
            progress.clear()
            await asyncio.wait_for(progress.wait(), 60)
        stop.set()
        await task
        for exc in refused:
            assert "unavailable" in exc.message.lower() and postgres_server.password not in exc.message
        # Gateway b met the outage too (the invoke above): for a second after its last failure
        # it answers reads from what it read last, so it writes first (which waits for the
        # database or says Unavailable), as a client retrying would.
        spec = {"name": f"{name}-via-b", "runtime": "python", "handler": "handler", "code": PLAIN % 0}
        for _ in range(100):
            try:
                await b.create_function(spec)
                break
            except Unavailable:
                await asyncio.sleep(0.1)  # bounded: b's fail-fast second, then a 3 s connect wait
        names = {f.name for f in await b.list_functions()}  # through the other gateway
        missing = sorted(set(acked) - names)
        assert not missing, (missing, len(acked), sorted(n for n in names if n.startswith(name)))
        assert f"{name}-during" not in names and f"{name}-via-b" in names
        r = await b.invoke(acked[-1], {})
        assert r.success, r.error
    finally:
        stop.set()
        await a.close()
        await b.close()
        _stop(workers, gateways)
