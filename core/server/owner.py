"""The owner's private socket: one owner per data directory, many users.

The process that owns a data directory (console, `serve`, a CLI command that changes things)
serves the same FastAPI app as `cloudfn serve` on `<data_dir>/cloudfn.sock`, and every other
`cloudfn` on that directory attaches to it through `RemotePlatform`, as the Docker CLI does with
its daemon. No token: the socket is 0600 in a 0700 directory owned by the owner's uid, and a
unix socket is never reachable over TCP. A socket left by a crashed owner refuses connections:
the next owner (who holds the lock, so no live owner can be serving) replaces it. A symlink at
the socket path is refused on both sides: it could lead a client, or the owner's files, to a
place someone else chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.errors import Unavailable

if TYPE_CHECKING:  # imported on a thread at run time (see OwnerSocket)
    from core.api import PlatformAPI
    from core.server._uvicorn_compat import QuietServer
    from core.server.app import ServerState

log = logging.getLogger("cloudfn.server")
SOCKET_FILE = "cloudfn.sock"
SOCKET_MODE = 0o600
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the NUL
DRAIN_GRACE = 30.0  # seconds an owner that stops waits for the requests of attached processes


class SocketUnavailable(Unavailable):
    """The file system of the data directory cannot hold a socket (some network and shared
    folders): the owner goes on without one, and other processes are told who holds it."""


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_FILE


class ShortPath:
    """A path to the socket that fits sun_path: the path itself, or, for a long data directory
    (pytest's temporary folders pass 108 bytes), the same file through /proc/self/fd of an open
    handle on its folder. Keep the object alive while the path is in use."""

    def __init__(self, path: Path):
        self.path = path
        self._dir_fd: int | None = None
        text = str(path)
        if len(os.fsencode(text)) <= _SUN_PATH_MAX:
            self.text = text
        else:
            self._dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self.text = f"/proc/self/fd/{self._dir_fd}/{path.name}"

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __del__(self) -> None:
        self.close()


def refuse_symlink(path: Path) -> os.stat_result | None:
    """The socket path's own status (None when absent); a symlink there is an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise Unavailable(
            f"cannot look into {path.parent}: permission denied. It is another user's data "
            "directory; use one of your own (--data-dir)."
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise Unavailable(
            f"{path} is a symbolic link, not cloudfn's socket: refusing to follow it (someone may "
            f"have planted it to capture requests). Remove it and check who can write {path.parent}."
        )
    return st


def probe(path: Path) -> str:
    """ "live" (an owner answers), "stale" (a socket nobody listens on), "absent", or raises for
    a symlink or a socket owned by another user."""
    st = refuse_symlink(path)
    if st is None:
        return "absent"
    if not stat.S_ISSOCK(st.st_mode):
        raise Unavailable(f"{path} is not a socket (a {_kind(st)}); cloudfn keeps its owner's socket there. Remove it.")
    if st.st_uid != os.geteuid():
        raise Unavailable(
            f"the socket {path} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}): "
            "refusing to talk to another user's process. Use a data directory of your own."
        )
    short = ShortPath(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(short.text)
        return "live"
    except (ConnectionRefusedError, FileNotFoundError):
        return "stale"
    except PermissionError:
        raise Unavailable(
            f"cannot connect to the owner's socket {path}: permission denied. Run cloudfn as "
            "the user who owns the data directory."
        ) from None
    finally:
        s.close()
        short.close()


def _kind(st: os.stat_result) -> str:
    return "folder" if stat.S_ISDIR(st.st_mode) else "regular file" if stat.S_ISREG(st.st_mode) else "special file"


def bind_socket(path: Path) -> socket.socket:
    """A listening socket at `path`, mode 0600. Call only while holding the data directory's
    lock: whatever socket is there then is a dead owner's."""
    st = refuse_symlink(path)
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise Unavailable(
                f"{path} is not a socket (a {_kind(st)}); cloudfn needs that name for its owner's socket. Remove it."
            )
        os.unlink(path)  # unlink does not follow links, and a link was refused above
        log.info("replaced a stale socket at %s (its owner is gone)", path)
    short = ShortPath(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        # The folder is 0700, so nobody else can reach the socket between bind and chmod.
        sock.bind(short.text)
        os.chmod(short.text, SOCKET_MODE)  # a socket just bound: the name is ours, not a link
        sock.listen(128)
    except OSError as exc:
        sock.close()
        short.close()
        if exc.errno == errno.EADDRINUSE:  # something appeared at the path since the check
            raise Unavailable(
                f"cannot make the owner's socket {path}: something else is there now. Remove it and start again."
            ) from None
        raise SocketUnavailable(f"cannot make the owner's socket {path}: {exc.strerror}") from None
    short.close()
    return sock


class OwnerSocket:
    """Serves `platform` on its data directory's socket, on the running loop, until `stop`.

    Cheap on the owner's path, since every CLI call that changes something owns briefly: the
    socket is bound at once (clients that come early wait in its backlog), FastAPI and uvicorn
    are imported on a daemon thread meanwhile (~190 ms, which a quick command would otherwise
    wait for), and the server waits on an event rather than uvicorn's 0.1 s ticks, so it stops at
    once when no connection is open (uvicorn's own stop took ~160 ms)."""

    def __init__(self, platform: PlatformAPI, path: Path):
        self.platform = platform
        self.path = path
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._state: ServerState | None = None
        self._inode: int | None = None
        self._sock: socket.socket | None = None
        self._exit: asyncio.Event | None = None

    def start(self) -> None:
        sock = self._sock = bind_socket(self.path)
        self._inode = os.lstat(self.path).st_ino  # the file's, to remove only our own at stop
        exit_event = self._exit = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._serve(sock, exit_event), name="cloudfn-owner-socket")

    def _build(self, exit_event: asyncio.Event) -> tuple[ServerState, QuietServer]:
        import uvicorn

        from core.server.app import ServerSettings, ServerState, create_app

        state = ServerState()
        # No token: the socket's mode is the guard. loopback_only keeps the Host/Origin checks,
        # which httpx over the socket passes (Host: localhost).
        settings = ServerSettings(token=None, loopback_only=True)
        app = create_app(self.platform, settings, state)
        # log_config/log_level None, access_log left on: uvicorn's loggers are global, and setting
        # them here silenced a `cloudfn serve`'s access log (and dictConfig would close the
        # console's handlers). Socket requests are then logged wherever the process logs uvicorn's.
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level=None,
            timeout_graceful_shutdown=2,
            server_header=False,
            date_header=False,
            http=_peer_checked_protocol(),
        )

        from core.server._uvicorn_compat import QuietServer

        class Server(QuietServer):  # the owner (console, serve, CLI) keeps its own signal handlers
            async def main_loop(self) -> None:
                await exit_event.wait()

            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                if not self.server_state.connections:  # nothing to drain
                    for server in self.servers:
                        server.close()
                    return
                await super().shutdown(sockets)

        return state, Server(config)

    async def _serve(self, sock: socket.socket, exit_event: asyncio.Event) -> None:
        try:
            self._state, server = await _on_daemon_thread(lambda: self._build(exit_event))
            self._server = server
            await server.serve(sockets=[sock])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the owner's socket %s stopped", self.path)
        finally:
            sock.close()

    async def stop(self) -> None:
        if self._task is None:
            return
        if self._server is None or self._state is None:  # still importing: nothing served yet
            self._task.cancel()
        else:
            # New requests get 503 and event streams end; those in flight, another process's
            # invocation among them, finish first (a quick CLI owner would otherwise cut them off).
            self._state.begin_shutdown()
            if not await self._state.wait_drained(DRAIN_GRACE):
                log.warning("stopping the owner's socket with %d request(s) still in flight", self._state.in_flight)
            self._server.should_exit = True
            if self._exit is not None:
                self._exit.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        if not self._task.done():
            if self._server is not None:
                self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._task = None
        if self._sock is not None:  # a task cancelled before its first step never ran its finally
            self._sock.close()
        # Remove our socket only: a successor may already have replaced it.
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)


