"""Builds run like functions: sandboxed as the sandbox user, in a cgroup of their own, under
memory, CPU-time, process and wall-clock limits, with the seccomp filter. A build's input is the
function author's code, and a compiler can be driven to use gigabytes (1.6 KB of Go constants
took compile + link to 1.1 GB for 8 s), so it is treated as hostile like the function itself.

A build gets its folder read-write at /build and a cache folder read-write at /cache; nothing
else of the host but /usr and a few /etc files. Where there are no namespaces it runs on the
host's paths (the mounts mapped back), still in its cgroup and under its rlimits.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.filemodes import private_dir

from .buildlauncher import ReadyLauncher, umasked
from .cgroups import CgroupSet
from .sandbox import HostSandbox, Launch, Mount, WorkerSpec, seal_fds

BUILD_DIR = "/build"
CACHE_DIR = "/cache"
BUILD_PIDS = 512  # go build runs compile and link processes with a dozen threads each
BUILD_CPU_SECONDS = 300
BUILD_WALL_SECONDS = 300.0


@dataclass
class BuildLimits:
    memory_mb: int = 1024
    cpu_seconds: int = BUILD_CPU_SECONDS
    wall_seconds: float = BUILD_WALL_SECONDS
    pids: int = BUILD_PIDS
    setting: str = "runtime.build_memory"  # named in the message when memory runs out


@dataclass
class BuildResult:
    returncode: int | None
    output: str
    limit: str = ""  # which limit stopped it, in words for the user; "" when none did


def _own(path: Path, sandbox: HostSandbox) -> None:
    """Give a build folder to the sandbox user (it writes there), the rest of the host stays root's."""
    user = sandbox.user if sandbox.drops_uid else None
    if user is not None:
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)):
                os.lchown(name, user.uid, user.gid)


def reclaim(path: Path) -> None:
    """Back to root, before anything the build made is used (a binary the sandbox user owns
    could be changed by a later build)."""
    if os.geteuid() == 0:
        os.lchown(path, 0, 0)


def build_spec(
    sandbox: HostSandbox,
    argv: list[str],
    env: dict[str, str],
    build_dir: Path,
    cache_dir: Path,
    limits: BuildLimits,
    extra_mounts: list[Mount] | None = None,
    network: bool = False,
) -> WorkerSpec:
    """The sandbox of one build, as run_build launches it (and a launcher started ahead for it)."""
    mounts = [Mount(build_dir, BUILD_DIR, rw=True), Mount(cache_dir, CACHE_DIR, rw=True), *(extra_mounts or [])]
    spec = WorkerSpec(
        argv=argv,
        env=env,
        mounts=mounts,
        memory_mb=limits.memory_mb,
        cpu_seconds=limits.cpu_seconds,
        host_dir=build_dir,
        chdir=BUILD_DIR,
        network=network,
    )
    if not sandbox.bwrap:  # host paths: what the environment names (the command is mapped by the sandbox)
        spec.env = {k: sandbox.host_path(spec, v) for k, v in env.items()}
    return spec


async def run_build(
    sandbox: HostSandbox,
    argv: list[str],
    env: dict[str, str],
    build_dir: Path,
    cache_dir: Path,
    limits: BuildLimits,
    extra_mounts: list[Mount] | None = None,
    on_line: Callable[[str], None] | None = None,
    network: bool = False,
    launcher: ReadyLauncher | None = None,
    umask: int = -1,
) -> BuildResult:
    """Run one build command in `build_dir` (seen as /build). `argv` and `env` name paths as the
    sandbox sees them (/build, /cache). `on_line` gets each output line as it comes (dependency
    installs show their progress live); `network` only for installs that download. `launcher`:
    one started ahead for these limits (buildlauncher.py), taken over here either way. `umask`:
    the build's (-1: the platform's own, which may be 000)."""
    private_dir(cache_dir, 0o700)
    _own(build_dir, sandbox)
    user = sandbox.user if sandbox.drops_uid else None
    # One stat of a local folder, next to _own's walk: the set-up before a build is synchronous.
    if user is not None and cache_dir.stat().st_uid != user.uid:  # noqa: ASYNC240
        _own(cache_dir, sandbox)  # once: what builds add to it is theirs already
    spec = build_spec(sandbox, argv, env, build_dir, cache_dir, limits, extra_mounts, network)
    cg: CgroupSet | None = None
    if launcher is not None and launcher.fits(limits, umask):
        # The launcher has joined its cgroup and set the rlimits; one started as this very
        # build has its sandbox up and needs no command (any other build goes the plain way).
        go = launcher.started_as(spec)
        launch = Launch([], {}, None) if go else sandbox.command(spec, None)
        if launcher.hand_over(launch, go):
            proc, cg = launcher.proc, launcher.cg
        else:
            launch.close()
            await launcher.discard()
            launcher = None
    elif launcher is not None:
        await launcher.discard()
        launcher = None
    if launcher is None:
        cg = sandbox.cgroups.create(limits.memory_mb, pids_max=limits.pids) if sandbox.cgroups is not None else None
        launch = sandbox.command(spec, cg)
        launch.argv = umasked(launch.argv, umask)
        seal_fds()
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                env=launch.env,
                cwd=launch.cwd,
                pass_fds=launch.fds,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            if cg is not None:
                cg.remove()
            return BuildResult(None, "", f"the build could not start: {exc}")
        finally:
            launch.close()
    limit = ""
    try:
        try:
            if on_line is None:
                out, _ = await asyncio.wait_for(proc.communicate(), limits.wall_seconds)
            else:
                out = await asyncio.wait_for(_lines(proc, on_line), limits.wall_seconds)
        except TimeoutError:
            limit = f"it did not finish within its time limit of {limits.wall_seconds:g} s"
            out = b""
        finally:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                await proc.wait()
        rc = await proc.wait()  # it has exited by now: this only reads its status
        if not limit and rc != 0:
            sig = -rc if rc < 0 else (rc - 128 if rc > 128 and sandbox.bwrap else 0)
            text = out.decode(errors="replace").lower()
            if cg is not None and cg.oom_since_mark() or "out of memory" in text or "cannot allocate memory" in text:
                limit = f"it used more than its memory limit of {limits.memory_mb} MB ({limits.setting})"
            elif sig == signal.SIGXCPU or "cpu time limit exceeded" in text:
                limit = f"it used up its CPU time limit of {limits.cpu_seconds} s"
            elif cg is not None and cg.pids_limit_hit_since_mark():
                limit = f"it reached its limit of {limits.pids} processes and threads"
        return BuildResult(rc, out.decode(errors="replace"), limit)
    finally:
        if launcher is not None:  # its chain reopened these from /proc/<us>/fd: kept open until here
            launch.close()
        if cg is not None:
            await asyncio.to_thread(cg.remove)


MAX_OUTPUT = 256 * 1024  # of a streamed build's output kept for its error message (the tail)


async def _lines(proc: asyncio.subprocess.Process, on_line: Callable[[str], None]) -> bytes:
    kept = bytearray()
    assert proc.stdout is not None
    while True:
        try:
            line = await proc.stdout.readline()
        except ValueError:  # a line past the stream's limit: take what is buffered
            line = await proc.stdout.read(64 * 1024)
        if not line:
            break
        kept += line
        if len(kept) > MAX_OUTPUT:
            del kept[: len(kept) - MAX_OUTPUT]
        on_line(line.decode(errors="replace").rstrip("\r\n"))
    await proc.wait()
    return bytes(kept)
