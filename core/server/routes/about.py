"""Health, metrics and the server's own description: unversioned where the seed has them."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from core import __version__
from core.server import schema as S
from core.server.app import API_VERSION, JSON_TYPE, SERVICE, json_response
from core.server.routes import FUNCTION_PARAM, V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    async def health() -> Response:
        body: dict[str, Any] = {}
        extra = getattr(platform, "health", None)
        if extra is not None:
            with contextlib.suppress(Exception):
                body.update(await extra())
        body.update({"status": "ok", "service": SERVICE, "version": __version__, "api": API_VERSION})
        return json_response(body)

    for path in ("/api/health", "/api/v1/health"):
        app.add_api_route(
            path,
            health,
            methods=["GET"],
            tags=["about"],
            summary="health check (no token needed)",
            operation_id=f"health{'_v1' if 'v1' in path else ''}",
            responses=S.responses(S.Health, auth=False),
            openapi_extra={"security": []},
        )

    async def metrics_json(request: Request) -> Response:
        return json_response(await platform.metrics(request.query_params.get("function")))

    for path in ("/api/metrics", "/api/v1/metrics"):
        app.add_api_route(
            path,
            metrics_json,
            methods=["GET"],
            tags=["metrics"],
            operation_id=f"metrics_json{'_v1' if 'v1' in path else ''}",
            summary="the metrics snapshot as JSON (the seed's fields and more)",
            responses=S.responses(None, 404, ok_content={JSON_TYPE: {"schema": {"type": "object"}}}),
            openapi_extra=S.params(FUNCTION_PARAM),
        )

    @app.get(
        "/metrics",
        tags=["metrics"],
        summary="metrics in the Prometheus text format",
        responses=S.responses(None, ok_content={"text/plain": {"schema": {"type": "string"}}}),
    )
    async def metrics_prometheus() -> Response:
        text = await platform.prometheus_metrics()
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get(
        f"{V1}/info",
        tags=["about"],
        summary="version, paths, settings, runtimes, protections",
        responses=S.responses(None, ok_content={JSON_TYPE: {"schema": {"type": "object"}}}),
    )
    async def info() -> Response:
        return json_response(await platform.info())
