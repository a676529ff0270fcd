"""Commands to watch the platform: history, logs, metrics, alerts."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from cloudfn_tui import output
from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput, NotFound
from core.models import ALERT_METRICS, TRIGGERS, LogRecord


def register(sub: argparse._SubParsersAction) -> None:
    def cmd(name: str, help: str, run, parent=sub) -> argparse.ArgumentParser:
        c = parent.add_parser(name, help=help, description=help)
        c.set_defaults(run=run)
        return c

    c = cmd("history", "list recent invocations, newest first", cmd_history)
    c.add_argument("name", nargs="?", help="only this function (name or id)")
    c.add_argument("--status", choices=["success", "failed", "throttled"])
    c.add_argument("--trigger", choices=list(TRIGGERS), help="only invocations started this way")
    c.add_argument("--since", type=_when, metavar="TIME", help="ISO time, or an age like 10m, 2h, 1d")
    c.add_argument("--limit", type=int, default=20)
    c.add_argument(
        "--id",
        dest="invocation",
        metavar="INVOCATION_ID",
        help="show one invocation in full (its id, or a unique start of it)",
    )
    c.add_argument("--json", action="store_true")

    c = cmd("logs", "show platform and function logs", cmd_logs)
    c.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    c.add_argument("--function", metavar="NAME")
    c.add_argument("--level", help="minimum level: debug, info, warning, error")
    c.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT")
    c.add_argument("--invocation", metavar="ID")
    c.add_argument("--since", type=_when, metavar="TIME", help="ISO time, or an age like 10m, 2h, 1d")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--json", action="store_true", help="one JSON object a line")

    c = cmd(
        "metrics", "show invocation metrics: a running owner's live counts, else computed from the history", cmd_metrics
    )
    c.add_argument("--function", metavar="NAME")
    c.add_argument(
        "--since",
        type=_when,
        metavar="TIME",
        help="compute from the history since this ISO time or age like 10m, 2h, 1d (default without a "
        "running console or server: the last hour)",
    )
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text format")

    alerts = sub.add_parser(
        "alerts", help="alert rules, their state and history", description="alert rules, their state and history"
    )
    asub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True, parser_class=type(alerts))
    c = cmd("list", "rules with their current state", cmd_alerts_list, asub)
    c.add_argument("--json", action="store_true")
    for name, run, help in (("add", cmd_alerts_add, "add a rule"), ("update", cmd_alerts_update, "change a rule")):
        c = cmd(name, help, run, asub)
        c.add_argument("name")
        required = name == "add"
        c.add_argument("--metric", choices=ALERT_METRICS, required=required)
        c.add_argument("--comparison", choices=[">", ">=", "<", "<="])
        c.add_argument("--threshold", type=float, required=required)
        c.add_argument("--scope", help="all, function:NAME or runtime:RUNTIME (default all)")
        c.add_argument("--window", type=int, metavar="SECONDS")
        c.add_argument("--for", dest="for_", type=int, metavar="SECONDS", help="how long it must hold before firing")
        c.add_argument("--severity", choices=["info", "warning", "critical"])
        c.add_argument("--webhook", metavar="URL")
        c.add_argument("--description")
        c.add_argument("--enabled", action=argparse.BooleanOptionalAction, default=None)
        c.add_argument("--json", action="store_true")
    c = cmd("delete", "delete a rule", cmd_alerts_delete, asub)
    c.add_argument("name")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    c = cmd("history", "state changes, newest first", cmd_alerts_history, asub)
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--json", action="store_true")


def _when(text: str) -> datetime:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return datetime.fromtimestamp(datetime.now(UTC).timestamp() - int(text[:-1]) * units[text[-1]], UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO time nor an age like 10m") from None
    return when if when.tzinfo else when.astimezone()


async def cmd_history(api: PlatformAPI, args: argparse.Namespace) -> int:
    if args.invocation:
        rec = await api.get_invocation(args.invocation)
        output.emit(rec.model_dump(mode="json"), args.json, lambda _: output.invocation_text(rec))
        return 0
    extra = {"trigger": args.trigger} if args.trigger else {}
    records = await api.list_invocations(args.name, args.status, args.since, None, args.limit, **extra)
    if args.json:
        output.print_json({"invocations": [r.model_dump(mode="json") for r in records], "count": len(records)})
        return 0
    if not records:
        print("no invocations recorded" + (f" for {args.name}" if args.name else ""))
        return 0
    output.print_table(
        ["STARTED", "FUNCTION", "VER", "STATUS", "ERROR", "DURATION", "START", "TRIGGER", "ID"],
        [
            [
                output.when(r.started_at),
                r.function_name,
                r.function_version,
                r.status,
                r.error_type or "",
                f"{r.duration:.1f}ms",
                "cold" if r.cold_start else "warm",
                r.trigger,
                r.id,
            ]
            for r in records
        ],
    )
    return 0


def _log_line(rec: LogRecord) -> str:
    where = f" [{rec.function}]" if rec.function else ""
    return f"{output.when(rec.time)} {rec.level.upper():<8}{where} {rec.message}"


async def cmd_logs(api: PlatformAPI, args: argparse.Namespace) -> int:
    log_file = _local_log_file(api, args) if args.follow else None
    # Where the follow starts is taken before the query: a line written in between is then in
    # both, and shown once (taken after, it was in neither).
    start = _file_end(log_file) if log_file is not None else None
    # A server's stream, likewise, is opened before the query.
    stream = await _open_stream(api) if args.follow and log_file is None else None
    records = await api.query_logs(args.level, args.function, args.invocation, args.grep, args.since, None, args.limit)

    def show(rec: LogRecord) -> None:
        print(rec.model_dump_json() if args.json else _log_line(rec), flush=True)

    for rec in records:
        show(rec)
    if not args.follow:
        return 0
    from core.logs import LEVEL_NUM, normalize_level

    floor = LEVEL_NUM[normalize_level(args.level)] if args.level else 0

    def wanted(rec: LogRecord) -> bool:
        return (
            LEVEL_NUM.get(rec.level, 0) >= floor
            and (not args.function or rec.function == args.function)
            and (not args.invocation or rec.invocation_id == args.invocation)
            and (not args.grep or args.grep.lower() in rec.message.lower())
        )

    if log_file is not None and start is not None:
        # This machine's data directory: follow its log file, which every owner writes, so
        # the follow neither holds the directory (an invoke from another terminal owns it
        # meanwhile) nor misses the lines of owners that come and go.
        shown = {_key(r) for r in records}
        await api.close()
        async for rec in _tail(log_file, start):
            if _key(rec) in shown:
                shown.discard(_key(rec))
            elif wanted(rec):
                show(rec)
        return 0
    shown = {_key(r) for r in records}
    assert stream is not None  # opened above whenever following without a local log file
    async for event in stream:
        rec = LogRecord.model_validate(event.data)
        if _key(rec) in shown:
            shown.discard(_key(rec))
        elif wanted(rec):
            show(rec)
    return 0


STREAM_OPEN_WAIT = 10.0  # seconds for a server's event stream to answer before the query goes ahead


async def _open_stream(api: PlatformAPI):
    """The log event stream, already subscribed on the server (RemotePlatform reports "live"
    once the server answered, and the server subscribes before answering), so no line falls
    between the stored ones and the live ones. An error opening it surfaces on the first read."""
    import asyncio
    import contextlib

    live = asyncio.Event()
    if hasattr(api, "on_stream_state"):
        api.on_stream_state = lambda state: live.set() if state == "live" else None
    else:
        live.set()
    events = api.events({"log"})
    first = asyncio.ensure_future(anext(events))
    waiter = asyncio.ensure_future(live.wait())
    await asyncio.wait({first, waiter}, timeout=STREAM_OPEN_WAIT, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    refused = first.exception() if first.done() else None
    if refused is not None:  # refused (a wrong token...): say so now
        raise refused

    async def stream():
        try:
            yield await first
            async for event in events:
                yield event
        finally:
            first.cancel()
            aclose = getattr(events, "aclose", None)  # an async generator's; PlatformAPI promises an iterator
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()

    return stream()


FOLLOW_POLL = 0.1  # seconds between looks at the log file when it has not grown


def _key(rec: LogRecord) -> tuple:
    return rec.time, rec.logger, rec.level, rec.message, rec.invocation_id


def _local_log_file(api: PlatformAPI, args: argparse.Namespace):
    """The log file of the data directory this command works on, when it is on this machine:
    owned here, or by another process reached through its private socket."""
    from pathlib import Path

    from core.local import LocalPlatform

    logs = getattr(api, "logs", None)
    if isinstance(api, LocalPlatform) and logs is not None:
        return Path(logs.path)
    url = str(getattr(api, "url", ""))
    if url.startswith("unix:"):
        return Path(url[len("unix:") :]).parent / "logs" / "cloudfn.jsonl"
    return None


def _file_end(path) -> tuple[int | None, int]:
    try:
        st = path.stat()
    except OSError:
        return None, 0
    return st.st_ino, st.st_size


async def _tail(path, start: tuple[int | None, int]):
    """Records appended to `path` from `start` (inode, offset) on, across rotations (the file
    renamed to .1 and a new one begun), for ever."""
    import asyncio

    inode, offset = start
    f = None
    pending = b""
    try:
        while True:
            if f is None:
                try:
                    # Blocking, as the reads below are: a regular local file, and following it is
                    # the only task on this command's loop.
                    f = open(path, "rb")  # noqa: ASYNC230
                except FileNotFoundError:
                    await asyncio.sleep(FOLLOW_POLL)
                    continue
                if os.fstat(f.fileno()).st_ino == inode:
                    f.seek(offset)
                inode = os.fstat(f.fileno()).st_ino
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    try:
                        yield LogRecord.model_validate_json(line)
                    except ValueError:
                        continue  # a torn line after a crash
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = True
            if rotated:  # the old file is read to its end above; go on with the new one
                f.close()
                f, pending = None, b""
                continue
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        if f is not None:
            f.close()


HISTORY_WINDOW = 3600  # seconds of history `metrics` counts when no owner keeps live counts
HISTORY_PAGE = 1000


async def cmd_metrics(api: PlatformAPI, args: argparse.Namespace) -> int:
    from core.local import LocalPlatform

    # Owning here means no console or server runs: live counts would start from zero, so the
    # history is counted instead (and whenever --since asks for a period).
    if args.since is not None or isinstance(api, LocalPlatform):
        since = args.since or datetime.fromtimestamp(datetime.now(UTC).timestamp() - HISTORY_WINDOW, UTC)
        engine, count = await _metrics_from_history(api, args.function, since)
        if args.prometheus:
            print(engine.prometheus(function_count=count), end="")
            return 0
        snap = engine.snapshot(args.function and (await api.get_function(args.function)).name, function_count=count)
        snap["source"] = "history"
        snap["since"] = since.isoformat()
        snap["uptime_seconds"] = None
    elif args.prometheus:
        print(await api.prometheus_metrics(), end="")
        return 0
    else:
        snap = await api.metrics(args.function)
    if args.json:
        output.print_json(snap)
        return 0
    print(output.metrics_text(snap))
    return 0


def _rule_fields(args: argparse.Namespace) -> dict:
    fields = {
        "metric": args.metric,
        "comparison": args.comparison,
        "threshold": args.threshold,
        "scope": args.scope,
        "window": args.window,
        "for": args.for_,
        "severity": args.severity,
        "webhook": args.webhook,
        "description": args.description,
        "enabled": args.enabled,
    }
    return {k: v for k, v in fields.items() if v is not None}


async def cmd_alerts_list(api: PlatformAPI, args: argparse.Namespace) -> int:
    rules = await api.list_alert_rules()
    states = {a.rule: a for a in await api.alerts()}
    if args.json:
        output.print_json(
            {
                "rules": [r.model_dump(mode="json", by_alias=True) for r in rules],
                "alerts": [a.model_dump(mode="json") for a in states.values()],
            }
        )
        return 0
    output.print_table(
        ["NAME", "STATE", "METRIC", "CONDITION", "SCOPE", "WINDOW", "FOR", "SEVERITY", "VALUE"],
        [
            [
                r.name,
                (states[r.name].state if r.name in states else "inactive") if r.enabled else "disabled",
                r.metric,
                f"{r.comparison} {r.threshold:g}",
                r.scope,
                f"{r.window}s",
                f"{r.for_}s",
                r.severity,
                "" if r.name not in states or states[r.name].value is None else f"{states[r.name].value:.4g}",
            ]
            for r in rules
        ],
    )
    return 0


async def cmd_alerts_add(api: PlatformAPI, args: argparse.Namespace) -> int:
    rule = await api.create_alert_rule({"name": args.name, **_rule_fields(args)})
    output.emit(rule.model_dump(mode="json", by_alias=True), args.json, lambda _: f"added alert rule {rule.name}")
    return 0


async def cmd_alerts_update(api: PlatformAPI, args: argparse.Namespace) -> int:
    fields = _rule_fields(args)
    if not fields:
        raise InvalidInput("alert rule", [FieldError("options", "nothing to change; pass --threshold, --window, ...")])
    rule = await api.update_alert_rule(args.name, fields)
    output.emit(rule.model_dump(mode="json", by_alias=True), args.json, lambda _: f"updated alert rule {rule.name}")
    return 0


async def _metrics_from_history(api: PlatformAPI, function: str | None, since: datetime):
    from core.metrics import Metrics

    engine = Metrics()
    records = []
    offset = 0
    while True:
        page = await api.list_invocations(function, None, since, None, HISTORY_PAGE, offset)
        records += page
        if len(page) < HISTORY_PAGE:
            break
        offset += len(page)
    for rec in reversed(records):  # oldest first, as they happened
        engine.record(rec)
    return engine, len(await api.list_functions())


async def cmd_alerts_delete(api: PlatformAPI, args: argparse.Namespace) -> int:
    rule = next((r for r in await api.list_alert_rules() if args.name in (r.name, r.id)), None)
    if rule is None:
        raise NotFound(f"no alert rule named {args.name!r} (`cloudfn alerts list` shows them)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInput(
                "alerts delete",
                [FieldError("--yes", f"needed to delete alert rule {rule.name!r} without a terminal to confirm on")],
            )
        answer = input(f"Delete alert rule {rule.name} ({rule.metric} {rule.comparison} {rule.threshold:g})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 0
    rule = await api.delete_alert_rule(rule.id)
    print(f"deleted alert rule {rule.name}")
    return 0


async def cmd_alerts_history(api: PlatformAPI, args: argparse.Namespace) -> int:
    items = await api.alert_history(args.limit)
    if args.json:
        output.print_json({"history": [a.model_dump(mode="json") for a in items], "count": len(items)})
        return 0
    if not items:
        print("no alert has changed state yet")
        return 0
    output.print_table(
        ["WHEN", "RULE", "STATE", "SEVERITY", "SUMMARY"],
        [[output.when(a.since) if a.since else "", a.rule, a.state, a.severity, a.summary] for a in items],
    )
    return 0
