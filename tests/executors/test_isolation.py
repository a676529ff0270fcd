"""What a function cannot see or do: the platform's environment, the host's loopback, the code
folder, other processes; and what it leaves behind: nothing."""

from __future__ import annotations

import asyncio
import os

import pytest
from exec_helpers import fn, processes_matching

from core.models import ErrorType

ENV_CODE = {
    "python": "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
    "nodejs": "function handler() { return Object.assign({}, process.env); }",
    "go": 'import ("os"; "strings")\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
    '\tm := map[string]string{}\n\tfor _, kv := range os.Environ() {\n\t\tp := strings.SplitN(kv, "=", 2)\n'
    "\t\tm[p[0]] = p[1]\n\t}\n\treturn m\n}\n",
}


@pytest.mark.parametrize("runtime", ["python", "nodejs", pytest.param("go", marks=pytest.mark.go)])
async def test_environment_is_scrubbed(service, monkeypatch, runtime):
    monkeypatch.setenv("CLOUDFN_TEST_SECRET", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
    res = await service.invoke(fn(runtime, ENV_CODE[runtime], environment={"GREETING": "hi"}), {})
    assert res.success, res.error
    env = res.result
    assert env["GREETING"] == "hi"
    assert "CLOUDFN_TEST_SECRET" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "hunter2" not in str(env) and "hunter3" not in str(env)
    allowed = {"GREETING", "PATH", "LANG", "HOME", "TMPDIR", "PWD", "GOMEMLIMIT", "SHLVL", "_"}
    assert set(env) <= allowed, set(env) - allowed
    assert env["HOME"] != os.environ.get("HOME")


def _needs(service, what: str) -> None:
    if not service.protections()[what]:
        pytest.skip(f"this host has no {what} ({service.protections()})")


async def _loopback_server():
    async def on_conn(reader, writer):
        writer.write(b"secret-from-host\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


NET_CODE = (
    "import socket\ndef handler(event, context):\n    s = socket.socket()\n    s.settimeout(2)\n"
    "    try:\n        s.connect(('127.0.0.1', event['port']))\n        return s.recv(100).decode()\n"
    "    except OSError as exc:\n        return 'refused: ' + str(exc)\n"
)


async def test_no_access_to_host_loopback_without_network(service):
    _needs(service, "network_isolation")
    server, port = await _loopback_server()
    async with server:
        res = await service.invoke(fn("python", NET_CODE), {"port": port})
        assert res.success and res.result.startswith("refused"), res.result
        # The same function with network on does reach it: the test above is meaningful.
        res = await service.invoke(fn("python", NET_CODE, network=True), {"port": port})
        assert res.success and res.result == "secret-from-host\n", res.result


async def test_nodejs_cannot_reach_host_loopback(service):
    _needs(service, "network_isolation")
    server, port = await _loopback_server()
    code = (
        "const net = require('net');\nfunction handler(event) { return new Promise((resolve) => {\n"
        "  const s = net.connect(event.port, '127.0.0.1', () => resolve('connected'));\n"
        "  s.on('error', (e) => resolve('refused: ' + e.code)); }); }"
    )
    async with server:
        res = await service.invoke(fn("nodejs", code), {"port": port})
    assert res.success and res.result.startswith("refused"), res.result


async def test_sandbox_user_code_folder_and_tmp(service):
    _needs(service, "bwrap_namespaces")
    code = (
        "import os\ndef handler(event, context):\n    out = {'uid': os.getuid(), 'cwd': os.getcwd()}\n"
        "    try:\n        open(__file__, 'a').write('# changed')\n        out['code'] = 'writable'\n"
        "    except OSError as exc:\n        out['code'] = exc.strerror\n"
        "    open('/tmp/scratch', 'w').write('x')\n    out['tmp'] = sorted(os.listdir('/tmp'))\n"
        "    out['root_home'] = os.path.exists('/root/.ssh') or os.path.exists('/work')\n"
        "    out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n    return out\n"
    )
    res = await service.invoke(fn("python", code), {})
    assert res.success, res.error
    r = res.result
    assert r["uid"] == 65534
    assert r["code"] in ("Read-only file system", "Permission denied")
    assert r["tmp"] == ["scratch"] and r["cwd"] == "/function"  # its own folder, read-only (as /var/task)
    assert r["root_home"] is False  # the host's folders are not there
    assert max(r["pids"]) < 10  # its own pid namespace


async def test_file_size_is_limited(service):
    code = (
        "def handler(event, context):\n    with open('/tmp/big', 'wb') as f:\n"
        "        for _ in range(200):\n            f.write(b'x' * (1 << 20))\n"
    )
    res = await service.invoke(fn("python", code), {})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert "File too large" in res.error or "No space left" in res.error, res.error


async def test_fork_loop_is_stopped_by_the_process_limit(service):
    _needs(service, "pids_cgroup")
    code = "import os\ndef handler(event, context):\n    while True:\n        os.fork()\n"
    f = fn("python", code)
    res = await service.invoke(f, {})
    assert res.error_type == ErrorType.HANDLER_ERROR, res.error
    assert "limit on processes" in res.error
    # The forked children are gone and the worker still serves.
    ok = await service.invoke(fn("python", "def handler(e, c):\n    return 1\n"), {})
    assert ok.success


GO_SPAWN = (
    'import ("os/exec"; "syscall")\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
    '\tc := exec.Command("sleep", "987663")\n\tc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}\n'
    '\tc.Start()\n\treturn "ok"\n}\n'
)


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "import subprocess\ndef handler(event, context):\n"
            "    subprocess.Popen(['sleep', '987661'], start_new_session=True)\n    return 'ok'\n",
        ),
        (
            "nodejs",
            "const cp = require('child_process');\n"
            "function handler() { cp.spawn('sleep', ['987662'], {detached: true}).unref(); return 'ok'; }",
        ),
        pytest.param("go", GO_SPAWN, marks=pytest.mark.go),
    ],
)
async def test_no_process_left_after_success(service, runtime, code):
    _needs(service, "pids_cgroup")
    marker = {"python": "987661", "nodejs": "987662", "go": "987663"}[runtime]
    res = await service.invoke(fn(runtime, code), {})
    assert res.success and res.result == "ok"
    assert processes_matching(f"sleep {marker}") == []


