"""Issue 12's sandbox attacks, against the real `cloudfn serve` (uvloop, as users run it), as root.

Each test asserts that the attack failed, seen from where it matters (the host's /proc, the host's
kernel settings, the API's answers), and that the server still serves another function after it.
"""

from __future__ import annotations

import errno
import os
import platform
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fdprobe import descendants as _descendants
from tests.server.serverproc import REPO, ServerProc, start_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks are on a platform that runs as root")

MARKER = "cloudfn-containment-marker-5f1e"
HELLO = "def handler(event, context):\n    return 'hello'\n"
# x86_64 numbers for the calls that libc has no wrapper for.
SYSCALLS = {
    "io_uring_setup": 425,
    "keyctl": 250,
    "bpf": 321,
    "perf_event_open": 298,
    "kexec_load": 246,
    "init_module": 175,
    "add_key": 248,
    "setns": 308,
    "userfaultfd": 323,
    "open_by_handle_at": 304,
}
PROBE = f"""
import ctypes, os

SYSCALLS = {SYSCALLS!r}

def handler(event, context):
    libc = ctypes.CDLL(None, use_errno=True)
    out = {{"denied": {{}}, "writable": {{}}}}

    def err(ret):
        return 0 if ret == 0 else ctypes.get_errno()

    out["denied"]["unshare(CLONE_NEWUSER)"] = err(libc.unshare(0x10000000))
    out["denied"]["unshare(CLONE_NEWNS)"] = err(libc.unshare(0x00020000))
    out["denied"]["mount"] = err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    out["denied"]["ptrace(PTRACE_ATTACH, 1)"] = err(libc.ptrace(16, 1, None, None))
    out["denied"]["chroot"] = err(libc.chroot(b"/tmp"))
    for name, nr in SYSCALLS.items():
        out["denied"][name] = err(libc.syscall(nr, 0, 0, 0, 0, 0))
    for path in ("/proc/sys/kernel/printk_ratelimit_burst", "/proc/sys/kernel/core_pattern",
                 "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger", "/sys/kernel/mm/transparent_hugepage/enabled"):
        try:
            open(path, "w").close()
            out["writable"][path] = "opened for writing"
        except OSError as exc:
            out["writable"][path] = exc.errno
    fds = {{}}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            continue  # the listing's own
    out["fds"] = fds
    out["pid1_cmdline"] = open("/proc/1/cmdline", "rb").read().decode(errors="replace")
    out["self_cmdline"] = open("/proc/self/cmdline", "rb").read().decode(errors="replace")
    out["pid1_environ"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
    out["mountinfo"] = open("/proc/self/mountinfo").read()
    out["marker"] = os.environ.get("MARKER")
    return out
"""
NODE_HELLO = "exports.handler = async (event) => 'hello';\n"
GO_HELLO = 'func handler(event interface{}, context map[string]string) interface{} {\n\treturn "hello"\n}\n'


def _create(s: ServerProc, name: str, runtime: str, code: str, **extra) -> dict:
    with s.client() as c:
        r = c.post(
            "/api/v1/functions", json={"name": name, "runtime": runtime, "code": code, "handler": "handler", **extra}
        )
    assert r.status_code in (200, 201), r.text
    return r.json()


def _invoke(s: ServerProc, name: str, event: dict | None = None) -> dict:
    with s.client() as c:
        r = c.post(f"/api/v1/functions/{name}/invoke", json=event or {})
    assert r.status_code == 200, r.text
    body = r.json()
    return body


