"""Functions' HTTP endpoints (/fn/<name>[/<path>]) and rate limits, against a real `cloudfn
serve` as root with the real sandbox: the proxy event and answer, binary bodies, who may call,
what a function may not do to the answer, and what a web page may do to a --no-auth server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import httpx
import pytest
from serverproc import REPO, server_env, start_server

TOKEN = "endpoint-token-0123456789"
WEB = r"""
import base64, time
def handler(event, context):
    path = event["rawPath"]
    if path.startswith("/echo"):
        return event
    if path == "/bin":
        data = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event.get("body", "").encode()
        return {"statusCode": 201, "headers": {"content-type": "application/octet-stream", "x-len": len(data)},
                "body": base64.b64encode(data[::-1]).decode(), "isBase64Encoded": True,
                "cookies": ["a=1; Path=/", "b=2"]}
    if path == "/crlf":
        return {"statusCode": 200, "headers": {"x-evil": "a\r\nSet-Cookie: stolen=1"}, "body": "x"}
    if path == "/framing":
        return {"statusCode": 200, "body": "short",
                "headers": {"Content-Length": "1000", "Transfer-Encoding": "chunked", "Connection": "close",
                            "X-Cloudfn-Invocation-Id": "forged", "x-kept": "yes"}}
    if path == "/badname":
        return {"statusCode": 200, "headers": {"bad name:": "x"}}
    if path == "/status":
        return {"statusCode": 99}
    if path == "/nocontent":
        return {"statusCode": 204, "body": "ignored"}
    if path == "/fail":
        raise ValueError("secret path /srv/data in the message")
    if path == "/slow":
        time.sleep(5)
    return [1, "two", None]
