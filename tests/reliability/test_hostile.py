"""The hostile corpus (issue 7, item 1): real functions in every runtime that try to exhaust,
escape or snoop on the platform. For each case and runtime:

- the invocation ends with the right error type (or, for reads the sandbox blocks, succeeds
  without any secret in its result, logs, history record or the platform's log);
- another function keeps being served at its normal latency while it runs and afterwards (a
  ratio to a baseline measured in the same run, printed for every case);
- no process is left behind (none in a cgroup of the platform's workers but the warm workers
  themselves, none under this process but them, none carrying the case's marker);
- no file outside the sandbox changes (the data dir but history and logs, the function code
  folders, a canary in the host's /tmp, /etc/shadow, the runners).

One platform serves the whole module; every runtime's cases share one function (the case is
chosen by the event, so Go compiles once). `pytest -s` prints one line per case.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hostile_functions import CODE

from core.config import load_config
from core.local import LocalPlatform
from core.models import ErrorType, InvokeResult

pytestmark = pytest.mark.asyncio(loop_scope="module")

E = ErrorType
TIMEOUT_S = 2  # the hostile functions' timeout: CPU spins and sleeps end after this
HELLO = "def handler(event, context):\n    return 'hello'\n"
RUNNERS_DIR = Path(__file__).resolve().parents[2] / "core" / "executors" / "runners"
LATENCY_FACTOR = 10  # "normal latency": p50 under 10x the baseline p50 ...
LATENCY_SLACK_MS = 5.0  # ... plus a few ms (timer and scheduler noise on a busy 2-core host)
DURING_SLACK_MS = 50.0  # while a hostile function runs beside it (it shares the 2 cores)


# --- the platform under attack ------------------------------------------------------------------
@dataclass
class Host:
    platform: LocalPlatform
    data_dir: Path
    cache_dir: Path
    env_secret: str
    token_secret: str
    victim_secret: str
    victim_code: Path
    canary: Path
    canary_text: str
    shadow_lines: list[str]
    baseline_ms: float = 0.0
    rows: list[str] = field(default_factory=list)
    # Children the test run had before this platform started (a served platform of another
    # module, say): they and their descendants are not this platform's leftovers.
    foreign_roots: set[int] = field(default_factory=set)

    @property
    def secrets(self) -> list[str]:
        return [self.env_secret, self.token_secret, self.victim_secret, *self.shadow_lines]


def _p50(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def _hello_latencies(p: LocalPlatform, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await p.invoke("hello", {})
        out.append((time.perf_counter() - t0) * 1000)
        assert r.success, f"the platform stopped serving other functions: {r.error_type} {r.error}"
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host(tmp_path_factory, shared_cache):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("hostile")
    # The module's platform outlives the per-test XDG isolation: give it its own folders.
    mp.setenv("XDG_CONFIG_HOME", str(root / "xdg-config"))
    mp.setenv("XDG_DATA_HOME", str(root / "xdg-data"))
    mp.setenv("XDG_CACHE_HOME", str(shared_cache))
    for var in ("CLOUDFN_CONFIG", "CLOUDFN_DATA_DIR", "DATA_DIR", "FUNCTIONS_DIR", "PORT", "LOG_LEVEL"):
        mp.delenv(var, raising=False)
    env_secret = f"env-secret-{uuid.uuid4().hex}"
    mp.setenv("CLOUDFN_HOSTILE_SECRET", env_secret)  # in the platform's own environment
    data_dir = root / "data"
    foreign_roots = _descendants(os.getpid())
    p = LocalPlatform(
        load_config(flags={"storage.data_dir": str(data_dir), "monitor.alert_interval": 0}), install_examples=False
    )
    token_secret = f"token-secret-{uuid.uuid4().hex}"
    token = data_dir / "token"
    token.write_text(token_secret + "\n")
    token.chmod(0o600)
    victim_secret = f"victim-secret-{uuid.uuid4().hex}"
    canary = Path("/tmp") / f"cloudfn-hostile-canary-{uuid.uuid4().hex[:8]}"
    canary_text = f"canary {uuid.uuid4().hex}\n"
    canary.write_text(canary_text)
    try:
        shadow = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        shadow = []
    h = Host(
        platform=p,
        data_dir=data_dir,
        cache_dir=p.config.cache_dir,
        env_secret=env_secret,
        token_secret=token_secret,
        victim_secret=victim_secret,
        victim_code=Path("/nonexistent"),
        canary=canary,
        canary_text=canary_text,
        shadow_lines=[line for line in shadow if len(line) > 8 and ":" in line],
        foreign_roots=foreign_roots,
    )
    try:
        await p.create_function({"name": "hello", "runtime": "python", "code": HELLO})
        victim = await p.create_function(
            {
                "name": "victim",
                "runtime": "python",
                "code": f"# {victim_secret}\ndef handler(event, context):\n    return 'victim'\n",
            }
        )
        assert (await p.invoke("victim", {})).success  # writes its code folder
        h.victim_code = p.executor.runtimes_["python"].function_dir(victim) / "handler.py"
        assert victim_secret in h.victim_code.read_text()
        for rt in RUNTIME_NAMES:
            if not _missing(rt):
                await p.create_function(
                    {"name": f"hostile-{rt}", "runtime": rt, "code": CODE[rt], "timeout": TIMEOUT_S, "memory": 128}
                )
                r = await p.invoke(f"hostile-{rt}", {"case": "hello", "marker": "warm"})  # Go builds here
                assert r.success and r.result == "hello", (rt, r.error)
        await _hello_latencies(p, 10)  # warm
        h.baseline_ms = _p50(await _hello_latencies(p, 40))
        print(
            f"\n[hostile] baseline: warm invoke of another function p50 {h.baseline_ms:.2f} ms "
            f"(protections: {_protection_summary(p)})"
        )
        yield h
    finally:
        await p.close()
        canary.unlink(missing_ok=True)
        mp.undo()
        if h.rows:
            print("\n[hostile] summary (case, runtime, outcome, duration, hello p50 during/after vs baseline)")
            for row in h.rows:
                print("  " + row)


def _protection_summary(p: LocalPlatform) -> str:
    prot = p.executor.protections()
    keys = ("memory_cgroup", "pids_cgroup", "bwrap_namespaces", "network_isolation", "non_root_uid")
    return ", ".join(f"{k}={prot[k]}" for k in keys)


RUNTIME_NAMES = ["python", "nodejs", "go"]


def _missing(rt: str) -> str:
    if rt == "nodejs" and shutil.which("node") is None:
        return "Node.js is not installed"
    if rt == "go" and shutil.which("go") is None:
        return "the Go toolchain is not installed"
    return ""


# --- what must hold after every case ------------------------------------------------------------
def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def snapshot(h: Host) -> dict[str, Any]:
    """mode, mtime and content of what no function may change."""
    snap: dict[str, Any] = {}
    paths: list[Path] = [h.data_dir]
    paths += [
        p
        for p in h.data_dir.rglob("*")
        if p.relative_to(h.data_dir).parts[0] not in ("history", "logs")  # the platform's own writes
        and ".prewarm" not in p.relative_to(h.data_dir).parts
    ]
    paths += [h.canary, Path("/etc/shadow"), Path("/etc/passwd"), RUNNERS_DIR, *RUNNERS_DIR.iterdir()]
    go_root = h.cache_dir / "go"
    if go_root.is_dir():  # built Go functions (each folder is mounted as a worker's /function)
        for d in go_root.iterdir():
            if (d / "handler").exists():
                paths += [d, *d.iterdir()]
    for p in paths:
        try:
            st = p.lstat()
        except FileNotFoundError:
            snap[str(p)] = "missing"
            continue
        snap[str(p)] = (
            oct(st.st_mode),
            st.st_uid,
            st.st_mtime_ns,
            _sha(p) if p.is_file() else sorted(os.listdir(p)) if p.is_dir() else None,
        )
    return snap


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """A process that still runs (zombies, already dead, do not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _descendants(root: int) -> set[int]:
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, pp in parent.items() if pp in frontier and pid not in found}
        found |= frontier
    return found


