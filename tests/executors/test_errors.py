"""Every error type of core.models.ErrorType, each caused for real by a real worker."""

from __future__ import annotations

import asyncio

import pytest
from exec_helpers import fn, processes_matching

from core.models import ErrorType

# --- HandlerError: the user's exception, with the user's frames and lines ----------------------


async def test_python_exception_has_user_frames(service):
    code = (
        "def inner(x):\n    raise ValueError(f'bad {x}')\n\n\ndef handler(event, context):\n"
        "    return inner(event['x'])\n"
    )
    res = await service.invoke(fn("python", code), {"x": 7})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert res.error == "ValueError: bad 7"
    assert [(f.file, f.line, f.function) for f in res.stack] == [
        ("handler.py", 2, "inner"),
        ("handler.py", 6, "handler"),
    ]


async def test_nodejs_exception_has_user_frames(service):
    code = (
        "function inner(x) {\n  throw new TypeError('bad ' + x);\n}\nasync function handler(event) {\n"
        "  return inner(event.x);\n}\n"
    )
    res = await service.invoke(fn("nodejs", code), {"x": 7})
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert res.error == "TypeError: bad 7"
    assert [(f.file, f.line, f.function) for f in res.stack][:2] == [
        ("index.js", 2, "inner"),
        ("index.js", 5, "handler"),
    ]


@pytest.mark.go
async def test_go_panic_and_error_have_user_frames(service):
    code = (
        'import "fmt"\n\nfunc inner(crash bool) error {\n\tif crash {\n\t\tpanic("boom")\n\t}\n'
        '\treturn fmt.Errorf("bad %d", 7)\n}\n\n'
        "func handler(event interface{}, context map[string]string) (interface{}, error) {\n"
        '\treturn nil, inner(event.(map[string]interface{})["crash"] == true)\n}\n'
    )
    f = fn("go", code)
    res = await service.invoke(f, {"crash": True})
    assert res.error_type == ErrorType.HANDLER_ERROR and res.error == "panic: boom"
    assert [(s.file, s.line, s.function) for s in res.stack][:2] == [
        ("main.go", 5, "inner"),
        ("main.go", 11, "handler"),
    ]
    res = await service.invoke(f, {"crash": False})  # a panic does not cost the warm worker
    assert res.error_type == ErrorType.HANDLER_ERROR and res.error == "bad 7" and not res.cold_start
    assert [(s.line, s.function) for s in res.stack][:2] == [(7, "inner"), (11, "handler")]


# --- CompileError at the user's line -------------------------------------------------------------


