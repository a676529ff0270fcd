"""A steady REST load on a real `cloudfn serve` (README "Bursts"): once warm, the scheduler keeps
the workers it has. Counted from the metrics snapshot's `scheduling`, never timed."""

from __future__ import annotations

import asyncio

import httpx
from serverproc import start_server

CONNECTIONS = 16
FAST = "import time\ndef handler(event, context):\n    time.sleep(0.001)\n    return 1\n"


async def _load(url: str, headers: dict[str, str], rounds: int) -> None:
    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def connection() -> None:
            for _ in range(rounds):
                r = await client.post("/api/v1/functions/steady/invoke", json={})
                assert r.status_code == 200 and r.json()["success"], r.text

        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))


def _scheduling(client: httpx.Client) -> dict:
    return client.get("/api/v1/metrics").json()["scheduling"]["steady"]


def test_a_steady_rest_load_after_warm_up_starts_no_more_spares(tmp_path, shared_cache):
    server = start_server(tmp_path, "--mode", "release", cache=shared_cache)  # (no access log to fill the pipe)
    try:
        with server.client() as client:
            r = client.post(
                "/api/v1/functions", json={"name": "steady", "runtime": "python", "code": FAST, "memory": 64}
            )
            assert r.status_code in (200, 201), r.text
            assert client.post("/api/v1/functions/steady/invoke", json={}).json()["success"]  # one warm worker
            asyncio.run(_load(server.url, server.headers(), 30))  # warm-up: the load's workers start
            warm = _scheduling(client)
            asyncio.run(_load(server.url, server.headers(), 80))
            after = _scheduling(client)
        spares = after["spare_starts"] - warm["spare_starts"]
        started = after["workers_started"] - warm["workers_started"]
        waits = after["queue_waits"] - warm["queue_waits"]
        # A worker going idle while others are handed to waiting callers is no burst's end: a few
        # starts at most as the load settles, never one per drained queue. On a machine busy with
        # other work callers still wait after the warm-up, and waiting that outlasts a start buys
        # a worker (README "Bursts"): each start past the few must follow a caller who waited.
        assert spares <= 2 + waits and started <= 4 + waits, (
            f"{started} started ({spares} spares, {waits} waits) after warm-up: {warm} -> {after}"
        )
    finally:
        assert server.stop() == 0, server.stderr()
