"""Triggers benchmark: HTTP endpoints against functions-framework, and how late schedules fire.

    python tests/benchmarks/bench_triggers.py [--duration 5] [--rounds 3] [--ff-venv /tmp/ffvenv] [--before DIR]
    python tests/benchmarks/bench_triggers.py --schedules-only N [--schedule-seconds 10] [--before DIR]

1. HTTP endpoint: the same hello function answering POST requests with a JSON body, over
   loopback, with `wrk` at 16 connections: throughput and p99, for `cloudfn serve`'s
   /fn/<name> (API Gateway v2 event in, JSON out; token-protected, as by default) against
   functions-framework's default mode (gunicorn) and `--asgi` (uvicorn), each in its own venv, and
   beside them `--asgi` handing each request to worker processes over pipes (a fairer side peer:
   the process crossing without the sandbox and the records):

       python3 -m venv /tmp/ffvenv && /tmp/ffvenv/bin/pip install functions-framework

   Every server stays up while the rounds take turns; each ratio is taken within a round and
   the median and range over the rounds are printed (bench_server.py's method).
2. Schedule firing delay: 20 functions each `every: 1s` in one `cloudfn serve`, idle and then
   under the endpoint load above; from the SSE stream, how late each run fired (the scheduler's
   `delay_ms`) and how late the function itself started (its clock against the scheduled time
   in its context). The floor: this process sleeping with asyncio to the same whole seconds,
   measured at the same time; the goal is p99 <= 10 ms late.
`--before DIR` (an older checkout, e.g. `git archive <commit> | tar -x -C DIR`): a second
`cloudfn serve` from it takes its turn in every endpoint round, and its schedules are measured
the same way, after this one's.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (  # noqa: E402
    CLOUDFN_FN,
    FF_ASGI_FN,
    FF_FN,
    REPO,
    START_DEADLINE,
    TOKEN,
    Proc,
    free_port,
    start_cloudfn,
    start_ff,
    wait_200,
    wrk,
)

ENDPOINT_FN = (
    "import json\n"
    "def handler(event, context):\n"
    "    body = json.loads(event.get('body') or '{}')\n"
    "    return {'message': 'Hello ' + body.get('name', 'World') + '!'}\n"
)
LATE_FN = (
    "import time\n"
    "from datetime import datetime\n"
    "def handler(event, context):\n"
    "    now = time.time()\n"
    "    return {'late_ms': (now - datetime.fromisoformat(context['scheduled_time']).timestamp()) * 1000}\n"
)
SCHEDULED = 20
# A fairer side peer: functions-framework `--asgi` handing each request to one of a few worker
# processes over pipes, as cloudfn does (without its sandbox, records, limits or events): what
# the process crossing alone costs on this machine.
FF_CROSSING_WORKERS = 4
FF_CROSSING_CHILD = r"""
import json, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    event = json.loads(line)
    out.write(json.dumps({'message': 'Hello ' + (event or {}).get('name', 'World') + '!'}).encode() + b'\n')
    out.flush()
