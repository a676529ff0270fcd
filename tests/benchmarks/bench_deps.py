"""Dependency installs: every figure is a ratio to a peer or floor measured in the same run.

    python tests/benchmarks/bench_deps.py [--rounds 5] [--packages 5] [--cold 9] [--launch-only]

- first install through cloudfn (create_function with `dependencies`, on a fresh data
  directory: sandboxed uv, empty cache), on a started platform (the next install's build
  sandbox started ahead up to uv's exec, as in a console or `cloudfn serve`) and on one that is
  not (a one-shot CLI), against bare `uv pip
  install` of the same requirements into a fresh venv from the same local wheel folder with an
  empty cache (goal <= 1.3x); the same for Node.js against bare `npm install` from the same loopback registry;
- a cache hit: the create of a second function with the same requirements, minus the create of a
  function without any (goal: <= 50 ms added);
- cold start (a fresh worker, no pre-started sandbox) of a function with dependencies mounted
  against the same code without (goal <= 1.2x), and with the packages imported, for reference.
- list size (`--list-only`): `GET /api/v1/functions` of a `cloudfn serve` holding 50 functions
  with a 200 KB file each, against the same server's list of 50 functions without files (the
  floor: what a list costs when no file travels). Lists and events carry file names and sizes;
  `get_function` carries the contents.
- where the fixed overhead of a Python install goes: the build sandbox's launch (run_build of
  /bin/true with the install's limits) after an idle moment, as an install meets it, and right after
  another cgroup join, against a bare `sh -c true`. The difference between the two launches is the
  first cgroup migration after an idle moment (an RCU grace period in the kernel), which a
  launcher started ahead (core/executors/buildlauncher.py) takes off the install's path.
The wheels and npm tarballs are built here: a few pure-Python packages of 40 modules each.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "deps"))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from deps_packages import NpmRegistry, make_npm_tarball, make_wheel, readable  # noqa: E402

from core.config import load_config  # noqa: E402
from core.deps.installers import uv_binary  # noqa: E402
from core.executors.buildlauncher import start_launcher  # noqa: E402
from core.executors.builds import BuildLimits, build_spec, run_build  # noqa: E402
from core.executors.runtimes.python import _interpreter  # noqa: E402
from core.executors.sandbox import HostSandbox  # noqa: E402
from core.local import LocalPlatform  # noqa: E402

MODULES = 40
PLAIN = "def handler(event, context):\n    return 1\n"


def build_wheels(folder: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f"benchpkg{i}"
        files = {f"{name}/__init__.py": f"from . import m0\nNAME = {name!r}\n"}
        for m in range(MODULES):
            files[f"{name}/m{m}.py"] = "".join(f"def f{k}(x):\n    return x + {k}\n" for k in range(50))
        make_wheel(folder, name, "1.0", files)
        names.append(name)
    return names


def build_npm(reg: NpmRegistry, n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f"benchnpm{i}"
        files = {"index.js": f"module.exports = {{ name: {name!r} }};\n"}
        for m in range(MODULES):
            files[f"lib/m{m}.js"] = "".join(f"exports.f{k} = (x) => x + {k};\n" for k in range(50))
        reg.add(name, "1.0.0", make_npm_tarball(name, "1.0.0", files))
        names.append(name)
    return names


def warm_interpreter(python: str, cache: Path) -> None:
    """uv's look at the interpreter, cached as a started platform caches it ahead (installers.
    ahead_spec): the stricter peer, bare uv on a cache that has seen this interpreter."""
    subprocess.run([uv_binary(), "python", "find", "--cache-dir", str(cache), python], check=True, capture_output=True)


def bare_uv(wheels: Path, requirements: str, work: Path, warm: bool = False) -> float:
    work.mkdir(parents=True)
    venv, cache = work / "venv", work / "uv-cache"
    exe, _ = _interpreter()
    uv = uv_binary()
    subprocess.run([uv, "venv", "-q", "--python", exe, str(venv)], check=True)
    (work / "req.txt").write_text(requirements)
    if warm:
        warm_interpreter(str(venv / "bin" / "python"), cache)
    t0 = time.perf_counter()
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "--no-index",
            "--find-links",
            str(wheels),
            "--cache-dir",
            str(cache),
            "--only-binary",
            ":all:",
            "-r",
            str(work / "req.txt"),
        ],
        check=True,
    )
    return time.perf_counter() - t0


def bare_uv_target(wheels: Path, requirements: str, work: Path, warm: bool = False) -> float:
    """The issue's own peer: `uv pip install --target` (what cloudfn runs), same wheels, empty
    cache (`warm`: but for the interpreter's entry)."""
    work.mkdir(parents=True)
    exe, _ = _interpreter()
    (work / "req.txt").write_text(requirements)
    if warm:
        warm_interpreter(exe, work / "uv-cache")
    t0 = time.perf_counter()
    subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "-q",
            "--target",
            str(work / "site"),
            "--python",
            exe,
            "--no-index",
            "--find-links",
            str(wheels),
            "--cache-dir",
            str(work / "uv-cache"),
            "--only-binary",
            ":all:",
            "--no-compile",
            "-r",
            str(work / "req.txt"),
        ],
        check=True,
    )
    return time.perf_counter() - t0