def _procs(path: Path) -> set[int]:
    try:
        return {int(x) for x in (path / "cgroup.procs").read_text().split()}
    except (OSError, ValueError):
        return set()


def _build_launcher(pid: int) -> bool:
    """The platform's root shell waiting, in a build cgroup of its own, for the next dependency
    install (core/executors/buildlauncher.py): it runs no function code and is replaced after
    each install, so it is no leftover."""
    cmd = _cmdline(pid)
    return cmd.startswith("/usr/bin/bash -c printf x >&") and cmd.endswith(" cloudfn-build")


def leftovers(h: Host, marker: str) -> list[str]:
    """Processes that should not exist now: anything in the platform's worker cgroups but the
    warm workers as they were when ready, any other descendant of this process, any process
    carrying the case's marker."""
    ex = h.platform.executor
    live: dict[str, set[int]] = {}
    allowed: set[int] = set()
    for pool in ex._pools.values():
        for w in list(pool.idle) + list(pool.busy):
            if w.cg is not None and not w.dead:
                for p in w.cg.paths():
                    live[p.name] = w.baseline
                allowed |= w.baseline
    for name, pids in ex.prewarm.members().items():  # the platform's waiting sandboxes
        live[name] = pids
        allowed |= pids
    # The build sandbox waiting for the next Python install (started ahead up to uv's exec): the
    # platform's own, named by the launcher it holds, running no function code.
    deps = h.platform.deps._manager
    waiting = deps.waiting_launcher if deps is not None else None
    ahead: set[int] = set()
    if waiting is not None and waiting.proc.returncode is None:
        ahead = {waiting.proc.pid, *_descendants(waiting.proc.pid), *waiting.cg.members()}
    allowed |= ahead
    found = []
    cg = ex.sandbox.cgroups
    for base in {cg.memory_base, cg.pids_base} - {None} if cg else ():
        for d in base.iterdir():
            if d.is_dir():
                extra = {
                    pid
                    for pid in _procs(d) - live.get(d.name, set())
                    if _alive(pid) and not _build_launcher(pid) and pid not in ahead
                }
                found += [f"cgroup {d.name}: {pid} {_cmdline(pid)!r}" for pid in sorted(extra)]
    foreign = set(h.foreign_roots).union(*(_descendants(r) for r in h.foreign_roots))
    for pid in sorted(_descendants(os.getpid()) - allowed - foreign):
        if _alive(pid) and not _build_launcher(pid):
            found.append(f"descendant {pid} {_cmdline(pid)!r}")
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid() and marker in _cmdline(int(d)) and _alive(int(d)):
            found.append(f"marked {d} {_cmdline(int(d))!r}")
    return sorted(set(found))


