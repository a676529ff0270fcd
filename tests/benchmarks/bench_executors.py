"""Execution-layer benchmark: every figure is a ratio to a floor measured in the same run.

    python tests/benchmarks/bench_executors.py [--n 400] [--cold 15] [--uvloop]

- warm invoke through ExecutionService.invoke, p50 and p99 per runtime, against a bare pipe round
  trip (same framing, blocking reads) to a trivial echo worker of that runtime; for reference, the
  same round trip through the event loop (non-blocking pipes, one future per request: what any
  asyncio caller pays before doing anything) is printed beside it, not used in the ratios;
- cold start until the first result, against the bare interpreter start (`python -I -S -c pass`,
  `node -e 0`, a Go hello binary): with a fresh worker (cgroup, rlimits, two bwraps and setpriv
  as root, interpreter: the default), and with a pre-started sandbox adopting the function
  (ExecutionSettings.prewarm; the pool is refilled between cold starts, as it is when cold starts are not back to back);
- Go rebuild after a code change, against a plain `go build` of the same source; and that
  unchanged code builds nothing;
- a burst (issue 19): 16 callers arrive at once at a function with one warm worker and call it
  back to back; requests/s and p99 of the first `--burst-seconds` (5) against the next ones, side
  by side for the scheduler that waits or starts by the numbers and for the one before it (every
  caller without an idle worker starts its own: ExecutionSettings.scaling "start").
Not collected by pytest (tests/benchmarks is outside the test paths).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.executors import ExecutionService, ExecutionSettings  # noqa: E402
from core.executors.runtimes.go import GoSource, _go  # noqa: E402
from core.executors.spawn import pipe_file  # noqa: E402
from core.models import Function  # noqa: E402

ECHO = {
    "python": (
        "import os, sys\nr, w = int(sys.argv[1]), int(sys.argv[2])\n"
        "def rd(n):\n    b = b''\n    while len(b) < n:\n        c = os.read(r, n - len(b))\n"
        "        if not c: sys.exit(0)\n        b += c\n    return b\n"
        "while True:\n    n = int.from_bytes(rd(4), 'big')\n    os.write(w, n.to_bytes(4, 'big') + rd(n))\n"
    ),
    "nodejs": (
        "const fs = require('fs'); const r = +process.argv[2], w = +process.argv[3];\n"
        "const h = Buffer.alloc(4);\n"
        "function rd(b) { let o = 0; while (o < b.length) { "
        "const n = fs.readSync(r, b, o, b.length - o, null); if (!n) process.exit(0); o += n; } }\n"
        "for (;;) { rd(h); const b = Buffer.alloc(h.readUInt32BE(0)); rd(b); "
        "fs.writeSync(w, Buffer.concat([h, b])); }\n"
    ),
    "go": (
        'package main\n\nimport ("encoding/binary"; "io"; "os"; "strconv")\n\nfunc main() {\n'
        "\tr, _ := strconv.Atoi(os.Args[1]); w, _ := strconv.Atoi(os.Args[2])\n"
        '\tin, out := os.NewFile(uintptr(r), "r"), os.NewFile(uintptr(w), "w")\n\th := make([]byte, 4)\n'
        "\tfor {\n\t\tif _, err := io.ReadFull(in, h); err != nil { return }\n"
        "\t\tb := make([]byte, 4+binary.BigEndian.Uint32(h)); copy(b, h)\n"
        "\t\tif _, err := io.ReadFull(in, b[4:]); err != nil { return }\n\t\tout.Write(b)\n\t}\n}\n"
    ),
}

HANDLERS = {
    "python": "def handler(event, context):\n    return event\n",
    "nodejs": "function handler(event, context) { return event; }",
    "go": "func handler(event interface{}, context map[string]string) interface{} {\n\treturn event\n}\n",
}

EVENT = {"name": "World", "n": 1}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def go_binary(src: str, out: Path, env=None) -> float:
    d = Path(tempfile.mkdtemp(prefix="bench-go-"))
    (d / "go.mod").write_text("module bench\n\ngo 1.19\n")
    (d / "main.go").write_text(src)
    t0 = time.perf_counter()
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=d, check=True, env=env)
    took = time.perf_counter() - t0
    shutil.rmtree(d)
    return took * 1000


def echo_floor(runtime: str, n: int, tmp: Path) -> list[float]:
    cmd = echo_cmd(runtime, tmp)
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    proc = subprocess.Popen(cmd + [str(req_r), str(resp_w)], pass_fds=(req_r, resp_w))
    os.close(req_r)
    os.close(resp_w)
    import json

    body = json.dumps({"type": "invoke", "event": EVENT, "context": {"user": "bench"}}).encode()
    frame = len(body).to_bytes(4, "big") + body
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        os.write(req_w, frame)
        got = b""
        while len(got) < len(frame):
            got += os.read(resp_r, 65536)
        json.loads(got[4:])
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
    os.close(req_w)
    proc.wait()
    os.close(resp_r)
    return times


def echo_cmd(runtime: str, tmp: Path) -> list[str]:
    if runtime == "python":
        p = tmp / "echo.py"
        p.write_text(ECHO["python"])
        return [os.path.realpath(sys.executable), "-I", "-S", str(p)]
    if runtime == "nodejs":
        p = tmp / "echo.js"
        p.write_text(ECHO["nodejs"])
        return ["node", str(p)]
    exe = tmp / "echo-go"
    if not exe.exists():
        go_binary(ECHO["go"], exe)
    return [str(exe)]


async def asyncio_floor(runtime: str, n: int, tmp: Path) -> list[float]:
    """The echo round trip through the running event loop (pipe transports and a future)."""
    import json

    loop = asyncio.get_running_loop()
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    proc = subprocess.Popen(echo_cmd(runtime, tmp) + [str(req_r), str(resp_w)], pass_fds=(req_r, resp_w))
    os.close(req_r)
    os.close(resp_w)
    state: dict = {"buf": b"", "fut": None, "want": 0}

    class Reader(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            state["buf"] += data
            if len(state["buf"]) >= state["want"] and state["fut"] and not state["fut"].done():
                state["fut"].set_result(state["buf"])

    reader, _ = await loop.connect_read_pipe(Reader, pipe_file(resp_r, "rb", loop))
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe_file(req_w, "wb", loop))
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        body = json.dumps({"type": "invoke", "event": EVENT, "context": {"user": "bench"}}).encode()
        frame = len(body).to_bytes(4, "big") + body
        state.update(buf=b"", fut=loop.create_future(), want=len(frame))
        writer.write(frame)
        got = await state["fut"]
        json.loads(got[4:])
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
    writer.close()  # (the pipes close on the loop's next turn: do not wait for the echo's exit)
    reader.close()
    proc.kill()
    proc.wait()
    return times


def bare_start(cmd: list[str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="warm invocations per runtime")
    ap.add_argument("--cold", type=int, default=15, help="cold starts per runtime")
    ap.add_argument("--uvloop", action="store_true", help="(set before the loop starts)")
    ap.add_argument("--hardening-only", action="store_true", help="only the hardening's cost")
    ap.add_argument("--burst-only", action="store_true", help="only the burst figures")
    ap.add_argument("--burst-seconds", type=float, default=5.0, help="length of each burst window (default 5)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cloudfn-bench-"))
    if args.burst_only:
        await burst(args, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.hardening_only:
        await hardening_cost(args, tmp, ["python", "nodejs"] + (["go"] if _go()[0] else []))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    svc = ExecutionService(ExecutionSettings(work_dir=tmp / "work", cache_dir=tmp / "cache"))
    pre = ExecutionService(ExecutionSettings(work_dir=tmp / "work-pre", cache_dir=tmp / "cache", prewarm=1))
    have_go = _go()[0] is not None
    runtimes = ["python", "nodejs"] + (["go"] if have_go else [])
    print(
        f"host: {os.cpu_count()} cores; event loop: {type(asyncio.get_running_loop()).__module__}; protections: "
        + ", ".join(k for k, v in svc.protections().items() if v is True)
    )
    print()
    print(
        "warm invoke (ms)        floor p50  floor p99 | invoke p50  invoke p99 | ratio p50  ratio p99"
        " | asyncio floor p50  p99 (reference)"
    )
    for rt in runtimes:
        floor = echo_floor(rt, args.n, tmp)
        afloor = await asyncio_floor(rt, args.n, tmp)
        f = Function(name=f"bench-{rt}", runtime=rt, code=HANDLERS[rt])
        first = await svc.invoke(f, EVENT, {"user": "bench"})
        assert first.success, first.error
        times = []
        for i in range(args.n + 20):
            t0 = time.perf_counter()
            r = await svc.invoke(f, EVENT, {"user": "bench"})
            if i >= 20:
                times.append((time.perf_counter() - t0) * 1000)
            assert r.success
        fp50, fp99, p50, p99 = pct(floor, 50), pct(floor, 99), pct(times, 50), pct(times, 99)
        print(
            f"  {rt:<20} {fp50:9.3f}  {fp99:9.3f} | {p50:10.3f}  {p99:10.3f} | {p50 / fp50:8.2f}x  {p99 / fp99:8.2f}x"
            f" | {pct(afloor, 50):17.3f}  {pct(afloor, 99):6.3f}"
        )
    print()
    print("cold start (ms)          bare p50 | first result p50  (init p50) | ratio")
    print("  (fresh worker; below each, a pre-started sandbox adopting the function)")
    go_hello = tmp / "hello-go"
    if have_go:
        go_binary('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n', go_hello)
    bare = {
        "python": [os.path.realpath(sys.executable), "-I", "-S", "-c", "pass"],
        "nodejs": ["node", "-e", "0"],
        "go": [str(go_hello)],
    }
    for rt in runtimes:
        base = bare_start(bare[rt], args.cold)
        b = statistics.median(base)
        for label, service in ((rt, svc), ("  pre-started", pre)):
            if label != rt and rt not in service.prewarm.specs:
                print(f"  {label:<20} {'':9} | (not for {rt}: its workers start fresh)")
                continue
            firsts, inits = [], []
            f = Function(name=f"cold-{rt}", runtime=rt, code=HANDLERS[rt])
            await service.invoke(f, EVENT)  # build (Go) outside the measurement
            for v in range(2, args.cold + 2):
                await service.retire(f.id)
                await service.prewarm.wait_ready()
                f = f.model_copy(update={"version": v})
                t0 = time.perf_counter()
                r = await service.invoke(f, EVENT)
                firsts.append((time.perf_counter() - t0) * 1000)
                inits.append(r.init_duration)
                assert r.success and r.cold_start
            c = statistics.median(firsts)
            extra = f"  (+{c - b:.1f} ms)" if rt == "go" else ""
            print(f"  {label:<20} {b:9.2f} | {c:16.2f}  ({statistics.median(inits):8.2f}) | {c / b:5.2f}x{extra}")
    if have_go:
        print()
        print("go build (ms)")
        go_rt = svc.runtimes_["go"]
        ours, plain = [], []
        for i in range(3):
            code = HANDLERS["go"].replace("return event", f"_ = {i + 100}\n\treturn event")
            f = Function(name="build-go", runtime="go", code=code, version=1)
            t0 = time.perf_counter()
            prepared = await go_rt.prepare(f)
            ours.append((time.perf_counter() - t0) * 1000)
            assert not hasattr(prepared, "error_type"), prepared
            # A plain `go build` of the very same source, same toolchain, same build cache.
            d = Path(tempfile.mkdtemp(prefix="bench-plain-"))
            files = go_rt.build_dir_files(GoSource(code.replace(f"{i + 100}", f"{i + 200}"), "handler"), set())
            for name, text in files.items():
                (d / name).write_text(text)
            t0 = time.perf_counter()
            env = dict(
                go_rt._go_env(),
                GOCACHE=str(tmp / "cache" / "go" / "sandbox-cache" / "build-cache"),
                HOME=str(d),
                GOPATH=str(d / "gopath"),
            )  # the sandbox's paths, as the host sees them
            subprocess.run(["go", "build", "-o", str(d / "out"), "."], cwd=d, env=env, check=True)
            plain.append((time.perf_counter() - t0) * 1000)
            shutil.rmtree(d)
        t0 = time.perf_counter()
        await go_rt.prepare(Function(name="build-go", runtime="go", code=code, version=2))
        unchanged = (time.perf_counter() - t0) * 1000
        o, p = statistics.median(ours), statistics.median(plain)
        print(f"  rebuild after a change {o:8.1f} | plain go build {p:8.1f} | ratio {o / p:5.2f}x")
        print(f"  unchanged code          {unchanged:8.2f} (cache hit, nothing built)")
    await multifile_cost(args, svc, runtimes)
    await svc.close()
    await pre.close()
    await hardening_cost(args, tmp, runtimes)
    await burst(args, tmp)
    shutil.rmtree(tmp, ignore_errors=True)


async def _burst_windows(
    service: ExecutionService, f: Function, seconds: float, callers: int = 16
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Two back-to-back windows of `callers` calling without pause: requests/s and p99 (ms) of
    the invocations that ended in each, and the cold starts counted from the results."""
    done: list[tuple[float, float, bool]] = []  # (end, latency ms, cold)
    t_start = time.perf_counter()
    end = t_start + 2 * seconds

    async def caller() -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            r = await service.invoke(f, EVENT)
            t1 = time.perf_counter()
            assert r.success, r.error
            done.append((t1, (t1 - t0) * 1000, r.cold_start))

    await asyncio.gather(*(caller() for _ in range(callers)))
    out = []
    colds = {}
    for name, lo, hi in (("first", t_start, t_start + seconds), ("next", t_start + seconds, end)):
        lat = [ms for t, ms, _ in done if lo <= t < hi]
        colds[name] = sum(c for t, _, c in done if lo <= t < hi)
        out.append({"rps": len(lat) / seconds, "p99": pct(lat, 99), "p50": pct(lat, 50)})
    return out[0], out[1], colds