async def test_python_syntax_error_line(service):
    res = await service.invoke(fn("python", "import os\n\ndef handler(event, context)\n    return 1\n"), {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    assert "line 3" in res.error and res.stack[0].line == 3


async def test_nodejs_syntax_error_line(service):
    res = await service.invoke(fn("nodejs", "const a = 1;\n\nfunction handler(event) {\n  return a +;\n}\n"), {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    assert res.error.startswith("SyntaxError") and "line 4" in res.error and res.stack[0].line == 4


@pytest.mark.go
async def test_go_compile_error_line_and_column_in_user_code(service):
    code = "func handler(event interface{}, context map[string]string) interface{} {\n\tx := 1\n\treturn y\n}\n"
    res = await service.invoke(fn("go", code), {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    # line 3 of the user's code, though the compiled file starts with an added `package main`
    assert res.error.startswith("main.go:2:2: ") or res.error.startswith("main.go:3:"), res.error
    assert {(s.line, s.column) for s in res.stack} >= {(3, 9)}, res.stack
    assert "undefined: y" in res.error


@pytest.mark.parametrize(
    "runtime,code",
    [
        ("python", "def other(event, context):\n    return 1\n"),
        ("nodejs", "function other(event) { return 1; }"),
        pytest.param(
            "go",
            "func other(event interface{}, context map[string]string) interface{} { return 1 }",
            marks=pytest.mark.go,
        ),
    ],
)
async def test_missing_handler_is_named(service, runtime, code):
    res = await service.invoke(fn(runtime, code, handler="main_handler"), {})
    assert res.error_type == ErrorType.COMPILE_ERROR
    assert "'main_handler' is not defined" in res.error


# --- Timeout: wall clock and CPU; the whole tree is stopped ---------------------------------------


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "import subprocess, time\ndef handler(event, context):\n"
            "    subprocess.Popen(['sleep', '987651'])\n    time.sleep(30)\n",
        ),
        (
            "nodejs",
            "const cp = require('child_process');\n"
            "async function handler() { cp.spawn('sleep', ['987652']); await new Promise(r => setTimeout(r, 30000)); }",
        ),
        pytest.param(
            "go",
            'import ("os/exec"; "time")\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
            '\texec.Command("sleep", "987653").Start()\n\ttime.Sleep(30 * time.Second)\n\treturn nil\n}\n',
            marks=pytest.mark.go,
        ),
    ],
)
async def test_sleep_past_timeout_kills_everything(service, runtime, code):
    marker = {"python": "987651", "nodejs": "987652", "go": "987653"}[runtime]
    res = await service.invoke(fn(runtime, code, timeout=1), {})
    assert res.error_type == ErrorType.TIMEOUT, res.error
    assert "timeout of 1 s" in res.error
    assert 1000 <= res.duration < 3000
    assert processes_matching(f"sleep {marker}") == []


async def test_cpu_spin_times_out(service):
    res = await service.invoke(
        fn("python", "def handler(event, context):\n    while True:\n        pass\n", timeout=1), {}
    )
    assert res.error_type == ErrorType.TIMEOUT


async def test_event_loop_blocking_spin_times_out_in_nodejs(service):
    res = await service.invoke(fn("nodejs", "function handler() { for (;;) {} }", timeout=1), {})
    assert res.error_type == ErrorType.TIMEOUT


# --- MemoryLimitExceeded in every runtime ---------------------------------------------------------


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "def handler(event, context):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 20))\n",
        ),
        ("python", "def handler(event, context):\n    return len(bytearray(4 << 30))\n"),  # one huge allocation
        ("nodejs", "function handler() { const hog = []; for (;;) hog.push(new Array(1e6).fill(1.5)); }"),
        ("nodejs", "function handler() { const hog = []; for (;;) hog.push(Buffer.alloc(1 << 24, 1)); }"),  # off-heap
        pytest.param(
            "go",
            "func handler(event interface{}, context map[string]string) interface{} {\n"
            "\thog := [][]byte{}\n\tfor {\n\t\tb := make([]byte, 1<<20)\n\t\tfor i := range b {\n\t\t\tb[i] = 1\n"
            "\t\t}\n"
            "\t\thog = append(hog, b)\n\t}\n}\n",
            marks=pytest.mark.go,
        ),
    ],
)
async def test_memory_hog(service, runtime, code):
    f = fn(runtime, code, memory=128)
    res = await service.invoke(f, {})
    assert res.error_type == ErrorType.MEMORY_LIMIT, f"{res.error_type}: {res.error}"
    assert "128 MB" in res.error


# --- OutputTooLarge: log flood, huge result ------------------------------------------------------


@pytest.mark.parametrize(
    "runtime,code",
    [
        ("python", "def handler(event, context):\n    while True:\n        print('x' * 1000)\n"),
        ("nodejs", "function handler() { for (;;) console.log('x'.repeat(1000)); }"),
    ],
)
async def test_output_flood(service, runtime, code):
    res = await service.invoke(fn(runtime, code), {})
    assert res.error_type == ErrorType.OUTPUT_TOO_LARGE
    assert "logs" in res.error
    assert 0 < len(res.logs) <= 70 * 1024  # what was kept, bounded


@pytest.mark.parametrize(
    "runtime,code",
    [
        ("python", "def handler(event, context):\n    return 'x' * (7 * 1024 * 1024)\n"),
        ("nodejs", "function handler() { return 'x'.repeat(7 * 1024 * 1024); }"),
        pytest.param(
            "go",
            'import "strings"\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
            '\treturn strings.Repeat("x", 7*1024*1024)\n}\n',
            marks=pytest.mark.go,
        ),
    ],
)
async def test_result_too_large(service, runtime, code):
    f = fn(runtime, code)
    res = await service.invoke(f, {})
    assert res.error_type == ErrorType.OUTPUT_TOO_LARGE
    assert "result" in res.error


# --- InvalidResult / InvalidEvent ----------------------------------------------------------------


@pytest.mark.parametrize(
    "runtime,code",
    [
        ("python", "def handler(event, context):\n    return {'when': {1, 2}}\n"),
        ("nodejs", "function handler() { return {n: 10n}; }"),
        pytest.param(
            "go",
            "func handler(event interface{}, context map[string]string) interface{} {\n"
            '\treturn map[string]interface{}{"c": make(chan int)}\n}\n',
            marks=pytest.mark.go,
        ),
    ],
)
async def test_result_not_json(service, runtime, code):
    res = await service.invoke(fn(runtime, code), {})
    assert res.error_type == ErrorType.INVALID_RESULT
    assert "not JSON-serialisable" in res.error


