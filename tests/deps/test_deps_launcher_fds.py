"""A dependency install under a real `cloudfn serve` (as root) reaches no fd of the platform's:
its build backend stats every fd of every process it can see through /proc, and the test compares
those inode identities with the server's and the waiting build launcher's, read on the host."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from deps_packages import readable  # noqa: E402
from fdprobe import PY_REPORT, assert_only_own_pipes, build_launchers, fd_ids  # noqa: E402
from serverproc import start_server  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on a platform that runs as root")

FD_BACKEND = (
    PY_REPORT
    + """
def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(d, config_settings=None):
    raise RuntimeError("FD-REPORT " + json.dumps(_report()) + " END")

build_wheel = prepare_metadata_for_build_wheel
"""
)


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
        platform = fd_ids(server.proc.pid)
        for pid in build_launchers(server.proc.pid):
            platform |= fd_ids(pid)
        # The build's own output pipe is read by the server: the only identity they may share.
        assert_only_own_pipes(report, platform)
    finally:
        assert server.stop() == 0, server.stderr()
