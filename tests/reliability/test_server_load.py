"""Load (issue 7, item 5): 10,000 invocations over 32 concurrent HTTP connections against a real
`cloudfn serve` with `max_concurrent: 10` and a queue of 5. Every answer is 200 with success or
429 Throttled, nothing else; the history and the metrics count exactly the successes and
throttles the client saw; the server's memory (VmRSS) after the second 5,000 is within a bound
of what it was after the first 5,000.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import ServerProc, start_server  # noqa: E402

pytestmark = pytest.mark.slow

TOTAL = 10_000
CONNECTIONS = 32
RSS_GROWTH_MB = 30.0
# 100 ms of work: 10 slots serve at most 100 a second, so 32 connections keep more invocations
# in the server than its 10 slots and 5 queue places hold, and some are throttled.
CODE = "import time\ndef handler(event, context):\n    time.sleep(0.1)\n    return {'i': event['i']}\n"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def blast(client: httpx.AsyncClient, first: int, count: int, seen: Counter, odd: list[str]) -> None:
    """`count` invocations over CONNECTIONS connections, each answer classified."""
    numbers = iter(range(first, first + count))

    async def worker() -> None:
        for i in numbers:
            r = await client.post("/api/v1/functions/load/invoke", json={"event": {"i": i}})
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if r.status_code == 200 and body.get("success") is True and body.get("result") == {"i": i}:
                seen["success"] += 1
            elif r.status_code == 429 and body.get("success") is False and body.get("error_type") == "Throttled":
                seen["throttled"] += 1
            else:
                seen["other"] += 1
                if len(odd) < 5:
                    odd.append(f"{r.status_code} {r.text[:300]}")

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


def history_counts(server: ServerProc) -> Counter:
    counts: Counter = Counter()
    with server.client() as c:
        for status in ("success", "throttled", "failed"):
            offset = 0
            while True:
                page = c.get(
                    "/api/v1/invocations",
                    params={"function": "load", "status": status, "limit": 1000, "offset": offset},
                ).json()
                counts[status] += page["count"]
                offset += page["count"]
                if page["count"] < 1000:
                    break
    return counts


async def test_10000_invocations_over_32_connections(tmp_path, shared_cache):
    server = start_server(
        tmp_path / "s",
        "--mode",
        "release",
        cache=shared_cache,
        CLOUDFN_RUNTIME_MAX_CONCURRENT="10",
        CLOUDFN_RUNTIME_QUEUE_SIZE="5",
    )
    try:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=120, limits=limits) as c:
            r = await c.post("/api/v1/functions", json={"name": "load", "runtime": "python", "code": CODE})
            assert r.status_code == 201, r.text
            seen: Counter = Counter()
            odd: list[str] = []
            start = time.monotonic()
            await blast(c, 0, TOTAL // 2, seen, odd)
            rss_half = rss_mb(server.proc.pid)
            await blast(c, TOTAL // 2, TOTAL - TOTAL // 2, seen, odd)
            rss_end = rss_mb(server.proc.pid)
            elapsed = time.monotonic() - start
        assert seen["other"] == 0, odd
        assert seen["success"] + seen["throttled"] == TOTAL
        assert seen["throttled"] > 0, "32 connections against 10 slots and 5 queue places: some must be throttled"

        history = history_counts(server)
        with server.client() as c:
            m = c.get("/api/metrics", params={"function": "load"}).json()["functions"]["load"]
        assert dict(history) == {"success": seen["success"], "throttled": seen["throttled"], "failed": 0}, history
        assert (m["invocations"], m["successes"], m["throttles"], m["failures"]) == (
            TOTAL,
            seen["success"],
            seen["throttled"],
            seen["throttled"],
        ), m  # a throttle counts as a failure
        growth = rss_end - rss_half
        assert growth < RSS_GROWTH_MB, f"server RSS grew {growth:.1f} MB over the second {TOTAL // 2}"
    finally:
        assert server.stop() == 0, server.stderr()
    print(
        f"\nload: {TOTAL} invocations over {CONNECTIONS} connections in {elapsed:.1f} s "
        f"({TOTAL / elapsed:.0f}/s): {seen['success']} success + {seen['throttled']} throttled (429), 0 other; "
        f"history and metrics count the same; server RSS {rss_half:.1f} MB after {TOTAL // 2}, "
        f"{rss_end:.1f} MB after {TOTAL} ({growth:+.1f} MB, {growth * 2**20 / (TOTAL - TOTAL // 2):.0f} bytes "
        f"per invocation; bound {RSS_GROWTH_MB:.0f} MB)"
    )