def _proc(pid: int) -> dict:
    """What the host sees of a process: its real uid, command line and environment."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") != cmdline:
            return {}  # caught in an exec (a pre-started sandbox starting): not one process's view
    except OSError:
        return {}
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    env = dict(e.decode(errors="replace").partition("=")[::2] for e in environ if e)
    return {"pid": pid, "uid": uid, "cmd": [c.decode(errors="replace") for c in cmdline if c], "env": env}


def _is_launcher(p: dict) -> bool:
    """The root end of a sandbox's chain, which runs no code of the function's: the shell that
    joins the cgroups (caught while it starts a sandbox), the bwrap that lays out the files, and
    the build launcher waiting for the next install (core/executors/buildlauncher.py). A start
    in the background runs the same chain under `nice -n N` (core/executors/spawn.py), caught
    before nice execs it."""
    cmd = p["cmd"]
    if len(cmd) > 3 and cmd[0].endswith("/nice") and cmd[1] == "-n" and cmd[2].isdigit():
        return _is_launcher({**p, "cmd": cmd[3:]})
    return bool(cmd) and (
        cmd[0].endswith("bwrap")
        and "--cap-add" in cmd
        or len(cmd) > 3
        and cmd[1] == "-c"
        and cmd[3] == "cloudfn-worker"
        or len(cmd) == 4
        and cmd[0].endswith("/bash")
        and cmd[1] == "-c"
        and cmd[2].startswith("printf x >&")
        and cmd[3] == "cloudfn-build"
        # The launching shell of a build sandbox started ahead, waiting beside that sandbox's
        # chain (its arguments follow) for another build's command.
        or len(cmd) > 4
        and cmd[0].endswith("/bash")
        and cmd[1] == "-c"
        and cmd[2].split(" ", 1)[0].endswith("/env")
        and cmd[3] == "cloudfn-build"
        and cmd[4].endswith("bwrap")
    )


@pytest.fixture(scope="module")
def fd_socket():
    """A listening socket the server inherits from its parent, like systemd's: no worker may get it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.set_inheritable(True)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache, fd_socket):
    s = start_server(tmp_path_factory.mktemp("contain"), cache=shared_cache, pass_fds=(fd_socket.fileno(),))
    with s.client() as c:
        info = c.get("/api/v1/info").json()
    if not info["protections"]["bwrap_namespaces"]:
        s.stop()
        pytest.skip(f"no namespace sandbox here: {info['protections']['bwrap_problem']}")
    s.info = info
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0, s.stderr()


@pytest.fixture(scope="module")
def probe(server):
    _create(server, "probe", "python", PROBE, environment={"MARKER": MARKER})
    res = _invoke(server, "probe")
    assert res["success"], res
    return res["result"]


def _still_serving(server: ServerProc) -> None:
    with server.client() as c:
        if c.get("/api/v1/functions/hello").status_code == 404:
            _create(server, "hello", "python", HELLO)
    res = _invoke(server, "hello")
    assert res["success"] and res["result"] == "hello", res


def test_info_lists_every_protection_in_force(server):
    prot = server.info["protections"]
    assert prot["non_root_uid"] and prot["seccomp"] and prot["read_only_proc_sys"], prot
    assert "uid 65534" in prot["uid_drop"] or "cloudfn-sandbox" in prot["uid_drop"], prot
    assert prot["warning"] == ""


@pytest.mark.parametrize("runtime,code", [("python", HELLO), ("nodejs", NODE_HELLO), ("go", GO_HELLO)])
def test_no_function_process_and_no_sandbox_init_is_host_root(server, runtime, code):
    if runtime == "go" and not server.info["runtimes"].get("go", {}).get("available"):
        pytest.skip("no Go toolchain")
    name = f"uid-{runtime}"
    _create(server, name, runtime, code)
    assert _invoke(server, name)["success"]
    procs = [p for p in map(_proc, _descendants(server.proc.pid)) if p]
    roots = [p for p in procs if p["uid"] == 0]
    # The only root processes under the server are the bwraps that lay out the files: they run
    # no code of the function's, and they are outside its pid namespace.
    assert all(_is_launcher(p) for p in roots), [p["cmd"][:3] for p in roots if not _is_launcher(p)]
    runners = [
        p
        for p in procs
        if not p["cmd"][0].endswith("bwrap")
        and not _is_launcher(p)
        and any(r in " ".join(p["cmd"]) for r in ("python_runner.py", "node_runner.js", "/function/handler"))
    ]
    assert runners and all(p["uid"] != 0 for p in runners)
    _still_serving(server)


def test_denied_system_calls_fail_with_eperm_inside_the_function(probe, server):
    if platform.machine() != "x86_64":
        pytest.skip("the probe's raw system call numbers are x86_64's")
    assert probe["denied"] == {k: errno.EPERM for k in probe["denied"]}, probe["denied"]
    _still_serving(server)


def test_kernel_settings_are_read_only_to_functions(probe, server):
    before = Path("/proc/sys/kernel/printk_ratelimit_burst").read_text()
    assert all(v in (errno.EACCES, errno.EROFS, errno.ENOENT, errno.EPERM) for v in probe["writable"].values()), probe[
        "writable"
    ]
    assert Path("/proc/sys/kernel/printk_ratelimit_burst").read_text() == before


