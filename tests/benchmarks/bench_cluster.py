"""Cluster dispatch benchmark (issue 18): synchronous invoke through a gateway with one and two
workers, against the embedded platform (`cloudfn serve` without cluster.nats_url) and a bare NATS
request-reply echo, side by side in one run.

    python tests/benchmarks/bench_cluster.py [--duration 3] [--connections 16]

Every target gets the same Python hello function, invoked over HTTP on loopback by 16 concurrent
httpx clients for `--duration` seconds after a warm-up: p50, p99 (ms) and requests/s. The echo is
nats-py's request() to a responder in another process, 16 at a time. Goal: the gateway's p50
minus the embedded p50 is at most 2x the echo's p50. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "cluster"))
sys.path.insert(0, str(REPO / "tests" / "server"))
from clusterproc import start_gateway, start_test_nats, start_worker  # noqa: E402
from serverproc import start_server  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from pgserver import PostgresServer, available  # noqa: E402

FN = {
    "name": "hello",
    "runtime": "python",
    "handler": "handler",
    "code": "def handler(event, context):\n    return {'message': 'Hello ' + str(event) + '!'}\n",
}
ECHO = """
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], token=sys.argv[2])
    async def cb(msg):
        await msg.respond(msg.data)
    await nc.subscribe("bench.echo", cb=cb)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def load(call, duration: float, connections: int) -> dict[str, float]:
    lat: list[float] = []
    end = time.perf_counter() + duration

    async def one() -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            await call()
            lat.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "rps": len(lat) / (time.perf_counter() - t0)}


async def http_target(url: str, token: str, duration: float, connections: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=url, headers={"authorization": f"Bearer {token}"}, limits=limits, timeout=60
    ) as c:
        r = await c.post("/api/v1/functions", json=FN)
        assert r.status_code in (200, 201), r.text

        async def call() -> None:
            r = await c.post("/api/v1/functions/hello/invoke", json={"event": "bench"})
            assert r.status_code == 200 and r.json()["success"], r.text

        await load(call, 1.0, connections)  # warm-up: workers started everywhere
        return await load(call, duration, connections)


async def echo_target(nats_url: str, token: str, duration: float, connections: int) -> dict[str, float]:
    import nats

    nc = await nats.connect(nats_url, token=token)
    body = b'{"event":"bench"}' * 4

    async def call() -> None:
        await nc.request("bench.echo", body, timeout=10)

    await load(call, 1.0, connections)
    out = await load(call, duration, connections)
    await nc.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    results: dict[str, dict[str, float]] = {}
    nats = start_test_nats(root)
    procs: list = []
    try:
        echo = subprocess.Popen([sys.executable, "-c", ECHO, nats.url, nats.token], stdout=subprocess.PIPE, text=True)
        procs.append(echo)
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
        results["NATS echo"] = asyncio.run(echo_target(nats.url, nats.token, args.duration, args.connections))
        emb = start_server(root / "embedded", "--mode", "release")
        procs.append(emb.proc)
        results["embedded"] = asyncio.run(http_target(emb.url, emb.token or "", args.duration, args.connections))
        emb.stop()
        workers = [start_worker(root / "w1", nats, "bench1")]
        procs.extend(w.proc for w in workers)
        gw = start_gateway(root / "gw", nats)
        procs.append(gw.proc)
        results["gateway + 1 worker"] = asyncio.run(
            http_target(gw.url, gw.token or "", args.duration, args.connections)
        )
        workers.append(start_worker(root / "w2", nats, "bench2"))
        procs.append(workers[-1].proc)
        gw.stop()
        gw = start_gateway(root / "gw2", nats)
        procs.append(gw.proc)
        results["gateway + 2 workers"] = asyncio.run(
            http_target(gw.url, gw.token or "", args.duration, args.connections)
        )
        gw.stop()
        if available():  # the cluster as `cloudfn cluster up` runs it: two gateways' store in PostgreSQL
            pg = PostgresServer()
            pg.start()
            try:
                gw = start_gateway(root / "gw-pg", nats, CLOUDFN_STORAGE_URL=pg.url(pg.create_database()))
                procs.append(gw.proc)
                results["gateway on PG + 2 workers"] = asyncio.run(
                    http_target(gw.url, gw.token or "", args.duration, args.connections)
                )
                gw.stop()
            finally:
                pg.close()
        for w in workers:
            w.stop()
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        nats.stop()
    print(
        f"{'target':<26} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}   ({args.connections} connections, "
        f"{args.duration:g} s)"
    )
    for name, r in results.items():
        print(f"{name:<26} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['rps']:>8.0f}")
    echo50, emb50 = results["NATS echo"]["p50"], results["embedded"]["p50"]
    for name in [n for n in results if n.startswith("gateway")]:
        over = results[name]["p50"] - emb50
        print(
            f"{name}: p50 overhead over embedded {over:.2f} ms = {over / echo50:.2f}x the echo's p50 "
            f"(goal <= 2x); throughput {results[name]['rps'] / results['embedded']['rps']:.2f}x embedded"
        )


if __name__ == "__main__":
    main()
