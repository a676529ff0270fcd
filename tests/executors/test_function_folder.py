"""A function runs in its own folder, as Lambda's /var/task: a shipped file opens by a relative
path in every runtime, the folder is read-only and /tmp stays writable. A handler may sit in a
subfolder (`handler_file`), and the files beside it import as they would on the user's machine."""

from __future__ import annotations

import pytest
from exec_helpers import fn

from core.errors import InvalidInput
from core.models import ErrorType, parse_patch, parse_spec

DATA = '{"greeting": "hi from data.json"}'

PY_CWD = (
    "import json, os\n"
    "def handler(event, context):\n"
    "    with open('data.json') as f:\n"
    "        data = json.load(f)\n"
    "    with open('/tmp/scratch', 'w') as f:\n"
    "        f.write('ok')\n"
    "    try:\n"
    "        open('new.txt', 'w').write('x')\n"
    "        wrote = 'writable'\n"
    "    except OSError as exc:\n"
    "        wrote = exc.strerror\n"
    "    return {'cwd': os.getcwd(), 'data': data['greeting'], 'tmp': open('/tmp/scratch').read(),\n"
    "            'wrote': wrote}\n"
)


async def test_python_reads_a_shipped_file_by_a_relative_path(service):
    res = await service.invoke(fn("python", PY_CWD, files={"data.json": DATA}), {})
    assert res.success, res.error
    assert res.result["data"] == "hi from data.json" and res.result["tmp"] == "ok"
    if service.sandbox.bwrap:
        assert res.result["cwd"] == "/function"
        assert res.result["wrote"] in ("Read-only file system", "Permission denied")


