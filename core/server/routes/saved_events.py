"""A function's saved test events (named events the console's invoke form offers)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from core.errors import FieldError, InvalidInput
from core.server import schema as S
from core.server.app import json_response
from core.server.routes import V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    @app.get(
        f"{V1}/functions/{{ref}}/saved-events",
        tags=["saved events"],
        summary="a function's saved test events",
        responses=S.responses(S.SavedEventList, 404),
    )
    async def list_saved_events(ref: str) -> Response:
        events = await platform.list_saved_events(ref)
        return json_response({"saved_events": [e.model_dump(mode="json") for e in events], "count": len(events)})

    saved_name = S.param(
        "name",
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": S.NOT_BLANK},
        "the event's name: 1-64 characters, not blank (kept stripped)",
        where="path",
    )
    saved_body = S.body(S.SAVED_EVENT_BODY)

    @app.put(
        f"{V1}/functions/{{ref}}/saved-events/{{name}}",
        tags=["saved events"],
        summary="save (create or replace) a named test event",
        openapi_extra={**saved_body, **S.params(saved_name)},
        responses=S.responses(S.SavedEventChanged, 400, 404, 422),
    )
    async def save_event(ref: str, request: Request) -> Response:
        name = request.path_params["name"]
        data = await r.object_body(request, "saved event", saved_body)
        bad = [FieldError(k, "is not a known field") for k in data if k not in ("event", "last_result")]
        if bad:
            raise InvalidInput("saved event", bad)
        saved = await platform.save_event(ref, name, data.get("event"), data.get("last_result"))
        return json_response({"message": "event saved", "saved_event": saved.model_dump(mode="json")})

    @app.delete(
        f"{V1}/functions/{{ref}}/saved-events/{{name}}",
        tags=["saved events"],
        summary="delete a saved test event",
        openapi_extra=S.params(saved_name),
        responses=S.responses(S.Message, 404, 422),
    )
    async def delete_saved_event(ref: str, request: Request) -> Response:
        await platform.delete_saved_event(ref, request.path_params["name"])
        return json_response({"message": "saved event deleted"})
