"""The original platform's clients, unchanged, against `cloudfn serve --no-auth` (issue 14): its
names in URLs, its Go `Function{}` struct as encoding/json writes it (every field, zero values for
the unset ones), and its `ExecuteResponse.Duration int64`."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import httpx
import pytest

from cloudfn_tui.cli import main
from core.server.schema import NAME_MARK

CODE = "def handler(event, context):\n    return {'name': context['function_name'], 'event': event}\n"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def go_function(**fields):
    """A body as the original's Go clients send it: json.Marshal(cloudfunction.Function{...})."""
    body = {
        "id": "",
        "name": "",
        "runtime": "",
        "code": "",
        "handler": "",
        "environment": None,
        "timeout": 0,
        "memory": 0,
        "created_at": GO_ZERO_TIME,
        "updated_at": GO_ZERO_TIME,
    }
    return {**body, **fields}


@pytest.fixture(scope="module")
def http(seed_server):
    with httpx.Client(base_url=seed_server.url, timeout=120) as c:
        yield c


@pytest.mark.parametrize("name", ["方法", "My Function", "Привет мир", "مرحبا", "v1.2 beta"])
def test_a_name_in_any_script_is_an_address_percent_encoded(http, name):
    r = http.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": CODE})
    assert r.status_code == 201, r.text
    fn_id = r.json()["function"]["id"]
    url = f"/api/v1/functions/{quote(name, safe='')}"
    assert http.get(url).json()["function"]["id"] == fn_id
    r = http.post(f"{url}/invoke", json={"event": {"n": 1}})  # the server's fast path for invoke
    assert r.status_code == 200 and r.json()["result"] == {"name": name, "event": {"n": 1}}
    r = http.put(url, json={"timeout": 12})
    assert r.status_code == 200 and r.json()["function"]["timeout"] == 12
    assert http.get(f"{url}/versions").json()["count"] == 2
    assert http.delete(url).status_code == 200
    assert http.get(url).status_code == 404


def test_the_cli_reaches_a_named_function_on_a_remote_server(http, seed_server, capsys):
    assert (
        http.post("/api/v1/functions", json={"name": "远程 函数", "runtime": "python", "code": CODE}).status_code == 201
    )
    assert main(["--remote", seed_server.url, "invoke", "远程 函数", "--event", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == {"name": "远程 函数", "event": 7}


@pytest.mark.parametrize(
    "name, why",
    [
        ("..", "must not be only dots"),
        (" x", "must not start or end with a space"),
        ("a/b", "must not contain '/'"),
        ("a\u200bb", "U+200B ZERO WIDTH SPACE"),
        ("a\x01b", "control character"),
        ("n" * 65, "the limit is 64"),
    ],
)
def test_a_rejected_name_is_a_422_naming_the_field(http, name, why):
    r = http.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": CODE})
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["name"] and why in errors[0]["message"]


def test_names_are_unique_without_regard_to_case(http):
    assert (
        http.post("/api/v1/functions", json={"name": "Case Fn", "runtime": "python", "code": CODE}).status_code == 201
    )
    r = http.post("/api/v1/functions", json={"name": "CASE FN", "runtime": "python", "code": CODE})
    assert r.status_code == 409 and "names are unique without regard to case" in r.json()["error"]
    assert http.get("/api/v1/functions/case%20fn").json()["function"]["name"] == "Case Fn"


def test_a_go_clients_create_and_update_with_zero_values(http):
    r = http.post("/api/v1/functions", json=go_function(name="Go Client", runtime="python", code=CODE))
    assert r.status_code == 201, r.text
    fn = r.json()["function"]
    assert (fn["handler"], fn["timeout"], fn["memory"], fn["environment"]) == ("handler", 30, 128, {})
    assert fn["created_at"] != GO_ZERO_TIME and fn["id"]

    # The Go client's PUT: its struct again, only the field it sets not zero.
    r = http.put(f"/api/v1/functions/{fn['id']}", json=go_function(timeout=45))
    assert r.status_code == 200, r.text
    up = r.json()["function"]
    assert (up["name"], up["runtime"], up["code"], up["handler"], up["memory"], up["timeout"]) == (
        "Go Client",
        "python",
        CODE,
        "handler",
        128,
        45,
    )
    r = http.put(f"/api/v1/functions/{fn['id']}", json={"timeout": 0, "code": ""})  # the brief's own example
    assert r.status_code == 200 and (r.json()["function"]["timeout"], r.json()["function"]["code"]) == (45, CODE)

    # Anything else invalid is still a 422 naming each field.
    r = http.put(f"/api/v1/functions/{fn['id']}", json=go_function(timeout=-1, memory=10, handler="1x"))
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"timeout", "memory", "handler"}
    r = http.post("/api/v1/functions", json=go_function(name="No Code", runtime="python"))
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["code"]


def test_duration_decodes_into_the_originals_int64(http):
    assert http.post("/api/v1/functions", json={"name": "timed", "runtime": "python", "code": CODE}).status_code == 201
    r = http.post("/api/v1/functions/timed/invoke", json={"event": {}, "context": {"user": "test"}})
    # Go's encoding/json refuses a number with a fraction for `Duration int64`; Python's json
    # reads "3" as int and "3.0" as float, so isinstance tells them apart.
    res = r.json()
    assert isinstance(res["duration"], int) and not isinstance(res["duration"], bool)
    assert re.search(r'"duration":\s*\d+\s*[,}]', r.text)
    assert isinstance(res["duration_ms"], float) and res["duration_ms"] > 0
    assert abs(res["duration"] - res["duration_ms"]) <= 0.5


def test_the_openapi_document_carries_the_name_rule(http):
    spec = http.get("/openapi.json").json()
    assert NAME_MARK not in json.dumps(spec, ensure_ascii=False)
    body = spec["paths"]["/api/v1/functions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    pattern = re.compile(body["properties"]["name"]["pattern"])
    assert all(pattern.search(n) for n in ["方法", "My Function", "Test_Go", "a" * 64, "Привет"])
    assert not any(pattern.search(n) for n in ["..", " a", "a ", "a/b", "a\u200bb", "a" * 65, "a!"])


def test_import_into_a_remote_server_twice(http, seed_server, tmp_path, capsys):
    from test_compat_seed import write_original_data_folder

    folder = write_original_data_folder(tmp_path / "data")
    argv = ["--remote", seed_server.url, "import", str(folder)]
    assert main(argv) == 2  # two broken entries, reported; the rest imported
    assert capsys.readouterr().out.splitlines()[-1] == "3 created, 0 updated, 0 unchanged, 2 failed"
    assert http.get(f"/api/v1/functions/{quote('方法', safe='')}").json()["function"]["memory"] == 256
    assert main(argv) == 2
    assert capsys.readouterr().out.splitlines()[-1] == "0 created, 0 updated, 3 unchanged, 2 failed"
    assert http.get(f"/api/v1/functions/{quote('test_go', safe='')}/versions").json()["count"] == 1
