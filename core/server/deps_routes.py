"""Routes for a function's dependencies (issue 15): what is installed, and a reinstall."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from core.api import PlatformAPI
from core.server import schema as S

DEPS_ANSWER = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "function": {"type": "string"},
                "runtime": {"type": "string"},
                "manifest": {"type": ["string", "null"], "description": "requirements.txt or package.json; null: none"},
                "installed": {"type": "boolean"},
                "key": {"type": "string"},
                "packages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                    },
                },
                "bytes": {"type": "integer"},
                "seconds": {"type": ["number", "null"]},
                "installed_at": {"type": ["string", "null"]},
            },
        }
    }
}


def add(app: FastAPI, platform: PlatformAPI, v1: str) -> None:
    from core.server.app import json_response

    @app.get(
        f"{v1}/functions/{{ref}}/dependencies",
        tags=["functions"],
        summary="the packages installed for a function (name and version)",
        responses=S.responses(None, 404, ok_content=DEPS_ANSWER),
    )
    async def function_dependencies(ref: str) -> Response:
        return json_response(await platform.function_dependencies(ref))

    @app.post(
        f"{v1}/functions/{{ref}}/dependencies/rebuild",
        tags=["functions"],
        summary="reinstall a function's dependencies (422 BuildError with the installer's log if it fails)",
        responses=S.responses(None, 404, 422, ok_content=DEPS_ANSWER),
    )
    async def rebuild_dependencies(ref: str) -> Response:
        return json_response(await platform.function_dependencies(ref, rebuild=True))
