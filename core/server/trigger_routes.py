"""Routes of the triggers (issue 16): a function's endpoint URL, rate limit and schedules with
their next runs; and the rule that a server without a token has no public endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput
from core.models import FunctionTriggers
from core.server import schema as S


class TriggersAnswer(BaseModel):
    triggers: FunctionTriggers


def refuse_public_without_token(data: Any, refuse: bool) -> None:
    """A --no-auth server answers only this machine, and keeps web pages out of its endpoints;
    a public endpoint promises the opposite, so it is refused rather than silently not kept."""
    if refuse and isinstance(data, dict) and isinstance(data.get("http"), dict) and data["http"].get("public"):
        raise InvalidInput(
            "function",
            [
                FieldError(
                    "http.public",
                    "this server runs without a token (--no-auth, loopback only), where no endpoint can be "
                    "public: serve with a token (drop --no-auth) to publish endpoints",
                )
            ],
        )


def add_trigger_routes(app: FastAPI, platform: PlatformAPI) -> None:
    @app.get(
        "/api/v1/functions/{ref}/triggers",
        tags=["functions"],
        summary="the function's endpoint URL, rate limit and schedules with their next runs",
        responses=S.responses(TriggersAnswer, 404),
    )
    async def function_triggers(ref: str, request: Request) -> Response:
        from core.server.app import json_response

        triggers = await platform.function_triggers(ref)
        server = request.scope.get("server")
        if server and server[1] is not None:
            # Over TCP: the URL this client reached us by. (Over the owner's unix socket there is
            # none; a `cloudfn serve` owner has filled in its own, a console owner none.)
            base = str(request.base_url).rstrip("/")
            triggers.endpoint = f"{base}/fn/{quote(triggers.function_name, safe='')}"
        return json_response({"triggers": triggers.model_dump(mode="json")})
