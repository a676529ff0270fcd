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

Started for one exact build (`spec`: a Python install's uv command, whose every argument, mount
and variable is known before the manifest is; its scratch folder is made ahead), the launcher
goes further ahead: the whole chain runs, and a shell inside the finished sandbox, as the
sandbox user, waits for one word on the pipe before it execs that fixed command. The bwrap
launches (namespaces, mounts, seccomp; ~10 ms of a ~13 ms launch here) then leave the install's
path too; what goes through its pipe is "go", never a command, and the build is handed over
only when the spec asked for is equal to the one started. Any other build (a Node.js install,
a source build) is served as a plain launcher serves it: outside the sandbox, the launching
shell that started that chain in the background waits on the command pipe too; a command
there closes the word's pipe (the waiting sandbox reads nothing and ends) and execs that build's
chain in the cgroup joined ahead, so those builds skip the idle join as before.

A launcher starts niced (`nice`): it is started right after an install, while the platform
still commits that install's function, and must not take the CPU from it on a two-core host.
Handing over puts every process of its cgroup back to normal priority before the build runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .sandbox import LAUNCH_ENV, NOFILE, Launch, WorkerSpec, seal_fds
from .spawn import BACKGROUND_NICE, NICE

if TYPE_CHECKING:
    from .builds import BuildLimits
    from .sandbox import CgroupSet, HostSandbox

GO = b"go\0"  # what tells a sandbox started ahead to exec its command
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
    spec: WorkerSpec | None = None  # started ahead as this very build (its sandbox is up)
    build_dir: Path | None = None  # that build's scratch folder, made ahead (its owner removes it)
    niced: bool = False
    go_pipe: int = -1  # the write end of the word's pipe of a sandbox started ahead (`spec`)
    umask: int = -1

    def fits(self, limits: BuildLimits, umask: int = -1) -> bool:
        try:
            same_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            same_loop = False
        return (
            same_loop
            and self.proc.returncode is None
            and (self.memory_mb, self.pids, self.cpu_seconds) == (limits.memory_mb, limits.pids, limits.cpu_seconds)
            and self.umask == umask
        )

    def started_as(self, spec: WorkerSpec) -> bool:
        """Whether its sandbox, waiting, is that of the build `spec` (it then needs only "go")."""
        return self.spec is not None and self.go_pipe >= 0 and self.spec == spec

    def hand_over(self, launch: Launch, go: bool = False) -> bool:
        """Send the chain to exec (the part of `launch` after its launching shell). False when it
        cannot go this way; the caller then discards this launcher and starts the usual way.
        `go` (only when started_as the build): the sandbox waiting ahead runs; `launch` is unused."""
        self.unnice()
        if go:
            try:
                os.write(self.go_pipe, GO)
            except OSError:
                return False
            finally:
                self.close_pipe()
            return True
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

    def unnice(self) -> None:
        """Normal priority for every thread of every process waiting in its cgroup (root may
        lower a niceness; the sandbox user may not), before the build, which inherits it."""
        if not self.niced:
            return
        self.niced = False
        # The cgroup's members, and the chain's process tree where there are no cgroups to list.
        for pid in {*_tree(self.proc.pid), *self.cg.members()}:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    os.setpriority(os.PRIO_PROCESS, int(tid), 0)
                except (OSError, ValueError):
                    pass

    def close_pipe(self) -> None:
        if self.go_pipe >= 0:  # first: the sandbox ahead then never runs, whatever comes next
            os.close(self.go_pipe)
            self.go_pipe = -1
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


