"""The data directory is private: its stores (function code, environment values), history,
logs, token and lock files are 0600 in 0700 folders whatever the umask, and looser modes left
from before are fixed at start. The workers' function folders stay reachable by the sandbox's
unprivileged uid."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.config import load_config
from core.local import LocalPlatform
from core.server.runner import load_or_create_token

REPO = Path(__file__).resolve().parents[2]
PY = "def handler(event, context):\n    return {'secret': 'in the history'}\n"
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def modes_outside(data_dir: Path, work_dir: Path) -> dict[str, int]:
    """Modes of everything in the data dir but the workers' folders and what the installers
    write inside their own caches (deps/cache/uv and npm, themselves listed: in the sandbox
    user's 0700 package cache, so no other user reaches in; uv makes its lock files 0666
    whatever the umask). The package cache's other folders (targets) are listed."""
    found = {}
    own_caches = {data_dir / "deps" / "cache" / name for name in ("uv", "npm")}
    for root, dirs, files in os.walk(data_dir):
        if Path(root) in own_caches:
            dirs[:], files = [], []
        dirs[:] = [d for d in dirs if Path(root) / d != work_dir]
        for name in [*dirs, *files]:
            p = Path(root) / name
            found[str(p.relative_to(data_dir))] = mode(p)
    return found


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_(value: int) -> None:
        os.umask(value)

    yield set_
    os.umask(old)


async def use_everything(config) -> None:
    """Write every kind of file the platform keeps: registry, code files, alerts, history,
    logs, the server token."""
    p = LocalPlatform(config, install_examples=False)
    try:
        await p.create_function({"name": "f", "runtime": "python", "code": PY, "environment": {"KEY": "v"}})
        await p.update_function("f", {"timeout": 9, "code": PY + "# v2\n"})
        assert (await p.invoke("f", {})).success
        await p.create_alert_rule({"name": "r", "metric": "error_rate", "threshold": 0.5})
    finally:
        await p.close()
    load_or_create_token(config.data_dir)


@pytest.mark.parametrize("mask", [0o022, 0o000])
async def test_every_store_file_is_0600_in_0700_folders_whatever_the_umask(data_dir, umask, mask):
    umask(mask)
    config = load_config(flags={"storage.data_dir": str(data_dir)})
    await use_everything(config)
    found = modes_outside(data_dir, config.work_dir)
    for expected in (
        "registry.json",
        "alerts.json",
        "server.token",
        "cloudfn.lock",
        "registry.json.lock",
        "history",
        "logs",
        "logs/cloudfn.jsonl",
        "versions",
    ):
        assert expected in found, f"{expected} was not written: the test would not cover it"
    assert any(k.startswith("history/segment-") for k in found)
    assert sum(k.startswith("versions/") for k in found) >= 3  # a function folder and two files
    loose = {
        k: oct(m) for k, m in found.items() if m != (0o700 if stat.S_ISDIR(os.lstat(data_dir / k).st_mode) else 0o600)
    }
    assert loose == {}
    # The workers' folders are under it (the default), and still it is private: the sandbox's
    # files are bound by root.
    assert mode(data_dir) == 0o700


async def test_with_the_work_dir_elsewhere_the_data_dir_is_0700(data_dir, tmp_path, umask):
    umask(0o000)
    config = load_config(
        flags={"storage.data_dir": str(data_dir)}, environ={"CLOUDFN_RUNTIME_WORK_DIR": str(tmp_path / "work")}
    )
    p = LocalPlatform(config, install_examples=False)
    await p.close()
    assert mode(data_dir) == 0o700


def cloudfn(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(data_dir), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs setpriv and root")
def test_loose_modes_from_before_are_fixed_at_start_with_a_warning():
    # Under a folder any user can pass through (pytest's own temp folder is 0700), so that what
    # uid 65534 can read depends only on the data directory's modes.
    base = Path(tempfile.mkdtemp(prefix="cloudfn-modes-"))
    try:
        os.chmod(base, 0o755)
        check_loose_modes_are_fixed(base / "data")
    finally:
        shutil.rmtree(base)


def check_loose_modes_are_fixed(data_dir: Path) -> None:
    assert cloudfn(data_dir, "invoke", "hello-python").returncode == 0
    config = load_config(flags={"storage.data_dir": str(data_dir)})
    # As an older cloudfn left them under umask 022.
    for root, dirs, files in os.walk(data_dir):
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            os.chmod(Path(root) / f, 0o644)
    os.chmod(data_dir, 0o755)
    registry = data_dir / "registry.json"
    seg = next((data_dir / "history").glob("segment-*.jsonl"))
    assert subprocess.run([*NOBODY, "cat", str(registry)], capture_output=True).returncode == 0  # the attack

    r = cloudfn(data_dir, "list")
    assert r.returncode == 0, r.stderr
    assert f"{registry} was open to other users (mode 644); made it 600" in r.stderr
    assert f"{data_dir / 'history'} was open to other users (mode 755); made it 700" in r.stderr
    for secret in (registry, seg, data_dir / "alerts.json", data_dir / "logs" / "cloudfn.jsonl"):
        denied = subprocess.run([*NOBODY, "cat", str(secret)], capture_output=True, text=True)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, secret
    denied = subprocess.run([*NOBODY, "ls", str(data_dir)], capture_output=True, text=True)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    # Not even the sandbox's uid passes through it: functions still run (their files are bound in).
    code = next(config.work_dir.glob("*/v*/handler.py"))
    assert subprocess.run([*NOBODY, "cat", str(code)], capture_output=True).returncode != 0
    assert cloudfn(data_dir, "invoke", "hello-python").returncode == 0
    r = cloudfn(data_dir, "list")  # fixed once: no warning the second time
    assert "open to other users" not in r.stderr
