"""Starting a worker's launch chain without stalling the event loop.

uvloop's subprocess_exec forks through libuv: the whole server's page tables are copied on the
loop thread, and libuv then blocks until the child has exec'd. Measured here with 300 MB
resident: 8-15 ms per spawn with the loop stopped (1.5 ms with a small process), and under a
burst's load 80-190 ms per `await` of it. Every request in flight waits that long, which is
where the first seconds' p99 tail came from while workers were added. `subprocess.Popen` takes
vfork (CPython >= 3.10, no preexec_fn): 0.2-1.5 ms at any size. The exit is watched through a
pidfd on the loop, so neither asyncio's child watcher nor a thread per worker is involved.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from io import FileIO

# Background starts run under `nice` (Worker.nice): resolved once, as the launch chain's programs are.
BACKGROUND_NICE = 10
_nice = shutil.which("nice")
NICE = os.path.realpath(_nice) if _nice else None


class ChildProcess:
    """The part of asyncio.subprocess.Process the workers use: pid, returncode, wait()."""

    __slots__ = ("pid", "returncode", "_popen", "_exited", "_pidfd")

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop):
        self._popen = popen  # kept: dropped while running, Popen.__del__ would hand it to subprocess's reaper
        self.pid = popen.pid
        self.returncode: int | None = None
        self._exited = loop.create_future()
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        if self._pidfd < 0:
            return  # reaped already
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the code is lost, the process is gone
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return  # readable before the exit is collectable: wait for the next wake-up
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1  # a number closed is never closed again: by then it may be another thread's
        # As asyncio reports it: a signal's death is -signal.
        self.returncode = self._popen.returncode = os.waitstatus_to_exitcode(status)
        if not self._exited.done():
            self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


def spawn(
    argv: list[str], *, stdout: int, stderr: int, pass_fds: tuple[int, ...], env: dict[str, str], cwd: str | None
) -> ChildProcess:
    """Start `argv` in a new session with stdin from /dev/null and no fd but `pass_fds` (and
    stdout/stderr) open in it. Raises OSError as Popen does."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=pass_fds,
        env=env,
        cwd=cwd,
        close_fds=True,
        start_new_session=True,
    )
    return ChildProcess(popen, asyncio.get_running_loop())


def pipe_file(fd: int, mode: str, loop: asyncio.AbstractEventLoop) -> FileIO:
    """A file object for `loop.connect_read_pipe`/`connect_write_pipe` that closes `fd` once.

    uvloop (0.23, handles/handle.pyx `_close`) hands the fd to libuv, which closes it, and then
    closes the file object too, expecting EBADF. When another thread opened a file in between,
    that second close(2) closed the other thread's fd: with 50 workers killed together, a
    cgroup kill's pidfd went (EBADF in CgroupSet.members) once in three closes. Under uvloop
    the file object therefore does not own the fd; under asyncio's own loop, whose transport
    closes the fd through the file object, it does."""
    return FileIO(fd, mode, closefd=not type(loop).__module__.startswith("uvloop"))