def peer_uid(sock: socket.socket) -> int | None:
    import struct

    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    uid: int = struct.unpack("3i", creds)[1]
    return uid


def _peer_checked_protocol() -> type:
    """uvicorn's HTTP protocol, hanging up on a peer of another uid (root aside) before reading a
    byte: the socket's mode and the folder's already keep others out; this holds even if a user
    loosens them (chmod 755 on the data directory) or a process of another uid got the fd."""
    from core.server._uvicorn_compat import HttpToolsProtocol

    allowed = {os.geteuid(), 0}

    class PeerCheckedProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            uid = peer_uid(sock) if sock is not None else None
            if uid not in allowed:
                log.warning("refused a connection to the owner's socket from uid %s", uid)
                transport.abort()
                return
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "transport", None) is None:  # refused above: nothing was set up
                return
            super().connection_lost(exc)

    return PeerCheckedProtocol


_T = TypeVar("_T")


def _on_daemon_thread(fn: Callable[[], _T]) -> asyncio.Future[_T]:
    """`fn()` on a daemon thread: unlike asyncio.to_thread, a process that is done does not wait
    for it at exit."""
    import threading

    loop = asyncio.get_running_loop()
    fut: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T) -> None:
        if not fut.done():
            fut.set_result(result)

    def fail(error: BaseException) -> None:
        if not fut.done():
            fut.set_exception(error)

    def run() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            try:
                result = fn()
            except BaseException as exc:
                loop.call_soon_threadsafe(fail, exc)
            else:
                loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=run, daemon=True, name="cloudfn-owner-socket-build").start()
    return fut
