"""The REST API's routes, one module per resource. `create_app` (app.py) builds a `Routes` and
calls each module's `add` in a fixed order: the order is the OpenAPI document's and, where two
paths could match, the router's. app.py imports this package inside `create_app`, so these
modules may import its helpers (json_response, parse_json_body...) at load time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput
from core.server import schema as S
from core.server.app import ServerSettings, ServerState, parse_json_body

V1 = "/api/v1"
FUNCTION_PARAM = S.param("function", {"type": "string"}, "a function's id or name (404 if there is none)")


@dataclass
class Routes:
    """What every route module needs: the app to add to, the platform behind it, the server's
    settings and state."""

    app: FastAPI
    platform: PlatformAPI
    settings: ServerSettings
    state: ServerState

    async def body_of(self, request: Request, what: str) -> Any:
        return parse_json_body(await request.body(), what)

    async def object_body(
        self,
        request: Request,
        what: str,
        schema: dict[str, Any] | None = None,
        model: Any = None,
        base: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data = await self.body_of(request, what)
        if not isinstance(data, dict):
            got = "nothing" if data is None else type(data).__name__
            raise InvalidInput(what, [FieldError("body", f"must be a JSON object, got {got}")])
        if schema is not None:
            S.check_body(schema, data, what, model, base)
        return data
