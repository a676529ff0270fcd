"""A dependency install under a real `cloudfn serve` (as root) reaches no fd of the platform's:
its build backend stats every fd of every process it can see through /proc, and the test compares
those inode identities with the server's and the waiting build launcher's, read on the host."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from deps_packages import readable  # noqa: E402
from serverproc import start_server  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on a platform that runs as root")

FD_BACKEND = """
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

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(d, config_settings=None):
    report = {"all": _ids("/proc/[0-9]*/fd/*") + _ids("/proc/[0-9]*/task/*/fd/*"), "own": _ids("/proc/self/fd/*")}
    raise RuntimeError("FD-REPORT " + json.dumps(report) + " END")

build_wheel = prepare_metadata_for_build_wheel
"""


def _sdist(folder: Path, name: str) -> None:
    dist = f"{name}-1.0"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": FD_BACKEND,
    }
    with tarfile.open(folder / f"{dist}.tar.gz", "w:gz") as t:
        for p, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{dist}/{p}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _fd_ids(pid: int) -> set[tuple[int, int]]:
    """A host process's open files by identity, less device nodes (the sandbox's /dev binds the
    same /dev/null) and anonymous inodes (one inode shared by every epoll and eventfd)."""
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


def _launchers(server_pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd[0].endswith(b"/bash") and b"cloudfn-build" in cmd:
                out.append(int(name))
    return out


def test_a_source_build_reaches_no_fd_of_the_server_or_the_launcher(tmp_path, wheels, shared_cache):
    links = tmp_path / "links"
    links.mkdir()
    _sdist(links, "fdprobe")
    server = start_server(
        tmp_path / "srv",
        cache=shared_cache,
        CLOUDFN_RUNTIME_PYPI_INDEX_URL="none",
        CLOUDFN_RUNTIME_PYPI_FIND_LINKS=str(readable(links)),
        CLOUDFN_RUNTIME_PREWARM="0",
    )
    try:
        with server.client() as c:
            r = c.post(
                "/api/v1/functions",
                json={
                    "name": "fdprobe",
                    "runtime": "python",
                    "source_builds": True,
                    "code": "def handler(event, context):\n    return 1\n",
                    "dependencies": "fdprobe\n",
                },
            )
            assert r.status_code == 422 and "FD-REPORT" in r.json()["log"], r.text
        log = r.json()["log"]
        report = json.loads(log.rsplit("FD-REPORT ", 1)[1].split(" END", 1)[0])
        seen = {(d, i) for d, i, m in report["all"] if not stat.S_ISCHR(m)}
        own = {(d, i) for d, i, m in report["own"] if not stat.S_ISCHR(m)}
        assert own and own <= seen
        platform = _fd_ids(server.proc.pid)
        launchers = [p for p in _launchers(server.proc.pid) if p != server.proc.pid]
        for pid in launchers:
            platform |= _fd_ids(pid)
        # The build's own output pipe is read by the server: the only identity they may share.
        fifos = {(d, i) for d, i, m in report["own"] if stat.S_ISFIFO(m)}
        assert not (seen & platform) - fifos, f"an install reaches platform fds: {(seen & platform) - fifos}"
        assert not (seen & platform) - own, "an install reaches a platform fd through another process"
    finally:
        assert server.stop() == 0, server.stderr()
