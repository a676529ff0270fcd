"""REST server benchmark: `cloudfn serve` against functions-framework, side by side in one run.

    python tests/benchmarks/bench_server.py [--duration 5] [--ff-venv /tmp/ffvenv]

The same hello function in Python, invoked over HTTP on loopback:
- latency p50 and p99 at 1 connection;
- throughput (requests/s) and p99 at 16 connections;
- server start until the first 200 (cloudfn: a restart on an existing data directory, until
  the health route answers and until the first invoke answers; functions-framework: until the
  function answers).
Burst (issue 19, `--burst-only` for just this): a freshly restarted server with one warm worker
(one invoke), then 16 connections arrive at once; requests/s and p99 of the first `--duration`
seconds against the next ones on the same server (goal: throughput >= 0.8x, p99 <= 3x). With
`--before DIR` (a checkout of an older cloudfn, e.g. `git archive <commit> | tar -x -C DIR`) that
server is measured the same way in the same run, turn about.
Peers: functions-framework's default mode (gunicorn, threads) and its `--asgi` mode (uvicorn),
as `pip install functions-framework` installs them into their own venv (not the project's):

    python3 -m venv /tmp/ffvenv && /tmp/ffvenv/bin/pip install functions-framework

The load generator is `wrk` (Debian package `wrk`), with a bounded duration per run. cloudfn
runs in release mode (the seed's production setting: no access log) with its bearer token.
All servers stay up while the rounds take turns measuring each (`--rounds`, default 3), so a
noisy minute on this shared machine falls on every server alike; each ratio is taken within a
round, and the median and range over the rounds are printed. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-token-0123456789abcdef"
CLOUDFN_FN = (
    "def handler(event, context):\n    return {'message': 'Hello ' + (event or {}).get('name', 'World') + '!'}\n"
)
FF_FN = (
    "def hello(request):\n"
    "    event = request.get_json(silent=True) or {}\n"
    "    return {'message': 'Hello ' + event.get('name', 'World') + '!'}\n"
)
# `--asgi` hands the function a Starlette request: the same function, written for it.
FF_ASGI_FN = (
    "async def hello(request):\n"
    "    try:\n"
    "        event = await request.json()\n"
    "    except ValueError:\n"
    "        event = {}\n"
    "    return {'message': 'Hello ' + (event or {}).get('name', 'World') + '!'}\n"
)
START_DEADLINE = 60.0


def free_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_200(method: str, url: str, deadline: float, **kw) -> float:
    """Seconds until `url` first answers 200 (polling: this is a measurement, not a test)."""
    t0 = time.perf_counter()
    end = t0 + deadline
    while time.perf_counter() < end:
        try:
            if httpx.request(method, url, timeout=5, **kw).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"{url} did not answer 200 within {deadline} s")


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path):
        self.t0 = time.perf_counter()
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def cloudfn_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFN_")}
    env.update(
        XDG_CONFIG_HOME=str(root / "cfg"),
        XDG_DATA_HOME=str(root / "xdg"),
        XDG_CACHE_HOME=str(root / "cache"),
        PYTHONPATH=str(REPO),
        CLOUDFN_TOKEN=TOKEN,
        GIN_MODE="release",
    )
    return env


STOCK_SWITCHES = {
    "uvicorn": ["CLOUDFN_STOCK_UVICORN"],
    "fastapi": ["CLOUDFN_STOCK_FASTAPI"],
    "all": ["CLOUDFN_STOCK_UVICORN", "CLOUDFN_STOCK_FASTAPI"],
}


def start_cloudfn(
    root: Path, port: int, max_concurrent: int | None = None, stock: str | None = None, repo: Path = REPO
) -> Proc:
    cmd = [
        sys.executable,
        "-m",
        "cloudfn_tui.cli",
        "--data-dir",
        str(root / "data"),
        "serve",
        "--port",
        str(port),
        "--mode",
        "release",
    ]
    env = dict(cloudfn_env(root), PYTHONPATH=str(repo))
    if max_concurrent:
        env["CLOUDFN_RUNTIME_MAX_CONCURRENT"] = str(max_concurrent)
    for var in STOCK_SWITCHES.get(stock or "", []):  # the compat modules' switches back to stock
        env[var] = "1"
    return Proc(cmd, env, repo)


def start_ff(venv: Path, src: Path, port: int, asgi: bool) -> Proc:
    cmd = [
        str(venv.resolve() / "bin" / "functions-framework"),  # it starts in `src`: a relative venv misses
        "--target",
        "hello",
        "--source",
        str(src / "main.py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ] + (["--asgi"] if asgi else [])
    env = {k: v for k, v in os.environ.items()}
    return Proc(cmd, env, src)


def wrk(url: str, body: str, headers: dict[str, str], connections: int, duration: float) -> dict[str, float]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    script.write("\n".join(lines) + "\n")
    script.close()
    threads = min(2, connections)
    run = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    os.unlink(script.name)
    out = run.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        raise SystemExit(f"wrk gave no figures:\n{out}\n{run.stderr}")
    rps = float(found.group(1))
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": lat["50"],
        "p99": lat["99"],
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def measure(name: str, url: str, body: str, headers: dict[str, str], duration: float) -> dict[str, float]:
    wrk(url, body, headers, 16, 1.0)  # warm every worker the 16 connections will use
    one = wrk(url, body, headers, 1, duration)
    many = wrk(url, body, headers, 16, duration)
    for run in (one, many):
        if run["non2xx"] or run["socket_errors"]:
            print(f"  !! {name}: {run['non2xx']} non-2xx answers, socket errors: {run['socket_errors'] or 'none'}")
    return {"p50_1": one["p50"], "p99_1": one["p99"], "rps_1": one["rps"], "rps_16": many["rps"], "p99_16": many["p99"]}


def burst_once(root: Path, repo: Path, duration: float) -> dict[str, float]:
    """One restart of the server on `root`'s data directory: one invoke (one warm worker), then
    two back-to-back runs of 16 connections."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = base + "/api/v1/functions/bench-hello/invoke"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"event": {"name": "World"}})
    proc = start_cloudfn(root, port, repo=repo)
    try:
        wait_200("GET", base + "/api/health", START_DEADLINE)
        r = httpx.post(url, headers=auth, content=body, timeout=30)
        assert r.status_code == 200 and r.json()["result"] == {"message": "Hello World!"}, r.text
        headers = {**auth, "Content-Type": "application/json"}
        first = wrk(url, body, headers, 16, duration)
        after = wrk(url, body, headers, 16, duration)
        stats = httpx.get(base + "/api/v1/metrics", headers=auth, timeout=30).json()
    finally:
        proc.stop()
    for run in (first, after):
        if run["non2xx"] or run["socket_errors"]:
            print(f"  !! burst: {run['non2xx']} non-2xx answers, socket errors: {run['socket_errors'] or 'none'}")
    fn = stats.get("functions", {}).get("bench-hello", {})
    sched = (stats.get("scheduling") or {}).get("bench-hello")  # (not in servers before issue 19)
    if sched:
        print(
            f"  workers started {sched['workers_started']} (background {sched['background_starts']}, spare "
            f"{sched['spare_starts']}), queue waits {sched['queue_waits']} (p99 {sched['queue_wait_ms']['p99']} ms)"
        )
    return {
        "rps_first": first["rps"],
        "p99_first": first["p99"],
        "rps_next": after["rps"],
        "p99_next": after["p99"],
        "cold": fn.get("cold_starts", 0),
    }


