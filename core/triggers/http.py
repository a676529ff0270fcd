"""HTTP endpoints: the API Gateway (HTTP API, payload 2.0) proxy event in, an HTTP answer out.

Framework-free, so the server's route and the tests share it. A function answers either the
proxy shape `{statusCode, headers, body, isBase64Encoded, cookies}` or any other JSON value
(200, application/json), as Lambda function URLs do. What a function may not do to the answer:
set the framing or hop-by-hop headers (the server owns Content-Length and the connection), put
CR, LF or another control character in a header (response splitting), or pose as the platform
(X-Cloudfn-* headers are the platform's own).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from core.models import new_uuid

PREFIX = "/fn"
MAX_HEADERS = 100  # request headers; more answers 431 (API Gateway allows about as many)
MAX_HEADER_BYTES = 32 * 1024
# Headers the server alone sets: the message's framing and the connection's management
# (RFC 9110 section 7.6.1 and the ones proxies strip).
FORBIDDEN = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "date",
        "server",
    }
)
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/x-ndjson",
    "application/graphql",
)
# Every answer's page runs in an opaque origin: a function's HTML served from this host cannot
# use the API's origin (on a --no-auth server its scripts would pass the Origin check).
SANDBOX_CSP = (
    b"content-security-policy",
    b"sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
)


class BadAnswer(Exception):
    """The function's answer cannot be sent as HTTP; the message names what is wrong."""


def split_path(path: str) -> tuple[str, str] | None:
    """'/fn/name/a/b' -> ('name', '/a/b'); '/fn/name' -> ('name', '/'); None when no name."""
    if not path.startswith(PREFIX + "/"):
        return None
    rest = path[len(PREFIX) + 1 :]
    name, slash, sub = rest.partition("/")
    if not name:
        return None
    return name, "/" + sub if slash else "/"


def raw_sub_path(raw_path: bytes | None, path: str) -> str:
    """The percent-encoded path after /fn/<name>, as the client sent it."""
    if not raw_path:
        sub = split_path(path)
        return sub[1] if sub else "/"
    raw = raw_path.decode("latin-1")
    parts = raw.split("/", 3)  # '', 'fn', name, rest
    return "/" + parts[3] if len(parts) > 3 else "/"


def is_text(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES or media.endswith("+json") or media.endswith("+xml")


# Made once: json.dumps with options builds a new encoder on every call (~3 µs of a request).
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass
class Request:
    method: str
    path: str  # decoded, after /fn/<name>
    raw_path: str
    raw_query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    source_ip: str = ""
    protocol: str = "HTTP/1.1"
    drop_header: set[bytes] = field(default_factory=set)  # e.g. the platform's authorization


def request_event(req: Request) -> dict[str, Any]:
    """The API Gateway v2.0 proxy event. Repeated headers are joined by ',' (cookies by their
    own list), header names are lower case, the body is text when it is, else base64."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in req.headers:
        if name in req.drop_header:
            continue
        n, v = name.decode("latin-1").lower(), value.decode("latin-1")
        if n == "cookie":
            cookies += [c.strip() for c in v.split(";") if c.strip()]
            continue
        headers[n] = f"{headers[n]},{v}" if n in headers else v
    query: dict[str, str] = {}
    for k, v in parse_qsl(req.raw_query, keep_blank_values=True, errors="replace") if req.raw_query else ():
        query[k] = f"{query[k]},{v}" if k in query else v
    now = time.time()
    request_id = new_uuid()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "cloudfn",
            "apiId": "cloudfn",
            "domainName": headers.get("host", ""),
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": req.protocol,
                "sourceIp": req.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if req.body:
        text = None
        if is_text(headers.get("content-type")):
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(req.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise BadAnswer(f"header {name!r} must be a string (got {type(value).__name__})")
    if BAD_VALUE_RE.search(value):
        raise BadAnswer(f"header {name!r} contains a control character (CR, LF, NUL...): a header value is one line")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise BadAnswer(f"header {name!r} has characters outside Latin-1: percent-encode them") from None
    return value


def response_of(value: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes, list[str]]:
    """(status, headers, body, names of the headers dropped) for a function's answer; BadAnswer
    when it cannot be sent."""
    if not (isinstance(value, dict) and "statusCode" in value):
        body = _compact_json(value).encode()
        return 200, [(b"content-type", b"application/json")], body, []
    status = value.get("statusCode")
    if isinstance(status, float) and status.is_integer():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise BadAnswer(f"statusCode must be a whole number from 200 to 599 (got {status!r})")
    out: list[tuple[bytes, bytes]] = []
    dropped: list[str] = []
    seen: set[str] = set()

    def add(name: Any, v: Any) -> None:
        if not isinstance(name, str) or not TOKEN_RE.match(name):
            raise BadAnswer(f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
        low = name.lower()
        if low in FORBIDDEN or low.startswith("x-cloudfn-"):
            dropped.append(low)
            return
        seen.add(low)
        out.append((low.encode(), _header_value(name, v).encode("latin-1")))

    headers = value.get("headers") or {}
    multi = value.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise BadAnswer("headers must be an object of header names to values")
    for name, v in headers.items():
        add(name, v)
    for name, vs in multi.items():
        for v in vs if isinstance(vs, list) else [vs]:
            add(name, v)
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadAnswer("cookies must be a list of Set-Cookie values")
    for c in cookies:
        out.append((b"set-cookie", _header_value("set-cookie", c).encode("latin-1")))
    given = value.get("body")
    raw: bytes
    if given is None:
        raw = b""
    elif value.get("isBase64Encoded") is True:
        if not isinstance(given, str):
            raise BadAnswer("body must be a base64 string when isBase64Encoded is true")
        try:
            raw = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            raise BadAnswer("body is not valid base64 although isBase64Encoded is true") from None
    elif isinstance(given, str):
        raw = given.encode("utf-8", "replace")  # a lone surrogate cannot be UTF-8
    else:  # lenient: an object for a body is sent as JSON
        raw = _compact_json(given).encode()
    if "content-type" not in seen:
        out.append((b"content-type", b"application/json"))
    return status, out, raw, dropped
