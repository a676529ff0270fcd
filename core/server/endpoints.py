"""The functions' HTTP endpoints, `/fn/<name>[/<path>]`, any method, served by the guard
before the API's routing (so a public endpoint needs no token, and the hot path crosses no
framework layer).

Who may call: with a token, the bearer token unless the function is `http.public`; a public
endpoint is a Lambda function URL with auth NONE, and with no CORS headers (unless the
server's cors_origins say so) a web page elsewhere can send to it but not read its answers.
The platform's token never reaches a function: an Authorization header carrying it is removed
from the event. Without a token (--no-auth, loopback only) every endpoint answers this
machine, and the browser checks stay: a loopback Host (DNS rebinding), no foreign Origin and
no cross-site fetch on any method (an endpoint runs code on a GET too). Every answer carries a
CSP sandbox, so a function's page never runs in the API's origin.
"""

from __future__ import annotations

import hmac
import logging
import math
from typing import Any

from starlette.types import Receive, Scope, Send

from core.errors import CloudfnError, NotFound
from core.models import ErrorType
from core.server.app import _dumps, _send_json
from core.server.browser_checks import BrowserHeaders, endpoint_refusal
from core.triggers import http as H

log = logging.getLogger("cloudfn.server")


class Endpoints:
    def __init__(self, platform: Any, token: bytes | None, max_body: int, loopback_only: bool, origins: frozenset[str]):
        self.platform = platform
        self.token = token
        self.max_body = max_body
        self.loopback_only = loopback_only
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        parts = H.split_path(path)
        if parts is None:
            await _send_json(
                send, 404, {"error": "no function named: call /fn/<name>[/<path>]", "type": "NotFound", "status": 404}
            )
            return
        name, sub = parts
        headers = scope["headers"]
        if len(headers) > H.MAX_HEADERS or sum(len(k) + len(v) for k, v in headers) > H.MAX_HEADER_BYTES:
            await _send_json(
                send,
                431,
                {
                    "error": f"too many or too large request headers (at most {H.MAX_HEADERS} "
                    f"headers, {H.MAX_HEADER_BYTES // 1024} KiB)",
                    "type": "HeadersTooLarge",
                    "status": 431,
                },
                [(b"connection", b"close")],
            )
            return
        if self.loopback_only:
            refusal = endpoint_refusal(BrowserHeaders.parse(headers), self.origins)
            if refusal is not None:
                await _send_json(send, refusal["status"], refusal)
                return
        try:
            fn = await self.platform.get_function(name)
        except NotFound:
            fn = None
        auth = next((v for k, v in headers if k == b"authorization"), None)
        authorized = self.token is None or (
            auth is not None and auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token)
        )
        if fn is None or not fn.http.public:
            if not authorized:  # before the 404: names of private functions are not told to strangers
                why = "no bearer token" if auth is None else "a wrong token"
                await _send_json(
                    send,
                    401,
                    {
                        "error": f"unauthorized: the request carries {why}, and this endpoint is not public. Send "
                        "`Authorization: Bearer <token>`, or make the function public (http: {public: true})",
                        "type": "Unauthorized",
                        "status": 401,
                    },
                    [(b"www-authenticate", b'Bearer realm="cloudfn"')],
                )
                return
            if fn is None:
                await _send_json(send, 404, {"error": f"no function named {name!r}", "type": "NotFound", "status": 404})
                return
        body = await self._body(scope, receive, send)
        if body is None:
            return
        client = scope.get("client") or ("", 0)
        req = H.Request(
            method=scope["method"],
            path=sub,
            raw_path=H.raw_sub_path(scope.get("raw_path"), path),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=client[0] or "",
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
            # The platform's token is the user's key to everything: a function never sees it.
            drop_header={b"authorization"} if self.token is not None and authorized else set(),
        )
        try:
            result = await self.platform.run_invocation(fn, H.request_event(req), {"trigger": "http"}, trigger="http")
        except CloudfnError as exc:
            await _send_json(
                send, exc.http_status, {"error": exc.message, "type": type(exc).__name__, "status": exc.http_status}
            )
            return
        await self._answer(send, fn, result, authorized)

    async def _body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                await _send_json(
                    send,
                    413,
                    {
                        "error": f"the request body is larger than the limit of {self.max_body} bytes",
                        "type": "BodyTooLarge",
                        "status": 413,
                    },
                    [(b"connection", b"close")],
                )
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _answer(self, send: Send, fn: Any, result: Any, trusted: bool) -> None:
        extra = [(b"x-cloudfn-invocation-id", result.invocation_id.encode()), H.SANDBOX_CSP]
        if not result.success:
            kind = result.error_type.value if result.error_type else "Error"
            status = {ErrorType.THROTTLED: 429, ErrorType.TIMEOUT: 504}.get(result.error_type, 502)
            # A stranger calling a public endpoint learns the kind of failure, not the function's
            # message (it may hold paths or data); the token's holder gets both.
            body: dict[str, Any] = {
                "error": result.error
                if trusted or status == 429
                else f"the function failed ({kind}); its history has the details",
                "type": kind,
                "status": status,
                "invocation_id": result.invocation_id,
            }
            extra.append((b"x-cloudfn-error-type", kind.encode()))
            if status == 429:
                extra.append((b"retry-after", str(max(1, math.ceil(result.retry_after or 1))).encode()))
            await _send_json(send, status, body, extra)
            return
        try:
            status, headers, payload, dropped = H.response_of(result.result)
        except H.BadAnswer as exc:
            log.warning(
                "%s answered an HTTP request with an unusable response: %s",
                fn.name,
                exc,
                extra={"function": fn.name, "invocation_id": result.invocation_id},
            )
            await _send_json(
                send,
                502,
                {
                    "error": f"the function's answer is not a valid HTTP response: {exc}",
                    "type": "InvalidResult",
                    "status": 502,
                    "invocation_id": result.invocation_id,
                },
                [*extra, (b"x-cloudfn-error-type", b"InvalidResult")],
            )
            return
        except (ValueError, TypeError, RecursionError):
            payload = _dumps(result.result)
            status, headers, dropped = 200, [(b"content-type", b"application/json")], []
        if dropped:
            log.info(
                "%s set headers the server owns, dropped: %s",
                fn.name,
                ", ".join(dropped),
                extra={"function": fn.name, "invocation_id": result.invocation_id},
            )
        framing = [(b"content-length", str(len(payload)).encode())]
        if status in (204, 304):  # no body, no length: a client would wait for the bytes announced
            payload, framing = b"", []
        await send({"type": "http.response.start", "status": status, "headers": [*headers, *framing, *extra]})
        await send({"type": "http.response.body", "body": payload})