async def burst(args, tmp: Path) -> None:
    print()
    print(
        f"burst: 16 callers arrive at once at a Python function with one warm worker, calling back to back; "
        f"first {args.burst_seconds:g} s vs the next {args.burst_seconds:g} s (goal: throughput >= 0.8x, p99 <= 3x)"
    )
    print(
        f"  {'scheduler':34} {'first rps':>9} {'p99 ms':>8} {'cold':>5} | {'next rps':>9} {'p99 ms':>8} {'cold':>5}"
        f" | {'rps ratio':>9} {'p99 ratio':>9}"
    )
    for label, scaling in (("wait or start (demand)", "demand"), ("start per caller (before)", "start")):
        service = ExecutionService(
            ExecutionSettings(
                work_dir=tmp / f"work-burst-{scaling}", cache_dir=tmp / "cache", prewarm=1, scaling=scaling
            )
        )
        try:
            f = Function(name="burst-python", runtime="python", code=HANDLERS["python"])
            await service.prewarm.wait_ready()
            first = await service.invoke(f, EVENT)  # the one warm worker
            assert first.success, first.error
            await service.prewarm.wait_ready()
            a, b, colds = await _burst_windows(service, f, args.burst_seconds)
            print(
                f"  {label:34} {a['rps']:9.0f} {a['p99']:8.2f} {colds['first']:5d} | {b['rps']:9.0f} {b['p99']:8.2f}"
                f" {colds['next']:5d} | {a['rps'] / b['rps']:8.2f}x {a['p99'] / b['p99']:8.2f}x"
            )
        finally:
            await service.close()