def bare_npm(reg: NpmRegistry, manifest: str, work: Path) -> float:
    app = work / "app"
    app.mkdir(parents=True)
    (app / "package.json").write_text(manifest)
    t0 = time.perf_counter()
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(app),
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--cache",
            str(work / "npm-cache"),
            "--registry",
            reg.url,
            "--package-lock=false",
            "--loglevel",
            "error",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def platform(data: Path, wheels: Path, reg: NpmRegistry) -> LocalPlatform:
    flags = {
        "storage.data_dir": str(data),
        "runtime.pypi_index_url": "none",
        "runtime.pypi_find_links": str(wheels),
        "runtime.npm_registry": reg.url,
        "runtime.prewarm": "0",
    }
    return LocalPlatform(load_config(flags=flags), install_examples=False)


async def timed(coro) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = await coro
    return time.perf_counter() - t0, out


def ratio_line(label: str, ours: list[float], peer: list[float], goal: str) -> None:
    r = [a / b for a, b in zip(ours, peer, strict=True)]  # paired runs: one of each per round
    print(
        f"{label:<44} {statistics.median(ours) * 1000:8.1f} ms vs {statistics.median(peer) * 1000:8.1f} ms  "
        f"ratio {statistics.median(r):.2f} (range {min(r):.2f}-{max(r):.2f})  goal {goal}"
    )


