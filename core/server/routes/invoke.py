"""Synchronous and queued invocation (the hot path: no pydantic body model, one JSON encode)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from core.server import schema as S
from core.server.app import JSON_TYPE, invoke_answer, json_response, parse_invoke_body
from core.server.async_routes import Accepted as AsyncAccepted
from core.server.async_routes import accepted_payload, async_requested
from core.server.routes import V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    invoke_responses = S.invoke_responses()
    invoke_responses[202] = {
        "model": AsyncAccepted,
        "description": "queued (X-Cloudfn-Invocation-Type: Event or ?async=true): poll /api/v1/invocations/{id}",
    }

    @app.post(
        f"{V1}/functions/{{ref}}/invoke",
        tags=["invoke"],
        openapi_extra={
            **S.body(S.INVOKE_BODY, required=False),
            **S.params(
                S.param(
                    "X-Cloudfn-Invocation-Type",
                    {"type": "string", "enum": ["Event", "RequestResponse"]},
                    "Event: queue it and answer 202 at once",
                    where="header",
                ),
                S.param("async", {"type": "string", "enum": ["true", "false"]}, "true: the same as Event"),
            ),
        },
        summary="invoke a function; 200 with success true or false, 429 when throttled, 202 when queued",
        responses=invoke_responses,
    )
    async def invoke(ref: str, request: Request) -> Response:
        event, context = parse_invoke_body(await request.body())
        if async_requested(request.scope["headers"], request.scope["query_string"]):
            return json_response(accepted_payload(await platform.invoke_async(ref, event, context)), 202)
        status, payload, headers = invoke_answer(await platform.invoke(ref, event, context))
        return Response(payload, status, headers=headers, media_type=JSON_TYPE)
