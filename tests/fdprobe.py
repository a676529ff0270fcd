"""The fd probe of the launcher-fd tests (tests/deps/test_deps_launcher_fds.py,
tests/reliability/test_launcher_fds.py): code run in the sandbox reports the identity of every fd
it can reach through /proc, and the host compares them with its own processes' fds. Identities
are (st_dev, st_ino): the same open file seen from both sides of the sandbox's namespaces."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Python source defining `_report()`: the (st_dev, st_ino, st_mode) of every fd of every process
# the sandbox can see (`all`) and of its own (`own`). Prepended to a handler or a build backend.
PY_REPORT = """
import glob, json, os

def _ids(pattern):
    out = []
    for p in glob.glob(pattern):
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.append([st.st_dev, st.st_ino, st.st_mode])
    return out

def _report():
    return {"all": _ids("/proc/[0-9]*/fd/*") + _ids("/proc/[0-9]*/task/*/fd/*"), "own": _ids("/proc/self/fd/*")}
"""


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def build_launchers(server_pid: int) -> list[int]:
    """The build launchers waiting under a server (core/executors/buildlauncher.py): the root
    shell whose last argument names it."""
    out = []
    for pid in descendants(server_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmd = [c for c in cmd if c]
        if len(cmd) > 1 and cmd[0].endswith(b"/bash") and cmd[-1] == b"cloudfn-build":
            out.append(pid)
    return out


def fd_ids(pid: int) -> set[tuple[int, int]]:
    """The identities of a host process's open files. Left out: device nodes (/dev/null is the same
    node inside the sandbox's /dev by design, and holds nothing) and anonymous inodes (every
    epoll, eventfd and timerfd of every process shares one inode: identity says nothing there)."""
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            st = os.stat(fd)
            anon = os.readlink(fd).startswith("anon_inode:")
        except OSError:
            continue
        if not stat.S_ISCHR(st.st_mode) and not anon:
            out.add((st.st_dev, st.st_ino))
    return out


def seen(rows: list[list[int]]) -> set[tuple[int, int]]:
    """A probe's rows as identities, less device nodes (as fd_ids)."""
    return {(int(d), int(i)) for d, i, m in rows if not stat.S_ISCHR(int(m))}


def assert_only_own_pipes(report: dict[str, list[list[int]]], platform: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The probe reaches no fd of `platform` but its own exchange with the server: pipes it holds
    itself, never one through another process, never a socket or a file. Returns those shared."""
    all_seen, own = seen(report["all"]), seen(report["own"])
    assert own and own <= all_seen, "the probe saw not even its own fds"
    leaked = (all_seen & platform) - own
    assert not leaked, f"the sandbox reaches platform fds that are not its own pipes: {leaked}"
    shared = own & platform
    fifos = {(int(d), int(i)) for d, i, m in report["own"] if stat.S_ISFIFO(int(m))}
    assert shared <= fifos, f"the sandbox holds a platform socket or file: {shared - fifos}"
    return shared
