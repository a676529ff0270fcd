"""`cloudfn deps NAME [--rebuild]`, and the build progress that create, update, deploy and
rollback show while a function's dependencies install (from the event stream, so it works
attached to a server too): a status line on a terminal, plain `build:` lines otherwise."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

from cloudfn_tui import output
from core.api import PlatformAPI
from core.errors import CloudfnError

BUILD_KINDS = {"build.started", "build.log", "build.finished"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DRAIN_SECONDS = 5.0  # after the call returns, for the events already on their way
CONNECT_SECONDS = 5.0  # at most, for a remote event stream to connect before the call starts


async def _either(event: asyncio.Event, task: asyncio.Future) -> None:
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "deps",
        help="list a function's installed dependencies (package, version)",
        description="list a function's installed dependencies; --rebuild reinstalls them",
    )
    c.set_defaults(run=cmd_deps)
    c.add_argument("name", help="name or id")
    c.add_argument("--rebuild", action="store_true", help="reinstall the dependencies (the cache entry is replaced)")
    c.add_argument("--json", action="store_true")


async def cmd_deps(api: PlatformAPI, args: argparse.Namespace) -> int:
    fn = await api.get_function(args.name)
    if args.rebuild:
        async with build_progress(api, fn.name):
            report = await api.function_dependencies(fn.id, rebuild=True)
    else:
        report = await api.function_dependencies(fn.id)
    if args.json:
        output.print_json(report)
        return 0
    if not report.get("manifest"):
        print(f"{fn.name} has no dependencies (set them with a {_manifest_hint(fn.runtime)})")
        return 0
    if not report.get("installed"):
        print(
            f"{fn.name}: the dependencies in its {report['manifest']} are not installed yet; "
            f"they install at its next invocation, or now with `cloudfn deps {fn.name} --rebuild`"
        )
        return 0
    output.print_table(["PACKAGE", "VERSION"], [[p["name"], p["version"]] for p in report["packages"]])
    size = report.get("bytes") or 0
    n = len(report["packages"])
    print(
        f"{n} package{'s' if n != 1 else ''} from {report['manifest']}, {size / 1e6:.1f} MB, "
        f"environment {report.get('key', '')[:12]}"
    )
    return 0


def _manifest_hint(runtime: str) -> str:
    return {"python": "requirements.txt", "nodejs": "package.json"}.get(runtime, "go.mod among its files")


class _Progress:
    def __init__(self, name: str, stream: TextIO):
        self.name = name
        self.stream = stream
        self.tty = stream.isatty()
        self.started = self.finished = False
        self.tick = 0
        self.lines = 0

    def show(self, kind: str, data: dict[str, Any]) -> None:
        if data.get("function") != self.name:
            return
        if kind == "build.started":
            self.started = True
            self._say(f"installing the dependencies of {self.name} ({data.get('manifest', '')})")
        elif kind == "build.log":
            self.lines += 1
            line = str(data.get("line", ""))
            if self.tty:
                self.tick += 1
                width = 100
                text = f"{SPINNER[self.tick % len(SPINNER)]} {line}"[:width]
                self.stream.write(f"\r\x1b[2K{text}")
                self.stream.flush()
            else:
                self._say(f"build: {line}")
        elif kind == "build.finished" and (self.started or self.lines):
            self.finished = True
            if data.get("ok"):
                n = len(data.get("packages") or [])
                self._say(f"installed {n} package{'s' if n != 1 else ''} in {data.get('seconds', 0):.2f} s")
            else:
                self._say("the install failed")

    def _say(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()


@contextlib.asynccontextmanager
async def build_progress(api: PlatformAPI, name: str, stream: TextIO | None = None) -> AsyncIterator[None]:
    """Show `name`'s build events while the body runs (on stderr: stdout stays the answer)."""
    progress = _Progress(name, stream or sys.stderr)
    bus = getattr(api, "bus", None)
    live: asyncio.Event | None = None
    if bus is not None:  # in process: the bus itself, without starting the platform's background work
        it = aiter(bus.subscribe(BUILD_KINDS))
    elif hasattr(api, "events"):
        it = api.events(BUILD_KINDS).__aiter__()
        if hasattr(api, "on_stream_state"):  # remote: start the call once the stream is live
            live = asyncio.Event()
            before = api.on_stream_state

            def state(s: str) -> None:
                if s == "live":
                    live.set()
                if before is not None:
                    before(s)

            api.on_stream_state = state
    else:
        yield
        return

    async def follow() -> None:
        async for ev in it:
            progress.show(ev.kind, ev.data)
            if progress.finished:
                return

    task = asyncio.ensure_future(follow())
    if live is not None:
        # An event, not a sleep: the stream says when it is connected (a server too old or gone
        # only costs the first lines, so the wait is bounded).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(_either(live, task)), CONNECT_SECONDS)
    try:
        yield
    except CloudfnError as exc:
        if progress.lines and not progress.tty:  # every line is on screen already: no second copy
            exc.log_shown = True  # type: ignore[attr-defined]
        raise
    finally:
        if progress.started and not progress.finished and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(task), DRAIN_SECONDS)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await it.aclose()
