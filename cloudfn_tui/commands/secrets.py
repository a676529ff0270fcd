"""`cloudfn secrets set|list|delete|rotate-key`: write-only secrets (core/secrets.py).

A value is read from stdin when it is not a terminal, else from a hidden prompt (getpass);
never from the command line, where `ps` and the shell's history would show it."""

from __future__ import annotations

import argparse
import getpass
import sys

from cloudfn_tui import output
from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput


def register(sub: argparse._SubParsersAction) -> None:
    secrets = sub.add_parser(
        "secrets",
        help="write-only secrets functions read at /run/secrets/NAME",
        description="write-only secrets: encrypted at rest, given only to the functions "
        "that list them, masked in stored logs and history",
    )
    ssub = secrets.add_subparsers(dest="secrets_command", metavar="ACTION", required=True, parser_class=type(secrets))

    def cmd(name: str, help: str, run) -> argparse.ArgumentParser:
        c = ssub.add_parser(name, help=help, description=help)
        c.set_defaults(run=run)
        return c

    c = cmd("set", "set a secret; the value comes from stdin or a hidden prompt, never an argument", cmd_set)
    c.add_argument("name", help="letters, digits, '.', '_' or '-' (it becomes /run/secrets/NAME)")
    c.add_argument("--json", action="store_true")
    c = cmd("list", "names, sizes, when set and which functions hold them (never values)", cmd_list)
    c.add_argument("--json", action="store_true")
    c = cmd("delete", "delete a secret (refused while a function holds it, unless --force)", cmd_delete)
    c.add_argument("name")
    c.add_argument("--force", action="store_true", help="delete even while functions hold it (their next start fails)")
    c.add_argument("--json", action="store_true")
    c = cmd("rotate-key", "re-encrypt every secret under a new key (the old key no longer opens them)", cmd_rotate)
    c.add_argument("--json", action="store_true")


def read_value(stdin=None, prompt=getpass.getpass) -> str:
    stdin = stdin or sys.stdin
    if stdin.isatty():
        value = prompt("value (not shown): ")
        if value != prompt("again: "):
            raise InvalidInput("secret", [FieldError("value", "the two entries differ; run the command again")])
        return value
    value = stdin.read()
    # `echo x | cloudfn secrets set` and files ending in a newline: one final line break is not the value's.
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    return value


async def cmd_set(api: PlatformAPI, args: argparse.Namespace) -> int:
    info = await api.set_secret(args.name, read_value())
    if args.json:
        output.print_json({"message": "secret set", "secret": info.to_doc()})
    else:
        held = f"; replaced the workers of {', '.join(info.used_by)}" if info.used_by else ""
        print(f"set secret {info.name} ({info.size} bytes){held}")
        from core.secrets import MIN_MASK_CHARS

        if info.size < MIN_MASK_CHARS:
            print(
                f"warning: values shorter than {MIN_MASK_CHARS} characters are not masked in logs and history",
                file=sys.stderr,
            )
    return 0


async def cmd_list(api: PlatformAPI, args: argparse.Namespace) -> int:
    items = await api.list_secrets()
    if args.json:
        output.print_json({"secrets": [s.to_doc() for s in items], "count": len(items)})
    elif not items:
        print("no secrets yet; set one with `cloudfn secrets set NAME` (the value from stdin or a prompt)")
    else:
        output.print_table(
            ["NAME", "SIZE", "SET", "USED BY"],
            [[s.name, f"{s.size} B", output.when(s.set_at), ", ".join(s.used_by) or "-"] for s in items],
        )
    return 0


async def cmd_delete(api: PlatformAPI, args: argparse.Namespace) -> int:
    info = await api.delete_secret(args.name, force=args.force)
    if args.json:
        output.print_json({"message": "secret deleted", "secret": info.to_doc()})
    else:
        print(f"deleted secret {info.name}" + (f" (still listed by {', '.join(info.used_by)})" if info.used_by else ""))
    return 0


async def cmd_rotate(api: PlatformAPI, args: argparse.Namespace) -> int:
    done = await api.rotate_secrets_key()
    if args.json:
        output.print_json({"message": "secrets key rotated", **done})
    else:
        print(f"rotated the secrets key: {done['rotated']} secret(s) re-encrypted; the key is {done['key_source']}")
    return 0
