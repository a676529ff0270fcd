"""Running the server: the token, the loopback rule, uvicorn, and a graceful shutdown.

On SIGTERM or SIGINT the server answers every new request 503 (it keeps listening meanwhile, so
a client gets a clear answer rather than a refused connection, and a load balancer's probe of
/api/health sees it leave), lets the requests in flight finish within the grace period, then
stops listening, closes the platform (which flushes history and logs and stops the workers) and
exits 0. A second signal skips the wait (exit 1), and the process leaves within
FORCED_EXIT_DEADLINE seconds whatever the close is doing; one during the platform's close exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import logging
import os
import secrets
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from core import __version__
from core.config import Config
from core.errors import ConfigError
from core.loopback import is_loopback
from core.server.app import DEFAULT_MAX_BODY, ServerSettings, ServerState, create_app

if TYPE_CHECKING:
    import uvicorn

    from core.local import LocalPlatform

log = logging.getLogger("cloudfn.server")
TOKEN_FILE = "server.token"
TOKEN_ENV = "CLOUDFN_TOKEN"
EXIT_FORCED = 1
FORCED_EXIT_DEADLINE = 10.0  # seconds a forced shutdown may take before the process just leaves


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE


def read_token_file(data_dir: Path) -> str | None:
    try:
        return token_path(data_dir).read_text().strip() or None
    except OSError:
        return None


def load_or_create_token(data_dir: Path) -> tuple[str, Path]:
    """The token stored in the data directory, made (0600, from `secrets`) at the first start."""
    path = token_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            log.warning("%s was readable by others (mode %o); made it 0600", path, mode)
        token = path.read_text().strip()
        if not token:
            raise ConfigError(f"the token file {path} is empty; delete it to have a new token made") from None
        return token, path
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token, path


def connect_url(host: str, port: int) -> str:
    """The address a client on this machine uses: a wildcard bind is reached over loopback."""
    h = host.strip("[]")
    if h in ("0.0.0.0", ""):
        h = "127.0.0.1"
    elif h == "::":
        h = "::1"
    if ":" in h:
        h = f"[{h}]"
    return f"http://{h}:{port}"


@dataclass
class ServeOptions:
    host: str
    port: int
    no_auth: bool = False
    token: str | None = None  # from --token or CLOUDFN_TOKEN; else the data directory's file
    mode: str = "debug"
    log_level: str = "info"
    cors_origins: list[str] = field(default_factory=list)
    max_body: int = DEFAULT_MAX_BODY
    grace: float = 30.0
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    heartbeat: float = 15.0
    announce: Callable[[str], None] = lambda line: print(line, flush=True)


def options_from_config(config: Config, **overrides: Any) -> ServeOptions:
    origins = [o.strip() for o in str(config["server.cors_origins"] or "").split(",") if o.strip()]
    opts = ServeOptions(
        host=config["server.host"],
        port=config["server.port"],
        mode=config["server.mode"],
        log_level=config["monitor.log_level"],
        cors_origins=origins,
        max_body=config["server.max_body"],
        grace=config["server.shutdown_grace"],
        header_timeout=config["server.header_timeout"],
        body_timeout=config["server.body_timeout"],
        max_connections=config["server.max_connections"],
    )
    for k, v in overrides.items():
        if v is not None:
            setattr(opts, k, v)
    return opts


def check_auth_rule(opts: ServeOptions) -> None:
    if opts.no_auth and not is_loopback(opts.host):
        raise ConfigError(
            f"refusing to serve without a token on {opts.host}: --no-auth is only allowed on a loopback "
            f"address (127.0.0.1, ::1, localhost), where only this machine can connect; beyond it every "
            f"function's endpoint (/fn/<name>) would be public to the network. Drop --no-auth "
            f"(a token is made for you and stored in the data directory; mark the endpoints meant for everyone "
            f"http: {{public: true}}), or bind --host 127.0.0.1."
        )


def sandbox_refusal(config: Config, platform: LocalPlatform) -> str:
    """Why a server must not start here ("" when it may): a server runs other people's code, so
    a missing namespace sandbox is never silently accepted; `runtime.sandbox: none` says so
    explicitly (and is warned about at every start)."""
    prot = platform.executor.protections()
    if config["runtime.sandbox"] == "none":
        print(
            "cloudfn: warning: runtime.sandbox is 'none': functions run without namespaces, seccomp or a "
            "uid drop" + (", as host root" if os.geteuid() == 0 else ""),
            file=sys.stderr,
            flush=True,
        )
        return ""
    if prot["bwrap_namespaces"]:
        return ""
    return (
        f"refusing to serve: the function sandbox cannot start on this host ({prot['bwrap_problem']}). "
        "Install bubblewrap (apt-get install bubblewrap) and allow user namespaces (README, 'Running in "
        "containers'), or set runtime.sandbox: none (CLOUDFN_RUNTIME_SANDBOX=none) to run functions "
        "without it, which every start then warns about."
    )


def serve(config: Config, opts: ServeOptions) -> int:
    """Open the platform on `config`'s data directory and serve it until a signal. Returns the
    exit code: 0 after a graceful shutdown."""
    check_auth_rule(opts)
    from core.server._uvicorn_compat import loop_factory

    _setup_logging(opts)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop when installed
        return runner.run(_serve(config, opts))


def _level(name: str) -> str:
    return "warning" if name == "warn" else name


def _setup_logging(opts: ServeOptions) -> None:
    level = (
        logging.WARNING if opts.mode == "release" else getattr(logging, _level(opts.log_level).upper(), logging.INFO)
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("cloudfn").setLevel(level)


def _http_protocol(opts: ServeOptions) -> type | str:
    """uvicorn's httptools protocol with one write per response, header and body deadlines and
    a connection cap (http_protocol.py); without httptools, uvicorn's own choice, which has none
    of them, so say so."""
    try:
        from core.server.http_protocol import guarded_protocol
    except ImportError:
        log.warning("httptools is not installed: no header/body timeouts or connection cap (pip install httptools)")
        return "auto"
    return guarded_protocol(opts.header_timeout, opts.body_timeout, opts.max_connections)


async def _serve(config: Config, opts: ServeOptions) -> int:
    import uvicorn

    from core.local import LocalPlatform

    token: str | None = None
    token_file: str | None = None
    token_note = "no token (--no-auth, loopback only)"
    sock = _bind(opts.host, opts.port)
    try:
        if not opts.no_auth:
            if opts.token:
                token, token_note = opts.token, "token from --token/CLOUDFN_TOKEN"
            else:
                token, path = load_or_create_token(config.data_dir)
                token_note, token_file = f"token in {path}", str(path)
        platform = LocalPlatform(config, command="cloudfn serve", serve_socket=True)
        refusal = sandbox_refusal(config, platform)
        if refusal:
            await platform.close()
            raise ConfigError(refusal)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    url = connect_url(opts.host, port)
    state = ServerState()
    settings = ServerSettings(
        token=token,
        max_body=opts.max_body,
        cors_origins=opts.cors_origins,
        heartbeat=opts.heartbeat,
        loopback_only=token is None,
        refuse_public=token is None,
    )
    if token is None:
        public = [f.name for f in platform.registry.list() if f.http.public]
        if public:  # made public elsewhere (the console owning the directory): served like the rest
            log.warning(
                "served without a token: the public endpoints of %s answer this machine only, with the "
                "browser checks of every --no-auth endpoint; serve with a token to publish them",
                ", ".join(public),
            )
    app = create_app(platform, settings, state)
    release = opts.mode == "release"
    # uvicorn's dictConfig (its access log on stdout) runs logging.shutdown on every handler: the
    # platform's LogHub survives it (see LogHub.close), which once cost the served platform its
    # log file and live log stream.
    uv_config = uvicorn.Config(
        app,
        loop="auto",
        http=_http_protocol(opts),
        lifespan="off",
        log_level="warning" if release else _level(opts.log_level),
        # uvicorn annotates int, but only passes it to asyncio.wait_for: a grace of 0.5 s works.
        access_log=not release,
        timeout_graceful_shutdown=opts.grace,  # type: ignore[arg-type]
        server_header=False,
        timeout_keep_alive=30,
        backlog=2048,
        proxy_headers=False,  # no X-Forwarded-* rewriting: the server uses no client address
    )
    server = _server(uv_config, state)
    loop = asyncio.get_running_loop()
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.loop = loop
    try:
        await platform.start()  # background work: history flushing, alert evaluation
        gc.collect()
        gc.freeze()  # what exists at start lives as long as the server: keep it out of every GC pass
        platform.endpoint_base = url  # the endpoints' URLs, also for consoles attached by the socket
        platform.lock.update(
            {
                "command": "cloudfn serve",
                "version": __version__,
                "url": url,
                "auth": token is not None,
                "token_file": token_file,
            }
        )
        opts.announce(f"cloudfn {__version__} serving on {url} (pid {os.getpid()}, mode {opts.mode}; {token_note})")
        try:
            await server.serve(sockets=[sock])
        finally:
            server.closing = True
            sock.close()
            log.info("closing the platform (flushing history and logs, stopping workers)")
            await platform.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_FORCED if server.force_exit else 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}. Pick another --port or --host.") from None
    sock.listen(2048)
    return sock


class _Serving(Protocol):
    """What `serve` uses of the server `_server` builds."""

    closing: bool
    loop: asyncio.AbstractEventLoop | None
    force_exit: bool

    def handle_exit(self, sig: int, frame: FrameType | None) -> None: ...

    async def serve(self, sockets: list[socket.socket] | None = None) -> None: ...


def _server(config: uvicorn.Config, state: ServerState) -> _Serving:
    """uvicorn.Server with cloudfn's signal rules (its class is made here so that importing this
    module does not import uvicorn)."""
    from core.server._uvicorn_compat import QuietServer

    class Server(QuietServer):  # the runner installs the signal handlers, for the close too
        closing = False
        loop: asyncio.AbstractEventLoop | None = None

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Drain first, still listening: the guard answers new requests 503 meanwhile.
            grace = self.config.timeout_graceful_shutdown or 0
            start = asyncio.get_running_loop().time()
            if not state.shutting_down:  # stopped by uvicorn itself rather than a signal
                state.begin_shutdown()
            if not self.force_exit:
                if state.in_flight:
                    log.info("waiting up to %gs for %d request(s) in flight", grace, state.in_flight)
                await state.wait_drained(grace)
            left = max(0.0, grace - (asyncio.get_running_loop().time() - start))
            self.config.timeout_graceful_shutdown = left  # type: ignore[assignment]  # a float: see serve
            await super().shutdown(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.closing:
                os._exit(EXIT_FORCED)
            if self.should_exit:
                log.warning("second signal: not waiting for requests in flight")
                self.force_exit = True
                _arm_forced_exit(FORCED_EXIT_DEADLINE, self.loop)
                if self.loop is not None:
                    self.loop.call_soon_threadsafe(state.stop_waiting)
                return
            log.info("signal %s: shutting down gracefully", signal.Signals(sig).name)
            self.should_exit = True
            if self.loop is not None:
                self.loop.call_soon_threadsafe(state.begin_shutdown)

    return Server(config)


def _arm_forced_exit(deadline: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """A second signal promises a fast exit: if the close still runs after `deadline` seconds
    (a worker that will not die, a thread that will not end), leave anyway, saying where it
    hung. The workers' sandboxes die with the process (bwrap --die-with-parent)."""

    def leave() -> None:
        print(
            f"cloudfn: the forced shutdown did not finish within {deadline:g} s; exiting now. Where it hung:",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        if loop is not None:  # the coroutines the loop still runs (read from here: the loop is stuck or busy)
            with contextlib.suppress(Exception):
                for task in list(asyncio.all_tasks(loop)):
                    print(f"task {task.get_name()}:", *_awaiting(task), sep="\n  ", file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_FORCED)

    timer = threading.Timer(deadline, leave)
    timer.daemon = True
    timer.start()


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a task waits, outermost first: its chain of awaited coroutines (Task.print_stack
    shows only the outermost frame of a suspended task, which names no culprit)."""
    out = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            out.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return out
