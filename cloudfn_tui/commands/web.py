"""`cloudfn web`: the same console in a browser, served by textual-serve.

Each browser tab runs its own `cloudfn console` process (textual-serve's model) with this
command's --data-dir/--config/--remote. Local mode: the first tab owns the data directory; run
`cloudfn serve` and `cloudfn web --remote URL` for several tabs or users. Loopback by default:
textual-serve has no authentication of its own, so another address must be asked for."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import sys

from core.errors import ConfigError

DEFAULT_PORT = 8000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="serve the console in a browser (textual-serve), on loopback by default",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--public-url", metavar="URL", help="the URL browsers reach this at (behind a proxy)")
    p.add_argument("--allow-remote-access", action="store_true",
                   help="allow binding a non-loopback address: anyone who reaches it gets the console")
    p.set_defaults(main=run_web)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def run_web(args: argparse.Namespace) -> int:
    if not _is_loopback(args.host) and not args.allow_remote_access:
        raise ConfigError(
            f"cloudfn web: {args.host} is not a loopback address, and the browser console has no login. "
            "Use --host 127.0.0.1 (and an SSH tunnel), or pass --allow-remote-access if you mean it."
        )
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ConfigError("cloudfn web needs textual-serve: pip install textual-serve") from None
    token = getattr(args, "token", None)
    if isinstance(token, str) and token:
        os.environ["CLOUDFN_TOKEN"] = token  # to the sessions, not on their command lines
    server = Server(console_command(args), host=args.host, port=args.port, title="cloudfn", public_url=args.public_url)
    print(f"cloudfn web: serving the console at {server.public_url} (ctrl+c stops)", file=sys.stderr)
    server.serve()
    return 0
