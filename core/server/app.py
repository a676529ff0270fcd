"""The FastAPI application: its factory, error mapping, OpenAPI and the guard (auth, body limit,
shutdown). The routes live in routes/, one module per resource, and in the *_routes modules.

Wire format (the seed's, extended; see seed/README.md):
- create answers 201 `{"message", "function"}`, list `{"functions", "count"}`, get `{"function"}`,
  update (PUT, partial) and delete `{"message", "function"}`;
- invoke takes `{"event", "context"}` and answers the InvokeResult itself: `{"success", "result",
  "error" (a string), "duration" (ms), "memory_used", "error_type", ...}`. 200 whether the
  function succeeded or failed (the request was served; `success` and the `X-Cloudfn-Error-Type`
  header tell a failure, as Lambda's Invoke API does), 429 with the same body when throttled;
- errors answer `{"error": message, "type": ErrorClass, "status": code}`; invalid input adds
  `"what"` and `"errors": [{"field", "message"}, ...]` naming every bad field.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from core import __version__
from core.api import PlatformAPI
from core.errors import BuildError, CloudfnError, FieldError, InvalidInput
from core.events import DroppingQueue
from core.jsonlimits import JSONLimitError, field_path, json_safe, loads_checked
from core.models import ErrorType, Event, InvokeResult
from core.server import deps_routes
from core.server import schema as S
from core.server._fastapi_compat import LeanFastAPI
from core.server.async_routes import accepted_payload, async_requested
from core.server.async_routes import add_routes as add_async_routes
from core.server.browser_checks import BrowserHeaders, api_refusal
from core.server.secrets_routes import add_secret_routes
from core.server.trigger_routes import add_trigger_routes

log = logging.getLogger("cloudfn.server")

SERVICE = "cloudfn"
API_VERSION = 1  # bumped on an incompatible change of the wire format; RemotePlatform checks it
HEALTH_PATHS = frozenset({"/api/health", "/api/v1/health"})
DEFAULT_MAX_BODY = 6 * 1024 * 1024  # like Lambda's synchronous payload limit
JSON_TYPE = "application/json"


@dataclass
class ServerSettings:
    token: str | None = None  # None: no auth (only allowed on loopback; `serve` enforces it)
    max_body: int = DEFAULT_MAX_BODY
    cors_origins: list[str] = field(default_factory=list)
    heartbeat: float = 15.0  # seconds between SSE heartbeat comments
    sse_queue: int = 1000  # events buffered per SSE client before it loses some
    fast_invoke: bool = True  # serve POST .../invoke in the guard, past the framework's routing
    # Without a token, any web page the user opens can reach a loopback server: a DNS-rebound name
    # or a cross-site "simple" request (a form, text/plain fetch) needs no preflight. None: on
    # exactly when there is no token. See core/server/browser_checks.py.
    loopback_only: bool | None = None
    # -- HTTP endpoints (issue 16): a --no-auth TCP server refuses to make endpoints public (the
    # owner's private socket, also token-less, does not: it is the owner's user at the console) --
    refuse_public: bool = False


class ServerState:
    """What the runner and the routes share: whether the server is shutting down, and the
    live SSE streams to end when it does."""

    def __init__(self) -> None:
        self.shutting_down = False
        self.in_flight = 0  # requests being served (the 503s of a shutdown are not counted)
        self.streams: set[DroppingQueue[Event | None]] = set()
        self._drained: asyncio.Event | None = None

    def request_done(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None:
            self._drained.set()

    async def wait_drained(self, timeout: float) -> bool:
        """Wait (on the loop) until no request is being served, `timeout` seconds at most, or
        until `stop_waiting`. True when drained."""
        if self._drained is None:
            self._drained = asyncio.Event()
        if self.in_flight == 0:
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)
        return self.in_flight == 0

    def stop_waiting(self) -> None:
        """Call on the event loop's thread (a forced exit)."""
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.set()

    def begin_shutdown(self) -> None:
        """Call on the event loop's thread."""
        self.shutting_down = True
        if self._drained is None:
            self._drained = asyncio.Event()
        for q in list(self.streams):
            q.end(None)


# -- errors ---------------------------------------------------------------------------------
class MalformedBody(InvalidInput):
    http_status = 400


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


# Made once: json.dumps with options builds a new encoder on every call.
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(data: Any) -> bytes:
    try:
        return _compact_json(data).encode()
    except (ValueError, RecursionError):  # a lone surrogate or a huge integer got this far: answer, not 500
        return _compact_json(json_safe(data)).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(data), status, headers=headers, media_type=JSON_TYPE)


