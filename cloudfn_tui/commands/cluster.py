"""`cloudfn worker` and `cloudfn cluster up`: cluster mode (issue 18, core/cluster/)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "worker",
        help="run functions for a cluster's gateways (needs cluster.nats_url)",
        description="Join the cluster at cluster.nats_url (CLOUDFN_CLUSTER_NATS_URL) as a worker: run the "
        "invocations gateways send, in today's sandbox, with this data directory for its own "
        "dependency environments and caches. SIGTERM/SIGINT: in-flight invocations finish first.",
    )
    w.add_argument("--nats", metavar="URL", help="the NATS server (default: cluster.nats_url)")
    w.add_argument("--node-id", metavar="NAME", help="this node's name (default: cluster.node_id, else host-pid)")
    w.set_defaults(main=run_worker_command)
    c = sub.add_parser("cluster", help="cluster mode: try it on one machine")
    csub = c.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True)
    up = csub.add_parser(
        "up",
        help="start PostgreSQL, nats-server, two gateways and two workers here; Ctrl-C stops them all",
        description="Start a local cluster: PostgreSQL (Debian's postgresql, data under DIR/postgres; or "
        "storage.url when set) shared by the gateways, nats-server (Debian's nats-server package) with "
        "JetStream and a token on a free loopback port, two gateways (`cloudfn serve`) and two workers, "
        "each with a data directory under DIR, one secrets key for all (DIR/secrets.key). Prints where "
        "they are; Ctrl-C stops them all.",
    )
    up.add_argument("--dir", metavar="DIR", help="where the nodes keep their data (default: <data_dir>/cluster)")
    up.add_argument("--workers", type=int, default=2, help="workers to start (default 2)")
    up.add_argument(
        "--port",
        type=int,
        default=8080,
        help="the first gateway's port, the second's is the next (default 8080; 0 picks free ones)",
    )
    up.set_defaults(main=run_cluster_up)


def _config(args: argparse.Namespace) -> object:
    from cloudfn_tui.cli import report_ignored
    from core.config import load_config

    return report_ignored(
        load_config(
            args.config,
            flags={
                "storage.data_dir": args.data_dir,
                "cluster.nats_url": getattr(args, "nats", None),
                "cluster.node_id": getattr(args, "node_id", None),
            },
        )
    )


def run_worker_command(args: argparse.Namespace) -> int:
    from core.cluster.worker import run_worker

    return run_worker(_config(args))  # type: ignore[arg-type]


def run_cluster_up(args: argparse.Namespace) -> int:
    from core.cluster.up import cluster_up

    return cluster_up(_config(args), args.dir, args.workers, args.port)  # type: ignore[arg-type]
