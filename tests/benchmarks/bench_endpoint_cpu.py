"""Where the server's CPU goes on one HTTP endpoint call, layer by layer, in process.

    python tests/benchmarks/bench_endpoint_cpu.py [--calls 2000] [--rounds 5]

bench_triggers.py measures `/fn/<name>` over loopback with wrk against functions-framework; on a
shared 2-core host its ratio moves with the load (0.4-0.8x `--asgi` across runs) and hides what a
change to the server's own work does. Here the same call is made sequentially, in this process on
uvloop (gc frozen after warm-up, as `cloudfn serve` does), and the CPU this process spends per call
(time.process_time: the worker's own CPU is another process's) is taken at each layer:

1. the worker exchange alone (`Worker.invoke` on the warm worker, the event already encoded): the floor;
2. `ExecutionService.invoke` (the event's encoding, the slot, the pool);
3. `LocalPlatform.run_invocation` (rate limit, history, metrics, events, logs);
4. the endpoint's ASGI app (`Endpoints`: the checks, the API Gateway event, the answer), without uvicorn.

Each is printed as microseconds per call and as a ratio to the floor, median [range] over the
rounds, the layers taking turns within each round. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_triggers import ENDPOINT_FN  # noqa: E402

TOKEN = b"bench-token"
BODY = b'{"name": "World"}'


async def _measure(call: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call, over n calls made one after another."""
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await call()
    return (time.process_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


async def main(args: argparse.Namespace) -> None:
    from core.config import load_config
    from core.local import LocalPlatform
    from core.server.endpoints import Endpoints
    from core.triggers import http as H

    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoint-cpu-"))
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    platform = LocalPlatform(load_config(flags={"storage.data_dir": str(tmp / "data")}), install_examples=False)
    await platform.start()
    try:
        fn = await platform.create_function({"name": "bench-web", "runtime": "python", "code": ENDPOINT_FN})
        app = Endpoints(platform, TOKEN, 6 << 20, False, frozenset())
        headers = [
            (b"host", b"127.0.0.1:8080"),
            (b"user-agent", b"wrk"),
            (b"authorization", b"Bearer " + TOKEN),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/fn/bench-web",
            "raw_path": b"/fn/bench-web",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "http_version": "1.1",
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": BODY, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def endpoint() -> None:
            sent.clear()
            await app(scope, receive, send)

        await endpoint()
        assert sent[-1]["body"] == b'{"message":"Hello World!"}', sent
        event = H.request_event(
            H.Request(
                method="POST",
                path="/",
                raw_path="",
                raw_query="",
                headers=headers,
                body=BODY,
                drop_header={b"authorization"},
            )
        )
        event_json = json.dumps(event)
        context = {"trigger": "http"}
        pool = platform.executor._pools[(fn.id, fn.version)]
        worker = pool.idle[-1]
        ctx = {"trigger": "http", "function_name": fn.name, "function_id": fn.id, "request_id": "x" * 36}
        layers: dict[str, Callable[[], Awaitable[Any]]] = {
            "worker exchange (floor)": lambda: worker.invoke(event_json, ctx, float(fn.timeout)),
            "ExecutionService.invoke": lambda: platform.executor.invoke(fn, event, context),
            "run_invocation (+ records)": lambda: platform.run_invocation(fn, event, context, trigger="http"),
            "endpoint ASGI app (+ checks, event)": endpoint,
        }
        for call in layers.values():  # warm every path
            for _ in range(200):
                await call()
        assert len(pool.idle) == 1, "one warm worker serves every layer"
        gc.collect()
        gc.freeze()  # as `cloudfn serve` does after start
        cpu: dict[str, list[float]] = {k: [] for k in layers}
        wall: dict[str, list[float]] = {k: [] for k in layers}
        for r in range(args.rounds):
            order = list(layers) if r % 2 == 0 else list(reversed(layers))
            for name in order:
                c, w = await _measure(layers[name], args.calls)
                cpu[name].append(c)
                wall[name].append(w)
    finally:
        await platform.close()

    floor = cpu["worker exchange (floor)"]
    print(f"\nserver CPU per call, in process, sequential, {args.calls} calls x {args.rounds} rounds (median [range])")
    print(f"{'layer':38} {'CPU us':>8} {'wall us':>8}   vs the floor")
    for name in layers:
        ratios = sorted(c / f for c, f in zip(cpu[name], floor, strict=True))
        print(
            f"{name:38} {statistics.median(cpu[name]):8.0f} {statistics.median(wall[name]):8.0f}   "
            f"{statistics.median(ratios):5.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}]"
        )
    names = list(layers)
    print("\nadded by each layer (CPU us, median of the per-round differences)")
    for below, above in zip(names, names[1:], strict=False):
        diffs = [a - b for a, b in zip(cpu[above], cpu[below], strict=True)]
        print(f"  {above:38} +{statistics.median(diffs):6.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="calls per layer per round (default 2000)")
    ap.add_argument("--rounds", type=int, default=5)
    import uvloop

    uvloop.run(main(ap.parse_args()))
