"""The live event stream (Server-Sent Events) and its writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from core.errors import FieldError, InvalidInput
from core.events import DroppingQueue
from core.models import EVENT_KINDS, Event
from core.server import schema as S
from core.server.app import ServerSettings, ServerState
from core.server.routes import V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    @app.get(
        f"{V1}/events",
        tags=["events"],
        summary="Server-Sent Events: function changes, invocations, log lines, alerts, from now on",
        description="`kinds` filters (comma-separated or repeated): "
        + ", ".join(EVENT_KINDS)
        + f". Each event is `id: <seq>`, `event: <kind>`, `data: <JSON Event>`; a comment line "
        f"every {r.settings.heartbeat:g} s keeps idle connections open.",
        openapi_extra=S.params(
            S.param(
                "kinds",
                {"type": "array", "items": {"type": "string", "pattern": S.KINDS_PATTERN}},
                "event kinds, comma-separated or repeated",
            )
        ),
        responses=S.responses(None, 422, ok_content={"text/event-stream": {"schema": {"type": "string"}}}),
    )
    async def events(request: Request) -> Response:
        kinds = request.query_params.getlist("kinds")
        wanted: set[str] | None = None
        if kinds:
            wanted = {k.strip(" \t") for item in kinds for k in item.split(",") if k.strip(" \t")}
            bad = sorted(wanted - set(EVENT_KINDS))
            if bad:
                known = ", ".join(EVENT_KINDS)
                raise InvalidInput(
                    "event stream", [FieldError("kinds", f"unknown kind {k!r} (known: {known})") for k in bad]
                )
        source = platform.events(wanted or None)
        return StreamingResponse(
            _sse(source, r.settings, r.state),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )


_HEARTBEAT: Any = object()  # in an SSE queue: nothing came for a heartbeat's time
SSE_BATCH = 64  # events joined into one write at most: a backlog still leaves in bounded chunks


def _offer_heartbeat(queue: DroppingQueue[Any]) -> None:
    if queue.empty():  # an event already waiting is a sign of life enough
        queue.offer(_HEARTBEAT)


async def _sse(source: AsyncIterator[Event], settings: ServerSettings, state: ServerState) -> AsyncIterator[bytes]:
    """Pump the platform's stream into a bounded queue (a slow client loses events, never stalls
    the platform), and write it out with heartbeats until the client leaves or the server stops."""
    queue: DroppingQueue[Any] = DroppingQueue(settings.sse_queue)

    async def pump() -> None:
        try:
            async for ev in source:
                queue.offer(ev)
        finally:
            queue.end(None)

    state.streams.add(queue)
    task = asyncio.create_task(pump())
    try:
        yield b": connected\n\n"
        loop = asyncio.get_running_loop()
        while True:
            if queue.empty():
                # A timer that offers a heartbeat mark, not wait_for: wait_for runs the get as a
                # task of its own and costs each event two more turns of the loop on its way out.
                timer = loop.call_later(settings.heartbeat, _offer_heartbeat, queue)
                try:
                    ev = await queue.get()
                finally:
                    timer.cancel()
            else:
                ev = queue.get_nowait()
            # What else is queued already goes out in the same chunk: one send through Starlette
            # and uvicorn (their checks, a held write) per loop pass, not one per event: under
            # load an invocation.finished comes with every request served.
            chunk: list[bytes] = []
            while True:
                if ev is None:
                    if state.shutting_down:
                        chunk.append(b"event: shutdown\ndata: {}\n\n")
                    if chunk:
                        yield b"".join(chunk)
                    return
                if ev is _HEARTBEAT:
                    chunk.append(b": heartbeat\n\n")
                else:
                    dropped = queue.take_dropped()
                    if dropped:
                        chunk.append(f": dropped {dropped} events (slow reader)\n\n".encode())
                    chunk.append(
                        b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.seq, ev.kind.encode(), ev.model_dump_json().encode())
                    )
                if queue.empty() or len(chunk) >= SSE_BATCH:
                    break
                ev = queue.get_nowait()
            yield b"".join(chunk)
    finally:
        state.streams.discard(queue)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()