async def launch_breakdown(tmp: Path, rounds: int) -> None:
    """The build sandbox's launch alone: idle (as an install meets it) vs primed by a cgroup join
    just before (a grace period already passed), with a bare `sh -c true` as the floor."""
    sandbox = HostSandbox()
    if sandbox.cgroups is None or not sandbox.bwrap:
        print("(no cgroups or bwrap here: launch breakdown skipped)")
        return
    idle, primed, ahead, whole, other, floor = [], [], [], [], [], []
    for i in range(rounds):
        launcher = await start_launcher(sandbox, BuildLimits())
        assert launcher is not None
        build = tmp / f"launch{i}"
        build.mkdir()
        await asyncio.sleep(0.1)  # idle, as before an install: the kernel's grace period has ended
        t, res = await timed(
            run_build(sandbox, ["/bin/true"], {"PATH": "/usr/bin:/bin"}, build, tmp / "lc", BuildLimits())
        )
        assert res.returncode == 0, res.output
        idle.append(t)
        cg = sandbox.cgroups.create(64)  # a join right before: the next one finds the grace period passed
        subprocess.run(["/bin/sh", "-c", " && ".join(f"echo $$ > {p}/cgroup.procs" for p in cg.paths())], check=True)
        t, res = await timed(
            run_build(sandbox, ["/bin/true"], {"PATH": "/usr/bin:/bin"}, build, tmp / "lc", BuildLimits())
        )
        primed.append(t)
        cg.remove()
        await asyncio.sleep(0.1)  # idle again: the launcher joined long before
        t, res = await timed(
            run_build(
                sandbox, ["/bin/true"], {"PATH": "/usr/bin:/bin"}, build, tmp / "lc", BuildLimits(), launcher=launcher
            )
        )
        assert res.returncode == 0, res.output
        ahead.append(t)
        # The build's own sandbox started ahead, up to the command's exec (a Python install's way).
        (tmp / "lc").mkdir(mode=0o700, exist_ok=True)
        spec = build_spec(sandbox, ["/bin/true"], {"PATH": "/usr/bin:/bin"}, build, tmp / "lc", BuildLimits())
        armed = await start_launcher(sandbox, BuildLimits(), spec)
        assert armed is not None
        await asyncio.sleep(0.1)
        t, res = await timed(
            run_build(
                sandbox, ["/bin/true"], {"PATH": "/usr/bin:/bin"}, build, tmp / "lc", BuildLimits(), launcher=armed
            )
        )
        assert res.returncode == 0 and armed.proc.returncode is not None, res.output
        whole.append(t)
        # Another build (a Node.js install, a source build) meeting a sandbox started ahead for
        # a Python install: it runs in that launcher's cgroup, joined ahead.
        armed = await start_launcher(sandbox, BuildLimits(), spec)
        assert armed is not None
        await asyncio.sleep(0.1)
        t, res = await timed(
            run_build(
                sandbox,
                ["/bin/sh", "-c", "true"],
                {"PATH": "/usr/bin:/bin"},
                build,
                tmp / "lc",
                BuildLimits(),
                launcher=armed,
            )
        )
        assert res.returncode == 0 and armed.proc.returncode == 0, res.output
        other.append(t)
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        floor.append(time.perf_counter() - t0)
    ratio_line("build sandbox launch, idle vs sh -c true", idle, floor, "(breakdown)")
    ratio_line("build sandbox launch, primed vs sh -c true", primed, floor, "(breakdown)")
    ratio_line("build sandbox launch, idle vs primed", idle, primed, "(breakdown)")
    ratio_line("launch through a launcher started ahead vs idle", ahead, idle, "(breakdown)")
    ratio_line("launch of a sandbox started ahead vs idle", whole, idle, "(the build it was started as)")
    ratio_line("another build through that sandbox's launcher vs idle", other, idle, "(Node.js, source builds)")