def error_body(exc: CloudfnError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message, "type": type(exc).__name__, "status": exc.http_status}
    if isinstance(exc, InvalidInput):
        body["what"] = exc.what
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    if isinstance(exc, BuildError):
        body["log"] = exc.log
    return body


def _validation_errors(exc: RequestValidationError) -> InvalidInput:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("query", "path", "body", "header"):
            loc = loc[1:]
        name = ".".join(loc) or "request"
        errors.append(FieldError(name, f"{err.get('msg', 'is invalid')} (got {err.get('input')!r})"))
    return InvalidInput("request", errors)


# -- invoke: shared by the route and the guard's fast path -------------------------------------
INVOKE_PREFIX, INVOKE_SUFFIX = "/api/v1/functions/", "/invoke"


def parse_json_body(raw: bytes, what: str) -> Any:
    if not raw.strip():
        return None
    try:
        return loads_checked(raw)
    except JSONLimitError as exc:
        raise MalformedBody(what, [FieldError(field_path(path), message) for path, message in exc.problems]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise MalformedBody(what, [FieldError("body", f"is not valid JSON: {reason}{where}")]) from None


def parse_invoke_body(raw: bytes) -> tuple[Any, Any]:
    """`{"event": ..., "context": {...}}` (both optional; no body is a null event)."""
    body = parse_json_body(raw, "invocation")
    if body is None:
        return None, None
    if not isinstance(body, dict):
        raise InvalidInput(
            "invocation",
            [FieldError("body", f'must be an object {{"event": ..., "context": {{...}}}}, got {type(body).__name__}')],
        )
    if len(body) > 2 or any(k not in ("event", "context") for k in body):
        raise InvalidInput(
            "invocation",
            [
                FieldError(k, 'is not a known field (send {"event": ..., "context": {...}})')
                for k in body
                if k not in ("event", "context")
            ],
        )
    return body.get("event"), body.get("context")


def invoke_answer(result: InvokeResult) -> tuple[int, bytes, dict[str, str]]:
    """200 for a success and for a failed function (the seed's body, `success` false, and the
    error type in a header), 429 when throttled."""
    try:
        payload = result.model_dump_json().encode()
    except ValueError:  # a value UTF-8 JSON cannot carry (the platform makes results safe; this is the backstop)
        result = result.model_copy(
            update={
                "result": json_safe(result.result),
                "logs": json_safe(result.logs),
                "error": json_safe(result.error),
            }
        )
        payload = result.model_dump_json().encode()
    if result.success:
        return 200, payload, {}
    kind = result.error_type.value if result.error_type else "Error"
    if result.error_type == ErrorType.THROTTLED:
        wait = max(1, math.ceil(result.retry_after)) if result.retry_after else 1
        return 429, payload, {"x-cloudfn-error-type": kind, "retry-after": str(wait)}
    return 200, payload, {"x-cloudfn-error-type": kind}


# -- the guard: shutdown, auth, body size -----------------------------------------------------
async def _send_json(
    send: Callable[..., Awaitable[None]], status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = _dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """A plain ASGI middleware (no per-request task or copy, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: Any, settings: ServerSettings, state: ServerState, platform: Any = None):
        self.app = app
        self.token = settings.token.encode() if settings.token else None
        self.max_body = settings.max_body
        self.state = state
        self.platform = platform
        self.fast_invoke = platform is not None and settings.fast_invoke
        self.loopback_only = settings.token is None if settings.loopback_only is None else settings.loopback_only
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.cors_origins)
        # -- HTTP endpoints (issue 16): /fn/<name>[/<path>], with their own auth rules --
        self.endpoints = None
        if platform is not None and hasattr(platform, "run_invocation"):
            from core.server.endpoints import Endpoints

            self.endpoints = Endpoints(platform, self.token, self.max_body, self.loopback_only, self.origins)

    # A dict, as servers pass it, rather than starlette's Scope: Endpoints takes one.
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.state.shutting_down:
            await _send_json(
                send,
                503,
                {"error": "the server is shutting down", "type": "Unavailable", "status": 503},
                [(b"connection", b"close"), (b"retry-after", b"5")],
            )
            return
        if self.endpoints is not None and scope["path"].startswith("/fn/"):
            self.state.in_flight += 1
            try:
                await self.endpoints(scope, receive, send)
            except Exception:  # an answer, not a dropped connection; the log has the trace
                log.exception("%s %s failed", scope["method"], scope["path"])
                with contextlib.suppress(Exception):
                    await _send_json(
                        send,
                        500,
                        {
                            "error": "internal server error (the server's log has the details)",
                            "type": "InternalError",
                            "status": 500,
                        },
                    )
            finally:
                self.state.request_done()
            return
        length = None
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-length":
                length = value
        if self.loopback_only:
            refusal = api_refusal(scope["method"], BrowserHeaders.parse(scope["headers"]), self.origins)
            if refusal is not None:
                await _send_json(send, refusal["status"], refusal)
                return
        if self.token is not None and scope["path"] not in HEALTH_PATHS:
            if auth is None or auth[:7].lower() != b"bearer " or not hmac.compare_digest(auth[7:].strip(), self.token):
                why = "no bearer token" if auth is None else "a wrong token"
                await _send_json(
                    send,
                    401,
                    {
                        "error": f"unauthorized: the request carries {why}. Send `Authorization: Bearer <token>` "
                        "(the token is in the server's data directory, file server.token, or CLOUDFN_TOKEN)",
                        "type": "Unauthorized",
                        "status": 401,
                    },
                    [(b"www-authenticate", b'Bearer realm="cloudfn"')],
                )
                return
        if length is not None:
            try:
                too_large = int(length) > self.max_body
            except ValueError:
                too_large = False
            if too_large:
                body = {"error": BodyTooLarge(self.max_body).detail, "type": "BodyTooLarge", "status": 413}
                await _send_json(send, 413, body, [(b"connection", b"close")])
                return
            wrapped = receive  # the server enforces content-length; no counting needed
        else:
            wrapped = self._counting(receive)
        self.state.in_flight += 1
        try:
            path = scope["path"]
            if (
                self.fast_invoke
                and scope["method"] == "POST"
                and path.startswith(INVOKE_PREFIX)
                and path.endswith(INVOKE_SUFFIX)
            ):
                ref = path[len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)]
                if ref and "/" not in ref:
                    await self._invoke(ref, wrapped, send, scope)
                    return
            await self.app(scope, wrapped, send)
        finally:
            self.state.request_done()

    async def _invoke(self, ref: str, receive: Receive, send: Send, scope: Scope) -> None:
        """The invoke route without the framework's routing and dependency solving (it is the
        hot path); the FastAPI route of the same path documents it and does the same."""
        try:
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            event, context = parse_invoke_body(b"".join(chunks))
            if async_requested(scope["headers"], scope["query_string"]):
                view = await self.platform.invoke_async(ref, event, context)
                await _send_json(send, 202, accepted_payload(view))
                return
            status, payload, extra = invoke_answer(await self.platform.invoke(ref, event, context))
        except CloudfnError as exc:
            await _send_json(send, exc.http_status, error_body(exc))
            return
        except BodyTooLarge as exc:
            await _send_json(
                send, 413, {"error": exc.detail, "type": "BodyTooLarge", "status": 413}, [(b"connection", b"close")]
            )
            return
        except Exception:
            log.exception("POST %s%s%s failed", INVOKE_PREFIX, ref, INVOKE_SUFFIX)
            await _send_json(
                send,
                500,
                {
                    "error": "internal server error (the server's log has the details)",
                    "type": "InternalError",
                    "status": 500,
                },
            )
            return
        headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(payload)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _counting(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted


# -- the application --------------------------------------------------------------------------
class _GuardedFastAPI(LeanFastAPI):
    """FastAPI whose middleware stack is wrapped by `outer_layers` (see create_app)."""

    def __init__(self, outer_layers: Callable[[Any], Any], **kwargs: Any):
        self._outer_layers = outer_layers
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> Any:
        return self._outer_layers(super().build_middleware_stack())


def create_app(
    platform: PlatformAPI, settings: ServerSettings | None = None, state: ServerState | None = None
) -> FastAPI:
    settings = settings or ServerSettings()
    state = state or ServerState()

    def outer_layers(inner: Any) -> Any:
        # The guard goes outside the framework's own layers (error page, telemetry, body limit),
        # which every invoke on the fast path would otherwise cross for nothing; CORS stays
        # outside the guard so that refusals carry its headers.
        stack: Any = Guard(inner, settings=settings, state=state, platform=platform)
        if settings.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            stack = CORSMiddleware(
                stack,
                allow_origins=settings.cors_origins,
                allow_credentials=False,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["authorization", "content-type"],
            )
        return stack

    app = _GuardedFastAPI(
        outer_layers,
        title="cloudfn",
        version=__version__,
        description="A cloud-function platform: functions CRUD, invoke, history, metrics, logs, alerts, "
        "and a live event stream. Every route but health needs `Authorization: Bearer <token>`.",
    )
    app.state.platform = platform
    app.state.settings = settings
    app.state.server = state

    # -- error mapping ------------------------------------------------------------------------
    @app.exception_handler(CloudfnError)
    async def _cloudfn_error(request: Request, exc: CloudfnError) -> Response:
        if exc.http_status >= 500 and exc.http_status != 501:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return json_response(error_body(exc), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> Response:
        return json_response(error_body(_validation_errors(exc)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 413: "BodyTooLarge"}.get(exc.status_code, "HTTPError")
        detail = exc.detail
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path} (see /docs or /openapi.json)"
        if exc.status_code == 405:
            # Starlette names only the first route of the path; every method of it is allowed.
            allowed = _methods_of(app, request.url.path)
            headers["allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed on {request.url.path} (allowed: {', '.join(allowed)})"
        return json_response(
            {"error": detail, "type": kind, "status": exc.status_code}, exc.status_code, headers=headers or None
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return json_response(
            {
                "error": "internal server error (the server's log has the details)",
                "type": "InternalError",
                "status": 500,
            },
            500,
        )

    # Imported here: the route modules import this module's helpers.
    from core.server.routes import Routes, about, alerts, events, functions, history, invoke, logs, saved_events

    r = Routes(app, platform, settings, state)
    v1 = "/api/v1"
    about.add(r)
    functions.add(r)
    add_trigger_routes(app, platform)  # issue 16: endpoint URL, schedules' next runs
    deps_routes.add(app, platform, v1)
    invoke.add(r)
    history.add(r)
    add_async_routes(app, platform, json_response)
    saved_events.add(r)
    logs.add(r)
    alerts.add(r)
    add_secret_routes(app, platform, r.body_of, json_response, v1)  # issue 17
    events.add(r)

    app.openapi = _openapi_with_auth(  # type: ignore[method-assign]
        app,
        bearer=settings.token is not None,
        endpoints=hasattr(platform, "run_invocation"),
    )
    return app


def _methods_of(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


_FN = "/api/v1/functions/{ref}"
_RULE = "/api/v1/alerts/rules/{ref}"
_SAVED = "/api/v1/functions/{ref}/saved-events/{name}"
# (from path, method, status) -> [(to path, method, parameters)]: how an answer's ids feed the
# next request, for clients and for stateful testing.
_LINK_TABLE: dict[tuple[str, str, str], list[tuple[str, str, dict[str, str]]]] = {
    ("/api/v1/functions", "post", "201"): [
        (path, method, {"ref": "$response.body#/function/id"})
        for path, method in (
            (_FN, "get"),
            (_FN, "put"),
            (_FN, "patch"),
            (_FN, "delete"),
            (f"{_FN}/invoke", "post"),
            (f"{_FN}/versions", "get"),
            (f"{_FN}/rollback", "post"),
            (f"{_FN}/invocations", "get"),
            (f"{_FN}/saved-events", "get"),
            (_SAVED, "put"),
        )
    ],
    ("/api/v1/functions/{ref}/invoke", "post", "200"): [
        ("/api/v1/invocations/{invocation_id}", "get", {"invocation_id": "$response.body#/invocation_id"})
    ],
    (_SAVED, "put", "200"): [(_SAVED, "delete", {"ref": "$request.path.ref", "name": "$request.path.name"})],
    ("/api/v1/alerts/rules", "post", "201"): [
        (_RULE, method, {"ref": "$response.body#/rule/id"}) for method in ("put", "patch", "delete")
    ],
}


def _add_links(spec: dict[str, Any]) -> None:
    paths = spec.get("paths", {})
    for (path, method, status), targets in _LINK_TABLE.items():
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if answer is None:
            continue
        links = answer.setdefault("links", {})
        for to_path, to_method, parameters in targets:
            op = paths.get(to_path, {}).get(to_method)
            if op is not None:
                link: dict[str, Any] = {"operationId": op["operationId"], "parameters": parameters}
                if to_path.endswith("/rollback"):  # to a version that exists
                    link["requestBody"] = {"version": "$response.body#/function/version"}
                links[op["operationId"]] = link


def _openapi_with_auth(app: FastAPI, bearer: bool, endpoints: bool = False) -> Callable[[], dict[str, Any]]:
    """The generated document, plus the bearer scheme (health routes opt out), minus the
    framework's own 422 shape, which this server never answers (its 422 is ErrorBody), plus the
    functions' endpoints the guard serves past the framework (`endpoints`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                bad = op.get("responses", {}).get("422", {})
                if "HTTPValidationError" in json.dumps(bad):
                    del op["responses"]["422"]
                if not bearer:
                    op.pop("security", None)
                    op.get("responses", {}).pop("401", None)
        _add_links(spec)
        if endpoints:
            from core.server.endpoint_openapi import add_endpoint_paths

            add_endpoint_paths(spec, bearer)
        S.fill_name_patterns(spec)
        schemas = spec.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        if bearer:
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token in the server's data directory (server.token) or CLOUDFN_TOKEN",
                }
            }
            spec["security"] = [{"bearer": []}]
        app.openapi_schema = spec
        return spec

    return openapi
