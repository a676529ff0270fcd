"""The build launcher (core/executors/buildlauncher.py) waits as root in a build cgroup, fed by a
pipe only the platform holds. Attacked directly, as root under a real `cloudfn serve`: from inside
a function of each runtime, every fd of every process the sandbox user can see is compared, by
inode identity read on the host side, with the launcher's and the server's own fds; and the
sandbox uid can neither signal nor ptrace the launcher."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from fdprobe import PY_REPORT, assert_only_own_pipes, build_launchers, fd_ids, seen
from test_containment import _create, _invoke, _proc, fd_socket, server  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks are on a platform that runs as root")

# Each probe answers the (st_dev, st_ino, st_mode) of every fd it can reach through /proc, all
# processes' (`all`) and its own (`own`).
PY_PROBE = PY_REPORT + "\ndef handler(event, context):\n    return _report()\n"
JS_PROBE = """
const fs = require("fs");
function ids(dirs) {
  const out = [];
  for (const d of dirs) {
    let names = [];
    try { names = fs.readdirSync(d); } catch (e) { continue; }
    for (const n of names) {
      try { const st = fs.statSync(d + "/" + n); out.push([st.dev, st.ino, st.mode]); } catch (e) {}
    }
  }
  return out;
}
function handler(event, context) {
  const procs = fs.readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n));
  return {all: ids(procs.map((p) => "/proc/" + p + "/fd")), own: ids(["/proc/self/fd"])};
}
"""
GO_PROBE = """import ("path/filepath"; "syscall")

func ids(pattern string) [][]uint64 {
	out := [][]uint64{}
	paths, _ := filepath.Glob(pattern)
	for _, p := range paths {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			out = append(out, []uint64{uint64(st.Dev), st.Ino, uint64(st.Mode)})
		}
	}
	return out
}

func handler(event interface{}, context map[string]string) interface{} {
	return map[string]interface{}{"all": ids("/proc/[0-9]*/fd/*"), "own": ids("/proc/self/fd/*")}
}
"""
PROBES = {"python": PY_PROBE, "nodejs": JS_PROBE, "go": GO_PROBE}


@pytest.mark.parametrize("runtime", sorted(PROBES))
def test_no_function_reaches_the_launchers_pipe_or_any_platform_fd(server, fd_socket, runtime):  # noqa: F811
    if not server.info["runtimes"].get(runtime, {}).get("available"):
        pytest.skip(f"{runtime} is not installed")
    launchers = build_launchers(server.proc.pid)
    assert launchers, "no build launcher waits under the server (DependencyManager.prepare)"
    name = f"fdprobe-{runtime}"
    _create(server, name, runtime, PROBES[runtime])
    res = _invoke(server, name)
    assert res["success"], res
    launcher_ids = set().union(*(fd_ids(pid) for pid in launchers))
    assert launcher_ids, "the launcher holds no fd: the command pipe is gone"
    reached = seen(res["result"]["all"])
    assert not reached & launcher_ids, f"a function reaches the build launcher's fds: {reached & launcher_ids}"
    shared = assert_only_own_pipes(res["result"], fd_ids(server.proc.pid))
    assert shared, "the probe's own pipes to the server were not found by identity: the comparison sees nothing"
    st = os.fstat(fd_socket.fileno())
    assert (st.st_dev, st.st_ino) not in reached


PTRACE_ATTACH = 16
SIGNAL_AND_PTRACE = f"""
import ctypes, errno, os, sys
pid = int(sys.argv[1])
out = []
try:
    os.kill(pid, 0)
    out.append("signal: allowed")
except PermissionError:
    out.append("signal: EPERM")
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace({PTRACE_ATTACH}, pid, None, None) == 0:
    out.append("ptrace: allowed")
else:
    out.append("ptrace: " + errno.errorcode[ctypes.get_errno()])
print(" ".join(out))
"""


def test_the_sandbox_uid_can_neither_signal_nor_ptrace_the_launcher(server):  # noqa: F811
    launchers = build_launchers(server.proc.pid)
    assert launchers
    user = (
        pwd.getpwnam("cloudfn-sandbox")
        if "cloudfn-sandbox" in server.info["protections"]["uid_drop"]
        else pwd.getpwnam("nobody")
    )
    for pid in launchers:
        if _proc(pid)["uid"] != 0:
            _sandbox_ahead_is_out_of_reach(server, pid)
            continue
        assert _proc(pid)["uid"] == 0  # root: which is why no other uid may reach it
        out = subprocess.run(
            [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                sys.executable,
                "-I",
                "-c",
                SIGNAL_AND_PTRACE,
                str(pid),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.split() == ["signal:", "EPERM", "ptrace:", "EPERM"], (out.stdout, out.stderr)
        assert Path(f"/proc/{pid}").exists(), "the launcher died"


FROM_A_FUNCTION = (
    "import ctypes, errno, os\n"
    "def handler(event, context):\n"
    "    out = []\n"
    "    try:\n"
    "        os.kill(event['pid'], 0)\n"
    "        out.append('signal: allowed')\n"
    "    except OSError as exc:\n"
    "        out.append('signal: ' + errno.errorcode[exc.errno])\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    f"    if libc.ptrace({PTRACE_ATTACH}, event['pid'], None, None) == 0:\n"
    "        out.append('ptrace: allowed')\n"
    "    else:\n"
    "        out.append('ptrace: ' + errno.errorcode[ctypes.get_errno()])\n"
    "    return ' '.join(out)\n"
)


def _sandbox_ahead_is_out_of_reach(srv, pid: int) -> None:
    """The build sandbox started ahead for the next Python install waits as the sandbox user, in
    user and pid namespaces of its own: a function (the same uid, in its own) can neither see,
    signal nor ptrace it."""
    ns = {k: os.readlink(f"/proc/{pid}/ns/{k}") for k in ("pid", "user")}
    assert ns != {k: os.readlink(f"/proc/{srv.proc.pid}/ns/{k}") for k in ("pid", "user")}
    _create(srv, "reach-ahead", "python", FROM_A_FUNCTION)
    res = _invoke(srv, "reach-ahead", {"event": {"pid": pid}})
    assert res["success"], res
    assert "allowed" not in res["result"], res["result"]
    assert Path(f"/proc/{pid}").exists(), "the sandbox started ahead died"