"""
FF_CROSSING_FN = f"""import asyncio, json, sys
CHILD = {FF_CROSSING_CHILD!r}
_pool = None
async def _worker():
    global _pool
    if _pool is None:
        _pool = asyncio.Queue()
        for _ in range({FF_CROSSING_WORKERS}):
            _pool.put_nowait(await asyncio.create_subprocess_exec(
                sys.executable, '-c', CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
    return await _pool.get()
async def hello(request):
    body = (await request.body()).replace(b'\\n', b' ') or b'{{}}'
    p = await _worker()
    try:
        p.stdin.write(body + b'\\n')
        line = await p.stdout.readline()
    finally:
        _pool.put_nowait(p)
    return json.loads(line)
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def measure_endpoint(url: str, body: str, headers: dict[str, str], duration: float) -> dict[str, float]:
    wrk(url, body, headers, 16, 1.0)  # warm every worker the 16 connections use
    run = wrk(url, body, headers, 16, duration)
    if run["non2xx"] or run["socket_errors"]:
        print(f"  !! {url}: {run['non2xx']} non-2xx answers, socket errors: {run['socket_errors'] or 'none'}")
    return {"rps": run["rps"], "p50": run["p50"], "p99": run["p99"]}


class ScheduleWatch:
    """Reads the server's SSE stream in a thread: delay_ms of every schedule.fired, and late_ms
    of every scheduled run's result."""

    def __init__(self, base: str, auth: dict[str, str]):
        self.fired: list[float] = []
        self.started: list[float] = []
        self.on = False
        self._stop = False
        self._thread = threading.Thread(target=self._read, args=(base, auth), daemon=True)
        self._thread.start()

    def _read(self, base: str, auth: dict[str, str]) -> None:
        url = base + "/api/v1/events?kinds=schedule.fired,invocation.finished"
        with httpx.stream("GET", url, headers=auth, timeout=None) as r:
            for line in r.iter_lines():
                if self._stop:
                    return
                if not line.startswith("data: ") or not self.on:
                    continue
                ev = json.loads(line[6:])
                if ev["kind"] == "schedule.fired":
                    self.fired.append(ev["data"]["delay_ms"])
                elif ev["data"].get("trigger") == "schedule" and ev["data"].get("status") == "success":
                    self.started.append(ev["data"]["result"]["late_ms"])

    def window(self, seconds: float) -> tuple[list[float], list[float], list[float]]:
        """Collect for `seconds`, with the floor measured alongside."""
        self.fired.clear()
        self.started.clear()
        self.on = True
        floor = asyncio.run(_floor(seconds))
        self.on = False
        return list(self.fired), list(self.started), floor

    def close(self) -> None:
        self._stop = True


async def _floor(seconds: float) -> list[float]:
    """How late asyncio.sleep wakes this process at whole-second marks, SCHEDULED sleepers at
    once (what the scheduler does, minus everything else)."""
    late: list[float] = []

    async def sleeper() -> None:
        end = time.time() + seconds
        while True:
            at = float(int(time.time()) + 1)
            if at > end:
                return
            # Sleeping to a wall-clock second is what is measured; the loop covers the event
            # loop's clock waking a hair early.
            while (d := at - time.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(d)
            late.append((time.time() - at) * 1000)

    await asyncio.gather(*(sleeper() for _ in range(SCHEDULED)))
    return late


def setup_cloudfn(root: Path, repo: Path, procs: list[Proc], body: str, auth: dict[str, str]) -> tuple[str, str]:
    """A `cloudfn serve` from `repo` with the endpoint's function and the REST peer's; (base, endpoint url)."""
    root.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs.append(start_cloudfn(root, port, repo=repo))
    wait_200("GET", base + "/api/health", START_DEADLINE)
    r = httpx.post(
        base + "/api/v1/functions", headers=auth, json={"name": "bench-web", "runtime": "python", "code": ENDPOINT_FN}
    )
    assert r.status_code == 201, r.text
    url = base + "/fn/bench-web"
    r = httpx.post(url, headers=auth, content=body)
    assert r.json() == {"message": "Hello World!"}, r.text
    r = httpx.post(
        base + "/api/v1/functions", headers=auth, json={"name": "bench-hello", "runtime": "python", "code": CLOUDFN_FN}
    )
    assert r.status_code == 201, r.text
    return base, url


def schedule_windows(base: str, url: str, body: str, auth: dict[str, str], seconds: float):
    """(idle, loaded, load): the schedule windows of one server, its own endpoint the load."""
    for i in range(SCHEDULED):
        r = httpx.post(
            base + "/api/v1/functions",
            headers=auth,
            json={"name": f"tick-{i}", "runtime": "python", "code": LATE_FN, "schedules": [{"every": "1s"}]},
        )
        assert r.status_code == 201, r.text
    watch = ScheduleWatch(base, auth)
    # Past the first runs' cold starts: wait until every function has run once.
    end = time.monotonic() + 60
    while time.monotonic() < end:
        hist = httpx.get(base + "/api/v1/invocations", headers=auth, params={"limit": 1000}).json()
        if len({h["function_name"] for h in hist["invocations"] if h["trigger"] == "schedule"}) >= SCHEDULED:
            break
        time.sleep(0.5)
    idle = watch.window(seconds)
    load: dict[str, object] = {}
    loader = threading.Thread(
        target=lambda: load.update(wrk(url, body, {**auth, "Content-Type": "application/json"}, 16, seconds + 2))
    )
    loader.start()
    loaded = watch.window(seconds)
    loader.join()
    watch.close()
    # Stop the ticking, so the next server's windows do not share the machine with these.
    for i in range(SCHEDULED):
        httpx.delete(base + f"/api/v1/functions/tick-{i}", headers=auth)
    return idle, loaded, load


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--schedule-seconds", type=float, default=15.0, help="seconds per schedule window (default 15)")
    ap.add_argument("--ff-venv", type=Path, default=Path("/tmp/ffvenv"))
    ap.add_argument("--before", type=Path, default=None, help="an older checkout measured beside this one")
    ap.add_argument(
        "--schedules-only",
        type=int,
        default=0,
        metavar="N",
        help="skip the endpoint rounds and the peers: N schedule rounds per server, the servers taking turns",
    )
    args = ap.parse_args()
    if args.schedules_only:
        return schedules_only(args)
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk)")
    if not (args.ff_venv / "bin" / "functions-framework").exists():
        raise SystemExit(
            f"needs functions-framework in {args.ff_venv}: python3 -m venv {args.ff_venv} && "
            f"{args.ff_venv}/bin/pip install functions-framework"
        )
    body = json.dumps({"name": "World"})
    invoke_body = json.dumps({"event": {"name": "World"}})
    servers: dict[str, tuple[str, dict[str, str]]] = {}
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="bench-triggers-") as tmp:
        root = Path(tmp)
        try:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            cloudfns = [("", REPO)] + ([(" (before)", args.before.resolve())] if args.before else [])
            bases: dict[str, tuple[str, str]] = {}  # tag -> (base, endpoint url)
            for tag, repo in cloudfns:
                base, url = setup_cloudfn(root / f"cloudfn{len(bases)}", repo, procs, body, auth)
                bases[tag] = (base, url)
                servers[f"cloudfn /fn endpoint{tag}"] = (url, {**auth, "Content-Type": "application/json"})
                # The same server's invoke API with the same body: what the endpoint adds to a call.
                servers[f"cloudfn REST invoke{tag}"] = (
                    base + "/api/v1/functions/bench-hello/invoke",
                    {**auth, "Content-Type": "application/json"},
                )
            for label, asgi, code in (
                ("functions-framework", False, FF_FN),
                ("functions-framework --asgi", True, FF_ASGI_FN),
                (f"ff --asgi + {FF_CROSSING_WORKERS} worker procs", True, FF_CROSSING_FN),
            ):
                src = root / f"ff{len(servers)}"
                src.mkdir()
                (src / "main.py").write_text(code)
                port = free_port()
                ff_url = f"http://127.0.0.1:{port}/"
                procs.append(start_ff(args.ff_venv, src, port, asgi))
                wait_200("POST", ff_url, START_DEADLINE, content=body, headers={"content-type": "application/json"})
                servers[label] = (ff_url, {"Content-Type": "application/json"})

            rounds = []
            for n in range(args.rounds):
                this = {
                    label: measure_endpoint(u, invoke_body if "invoke" in label else body, h, args.duration)
                    for label, (u, h) in servers.items()
                }
                rounds.append(this)
                print(
                    f"round {n + 1}/{args.rounds}: " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in this.items()),
                    flush=True,
                )

            # -- schedules: idle, then under the endpoint's load, one server after the other ----
            sched = {
                tag: schedule_windows(base, url, body, auth, args.schedule_seconds)
                for tag, (base, url) in bases.items()
            }
        finally:
            for proc in procs:
                proc.stop()

    report(rounds, sched, args)
    return 0