LINGER = (
    "import subprocess, threading\nstop = threading.Event()\n"
    "waiter = threading.Thread(target=stop.wait, daemon=True)\n"
    "waiter.start()  # a thread of the worker from the moment its code loaded\n"
    "def handler(event, context):\n"
    "    stop.set()\n    waiter.join()  # that thread has ended...\n"
    "    subprocess.Popen(['sleep', '987664'], start_new_session=True)  # ...and a process began\n"
    "    return 'process'\n"
)


async def test_a_process_is_stopped_even_when_a_thread_ended_meanwhile(service):
    """A count of tasks cannot tell "a thread ended and a process started" from "nothing
    changed": the check at the end of an invocation must look at the processes themselves."""
    _needs(service, "pids_cgroup")
    res = await service.invoke(fn("python", LINGER), {})
    assert res.result == "process", res.error
    assert processes_matching("sleep 987664") == []


async def test_the_cheap_leftover_check_tells_a_clean_worker_from_one_with_a_process(service):
    """After an invocation the worker compares the cgroup's task count with its own processes'
    threads before listing cgroup.procs: a clean worker passes, one more process does not."""
    _needs(service, "pids_cgroup")
    f = fn(
        "python",
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "def handler(event, context):\n    return 1\n",
    )
    assert (await service.invoke(f, {})).success
    [worker] = service._pools[(f.id, f.version)].idle
    assert worker.cg.holds_only(worker.baseline)  # its extra thread is one of its own
    stray = await asyncio.create_subprocess_exec("sleep", "987665")
    try:
        with open(os.path.join(worker.cg.pids, "cgroup.procs"), "w") as procs:
            procs.write(str(stray.pid))
        assert not worker.cg.holds_only(worker.baseline)
        assert (await service.invoke(f, {})).success
        assert await asyncio.wait_for(stray.wait(), 5) == -9  # stopped with that invocation
    finally:
        if stray.returncode is None:
            stray.kill()
            await stray.wait()


