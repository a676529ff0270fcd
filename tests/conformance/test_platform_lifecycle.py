"""PlatformAPI's lifecycle (start, close, `async with`) on every implementation, and every
implementation held to the protocol by the type checker: LocalPlatform, RemotePlatform and the
console tests' FakePlatform."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.api import PlatformAPI
from core.errors import Unavailable
from core.local import LocalPlatform
from core.remote import RemotePlatform

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "console"))
from console_fakes import FakePlatform  # noqa: E402

IMPLEMENTATIONS = ["core/local.py", "core/remote.py", "tests/console/console_fakes.py"]
# What mypy says when a class breaks its protocol: a method's signature, or one left out.
CONTRACT_CODES = {"override", "abstract", "empty-body", "misc"}


def test_every_implementation_keeps_the_protocols_signatures(tmp_path):
    missing = tmp_path / "instantiate.py"
    missing.write_text(
        "from core.local import LocalPlatform\nfrom core.remote import RemotePlatform\n"
        "from console_fakes import FakePlatform\n\n"
        "def all_of_them() -> None:\n"
        "    LocalPlatform(None)  # type: ignore[arg-type]\n"
        "    RemotePlatform('http://127.0.0.1:1')\n"
        "    FakePlatform()\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            *IMPLEMENTATIONS,
            str(missing),
        ],
        cwd=REPO,
        env={"MYPYPATH": str(REPO / "tests" / "console"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    broken = [
        line
        for line in out.stdout.splitlines()
        if (m := re.search(r"\[([\w-]+)\]$", line)) and m.group(1) in CONTRACT_CODES
    ]
    assert not broken, "\n".join(broken)
    assert out.returncode in (0, 1), out.stderr  # 1: other findings, which scripts/check reports


def test_the_type_check_catches_a_broken_implementation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import Any\nfrom console_fakes import FakePlatform\nfrom core.api import PlatformAPI\n\n"
        "class Drifted(FakePlatform):\n"
        "    async def health(self, strict: bool) -> dict[str, Any]:\n"
        "        return {}\n\n"
        "class Partial(PlatformAPI):\n"
        "    async def health(self) -> dict[str, Any]:\n"
        "        return {}\n\n"
        "def make() -> None:\n"
        "    Partial()\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(bad),
        ],
        cwd=REPO,
        env={"MYPYPATH": str(REPO / "tests" / "console"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert '"health" incompatible with supertype' in out.stdout, out.stdout
    assert 'Cannot instantiate abstract class "Partial"' in out.stdout, out.stdout


@pytest.mark.parametrize("cls", [LocalPlatform, RemotePlatform, FakePlatform])
def test_each_implements_the_protocol(cls):
    assert issubclass(cls, PlatformAPI)
    for name in ("start", "close", "__aenter__", "__aexit__"):
        assert callable(getattr(cls, name))


async def test_a_local_platform_starts_and_closes_with_async_with(config):
    async with LocalPlatform(config, install_examples=False) as platform:
        assert platform._started and platform._tasks and not any(t.done() for t in platform._tasks)
        tasks = list(platform._tasks)
    assert all(t.done() for t in tasks)
    # Closed means the data directory is free: a second owner opens it.
    async with LocalPlatform(config, install_examples=False) as again:
        assert (await again.health())["status"] == "ok"


async def test_close_runs_when_the_block_raises(config):
    with pytest.raises(RuntimeError, match="boom"):
        async with LocalPlatform(config, install_examples=False) as platform:
            raise RuntimeError("boom")
    assert platform._closed
    await platform.close()  # again: nothing happens


async def test_a_remote_platform_works_in_async_with_and_is_closed_after(served):
    async with RemotePlatform(served.url, served.token) as platform:
        assert (await platform.health())["status"] == "ok"
    assert platform._client.is_closed
    with pytest.raises(Unavailable):
        await platform.health()


async def test_the_fake_starts_and_closes_like_the_others():
    async with FakePlatform() as platform:
        assert platform.started and not platform.closed
    assert platform.closed
