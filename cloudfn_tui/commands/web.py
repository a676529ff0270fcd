"""`cloudfn web`: the same console in a browser, served by textual-serve.

Each browser tab runs its own `cloudfn console` process (textual-serve's model) with this
command's --data-dir/--config/--remote. Local mode: the first tab owns the data directory and the
others attach to it through its private socket; `cloudfn serve` and `cloudfn web --remote URL`
serve other machines' users. Loopback by default:
textual-serve has no authentication of its own, so another address must be asked for."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.loopback import is_loopback

DEFAULT_PORT = 8000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "web",
        help="serve the console in a browser (textual-serve), on loopback by default",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--public-url", metavar="URL", help="the URL browsers reach this at (behind a proxy)")
    p.add_argument(
        "--allow-remote-access",
        action="store_true",
        help="allow binding a non-loopback address: anyone who reaches it gets the console",
    )
    p.set_defaults(main=run_web)


def console_command(args: argparse.Namespace) -> str:
    """The command each browser session runs: this Python, the console, the same flags."""
    argv = [sys.executable, "-m", "cloudfn_tui.cli"]
    if getattr(args, "data_dir", None):
        argv += ["--data-dir", os.path.abspath(args.data_dir)]
    if getattr(args, "config", None):
        argv += ["--config", os.path.abspath(args.config)]
    argv.append("console")
    remote = getattr(args, "remote", None)
    if isinstance(remote, str) and remote:
        argv += ["--remote", remote]
    return shlex.join(argv)


def _origin(url: str) -> str:
    """scheme://host[:port], lowercased, without the scheme's default port (as browsers send it)."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    return f"{scheme}://{host}" if port is None or port == default else f"{scheme}://{host}:{port}"


def allowed_origins(host: str, port: int, public_url: str) -> frozenset[str]:
    """The page's own origin: its public URL, and, served on loopback, the other loopback names
    of the same port (a browser on http://localhost:8000 opens the socket textual-serve names,
    ws://127.0.0.1:8000/ws, with Origin http://localhost:8000)."""
    origins = {_origin(public_url)}
    if is_loopback(host):
        for name in ("localhost", "127.0.0.1", "[::1]"):
            origins.add(_origin(f"http://{name}:{port}"))
    return frozenset(origins)


# textual-serve's page loads Roboto Mono from Google Fonts: offline, or over an SSH tunnel to a
# server with no internet, the browser waits on it and then tells the user's network about every
# session. The same font ships in textual-serve's own static folder; the page gets it from there.
_FONT_CDN_LINK = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.S)
_LOCAL_FONTS = """<style>
      @font-face {
        font-family: "Roboto Mono"; font-style: normal; font-weight: 100 700; font-display: block;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
      }
      @font-face {
        font-family: "Roboto Mono"; font-style: italic; font-weight: 100 700; font-display: block;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
      }
    </style>"""


def offline_page(template: str) -> str:
    """textual-serve's page template with every outside reference served locally; refuses (at
    start, not in a user's browser) a template that still names another host."""
    page = _FONT_CDN_LINK.sub(lambda _: _LOCAL_FONTS, template, count=1)
    outside = (
        re.findall(r"""(?:href|src)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", page)
        + re.findall(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)""", page)
        + re.findall(r"@import[^;]*", page)
    )
    if outside:
        raise ConfigError(
            f"cloudfn web: textual-serve's page loads {outside}; this textual-serve is not the "
            "version cloudfn was made for (see the pin in pyproject.toml)"
        )
    return page


def _server_class():
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web
    from textual_serve.server import Server

    class OriginCheckedServer(Server):
        """textual-serve's server, refusing a websocket from any other page's origin.

        textual-serve checks no Origin: any web page the user opens could open ws://127.0.0.1:8000/ws
        (a websocket is not bound by the same-origin policy) and type into the console. A browser
        always sends Origin on a websocket; a client without one is not a web page."""

        def __init__(self, *args, origins: frozenset[str] = frozenset(), announce: str = "", **kwargs):
            super().__init__(*args, **kwargs)
            self.origins = origins
            self.announce = announce

        # A refusal answers a plain 403 before any websocket exists: aiohttp serves any StreamResponse
        # from a handler, textual-serve's annotation names only the websocket it returns itself.
        async def handle_websocket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
            origin = request.headers.get("Origin")
            if origin is not None and _origin(origin) not in self.origins:
                print(
                    f"cloudfn web: refused a websocket from the page at {origin[:100]!r} (not this console's "
                    f"origin: {', '.join(sorted(self.origins))})",
                    file=sys.stderr,
                    flush=True,
                )
                return web.Response(
                    status=403,
                    text=f"websocket refused: Origin {origin[:100]!r} is not "
                    f"this console's page ({_origin(self.public_url)})\n",
                )
            return await super().handle_websocket(request)

        async def _make_app(self) -> web.Application:
            # textual-serve takes a folder of templates; ours is its own page, rewritten in memory.
            app = await super()._make_app()
            page = offline_page((self.templates_path / "app_index.html").read_text(encoding="utf-8"))
            aiohttp_jinja2.setup(
                app,
                loader=jinja2.ChoiceLoader(
                    [jinja2.DictLoader({"app_index.html": page}), jinja2.FileSystemLoader(self.templates_path)]
                ),
            )
            return app

        def serve(self, debug: bool = False) -> None:
            # textual-serve's serve(), but announcing once the socket listens (aiohttp calls
            # `print` after its sites start), so that whoever waits for the line can connect.
            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGINT, self.request_exit)
                loop.add_signal_handler(signal.SIGTERM, self.request_exit)
            web.run_app(
                self._make_app(),
                host=self.host,
                port=self.port,
                handle_signals=False,
                loop=loop,
                print=lambda *_: print(self.announce, file=sys.stderr, flush=True),
            )

    return OriginCheckedServer


def run_web(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_remote_access:
        raise ConfigError(
            f"cloudfn web: {args.host} is not a loopback address, and the browser console has no login. "
            "Use --host 127.0.0.1 (and an SSH tunnel), or pass --allow-remote-access if you mean it."
        )
    try:
        server_class = _server_class()
    except ImportError:
        raise ConfigError("cloudfn web needs textual-serve: pip install textual-serve") from None
    token = getattr(args, "token", None)
    if isinstance(token, str) and token:
        os.environ["CLOUDFN_TOKEN"] = token  # to the sessions, not on their command lines
    # Bound without the brackets an IPv6 address takes in a URL (`--host [::1]`), named with them.
    bind_host = args.host.strip().strip("[]")
    url_host = f"[{bind_host}]" if ":" in bind_host else bind_host
    public_url = args.public_url or f"http://{url_host}:{args.port}"
    server = server_class(
        console_command(args),
        host=bind_host,
        port=args.port,
        title="cloudfn",
        public_url=public_url,
        origins=allowed_origins(args.host, args.port, public_url),
        announce=f"cloudfn web: serving the console at {public_url} (ctrl+c stops)",
    )
    server.serve()
    return 0
