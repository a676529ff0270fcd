"""Issue 12, part 1: a function that writes to its own protocol fd (the runner's RESP fd, found in
its argv) cannot leak its worker or confuse the platform. For each malformed, out-of-order or
unexpected frame:

- the invocation answers WorkerCrashed saying what was wrong with the frame (or, for a frame that
  comes after a valid reply, the worker is stopped as soon as the frame arrives);
- the worker that ran it is gone: its process exited, its cgroup folders are removed, its pool
  holds no worker and its memory is back in the budget;
- another function still invokes.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from core.executors import ExecutionService, ExecutionSettings
from core.models import ErrorType, Function

GO_MISSING = shutil.which("go") is None
NODE_MISSING = shutil.which("node") is None

# Every attack writes with the runner's own framing (4-byte big-endian length) unless it is the
# framing that is under attack. "nonce" attacks take the request's nonce from the runner's own
# variables, as any code in the worker process can: the checks past the nonce must hold too.
PY = r"""
import os, sys, threading

RESP = int(sys.argv[2])


def frame(body):
    return len(body).to_bytes(4, "big") + body


def req_nonce():
    f = sys._getframe(1)
    while f is not None and "req" not in f.f_locals:
        f = f.f_back
    return f.f_locals["req"]["nonce"]


def handler(event, context):
    a = event["attack"]
    if a == "hello":
        return "hello"
    n = req_nonce()
    bodies = {
        "array": b"[1, 2]",
        "string": b'"ok"',
        "fake_reply": b'{"ok": true, "result": "forged"}',
        "wrong_type": ('{"type": "up", "ok": true, "nonce": "%s"}' % n).encode(),
        "bad_error_type": ('{"ok": false, "error_type": "Throttled", "error": "x", "nonce": "%s"}' % n).encode(),
        "ok_not_bool": ('{"ok": "yes", "nonce": "%s"}' % n).encode(),
        "bad_cpu": ('{"ok": true, "result": 1, "cpu": "lots", "nonce": "%s"}' % n).encode(),
        "invalid_utf8": b'{"ok": true, "result": "\xff\xfe"}',
        "not_json": b'{"ok": tru',
    }
    if a in bodies:
        os.write(RESP, frame(bodies[a]))
        return "real"
    if a == "second_reply":  # a well-formed reply, then another one in the same write
        good = ('{"ok": true, "result": "forged", "nonce": "%s"}' % n).encode()
        os.write(RESP, frame(good) + frame(good))
        return "real"
    if a == "truncated":
        os.write(RESP, (100).to_bytes(4, "big") + b'{"ok": true')
        os.close(RESP)
        return "real"
    if a == "after_reply":  # a frame written once the real reply is out: nobody asked for it
        main = sys.modules["__main__"]
        real = main.write_frame

        def twice(obj, raw=None):
            real(obj, raw)
            os.write(RESP, frame(b'{"ok": true, "result": "late"}'))

        main.write_frame = twice
        return "real"
    raise ValueError(a)
"""

NODE = r"""
const fs = require('fs');
const RESP = Number(process.argv[3]);
function frame(s) {
  const b = Buffer.from(s, 'utf8');
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
}
function handler(event, context) {
  if (event.attack === 'hello') return 'hello';
  if (event.attack === 'array') fs.writeSync(RESP, frame('[1, 2]'));
  if (event.attack === 'fake_reply') fs.writeSync(RESP, frame('{"ok": true, "result": "forged"}'));
  if (event.attack === 'truncated') {
    fs.writeSync(RESP, Buffer.concat([Buffer.from([0, 0, 0, 100]), Buffer.from('{"ok"')]));
    fs.closeSync(RESP);
  }
  return 'real';
}
"""

GO = r"""
package main

import (
	"encoding/binary"
	"os"
	"strconv"
	"syscall"
)

func frame(s string) []byte {
	b := make([]byte, 4+len(s))
	binary.BigEndian.PutUint32(b, uint32(len(s)))
	copy(b[4:], s)
	return b
}

