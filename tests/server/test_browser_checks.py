"""The one parser behind the --no-auth browser checks and its two policies (core/server/
browser_checks.py), case by case: the edges of Host and Origin (IPv6, ports, case, trailing
dots, `null`, repeated headers) and what each policy holds on to. The same policies against a
real server are in tests/reliability/test_http_attacks.py and tests/server/test_endpoints.py."""

from __future__ import annotations

import pytest

from core.server.browser_checks import BrowserHeaders, api_refusal, endpoint_refusal

TRUSTED = frozenset({"https://ui.example"})


def headers(**kw: str | list[str]) -> BrowserHeaders:
    out: list[tuple[bytes, bytes]] = []
    for name, value in kw.items():
        for v in value if isinstance(value, list) else [value]:
            out.append((name.replace("_", "-").encode(), v.encode("latin-1")))
    return BrowserHeaders.parse(out)


def kind(refusal: dict | None) -> str | None:
    return None if refusal is None else refusal["type"]


# (why, headers, the API's answer to a JSON POST, the endpoint's answer to a GET)
CASES = [
    ("no headers at all (HTTP/1.0, curl)", {}, None, None),
    ("127.0.0.1 with a port", {"host": "127.0.0.1:8000"}, None, None),
    ("[::1] with a port", {"host": "[::1]:8000"}, None, None),
    ("[::1] own origin", {"host": "[::1]:8000", "origin": "http://[::1]:8000"}, None, None),
    ("upper-case own origin", {"host": "LocalHost:8000", "origin": "HTTP://LOCALHOST:8000/"}, None, None),
    ("trailing-dot host, own origin", {"host": "localhost.:8000", "origin": "http://localhost.:8000"}, None, None),
    ("127.1.2.3", {"host": "127.1.2.3"}, None, None),
    ("a trusted origin", {"host": "127.0.0.1:8000", "origin": "https://ui.example/"}, None, None),
    ("https own origin", {"host": "127.0.0.1:8000", "origin": "https://127.0.0.1:8000"}, None, None),
    ("bare ::1 (needs brackets)", {"host": "::1"}, "MisdirectedRequest", "MisdirectedRequest"),
    ("a rebinding name", {"host": "evil.example:8000"}, "MisdirectedRequest", "MisdirectedRequest"),
    ("loopback-looking name", {"host": "127.0.0.1.evil.example"}, "MisdirectedRequest", "MisdirectedRequest"),
    ("two trailing dots", {"host": "localhost..:8000"}, "MisdirectedRequest", "MisdirectedRequest"),
    ("empty port", {"host": "localhost:"}, "MisdirectedRequest", "MisdirectedRequest"),
    ("0.0.0.0", {"host": "0.0.0.0:8000"}, "MisdirectedRequest", "MisdirectedRequest"),
    (
        "a second, foreign Host",
        {"host": ["127.0.0.1:8000", "evil.example"]},
        "MisdirectedRequest",
        "MisdirectedRequest",
    ),
    ("a foreign Host first", {"host": ["evil.example", "127.0.0.1:8000"]}, "MisdirectedRequest", "MisdirectedRequest"),
    (
        "origin null (a sandboxed frame)",
        {"host": "127.0.0.1:8000", "origin": "null"},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    (
        "a foreign origin",
        {"host": "127.0.0.1:8000", "origin": "https://evil.example"},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    (
        "own host, other port",
        {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9000"},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    (
        "another loopback name",
        {"host": "127.0.0.1:8000", "origin": "http://localhost:8000"},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    ("origin without a Host", {"origin": "http://127.0.0.1:8000"}, "ForbiddenOrigin", "ForbiddenOrigin"),
    (
        "own origin, then a foreign one",
        {"host": "127.0.0.1:8000", "origin": ["http://127.0.0.1:8000", "https://evil.example"]},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    (
        "origin with a userinfo trick",
        {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000@evil.example"},
        "ForbiddenOrigin",
        "ForbiddenOrigin",
    ),
    # Sec-Fetch-Site: the endpoints hold on to it (no content type to check there); the API to
    # the content type and the Origin, as before.
    ("cross-site fetch", {"host": "127.0.0.1:8000", "sec_fetch_site": "cross-site"}, None, "ForbiddenOrigin"),
    ("same-site sibling", {"host": "127.0.0.1:8000", "sec_fetch_site": "Same-Site"}, None, "ForbiddenOrigin"),
    ("cross-site, odd spacing", {"host": "127.0.0.1:8000", "sec_fetch_site": " CROSS-SITE "}, None, "ForbiddenOrigin"),
    ("typed in the address bar", {"host": "127.0.0.1:8000", "sec_fetch_site": "none"}, None, None),
    ("same origin", {"host": "127.0.0.1:8000", "sec_fetch_site": "same-origin"}, None, None),
]


@pytest.mark.parametrize("why,given,api,endpoint", CASES, ids=[c[0] for c in CASES])
def test_both_policies(why, given, api, endpoint):
    h = headers(content_type="application/json", content_length="2", **given)
    assert kind(api_refusal("POST", h, TRUSTED)) == api, why
    assert kind(endpoint_refusal(headers(**given), TRUSTED)) == endpoint, why


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_the_api_lets_a_foreign_origin_read_nothing_but_does_not_refuse_reads(method):
    # A cross-origin read is CORS's to block (no CORS headers answer it); the Host still counts.
    assert api_refusal(method, headers(host="127.0.0.1", origin="https://evil.example"), TRUSTED) is None
    assert kind(api_refusal(method, headers(host="evil.example"), TRUSTED)) == "MisdirectedRequest"
    # The endpoints run code on a read: refused.
    assert (
        kind(endpoint_refusal(headers(host="127.0.0.1", origin="https://evil.example"), TRUSTED)) == "ForbiddenOrigin"
    )


BODIES = [
    ("text/plain", {"content_type": "text/plain", "content_length": "5"}, "UnsupportedMediaType"),
    ("a form", {"content_type": "application/x-www-form-urlencoded", "content_length": "3"}, "UnsupportedMediaType"),
    ("no content type", {"content_length": "5"}, "UnsupportedMediaType"),
    ("chunked, no content type", {"transfer_encoding": "chunked"}, "UnsupportedMediaType"),
    (
        "JSON then text/plain",
        {"content_type": ["application/json", "text/plain"], "content_length": "2"},
        "UnsupportedMediaType",
    ),
    ("JSON with a charset", {"content_type": "application/json; charset=utf-8", "content_length": "2"}, None),
    ("a +json type", {"content_type": "application/problem+json", "content_length": "2"}, None),
    ("upper-case JSON", {"content_type": "Application/JSON", "content_length": "2"}, None),
    ("no body, no type", {"content_length": "0"}, None),
    ("nothing said", {}, None),
]


@pytest.mark.parametrize("why,given,expected", BODIES, ids=[b[0] for b in BODIES])
def test_the_api_wants_json_bodies_on_changes(why, given, expected):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert kind(api_refusal(method, headers(host="127.0.0.1", **given), TRUSTED)) == expected, (why, method)
    assert api_refusal("GET", headers(host="127.0.0.1", **given), TRUSTED) is None
    # An endpoint's body is the function's business.
    assert endpoint_refusal(headers(host="127.0.0.1", **given), TRUSTED) is None


def test_refusals_name_what_is_wrong_and_what_to_do():
    r = api_refusal("POST", headers(host="evil.example"), TRUSTED)
    assert r is not None and r["status"] == 421 and "'evil.example'" in r["error"] and "127.0.0.1" in r["error"]
    r = api_refusal("POST", headers(host="127.0.0.1", origin="https://evil.example"), TRUSTED)
    assert r is not None and r["status"] == 403 and "server.cors_origins" in r["error"]
    r = api_refusal("POST", headers(host="127.0.0.1", content_type="text/plain", content_length="1"), TRUSTED)
    assert r is not None and r["status"] == 415 and "'text/plain'" in r["error"] and "application/json" in r["error"]
    r = endpoint_refusal(headers(host="127.0.0.1", origin="x" * 500), TRUSTED)
    assert r is not None and len(r["error"]) < 400  # a long header is cut in the message
