"""Cluster dispatch benchmark (issue 18): synchronous invoke through a gateway with one and two
workers, against the embedded platform (`cloudfn serve` without cluster.nats_url) and a bare NATS
request-reply echo, side by side in one run.

    python tests/benchmarks/bench_cluster.py [--duration 3] [--connections 16] [--rounds 3]
        [--client wrk|httpx]

Every target gets the same Python hello function, invoked over HTTP on loopback by `--connections`
concurrent connections of wrk (default) or of httpx clients in this process: p50, p99 (ms) and
requests/s. wrk is the default: an httpx call costs its client ~1.3 ms of Python, more than
either server spends, and on two cores that client's CPU moves the figures it measures. The echo
is nats-py's request() to a responder in another process, as many at a time.

All targets run at once, each cluster on its own nats-server, and are measured in turn,
`--rounds` times for `--duration / --rounds` seconds each after a warm-up, in a rotated order: on
a shared machine the load drifts, and alternating exposes every target to it alike. A target's
figures are the median over rounds; the goal (the gateway's p50 minus the embedded p50 at most 2x
the echo's p50) is checked per round, with the median and range of those ratios. Not collected
by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "cluster"))
sys.path.insert(0, str(REPO / "tests" / "server"))
from clusterproc import start_gateway, start_test_nats, start_worker  # noqa: E402
from serverproc import start_server  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "benchmarks"))
from bench_server import wrk  # noqa: E402

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


Call = Callable[[], Awaitable[None]]


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


async def http_client(url: str, token: str, connections: int) -> tuple[httpx.AsyncClient, Call]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    c = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, limits=limits, timeout=60)
    r = await c.post("/api/v1/functions", json=FN)
    assert r.status_code in (200, 201), r.text

    async def call() -> None:
        r = await c.post("/api/v1/functions/hello/invoke", json={"event": "bench"})
        assert r.status_code == 200 and r.json()["success"], r.text

    return c, call


def wrk_client(url: str, token: str, connections: int) -> Callable[[float], Awaitable[dict[str, float]]]:
    """A load of `connections` wrk connections for a given number of seconds, in a thread (the
    echo's NATS connection stays on this loop, idle meanwhile)."""
    r = httpx.post(f"{url}/api/v1/functions", json=FN, headers={"authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code in (200, 201), r.text
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    invoke = f"{url}/api/v1/functions/hello/invoke"
    r = httpx.post(invoke, json={"event": "bench"}, headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["success"], r.text  # wrk counts statuses, not answers

    async def run(duration: float) -> dict[str, float]:
        got = await asyncio.to_thread(wrk, invoke, json.dumps({"event": "bench"}), headers, connections, duration)
        assert not got["non2xx"] and not got["socket_errors"], got
        return got

    return run


async def measure(targets: dict[str, tuple[str, str]], nats_url: str, token: str, args) -> dict:
    """Each target's per-round figures, targets taking turns within every round."""
    import nats

    nc = await nats.connect(nats_url, token=token)
    body = b'{"event":"bench"}' * 4

    async def echo() -> None:
        await nc.request("bench.echo", body, timeout=10)

    loads: dict[str, Callable[[float], Awaitable[dict[str, float]]]] = {
        "NATS echo": lambda seconds: load(echo, seconds, args.connections)
    }
    clients = []
    for name, (url, tok) in targets.items():
        if args.client == "wrk":
            loads[name] = wrk_client(url, tok, args.connections)
        else:
            client, call = await http_client(url, tok, args.connections)
            clients.append(client)
            loads[name] = lambda seconds, call=call: load(call, seconds, args.connections)
    try:
        for run in loads.values():  # warm-up: workers started everywhere
            await run(1.0)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in loads}
        names = list(loads)
        for r in range(args.rounds):
            # Rotated each round: whatever the previous target leaves running (its history flush)
            # falls on every target in turn.
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rounds[name].append(await loads[name](args.duration / args.rounds))
        return rounds
    finally:
        for client in clients:
            await client.aclose()
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per target, over all rounds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--client", choices=("wrk", "httpx"), default="wrk", help="the HTTP load (default wrk)")
    args = ap.parse_args()
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk, or scripts/bench)")
    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    natss = []
    procs: list = []
    pg = None
    try:
        echo_nats = start_test_nats(root / "n1")
        natss.append(echo_nats)
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO, echo_nats.url, echo_nats.token], stdout=subprocess.PIPE, text=True
        )
        procs.append(echo)
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
        emb = start_server(root / "embedded", "--mode", "release")
        procs.append(emb.proc)
        targets: dict[str, tuple[str, str]] = {"embedded": (emb.url, emb.token or "")}

        def cluster(name: str, nats, workers: int, **env: str) -> None:
            for i in range(workers):
                procs.append(start_worker(root / f"{name}-w{i}", nats, f"{name}-{i}").proc)
            gw = start_gateway(root / f"{name}-gw", nats, **env)
            procs.append(gw.proc)
            targets[{"one": "gateway + 1 worker", "two": "gateway + 2 workers"}.get(name, name)] = (
                gw.url,
                gw.token or "",
            )

        cluster("one", echo_nats, 1)  # the echo's responder idles on that server meanwhile
        natss.append(start_test_nats(root / "n2"))
        cluster("two", natss[-1], 2)
        if available():  # the cluster as `cloudfn cluster up` runs it: the gateway's store in PostgreSQL
            pg = PostgresServer()
            pg.start()
            natss.append(start_test_nats(root / "n3"))
            cluster("gateway on PG + 2 workers", natss[-1], 2, CLOUDFN_STORAGE_URL=pg.url(pg.create_database()))
        rounds = asyncio.run(measure(targets, echo_nats.url, echo_nats.token, args))
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        if pg is not None:
            pg.close()
        for n in natss:
            n.stop()
    print(
        f"{'target':<26} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}   ({args.connections} connections, "
        f"{args.rounds} rounds, {args.duration:g} s per target, {args.client}; medians over rounds)"
    )
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("p50", "p99", "rps")} for name, rs in rounds.items()}
    for name, r in med.items():
        print(f"{name:<26} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['rps']:>8.0f}")
    echo_r, emb_r = rounds["NATS echo"], rounds["embedded"]
    for name in [n for n in rounds if n.startswith("gateway")]:
        ratios = sorted((g["p50"] - e["p50"]) / x["p50"] for g, e, x in zip(rounds[name], emb_r, echo_r, strict=True))
        over = med[name]["p50"] - med["embedded"]["p50"]
        print(
            f"{name}: p50 overhead over embedded {over:.2f} ms; per round {statistics.median(ratios):.2f}x the "
            f"echo's p50 (range {ratios[0]:.2f}-{ratios[-1]:.2f}; goal <= 2x); throughput "
            f"{med[name]['rps'] / med['embedded']['rps']:.2f}x embedded"
        )


if __name__ == "__main__":
    main()
