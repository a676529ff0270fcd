"""Storage benchmark: registry reads and history queries with 100,000 invocations recorded, on
PostgreSQL against the embedded store, in one run, printed as ratios (PostgreSQL / embedded).

    .venv/bin/python tests/benchmarks/bench_storage.py [--records 100000] [--reps 200]

PostgreSQL is Debian's 15, started for the run on a free loopback port (tests/pgserver.py; run
as root). Both backends go through the same interface (core/storage/base.py), each with its
registry cache warm: the embedded registry answers from memory; the PostgreSQL one first checks
the store's generation (one indexed read), which is what keeps several gateways consistent.
Not collected by pytest (tests/benchmarks is outside the test paths).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer  # noqa: E402

from core.config import load_config  # noqa: E402
from core.local import LocalPlatform  # noqa: E402
from core.models import InvocationRecord  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.storage import open_backend  # noqa: E402

FUNCTIONS = 50
CODE = "def handler(event, context):\n    return {'n': event.get('n')}\n" + "# padding\n" * 100


def record(i: int, at: datetime) -> InvocationRecord:
    fn = i % FUNCTIONS
    return InvocationRecord(
        id=str(uuid.uuid4()),
        function_id=f"fn{fn:03d}",
        function_name=f"f-{fn}",
        function_version=1,
        runtime="python",
        status="failed" if i % 50 == 0 else "success",
        trigger="http" if i % 10 == 0 else "manual",
        started_at=at,
        finished_at=at,
        duration_ms=1.5,
        event={"n": i, "path": "/x"},
        result={"n": i},
        logs="",
    )


def per_op_ms(fn: Callable[[], Any], reps: int) -> float:
    """Median of 5 runs of `reps` calls, in milliseconds per call."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        runs.append((time.perf_counter() - start) * 1000 / reps)
    return statistics.median(runs)


def measure(url: str | None, records: int, reps: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="cfbench-storage-"))
    backend = open_backend(url, data)
    try:
        reg = Registry(backend.documents("registry"), blobs=backend.blobs(data / "versions"))
        names = [f"bench-{i}" for i in range(FUNCTIONS)]
        for name in names:
            reg.create({"name": name, "runtime": "python", "code": CODE})
        history = backend.history(data / "history", max_records=records, max_age=timedelta(days=7))
        base = datetime.now(UTC) - timedelta(hours=1)
        start = time.perf_counter()
        for i in range(records):
            history.add(record(i, base + timedelta(milliseconds=i * 10)))
            if i % 1000 == 999:
                history.flush()
        history.flush()
        write_s = time.perf_counter() - start
        some_id = history.query(limit=1, offset=records // 2)[0].id
        out = {
            "record 1,000 invocations (add + flush)": write_s * 1000 * 1000 / records,
            "registry get by name": per_op_ms(lambda: reg.get("bench-25"), reps * 10),
            "registry list (50 functions)": per_op_ms(reg.list, reps * 10),
            "history recent 50": per_op_ms(lambda: history.query(limit=50), reps),
            "history by function, 50": per_op_ms(lambda: history.query(function_id="fn007", limit=50), reps),
            "history by status failed, 50": per_op_ms(lambda: history.query(status="failed", limit=50), reps),
            "history by trigger http, page 10": per_op_ms(
                lambda: history.query(trigger="http", limit=50, offset=450), reps
            ),
            "history get by id": per_op_ms(lambda: history.get(some_id), reps),
            "history counts": per_op_ms(history.counts, max(1, reps // 10)),
        }
        return out
    finally:
        backend.close()


async def invoke_ms(url: str | None, n: int) -> float:
    """A warm Python echo through LocalPlatform.invoke: what the registry read costs an invoke."""
    flags: dict[str, Any] = {
        "storage.data_dir": tempfile.mkdtemp(prefix="cfbench-storage-inv-"),
        "monitor.alert_interval": 0,
    }
    if url:
        flags["storage.url"] = url
    p = LocalPlatform(load_config(environ={}, flags=flags), install_examples=False, announce=False)
    try:
        await p.create_function(
            {"name": "echo-bench", "runtime": "python", "code": "def handler(event, context):\n    return event\n"}
        )
        for i in range(50):
            await p.invoke("echo-bench", {"i": i})
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for i in range(n):
                await p.invoke("echo-bench", {"i": i})
            runs.append((time.perf_counter() - start) * 1000 / n)
        return statistics.median(runs)
    finally:
        await p.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    server = PostgresServer()
    try:
        server.start()
        url = server.url(server.create_database())
        embedded = measure(None, args.records, args.reps)
        pg = measure(url, args.records, args.reps)
        embedded["warm invoke (python echo, in process)"] = asyncio.run(invoke_ms(None, args.reps))
        pg["warm invoke (python echo, in process)"] = asyncio.run(
            invoke_ms(server.url(server.create_database()), args.reps)
        )
    finally:
        server.close()
    print(f"storage, {args.records:,} invocations recorded, {FUNCTIONS} functions (ms per operation)")
    print(f"{'operation':<40} {'embedded':>10} {'postgresql':>11} {'ratio':>7}")
    for name, e in embedded.items():
        p = pg[name]
        print(f"{name:<40} {e:>10.3f} {p:>11.3f} {p / e:>6.1f}x")


if __name__ == "__main__":
    main()
