"""`cloudfn serve`: the platform over REST (FastAPI + uvicorn), see core/server/."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "serve",
        help="serve the platform over REST (the seed's API and more)",
        description="Serve this data directory's platform over REST. Every route but /api/health needs "
        "`Authorization: Bearer <token>`: the token is CLOUDFN_TOKEN or --token if given, else one "
        "made at the first start and kept (0600) in the data directory's server.token. "
        "SIGTERM/SIGINT shut down gracefully; a second signal forces it.",
    )
    c.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    c.add_argument("--port", type=int, help="port (default: server.port, PORT, 8080; 0 picks a free one)")
    c.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a token, for the seed's token-less clients; loopback addresses only",
    )
    c.add_argument("--mode", choices=("debug", "release"), help="release logs less (default: server.mode, GIN_MODE)")
    c.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="allow browser calls from this origin (repeatable; default: none)",
    )
    c.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="how long requests in flight may finish after SIGTERM (default: server.shutdown_grace, 30)",
    )
    c.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between the event stream's keep-alive comments (default: 15)",
    )
    c.set_defaults(main=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from cloudfn_tui.cli import report_ignored
    from core.config import load_config
    from core.server.runner import TOKEN_ENV, options_from_config, serve

    config = report_ignored(
        load_config(
            args.config,
            flags={
                "storage.data_dir": args.data_dir,
                "server.host": args.host,
                "server.port": args.port,
                "server.mode": args.mode,
                "server.shutdown_grace": args.grace,
                "server.cors_origins": ",".join(args.cors_origin) if args.cors_origin else None,
            },
        )
    )
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    opts = options_from_config(config, no_auth=args.no_auth, token=token, heartbeat=args.heartbeat)
    return serve(config, opts)