def schedules_only(args: argparse.Namespace) -> int:
    """Schedule windows alone, idle then under the endpoint's load, this checkout and --before
    taking turns round by round (each server restarted per round), so both see the same machine."""
    body = json.dumps({"name": "World"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cloudfns = [("", REPO)] + ([(" (before)", args.before.resolve())] if args.before else [])
    runs: dict[str, list] = {tag: [] for tag, _ in cloudfns}
    with tempfile.TemporaryDirectory(prefix="bench-triggers-") as tmp:
        for n in range(args.schedules_only):
            for tag, repo in cloudfns:
                procs: list[Proc] = []
                try:
                    base, url = setup_cloudfn(Path(tmp) / f"s{n}{len(tag)}", repo, procs, body, auth)
                    wrk(url, body, {**auth, "Content-Type": "application/json"}, 16, 1.0)  # warm the workers
                    runs[tag].append(schedule_windows(base, url, body, auth, args.schedule_seconds))
                finally:
                    for proc in procs:
                        proc.stop()
                idle, loaded, _ = runs[tag][-1]
                print(
                    f"round {n + 1}{tag}: fired p99 idle {pct(idle[0], 99):.2f} / loaded {pct(loaded[0], 99):.2f} ms "
                    f"(floor {pct(idle[2], 99):.2f} / {pct(loaded[2], 99):.2f})",
                    flush=True,
                )
    for tag, windows in runs.items():
        pooled = tuple(tuple([v for w in windows for v in w[i][j]] for j in range(3)) for i in range(2))
        loads = [w[2] for w in windows if w[2]]
        load = {"rps": statistics.median(x["rps"] for x in loads), "p99": statistics.median(x["p99"] for x in loads)}
        print(f"\n== {len(windows)} rounds pooled{tag}")
        report_schedules(tag, pooled[0], pooled[1], load, args)
    return 0


def report_schedules(tag, idle, loaded, load, args) -> None:
    print(f"\nschedule firing{tag}, {SCHEDULED} functions every 1s, {args.schedule_seconds:g} s per window (ms late)")
    print(f"{'':34} {'n':>5} {'p50':>7} {'p99':>7} {'max':>7}   floor p99 (asyncio in the bench)  ratio")
    for label, (fired, started, floor) in (("idle", idle), ("under 16-connection endpoint load", loaded)):
        for what, vals in (("fired", fired), ("function started", started)):
            if not vals:
                print(f"  {label}: no {what} samples")
                continue
            fp99 = pct(floor, 99)
            print(
                f"  {label[:14] + ' ' + what:32} {len(vals):5d} {pct(vals, 50):7.2f} {pct(vals, 99):7.2f} "
                f"{max(vals):7.2f}   {fp99:7.2f}   {pct(vals, 99) / max(fp99, 0.01):6.1f}x"
            )
    if load:
        print(f"  (endpoint load meanwhile: {load['rps']:.0f} req/s, p99 {load['p99']:.2f} ms)")


def report(rounds, sched, args) -> None:
    names = list(rounds[0])
    med = {n: {k: statistics.median(r[n][k] for r in rounds) for k in rounds[0][n]} for n in names}
    print(
        f"\nHTTP endpoint, a Python hello taking a JSON body, wrk 16 connections {args.duration:g} s, "
        f"median of {len(rounds)} rounds"
    )
    print(f"{'server':30} {'rps@16':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for n, r in med.items():
        print(f"{n:30} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f}")
    print("\nas a ratio to each peer, median [lowest-highest] (throughput: higher is better; p99: lower is better)")
    for mine in [n for n in names if n.startswith("cloudfn /fn endpoint")]:
        for peer in [n for n in names if n != mine]:
            cells = []
            for key in ("rps", "p99"):
                ratios = sorted(r[mine][key] / r[peer][key] for r in rounds)
                cells.append(f"{key} {statistics.median(ratios):4.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}]")
            print(f"  {mine} vs {peer:30} " + "   ".join(cells))
    for tag, (idle, loaded, load) in sched.items():
        report_schedules(tag, idle, loaded, load, args)
    print("\ngoals (issue 16): endpoint throughput >= 1.0x ff --asgi after warm-up; schedule fired p99 <= 10 ms late")


if __name__ == "__main__":
    sys.exit(main())
