"""The asynchronous queue on JetStream (cluster mode) against SQLite (embedded), in one run.

    python tests/benchmarks/bench_async_jetstream.py [--n 300] [--rounds 3]

- accept p50/p99: `LocalPlatform.invoke_async` in process (validation, the durable enqueue, the
  event), on an embedded platform (SQLite file) and on a cluster gateway (JetStream publish with
  its ack + the state's KV put, one round trip as they go together), consumers off so only the
  accept is timed;
- queue round trip p50/p99: enqueue -> the item claimed -> acked (state success), the queue's
  whole share of an asynchronous invocation's end-to-end time without the function: SQLite's
  three statements against JetStream's publish, push to the fetch loop, claim and ack;
- end to end p50/p99: `invoke_async` until `invocation_status(wait=...)` says success, against a
  synchronous `invoke` of the same function on the same platform: embedded (SQLite queue, local
  sandbox) and a cluster gateway (JetStream queue) with one `cloudfn worker` process; the ratio
  async/sync on each is the queue's share, the worker's trip cancelling out.
Both run on a real nats-server -js on loopback, the two backends alternating item by item so a
noisy moment of this shared machine falls on both; ratios per round, median and range printed.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from core.cluster.natsserver import start_nats  # noqa: E402
from core.config import load_config  # noqa: E402
from core.models import new_uuid  # noqa: E402
from core.triggers.queue import QueuedInvocation, SqliteQueue  # noqa: E402

FN = "def handler(event, context):\n    return event\n"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def line(name: str, ms: list[float]) -> str:
    return f"  {name:34s} p50 {pct(ms, 50):7.3f} ms   p99 {pct(ms, 99):7.3f} ms"


async def accept_round(embedded, gateway, n: int) -> tuple[list[float], list[float]]:
    out: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for i, p in enumerate((embedded, gateway)):
            t0 = time.perf_counter()
            await p.invoke_async("bench", {"name": "x"})
            out[i].append((time.perf_counter() - t0) * 1000)
    return out


async def e2e_round(platforms, n: int) -> list[tuple[list[float], list[float]]]:
    out: list[tuple[list[float], list[float]]] = [([], []) for _ in platforms]
    for _ in range(n):
        for i, p in enumerate(platforms):
            t0 = time.perf_counter()
            inv = await p.invoke_async("bench", {"name": "x"})
            done = await p.invocation_status(inv.invocation_id, wait=30)
            assert done.status == "success", done
            out[i][0].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            res = await p.invoke("bench", {"name": "x"})
            assert res.success, res.error
            out[i][1].append((time.perf_counter() - t0) * 1000)
    return out


def round_trip(q, ready: threading.Event) -> float:
    it = QueuedInvocation(id=new_uuid(), function_id="f", function_name="bench", event={"name": "x"})
    t0 = time.perf_counter()
    q.enqueue(it)
    got: list[QueuedInvocation] = []
    while not got:
        ready.clear()
        got = q.claim(1, time.time())
        if not got:
            ready.wait(10)
    q.ack(got[0])
    return (time.perf_counter() - t0) * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-jsq-"))
    nats = start_nats(root / "nats", secrets.token_hex(16))
    os.environ["CLOUDFN_CLUSTER_NATS_TOKEN"] = nats.token
    from core.local import LocalPlatform
    from core.triggers.jsqueue import JetStreamQueue

    embedded = LocalPlatform(
        load_config(flags={"storage.data_dir": str(root / "e")}), install_examples=False, consume_async=False
    )
    gw_config = load_config(flags={"storage.data_dir": str(root / "g"), "cluster.nats_url": nats.url})
    gateway = LocalPlatform(gw_config, install_examples=False, consume_async=False)
    sq = SqliteQueue(root / "rt.sqlite3")
    # Its own server: on the gateways' one it would share their consumer and take their work.
    nats_q = start_nats(root / "nats-q", nats.token)
    jq = JetStreamQueue(load_config(flags={"storage.data_dir": str(root / "q"), "cluster.nats_url": nats_q.url}))
    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    from clusterproc import start_worker

    worker = start_worker(root / "w", nats, "bench-jsq-w")
    e2 = LocalPlatform(load_config(flags={"storage.data_dir": str(root / "e2")}), install_examples=False)
    g2 = LocalPlatform(
        load_config(flags={"storage.data_dir": str(root / "g2"), "cluster.nats_url": nats.url}), install_examples=False
    )
    sq_ready, jq_ready = threading.Event(), threading.Event()
    sq.set_waker(sq_ready.set, 1)
    jq.set_waker(jq_ready.set, 1)
    try:
        for p in (embedded, gateway, e2, g2):
            await p.create_function({"name": "bench", "runtime": "python", "code": FN})
        await accept_round(embedded, gateway, 50)  # warm: connections, streams, caches
        for _ in range(50):
            round_trip(sq, sq_ready), round_trip(jq, jq_ready)
        await e2e_round((e2, g2), 20)
        acc_ratios, rt_ratios, e2e_ratios = [], [], []
        for r in range(args.rounds):
            e, g = await accept_round(embedded, gateway, args.n)
            s_rt: list[float] = []
            j_rt: list[float] = []

            def trips(s_rt: list[float] = s_rt, j_rt: list[float] = j_rt) -> None:
                for _ in range(args.n):
                    s_rt.append(round_trip(sq, sq_ready))
                    j_rt.append(round_trip(jq, jq_ready))

            # On a thread: blocking this loop (the in-process gateway's) for the whole section
            # left it a backlog of worker heartbeats that the next end-to-end item paid (0.5-1 s).
            await asyncio.to_thread(trips)
            acc_ratios.append(pct(g, 50) / pct(e, 50))
            rt_ratios.append(pct(j_rt, 50) / pct(s_rt, 50))
            print(f"round {r + 1} ({args.n} each)")
            print(line("accept, embedded (SQLite)", e))
            print(line("accept, cluster gateway (JetStream)", g))
            print(line("queue round trip, SQLite", s_rt))
            print(line("queue round trip, JetStream", j_rt))
            (e_async, e_sync), (g_async, g_sync) = await e2e_round((e2, g2), args.n // 3)
            print(line("end to end async, embedded", e_async))
            print(line("sync invoke, embedded", e_sync))
            print(line("end to end async, gateway+worker", g_async))
            print(line("sync invoke, gateway+worker", g_sync))
            e2e_ratios.append(
                (
                    pct(e_async, 50) / pct(e_sync, 50),
                    pct(g_async, 50) / pct(g_sync, 50),
                    pct(g_async, 50) / pct(e_async, 50),
                )
            )

        def ratio(rs: list[float]) -> str:
            return f"{statistics.median(rs):.2f}x (range {min(rs):.2f}-{max(rs):.2f})"

        print(f"accept p50, JetStream / SQLite:          {ratio(acc_ratios)}")
        print(f"queue round trip p50, JetStream / SQLite: {ratio(rt_ratios)}")
        print(f"end to end p50 / sync p50, embedded (SQLite):      {ratio([r[0] for r in e2e_ratios])}")
        print(f"end to end p50 / sync p50, gateway (JetStream):    {ratio([r[1] for r in e2e_ratios])}")
        print(f"end to end p50, gateway+worker / embedded:         {ratio([r[2] for r in e2e_ratios])}")
    finally:
        jq.close()
        sq.close()
        await gateway.close()
        await embedded.close()
        await g2.close()
        await e2.close()
        worker.stop()
        nats.stop()
        nats_q.stop()


if __name__ == "__main__":
    asyncio.run(main())