def burst(root: Path, before: Path | None, duration: float, rounds: int) -> None:
    """The burst figure; the data directory (with bench-hello in it) is made here."""
    port = free_port()
    proc = start_cloudfn(root, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_200("GET", base + "/api/health", START_DEADLINE)
        r = httpx.post(
            base + "/api/v1/functions",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"name": "bench-hello", "runtime": "python", "code": CLOUDFN_FN},
        )
        assert r.status_code == 201, r.text
    finally:
        proc.stop()
    servers = {"cloudfn serve": (root, REPO)}
    if before is not None:
        copy = root / "before"
        shutil.copytree(root / "data", copy / "data", ignore=shutil.ignore_patterns("*.lock", "server.*"))
        servers["cloudfn serve (before)"] = (copy, before)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for n in range(rounds):
        for name, (data_root, repo) in servers.items():
            results[name].append(burst_once(data_root, repo, duration))
        print(
            f"burst round {n + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]['rps_first']:.0f}/s then {v[-1]['rps_next']:.0f}/s" for k, v in results.items()),
            flush=True,
        )
    print(
        f"\nburst: a restarted server with one warm worker, then 16 connections at once; the first {duration:g} s "
        f"vs the next {duration:g} s on the same server, median of {rounds} rounds [lowest-highest]"
    )
    print(f"  {'server':26} {'first rps':>9} {'p99 ms':>8} | {'next rps':>9} {'p99 ms':>8} | {'cold':>4} | ratios")
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rps = sorted(r["rps_first"] / r["rps_next"] for r in runs)
        p99 = sorted(r["p99_first"] / r["p99_next"] for r in runs)
        print(
            f"  {name:26} {med['rps_first']:9.0f} {med['p99_first']:8.2f} | {med['rps_next']:9.0f} "
            f"{med['p99_next']:8.2f} | {med['cold']:4.0f} | throughput {statistics.median(rps):4.2f}x "
            f"[{rps[0]:.2f}-{rps[-1]:.2f}]   p99 {statistics.median(p99):4.2f}x [{p99[0]:.2f}-{p99[-1]:.2f}]"
        )
    print("  goals (issue 19): throughput >= 0.8x, p99 <= 3x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds; each measures every server in turn, and ratios are taken within a round (default 3)",
    )
    ap.add_argument("--ff-venv", type=Path, default=Path("/tmp/ffvenv"))
    ap.add_argument(
        "--max-concurrent",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="cloudfn's runtime.max_concurrent (warm workers); repeat to compare "
        "(default: the platform's default, 10, and 2 x CPUs)",
    )
    ap.add_argument(
        "--stock",
        action="append",
        choices=sorted(STOCK_SWITCHES),
        default=[],
        help="add cloudfn with CLOUDFN_STOCK_UVICORN and/or _FASTAPI=1 as a peer (repeat for more): "
        "what the overrides in core/server/_uvicorn_compat.py and _fastapi_compat.py still buy",
    )
    ap.add_argument("--no-ff", action="store_true", help="leave functions-framework out (with --stock)")
    ap.add_argument("--burst-only", action="store_true", help="only the burst figure")
    ap.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a checkout of an older cloudfn whose burst is measured beside this one's",
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk)")
    if args.burst_only:
        with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
            burst(Path(tmp), args.before, args.duration, args.rounds)
        return 0
    ff_bin = args.ff_venv / "bin" / "functions-framework"
    if not args.no_ff and not ff_bin.exists():
        raise SystemExit(
            f"needs functions-framework in {args.ff_venv}: python3 -m venv {args.ff_venv} && "
            f"{args.ff_venv}/bin/pip install functions-framework"
        )

    # name -> (invoke url, body, headers); every server stays up and the rounds take turns, so
    # that a noisy minute on this shared machine falls on all of them, not on one.
    servers: dict[str, tuple[str, str, dict[str, str]]] = {}
    starts: dict[str, dict[str, float]] = {}
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        root = Path(tmp)
        try:
            # -- cloudfn ------------------------------------------------------------------------
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            proc = start_cloudfn(root, port)  # first start: makes the data directory
            try:
                wait_200("GET", base + "/api/health", START_DEADLINE)
                r = httpx.post(
                    base + "/api/v1/functions",
                    headers=auth,
                    json={"name": "bench-hello", "runtime": "python", "code": CLOUDFN_FN},
                )
                assert r.status_code == 201, r.text
            finally:
                proc.stop()
            body = json.dumps({"event": {"name": "World"}})
            variants: list[tuple[int | None, str | None]] = [
                (mc, None) for mc in args.max_concurrent or [None, 2 * (os.cpu_count() or 1)]
            ]
            variants += [(None, which) for which in args.stock]
            for i, (mc, stock) in enumerate(variants):
                label = "cloudfn serve" + (f" (max_concurrent {mc})" if mc else "")
                if stock:  # a peer, not one of ours: the ratios then read "ours vs stock"
                    label = f"stock {'uvicorn+fastapi' if stock == 'all' else stock} " + label
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                invoke_url = base + "/api/v1/functions/bench-hello/invoke"
                # A restart, timed; the others get data directories of their own (one owner each).
                data_root = root if i == 0 else root / f"copy-{i}"
                if i:
                    shutil.copytree(
                        root / "data", data_root / "data", ignore=shutil.ignore_patterns("*.lock", "*.sock", "server.*")
                    )
                procs.append(start_cloudfn(data_root, port, mc, stock))
                health = wait_200("GET", base + "/api/health", START_DEADLINE)
                first = health + wait_200("POST", invoke_url, START_DEADLINE, headers=auth, content=body)
                starts[label] = {"health": health, "first_invoke": first}
                r = httpx.post(invoke_url, headers=auth, content=body)
                assert r.json()["result"] == {"message": "Hello World!"}, r.text
                servers[label] = (invoke_url, body, {**auth, "Content-Type": "application/json"})

            # -- functions-framework, default and --asgi -----------------------------------------
            ff_body = json.dumps({"name": "World"})
            for label, asgi in (
                () if args.no_ff else (("functions-framework", False), ("functions-framework --asgi", True))
            ):
                src = root / ("ff-asgi" if asgi else "ff")
                src.mkdir()
                (src / "main.py").write_text(FF_ASGI_FN if asgi else FF_FN)
                port = free_port()
                url = f"http://127.0.0.1:{port}/"
                procs.append(start_ff(args.ff_venv, src, port, asgi))
                try:
                    t = wait_200(
                        "POST", url, START_DEADLINE, content=ff_body, headers={"content-type": "application/json"}
                    )
                except SystemExit:
                    print(procs[-1].output())
                    raise
                starts[label] = {"first_invoke": t}
                r = httpx.post(url, content=ff_body, headers={"content-type": "application/json"})
                assert r.json() == {"message": "Hello World!"}, r.text
                servers[label] = (url, ff_body, {"Content-Type": "application/json"})

            rounds: list[dict[str, dict[str, float]]] = []
            for n in range(args.rounds):
                this: dict[str, dict[str, float]] = {}
                for label, (url, payload, headers) in servers.items():
                    this[label] = measure(label, url, payload, headers, args.duration)
                rounds.append(this)
                print(
                    f"round {n + 1}/{args.rounds}: " + ", ".join(f"{k} {v['rps_16']:.0f}/s" for k, v in this.items()),
                    flush=True,
                )
        finally:
            for proc in procs:
                proc.stop()

    report(rounds, starts, args.duration)
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        burst(Path(tmp), args.before, args.duration, args.rounds)
    return 0