async def start_launcher(
    sandbox: HostSandbox,
    limits: BuildLimits,
    spec: WorkerSpec | None = None,
    nice: bool = False,
    warm: list[str] | None = None,
    umask: int = -1,
) -> ReadyLauncher | None:
    """A launcher for builds with `limits`, or None where it would gain nothing (no bwrap or no
    cgroups: nothing to join ahead) or cannot start. With `spec` (run_build's, from build_spec),
    the sandbox of that one build, started up to its command's exec; `warm`, a command that
    sandbox runs (its output discarded, its failure ignored) before it is ready, such as filling
    a cache the build reads. `umask`: the builds' (run_build's)."""
    bash = shutil.which("bash", path=LAUNCH_ENV["PATH"])
    if not sandbox.bwrap or sandbox.cgroups is None or bash is None:
        return None
    cg = await asyncio.to_thread(sandbox.cgroups.create, limits.memory_mb, limits.pids)
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()  # one byte once the cgroups are joined: "ready" means joined
    # bash, for reading up to a NUL and for fd numbers past 9 in redirections (dash has neither).
    reader = (
        f"printf x >&{ready_w}; exec {ready_w}>&-; IFS= read -r -d '' cmd <&{r}; exec {r}<&-; "
        '[ -n "$cmd" ] && eval "$cmd"'
    )
    chain: tuple[int, ...] = ()
    go_r = go_w = -1
    if spec is None:
        plain = WorkerSpec(argv=[], env={}, mounts=[], memory_mb=limits.memory_mb, cpu_seconds=limits.cpu_seconds)
        argv = [sandbox.sh, "-c", sandbox._limits_script(plain, cg), "cloudfn-worker", bash, "-c", reader, ARGV0]
    else:
        go_r, go_w = os.pipe()
        try:
            argv, chain = _ahead(sandbox, spec, cg, bash, r, go_r, ready_w, warm)
        except (OSError, ValueError):
            for fd in (r, w, go_r, go_w, ready_r, ready_w):
                os.close(fd)
            await asyncio.to_thread(cg.remove)
            return None
    argv = umasked(argv, umask)
    niced = nice and NICE is not None
    if niced:
        argv = [str(NICE), "-n", str(BACKGROUND_NICE), *argv]
    seal_fds()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(LAUNCH_ENV),
            cwd="/",
            pass_fds=(r, ready_w, *chain, *((go_r,) if go_r >= 0 else ())),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        os.close(w)
        os.close(ready_r)
        if go_w >= 0:
            os.close(go_w)
        await asyncio.to_thread(cg.remove)
        return None
    finally:
        for fd in (r, ready_w, *chain, *((go_r,) if go_r >= 0 else ())):
            os.close(fd)
    launcher = ReadyLauncher(
        proc,
        cg,
        w,
        limits.memory_mb,
        limits.pids,
        limits.cpu_seconds,
        asyncio.get_running_loop(),
        spec,
        niced=niced,
        go_pipe=go_w,
        umask=umask,
    )
    try:
        joined = await asyncio.to_thread(os.read, ready_r, 1)
    finally:
        os.close(ready_r)
    if joined != b"x":  # it could not join (the cgroup went away) or was killed
        await launcher.discard()
        return None
    return launcher


def umasked(argv: list[str], umask: int) -> list[str]:
    """A launching shell's argv (`sh -c SCRIPT ...`) that sets `umask` first (-1: unchanged).
    In the shell, not as Popen's umask=: uvloop's subprocesses take no such argument."""
    if umask < 0:
        return argv
    if argv[1:2] != ["-c"]:
        raise ValueError("not a launching shell")
    return [argv[0], "-c", f"umask {umask:03o} && {argv[2]}", *argv[3:]]


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (all waiting: nothing forks meanwhile)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def _ahead(
    sandbox: HostSandbox,
    spec: WorkerSpec,
    cg: CgroupSet,
    bash: str,
    r: int,
    go_r: int,
    ready_w: int,
    warm: list[str] | None = None,
) -> tuple[list[str], tuple[int, ...]]:
    """The chain of `spec` with, as its command, a shell (the sandbox user's, inside) that says
    ready, closes every fd the chain left it but its output, waits for the word on `go_r` and
    execs the build's own command: the build gets only stdin, stdout and stderr, as a usual
    launch. That chain is started in the background by the launching shell (root's, in the
    cgroup, outside), which keeps only the command pipe `r`: a command there is another build,
    exec'd as a plain launcher does; nothing there (the word went, or the launcher is dropped)
    and it waits for the chain, whose status is then the build's."""
    chain = sandbox.command(dataclasses.replace(spec, argv=[]), cg)
    if chain.argv[3:4] != ["cloudfn-worker"]:
        raise ValueError("not a launching shell's chain")
    closes = " ".join(f"{fd}<&-" for fd in chain.fds)
    warming = f"{shlex.join(warm)} </dev/null >/dev/null 2>&1 {ready_w}>&- {go_r}<&-; " if warm else ""
    waits = (
        (f"exec {closes}; " if closes else "") + warming + f"printf x >&{ready_w}; exec {ready_w}>&-; "
        f"IFS= read -r -d '' go <&{go_r}; exec {go_r}<&-; "
        f'[ "$go" = go ] && exec {shlex.join(spec.argv)}'
    )
    # Through env: bash would add SHLVL and _ to the root chain's fixed environment.
    env = shutil.which("env", path=LAUNCH_ENV["PATH"]) or "/usr/bin/env"
    launching = (
        f'{env} -u _ -u SHLVL "$@" {r}<&- & exec {ready_w}>&- {go_r}<&-{" " + closes if closes else ""}; '
        f"IFS= read -r -d '' cmd <&{r}; exec {r}<&-; "
        '[ -n "$cmd" ] && eval "$cmd"; wait $!'
    )
    head, rest = chain.argv[:4], chain.argv[4:]
    return [*head, bash, "-c", launching, ARGV0, *rest, bash, "-c", waits, ARGV0], chain.fds
