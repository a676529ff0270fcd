"""Multi-file functions run for real: each runtime imports a second file of the function and reads
a data file beside it; Go builds a module with a vendored local dependency, offline; a path that
would leave the function folder is never written, even when it comes from a tampered store."""

from __future__ import annotations

import os

import pytest
from exec_helpers import fn

from core.models import ErrorType, Function

DATA = '{"greeting": "hi from data.json"}'


async def test_python_imports_a_module_and_a_package_and_reads_a_data_file(service):
    code = (
        "import json, os\nimport helper\nfrom pkg.deep import twice\n"
        "HERE = os.path.dirname(__file__)\n"
        "def handler(event, context):\n"
        "    with open(os.path.join(HERE, 'conf', 'data.json')) as f:\n"
        "        data = json.load(f)\n"
        "    return {'shout': helper.shout(event['x']), 'twice': twice(3), 'data': data['greeting'],\n"
        "            'listing': sorted(os.listdir(HERE))}\n"
    )
    f = fn(
        "python",
        code,
        files={
            "helper.py": "def shout(s):\n    return s.upper() + '!'\n",
            "pkg/__init__.py": "",
            "pkg/deep.py": "def twice(n):\n    return n * 2\n",
            "conf/data.json": DATA,
        },
    )
    res = await service.invoke(f, {"x": "hey"})
    assert res.success, res.error
    assert res.result == {
        "shout": "HEY!",
        "twice": 6,
        "data": "hi from data.json",
        "listing": ["conf", "handler.py", "helper.py", "pkg"],
    }


async def test_python_files_are_read_only_in_the_sandbox(service):
    code = (
        "import os\ndef handler(event, context):\n"
        "    p = os.path.join(os.path.dirname(__file__), 'helper.py')\n"
        "    try:\n        open(p, 'a').write('x')\n        return 'writable'\n"
        "    except OSError as exc:\n        return exc.strerror\n"
    )
    res = await service.invoke(fn("python", code, files={"helper.py": "X = 1\n"}), {})
    assert res.success, res.error
    if service.sandbox.bwrap:
        assert res.result in ("Read-only file system", "Permission denied")


async def test_nodejs_requires_a_local_module_and_json(service):
    code = (
        "const lib = require('./lib');\nconst data = require('./conf/data.json');\n"
        "exports.handler = async (event) => ({sum: lib.add(event.a, event.b), data: data.greeting});\n"
    )
    f = fn(
        "nodejs",
        code,
        handler="exports.handler",
        files={"lib/index.js": "exports.add = (a, b) => a + b;\n", "conf/data.json": DATA},
    )
    res = await service.invoke(f, {"a": 2, "b": 3})
    assert res.success, res.error
    assert res.result == {"sum": 5, "data": "hi from data.json"}


@pytest.mark.go
async def test_go_builds_several_files_of_package_main(service):
    code = (
        "package main\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n"
        '\treturn greet("go")\n}\n'
    )
    f = fn(
        "go",
        code,
        files={
            "greet.go": 'package main\n\nfunc greet(s string) string { return "hello " + s }\n',
            "data.txt": "beside the binary\n",
        },
    )
    res = await service.invoke(f, {})
    assert res.success, res.error
    assert res.result == "hello go"


