"""Observability benchmark: every figure is a ratio to a floor or a peer measured in the same run.

    .venv/bin/python tests/benchmarks/bench_observability.py [--n 2000] [--records 100000]

- invoke throughput (a warm Python echo through LocalPlatform.invoke) with 100,000 recorded
  invocations, against the same with an empty history (goal >= 0.9x); rounds alternate A/B/A/B
  so a noisy neighbour hits both sides alike;
- the cost of recording one invocation (history + metrics + event bus), against building the
  InvocationRecord alone, and as a share of a warm invoke.
Not collected by pytest (tests/benchmarks is outside the test paths).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.config import load_config  # noqa: E402
from core.local import LocalPlatform  # noqa: E402
from core.models import InvocationRecord, InvokeResult  # noqa: E402

ECHO = "def handler(event, context):\n    return event\n"


def open_platform(records: int) -> LocalPlatform:
    data = Path(tempfile.mkdtemp(prefix="cfbench-"))
    p = LocalPlatform(
        load_config(
            environ={},
            flags={
                "storage.data_dir": str(data),
                "monitor.alert_interval": 0,
                "monitor.history_max_records": max(records, 1000) + 100_000,
            },
        ),
        install_examples=False,
    )
    if records:
        t0 = datetime.now(UTC) - timedelta(hours=1)
        for i in range(records):
            p.history.add(
                InvocationRecord(
                    id=f"old-{i}",
                    function_id="old",
                    function_name="old",
                    function_version=1,
                    runtime="python",
                    status="success" if i % 10 else "failed",
                    started_at=t0 + timedelta(milliseconds=i),
                    duration=1.0,
                    event={"i": i},
                    result={"i": i},
                    logs="a line\n",
                )
            )
        p.history.flush()
    return p


async def throughput(p: LocalPlatform, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        r = await p.invoke("echo", {"i": i})
        assert r.success, r.error
    return n / (time.perf_counter() - start)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="invocations per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()

    empty, full = open_platform(0), open_platform(args.records)
    for p in (empty, full):
        await p.create_function({"name": "echo", "runtime": "python", "code": ECHO})
        await throughput(p, 50)  # warm the worker
    print(f"history sizes: empty={len(empty.history)} full={len(full.history)}")

    a, b = [], []
    for _ in range(args.rounds):
        a.append(await throughput(empty, args.n))
        b.append(await throughput(full, args.n))
    ta, tb = statistics.median(a), statistics.median(b)
    print(
        f"invoke throughput, {args.records:,} recorded vs none: {tb / ta:.3f}x  (goal >= 0.9x; "
        f"{tb:.0f} vs {ta:.0f} invocations/s, medians of {args.rounds} alternating rounds)"
    )

    # Recording cost: the platform's whole _record step against building the record alone.
    fn = await full.get_function("echo")
    res = InvokeResult(success=True, result={"i": 1}, duration=1.0, logs="")
    now = datetime.now(UTC)
    reps = 20_000
    t = time.perf_counter()
    for i in range(reps):
        InvocationRecord(
            id=str(i),
            function_id=fn.id,
            function_name=fn.name,
            function_version=1,
            runtime="python",
            status="success",
            started_at=now,
            duration=1.0,
            event={"i": i},
            result={"i": 1},
        )
    floor = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for i in range(reps):
        full._record(fn, {"i": i}, res, now)
    cost = (time.perf_counter() - t) / reps
    warm = 1 / tb
    print(
        f"recording one invocation: {cost / floor:.2f}x building its record alone "
        f"({cost * 1e6:.1f} us vs {floor * 1e6:.1f} us), {100 * cost / warm:.1f}% of a warm invoke"
    )
    for p in (empty, full):
        await p.close()


if __name__ == "__main__":
    asyncio.run(main())