def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


async def test_close_leaves_no_process(make_service):
    svc = make_service()
    # Other fixtures of the run (a served platform, say) may have children of their own.
    before = set(_children(os.getpid()))
    fns = [fn("python", "def handler(e, c):\n    return 1\n"), fn("nodejs", "function handler() { return 1; }")]
    results = await asyncio.gather(*(svc.invoke(f, {}) for f in fns * 3))
    assert all(r.success for r in results)
    assert svc.stats()["warm_workers"] >= 2
    assert set(_children(os.getpid())) - before
    await svc.close()
    assert set(_children(os.getpid())) - before == set()


async def test_without_sandbox_functions_still_run_with_rlimits(make_service, monkeypatch):
    monkeypatch.setenv("CLOUDFN_TEST_SECRET", "hunter2")
    svc = make_service(sandbox="none")
    prot = svc.protections()
    assert prot["bwrap_namespaces"] is False and prot["memory_cgroup"] is False
    assert "cpu" in prot["rlimits"]
    res = await svc.invoke(fn("python", ENV_CODE["python"]), {})
    assert res.success and "CLOUDFN_TEST_SECRET" not in res.result
    res = await svc.invoke(fn("nodejs", "function handler(e) { return e.n * 2; }"), {"n": 21})
    assert res.result == 42
    res = await svc.invoke(fn("python", "import time\ndef handler(e, c):\n    time.sleep(5)\n", timeout=1), {})
    assert res.error_type == ErrorType.TIMEOUT


def test_cgroup_folders_of_platforms_that_died_are_swept(tmp_path):
    """A platform killed with SIGKILL leaves its cgroup folders; the next one to start removes
    them, but never those of a live owner, nor ones touched in the last minute, nor a cgroup a
    process is still in."""
    import subprocess
    import time
    import uuid

    from core.executors.cgroups import CGROUP_V1_ROOT, _own_cgroup, sweep_dead_owners

    own = _own_cgroup("pids")
    root = CGROUP_V1_ROOT / "pids"
    if own is None or not (root / "cgroup.procs").exists():
        pytest.skip("needs the pids cgroup (v1)")
    scratch = root / own.lstrip("/") / f"cftest-{uuid.uuid4().hex[:8]}"
    dead = subprocess.Popen(["true"])
    dead.wait()
    live_pid = os.getpid()
    folders = {
        "dead_old": scratch / f"cloudfn-{dead.pid}",
        "live_old": scratch / f"cloudfn-{live_pid}",
        "busy": scratch / "cloudfn-999999999",
    }
    sleeper = None
    try:
        scratch.mkdir()
        for folder in folders.values():
            (folder / "w-1").mkdir(parents=True)
        sleeper = subprocess.Popen(["sleep", "987666"])
        (folders["busy"] / "w-1" / "cgroup.procs").write_text(str(sleeper.pid))
        old = time.time() - 3600
        for folder in folders.values():
            os.utime(folder, (old, old))
        base = scratch / "cloudfn-own"
        base.mkdir()
        recent = scratch / "cloudfn-999999998"
        (recent / "w-1").mkdir(parents=True)  # dead owner, but touched just now
        assert sweep_dead_owners([base]) == 1
        assert not folders["dead_old"].exists()
        assert folders["live_old"].exists() and folders["busy"].exists() and recent.exists()
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        for folder in sorted(scratch.glob("*/*"), reverse=True) + sorted(scratch.glob("*")) + [scratch]:
            try:
                folder.rmdir()
            except OSError:
                pass