func handler(event interface{}, context map[string]string) interface{} {
	attack, _ := event.(map[string]interface{})["attack"].(string)
	fd, _ := strconv.Atoi(os.Args[2])
	out := os.NewFile(uintptr(fd), "resp")
	switch attack {
	case "hello":
		return "hello"
	case "array":
		out.Write(frame("[1, 2]"))
	case "fake_reply":
		out.Write(frame(`{"ok": true, "result": "forged"}`))
	case "truncated":
		out.Write([]byte{0, 0, 0, 100, '{'})
		syscall.Close(fd)
	}
	return "real"
}
"""

CODE = {"python": PY, "nodejs": NODE, "go": GO}

# attack -> what the error must say about the frame
PY_ATTACKS = {
    "array": "a JSON array where a reply object was expected",
    "string": "a JSON string where a reply object was expected",
    "fake_reply": "does not carry the nonce",
    "wrong_type": "a frame of type 'up' where an invocation's result was expected",
    "bad_error_type": "the error_type 'Throttled', which a runner cannot report",
    "ok_not_bool": "'ok' is not true or false",
    "bad_cpu": "'cpu' is not a number",
    "invalid_utf8": "not UTF-8",
    "not_json": "not JSON",
    "second_reply": "a frame nobody asked for",
    "truncated": "cut short: the pipe closed after 15 bytes of 104 bytes",
}
OTHER_ATTACKS = {
    "array": "a JSON array where a reply object was expected",
    "fake_reply": "does not carry the nonce",
    "truncated": "cut short",
}


@pytest.fixture
async def svc(tmp_path, shared_cache):
    s = ExecutionService(
        ExecutionSettings(work_dir=tmp_path / "work", cache_dir=shared_cache / "exec", max_memory=4096)
    )
    yield s
    await s.close()


def _fn(runtime: str) -> Function:
    return Function(name=f"attacker-{runtime}", runtime=runtime, code=CODE[runtime], timeout=10)


async def _warm_worker(svc: ExecutionService, fn: Function):
    r = await svc.invoke(fn, {"attack": "hello"})
    assert r.success and r.result == "hello", (r.error_type, r.error)
    pool = svc._pools[(fn.id, fn.version)]
    assert len(pool.idle) == 1
    return pool.idle[0]


async def _assert_gone(svc: ExecutionService, fn: Function, worker) -> None:
    await asyncio.gather(*list(svc._background))  # a stop started in the background is over
    assert worker.dead
    assert worker.proc.returncode is not None, "the worker's process still runs"
    for path in worker.cg.paths() if worker.cg else []:
        assert not path.exists(), f"its cgroup {path} is left"
    for path in getattr(worker, "_test_cgroups", []):
        assert not path.exists(), f"its cgroup {path} is left"
    stats = svc.stats()["workers"].get(fn.id, {"warm": 0, "busy": 0})
    assert (stats["warm"], stats["busy"]) == (0, 0), f"its pool still holds workers: {stats}"
    assert svc.budget.used == 0, f"its memory is still counted: {svc.budget.held}"


async def _attack(svc: ExecutionService, fn: Function, attack: str, says: str) -> None:
    worker = await _warm_worker(svc, fn)
    worker._test_cgroups = list(worker.cg.paths()) if worker.cg else []
    r = await svc.invoke(fn, {"attack": attack})
    assert not r.success, f"{attack}: the invocation succeeded with {r.result!r}"
    assert r.error_type == ErrorType.WORKER_CRASHED, (attack, r.error_type, r.error)
    assert "broke the protocol" in r.error and says in r.error, (attack, r.error)
    assert "internal error" not in r.error
    await _assert_gone(svc, fn, worker)
    other = Function(name="bystander", runtime="python", code="def handler(e, c):\n    return 'fine'\n")
    r = await svc.invoke(other, {})
    assert r.success and r.result == "fine", (r.error_type, r.error)


@pytest.mark.parametrize("attack", sorted(PY_ATTACKS))
async def test_python_frame_attack_stops_its_worker(svc, attack):
    await _attack(svc, _fn("python"), attack, PY_ATTACKS[attack])


async def test_python_frame_after_the_reply_stops_the_idle_worker(svc):
    fn = _fn("python")
    worker = await _warm_worker(svc, fn)
    worker._test_cgroups = list(worker.cg.paths()) if worker.cg else []
    gone = asyncio.Event()
    drop = svc._worker_gone
    svc._worker_gone = lambda w: (drop(w), gone.set())  # the hook a worker calls when it ends unasked
    worker.on_gone = svc._worker_gone
    r = await svc.invoke(fn, {"attack": "after_reply"})
    # The late frame may come while the invocation is still being closed (then it fails) or once
    # the worker is idle (the invocation had its real reply); the worker goes either way.
    if not r.success:
        assert r.error_type == ErrorType.WORKER_CRASHED and "a frame nobody asked for" in r.error, r.error
    else:
        assert r.result == "real"
    await asyncio.wait_for(gone.wait(), 10)
    assert worker.violation and "nobody asked for" in worker.violation
    await _assert_gone(svc, fn, worker)
    r = await svc.invoke(fn, {"attack": "hello"})
    assert r.success and r.cold_start, "the next invocation did not get a fresh worker"


@pytest.mark.skipif(NODE_MISSING, reason="Node.js is not installed")
@pytest.mark.parametrize("attack", sorted(OTHER_ATTACKS))
async def test_nodejs_frame_attack_stops_its_worker(svc, attack):
    await _attack(svc, _fn("nodejs"), attack, OTHER_ATTACKS[attack])


@pytest.mark.skipif(GO_MISSING, reason="the Go toolchain is not installed")
@pytest.mark.parametrize("attack", sorted(OTHER_ATTACKS))
async def test_go_frame_attack_stops_its_worker(svc, attack):
    await _attack(svc, _fn("go"), attack, OTHER_ATTACKS[attack])


async def test_three_attacks_leave_no_worker(svc):
    """The issue's report: three calls left three workers of 112 MB each, surviving delete."""
    fn = _fn("python")
    for attack in ("fake_reply", "array", "bad_error_type"):
        r = await svc.invoke(fn, {"attack": attack})
        assert r.error_type == ErrorType.WORKER_CRASHED, r.error
    await asyncio.gather(*list(svc._background))
    base = svc.sandbox.cgroups.memory_base if svc.sandbox.cgroups else None
    if base is not None:
        left = [p.name for p in Path(base).iterdir() if p.is_dir() and p.name.startswith("w-")]
        assert left == [], f"worker cgroups left: {left}"
    assert svc.stats()["warm_workers"] == svc.stats()["busy_workers"] == 0
    assert svc.budget.used == 0
