"""Invocation history: every invocation's record, and one invocation's status by id."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from core.errors import FieldError, InvalidInput
from core.models import TRIGGERS
from core.server import schema as S
from core.server.app import json_response
from core.server.async_routes import status_payload
from core.server.routes import FUNCTION_PARAM, V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    history_params = (
        S.param("status", {"type": "string", "enum": list(S.STATUSES)}),
        S.param("since", S.TIME_SCHEMA, "only invocations started at or after this time"),
        S.param("until", S.TIME_SCHEMA, "only invocations started at or before this time"),
        S.param("limit", S.int_schema(1, 1000, 50)),
        S.param("offset", S.int_schema(0, None, 0)),
        S.param("trigger", {"type": "string", "enum": list(TRIGGERS)}, "how the invocations were started"),
    )

    async def _invocations(function: str | None, request: Request) -> Response:
        q = S.Query(request.query_params, "history query")
        status = q.choice("status", S.STATUSES)
        since, until = q.time("since"), q.time("until")
        limit, offset = q.integer("limit", 50, 1, 1000), q.integer("offset", 0, 0)
        trigger = q.choice("trigger", TRIGGERS)
        q.done()
        records = await platform.list_invocations(
            function=function, status=status, since=since, until=until, limit=limit, offset=offset, trigger=trigger
        )
        return json_response({"invocations": [r.model_dump(mode="json") for r in records], "count": len(records)})

    @app.get(
        f"{V1}/invocations",
        tags=["history"],
        summary="invocation history, newest first",
        openapi_extra=S.params(FUNCTION_PARAM, *history_params),
        responses=S.responses(S.InvocationList, 404, 422),
    )
    async def list_invocations(request: Request) -> Response:
        return await _invocations(request.query_params.get("function"), request)

    @app.get(
        f"{V1}/functions/{{ref}}/invocations",
        tags=["history"],
        summary="one function's invocations, newest first",
        openapi_extra=S.params(*history_params),
        responses=S.responses(S.InvocationList, 404, 422),
    )
    async def function_invocations(ref: str, request: Request) -> Response:
        return await _invocations(ref, request)

    @app.get(
        f"{V1}/invocations/{{invocation_id}}",
        tags=["history"],
        summary="one invocation: its history record (`invocation`, null until an asynchronous one ran) and "
        "`status`: queued, running, failed (a retry is due), success, dead; or a synchronous "
        "one's success, failed, throttled",
        openapi_extra=S.params(
            S.param(
                "wait",
                {"type": "number", "minimum": 0, "maximum": 60},
                "seconds to wait, at most, for it to succeed or become a dead letter",
            )
        ),
        responses=S.responses(S.InvocationAnswer, 404, 422),
    )
    async def get_invocation(invocation_id: str, request: Request) -> Response:
        raw = request.query_params.get("wait")
        wait = 0.0
        if raw is not None:
            try:
                wait = float(raw)
            except ValueError:
                wait = -1.0
            if not 0 <= wait <= 60:
                raise InvalidInput(
                    "invocation status", [FieldError("wait", f"must be from 0 to 60 seconds (got {raw[:40]!r})")]
                )
        return json_response(status_payload(await platform.invocation_status(invocation_id, wait)))
