"""The seed's routes in the seed's wire format, driven with the seed's own example bodies
(seed/README.md and cloudfunction-platform.zh.md), against `cloudfn serve --no-auth`, as the
seed's token-less clients talk to it."""

from __future__ import annotations

import httpx
import pytest

# The seed document's "create a Go function" body, verbatim.
SEED_GO_CREATE = {
    "name": "hello-world",
    "runtime": "go",
    "handler": "handler",
    "code": "func handler(event interface{}, context map[string]string) interface{} {\n"
    '    return map[string]interface{}{\n        "message": "Hello World",\n        "event": event\n    }\n}',
    "timeout": 30,
    "memory": 128,
}
# The seed document's invoke body, verbatim.
SEED_INVOKE = {"event": {"name": "World"}, "context": {"user": "test"}}

PY = {
    "name": "seed-py",
    "runtime": "python",
    "handler": "handler",
    "code": "def handler(event, context):\n    return {'hello': event['name'], 'user': context['user']}\n",
    "timeout": 30,
    "memory": 128,
}
NODE = {
    "name": "seed-node",
    "runtime": "nodejs",
    "handler": "handler",
    "code": "async function handler(event, context) {\n  return {hello: event.name, user: context.user};\n}\n",
    "timeout": 30,
    "memory": 128,
}


@pytest.fixture(scope="module")
def http(seed_server):
    with httpx.Client(base_url=seed_server.url, timeout=120) as c:
        yield c


def test_health_on_both_paths(http):
    for path in ("/api/health", "/api/v1/health"):
        r = http.get(path)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok" and body["service"] == "cloudfn" and body["version"]


def test_seed_go_function_create_invoke_and_crud(http):
    r = http.post("/api/v1/functions", json=SEED_GO_CREATE)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"message", "function"} and isinstance(body["message"], str)
    fn = body["function"]
    assert fn["id"] and fn["name"] == "hello-world" and fn["runtime"] == "go"
    assert (fn["timeout"], fn["memory"], fn["handler"]) == (30, 128, "handler")

    r = http.post(f"/api/v1/functions/{fn['id']}/invoke", json=SEED_INVOKE)
    assert r.status_code == 200, r.text
    res = r.json()
    assert {"success", "result", "error", "duration", "memory_used"} <= set(res)
    assert res["success"] is True, res["error"]
    assert res["result"] == {"message": "Hello World", "event": {"name": "World"}}
    assert (
        res["error"] == ""
        and isinstance(res["duration"], (int, float))
        and isinstance(res["memory_used"], (int, float))
    )

    r = http.get("/api/v1/functions")
    assert r.status_code == 200
    listed = r.json()
    assert set(listed) == {"functions", "count"} and listed["count"] == len(listed["functions"])
    assert fn["id"] in {f["id"] for f in listed["functions"]}

    r = http.get(f"/api/v1/functions/{fn['id']}")
    assert r.status_code == 200 and set(r.json()) == {"function"} and r.json()["function"]["id"] == fn["id"]
    assert http.get("/api/v1/functions/hello-world").json()["function"]["id"] == fn["id"]  # by name too

    r = http.put(f"/api/v1/functions/{fn['id']}", json={"timeout": 60})  # partial: only timeout changes
    assert r.status_code == 200, r.text
    up = r.json()["function"]
    assert (up["timeout"], up["memory"], up["code"], up["version"]) == (60, 128, fn["code"], 2)

    r = http.delete(f"/api/v1/functions/{fn['id']}")
    assert r.status_code == 200 and r.json()["function"]["id"] == fn["id"]
    assert http.get(f"/api/v1/functions/{fn['id']}").status_code == 404


@pytest.mark.parametrize("body", [PY, NODE], ids=["python", "nodejs"])
def test_seed_invoke_body_for_python_and_node(http, body):
    r = http.post("/api/v1/functions", json=body)
    assert r.status_code == 201, r.text
    r = http.post(f"/api/v1/functions/{body['name']}/invoke", json=SEED_INVOKE)
    assert r.status_code == 200
    assert r.json()["success"] is True and r.json()["result"] == {"hello": "World", "user": "test"}


def test_failed_invocation_keeps_the_shape_with_200_and_an_error_header(http):
    fail = {**PY, "name": "seed-fail", "code": "def handler(event, context):\n    raise RuntimeError('nope')\n"}
    assert http.post("/api/v1/functions", json=fail).status_code == 201
    r = http.post("/api/v1/functions/seed-fail/invoke", json=SEED_INVOKE)
    assert r.status_code == 200
    res = r.json()
    assert res["success"] is False and isinstance(res["error"], str) and "nope" in res["error"]
    assert res["error_type"] == "HandlerError" and r.headers["x-cloudfn-error-type"] == "HandlerError"
    assert {"result", "duration", "memory_used", "stack", "invocation_id"} <= set(res)


def test_invoke_without_a_body_passes_a_null_event(http):
    echo = {**PY, "name": "seed-echo", "code": "def handler(event, context):\n    return {'event': event}\n"}
    assert http.post("/api/v1/functions", json=echo).status_code == 201
    r = http.post("/api/v1/functions/seed-echo/invoke")
    assert r.status_code == 200 and r.json()["result"] == {"event": None}


def test_metrics_json_has_the_seeds_fields(http):
    r = http.get("/api/metrics")
    assert r.status_code == 200
    m = r.json()
    for key in (
        "total_executions",
        "success_rate",
        "failure_rate",
        "avg_execution_time",
        "min_execution_time",
        "max_execution_time",
        "runtime_distribution",
        "errors_by_type",
        "uptime_seconds",
        "function_count",
    ):
        assert key in m
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain") and "# TYPE" in r.text
