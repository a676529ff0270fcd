"""The log query."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from core.server import schema as S
from core.server.app import json_response
from core.server.routes import V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    @app.get(
        f"{V1}/logs",
        tags=["logs"],
        summary="query logs: oldest first within the newest `limit` matches",
        openapi_extra=S.params(
            S.param("level", {"type": "string", "enum": list(S.LEVEL_CHOICES)}, "this level and above"),
            S.param("function", {"type": "string"}, "a function's name"),
            S.param("invocation_id", {"type": "string"}),
            S.param("text", {"type": "string"}, "lines containing this text"),
            S.param("since", S.TIME_SCHEMA),
            S.param("until", S.TIME_SCHEMA),
            S.param("limit", S.int_schema(1, 10_000, 200)),
        ),
        responses=S.responses(S.LogList, 422),
    )
    async def query_logs(request: Request) -> Response:
        q = S.Query(request.query_params, "log query")
        level = q.choice("level", S.LEVEL_CHOICES)
        since, until = q.time("since"), q.time("until")
        limit = q.integer("limit", 200, 1, 10_000)
        q.done()
        records = await platform.query_logs(
            level=level,
            function=q.text("function"),
            invocation_id=q.text("invocation_id"),
            text=q.text("text"),
            since=since,
            until=until,
            limit=limit,
        )
        return json_response({"logs": [r.model_dump(mode="json") for r in records], "count": len(records)})