def test_no_fd_but_the_protocols_reaches_a_worker(probe, server, fd_socket):
    # /dev/null, the log pipe (the runner keeps copies of both) and the two protocol pipes.
    links = probe["fds"]
    assert all(v == "/dev/null" or v.startswith("pipe:") for v in links.values()), links
    assert len({v for v in links.values() if v.startswith("pipe:")}) == 3, links
    # The server's and its parent's listening sockets still answer the server only.
    for _ in range(5):
        _still_serving(server)


def test_the_functions_environment_never_reaches_a_root_process(probe, server):
    assert probe["marker"] == MARKER  # it does reach the function itself
    procs = [p for p in map(_proc, _descendants(server.proc.pid)) if p]
    roots = [p for p in procs if p["uid"] == 0]
    assert roots
    for p in roots:
        assert set(p["env"]) <= {"PATH", "LANG", "PWD"}, (p["cmd"][:3], p["env"])  # PWD=/: the shell's
        assert MARKER not in " ".join(p["env"].values()) and MARKER not in " ".join(p["cmd"])


def test_proc_inside_shows_no_data_directory_or_checkout(probe, server):
    for key in ("pid1_cmdline", "pid1_environ", "self_cmdline", "mountinfo"):
        assert str(server.data_dir) not in probe[key], (key, probe[key])
        assert str(REPO) not in probe[key], (key, probe[key])
        assert MARKER not in probe[key], (key, probe[key])


@pytest.mark.parametrize(
    "env",
    [
        {"LD_PRELOAD": "/tmp/x.so"},
        {"LD_DEBUG": "all", "LD_DEBUG_OUTPUT": "/etc/x"},
        {"LD_AUDIT": "/tmp/a.so"},
        {"LD_LIBRARY_PATH": "/tmp"},
        {"GCONV_PATH": "/tmp"},
        {"NODE_OPTIONS": "--require /tmp/x.js"},
        {"OK": "a\u0000--bind"},
    ],
)
def test_loader_variables_and_nul_are_refused_with_the_field_named(server, env):
    with server.client() as c:
        r = c.post("/api/v1/functions", json={"name": "ldtest", "runtime": "python", "code": HELLO, "environment": env})
        assert r.status_code in (400, 422), r.text
        assert "environment" in r.text
        assert c.get("/api/v1/functions/ldtest").status_code == 404
    _still_serving(server)


CONST_BOMB = (
    'package main\n\nconst (\n\tc0 = "0123456789abcdef0123456789abcdef"\n'
    + "".join(f"\tc{i} = c{i - 1} + c{i - 1}\n" for i in range(1, 26))
    + (")\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n\treturn len(c25)\n}\n")
)


@pytest.mark.go
def test_a_go_build_past_its_memory_limit_is_a_compile_error_naming_it(tmp_path, shared_cache):
    s = start_server(tmp_path / "build", cache=tmp_path / "cache", CLOUDFN_RUNTIME_BUILD_MEMORY="256")
    try:
        with s.client() as c:
            info = c.get("/api/v1/info").json()
        if not info["runtimes"].get("go", {}).get("available"):
            pytest.skip("no Go toolchain")
        _create(s, "bomb", "go", CONST_BOMB)
        res = _invoke(s, "bomb")
        assert not res["success"] and res["error_type"] == "CompileError", res
        assert "memory limit of 256 MB (runtime.build_memory)" in res["error"], res["error"]
        _still_serving(s)
        # (The sandbox waiting for the next Python install names uv's --no-compile: not a leftover.)
        leftovers = [
            p
            for p in map(_proc, _descendants(s.proc.pid))
            if p and "compile" in " ".join(p["cmd"]) and p["cmd"][-1:] != ["cloudfn-build"]
        ]
        assert not leftovers
    finally:
        assert s.stop() == 0, s.stderr()


