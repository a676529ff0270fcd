"""REST routes of asynchronous invocation (issue 16): the 202 answer of an `Event` invoke, the
status of an invocation, and the dead letters. Included from app.py; the invoke route itself
stays there (and in the guard's fast path), asking `async_requested` which kind it serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput
from core.models import AsyncInvocation, DeadLetter
from core.server import schema as S

INVOCATION_TYPE_HEADER = b"x-cloudfn-invocation-type"
_TYPES = {b"event": True, b"requestresponse": False}
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": True}


def async_requested(headers: list[tuple[bytes, bytes]], query_string: bytes) -> bool:
    """Whether an invoke request asks to be queued: `X-Cloudfn-Invocation-Type: Event` (as
    Lambda's `X-Amz-Invocation-Type`) or `?async=true`; either one is enough. A value neither
    knows is refused, so a typo never silently runs (and waits) synchronously."""
    wanted = None
    for name, value in headers:
        if name == INVOCATION_TYPE_HEADER:
            key = value.strip().lower()
            if key not in _TYPES:
                raise InvalidInput(
                    "invocation",
                    [
                        FieldError(
                            "X-Cloudfn-Invocation-Type",
                            f"must be Event (queue it, answer 202) or RequestResponse "
                            f"(wait for the result), got {value.decode('latin-1')[:40]!r}",
                        )
                    ],
                )
            wanted = _TYPES[key]
    if b"async" in query_string:
        from urllib.parse import parse_qsl

        for qkey, qvalue in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if qkey == "async":
                flag = _FLAGS.get(qvalue.lower())
                if flag is None:
                    raise InvalidInput(
                        "invocation", [FieldError("async", f"must be true or false, got {qvalue[:40]!r}")]
                    )
                wanted = bool(wanted) or flag
    return bool(wanted)


def accepted_payload(view: AsyncInvocation) -> dict[str, Any]:
    return {
        "invocation_id": view.invocation_id,
        "status": view.status,
        "function_id": view.function_id,
        "function_name": view.function_name,
    }


def status_payload(view: AsyncInvocation) -> dict[str, Any]:
    """`invocation` (the history record, or null while none exists) as the route always had
    it, beside where the invocation stands."""
    body = view.model_dump(mode="json", exclude={"record"})
    body["invocation"] = view.record.model_dump(mode="json") if view.record is not None else None
    return body


class Accepted(BaseModel):
    invocation_id: str
    status: str
    function_id: str
    function_name: str


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]
    count: int


class DeadLetterChanged(BaseModel):
    message: str
    dead_letter: DeadLetter


class Replayed(BaseModel):
    message: str
    invocation_id: str
    status: str
    function_id: str
    function_name: str


def add_routes(app: FastAPI, platform: PlatformAPI, json_response: Callable[..., Response]) -> None:
    v1 = "/api/v1"
    dead_id = S.param(
        "dead_letter_id", {"type": "string", "minLength": 1}, "its id, or a unique start of it", where="path"
    )

    @app.get(
        f"{v1}/dead-letters",
        tags=["async"],
        summary="dead letters, newest first",
        openapi_extra=S.params(
            S.param("function", {"type": "string"}, "a function's id or name"),
            S.param("limit", S.int_schema(1, 1000, 100)),
        ),
        responses=S.responses(DeadLetterList, 404, 422),
    )
    async def list_dead_letters(request: Request) -> Response:
        q = S.Query(request.query_params, "dead letter query")
        limit = q.integer("limit", 100, 1, 1000)
        q.done()
        items = await platform.list_dead_letters(function=q.text("function"), limit=limit)
        return json_response({"dead_letters": [d.model_dump(mode="json") for d in items], "count": len(items)})

    @app.post(
        f"{v1}/dead-letters/{{dead_letter_id}}/replay",
        tags=["async"],
        status_code=202,
        summary="queue a dead letter again (same invocation id, fresh retries)",
        openapi_extra=S.params(dead_id),
        responses=S.responses(Replayed, 404, 422, status=202),
    )
    async def replay_dead_letter(dead_letter_id: str) -> Response:
        view = await platform.replay_dead_letter(dead_letter_id)
        return json_response({"message": "dead letter queued again", **accepted_payload(view)}, 202)

    @app.delete(
        f"{v1}/dead-letters/{{dead_letter_id}}",
        tags=["async"],
        summary="delete a dead letter",
        openapi_extra=S.params(dead_id),
        responses=S.responses(DeadLetterChanged, 404, 422),
    )
    async def delete_dead_letter(dead_letter_id: str) -> Response:
        dead = await platform.delete_dead_letter(dead_letter_id)
        return json_response({"message": "dead letter deleted", "dead_letter": dead.model_dump(mode="json")})
