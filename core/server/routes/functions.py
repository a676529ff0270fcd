"""Function CRUD: list, create, get, update (PUT and PATCH, both partial), delete, versions,
rollback."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from core.errors import FieldError, InvalidInput
from core.models import Function, FunctionPatch, FunctionSpec
from core.secrets import credential_warnings
from core.server import schema as S
from core.server.app import json_response
from core.server.routes import V1, Routes
from core.server.trigger_routes import refuse_public_without_token


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    create_body, patch_body = S.function_body(), S.function_body(patch=True)

    @app.get(f"{V1}/functions", tags=["functions"], summary="list functions", responses=S.responses(S.FunctionList))
    async def list_functions() -> Response:
        fns = await platform.list_functions()
        return json_response({"functions": [f.to_doc() for f in fns], "count": len(fns)})

    @app.post(
        f"{V1}/functions",
        tags=["functions"],
        status_code=201,
        summary="create a function",
        openapi_extra=create_body,
        responses=S.responses(S.FunctionChanged, 400, 404, 409, 422, status=201),
    )
    async def create_function(request: Request) -> Response:
        data = await r.object_body(request, "function", create_body, FunctionSpec)
        refuse_public_without_token(data, r.settings.refuse_public)
        fn = await platform.create_function(data)
        return json_response(_with_warnings({"message": "function created", "function": fn.to_doc()}, fn), 201)

    @app.get(
        f"{V1}/functions/{{ref}}",
        tags=["functions"],
        summary="one function, by id or name",
        responses=S.responses(S.FunctionAnswer, 404),
    )
    async def get_function(ref: str) -> Response:
        return json_response({"function": (await platform.get_function(ref)).to_doc()})

    async def update_function(ref: str, request: Request) -> Response:
        data = await r.object_body(request, "function update", patch_body, FunctionPatch)
        refuse_public_without_token(data, r.settings.refuse_public)
        fn = await platform.update_function(ref, data)
        return json_response(_with_warnings({"message": "function updated", "function": fn.to_doc()}, fn))

    for method, summary in (
        ("PUT", "update a function: only the fields sent change"),
        ("PATCH", "the same as PUT (updates are partial)"),
    ):
        app.add_api_route(
            f"{V1}/functions/{{ref}}",
            update_function,
            methods=[method],
            tags=["functions"],
            operation_id=f"update_function_{method.lower()}",
            summary=summary,
            openapi_extra=patch_body,
            responses=S.responses(S.FunctionChanged, 400, 404, 409, 422),
        )

    @app.delete(
        f"{V1}/functions/{{ref}}",
        tags=["functions"],
        summary="delete a function",
        responses=S.responses(S.FunctionChanged, 404),
    )
    async def delete_function(ref: str) -> Response:
        fn = await platform.delete_function(ref)
        return json_response({"message": "function deleted", "function": fn.to_doc()})

    @app.get(
        f"{V1}/functions/{{ref}}/versions",
        tags=["functions"],
        summary="every stored version, oldest first",
        responses=S.responses(S.VersionList, 404),
    )
    async def function_versions(ref: str) -> Response:
        versions = await platform.function_versions(ref)
        return json_response({"versions": [v.to_doc() for v in versions], "count": len(versions)})

    rollback_body = S.body(S.ROLLBACK_BODY)

    @app.post(
        f"{V1}/functions/{{ref}}/rollback",
        tags=["functions"],
        summary="make an earlier version current again (as a new version)",
        openapi_extra=rollback_body,
        responses=S.responses(S.FunctionChanged, 400, 404, 409, 422),
    )
    async def rollback_function(ref: str, request: Request) -> Response:
        data = await r.object_body(request, "rollback")
        version: Any = data.get("version")
        if isinstance(version, float) and version.is_integer():
            version = int(version)  # JSON does not tell 2 from 2.0
        bad = [FieldError(k, "is not a known field") for k in data if k != "version"]
        if "version" not in data:
            bad.insert(0, FieldError("version", "is required"))
        elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
            bad.insert(0, FieldError("version", f"must be a whole number of at least 1 (got {version!r})"))
        if bad:
            raise InvalidInput("rollback", bad)
        fn = await platform.rollback_function(ref, version)
        return json_response({"message": f"function rolled back to version {version}", "function": fn.to_doc()})


def _with_warnings(body: dict[str, Any], fn: Function) -> dict[str, Any]:
    """Secrets (issue 17): environment keys that look like credentials. Only when there are some,
    so the seed's clients keep seeing exactly {message, function}."""
    warnings = credential_warnings(fn.environment)
    return {**body, "warnings": warnings} if warnings else body