def report(rounds: list[dict[str, dict[str, float]]], starts: dict[str, dict[str, float]], duration: float) -> None:
    names = list(rounds[0])
    results = {name: {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]} for name in names}
    print(
        f"\nREST invoke of a Python hello over loopback, wrk {duration:g} s per run, {os.cpu_count()} CPUs, "
        f"median of {len(rounds)} rounds"
    )
    print(f"{'server':38} {'p50@1 ms':>9} {'p99@1 ms':>9} {'rps@16':>9} {'p99@16 ms':>10}")
    for name, r in results.items():
        print(f"{name:38} {r['p50_1']:9.2f} {r['p99_1']:9.2f} {r['rps_16']:9.0f} {r['p99_16']:10.2f}")
    ours = [n for n in results if n.startswith("cloudfn")]
    peers = [n for n in results if not n.startswith("cloudfn")]
    print(
        "\nas a ratio to each peer, median over the rounds [lowest-highest] (throughput: higher is better; "
        "latency: lower is better)"
    )
    for mine in ours:
        for name in peers:
            cells = []
            for key, label in (
                ("rps_16", "throughput@16"),
                ("p50_1", "p50@1"),
                ("p99_1", "p99@1"),
                ("p99_16", "p99@16"),
            ):
                ratios = sorted(r[mine][key] / r[name][key] for r in rounds)
                cells.append(f"{label} {statistics.median(ratios):4.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}]")
            print(f"  {mine:36} vs {name:26} " + "   ".join(cells))
    print("\nstart until the first 200")
    for name, s in starts.items():
        if name.startswith("cloudfn"):
            print(
                f"  {name + ' (restart)':46} health {s['health'] * 1000:6.0f} ms   "
                f"first invoke {s['first_invoke'] * 1000:6.0f} ms"
            )
        else:
            print(f"  {name:46} first invoke {s['first_invoke'] * 1000:6.0f} ms")
    cs = starts[ours[0]]
    for name in (p for p in peers if "first_invoke" in starts[p] and not p.startswith("stock")):
        print(f"  cloudfn first invoke / {name}: {cs['first_invoke'] / starts[name]['first_invoke']:4.2f}x")
    print("\ngoals (issue 5): throughput >= 1.0x ff --asgi (milestone 0.8x), >= 4x ff default, p99@16 <= 3 ms")


if __name__ == "__main__":
    sys.exit(main())
