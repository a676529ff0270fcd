"""A build's launching shell, started ahead of time: already in the build's own fresh cgroup
(memory and pids limits) and under its rlimits, waiting for the command it is to exec.

Why: on a cgroup v1 kernel the first cgroup migration after an idle moment waits for an RCU
grace period (cgroup_threadgroup_rwsem), 12-14 ms measured here, about a third of what a Python
install paid over bare uv. A per-build cgroup needs one migration per build (v1 has no
CLONE_INTO_CGROUP), so the join is done before the build is asked for, as the pre-started
function sandboxes do (prewarm.py); the build itself then starts at bwrap.

Isolation is unchanged: the launcher is the same root shell with the same fixed environment,
cgroup and rlimits as run_build's own, and it execs the same chain (bwrap, setpriv, bwrap) that
HostSandbox.command builds. The command comes through a pipe whose write end only this process
holds; the chain's fds (the bwrap arguments, the seccomp filter: memfds made after the launcher
started) are reopened from this process's /proc/PID/fd, which root can read, and stay open here
until the build ends. If this process dies, the pipe ends, the launcher reads nothing and exits.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sandbox import LAUNCH_ENV, NOFILE, Launch, WorkerSpec, seal_fds

if TYPE_CHECKING:
    from .builds import BuildLimits
    from .sandbox import CgroupSet, HostSandbox

MAX_COMMAND = 48 * 1024  # below a pipe's buffer, so handing over never blocks; larger goes the usual way
ARGV0 = "cloudfn-build"


@dataclass
class ReadyLauncher:
    proc: asyncio.subprocess.Process
    cg: CgroupSet
    pipe: int  # the write end of the command pipe
    memory_mb: int
    pids: int
    cpu_seconds: int
    loop: asyncio.AbstractEventLoop

    def fits(self, limits: BuildLimits) -> bool:
        try:
            same_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            same_loop = False
        return (
            same_loop
            and self.proc.returncode is None
            and (self.memory_mb, self.pids, self.cpu_seconds) == (limits.memory_mb, limits.pids, limits.cpu_seconds)
        )

    def hand_over(self, launch: Launch) -> bool:
        """Send the chain to exec (the part of `launch` after its launching shell). False when it
        cannot go this way; the caller then discards this launcher and starts the usual way."""
        # The launcher's open-files limit is set already: it can reopen an fd only below it.
        if launch.argv[3:4] != ["cloudfn-worker"] or launch.cwd != "/" or any(fd >= NOFILE for fd in launch.fds):
            self.close_pipe()
            return False
        me = os.getpid()
        opens = " ".join(f"{fd}</proc/{me}/fd/{fd}" for fd in launch.fds)
        text = (f"exec {opens} && " if opens else "") + "exec " + shlex.join(launch.argv[4:])
        data = text.encode() + b"\0"
        if b"\0" in data[:-1] or len(data) > MAX_COMMAND:
            return False
        try:
            os.write(self.pipe, data)
        except OSError:
            return False
        finally:
            self.close_pipe()
        return True

    def close_pipe(self) -> None:
        if self.pipe >= 0:
            os.close(self.pipe)
            self.pipe = -1

    async def discard(self) -> None:
        self.close_pipe()  # an unused launcher reads nothing and exits
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        await self.proc.wait()
        await asyncio.to_thread(self.cg.remove)


async def start_launcher(sandbox: HostSandbox, limits: BuildLimits) -> ReadyLauncher | None:
    """A launcher for builds with `limits`, or None where it would gain nothing (no bwrap or no
    cgroups: nothing to join ahead) or cannot start."""
    bash = shutil.which("bash", path=LAUNCH_ENV["PATH"])
    if not sandbox.bwrap or sandbox.cgroups is None or bash is None:
        return None
    cg = await asyncio.to_thread(sandbox.cgroups.create, limits.memory_mb, limits.pids)
    spec = WorkerSpec(argv=[], env={}, mounts=[], memory_mb=limits.memory_mb, cpu_seconds=limits.cpu_seconds)
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()  # one byte once the cgroups are joined: "ready" means joined
    # bash, for reading up to a NUL and for fd numbers past 9 in redirections (dash has neither).
    reader = (
        f"printf x >&{ready_w}; exec {ready_w}>&-; IFS= read -r -d '' cmd <&{r}; exec {r}<&-; "
        '[ -n "$cmd" ] && eval "$cmd"'
    )
    argv = [sandbox.sh, "-c", sandbox._limits_script(spec, cg), "cloudfn-worker", bash, "-c", reader, ARGV0]
    seal_fds()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(LAUNCH_ENV),
            cwd="/",
            pass_fds=(r, ready_w),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        os.close(w)
        os.close(ready_r)
        await asyncio.to_thread(cg.remove)
        return None
    finally:
        os.close(r)
        os.close(ready_w)
    launcher = ReadyLauncher(proc, cg, w, limits.memory_mb, limits.pids, limits.cpu_seconds, asyncio.get_running_loop())
    try:
        joined = await asyncio.to_thread(os.read, ready_r, 1)
    finally:
        os.close(ready_r)
    if joined != b"x":  # it could not join (the cgroup went away) or was killed
        await launcher.discard()
        return None
    return launcher
