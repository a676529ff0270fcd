"""The functions' HTTP endpoints, `/fn/<name>[/<path>]`, in the OpenAPI document.

They are served by the guard before the framework's routing (core/server/endpoints.py), so
FastAPI never sees them and cannot describe them: this module adds them to the generated
document by hand. What a function answers is the function's business, so the success answer
is documented as any status and content type; the answers the platform itself gives (auth,
limits, failures) are the usual ErrorBody.
"""

from __future__ import annotations

from typing import Any

from core.server import schema as S
from core.triggers import http as H

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
PATHS = ("/fn/{name}", "/fn/{name}/{path}")
_ERROR = {"$ref": "#/components/schemas/ErrorBody"}

# What the function receives: API Gateway's HTTP API proxy event, payload version 2.0.
HTTP_EVENT: dict[str, Any] = {
    "title": "HttpEvent",
    "type": "object",
    "description": "The event an endpoint's function receives: AWS API Gateway's HTTP API proxy event, "
    "payload version 2.0. Header names are lower case, repeated headers are joined by ',', "
    "cookies are in `cookies`; a body that is not text arrives base64-encoded with "
    "`isBase64Encoded` true. The platform's bearer token is never passed on.",
    "required": ["version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext", "isBase64Encoded"],
    "properties": {
        "version": {"type": "string", "enum": ["2.0"]},
        "routeKey": {"type": "string", "enum": ["$default"]},
        "rawPath": {"type": "string", "description": "the path after /fn/<name>, percent-encoded as sent"},
        "rawQueryString": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "cookies": {"type": "array", "items": {"type": "string"}},
        "queryStringParameters": {"type": "object", "additionalProperties": {"type": "string"}},
        "requestContext": {
            "type": "object",
            "properties": {
                "http": {
                    "type": "object",
                    "properties": {
                        "method": {"type": "string"},
                        "path": {"type": "string"},
                        "protocol": {"type": "string"},
                        "sourceIp": {"type": "string"},
                        "userAgent": {"type": "string"},
                    },
                },
                "requestId": {"type": "string"},
                "domainName": {"type": "string"},
                "time": {"type": "string"},
                "timeEpoch": {"type": "integer"},
            },
        },
        "body": {"type": "string"},
        "isBase64Encoded": {"type": "boolean"},
    },
}

# What it may answer: this shape (the proxy answer), or any other JSON value (200, JSON).
HTTP_ANSWER: dict[str, Any] = {
    "title": "HttpAnswer",
    "type": "object",
    "description": "What a function returns to shape the HTTP answer (a Lambda proxy answer). Any other JSON "
    "value is sent as is, 200 application/json. The server owns the framing and hop-by-hop "
    f"headers ({', '.join(sorted(H.FORBIDDEN))}) and X-Cloudfn-*: those are dropped; a header "
    "value with a control character is a 502 InvalidResult.",
    "required": ["statusCode"],
    "properties": {
        "statusCode": {"type": "integer", "minimum": 200, "maximum": 599},
        "headers": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "multiValueHeaders": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "cookies": {"type": "array", "items": {"type": "string"}, "description": "Set-Cookie values"},
        "body": {"type": "string", "description": "text, or base64 when isBase64Encoded is true"},
        "isBase64Encoded": {"type": "boolean"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _operation(method: str, sub_path: bool, bearer: bool) -> dict[str, Any]:
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": S.NAME_MARK},
        "description": "the function's name",
    }
    params = [name]
    if sub_path:
        params.append(
            {
                "name": "path",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "any path, slashes included; it reaches the function as rawPath",
            }
        )
    auth = (
        "Needs `Authorization: Bearer <token>` unless the function is public (`http: {public: true}`), "
        "like a Lambda function URL with auth NONE; the token is removed before the function sees the "
        "request. "
        if bearer
        else "This server runs without a token (--no-auth, loopback only): every endpoint answers this machine, "
        "and requests a web page could send (a foreign Host, Origin or Sec-Fetch-Site) are refused. "
    )
    op: dict[str, Any] = {
        "tags": ["endpoints"],
        "operationId": f"endpoint_{'path_' if sub_path else ''}{method}",
        "summary": f"call a function's HTTP endpoint ({method.upper()})",
        "description": "The function receives the request as an HttpEvent and answers an HttpAnswer or any JSON "
        "value. " + auth + f"At most {H.MAX_HEADERS} headers ({H.MAX_HEADER_BYTES // 1024} KiB); "
        "the body limit is the server's (server.max_body). Every answer carries "
        "X-Cloudfn-Invocation-Id and a CSP sandbox.",
        "parameters": params,
        "responses": {
            "default": {
                "description": "the function's answer: its statusCode, headers and body (an HttpAnswer), "
                "or any other JSON value as 200 application/json",
                "content": {"*/*": {"schema": {}}},
            },
            "401": _error("no bearer token, or a wrong one, and the endpoint is not public"),
            "403": _error("--no-auth only: a foreign Origin or a cross-site fetch"),
            "404": _error("no function of that name"),
            "413": _error("the body is larger than the server's limit"),
            "421": _error("--no-auth only: a Host that is not a loopback name"),
            "429": _error("over the function's rate limit: Retry-After says when to come back"),
            "431": _error("too many or too large request headers"),
            "502": _error(
                "the function failed (a stranger is told its kind, not its message) or its answer "
                "is not a valid HTTP response"
            ),
            "503": _error("the server is shutting down"),
            "504": _error("the function ran out of time"),
        },
    }
    if not bearer:
        for code in ("401",):
            del op["responses"][code]
    else:
        for code in ("403", "421"):
            del op["responses"][code]
        op["security"] = [{"bearer": []}, {}]  # the empty one: a public function needs none
    if method not in ("get", "head", "options", "delete"):
        op["requestBody"] = {
            "required": False,
            "description": "any body: text reaches the function as is, anything else base64-encoded",
            "content": {"*/*": {"schema": {}}},
        }
    return op


def add_endpoint_paths(spec: dict[str, Any], bearer: bool) -> None:
    """Put `/fn/{name}` and `/fn/{name}/{path}` (every method) and their event and answer
    shapes into `spec`."""
    paths = spec.setdefault("paths", {})
    for route in PATHS:
        paths[route] = {m: _operation(m, route.endswith("{path}"), bearer) for m in METHODS}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["HttpEvent"] = HTTP_EVENT
    schemas["HttpAnswer"] = HTTP_ANSWER
    tags = spec.setdefault("tags", [])
    if not any(t.get("name") == "endpoints" for t in tags):
        tags.append(
            {
                "name": "endpoints",
                "description": "functions' HTTP endpoints, /fn/<name>[/<path>], any "
                "method: the request is an HttpEvent, the answer an "
                "HttpAnswer (components.schemas)",
            }
        )
