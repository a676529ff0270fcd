"""Commands on functions: info, list, get, create, update, deploy, import, delete, export, versions,
rollback, invoke."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cloudfn_tui import output
from cloudfn_tui.commands.deps import build_progress
from core.api import PlatformAPI
from core.envtext import parse_env
from core.errors import FieldError, InvalidInput, NotFound
from core.models import Function, InvokeResult
from core.secrets import credential_warnings

EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2


def register(sub: argparse._SubParsersAction) -> None:
    def cmd(name: str, help: str, handler) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(run=handler)
        return c

    c = cmd("info", "print version, paths, settings with their sources, runtimes and protections", cmd_info)
    c.add_argument("--json", action="store_true")
    c = cmd("list", "list functions", cmd_list)
    c.add_argument("--json", action="store_true")
    c = cmd("get", "show one function, its settings and code", cmd_get)
    c.add_argument("name", help="name or id")
    c.add_argument("--json", action="store_true")

    c = cmd("create", "create a function from a code file", cmd_create)
    c.add_argument("--name", required=True)
    c.add_argument("--runtime", required=True, help="python, nodejs (node) or go")
    c.add_argument("--file", required=True, type=Path, help="the code file")
    _settings_flags(c)
    c.add_argument("--json", action="store_true")

    c = cmd("update", "change a function; only what you pass changes", cmd_update)
    c.add_argument("name", help="name or id")
    c.add_argument("--name", dest="new_name", metavar="NEW_NAME", help="rename")
    c.add_argument("--file", type=Path, help="new code file")
    _settings_flags(c)
    c.add_argument("--unset-env", action="append", default=[], metavar="KEY", help="remove a variable")
    c.add_argument("--json", action="store_true")

    c = cmd(
        "deploy",
        "create or update a function from a folder with a function.yaml (every file in it "
        "but what .cloudfnignore lists)",
        cmd_deploy,
    )
    c.add_argument("dir", type=Path)
    c.add_argument("--json", action="store_true")

    c = cmd(
        "import",
        "create or update functions from the original platform's data folder (functions.json and its fn_* folders)",
        cmd_import,
    )
    c.add_argument("dir", type=Path, help="the folder holding functions.json (the original's ./data)")
    c.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    c.add_argument("--json", action="store_true")

    c = cmd("delete", "delete a function", cmd_delete)
    c.add_argument("name", help="name or id")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    c = cmd("export", "write a function as a folder (function.yaml, the code and every other file)", cmd_export)
    c.add_argument("name", help="name or id")
    c.add_argument("dir", type=Path)
    c.add_argument("--force", action="store_true", help="replace files already there")

    c = cmd("versions", "list the stored versions of a function", cmd_versions)
    c.add_argument("name", help="name or id")
    c.add_argument("--json", action="store_true")

    c = cmd("rollback", "make an earlier version current again (as a new version)", cmd_rollback)
    c.add_argument("name", help="name or id")
    c.add_argument("version", type=int)
    c.add_argument("--json", action="store_true")

    c = cmd("invoke", "invoke a function and print its result and logs", cmd_invoke)
    c.add_argument("name", help="name or id")
    ev = c.add_mutually_exclusive_group()
    ev.add_argument("--event", metavar="JSON", help="the event, as JSON (default: {})")
    ev.add_argument("--event-file", metavar="FILE", type=Path, help="read the event from a JSON file ('-' for stdin)")
    c.add_argument("--context", metavar="JSON", help="context, a JSON object of strings")
    c.add_argument("--json", action="store_true", help="print the whole invoke result as JSON")
    c.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="queue it and print its invocation id at once; retries follow the function's async settings",
    )
    c.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="with --async: wait up to SECONDS (at most 60) for it to succeed or become a dead letter",
    )


def _settings_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("--handler", help="the function to call (default: handler)")
    c.add_argument("--timeout", type=int, metavar="SECONDS")
    c.add_argument("--memory", type=int, metavar="MB")
    c.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable (repeatable)")
    c.add_argument("--description")
    c.add_argument("--max-concurrency", type=int, metavar="N")
    c.add_argument(
        "--network", action=argparse.BooleanOptionalAction, default=None, help="allow network access (off by default)"
    )
    # secrets (issue 17): names only; values are set with `cloudfn secrets set`
    c.add_argument(
        "--secret",
        action="append",
        default=None,
        metavar="NAME",
        help="a secret the function may read at /run/secrets/NAME (repeatable; replaces the list)",
    )
    c.add_argument(
        "--secret-env",
        action="append",
        default=None,
        metavar="ENV=NAME",
        help="set variable ENV to secret NAME's value (repeatable; replaces the mapping)",
    )
    c.add_argument(
        "--deps-file",
        type=Path,
        metavar="FILE",
        help="the dependency manifest: requirements.txt (python) or package.json (nodejs)",
    )
    c.add_argument(
        "--source-builds",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let Python dependencies build from source (runs their build code, sandboxed)",
    )
    c.add_argument(
        "--async",
        dest="async_settings",
        metavar="JSON",
        help='asynchronous invocation settings, e.g. \'{"max_retries": 1, "retry_backoff": 5, '
        '"on_failure": "alert-fn"}\' (replaces the whole block)',
    )


async def cmd_info(api: PlatformAPI, args: argparse.Namespace) -> int:
    info = await api.info()
    output.emit(info, args.json, output.info_text)
    return 0


async def cmd_list(api: PlatformAPI, args: argparse.Namespace) -> int:
    fns = await api.list_functions()
    if args.json:
        output.print_json({"functions": [f.to_doc() for f in fns], "count": len(fns)})
    else:
        output.print_function_table(fns)
    return 0


async def cmd_get(api: PlatformAPI, args: argparse.Namespace) -> int:
    fn = await api.get_function(args.name)
    triggers = await api.function_triggers(fn.id) if hasattr(api, "function_triggers") else None
    doc = {"function": fn.to_doc()}
    if triggers is not None:  # the endpoint and the schedules' next runs (issue 16)
        doc["triggers"] = triggers.model_dump(mode="json")

    def text(_: object) -> str:
        if triggers is None:
            return output.function_text(fn)
        from cloudfn_tui.triggers_text import triggers_text

        head, _, code = output.function_text(fn).partition("\n\n")
        width = max(len(line.split("  ", 1)[0]) for line in head.splitlines())
        return f"{head}\n{triggers_text(triggers, width)}\n\n{code}"

    output.emit(doc, args.json, text)
    return 0


def _read_code(path: Path, flag: str = "file") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else exc
        raise InvalidInput("function", [FieldError(flag, f"cannot read {path}: {why}")]) from None


def _settings_from(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "handler": args.handler,
        "timeout": args.timeout,
        "memory": args.memory,
        "description": args.description,
        "max_concurrency": args.max_concurrency,
        "network": args.network,
        "secrets": [n for n in args.secret if n] if args.secret is not None else None,
        "secret_env": parse_env(args.secret_env, "secret-env", form="ENV=NAME")
        if args.secret_env is not None
        else None,
        "source_builds": getattr(args, "source_builds", None),
        "async": _json_arg(args.async_settings, "--async") if args.async_settings is not None else None,
    }
    if getattr(args, "deps_file", None) is not None:
        fields["dependencies"] = _read_code(args.deps_file, "--deps-file")
    return {k: v for k, v in fields.items() if v is not None}


def _print_saved(fn: Function, verb: str, as_json: bool) -> None:
    warnings = credential_warnings(fn.environment)
    if as_json:
        output.print_json({"message": f"function {verb}", "function": fn.to_doc(), "warnings": warnings})
    else:
        files = f", {len(fn.files) + 1} files" if fn.files else ""  # the handler file counts too
        print(f"{verb} {fn.name} ({fn.runtime}, version {fn.version}{files}, id {fn.id})")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)


async def cmd_create(api: PlatformAPI, args: argparse.Namespace) -> int:
    data = {"name": args.name, "runtime": args.runtime, "code": _read_code(args.file), **_settings_from(args)}
    if args.env:
        data["environment"] = parse_env(args.env)
    async with build_progress(api, args.name):
        fn = await api.create_function(data)
    _print_saved(fn, "created", args.json)
    return 0


async def cmd_update(api: PlatformAPI, args: argparse.Namespace) -> int:
    data = _settings_from(args)
    if args.new_name:
        data["name"] = args.new_name
    if args.file:
        data["code"] = _read_code(args.file)
    if args.env or args.unset_env:
        env = dict((await api.get_function(args.name)).environment)
        env.update(parse_env(args.env))
        for key in args.unset_env:
            env.pop(key, None)
        data["environment"] = env
    if not data:
        raise InvalidInput("update", [FieldError("options", "nothing to change; pass --file, --timeout, --env, ...")])
    async with build_progress(api, (await api.get_function(args.name)).name):
        fn = await api.update_function(args.name, data)
    _print_saved(fn, "updated", args.json)
    return 0


async def cmd_deploy(api: PlatformAPI, args: argparse.Namespace) -> int:
    from core.bundle import load_bundle

    spec = load_bundle(args.dir).spec
    try:
        existing = await api.get_function(spec.name)
    except NotFound:
        async with build_progress(api, spec.name):
            fn = await api.create_function(spec.model_dump())
        _print_saved(fn, "created", args.json)
        return 0
    async with build_progress(api, existing.name):
        fn = await api.update_function(existing.id, spec.model_dump())
    _print_saved(fn, "updated", args.json)
    return 0


async def cmd_import(api: PlatformAPI, args: argparse.Namespace) -> int:
    from core.importer import import_seed_folder, summary

    outcomes = await import_seed_folder(api, args.dir, dry_run=args.dry_run)
    failed = sum(1 for o in outcomes if o.action == "failed")
    if args.json:
        output.print_json(
            {
                "dry_run": args.dry_run,
                "results": [vars(o) for o in outcomes],
                "summary": summary(outcomes, args.dry_run),
            }
        )
    else:
        for o in outcomes:
            print(o.line(args.dry_run))
        print(summary(outcomes, args.dry_run))
    # Every entry was tried; a failed one still fails the command, so scripts notice.
    return EXIT_INVALID_INPUT if failed else 0


async def cmd_delete(api: PlatformAPI, args: argparse.Namespace) -> int:
    fn = await api.get_function(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInput(
                "delete", [FieldError("--yes", f"needed to delete {fn.name!r} without a terminal to confirm on")]
            )
        answer = input(f"Delete function {fn.name} ({fn.runtime}, version {fn.version})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 0
    await api.delete_function(fn.id)
    print(f"deleted {fn.name}")
    return 0


async def cmd_export(api: PlatformAPI, args: argparse.Namespace) -> int:
    from core.bundle import export_bundle

    fn = await api.get_function(args.name)
    written = export_bundle(fn, args.dir, overwrite=args.force)
    shown = ", ".join(str(p) for p in written[:2])
    if len(written) > 2:  # a folder of hundreds of files: the count, not every name
        shown += f" and {len(written) - 2} more file{'s' if len(written) > 3 else ''} in {args.dir}"
    print(f"exported {fn.name} to {shown}")
    return 0


async def cmd_versions(api: PlatformAPI, args: argparse.Namespace) -> int:
    versions = await api.function_versions(args.name)
    if args.json:
        output.print_json({"versions": [v.to_doc() for v in versions], "count": len(versions)})
    else:
        output.print_table(
            ["VERSION", "UPDATED", "RUNTIME", "HANDLER", "TIMEOUT", "MEMORY", "CODE"],
            [
                [
                    v.version,
                    output.when(v.updated_at),
                    v.runtime,
                    v.handler,
                    f"{v.timeout}s",
                    f"{v.memory}MB",
                    f"{len(v.code.splitlines())} lines",
                ]
                for v in versions
            ],
        )
    return 0


async def cmd_rollback(api: PlatformAPI, args: argparse.Namespace) -> int:
    async with build_progress(api, (await api.get_function(args.name)).name):
        fn = await api.rollback_function(args.name, args.version)
    _print_saved(fn, f"rolled back to version {args.version}:", args.json)
    return 0


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "invocation", [FieldError(flag, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None


async def cmd_invoke(api: PlatformAPI, args: argparse.Namespace) -> int:
    event: Any = {}
    if args.event is not None:
        event = _json_arg(args.event, "--event")
    elif args.event_file is not None:
        try:
            text = sys.stdin.read() if str(args.event_file) == "-" else args.event_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                "invocation", [FieldError("--event-file", f"cannot read {args.event_file}: {exc.strerror}")]
            ) from None
        event = _json_arg(text, "--event-file")
    context = None
    if args.context is not None:
        context = _json_arg(args.context, "--context")
    if args.asynchronous or args.wait is not None:
        from cloudfn_tui.commands.dead_letters import invoke_async

        return await invoke_async(api, args, event, context)
    result: InvokeResult = await api.invoke(args.name, event, context)
    if args.json:
        output.print_json(result.model_dump(mode="json"))
    else:
        output.print_invoke_result(result)
    return 0 if result.success else EXIT_FAILED
