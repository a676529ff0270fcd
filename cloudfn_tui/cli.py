"""The `cloudfn` command line. With no subcommand it opens the console.

Exit codes: 0 ok, 1 the invoked function failed, 2 invalid input or configuration, 3 not found,
4 conflict (name taken), 5 platform unavailable (data directory held, store corrupt, server
unreachable), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import NoReturn

from cloudfn_tui.commands import MODULES
from core.api import PlatformAPI
from core.errors import CloudfnError

EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"error: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="cloudfn",
        description="A cloud-function platform in your terminal. Run with no command to open the console.",
    )
    p.add_argument("--data-dir", metavar="DIR", help="data directory (default: the XDG data folder)")
    p.add_argument("--config", metavar="FILE", help="YAML config file (default: the XDG config folder)")
    p.add_argument("--version", dest="show_version", action="store_true", help="print the version and exit")
    _remote_flags(p, None)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    console = sub.add_parser("console", help="open the console (the default)")
    console.set_defaults(main=run_console)
    for module in MODULES:
        module.register(sub)
    for parser in _subparsers(p):  # `cloudfn list --remote URL`, `cloudfn alerts list --remote URL`
        _remote_flags(parser, argparse.SUPPRESS, token_only=parser is sub.choices.get("serve"))
    return p


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield child
                yield from _subparsers(child)


# -- remote attach: --remote/--token (CLOUDFN_REMOTE, CLOUDFN_TOKEN, the config's remotes) ------
def _remote_flags(parser: argparse.ArgumentParser, default: object, token_only: bool = False) -> None:
    if not token_only:
        parser.add_argument(
            "--remote",
            metavar="URL|NAME",
            default=default,
            help="use the cloudfn server at URL (or a name from the config file's remotes) "
            "instead of the local data directory (also CLOUDFN_REMOTE)",
        )
    parser.add_argument(
        "--token",
        metavar="T",
        default=default,
        help="the server's bearer token (also CLOUDFN_TOKEN)"
        if not token_only
        else "the bearer token clients must send (default: CLOUDFN_TOKEN, else server.token in the data directory)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.show_version:
        from core import __version__

        print(f"cloudfn {__version__}")
        return 0
    try:
        if args.command is None:
            return run_console(args)
        if getattr(args, "main", None):
            return args.main(args)
        return asyncio.run(_run_handler(args))
    except CloudfnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        log = getattr(exc, "log", "")  # a BuildError: the installer's own output, last lines
        if log and not getattr(exc, "log_shown", False):
            tail = log.strip().splitlines()[-40:]
            print("the installer said:\n" + "\n".join(f"  | {line}" for line in tail), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cloudfn list | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0


def load_settings(args: argparse.Namespace):
    from core.config import load_config

    return report_ignored(load_config(args.config, flags={"storage.data_dir": args.data_dir}))


def report_ignored(config):
    """Say once, on stderr, which of the original platform's config keys cloudfn does not use."""
    note = config.ignored_note()
    if note:
        print(f"cloudfn: {note}", file=sys.stderr)
    return config


# What only reads: never takes the data directory over a running owner, serves no socket and
# logs no "platform started" (`alerts list`/`alerts history` read too).
READ_ONLY = frozenset({"list", "get", "info", "history", "logs", "metrics", "versions", "export"})
READ_ONLY_ALERTS = frozenset({"list", "history"})
LOCK_WAIT = 3.0  # seconds to wait for a briefly held data directory or an owner's socket


def is_read_only(args: argparse.Namespace) -> bool:
    if args.command == "alerts":
        return getattr(args, "alerts_command", None) in READ_ONLY_ALERTS
    if args.command == "secrets":
        return getattr(args, "secrets_command", None) == "list"
    return args.command in READ_ONLY


def open_platform(args: argparse.Namespace, command: str, config=None, owner: bool = False) -> PlatformAPI:
    """A RemotePlatform when --remote, CLOUDFN_REMOTE or the config's client.remote says so, or
    when a process owns the data directory (through its private socket, or a `cloudfn serve`'s
    URL); else the LocalPlatform, owned by this process. `owner`: a long-running owner
    (console) that logs its start and stop. Read-only commands own only while no one else
    does, briefly and silently, and serve no socket."""
    import time

    from core.errors import DataDirLocked
    from core.local import LocalPlatform
    from core.remote import attach_to_owner, attach_to_socket, remote_from_config

    config = config or load_settings(args)
    token = getattr(args, "token", None)
    remote = remote_from_config(config, getattr(args, "remote", None), token)
    if remote is not None:
        return remote
    read_only = not owner and is_read_only(args)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        attached = attach_to_socket(config.data_dir)
        if attached is not None:
            return attached
        try:
            return LocalPlatform(config, command=command, announce=owner, serve_socket=not read_only)
        except DataDirLocked:
            # Held by a command that serves no socket (a read-only one, an older cloudfn), or by
            # an owner still starting: both pass within moments. A `cloudfn serve` of an older
            # version is reached by its URL.
            attached = attach_to_owner(config.data_dir, token)
            if attached is not None:
                return attached
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def run_console(args: argparse.Namespace) -> int:
    try:  # before the data directory is taken
        from cloudfn_tui.app import CloudfnApp
    except ImportError as exc:
        from core.errors import ConfigError

        raise ConfigError(
            f"the console needs {exc.name or 'textual'}, which this install left out "
            "(a server-only install?): pip install 'cloudfn[console]'"
        ) from None
    config = load_settings(args)
    platform = open_platform(args, "cloudfn console", config, owner=True)

    # The keymap and theme come from the local config file, attached or not.
    app = CloudfnApp.from_config(platform, config)
    app.run()
    return app.return_code or 0


async def _run_handler(args: argparse.Namespace) -> int:
    platform = open_platform(args, f"cloudfn {args.command}")
    try:
        if getattr(platform, "serve_socket", False):  # only a LocalPlatform serves its data dir's socket
            from core.local import LocalPlatform

            assert isinstance(platform, LocalPlatform)
            platform.start_socket()  # at once: another cloudfn started meanwhile attaches rather than waits
        return await args.run(platform, args)
    finally:
        await platform.close()


if __name__ == "__main__":
    sys.exit(main())