async def test_a_pre_started_python_sandbox_runs_in_the_function_folder_too(make_service):
    svc = make_service(prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    await svc.prewarm.wait_ready()
    assert svc.stats()["prewarmed"]["python"] == 1, svc.stats()["prewarm_problem"]
    f = fn("python", PY_CWD, files={"data.json": DATA})
    res = await svc.invoke(f, {})
    assert res.success, res.error
    pool = svc._pools[(f.id, f.version)]
    assert [w.slot is not None for w in [*pool.idle, *pool.busy]] == [True]
    assert res.result["cwd"] == "/function" and res.result["data"] == "hi from data.json"
    assert res.result["wrote"] in ("Read-only file system", "Permission denied")


async def test_nodejs_reads_a_shipped_file_by_a_relative_path(service):
    code = (
        "const fs = require('fs');\n"
        "exports.handler = async () => {\n"
        "  fs.writeFileSync('/tmp/scratch', 'ok');\n"
        "  let wrote = 'writable';\n"
        "  try { fs.writeFileSync('new.txt', 'x'); } catch (e) { wrote = e.code; }\n"
        "  return {cwd: process.cwd(), data: JSON.parse(fs.readFileSync('data.json', 'utf8')).greeting,\n"
        "          tmp: fs.readFileSync('/tmp/scratch', 'utf8'), wrote};\n"
        "};\n"
    )
    res = await service.invoke(fn("nodejs", code, handler="exports.handler", files={"data.json": DATA}), {})
    assert res.success, res.error
    assert res.result["data"] == "hi from data.json" and res.result["tmp"] == "ok"
    if service.sandbox.bwrap:
        assert res.result["cwd"] == "/function" and res.result["wrote"] in ("EROFS", "EACCES")


@pytest.mark.go
async def test_go_reads_a_shipped_file_by_a_relative_path(service):
    code = (
        'package main\n\nimport "os"\n\n'
        "func handler(event interface{}, context map[string]string) interface{} {\n"
        '\tdata, err := os.ReadFile("conf/data.json")\n'
        "\tif err != nil {\n\t\treturn err.Error()\n\t}\n"
        '\tif err := os.WriteFile("/tmp/scratch", []byte("ok"), 0o600); err != nil {\n'
        "\t\treturn err.Error()\n\t}\n"
        "\tcwd, _ := os.Getwd()\n"
        '\treturn map[string]string{"data": string(data), "cwd": cwd}\n}\n'
    )
    res = await service.invoke(fn("go", code, files={"conf/data.json": DATA}), {})
    assert res.success, res.error
    assert res.result["data"] == DATA
    if service.sandbox.bwrap:
        assert res.result["cwd"] == "/function"


PY_MAIN = (
    "import util\nfrom src import util as same\n"
    "def handler(event, context):\n"
    "    return [util.shout(event['x']), same is util or same.shout('y'), __file__, util.boom_line()]\n"
)
PY_UTIL = (
    "def shout(s):\n    return s.upper()\n"
    "def boom_line():\n    return 'fine'\n"
    "def boom():\n    raise ValueError('in util')\n"
)


async def test_a_python_handler_in_a_subfolder_imports_the_files_beside_it(service):
    f = fn(
        "python",
        PY_MAIN,
        handler_file="src/main.py",
        files={"src/util.py": PY_UTIL, "src/__init__.py": "", "handler.py": "raise SystemExit('not me')\n"},
    )
    res = await service.invoke(f, {"x": "hey"})
    assert res.success, res.error
    assert res.result[0] == "HEY" and res.result[3] == "fine"
    assert res.result[2].endswith("/src/main.py")


async def test_a_python_subfolder_handler_names_its_files_in_stacks(service):
    code = "import util\ndef handler(event, context):\n    return util.boom()\n"
    res = await service.invoke(fn("python", code, handler_file="src/main.py", files={"src/util.py": PY_UTIL}), {})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert [(s.file, s.line) for s in res.stack] == [("src/util.py", 6), ("src/main.py", 3)]
    bad = await service.invoke(fn("python", "def handler(e, c):\n  return (\n", handler_file="src/main.py"), {})
    assert bad.error_type == ErrorType.COMPILE_ERROR and bad.stack[0].file == "src/main.py"


async def test_a_nodejs_handler_in_a_subfolder_requires_the_files_beside_it(service):
    code = (
        "const util = require('./util');\nconst data = require('../conf/data.json');\n"
        "exports.handler = async (e) => ({up: util.up(e.x), data: data.greeting, file: __filename});\n"
    )
    f = fn(
        "nodejs",
        code,
        handler="exports.handler",
        handler_file="src/main.js",
        files={"src/util.js": "exports.up = (s) => s.toUpperCase();\n", "conf/data.json": DATA},
    )
    res = await service.invoke(f, {"x": "hey"})
    assert res.success, res.error
    assert res.result["up"] == "HEY" and res.result["data"] == "hi from data.json"
    assert res.result["file"].endswith("/src/main.js")


@pytest.mark.parametrize(
    "runtime, path, why",
    [
        ("python", "../main.py", "'..'"),
        ("python", "/abs/main.py", "absolute"),
        ("python", "src/main.js", "must name a .py file"),
        ("nodejs", "src/main.mjs", "must name a .js or .cjs file"),
        ("go", "cmd/main.go", "must be empty for go functions"),
        ("python", ".cloudfn-x/main.py", "reserved"),
    ],
)
def test_a_bad_handler_file_is_named_with_the_fix(runtime, path, why):
    with pytest.raises(InvalidInput) as exc:
        parse_spec({"name": "f", "runtime": runtime, "code": "x", "handler_file": path})
    assert [e.field for e in exc.value.errors] == ["handler_file"]
    assert why in exc.value.errors[0].message


def test_handler_file_and_files_may_not_collide():
    spec = {"name": "f", "runtime": "python", "code": "x", "handler_file": "src/main.py"}
    for files, field in [({"src/main.py": ""}, "files.src/main.py"), ({"src": ""}, "files.src")]:
        with pytest.raises(InvalidInput) as exc:
            parse_spec({**spec, "files": files})
        assert [e.field for e in exc.value.errors] == [field]
    # the default name is free when the handler lives elsewhere; the default itself is stored as ""
    assert parse_spec({**spec, "files": {"handler.py": ""}}).files == {"handler.py": ""}
    assert parse_spec({**spec, "handler_file": "handler.py"}).handler_file == ""
    assert parse_patch({"handler_file": "src/app.py"}).handler_file == "src/app.py"