async def test_event_not_json(service):
    f = fn("python", "def handler(event, context):\n    return event\n")
    res = await service.invoke(f, {"s": {1, 2}})
    assert res.error_type == ErrorType.INVALID_EVENT
    res = await service.invoke(f, float("nan"))
    assert res.error_type == ErrorType.INVALID_EVENT


@pytest.mark.go
async def test_event_that_does_not_fit_a_typed_go_handler(service):
    code = 'func handler(event map[string]int, context map[string]string) interface{} {\n\treturn event["n"] + 1\n}\n'
    f = fn("go", code)
    assert (await service.invoke(f, {"n": 1})).result == 2
    res = await service.invoke(f, ["not", "a", "map"])
    assert res.error_type == ErrorType.INVALID_EVENT and "map[string]int" in res.error


# --- WorkerCrashed, and the crashed worker is replaced --------------------------------------------


@pytest.mark.parametrize(
    "runtime,code",
    [
        (
            "python",
            "import os\ndef handler(event, context):\n    if event.get('die'):\n        os._exit(3)\n"
            "    return os.getpid()\n",
        ),
        (
            "nodejs",
            "function handler(event) { if (event.die) process.kill(process.pid, 'SIGSEGV'); return process.pid; }",
        ),
        pytest.param(
            "go",
            'import "os"\n\nfunc handler(event interface{}, context map[string]string) interface{} {\n'
            '\tif event.(map[string]interface{})["die"] == true {\n\t\tos.Exit(3)\n\t}\n\treturn os.Getpid()\n}\n',
            marks=pytest.mark.go,
        ),
    ],
)
async def test_crash_is_reported_and_the_worker_replaced(service, runtime, code):
    f = fn(runtime, code)
    first = await service.invoke(f, {})
    assert first.success
    crash = await service.invoke(f, {"die": True})
    assert crash.error_type == ErrorType.WORKER_CRASHED
    assert "exited with code 3" in crash.error or "SIGSEGV" in crash.error
    after = await service.invoke(f, {})
    assert after.success and after.cold_start  # a fresh worker


# --- Throttled ---------------------------------------------------------------------------------


async def test_throttled_when_the_queue_is_full(make_service):
    svc = make_service(max_concurrent=1, queue_size=1, queue_timeout=30)
    f = fn("python", "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n    return event['s']\n")
    results = await asyncio.gather(*(svc.invoke(f, {"s": 0.3}) for _ in range(3)))
    kinds = sorted(str(r.error_type) if r.error_type else "ok" for r in results)
    assert kinds == ["ErrorType.THROTTLED", "ok", "ok"], kinds
    throttled = [r for r in results if r.error_type][0]
    assert "queue size 1" in throttled.error


async def test_throttled_after_waiting_queue_timeout(make_service):
    svc = make_service(max_concurrent=1, queue_size=10, queue_timeout=0.2)
    f = fn("python", "import time\ndef handler(event, context):\n    time.sleep(1)\n")
    slow, late = await asyncio.gather(svc.invoke(f, {}), svc.invoke(f, {}))
    assert slow.success and late.error_type == ErrorType.THROTTLED
    assert "within 0.2 s" in late.error


# --- RuntimeUnavailable ---------------------------------------------------------------------------


async def test_go_missing_says_how_to_install(service, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no toolchain on it
    res = await service.invoke(
        fn("go", "func handler(e interface{}, c map[string]string) interface{} { return 1 }"), {}
    )
    assert res.error_type == ErrorType.RUNTIME_UNAVAILABLE
    assert "apt-get install golang-go" in res.error
    assert service.runtimes()["go"]["available"] is False
    assert "golang-go" in service.runtimes()["go"]["hint"]


# --- BuildError ------------------------------------------------------------------------------------


async def test_dependencies_missing_at_start_are_a_build_error(make_service):
    """The platform installs a function's dependencies before its workers start (tests/deps); a
    worker whose environment is not there (collected under it, say) fails cleanly, never starts
    without its packages."""
    svc = make_service(deps_tree=lambda f: None)
    f = fn("python", "import tinypkg\ndef handler(event, context):\n    return 1\n")
    f.dependencies = "tinypkg\n"
    res = await svc.invoke(f, {})
    assert res.error_type == ErrorType.BUILD_ERROR and "cloudfn deps" in res.error


def test_every_error_type_is_covered_here():
    import pathlib

    text = pathlib.Path(__file__).read_text()
    for et in ErrorType:
        assert f"ErrorType.{et.name}" in text, et
