"""Asynchronous invocation benchmark, side by side in one run.

    python tests/benchmarks/bench_async.py [--n 500] [--rounds 3]

- accept latency p50/p99: `POST .../invoke` with `X-Cloudfn-Invocation-Type: Event` until the
  202 (the invocation durably queued), against the floor of a `GET /api/health` round trip on
  the same keep-alive connection; and in process (`LocalPlatform.invoke_async`, no HTTP), the
  queue's own cost (goal: p50 <= 1 ms);
- end-to-end latency: from sending the Event request until its `invocation.finished` event
  arrives on the server's event stream (already open, on its own connection), against a
  synchronous invoke of the same function over the same connection (goal: <= 1.5x); and until
  the invocation ended by its own record (started_at + duration, the same machine's clock),
  which leaves out the notification's trip; and what a client without an event stream sees:
  the 202, then `GET /api/v1/invocations/:id?wait=30` on the same connection answering success
  (two round trips against the synchronous invoke's one).
Requests alternate between the kinds within each round, so a noisy moment on this shared
machine falls on both; ratios are per round, the median and range printed. Not collected by
pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
TOKEN = "bench-token-0123456789abcdef"
FN = "def handler(event, context):\n    return {'message': 'Hello ' + str((event or {}).get('name', 'World'))}\n"
EVENT = {"x-cloudfn-invocation-type": "Event"}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFN_")}
    env.update(
        XDG_CONFIG_HOME=str(root / "cfg"),
        XDG_DATA_HOME=str(root / "xdg"),
        XDG_CACHE_HOME=str(root / "cache"),
        PYTHONPATH=str(REPO),
        CLOUDFN_TOKEN=TOKEN,
    )
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudfn_tui.cli",
            "--data-dir",
            str(root / "data"),
            "serve",
            "--port",
            "0",
            "--mode",
            "release",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    line = p.stdout.readline().decode()
    if "serving on " not in line:
        raise SystemExit(f"cloudfn serve did not start: {line!r}")
    return p, line.split("serving on ", 1)[1].split()[0]


class Finished:
    """The server's event stream (SSE), read on its own connection: when each invocation's
    `invocation.finished` event arrives, by id."""

    def __init__(self, url: str):
        self.seen: dict[str, float] = {}
        self.completed: dict[str, float] = {}  # wall-clock end of each, by the server's own record
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.client = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=httpx.Timeout(30, read=None)
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise SystemExit("the event stream did not open")

    def _read(self) -> None:
        with self.client.stream("GET", "/api/v1/events", params={"kinds": "invocation.finished"}) as r:
            self.ready.set()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    now = time.perf_counter()
                    data = json.loads(line[6:]).get("data") or {}
                    if "id" not in data:
                        continue
                    end = datetime.fromisoformat(data["started_at"]).timestamp() + data["duration"] / 1000
                    with self.cond:
                        self.completed.setdefault(data["id"], end)
                        self.seen.setdefault(data["id"], now)
                        self.cond.notify_all()

    def wait(self, invocation_id: str) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: invocation_id in self.seen, 30):
                raise SystemExit(f"no invocation.finished for {invocation_id}")
            return self.seen[invocation_id]


def over_http(url: str, n: int, finished: Finished) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"health": [], "accept": [], "e2e": [], "sync": [], "done": [], "waited": []}
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
        for _ in range(50):  # warm: the worker, the connection, the code paths
            c.post("/api/v1/functions/hello/invoke", json={"event": {"name": "x"}})
        for i in range(n):
            t0 = time.perf_counter()
            c.get("/api/health")
            t1, wall1 = time.perf_counter(), time.time()
            r = c.post("/api/v1/functions/hello/invoke", json={"event": {"name": i}}, headers=EVENT)
            t2 = time.perf_counter()
            assert r.status_code == 202, r.text
            inv = r.json()["invocation_id"]
            done = finished.wait(inv)
            t3 = time.perf_counter()
            r = c.post("/api/v1/functions/hello/invoke", json={"event": {"name": i}})
            t4 = time.perf_counter()
            assert r.json()["success"], r.text
            # What a client without an event stream sees: the 202, then the status route
            # waiting (on the event, not polling) until the invocation succeeded.
            t5 = time.perf_counter()
            r = c.post("/api/v1/functions/hello/invoke", json={"event": {"name": i}}, headers=EVENT)
            r = c.get(f"/api/v1/invocations/{r.json()['invocation_id']}", params={"wait": 30})
            t6 = time.perf_counter()
            assert r.json()["status"] == "success", r.text
            out["waited"].append(t6 - t5)
            out["health"].append(t1 - t0)
            out["accept"].append(t2 - t1)
            out["e2e"].append(done - t1)
            out["done"].append(finished.completed[inv] - wall1)
            out["sync"].append(t4 - t3)
    return out


async def in_process(n: int) -> dict[str, list[float]]:
    from core.config import load_config
    from core.local import LocalPlatform

    with tempfile.TemporaryDirectory() as d:
        p = LocalPlatform(
            load_config(environ={}, flags={"storage.data_dir": d, "monitor.alert_interval": 0}),
            install_examples=False,
            consume_async=False,
        )  # accept only: nothing runs meanwhile
        try:
            await p.create_function({"name": "hello", "runtime": "python", "code": FN})
            out: dict[str, list[float]] = {"accept": []}
            for i in range(n):
                t0 = time.perf_counter()
                await p.invoke_async("hello", {"name": i})
                out["accept"].append(time.perf_counter() - t0)
            return out
        finally:
            await p.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ms = 1000.0
    local = asyncio.run(in_process(args.n * 2))
    print(
        f"in process: accept p50 {pct(local['accept'], 50) * ms:.3f} ms  p99 {pct(local['accept'], 99) * ms:.3f} ms"
        f"  (goal p50 <= 1 ms)"
    )
    with tempfile.TemporaryDirectory() as d:
        proc, url = start_server(Path(d))
        try:
            with httpx.Client(base_url=url, headers={"authorization": f"Bearer {TOKEN}"}) as c:
                c.post("/api/v1/functions", json={"name": "hello", "runtime": "python", "code": FN}).raise_for_status()
            accept_ratio, e2e_ratio, done_ratio, wait_ratio = [], [], [], []
            finished = Finished(url)
            for rnd in range(1, args.rounds + 1):
                m = over_http(url, args.n, finished)
                a50, h50 = pct(m["accept"], 50), pct(m["health"], 50)
                e50, s50 = pct(m["e2e"], 50), pct(m["sync"], 50)
                accept_ratio.append(a50 / h50)
                e2e_ratio.append(e50 / s50)
                d50 = pct(m["done"], 50)
                done_ratio.append(d50 / s50)
                w50 = pct(m["waited"], 50)
                wait_ratio.append(w50 / s50)
                print(
                    f"round {rnd}: accept p50 {a50 * ms:.3f} ms p99 {pct(m['accept'], 99) * ms:.3f} ms "
                    f"(health round trip p50 {h50 * ms:.3f} ms: {a50 / h50:.2f}x) | end to end p50 {e50 * ms:.3f} ms "
                    f"p99 {pct(m['e2e'], 99) * ms:.3f} ms vs sync invoke p50 {s50 * ms:.3f} ms "
                    f"p99 {pct(m['sync'], 99) * ms:.3f} ms: {e50 / s50:.2f}x | request sent to its end on the "
                    f"server's clock p50 {d50 * ms:.3f} ms: {d50 / s50:.2f}x | 202 then GET ?wait= until success "
                    f"p50 {w50 * ms:.3f} ms p99 {pct(m['waited'], 99) * ms:.3f} ms: {w50 / s50:.2f}x"
                )
            print(
                f"accept vs health round trip: median {statistics.median(accept_ratio):.2f}x "
                f"(range {min(accept_ratio):.2f}-{max(accept_ratio):.2f})"
            )
            print(
                f"async end to end vs sync invoke: median {statistics.median(e2e_ratio):.2f}x "
                f"(range {min(e2e_ratio):.2f}-{max(e2e_ratio):.2f}; goal <= 1.5x)"
            )
            print(
                f"202 then GET /api/v1/invocations/<id>?wait= answering success, vs sync invoke: median "
                f"{statistics.median(wait_ratio):.2f}x (range {min(wait_ratio):.2f}-{max(wait_ratio):.2f}; two "
                "round trips against one)"
            )
            print(
                f"request sent to its end (server's record), vs sync invoke: median "
                f"{statistics.median(done_ratio):.2f}x (range {min(done_ratio):.2f}-{max(done_ratio):.2f})"
            )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
