"""`cloudfn dead-letters`: list, replay and delete the asynchronous invocations that exhausted
their retries, aged out or lost their function; and `cloudfn invoke --async` (its output)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cloudfn_tui import output
from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput
from core.models import AsyncInvocation, DeadLetter

EXIT_FAILED = 1


def register(sub: argparse._SubParsersAction) -> None:
    help = "list asynchronous invocations that failed for good, with every attempt's error; replay or delete one"
    c = sub.add_parser("dead-letters", help=help, description=help)
    c.set_defaults(run=cmd_dead_letters)
    c.add_argument("name", nargs="?", help="only this function's (name or id)")
    act = c.add_mutually_exclusive_group()
    act.add_argument("--replay", metavar="ID", help="queue this dead letter again (its id, or a unique start of it)")
    act.add_argument("--delete", metavar="ID", help="delete this dead letter (asks first; --yes skips)")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask before deleting")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--json", action="store_true")


def status_text(view: AsyncInvocation) -> str:
    lines = [f"{view.status}  {view.function_name}  invocation {view.invocation_id}"]
    if view.attempts:
        lines.append(f"attempts: {view.attempts}")
    for e in view.errors:
        lines.append(f"  attempt {e.attempt} at {output.when(e.time)}: {e.error_type or 'error'}: {e.error}")
    if view.next_attempt_at is not None:
        lines.append(f"next attempt at {output.when(view.next_attempt_at)}")
    if view.record is not None and view.status == "success":
        lines.append(f"result: {output._pretty(view.record.result)}")
    return "\n".join(lines)


async def invoke_async(api: PlatformAPI, args: argparse.Namespace, event: Any, context: Any) -> int:
    if args.wait is not None and not 0 <= args.wait <= 60:
        raise InvalidInput("invocation", [FieldError("--wait", f"must be from 0 to 60 seconds (got {args.wait:g})")])
    view = await api.invoke_async(args.name, event, context)
    if args.wait:
        view = await api.invocation_status(view.invocation_id, args.wait)
    if args.json:
        output.print_json(view.model_dump(mode="json"))
    elif view.status == "queued" and not args.wait:
        print(f"queued {view.function_name}: invocation {view.invocation_id}")
        if not getattr(api, "consume_async", True):
            print(
                "it runs when a console or `cloudfn serve` owns this data directory (or pass --wait)", file=sys.stderr
            )
        print(f"(`cloudfn history --id {view.invocation_id[:13]}` shows it once it ran)", file=sys.stderr)
    else:
        print(status_text(view))
    return EXIT_FAILED if view.status == "dead" else 0


def dead_letter_text(d: DeadLetter) -> str:
    lines = [
        f"{d.id}  {d.function_name}  dead since {output.when(d.dead_at)} (queued {output.when(d.enqueued_at)})",
        f"  reason: {d.reason}",
        f"  event: {output._pretty(d.event)}",
    ]
    for e in d.errors:
        lines.append(
            f"  attempt {e.attempt} at {output.when(e.time)}: {e.error_type or 'error'}: "
            f"{(e.error.splitlines() or [''])[0]}"
        )
    return "\n".join(lines)


async def cmd_dead_letters(api: PlatformAPI, args: argparse.Namespace) -> int:
    if args.replay:
        view = await api.replay_dead_letter(args.replay)
        if args.json:
            output.print_json(view.model_dump(mode="json"))
        else:
            print(f"queued {view.function_name} again: invocation {view.invocation_id}")
        return 0
    if args.delete:
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    "dead letter", [FieldError("--yes", "needed to delete without a terminal to confirm on")]
                )
            answer = input(f"Delete dead letter {args.delete}? Its event is lost. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("not deleted")
                return 0
        gone = await api.delete_dead_letter(args.delete)
        if args.json:
            output.print_json(gone.model_dump(mode="json"))
        else:
            print(f"deleted dead letter {gone.id} of {gone.function_name}")
        return 0
    if not 1 <= args.limit <= 1000:
        raise InvalidInput("dead letter query", [FieldError("--limit", "must be from 1 to 1000")])
    items = await api.list_dead_letters(args.name, args.limit)
    if args.json:
        output.print_json({"dead_letters": [d.model_dump(mode="json") for d in items], "count": len(items)})
        return 0
    if not items:
        print("no dead letters" + (f" for {args.name}" if args.name else ""))
        return 0
    print("\n\n".join(dead_letter_text(d) for d in items))
    print(f"\n{len(items)} dead letter(s): `cloudfn dead-letters --replay ID` queues one again, `--delete ID` drops it")
    return 0