async def multifile_cost(args, svc: ExecutionService, runtimes: list[str]) -> None:
    """Cold start of a function that is a folder (issue #15) against the same handler alone:
    every file is laid out in the sandbox on each fresh start."""
    print()
    print("multi-file cold start (ms)   handler alone p50 | with N files p50 | ratio")
    ext = {"python": "py", "nodejs": "js", "go": "txt"}
    for rt in [r for r in runtimes if r != "go"]:  # Go's files are built into one binary
        alone = Function(name=f"mf-{rt}", runtime=rt, code=HANDLERS[rt])
        await svc.invoke(alone, EVENT)
        base = statistics.median([await _cold(svc, alone, v) for v in range(2, args.cold + 2)])
        for n in (50, 500):
            files = {
                f"lib{i % 20}/m{i}.{ext[rt]}": f"// module {i}\n" if rt == "nodejs" else f"# module {i}\n"
                for i in range(n)
            }
            f = Function(name=f"mf-{rt}-{n}", runtime=rt, code=HANDLERS[rt], files=files)
            await svc.invoke(f, EVENT)
            c = statistics.median([await _cold(svc, f, v) for v in range(2, args.cold + 2)])
            print(f"  {rt:<8} {n:>4} files        {base:17.2f} | {c:16.2f} | {c / base:5.2f}x")