def list_size(tmp: Path, rounds: int, count: int = 50, file_kb: int = 200) -> None:
    """GET /api/v1/functions with `count` functions of one `file_kb` KB file each, against the
    list of as many functions without files, on two servers of this checkout, turn about."""
    import httpx
    from bench_server import TOKEN, free_port, start_cloudfn, wait_200

    auth = {"Authorization": f"Bearer {TOKEN}"}
    blob = ("x" * 99 + "\n") * (file_kb * 1024 // 100)
    servers = {}
    try:
        for kind in ("files", "floor"):
            port = free_port()
            servers[kind] = (start_cloudfn(tmp / kind, port), f"http://127.0.0.1:{port}")
        for kind, (_, url) in servers.items():
            wait_200("GET", f"{url}/api/v1/health", 60)
            with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
                for i in range(count):
                    body = {
                        "name": f"f{i}",
                        "runtime": "python",
                        "code": PLAIN,
                        "files": {"data/blob.txt": blob} if kind == "files" else {},
                    }
                    r = c.post("/api/v1/functions", json=body)
                    assert r.status_code == 201, r.text
        times: dict[str, list[float]] = {"files": [], "floor": []}
        sizes = {}
        clients = {k: httpx.Client(base_url=u, headers=auth, timeout=60) for k, (_, u) in servers.items()}
        for _ in range(rounds):
            for kind, c in clients.items():
                t0 = time.perf_counter()
                r = c.get("/api/v1/functions")
                times[kind].append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.json()["count"] >= count  # (and the bundled examples)
                sizes[kind] = len(r.content)
        one = clients["files"].get("/api/v1/functions/f0").content
        for c in clients.values():
            c.close()
    finally:
        for proc, _ in servers.values():
            proc.stop()
    print(f"\n-- list: {count} functions x {file_kb} KB file vs {count} without files ({rounds} rounds) --")
    print(
        f"list body {sizes['files'] / 1024:.1f} KiB vs {sizes['floor'] / 1024:.1f} KiB; "
        f"one function's get {len(one) / 1024:.1f} KiB"
    )
    ratio_line("list with files vs list without", times["files"], times["floor"], "~1 (files stay out)")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--packages", type=int, default=5)
    ap.add_argument("--cold", type=int, default=9)
    ap.add_argument("--launch-only", action="store_true", help="only the launch breakdown (quick, less noisy)")
    ap.add_argument("--list-only", action="store_true", help="only the list size figure")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-deps-"))
    os.chmod(tmp, 0o755)
    if args.list_only:
        try:
            list_size(tmp, max(args.rounds * 4, 20))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.launch_only:
        await launch_breakdown(tmp, max(args.rounds * 3, 9))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    wheels = tmp / "wheels"
    wheels.mkdir()
    names = build_wheels(wheels, args.packages)
    readable(wheels)
    reg = NpmRegistry()
    npm_names = build_npm(reg, args.packages)
    requirements = "".join(f"{n}==1.0\n" for n in names)
    package_json = json.dumps({"dependencies": {n: "1.0.0" for n in npm_names}})
    print(f"{args.packages} packages of {MODULES} modules each; {args.rounds} rounds; {os.cpu_count()} cores")

    ours_py, bare_py, ours_js, bare_js, hit, plain = [], [], [], [], [], []
    started_py, bare_py2, target_py, started_js, bare_js2 = [], [], [], [], []
    warm_py, warm_target = [], []
    for r in range(args.rounds):
        work = tmp / f"round{r}"
        work.mkdir()
        # A started platform (console, serve) keeps a build launcher ready; the idle moment before
        # the deploy is what a server has between requests (and lets the kernel's grace period end).
        p = platform(work / "data-started", wheels, reg)
        await p.start()
        assert await p.deps.manager.launcher_ready()
        await asyncio.sleep(0.2)
        bare_py2.append(bare_uv(wheels, requirements, work / "uv2"))
        target_py.append(bare_uv_target(wheels, requirements, work / "uvt"))
        warm_py.append(bare_uv(wheels, requirements, work / "uvw", warm=True))
        warm_target.append(bare_uv_target(wheels, requirements, work / "uvtw", warm=True))
        await asyncio.sleep(0.2)
        try:
            t, _ = await timed(
                p.create_function({"name": "first", "runtime": "python", "code": PLAIN, "dependencies": requirements})
            )
            started_py.append(t)
            assert p.deps.manager.prestarted == 1
            if shutil.which("npm"):  # next: a Node.js install meets the Python sandbox waiting ahead
                assert await p.deps.manager.launcher_ready()
                bare_js2.append(bare_npm(reg, package_json, work / "npm2"))
                await asyncio.sleep(0.2)
                t, _ = await timed(
                    p.create_function(
                        {
                            "name": "js",
                            "runtime": "nodejs",
                            "code": "exports.handler = () => 1;",
                            "dependencies": package_json,
                        }
                    )
                )
                started_js.append(t)
                assert p.deps.manager.prestarted == 2
        finally:
            await p.close()
        bare_py.append(bare_uv(wheels, requirements, work / "uv"))
        bare_js.append(bare_npm(reg, package_json, work / "npm") if shutil.which("npm") else float("nan"))
        p = platform(work / "data", wheels, reg)
        try:
            t, _ = await timed(
                p.create_function({"name": "first", "runtime": "python", "code": PLAIN, "dependencies": requirements})
            )
            ours_py.append(t)
            if shutil.which("npm"):
                t, _ = await timed(
                    p.create_function(
                        {
                            "name": "first-js",
                            "runtime": "nodejs",
                            "code": "exports.handler = () => 1;",
                            "dependencies": package_json,
                        }
                    )
                )
                ours_js.append(t)
            for i in range(5):  # alternate, so drift hits both alike
                t, _ = await timed(p.create_function({"name": f"plain{i}", "runtime": "python", "code": PLAIN}))
                plain.append(t)
                t, _ = await timed(
                    p.create_function(
                        {"name": f"hit{i}", "runtime": "python", "code": PLAIN, "dependencies": requirements}
                    )
                )
                hit.append(t)
            assert p.deps.manager.installs == (2 if shutil.which("npm") else 1)
        finally:
            await p.close()
    print("\n-- first install (fresh data dir and cache) --")
    ratio_line("python, started platform: create vs bare uv", started_py, bare_py2, "<= 1.3")
    ratio_line("python, one-shot (CLI owns the dir): create vs uv", ours_py, bare_py, "<= 1.3")
    ratio_line("python, started platform: vs bare uv --target", started_py, target_py, "<= 1.3")
    ratio_line("python, started: vs uv, interpreter cached", started_py, warm_py, "(stricter)")
    ratio_line("python, started: vs uv --target, interp. cached", started_py, warm_target, "(stricter)")
    if ours_js:
        ratio_line("nodejs: cloudfn create vs bare npm install", ours_js, bare_js, "<= 1.3")
        ratio_line("nodejs, started platform: create vs bare npm", started_js, bare_js2, "<= 1.3")
    for label, ours, peer in (
        ("started platform vs bare uv (venv)", started_py, bare_py2),
        ("started platform vs bare uv --target", started_py, target_py),
        ("one-shot platform vs bare uv (venv)", ours_py, bare_py),
        ("started platform vs bare uv (venv), its interpreter cached", started_py, warm_py),
        ("started platform vs bare uv --target, its interpreter cached", started_py, warm_target),
    ):
        r = statistics.median(a / b for a, b in zip(ours, peer, strict=True))
        print(f"goal <= 1.3x, python {label}: {'met' if r <= 1.3 else 'MISSED'} ({r:.2f}x)")
    print("\n-- where a Python install's fixed overhead goes --")
    await launch_breakdown(tmp, max(args.rounds * 3, 9))

    print("\n-- cache hit: a second function with the same requirements --")
    added = statistics.median(hit) - statistics.median(plain)
    print(
        f"{'create with a cached env vs without deps':<44} {statistics.median(hit) * 1000:8.1f} ms vs "
        f"{statistics.median(plain) * 1000:8.1f} ms  added {added * 1000:.1f} ms  goal <= 50 ms"
    )

    print("\n-- cold start (fresh worker) --")
    p = platform(tmp / "cold", wheels, reg)
    imports = "".join(f"import {n}\n" for n in names)
    kinds = {
        "without deps": ("", PLAIN),
        "deps mounted": (requirements, PLAIN),
        "deps imported": (requirements, imports + PLAIN),
    }
    cold: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        await p.create_function({"name": "warmup", "runtime": "python", "code": PLAIN, "dependencies": requirements})
        await p.invoke("warmup", {})
        for i in range(args.cold):
            for kind, (deps, code) in kinds.items():
                name = f"cold-{kind.replace(' ', '-')}-{i}"
                await p.create_function({"name": name, "runtime": "python", "code": code, "dependencies": deps})
                t, res = await timed(p.invoke(name, {}))
                assert res.success and res.cold_start, res.error
                cold[kind].append(t)
    finally:
        await p.close()
    ratio_line("python: deps mounted vs without", cold["deps mounted"], cold["without deps"], "<= 1.2")
    ratio_line(
        f"python: {args.packages} packages imported vs without",
        cold["deps imported"],
        cold["without deps"],
        "(reference)",
    )
    reg.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