async def assert_nothing_left(h: Host, marker: str) -> None:
    # SIGKILLed processes take a moment to be reaped: poll, bounded, until they are gone.
    deadline = time.monotonic() + 5
    left = leftovers(h, marker)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        left = leftovers(h, marker)
    assert not left, f"processes left behind: {left}"


# --- listeners on the host's loopback -----------------------------------------------------------
class TcpBait:
    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self):
        async def on_conn(reader, writer):
            self.connections += 1
            writer.write(b"secret-from-host\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


def _udp(port: int) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:  # e.g. port 53 already taken by a resolver on this host
        s.close()
        return None
    s.setblocking(False)
    return s


def _received(s: socket.socket | None) -> list[bytes]:
    got = []
    while s is not None:
        try:
            got.append(s.recv(4096))
        except BlockingIOError:
            break
    return got


# --- the cases ----------------------------------------------------------------------------------
@dataclass
class Case:
    event_case: str
    expect: dict[str, ErrorType | None]  # per runtime; None: the invocation succeeds
    slow: bool = False
    error_has: dict[str, str] = field(default_factory=dict)  # per runtime: text in the error
    needs: tuple[str, ...] = ()  # protections (`cloudfn info`) without which the case cannot hold
    runtimes: tuple[str, ...] = ("python", "nodejs", "go")


def _all(t: ErrorType | None, **kw) -> dict[str, ErrorType | None]:
    return {"python": t, "nodejs": t, "go": t, **kw}


CASES: dict[str, Case] = {
    "memory_bomb": Case("memory_bomb", _all(E.MEMORY_LIMIT), needs=("memory_cgroup",)),
    # Fork until the pids cgroup refuses: the error names the limit; the children are killed.
    "fork_bomb": Case(
        "fork_bomb",
        _all(E.HANDLER_ERROR),
        error_has=dict.fromkeys(RUNTIME_NAMES, "limit on processes"),
        needs=("pids_cgroup",),
    ),
    # Python: RuntimeError (thread stacks reach RLIMIT_DATA); Node: each worker thread is a V8
    # isolate, so memory runs out before pids; Go: the runtime aborts when it cannot make a thread.
    "thread_bomb": Case(
        "thread_bomb",
        _all(E.HANDLER_ERROR, nodejs=E.MEMORY_LIMIT, go=E.WORKER_CRASHED),
        error_has={"go": "limit on processes"},
        needs=("pids_cgroup", "memory_cgroup"),
    ),
    "cpu_spin": Case("cpu_spin", _all(E.TIMEOUT), slow=True),
    "sleep_forever": Case("sleep_forever", _all(E.TIMEOUT), slow=True),
    # A promise or coroutine nothing can settle: Python waits out its timeout; Node's event loop
    # empties (the runner says so at once); Go's runtime detects the deadlock and dies.
    "never_settles": Case(
        "never_settles",
        _all(E.TIMEOUT, nodejs=E.HANDLER_ERROR, go=E.WORKER_CRASHED),
        error_has={"nodejs": "never settle", "go": "deadlock"},
    ),
    "stdout_flood": Case("stdout_flood", _all(E.OUTPUT_TOO_LARGE)),
    "fill_tmp": Case("fill_tmp", _all(E.HANDLER_ERROR), needs=("private_tmp",)),
    "huge_result": Case("huge_result", _all(E.OUTPUT_TOO_LARGE)),
    # Go's goroutine stack may grow to 1 GB: the memory cgroup stops it first.
    "deep_recursion": Case("deep_recursion", _all(E.HANDLER_ERROR, go=E.MEMORY_LIMIT), needs=("memory_cgroup",)),
    # Without namespaces a function would see the host's files and, as root, could read them all.
    "read_environment": Case("snoop", _all(None), needs=("bwrap_namespaces",)),
    "read_data_dir": Case("snoop", _all(None), needs=("bwrap_namespaces",)),
    "read_token": Case("snoop", _all(None), needs=("bwrap_namespaces",)),
    "read_shadow": Case("snoop", _all(None), needs=("bwrap_namespaces",)),
    "read_other_code": Case("snoop", _all(None), needs=("bwrap_namespaces",)),
    "connect_host": Case("connect_host", _all(None), needs=("network_isolation",)),
    "dns": Case("dns", _all(None), needs=("network_isolation",)),
    "escapee": Case("escapee", _all(None), needs=("pids_cgroup",)),
    # Without a pid namespace the worker's parent is the platform itself.
    "kill_parent": Case("kill_parent", _all(None), needs=("bwrap_namespaces",)),
    "close_fds": Case("close_fds", _all(E.WORKER_CRASHED)),
    "ignore_sigterm": Case("ignore_sigterm", _all(E.TIMEOUT), slow=True),
    "unserialisable": Case("unserialisable", _all(E.INVALID_RESULT)),
}


def _params():
    for name, case in CASES.items():
        for rt in case.runtimes:
            marks = [pytest.mark.slow] if case.slow else []
            if _missing(rt):
                marks.append(pytest.mark.skip(reason=_missing(rt)))
            yield pytest.param(name, rt, marks=marks, id=f"{name}-{rt}")


def _snoop_targets(h: Host, name: str, marker: str) -> tuple[list[str], list[str]]:
    """(paths to read, paths to write) for a read case: the secrets' host paths."""
    token = str(h.data_dir / "token")
    reads = {
        "read_environment": [f"/proc/{os.getpid()}/environ", "/proc/1/environ"],
        "read_data_dir": [str(h.data_dir), str(h.data_dir / "registry.json"), str(h.data_dir / "history")],
        "read_token": [token],
        "read_shadow": ["/etc/shadow"],
        "read_other_code": [str(h.victim_code), str(h.victim_code.parent)],
    }[name]
    writes = [
        token,
        str(h.data_dir / f"{marker}-planted"),
        str(h.victim_code),
        str(h.canary),
        "/function/planted",
        f"/runtime/{marker}",
        "/etc/passwd",
        f"/tmp/{marker}",
    ]
    return reads, writes


def _text(res: InvokeResult) -> str:
    return json.dumps(res.result, default=str) + "\n" + (res.logs or "") + "\n" + (res.error or "")


async def _check_outcome(h: Host, name: str, rt: str, case: Case, res: InvokeResult, ctx: dict[str, Any]) -> None:
    want = case.expect[rt]
    if want is None:
        assert res.success, f"expected success, got {res.error_type}: {res.error}"
    else:
        assert not res.success and res.error_type == want, (
            f"expected {want.value}, got {res.error_type and res.error_type.value}: {res.error}"
        )
    if rt in case.error_has:
        assert case.error_has[rt] in res.error, res.error
    r = res.result
    if name == "stdout_flood":
        assert res.duration < 10_000, "the flood ran for long: the output limit must stop it early"
        assert "logs truncated" in res.logs
    elif name == "fill_tmp":
        assert any(s in res.error.lower() for s in ("no space left", "file too large", "enospc", "efbig")), res.error
    elif name == "huge_result":
        assert "limit is" in res.error, res.error
    elif name.startswith("read_"):
        for p in ctx["reads"]:
            if p != "/proc/1/environ":  # pid 1 of the sandbox's own namespace: its init, scrubbed too
                assert str(r[p]).startswith("denied"), f"{p} was readable: {str(r[p])[:200]}"
        for p in ctx["writes"]:
            if not p.startswith("/tmp/"):  # inside, /tmp is the worker's private one (checked below)
                assert str(r["write " + p]).startswith("denied"), f"{p} was writable"
        assert "CLOUDFN_HOSTILE_SECRET" not in r["env"]
        if "/proc/1/environ" in r:  # the sandbox's init: started from /, no host folder in it
            assert os.getcwd() == "/" or f"PWD={os.getcwd()}" not in r["/proc/1/environ"], r["/proc/1/environ"]
        assert str(h.data_dir) not in json.dumps(r["env"]), "the environment names a host path"
    elif name == "connect_host":
        assert str(r).startswith("refused"), r
        assert ctx["bait"].connections == 0
    elif name == "dns":
        for host_name in ("example.com", "localhost", f"cloudfn-{ctx['marker']}.test"):
            assert str(r[host_name]).startswith("failed"), r
        got = _received(ctx["udp"]) + _received(ctx["udp53"])
        assert got == [], f"a datagram reached the host's loopback: {got}"
    elif name == "escapee":
        assert r == "escaped"
    elif name == "kill_parent":
        # The worker's parent is the sandbox's init (pid 1 of its namespace): it ignores signals
        # from inside, and "everyone" there is the function itself. The platform is untouched.
        assert "parent" in r and "everyone" in r, r
    # Whatever the case: no secret anywhere the function's output goes.
    rec = await h.platform.get_invocation(res.invocation_id)
    logs = await h.platform.query_logs(invocation_id=res.invocation_id, limit=10_000)
    everything = _text(res) + rec.model_dump_json() + "".join(log.model_dump_json() for log in logs)
    for secret in h.secrets:
        assert secret not in everything, f"a secret leaked: {secret[:20]}..."


@pytest.mark.parametrize("name,rt", list(_params()))
async def test_hostile(host: Host, name: str, rt: str):
    h, p = host, host.platform
    case = CASES[name]
    prot = p.executor.protections()
    missing = [n for n in case.needs if not prot.get(n)]
    if missing:
        pytest.skip(
            f"this host cannot enforce it: no {', '.join(missing)} ({prot.get('bwrap_problem')}; "
            f"{prot.get('cgroup_problems')})"
        )
    marker = f"cfnhostile{uuid.uuid4().hex[:12]}"
    event: dict[str, Any] = {"case": case.event_case, "marker": marker}
    ctx: dict[str, Any] = {"marker": marker}
    before = snapshot(h)
    bait = TcpBait()
    ctx["bait"] = bait
    ctx["udp"] = _udp(0)
    ctx["udp53"] = _udp(53) if name == "dns" else None  # a "resolver" on the host's loopback
    try:
        async with bait:
            event["port"] = bait.port
            event["udp_port"] = ctx["udp"].getsockname()[1]
            if case.event_case == "snoop":
                ctx["reads"], ctx["writes"] = _snoop_targets(h, name, marker)
                event["paths"], event["write"] = ctx["reads"], ctx["writes"]
            t0 = time.perf_counter()
            task = asyncio.ensure_future(p.invoke(f"hostile-{rt}", event))
            during: list[float] = []
            while not task.done() and len(during) < 500:
                during += await _hello_latencies(p, 1)
            res = await task
            took = (time.perf_counter() - t0) * 1000
            await _check_outcome(h, name, rt, case, res, ctx)
    finally:
        for s in (ctx["udp"], ctx["udp53"]):
            if s is not None:
                s.close()
    await assert_nothing_left(h, marker)
    assert snapshot(h) == before, "a file outside the sandbox changed"
    assert [n for n in os.listdir("/tmp") if marker in n] == [], "the function wrote into the host's /tmp"
    # The hostile function itself serves again (a fresh worker if its last one was stopped).
    again = await p.invoke(f"hostile-{rt}", {"case": "hello", "marker": marker})
    assert again.success and again.result == "hello", (again.error_type, again.error)
    if name == "fork_bomb":  # a worker that reached its pids limit is not reused
        assert again.cold_start, "the worker that hit its process limit was reused"
    after = await _hello_latencies(p, 15)
    outcome = "ok" if res.success else res.error_type.value
    worst = max(during, default=float("nan"))
    row = (
        f"{name:17} {rt:6} -> {outcome:20} {took:7.0f} ms | hello p50 during {_p50(during):6.2f} ms "
        f"(max {worst:6.2f}, n={len(during)}), after {_p50(after):6.2f} ms, baseline {h.baseline_ms:.2f} ms"
    )
    print(f"\n[hostile] {row}")
    h.rows.append(row)
    limit = LATENCY_FACTOR * h.baseline_ms + LATENCY_SLACK_MS
    assert _p50(after) < limit, f"after: hello p50 {_p50(after):.2f} ms > {limit:.2f} ms"
    if during:
        limit_during = LATENCY_FACTOR * h.baseline_ms + DURING_SLACK_MS
        assert _p50(during) < limit_during, f"during: hello p50 {_p50(during):.2f} ms > {limit_during:.2f} ms"