@pytest.mark.go
async def test_go_an_error_in_a_second_file_names_that_file(service):
    code = "func handler(event interface{}, context map[string]string) interface{} {\n\treturn greet()\n}\n"
    f = fn("go", code, files={"greet.go": "package main\n\nfunc greet() string { return 1 }\n"})
    res = await service.invoke(f, {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    assert res.error.startswith("greet.go:3:"), res.error
    assert res.stack[0].file == "greet.go" and res.stack[0].line == 3


GO_MOD = "module example.com/fn\n\ngo 1.19\n\nrequire example.com/shout v1.0.0\n"
VENDORED = {
    "go.mod": GO_MOD,
    "vendor/modules.txt": "# example.com/shout v1.0.0\n## explicit\nexample.com/shout\n",
    "vendor/example.com/shout/shout.go": (
        'package shout\n\nimport "strings"\n\nfunc Shout(s string) string { return strings.ToUpper(s) + "!" }\n'
    ),
    "internal/util/util.go": "package util\n\nfunc Twice(n int) int { return n * 2 }\n",
}
GO_MODULE_CODE = (
    'package main\n\nimport (\n\t"example.com/fn/internal/util"\n\t"example.com/shout"\n)\n\n'
    "func handler(event interface{}, context map[string]string) interface{} {\n"
    '\treturn map[string]interface{}{"s": shout.Shout("vendored"), "n": util.Twice(21)}\n}\n'
)


@pytest.mark.go
async def test_go_module_with_vendor_builds_offline(service):
    res = await service.invoke(fn("go", GO_MODULE_CODE, files=VENDORED), {})
    assert res.success, res.error
    assert res.result == {"s": "VENDORED!", "n": 42}


@pytest.mark.go
async def test_go_cache_key_covers_every_file(service):
    changed = {**VENDORED, "internal/util/util.go": "package util\n\nfunc Twice(n int) int { return n * 3 }\n"}
    first = await service.invoke(fn("go", GO_MODULE_CODE, files=VENDORED), {})
    second = await service.invoke(fn("go", GO_MODULE_CODE, files=changed), {})
    assert first.success and second.success, (first.error, second.error)
    assert (first.result["n"], second.result["n"]) == (42, 63)


@pytest.mark.go
async def test_go_module_without_vendor_and_no_proxy_says_vendor_them(make_service, monkeypatch):
    # An unreachable proxy stands for a host without one: the build must say how to fix it.
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")
    svc = make_service()
    files = {k: v for k, v in VENDORED.items() if not k.startswith("vendor/")}
    res = await svc.invoke(fn("go", GO_MODULE_CODE, files=files), {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    assert "go mod vendor" in res.error and "vendor/" in res.error, res.error


async def test_a_tampered_path_is_never_written_outside_the_folder(service, tmp_path):
    # A store edited by hand can hold any path: Function objects from it skip the API's checks.
    escape = tmp_path / "escaped.txt"
    f = Function.model_construct(
        **{
            **fn("python", "def handler(e, c):\n    return 1\n").model_dump(),
            "files": {f"../../../../../../..{escape}": "pwned", "ok.py": ""},
        }
    )
    res = await service.invoke(f, {})
    assert not res.success and res.error_type == ErrorType.COMPILE_ERROR
    assert "cannot be laid out" in res.error and "'..'" in res.error
    assert not escape.exists()
    assert not any(p.name == "escaped.txt" for p in (tmp_path / "work").rglob("*"))


async def test_a_symlink_planted_in_a_version_folder_is_not_followed(service, settings, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    f = fn("python", "import sub.m\ndef handler(e, c):\n    return sub.m.X\n", files={"sub/m.py": "X = 7\n"})
    d = service.runtimes_["python"].function_dir(f)
    d.parent.mkdir(parents=True)
    # a folder left half-made (no handler file) with a link where `sub` goes: it is replaced whole
    d.mkdir()
    os.symlink(victim, d / "sub")
    res = await service.invoke(f, {})
    assert res.success, res.error
    assert res.result == 7 and list(victim.iterdir()) == []


async def test_a_pre_started_sandbox_gets_every_file_folders_included(make_service):
    svc = make_service(prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    await svc.prewarm.wait_ready()
    assert svc.stats()["prewarmed"]["python"] == 1, svc.stats()["prewarm_problem"]
    code = (
        "import os\nfrom pkg.deep import twice\ndef handler(event, context):\n"
        "    here = os.path.dirname(__file__)\n"
        "    return [twice(2), sorted(os.listdir(here)), open(os.path.join(here, '.env')).read()]\n"
    )
    f = fn(
        "python",
        code,
        files={"pkg/__init__.py": "", "pkg/deep.py": "def twice(n):\n    return 2 * n\n", ".env": "A=1\n"},
    )
    res = await svc.invoke(f, {})
    assert res.success, res.error
    pool = svc._pools[(f.id, f.version)]
    assert res.cold_start and [w.slot is not None for w in [*pool.idle, *pool.busy]] == [True]
    assert res.result == [4, [".env", "handler.py", "pkg"], "A=1\n"]


async def test_stack_frames_name_the_second_file_and_its_line(service):
    py = fn(
        "python",
        "import helper\ndef handler(event, context):\n    return helper.boom()\n",
        files={"helper.py": "def boom():\n    x = 1\n    raise ValueError('in helper')\n"},
    )
    res = await service.invoke(py, {})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert [(s.file, s.line) for s in res.stack] == [("helper.py", 3), ("handler.py", 3)]
    node = fn(
        "nodejs",
        "const h = require('./lib/h');\nexports.handler = () => h.boom();\n",
        handler="exports.handler",
        files={"lib/h.js": "exports.boom = () => {\n  throw new Error('in h');\n};\n"},
    )
    res = await service.invoke(node, {})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert [(s.file, s.line) for s in res.stack][:2] == [("lib/h.js", 2), ("index.js", 2)]


async def test_a_syntax_error_in_an_imported_file_points_at_it(service):
    f = fn(
        "python",
        "import helper\ndef handler(event, context):\n    return 1\n",
        files={"helper.py": "x = 1\ndef broken(:\n"},
    )
    res = await service.invoke(f, {})
    assert res.error_type == ErrorType.COMPILE_ERROR and "helper.py" in res.error
    assert (res.stack[0].file, res.stack[0].line) == ("helper.py", 2)
    assert (res.stack[1].file, res.stack[1].line) == ("handler.py", 1)


@pytest.mark.go
async def test_a_module_build_never_fetches_directly(make_service, monkeypatch):
    # `direct` would let a go.mod point the build at any HTTPS host and run VCS tools: dropped,
    # and with nothing left the build is offline and says how to vendor.
    monkeypatch.setenv("GOPROXY", "direct")
    svc = make_service()
    env = svc.runtimes_["go"]._go_env("proxy")
    assert env["GOPROXY"] == "off" and env["GOVCS"] == "*:off" and env["GOTOOLCHAIN"] == "local"
    files = {k: v for k, v in VENDORED.items() if not k.startswith("vendor/")}
    res = await svc.invoke(fn("go", GO_MODULE_CODE, files=files), {})
    assert res.error_type == ErrorType.COMPILE_ERROR and "go mod vendor" in res.error, res.error


@pytest.mark.go
async def test_a_go_mod_requiring_nothing_builds_offline_with_its_own_packages(service):
    files = {"go.mod": "module example.com/fn\n\ngo 1.19\n", "internal/util/util.go": VENDORED["internal/util/util.go"]}
    assert service.runtimes_["go"].module_mode(fn("go", "x", files=files)) == ""
    code = (
        'package main\n\nimport "example.com/fn/internal/util"\n\n'
        "func handler(event interface{}, context map[string]string) interface{} {\n\treturn util.Twice(4)\n}\n"
    )
    res = await service.invoke(fn("go", code, files=files), {})
    assert res.success, res.error
    assert res.result == 8
