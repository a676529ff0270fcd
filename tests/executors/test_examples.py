"""Every bundled example runs with its sample event; the seed's own example runs as written;
every handler form the README lists works ("Functions and runtimes")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from exec_helpers import fn

from core.models import ErrorType, Function

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def _examples() -> list:
    params = []
    for spec in sorted(FUNCTIONS.glob("*/function.yaml")):
        meta = yaml.safe_load(spec.read_text())
        marks = [pytest.mark.go] if meta.get("runtime") == "go" else []
        if (spec.parent / "requirements.txt").exists() or (spec.parent / "package.json").exists():
            # Its packages come from PyPI or npm: the suite stays offline (tests/deps installs
            # packages it builds itself, and checks these examples' manifests).
            marks.append(pytest.mark.skip(reason="needs the package index (network)"))
        params.append(pytest.param(spec.parent, meta, id=meta.get("name", spec.parent.name), marks=marks))
    return params


@pytest.mark.parametrize("folder,meta", _examples())
async def test_bundled_example(service, folder: Path, meta: dict):
    code = (folder / meta["file"]).read_text()
    f = Function(
        name=meta["name"],
        runtime=meta["runtime"],
        handler=meta.get("handler", "handler"),
        code=code,
        timeout=meta.get("timeout", 30),
        memory=meta.get("memory", 128),
        environment={k: str(v) for k, v in (meta.get("environment") or {}).items()},
    )
    res = await service.invoke(f, meta.get("event"), {"user": "test"})
    if meta["name"].startswith("fail-"):
        assert not res.success
        assert res.error_type == ErrorType.HANDLER_ERROR, res.error
        assert len(res.stack) >= 2, res.stack  # the frames of the user's own functions
        assert all(fr.file == meta["file"] and fr.line > 0 for fr in res.stack)
        lines = code.splitlines()
        # The innermost frame points at the line that raised / made the error.
        assert any(w in lines[res.stack[0].line - 1] for w in ("raise", "throw", "Errorf", "panic", "errors.New")), (
            res.stack
        )
    else:
        assert res.success, f"{res.error_type}: {res.error}\n{res.logs}"
        assert res.result is not None
    assert res.cold_start and res.init_duration > 0
    assert res.duration_ms > 0


SEED_GO_HELLO = (
    "func handler(event interface{}, context map[string]string) interface{} {\n"
    "    return map[string]interface{}{\n"
    '        "message": "Hello World",\n'
    '        "event": event\n'
    "    }\n"
    "}"
)


@pytest.mark.go
async def test_seed_go_hello_world_as_written(service):
    """The seed README's Go example lacks the trailing comma Go requires after `"event": event`;
    cloudfn adds it (only that exact error, only at a line that plainly ends an element) and says
    so in the logs."""
    f = fn("go", SEED_GO_HELLO, name="hello-world")
    res = await service.invoke(f, {"name": "World"}, {"user": "test"})
    assert res.success, res.error
    assert res.result == {"message": "Hello World", "event": {"name": "World"}}
    assert "added a missing trailing comma at the end of line 4" in res.logs
    again = await service.invoke(f, {"name": "again"})
    assert again.result["event"] == {"name": "again"} and not again.cold_start


@pytest.mark.go
@pytest.mark.parametrize(
    "code,handler",
    [
        # with imports, and a handler returning (interface{}, error)
        (
            'import "strings"\n\n'
            "func processData(event interface{}, context map[string]string) (interface{}, error) {\n"
            '\tm := event.(map[string]interface{})\n\treturn strings.ToUpper(m["name"].(string)), nil\n}\n',
            "processData",
        ),
        # a package line, a typed event parameter
        (
            'package main\n\nimport "strings"\n\n'
            "func analyze_text(event map[string]interface{}, context map[string]string) interface{} {\n"
            '\treturn strings.ToUpper(event["name"].(string))\n}\n',
            "analyze_text",
        ),
        # no import line, but uses a standard package: cloudfn imports it
        (
            "func handler(event interface{}, context map[string]string) interface{} {\n"
            '\treturn strings.ToUpper(event.(map[string]interface{})["name"].(string))\n}\n',
            "handler",
        ),
    ],
)
async def test_go_handler_forms(service, code, handler):
    res = await service.invoke(fn("go", code, handler=handler), {"name": "ada"})
    assert res.success, res.error
    assert res.result == "ADA"


@pytest.mark.go
async def test_go_context_has_the_platform_fields(service):
    code = "func handler(event interface{}, context map[string]string) interface{} {\n\treturn context\n}\n"
    res = await service.invoke(fn("go", code, name="ctx-go", memory=96), None, {"user": "test"})
    assert res.success, res.error
    ctx = res.result
    assert ctx["user"] == "test" and ctx["function_name"] == "ctx-go" and ctx["memory_limit_mb"] == "96"
    assert ctx["request_id"] == res.invocation_id and ctx["function_id"]
    assert 0 < int(ctx["time_remaining_ms"]) <= 10_000


@pytest.mark.parametrize(
    "code,handler",
    [
        ("function handler(event, context) { return {hi: event.name}; }", "handler"),
        (
            "async function handler(event, context) { await new Promise(r => setTimeout(r, 5)); return {hi: "
            "event.name}; }",
            "handler",
        ),
        ("function processData(event, context) { return Promise.resolve({hi: event.name}); }", "processData"),
        ("exports.handler = async (event, context) => ({hi: event.name});", "handler"),
        ("exports.handler = async (event, context) => ({hi: event.name});", "exports.handler"),
        ("module.exports = { main: (event) => ({hi: event.name}) };", "main"),
        ("const handler = (event) => ({hi: event.name});", "handler"),
    ],
)
async def test_nodejs_handler_forms(service, code, handler):
    res = await service.invoke(fn("nodejs", code, handler=handler), {"name": "ada"})
    assert res.success, res.error
    assert res.result == {"hi": "ada"}


@pytest.mark.parametrize(
    "code,handler",
    [
        ("def handler(event, context):\n    return {'hi': event['name']}\n", "handler"),
        (
            "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(0.001)\n"
            "    return {'hi': event['name']}\n",
            "handler",
        ),
        ("def analyze_text(event, context):\n    return {'hi': event['name']}\n", "analyze_text"),
    ],
)
async def test_python_handler_forms(service, code, handler):
    res = await service.invoke(fn("python", code, handler=handler), {"name": "ada"})
    assert res.success, res.error
    assert res.result == {"hi": "ada"}


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "def handler(event, context):\n    return dict(context, left=context.get_remaining_time_in_millis())\n",
        ),
        (
            "nodejs",
            "function handler(event, context) { return Object.assign({left: context.getRemainingTimeInMillis()}, "
            "context); }",
        ),
    ],
)
async def test_context_fields(service, runtime, code):
    f = fn(runtime, code, name="ctx-fn", memory=192)
    res = await service.invoke(f, {}, {"user": "test"})
    assert res.success, res.error
    ctx = res.result
    assert ctx["user"] == "test" and ctx["function_name"] == "ctx-fn" and ctx["function_id"] == f.id
    assert ctx["memory_limit_mb"] == "192" and ctx["request_id"] == res.invocation_id
    assert 0 < ctx["left"] <= 10_000 and 0 < int(ctx["time_remaining_ms"]) <= 10_000


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "import sys\ndef handler(event, context):\n    print('to stdout')\n"
            "    print('to stderr', file=sys.stderr)\n    return 1\n",
        ),
        (
            "nodejs",
            "function handler(event, context) { console.log('to stdout'); console.error('to stderr'); return 1; }",
        ),
    ],
)
async def test_logs_are_captured_per_invocation(service, runtime, code):
    f = fn(runtime, code)
    for _ in range(2):
        res = await service.invoke(f, {})
        assert res.success and res.result == 1
        assert res.logs == "to stdout\nto stderr\n"  # each invocation gets its own, nothing more


@pytest.mark.parametrize(
    "runtime,code",
    [
        # Printing protocol-looking bytes (a length prefix, JSON) must not confuse the platform.
        (
            "python",
            "import sys, os\ndef handler(event, context):\n    sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x02{}')\n"
            "    print('{\"ok\": true, \"result\": 666}')\n    return 'real'\n",
        ),
        (
            "nodejs",
            "function handler(event, context) { process.stdout.write('\\x00\\x00\\x00\\x02{}'); "
            "console.log('{\"ok\": true, \"result\": 666}'); return 'real'; }",
        ),
    ],
)
async def test_printing_cannot_corrupt_the_protocol(service, runtime, code):
    res = await service.invoke(fn(runtime, code), {})
    assert res.success and res.result == "real"
    assert '"result": 666' in res.logs
