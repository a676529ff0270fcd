"""The secrets routes under attack, as root against a real `cloudfn serve`: a web page against
`--no-auth` (cross-site simple requests, a foreign Origin, DNS rebinding), a network peer
without the token, and bad names and sizes. Each attack fails, plants or replaces no secret, and
no answer carries a value."""

from __future__ import annotations

import json

import httpx
import pytest
from serverproc import start_server

VALUE = "Attack-Target-Value-62d0"
PLANT = json.dumps({"value": "planted-by-attacker"}).encode()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory, shared_cache):
    s = start_server(
        tmp_path_factory.mktemp("secrets-noauth"), "--no-auth", "--mode", "release", token=None, cache=shared_cache
    )
    with s.client() as c:
        assert c.put("/api/v1/secrets/target", json={"value": VALUE}).status_code == 200
    yield s
    assert s.stop() == 0, s.stderr()


def sizes(c: httpx.Client) -> dict[str, int]:
    return {s["name"]: s["size"] for s in c.get("/api/v1/secrets").json()["secrets"]}


WEB_PAGE = [
    ("text/plain set", "PUT", "/api/v1/secrets/target", {"content-type": "text/plain"}, PLANT, 415),
    (
        "form set",
        "PUT",
        "/api/v1/secrets/planted",
        {"content-type": "application/x-www-form-urlencoded"},
        b"value=planted",
        415,
    ),
    ("no content type", "PUT", "/api/v1/secrets/planted", {}, PLANT, 415),
    (
        "foreign Origin set",
        "PUT",
        "/api/v1/secrets/target",
        {"content-type": "application/json", "origin": "https://evil.example"},
        PLANT,
        403,
    ),
    ("foreign Origin delete", "DELETE", "/api/v1/secrets/target", {"origin": "https://evil.example"}, b"", 403),
    ("foreign Origin rotate", "POST", "/api/v1/secrets/key/rotate", {"origin": "null"}, b"", 403),
    ("rebinding list", "GET", "/api/v1/secrets", {"host": "evil.example"}, b"", 421),
    (
        "rebinding set",
        "PUT",
        "/api/v1/secrets/target",
        {"content-type": "application/json", "host": "rebind.evil.example"},
        PLANT,
        421,
    ),
]


@pytest.mark.parametrize("why,method,path,headers,body,status", WEB_PAGE, ids=[w[0] for w in WEB_PAGE])
def test_a_web_page_cannot_set_delete_or_list_secrets(open_server, why, method, path, headers, body, status):
    with open_server.client() as c:
        r = c.request(method, path, headers=headers, content=body)
        assert r.status_code == status, (why, r.text)
        assert VALUE not in r.text
        assert sizes(c) == {"target": len(VALUE)}, "a refused request changed the secrets"


def test_without_the_token_a_peer_gets_401_everywhere(tmp_path, shared_cache):
    s = start_server(tmp_path, "--mode", "release", cache=shared_cache)
    try:
        with s.client() as c:
            assert c.put("/api/v1/secrets/target", json={"value": VALUE}).status_code == 200
        with httpx.Client(base_url=s.url, timeout=30) as anon:
            for method, path, body in (
                ("GET", "/api/v1/secrets", None),
                ("PUT", "/api/v1/secrets/target", PLANT),
                ("DELETE", "/api/v1/secrets/target", None),
                ("POST", "/api/v1/secrets/key/rotate", None),
            ):
                r = anon.request(method, path, content=body, headers={"content-type": "application/json"})
                assert r.status_code == 401 and VALUE not in r.text, (method, path, r.text)
                r = anon.request(
                    method,
                    path,
                    content=body,
                    headers={"content-type": "application/json", "authorization": "Bearer wrong-token-000000"},
                )
                assert r.status_code == 401, (method, path)
        with s.client() as c:
            assert sizes(c) == {"target": len(VALUE)}
    finally:
        assert s.stop() == 0, s.stderr()


BAD = [
    ("dot-dot", "/api/v1/secrets/..", 404),
    ("encoded slash", "/api/v1/secrets/a%2Fb", 404),
    ("encoded dot-dot", "/api/v1/secrets/%2E%2E", 404),
    ("leading dot", "/api/v1/secrets/.hidden", 422),
    ("too long", "/api/v1/secrets/" + "x" * 64, 422),
    ("NUL", "/api/v1/secrets/a%00b", 422),
    ("space", "/api/v1/secrets/a%20b", 422),
]


@pytest.mark.parametrize("why,path,status", BAD, ids=[b[0] for b in BAD])
def test_bad_names_are_refused_and_nothing_is_stored(open_server, why, path, status):
    with open_server.client() as c:
        r = c.put(path, json={"value": "some-value-1234"})
        assert r.status_code in (status, 405, 422) and r.status_code < 500, (why, r.status_code, r.text)
        assert sizes(c) == {"target": len(VALUE)}


def test_bad_bodies_name_the_field_and_never_echo_a_value(open_server):
    with open_server.client() as c:
        for body, field in (
            ({"value": "x" * (64 * 1024 + 1)}, "value"),
            ({"value": ""}, "value"),
            ({"value": 5}, "value"),
            ({}, "value"),
            ({"value": VALUE, "colour": "x"}, "colour"),
            ([VALUE], "body"),
        ):
            r = c.put("/api/v1/secrets/other", json=body)
            assert r.status_code == 422, r.text
            assert field in {e["field"] for e in r.json()["errors"]} and VALUE not in r.text, r.text
        r = c.put(
            "/api/v1/secrets/other", content=b'{"value": "\\ud800"}', headers={"content-type": "application/json"}
        )
        assert r.status_code in (400, 422) and r.json()["errors"], r.text
        assert sizes(c) == {"target": len(VALUE)}