def test_serve_refuses_to_start_without_the_sandbox_unless_told(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    path = f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFN_")}
    env.update(
        PATH=path, PYTHONPATH=str(REPO), XDG_DATA_HOME=str(tmp_path / "xdg"), XDG_CONFIG_HOME=str(tmp_path / "c")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(tmp_path / "d"), "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "refusing to serve" in proc.stderr and "runtime.sandbox: none" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # Told explicitly, it serves, and says so in its info.
    s = start_server(tmp_path / "none", PATH=path, CLOUDFN_RUNTIME_SANDBOX="none")
    try:
        with s.client() as c:
            prot = c.get("/api/v1/info").json()["protections"]
        assert "unsandboxed" in prot["warning"], prot
        assert "runtime.sandbox is 'none'" in s.stderr()
    finally:
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(60)


def test_a_server_socket_is_never_inheritable(server):
    # What the workers would have inherited under uvloop: the listening socket of serve itself.
    fds = os.listdir(f"/proc/{server.proc.pid}/fd")
    for name in fds:
        try:
            target = os.readlink(f"/proc/{server.proc.pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            flags = Path(f"/proc/{server.proc.pid}/fdinfo/{name}").read_text().split("flags:")[1].split()[0]
            # O_CLOEXEC is 02000000 in fdinfo's octal flags
            assert int(flags, 8) & 0o2000000, (name, target, flags)
    assert httpx.get(f"{server.url}/api/health").status_code == 200


FAKE_FRAME = """import os, sys

def handler(event, context):
    body = b'{"type": "result", "ok": true, "result": "forged"}'
    os.write(int(sys.argv[2]), len(body).to_bytes(4, "big") + body)
    return "real"
"""


def test_a_forged_reply_frame_stops_its_worker_and_nothing_is_left(server):
    marker = MARKER + "-frame"
    _create(server, "forger", "python", FAKE_FRAME, environment={"MARKER": marker})
    for _ in range(3):  # the case: three calls left three 112 MB workers behind
        res = _invoke(server, "forger")
        assert not res["success"] and res["error_type"] == "WorkerCrashed", res
        assert "protocol" in res["error"], res["error"]
    left = [p for p in map(_proc, _descendants(server.proc.pid)) if p and p["env"].get("MARKER") == marker]
    assert left == [], [p["cmd"][:3] for p in left]
    _still_serving(server)


def test_after_delete_no_function_process_is_left(server):
    with server.client() as c:
        names = [f["name"] for f in c.get("/api/v1/functions").json()["functions"]]
        for name in names:
            assert c.delete(f"/api/v1/functions/{name}").status_code in (200, 204)
    procs = [p for p in map(_proc, _descendants(server.proc.pid)) if p]
    # What remains are the pre-started sandboxes, which hold no function (none of their variables).
    assert not [p for p in procs if "MARKER" in p["env"]], procs
    runners = [p for p in procs if "python_runner.py" in " ".join(p["cmd"]) or "node_runner.js" in " ".join(p["cmd"])]
    # (a Node.js one is a waiting shell named cloudfn-prewarm that binds node_runner.js: runtimes/shell_prewarm.py)
    assert all("prewarm" in p["cmd"] or "cloudfn-prewarm" in p["cmd"] for p in runners), [p["cmd"] for p in runners]


def test_function_folders_are_never_writable_by_others_whatever_the_umask(tmp_path, shared_cache):
    """Under a umask of 000 the executors' folders came out 0777: any local user could swap a
    function's code or a Go binary before a worker started."""
    s = start_server(tmp_path / "umask", cache=tmp_path / "cache", umask=0)
    try:
        _create(s, "um-py", "python", HELLO)
        assert _invoke(s, "um-py")["success"]
    finally:
        assert s.stop() == 0, s.stderr()
    loose = []
    # The installers' own caches are left out: inside the package cache, the sandbox user's and
    # 0700 (checked here), so no other user reaches in; uv makes its lock files 0666 whatever
    # the umask.
    package_cache = s.data_dir / "deps" / "cache"
    assert stat.S_IMODE(package_cache.stat().st_mode) == 0o700
    own_caches = {package_cache / "uv", package_cache / "npm"}
    for root in (s.data_dir, tmp_path / "cache"):
        for dirpath, dirs, files in os.walk(root):
            if Path(dirpath) in own_caches:
                dirs[:], files = [], []
            for name in (*dirs, *files):
                path = Path(dirpath) / name
                st = path.lstat()
                if not path.is_symlink() and st.st_mode & 0o022:
                    loose.append((str(path), oct(st.st_mode & 0o777)))
    assert loose == []
