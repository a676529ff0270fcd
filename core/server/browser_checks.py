"""What keeps web pages away from a server without a token (`serve --no-auth`, loopback only).

With a token, a page cannot send it cross-site without a CORS preflight, which only
`server.cors_origins` pass. Without one, any page the user opens can reach a loopback server:
a DNS-rebound name (evil.example resolving to 127.0.0.1) is same-origin to the browser, so
only the Host tells it apart, and a cross-site "simple" request (a form, an image, a text/plain
fetch) is sent without a preflight. One parser of the headers involved, and the two policies
built on it:

- the API (`api_refusal`): a loopback Host on every request; on a state-changing method, no
  foreign Origin and no body that is not JSON (a page cannot send JSON cross-site unpreflighted);
- the functions' endpoints (`endpoint_refusal`): a loopback Host, no foreign Origin and no
  cross-site Sec-Fetch-Site, on every method (an endpoint runs code on a GET too, and its body
  is the function's business, so there is no content type to hold on to).

A header sent more than once is checked in every copy: no copy may pass for another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.loopback import is_loopback_authority

JSON_TYPE = "application/json"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class BrowserHeaders:
    """The request headers a browser sets and a page cannot forge, read in one pass."""

    hosts: list[bytes] = field(default_factory=list)
    origins: list[bytes] = field(default_factory=list)
    sites: list[bytes] = field(default_factory=list)  # Sec-Fetch-Site
    types: list[bytes] = field(default_factory=list)  # Content-Type
    chunked: bool = False  # a Transfer-Encoding: the body has no announced length
    length: bytes | None = None  # Content-Length

    @classmethod
    def parse(cls, headers: list[tuple[bytes, bytes]]) -> BrowserHeaders:
        out = cls()
        for name, value in headers:  # ASGI header names are lower case
            if name == b"host":
                out.hosts.append(value)
            elif name == b"origin":
                out.origins.append(value)
            elif name == b"sec-fetch-site":
                out.sites.append(value)
            elif name == b"content-type":
                out.types.append(value)
            elif name == b"transfer-encoding":
                out.chunked = True
            elif name == b"content-length":
                out.length = value
        return out

    @property
    def host(self) -> bytes | None:
        return self.hosts[-1] if self.hosts else None


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def foreign_host(h: BrowserHeaders) -> bytes | None:
    """The first Host that does not name this machine's loopback (none sent passes: HTTP/1.0)."""
    return next((v for v in h.hosts if not is_loopback_authority(v)), None)


def foreign_origin(h: BrowserHeaders, trusted: frozenset[str]) -> str | None:
    """The first Origin (normalized) that is neither the server's own (the Host it was reached
    by, over http or https) nor a trusted one; `null` (a sandboxed frame, a file) is foreign."""
    own = {f"{scheme}://{_text(v).strip().lower()}" for v in h.hosts for scheme in ("http", "https")}
    for value in h.origins:
        o = _text(value).strip().rstrip("/").lower()
        if o not in own and o not in trusted:
            return o
    return None


def cross_site(h: BrowserHeaders) -> bool:
    """Sec-Fetch-Site says another site (or a sibling on the same site) made the request."""
    return any(v.strip().lower() in (b"cross-site", b"same-site") for v in h.sites)


def json_media_type(ctype: bytes | None) -> bool:
    if ctype is None:
        return False
    media = ctype.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _refusal(status: int, kind: str, error: str) -> dict[str, Any]:
    return {"error": error, "type": kind, "status": status}


def api_refusal(method: str, h: BrowserHeaders, trusted: frozenset[str]) -> dict[str, Any] | None:
    """The API's policy: why a request to /api is refused on a server without a token, or None."""
    bad_host = foreign_host(h)
    if bad_host is not None:
        return _refusal(
            421,
            "MisdirectedRequest",
            (
                f"the Host header {_text(bad_host)[:100]!r} is not a loopback name: this server runs without a token "
                "(--no-auth) and answers only requests addressed to localhost, 127.0.0.1 or [::1] (a page on another "
                "name could reach it by DNS rebinding). Connect to http://127.0.0.1:<port>, or serve with a token to "
                "use other names."
            ),
        )
    if method not in STATE_CHANGING:
        return None
    o = foreign_origin(h, trusted)
    if o is not None:
        return _refusal(
            403,
            "ForbiddenOrigin",
            (
                f"requests from the web page at {o[:100]!r} are refused: this server runs without a token (--no-auth), "
                "so only its own pages and the origins in server.cors_origins may change anything. Add the origin to "
                "server.cors_origins if you trust it."
            ),
        )
    has_body = h.chunked or (h.length is not None and h.length.strip() not in (b"0", b""))
    if has_body and (not h.types or not all(json_media_type(t) for t in h.types)):
        bad = next((t for t in h.types if not json_media_type(t)), None)
        got = "no Content-Type" if bad is None else f"Content-Type {_text(bad)[:100]!r}"
        return _refusal(
            415, "UnsupportedMediaType", f"the request body has {got}; send it as JSON with `Content-Type: {JSON_TYPE}`"
        )
    return None


def endpoint_refusal(h: BrowserHeaders, trusted: frozenset[str]) -> dict[str, Any] | None:
    """The endpoints' policy: why a request to /fn is refused on a server without a token, or None."""
    bad_host = foreign_host(h)
    if bad_host is not None:
        return _refusal(
            421,
            "MisdirectedRequest",
            (
                f"the Host header {_text(bad_host)[:100]!r} is not a loopback name: this server runs without a token "
                "(--no-auth) and answers only localhost, 127.0.0.1 or [::1]"
            ),
        )
    o = foreign_origin(h, trusted)
    if o is not None:
        return _refusal(
            403,
            "ForbiddenOrigin",
            (
                f"requests from the web page at {o[:100]!r} are refused: this server runs without a token (--no-auth), "
                "so web pages elsewhere may not call its endpoints"
            ),
        )
    if cross_site(h):
        return _refusal(
            403,
            "ForbiddenOrigin",
            (
                "a cross-site request (a link, image or form of another page) is refused: this server runs without "
                "a token (--no-auth)"
            ),
        )
    return None