async def _warm_p50(service: ExecutionService, f: Function, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await service.invoke(f, EVENT)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.success, r.error
    return pct(times, 50)


async def _cold(service: ExecutionService, f: Function, version: int) -> float:
    await service.retire(f.id)
    await service.prewarm.wait_ready()
    f = f.model_copy(update={"version": version})
    t0 = time.perf_counter()
    r = await service.invoke(f, EVENT)
    assert r.success and r.cold_start, r.error
    return (time.perf_counter() - t0) * 1000


async def hardening_cost(args, tmp: Path, runtimes: list[str]) -> None:
    print()
    print("hardening (ms)            on p50 |   off p50 | ratio on/off")
    services = {}
    for on in (True, False):
        for prewarm in (0, 1):
            services[on, prewarm] = ExecutionService(
                ExecutionSettings(
                    work_dir=tmp / f"work-h{on}{prewarm}", cache_dir=tmp / "cache", prewarm=prewarm, hardening=on
                )
            )
    if not services[True, 0].protections()["seccomp"]:
        print("  (the hardening is not in force on this host: nothing to compare)")
    rounds = 5
    for rt in runtimes:
        figures: dict[tuple[str, bool], list[float]] = {}
        fns = {
            on: Function(name=f"hard-{rt}-{'on' if on else 'off'}", runtime=rt, code=HANDLERS[rt])
            for on in (True, False)
        }
        for key, service in services.items():
            assert (await service.invoke(fns[key[0]], EVENT)).success  # builds, first start
            await service.prewarm.wait_ready()
        # Each kind alone, on and off taking turns, so that neither measures beside the other's
        # background work (a pool refilling after a cold start) and a noisy moment falls on both.
        for _ in range(rounds):
            for on in (True, False):
                figures.setdefault(("warm", on), []).append(await _warm_p50(services[on, 0], fns[on], args.n // rounds))
        version = 2
        for kind, prewarm in (("fresh", 0), ("pre-started", 1)):
            if kind == "pre-started" and rt not in services[True, 1].prewarm.specs:
                continue
            for _ in range(rounds * 2):
                for on in (True, False):
                    figures.setdefault((kind, on), []).append(await _cold(services[on, prewarm], fns[on], version))
                    await services[on, prewarm].prewarm.wait_ready()
                version += 1
        for kind in ("warm", "fresh", "pre-started"):
            if (kind, True) not in figures:
                continue
            a, b = statistics.median(figures[kind, True]), statistics.median(figures[kind, False])
            print(f"  {rt + ' ' + kind:<22} {a:8.3f} | {b:9.3f} | {a / b:6.2f}x")
    for service in services.values():
        await service.close()


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()
    asyncio.run(main())
