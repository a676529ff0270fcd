"""Secrets benchmark: what holding secrets costs a warm invoke, as a ratio to the same function
holding none, measured in the same run (rounds alternate A/B/A/B, so a noisy neighbour hits both).

    .venv/bin/python tests/benchmarks/bench_secrets.py [--n 100] [--rounds 15]

The function returns its event and prints a line of ~1 KB, so the masking scan (history result,
logs, event; values and their base64 forms) has text to go through. Goal: >= 0.95x.
Also: the scan alone per invocation, against building the InvocationRecord alone.
Not collected by pytest (tests/benchmarks is outside the test paths).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core import secrets as sec  # noqa: E402
from core.config import load_config  # noqa: E402
from core.local import LocalPlatform  # noqa: E402
from core.models import InvocationRecord, utcnow  # noqa: E402

CODE = "def handler(event, context):\n    print('x' * 1000)\n    return event\n"
VALUES = ["db-password-0123456789", "api-key-abcdefghijklmnop", "token-ZYXWVUTSRQ"]


async def throughput(p: LocalPlatform, name: str, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        r = await p.invoke(name, {"i": i, "text": "some event text " * 8})
        assert r.success, r.error
    return n / (time.perf_counter() - start)


async def main() -> None:
    ap = argparse.ArgumentParser()
    # Short rounds, many of them: on these shared machines a neighbour's burst spans a long round.
    ap.add_argument("--n", type=int, default=100, help="invocations per round")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="cfbench-secrets-"))
    p = LocalPlatform(
        load_config(environ={}, flags={"storage.data_dir": str(data), "monitor.alert_interval": 0}),
        install_examples=False,
    )
    try:
        for i, v in enumerate(VALUES):
            await p.set_secret(f"s{i}", v)
        await p.create_function({"name": "plain", "runtime": "python", "code": CODE})
        await p.create_function(
            {
                "name": "holder",
                "runtime": "python",
                "code": CODE,
                "secrets": ["s0", "s1"],
                "secret_env": {"TOKEN": "s2"},
            }
        )
        for name in ("plain", "holder"):
            await throughput(p, name, 50)  # warm
        a, b = [], []
        for _ in range(args.rounds):
            a.append(await throughput(p, "plain", args.n))
            b.append(await throughput(p, "holder", args.n))
        ta, tb = statistics.median(a), statistics.median(b)
        print(
            f"warm invoke throughput, holding 3 secrets vs none: {tb / ta:.3f}x  (goal >= 0.95x; "
            f"{tb:.0f} vs {ta:.0f} invocations/s, medians of {args.rounds} alternating rounds; "
            f"best rounds {max(b) / max(a):.3f}x)"
        )

        found = sec.needles(VALUES)
        event, result, logs = {"i": 1, "text": "some event text " * 8}, {"i": 1}, "x" * 1000 + "\n"
        reps = 20000
        t0 = time.perf_counter()
        for _ in range(reps):
            InvocationRecord(
                id="i",
                function_id="f",
                function_name="holder",
                function_version=1,
                runtime="python",
                status="success",
                started_at=utcnow(),
                event=event,
                result=result,
                logs=logs,
            )
        build = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            sec.mask(event, found), sec.mask(result, found), sec.mask_text(logs, found), sec.mask_text("", found)
        scan = (time.perf_counter() - t0) / reps
        print(
            f"masking scan per invocation ({len(found)} needles): {scan / build:.2f}x building its record "
            f"({scan * 1e6:.1f} vs {build * 1e6:.1f} µs)"
        )
    finally:
        await p.close()


if __name__ == "__main__":
    asyncio.run(main())
