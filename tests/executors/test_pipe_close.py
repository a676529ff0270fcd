"""A worker's pipes are closed exactly once, under uvloop (the server's loop) and asyncio's own.

uvloop closes a pipe transport's fd through libuv and then closes the file object it was given
as well. With another thread opening a file between the two (the cgroup kills run in threads),
the second close took that thread's fd: closing a server with 50 idle workers failed with EBADF
in CgroupSet.members once in three runs. Here the other thread's open is made certain: the file
object's flush, which runs inside its close before close(2), puts /dev/null on the number libuv
has just freed, and the test checks that it is still open afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable

import pytest
import uvloop

from core.executors import spawn

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


class Squatter(spawn.FileIO):
    """A file object that, when closed after its fd is gone, lets "another thread" take the number."""

    taken: list[int] = []

    def flush(self) -> None:
        fd = self.fileno()
        try:
            os.fstat(fd)
        except OSError:  # freed already (by libuv): another thread's open lands on it now
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # the lowest free number
            if devnull != fd:
                os.dup2(devnull, fd, inheritable=False)
                os.close(devnull)
            self.taken.append(fd)
        super().flush()


async def _open_and_close() -> tuple[int, int]:
    """A read pipe and a write pipe connected the way a worker's are, then closed; their fds."""
    loop = asyncio.get_running_loop()
    lost: list[asyncio.Future[None]] = []

    class Proto(asyncio.Protocol):
        def __init__(self) -> None:
            self.done: asyncio.Future[None] = loop.create_future()
            lost.append(self.done)

        def connection_lost(self, exc: Exception | None) -> None:
            self.done.set_result(None)

    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    reader, _ = await loop.connect_read_pipe(Proto, spawn.pipe_file(r1, "rb", loop))
    writer, _ = await loop.connect_write_pipe(Proto, spawn.pipe_file(w2, "wb", loop))
    reader.close()
    writer.close()
    await asyncio.gather(*lost)
    await asyncio.sleep(0)  # the transports close their fds right after connection_lost
    os.close(w1)
    os.close(r2)
    return r1, w2


@pytest.mark.parametrize("kind", LOOPS)
def test_a_pipe_transport_never_closes_a_number_it_no_longer_owns(kind, monkeypatch):
    monkeypatch.setattr(spawn, "FileIO", Squatter)
    Squatter.taken = []
    with asyncio.Runner(loop_factory=LOOPS[kind]) as runner:
        fds = runner.run(_open_and_close())
    try:
        for fd in Squatter.taken:  # what the other thread opened is still open, and still its own
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                pytest.fail(f"fd {fd}, opened by another thread on the number the pipe had, was closed by the pipe")
            assert stat.S_ISCHR(mode), f"fd {fd} is no longer the other thread's /dev/null"
        for fd in set(fds) - set(Squatter.taken):  # and the pipe itself is closed: nothing leaks
            with pytest.raises(OSError):
                os.fstat(fd)
    finally:
        for fd in Squatter.taken:
            with contextlib.suppress(OSError):
                os.close(fd)
    if kind == "uvloop":  # the case that matters happened: libuv closed first, then the file object
        assert sorted(Squatter.taken) == sorted(fds)