"""


def create(client: httpx.Client, name: str, **kw) -> dict:
    r = client.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": WEB, **kw})
    assert r.status_code == 201, r.text
    return r.json()["function"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache):
    s = start_server(
        tmp_path_factory.mktemp("endpoints"),
        "--mode",
        "release",
        token=TOKEN,
        cache=shared_cache,
        CLOUDFN_SERVER_MAX_BODY="65536",
    )
    with s.client() as c:
        create(c, "web", timeout=2)
        create(c, "open web", http={"public": True})
    yield s
    assert s.stop() == 0, s.stderr()


@pytest.fixture
def anon(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def auth(server):
    with server.client() as c:
        yield c


def test_path_query_headers_and_method_reach_the_function(auth):
    r = auth.request(
        "PATCH",
        "/fn/web/echo/a%20b/c?x=1&x=2&empty=&q=%C3%A9",
        content='{"k": 1}',
        headers={"content-type": "application/json", "x-multi": "one", "cookie": "s=1; t=2", "user-agent": "probe/1"},
    )
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/echo/a%20b/c" and ev["requestContext"]["http"]["path"] == "/echo/a b/c"
    assert ev["rawQueryString"] == "x=1&x=2&empty=&q=%C3%A9"
    assert ev["queryStringParameters"] == {"x": "1,2", "empty": "", "q": "é"}
    assert ev["requestContext"]["http"]["method"] == "PATCH"
    assert ev["requestContext"]["http"]["userAgent"] == "probe/1"
    assert ev["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert ev["requestContext"]["requestId"]
    assert ev["headers"]["x-multi"] == "one" and ev["cookies"] == ["s=1", "t=2"] and "cookie" not in ev["headers"]
    assert ev["body"] == '{"k": 1}' and ev["isBase64Encoded"] is False
    # The platform's token is the key to everything: the function never sees it.
    assert "authorization" not in ev["headers"] and TOKEN not in r.text


def test_a_plain_json_answer_is_200_application_json(auth):
    r = auth.get("/fn/web")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == [1, "two", None]
    assert r.headers["x-cloudfn-invocation-id"]


def test_status_headers_cookies_and_a_binary_body_round_trip(auth):
    payload = bytes(range(256)) * 4
    r = auth.post("/fn/web/bin", content=payload, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.content == payload[::-1]
    assert r.headers["content-type"] == "application/octet-stream" and r.headers["x-len"] == str(len(payload))
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]


def test_the_invocation_is_in_history_as_http(auth):
    r = auth.get("/fn/web/echo")
    inv = auth.get(f"/api/v1/invocations/{r.headers['x-cloudfn-invocation-id']}").json()["invocation"]
    assert inv["trigger"] == "http" and inv["status"] == "success" and inv["function_name"] == "web"


def test_the_token_is_required_unless_public(anon, auth):
    r = anon.get("/fn/web/echo")
    assert r.status_code == 401 and r.json()["type"] == "Unauthorized" and "public" in r.json()["error"]
    assert anon.get("/fn/web", headers={"authorization": "Bearer wrong"}).status_code == 401
    # An unknown name answers a stranger 401 too: private names are not told.
    assert anon.get("/fn/no-such-function").status_code == 401
    assert auth.get("/fn/no-such-function").status_code == 404
    r = anon.get("/fn/open%20web/echo?x=1", headers={"authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 200 and r.json()["queryStringParameters"] == {"x": "1"}
    assert r.json()["headers"]["authorization"] == "Basic dXNlcjpwdw=="  # the function's own scheme passes
    # The platform's token sent to a public endpoint is still kept from the function.
    r = auth.get("/fn/open%20web/echo")
    assert r.status_code == 200 and "authorization" not in r.json()["headers"]
    # Public opens the endpoint, not the API.
    assert anon.get("/api/v1/functions/open%20web").status_code == 401


def test_the_openapi_document_describes_the_endpoints(auth):
    import jsonschema_rs

    spec = auth.get("/openapi.json").json()
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    for route in ("/fn/{name}", "/fn/{name}/{path}"):
        ops = spec["paths"][route]
        assert set(ops) == methods, route
        for method, op in ops.items():
            # The token, or none for a public function: both requirements are listed.
            assert op["security"] == [{"bearer": []}, {}], (route, method)
            assert "public" in op["description"]
            assert {"default", "401", "404", "413", "429", "431", "502", "504"} <= set(op["responses"])
            names = [p["name"] for p in op["parameters"]]
            assert names == (["name", "path"] if route.endswith("{path}") else ["name"])
            assert op["parameters"][0]["schema"]["pattern"].startswith("^")  # the real name pattern
        assert "requestBody" in ops["post"] and "requestBody" not in ops["get"]
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    schemas = spec["components"]["schemas"]
    # The documented shapes are what a function really gets and may answer.
    event = auth.post("/fn/web/echo/x?y=1", content=b"\x00\xff", headers={"cookie": "c=1"}).json()
    jsonschema_rs.validator_for(schemas["HttpEvent"]).validate(event)
    answer = {"statusCode": 201, "headers": {"x-len": 3}, "cookies": ["a=1"], "body": "AAE=", "isBase64Encoded": True}
    jsonschema_rs.validator_for(schemas["HttpAnswer"]).validate(answer)
    assert not jsonschema_rs.validator_for(schemas["HttpAnswer"]).is_valid({"statusCode": 99})


def test_without_a_token_the_document_says_so(noauth):
    with httpx.Client(base_url=noauth.url, timeout=60) as c:
        spec = c.get("/openapi.json").json()
    op = spec["paths"]["/fn/{name}"]["post"]
    assert "security" not in op and "401" not in op["responses"]
    assert {"403", "421"} <= set(op["responses"]) and "--no-auth" in op["description"]


def test_no_cors_by_default_and_pages_run_sandboxed(anon):
    r = anon.get("/fn/open%20web", headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert (
        r.headers["content-security-policy"].startswith("sandbox")
        and "allow-same-origin" not in r.headers["content-security-policy"]
    )
    pre = anon.options(
        "/fn/web",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        },
    )
    assert "access-control-allow-origin" not in pre.headers and "access-control-allow-headers" not in pre.headers


def test_header_injection_is_refused(auth, server):
    r = auth.get("/fn/web/crlf")
    assert r.status_code == 502 and r.json()["type"] == "InvalidResult" and "x-evil" in r.json()["error"]
    assert "stolen" not in str(r.headers)
    r = auth.get("/fn/web/badname")
    assert r.status_code == 502 and "header name" in r.json()["error"]
    r = auth.get("/fn/web/status")
    assert r.status_code == 502 and "statusCode" in r.json()["error"]
    # Framing, hop-by-hop and the platform's own headers are the server's: dropped, on a raw socket
    # the answer is exactly one well-framed response.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"GET /fn/web/framing HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"short"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "http/1.1 200 ok" and body == b"short"
    assert [h for h in lines if h.startswith("content-length:")] == ["content-length: 5"]
    assert not [h for h in lines if h.startswith(("transfer-encoding", "connection"))]
    assert "x-kept: yes" in lines and "x-cloudfn-invocation-id: forged" not in lines


def test_no_content_has_no_body_nor_length(auth):
    r = auth.get("/fn/web/nocontent")
    assert r.status_code == 204 and r.content == b"" and "content-length" not in r.headers
    r = auth.head("/fn/web")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"] == "application/json"


def test_failures_map_to_502_504_and_hide_messages_from_strangers(auth, anon):
    r = auth.get("/fn/web/fail")
    assert r.status_code == 502 and r.json()["type"] == "HandlerError" and "secret path" in r.json()["error"]
    r = anon.get("/fn/open%20web/fail")
    assert r.status_code == 502 and r.json()["type"] == "HandlerError" and "secret" not in r.text
    r = auth.get("/fn/web/slow")  # timeout 2 s
    assert r.status_code == 504 and r.headers["x-cloudfn-error-type"] == "Timeout"


def test_body_and_header_limits(auth):
    r = auth.post("/fn/web/echo", content=b"x" * 70_000)
    assert r.status_code == 413 and r.json()["type"] == "BodyTooLarge"
    r = auth.get("/fn/web/echo", headers={f"x-h{i}": "v" for i in range(120)})
    assert r.status_code == 431


def test_rate_limit_is_429_with_retry_after_on_invoke_and_endpoint(auth, server):
    create(auth, "limited", rate_limit={"requests_per_second": 0.05, "burst": 2})
    assert auth.post("/api/v1/functions/limited/invoke", json={"event": {}}).status_code == 200
    assert auth.get("/fn/limited").status_code == 200
    r = auth.post("/api/v1/functions/limited/invoke", json={"event": {}})
    assert r.status_code == 429 and r.json()["error_type"] == "Throttled"
    assert 1 <= int(r.headers["retry-after"]) <= 20 and r.json()["retry_after"] > 0
    r = auth.get("/fn/limited")
    assert r.status_code == 429 and r.json()["type"] == "Throttled" and 1 <= int(r.headers["retry-after"]) <= 20
    hist = auth.get("/api/v1/functions/limited/invocations", params={"status": "throttled"}).json()["invocations"]
    assert sorted(h["trigger"] for h in hist) == ["http", "manual"]
    # The CLI attached to this server is limited by the same bucket.
    env = server_env(server.data_dir.parent, CLOUDFN_TOKEN=TOKEN)
    p = subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--remote", server.url, "invoke", "limited"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and "Throttled" in p.stdout + p.stderr and "rate limit" in p.stdout + p.stderr
    metrics = auth.get("/api/metrics", params={"function": "limited"}).json()
    assert metrics["functions"]["limited"]["throttles"] == 3


def test_the_cli_owning_the_data_dir_keeps_the_bucket_across_calls(cli, config):
    """Each `cloudfn invoke` that owns the data directory is a new process: the bucket's fill
    is kept in the data directory, or a shell loop would pass any limit."""
    from core.local import LocalPlatform

    async def make() -> None:
        p = LocalPlatform(config, install_examples=False)
        await p.create_function(
            {
                "name": "once",
                "runtime": "python",
                "code": "def handler(e, c):\n    return 1\n",
                "rate_limit": {"requests_per_second": 0.01, "burst": 1},
            }
        )
        await p.close()

    asyncio.run(make())
    code, out, err = cli("invoke", "once")
    assert code == 0, out + err
    code, out, err = cli("invoke", "once")
    assert code != 0 and "Throttled" in out + err and "rate limit" in out + err


def test_triggers_route_gives_the_endpoint_url(auth, server):
    t = auth.get("/api/v1/functions/open%20web/triggers").json()["triggers"]
    assert t["endpoint"] == f"{server.url}/fn/open%20web" and t["public"] is True


# -- a server without a token ------------------------------------------------------------------
@pytest.fixture(scope="module")
def noauth(tmp_path_factory, shared_cache):
    s = start_server(
        tmp_path_factory.mktemp("endpoints-noauth"), "--no-auth", "--mode", "release", token=None, cache=shared_cache
    )
    with s.client() as c:
        create(c, "local")
    yield s
    assert s.stop() == 0, s.stderr()


def test_no_auth_refuses_public_endpoints(noauth):
    with noauth.client() as c:
        r = c.post(
            "/api/v1/functions", json={"name": "pub", "runtime": "python", "code": WEB, "http": {"public": True}}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "http.public"
        assert "--no-auth" in r.json()["errors"][0]["message"]
        assert c.get("/api/v1/functions/pub").status_code == 404
        r = c.put("/api/v1/functions/local", json={"http": {"public": True}})
        assert r.status_code == 422
        assert c.get("/api/v1/functions/local").json()["function"]["http"]["public"] is False


def test_no_auth_endpoints_keep_web_pages_out(noauth):
    with noauth.client() as c:
        assert c.get("/fn/local").status_code == 200
        # DNS rebinding: a page on evil.example resolving to 127.0.0.1.
        r = c.get("/fn/local", headers={"host": f"evil.example:{noauth.url.rsplit(':', 1)[1]}"})
        assert r.status_code == 421
        # A foreign page's fetch or form, on any method (an endpoint runs code on a GET too).
        assert c.get("/fn/local", headers={"origin": "https://evil.example"}).status_code == 403
        assert (
            c.post(
                "/fn/local",
                content="a=1",
                headers={"origin": "null", "content-type": "application/x-www-form-urlencoded"},
            ).status_code
            == 403
        )
        # An <img> or link from another site: no Origin, but the browser says cross-site.
        assert c.get("/fn/local", headers={"sec-fetch-site": "cross-site"}).status_code == 403
        # Its own pages (sandboxed: their Origin is "null", refused above) and curl pass.
        assert c.get("/fn/local", headers={"sec-fetch-site": "none"}).status_code == 200


def test_serve_refuses_no_auth_beyond_loopback_with_public_endpoints(tmp_path, shared_cache):
    s = start_server(tmp_path / "pub", "--mode", "release", token=TOKEN, cache=shared_cache)
    with s.client() as c:
        create(c, "pub", http={"public": True})
    assert s.stop() == 0
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudfn_tui.cli",
            "--data-dir",
            str(s.data_dir),
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--no-auth",
        ],
        env=server_env(tmp_path / "pub"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "refusing to serve without a token" in r.stderr
    assert "/fn/<name>" in r.stderr and "public" in r.stderr
