"""A build sandbox started ahead as one exact build (core/executors/buildlauncher.py): up to its
command's exec, as the sandbox user, niced while it waits; it runs that command only when
told, at normal priority, and never another one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.executors.buildlauncher import start_launcher
from core.executors.builds import BuildLimits, build_spec, run_build
from core.executors.sandbox import HostSandbox

SANDBOX = HostSandbox()
pytestmark = pytest.mark.skipif(
    not SANDBOX.bwrap or SANDBOX.cgroups is None, reason="no bwrap or cgroups: nothing is started ahead"
)
# What the build reports: who it runs as, its niceness, its open fds, and a mark that it ran.
PROBE = ["/bin/sh", "-c", "id -u; nice; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; touch /build/ran"]
ENV = {"PATH": "/usr/bin:/bin"}


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


@pytest.fixture
def sandbox():
    """Its own: a platform closed by an earlier test removes this process's cgroup folders, and a
    sandbox made before then would start builds with no limits."""
    return HostSandbox()


@pytest.fixture
def dirs(tmp_path):
    os.chmod(tmp_path, 0o755)
    build, cache = tmp_path / "build", tmp_path / "cache"
    build.mkdir(mode=0o755)
    return build, cache


async def test_a_build_started_ahead_runs_its_command_when_told_unniced_with_only_its_output(dirs, sandbox):
    build, cache = dirs
    limits = BuildLimits(memory_mb=256)
    cache.mkdir(mode=0o700)
    spec = build_spec(sandbox, PROBE, ENV, build, cache, limits)
    launcher = await start_launcher(sandbox, limits, spec, nice=True)
    assert launcher is not None and launcher.spec == spec
    waiting = [launcher.proc.pid, *_tree(launcher.proc.pid)]
    assert all(os.getpriority(os.PRIO_PROCESS, p) == 10 for p in waiting)  # waits in the background
    assert not (build / "ran").exists()  # up to the exec, not past it
    result = await run_build(sandbox, PROBE, ENV, build, cache, limits, launcher=launcher)
    assert result.returncode == 0, result.output
    uid, nice, fds = result.output.splitlines()[:3]
    assert uid != "0" and nice == "0"  # the sandbox user, back at normal priority
    assert fds.split() == ["0", "1", "2", "3"]  # stdin, stdout, stderr (and ls's own listing)
    assert (build / "ran").exists()
    assert launcher.proc.returncode is not None
    assert launcher.cg.memory is None or not launcher.cg.memory.exists()


async def test_another_build_runs_in_the_cgroup_joined_ahead_and_the_armed_one_never_runs(dirs, tmp_path, sandbox):
    build, cache = dirs
    limits = BuildLimits(pids=24)
    cache.mkdir(mode=0o700)
    armed = build_spec(sandbox, PROBE, ENV, build, cache, limits)
    launcher = await start_launcher(sandbox, limits, armed, nice=True)
    assert launcher is not None
    # Another build (a Node.js install, a source build) in its own folder: it runs as the
    # sandbox user, at normal priority, with only its output fds, under the process limit of the
    # cgroup joined ahead (it starts 40 processes that last; a memory limit would not show on a
    # host with swap).
    other_dir = tmp_path / "other"
    other_dir.mkdir(mode=0o755)
    many = "for i in $(seq 40); do sleep 2 & done; wait"
    other = ["/bin/sh", "-c", PROBE[2].replace("touch /build/ran", many)]
    other_spec = build_spec(sandbox, other, ENV, other_dir, cache, limits)
    assert launcher.fits(limits) and not launcher.started_as(other_spec)
    result = await run_build(sandbox, other, ENV, other_dir, cache, limits, launcher=launcher)
    uid, nice, fds = result.output.splitlines()[:3]
    assert uid != "0" and nice == "0"
    assert fds.split() == ["0", "1", "2", "3"]
    assert result.returncode != 0 and "limit of 24 processes" in result.limit, result
    assert launcher.proc.returncode == result.returncode  # the launcher ran it (not discarded)
    assert not (build / "ran").exists()  # the armed command never ran
    assert launcher.cg.memory is None or not launcher.cg.memory.exists()  # emptied and removed


async def test_a_build_started_ahead_never_runs_when_discarded(dirs, sandbox):
    build, cache = dirs
    limits = BuildLimits()
    cache.mkdir(mode=0o700)
    armed = build_spec(sandbox, PROBE, ENV, build, cache, limits)
    # Dropped without the word: the command never runs.
    launcher = await start_launcher(sandbox, limits, armed)
    assert launcher is not None
    await launcher.discard()
    assert not (build / "ran").exists()
