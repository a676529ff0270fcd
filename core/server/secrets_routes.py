"""The secrets routes, `/api/v1/secrets`: write-only. A value travels in one direction, in the
body of a PUT; no answer, error or log line of these routes carries one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput
from core.models import SECRET_NAME_RE
from core.secrets import MAX_VALUE_BYTES, SecretInfo

from . import schema as S


class SecretList(BaseModel):
    secrets: list[SecretInfo]
    count: int


class SecretChanged(BaseModel):
    message: str
    secret: SecretInfo


class KeyRotated(BaseModel):
    message: str
    rotated: int
    key_source: str


SET_BODY = S.body(
    {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            "value": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_VALUE_BYTES,
                "description": f"the secret's value: UTF-8 text, at most {MAX_VALUE_BYTES // 1024} KiB",
            }
        },
    }
)
# The route's own parameter, so the document states the rule and FastAPI enforces it (422).
NAME = Path(pattern=S.ecma(SECRET_NAME_RE), description="the secret's name (it becomes /run/secrets/NAME)")


def add_secret_routes(
    app: FastAPI,
    platform: PlatformAPI,
    body_of: Callable[..., Any],
    json_response: Callable[..., Response],
    v1: str = "/api/v1",
) -> None:
    @app.get(
        f"{v1}/secrets",
        tags=["secrets"],
        summary="secrets: names, sizes, when set, who holds them; never values",
        responses=S.responses(SecretList),
    )
    async def list_secrets() -> Response:
        items = await platform.list_secrets()
        return json_response({"secrets": [s.to_doc() for s in items], "count": len(items)})

    @app.put(
        f"{v1}/secrets/{{name}}",
        tags=["secrets"],
        summary="set a secret (create or replace)",
        description="The warm workers of every function holding it are replaced before the answer, so no "
        "invocation after it sees the old value. The answer never carries the value.",
        openapi_extra=SET_BODY,
        responses=S.responses(SecretChanged, 400, 422),
    )
    async def set_secret(request: Request, name: str = NAME) -> Response:
        data = await body_of(request, "secret")
        if not isinstance(data, dict):
            got = "nothing" if data is None else type(data).__name__
            raise InvalidInput("secret", [FieldError("body", f'must be a JSON object {{"value": "..."}}, got {got}')])
        extra = [k for k in data if k != "value"]
        if extra or "value" not in data:
            raise InvalidInput(
                "secret",
                [FieldError(k, "is not a known field") for k in extra]
                + ([FieldError("value", "is required")] if "value" not in data else []),
            )
        info = await platform.set_secret(name, data["value"])
        return json_response({"message": "secret set", "secret": info.to_doc()})

    @app.delete(
        f"{v1}/secrets/{{name}}",
        tags=["secrets"],
        summary="delete a secret",
        description="409 while a function holds it, unless `force=true`.",
        openapi_extra=S.params(S.param("force", {"type": "boolean"}, "delete even if held")),
        responses=S.responses(SecretChanged, 404, 409, 422),
    )
    async def delete_secret(request: Request, name: str = NAME) -> Response:
        raw = request.query_params.get("force", "false")
        if raw not in ("true", "false", "1", "0"):
            raise InvalidInput("secret deletion", [FieldError("force", f"must be true or false (got {raw!r})")])
        info = await platform.delete_secret(name, raw in ("true", "1"))
        return json_response({"message": "secret deleted", "secret": info.to_doc()})

    # Two segments: /secrets/{name} never matches it (a secret may be named "rotate-key").
    @app.post(
        f"{v1}/secrets/key/rotate",
        tags=["secrets"],
        summary="re-encrypt every secret under a new key",
        responses=S.responses(KeyRotated, 409),
    )
    async def rotate_key() -> Response:
        done = await platform.rotate_secrets_key()
        return json_response({"message": "secrets key rotated", **done})
