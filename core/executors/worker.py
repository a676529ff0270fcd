"""One warm worker process: spawn it sandboxed, load the code once, run invocations one at a time,
and stop it (the kill of its whole tree, its cgroups and folders). What goes over its pipes, and
what a reply may hold, is protocol.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.filemodes import private_dir
from core.models import ErrorType, InvokeResult

from .budget import MemoryBudget
from .protocol import (
    EVENT_LIMIT_BYTES,
    LOG_LIMIT_BYTES,
    NONCE_MARKER,
    RESULT_LIMIT_BYTES,
    FrameReader,
    LogCollector,
    encode_frame,
    reply_problem,
    stack_frames,
)
from .sandbox import CgroupSet, HostSandbox, WorkerSpec, seal_fds
from .schedpolicy import batch_children
from .spawn import NICE, ChildProcess, pipe_file, spawn

# Callers of the worker layer import these from here.
__all__ = ["EVENT_LIMIT_BYTES", "Adoption", "NotAdopted", "Worker", "WorkerDied", "WorkerInit"]

SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}
PIDS_NOTE = " (the worker reached its limit on processes and threads)"
KILL_WAIT = 5.0  # seconds a kill waits for the last process of a worker to exit (see CgroupSet.kill_all)


class WorkerDied(Exception):
    pass


class NotAdopted(Exception):
    """A pre-started sandbox could not take on a function (the caller starts a fresh worker)."""


@dataclass
class WorkerInit:
    """What a runtime hands the worker layer: how to start, and the init frame."""

    spec: WorkerSpec
    init: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # told to the user in the first logs


@dataclass
class Adoption:
    """How a pre-started runner of a runtime takes on one function version (prewarm.py)."""

    init: dict[str, Any] = field(default_factory=dict)  # added to its init frame
    files: dict[str, str] = field(default_factory=dict)  # in its function folder until the code loads
    prelude: bytes = b""  # written to its request pipe before the init frame


class Worker:
    def __init__(
        self, key: tuple[str, int], runtime: str, wi: WorkerInit, sandbox: HostSandbox, memory_mb: int, timeout: float
    ):
        self.key = key
        self.runtime = runtime
        self.wi = wi
        self.sandbox = sandbox
        self.memory_mb = memory_mb
        self.timeout = timeout
        self.id = uuid.uuid4().hex[:8]
        # Nonces: a random per-worker prefix and a counter (unique per worker; no uuid per call).
        self._nonce_prefix = os.urandom(8).hex()
        self._nonce_count = 0
        self.proc: ChildProcess | None = None
        self.cg: CgroupSet | None = None
        self.req_w: asyncio.WriteTransport | None = None
        self._waiter: asyncio.Future[tuple[str, Any]] | None = None
        self._early: tuple[str, Any] | None = None  # an event that came with no one waiting
        self.logs: LogCollector | None = None
        self.exit_task: asyncio.Future[int] | None = None
        self.baseline: set[int] = set()
        self.invocations = 0
        self.last_used = time.monotonic()
        self.dead = False
        self.killed_for: ErrorType | None = None
        self.cpu_used = 0.0
        self.init_ms = 0.0
        self.busy = False
        self.host_dir: Path | None = None
        self.retired = False  # stopped because its function changed
        self.last_peak: float | None = None
        self.slot: Path | None = None  # a pre-started sandbox's own function folder (removed with it)
        self._spec: WorkerSpec | None = None
        self.violation: str | None = None  # how it broke the protocol, if it did
        # Called when the worker ends on its own between invocations (a frame nobody asked for,
        # an exit): its pool drops it and stops what is left. Without one it stops itself.
        self.on_gone: Callable[[Worker], None] | None = None
        self.budget: MemoryBudget | None = None  # the service's MemoryBudget, released once the worker is gone
        self._exchanges = 0
        self._ending = False
        self._kills = 0
        self._starting = False
        self._cleanup: asyncio.Future[None] | None = None
        # Niceness of its launch chain while it starts in the background (set before spawn): a
        # burst's extra starts then leave the CPU to the warm workers and the server (spawn.py).
        self.nice = 0

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> InvokeResult | None:
        """Spawn and load the code. None when ready, else the failure (e.g. CompileError)."""
        t0 = time.perf_counter()
        self._starting = True
        try:
            failure = await self.spawn()
            if failure is not None:
                return failure
            return await self._load(t0)
        finally:
            self._starting = False

    async def spawn(self, wait_up: bool = False) -> InvokeResult | None:
        """Start the process (cgroup, sandbox, pipes) without loading any code. `wait_up`: wait
        for the runner's {"type": "up"} (a pre-started runner says it once it is running)."""
        loop = asyncio.get_running_loop()
        if self.sandbox.cgroups is not None:
            self.cg = self.sandbox.cgroups.create(self.memory_mb)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        log_r, log_w = os.pipe()
        base = self.wi.spec
        host_dir = None
        if base.host_dir is not None and not self.sandbox.bwrap:
            host_dir = base.host_dir / self.id  # a private working folder when there is no sandbox
            private_dir(host_dir, 0o700)
            self.host_dir = host_dir
        spec = dataclasses.replace(
            base,
            host_dir=host_dir,
            argv=[a.replace("{REQ_FD}", str(req_r)).replace("{RESP_FD}", str(resp_w)) for a in base.argv],
        )
        launch = self.sandbox.command(spec, self.cg)
        if self.sandbox.drops_uid:
            # The sandbox user may reopen its own pipes through /proc/self/fd (Go's pre-started
            # shell does: dash cannot redirect fds above 9); a pipe belongs to its maker, root.
            user = self.sandbox.user
            assert user is not None  # what drops_uid means
            for fd in (req_r, resp_w):
                os.fchown(fd, user.uid, user.gid)
        seal_fds()
        try:
            # Not asyncio's subprocess_exec: under uvloop it forks the whole server on the loop
            # thread (spawn.py). Batch policy: a woken worker does not preempt the server (schedpolicy.py).
            argv = launch.argv
            if self.nice and NICE:
                argv = [NICE, "-n", str(self.nice), *argv]
            with batch_children():
                self.proc = spawn(
                    argv,
                    stdout=log_w,
                    stderr=log_w,
                    pass_fds=(req_r, resp_w, *launch.fds),
                    env=launch.env,
                    cwd=launch.cwd,
                )
        except OSError as exc:
            for fd in (req_r, req_w, resp_r, resp_w, log_r, log_w):
                os.close(fd)
            self.dead = True
            self._remove_cgroup()
            return InvokeResult.failure(ErrorType.RUNTIME_UNAVAILABLE, f"cannot start the {self.runtime} worker: {exc}")
        finally:
            launch.close()
        for fd in (req_r, resp_w, log_w):
            os.close(fd)
        await loop.connect_read_pipe(lambda: FrameReader(self._on_event), pipe_file(resp_r, "rb", loop))
        logs = self.logs = LogCollector(lambda: self._on_event("flood", None))
        await loop.connect_read_pipe(lambda: logs, pipe_file(log_r, "rb", loop))
        self.req_w, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe_file(req_w, "wb", loop))
        self.exit_task = asyncio.ensure_future(self.proc.wait())
        self.exit_task.add_done_callback(lambda _: self._on_event("exit", None))
        self._spec = spec
        if wait_up:
            reply, failure = await self._exchange(None, timeout=max(10.0, self.timeout))
            if failure is None and (reply or {}).get("type") != "up":
                await self.kill()
                failure = InvokeResult.failure(ErrorType.WORKER_CRASHED, "the pre-started worker did not start")
            return failure
        return None

    def unnice(self) -> None:
        """Back to normal priority once it is needed: every thread of every process in its cgroup
        and its process group (root may lower a niceness; the sandbox user may not). bwrap's
        processes leave the launcher's process group, so the cgroup is what finds them. A thread
        started meanwhile by one not yet reniced inherits 10: passes repeat while new ones show."""
        if not self.nice or self.proc is None or self.proc.returncode is not None:
            self.nice = 0
            return
        self.nice = 0
        done: set[int] = set()
        for _ in range(5):
            pids = set(self.cg.members()) if self.cg else set()
            pids.add(self.proc.pid)
            tids: set[int] = set()
            for pid in pids:
                try:
                    tids.update(int(t) for t in os.listdir(f"/proc/{pid}/task"))
                except (OSError, ValueError):
                    pass
            if tids <= done:
                break
            for tid in tids - done:
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, 0)
                except OSError:
                    pass
            done |= tids
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PGRP, self.proc.pid, 0)  # without cgroups: what stayed in its group

    async def adopt(
        self,
        key: tuple[str, int],
        wi: WorkerInit,
        memory_mb: int,
        timeout: float,
        files: list[tuple[str, Path]],
        how: Adoption,
    ) -> InvokeResult | None:
        """A pre-started sandbox (see prewarm.py) takes on one function version: the version's
        files appear in the sandbox's own (read-only) folder `slot`, its cgroup gets the
        function's memory limit, and the runtime's `how` applies the function's rlimits and
        environment before any of its code runs. Raises NotAdopted when this sandbox cannot
        take it on."""
        t0 = time.perf_counter()
        slot = self.slot
        if slot is None or self.dead or self.proc is None or self.proc.returncode is not None:
            raise NotAdopted("the pre-started worker is gone")
        self.key, self.wi, self.memory_mb, self.timeout = key, wi, memory_mb, timeout
        try:
            for rel, f in files:  # paths from the version's own folder, laid out by write_tree
                target = slot / rel
                if "/" in rel:
                    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                try:
                    os.link(f, target)
                except OSError:
                    shutil.copy2(f, target)
            for name, text in how.files.items():
                (slot / name).write_text(text)
                os.chmod(slot / name, 0o644)
        except OSError as exc:
            raise NotAdopted(f"cannot place the function's files: {exc}") from None
        if self.cg and not self.cg.set_memory_limit(memory_mb):
            raise NotAdopted("the cgroup refused the function's memory limit")
        if how.prelude and self.req_w is not None:
            self.req_w.write(how.prelude)
        failure = await self._load(t0, how.init)
        for name in how.files:  # needed until the code is loaded (the folder then looks as usual)
            try:
                os.unlink(slot / name)
            except OSError:
                pass
        return failure

    async def _load(self, t0: float, extra: dict[str, Any] | None = None) -> InvokeResult | None:
        spec, logs = self._spec, self.logs
        assert spec is not None and logs is not None  # spawn() set them
        nonce = self._nonce()
        logs.begin(nonce)
        init = dict(self.wi.init)
        if extra:
            init.update(extra)
        for key in ("code_path", "deps_path", "root_path"):
            if key in init:
                init[key] = self.sandbox.host_path(spec, init[key])
        # The runner reports its own peak memory only where the cgroup cannot (one read of
        # /proc/self/status less per invocation).
        rss = self.cg is None or self.cg.peak_mb() is None
        init = dict(init, nonce=nonce, memory_mb=self.memory_mb, max_result_bytes=RESULT_LIMIT_BYTES, rss=rss)
        reply, failure = await self._exchange(init, timeout=max(10.0, self.timeout), nonce=nonce, expect="ready")
        if failure is None and self.violation is not None:
            failure = self._protocol_failure()
        self.init_ms = (time.perf_counter() - t0) * 1000
        if failure is not None:
            await self.kill()
            failure.init_duration = self.init_ms
            failure.cold_start = True
            return failure
        assert reply is not None  # _exchange answers a reply or a failure
        if not reply.get("ok"):
            text = logs.text()
            await self.kill()
            return InvokeResult.failure(
                ErrorType(reply.get("error_type", "CompileError")),
                reply.get("error", "the code did not load"),
                stack=stack_frames(reply.get("stack")),
                logs=text,
                cold_start=True,
                init_duration=self.init_ms,
            )
        if self.cg:
            self.baseline = set(self.cg.members())
        return None

    def _nonce(self) -> str:
        self._nonce_count += 1
        return f"{self._nonce_prefix}{self._nonce_count:016x}"  # 32 hex digits, as NONCE_MARKER

    def _remove_cgroup(self) -> None:
        if self.cg:
            self.cg.remove()
            self.cg = None

    def signal_kill(self) -> None:
        """SIGKILL the worker and everything it started, without waiting for them."""
        self.dead = True
        if self.cg:
            if self.last_peak is None:
                self.last_peak = self.cg.peak_mb()
            self.cg.kill_all()
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    async def kill(self) -> None:
        """Stop the worker and everything it started. Safe to call again, and concurrently: the
        last call out releases the worker's memory budget, once its cgroup is gone."""
        self._kills += 1
        try:
            await self._kill()
        finally:
            self._kills -= 1
            # Not while start() runs: a kill that lands before the process exists (a retire)
            # leaves it to be spawned after; the caller of start() kills it again then.
            if self._kills == 0 and not self._starting and self.budget is not None:
                self.budget.release(self)

    async def _kill(self) -> None:
        self.dead = True
        if self.cg:
            if self.last_peak is None:
                self.last_peak = self.cg.peak_mb()
            # Killing a cgroup full of processes (a fork bomb's) polls until they are gone:
            # off the event loop, which keeps serving every other function meanwhile.
            await asyncio.to_thread(self.cg.kill_all, None, KILL_WAIT)
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                # Not self.proc.kill(): Popen polls (waitpid) before it signals, reaping a worker
                # that just died under asyncio's child watcher, which then reports exit code 255
                # ("Unknown child process") instead of the signal.
                os.kill(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.exit_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.exit_task), 5)
            except (TimeoutError, Exception):
                pass
        if self.req_w is not None:
            try:
                self.req_w.close()
            except Exception:
                pass
        cg, self.cg = self.cg, None
        if cg is not None:
            await asyncio.to_thread(cg.remove)  # rmdir waits out the last exits
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir, ignore_errors=True)
        if self.slot is not None:
            shutil.rmtree(self.slot, ignore_errors=True)

    # --- one exchange -------------------------------------------------------------------------
    def _on_event(self, kind: str, value: Any) -> None:
        w = self._waiter
        if w is not None and not w.done():
            if kind == "eof" and self.proc is not None and self.proc.returncode is None:
                return  # the pipe closed first; the exit itself follows
            w.set_result((kind, value))
            return
        if kind == "eof":
            return
        if kind == "exit":
            if not self.dead and not self.busy:
                self._end_unasked(None)  # died between invocations: its cgroup and pool place go
            return
        if (
            w is None
            and self._exchanges == 0
            and self._early is None
            and kind == "frame"
            and isinstance(value, dict)
            and value.get("type") == "up"
        ):
            # Said before anyone waits: a pre-started runner's "up" can arrive while its pipes
            # are still being connected (it was lost, and the pool waited 10 s for it).
            self._early = (kind, value)
            return
        # Nobody asked: a second reply, a reply between invocations, a frame a thread of the
        # function wrote after its reply. No later reply of this worker could be trusted.
        what = {
            "frame": "a frame nobody asked for (a second reply, or one between invocations)",
            "toolarge": f"an unasked frame of {value} bytes",
        }.get(kind, value)
        self._end_unasked(what)

    def _end_unasked(self, violation: str | None) -> None:
        if violation and self.violation is None:
            self.violation = violation
        if self._ending:
            return
        self._ending = True
        self.signal_kill()
        if self.on_gone is not None:
            self.on_gone(self)
        else:
            self._cleanup = asyncio.ensure_future(self.kill())

    def _protocol_failure(self) -> InvokeResult:
        return InvokeResult.failure(
            ErrorType.WORKER_CRASHED, f"the worker broke the protocol: it wrote {self.violation}; it was stopped"
        )

    async def _exchange(
        self, msg: dict[str, Any] | bytes | None, timeout: float, nonce: str | None = None, expect: str | None = None
    ) -> tuple[dict[str, Any] | None, InvokeResult | None]:
        """Send one request (a message, or one already encoded), wait for its reply, the worker's
        death, a log flood or the timeout. A reply must carry `nonce` and fit `expect` (see
        reply_problem); one that does not stops the worker."""
        exit_task, req_w, logs = self.exit_task, self.req_w, self.logs
        assert exit_task is not None and req_w is not None and logs is not None  # spawn() set them
        loop = asyncio.get_running_loop()
        self._exchanges += 1
        fut = self._waiter = loop.create_future()
        early, self._early = self._early, None  # an answer only to waiting for what it says by itself
        if early is not None and msg is None:
            fut.set_result(early)
        elif exit_task.done():
            fut.set_result(("exit", None))
        elif msg is not None:  # None: only wait for what the worker says by itself
            data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
            req_w.write(encode_frame(data))

        def expire() -> None:
            if not fut.done():
                fut.set_result(("timeout", None))

        timer = loop.call_later(timeout, expire)
        try:
            kind, value = await fut
        finally:
            timer.cancel()
            self._waiter = None
        if kind == "frame":
            problem = reply_problem(value, nonce, expect)
            if problem is not None:
                kind, value = "garbage", problem
        if kind == "frame":
            # Logs end at the marker the runner wrote before the reply: usually already read.
            # Without one, all that was printed had been read before the reply was written, and
            # what comes later belongs to no invocation.
            if not value.get("logs_closed", True):
                logs.done = True
            elif not logs.done:
                await logs.wait_done(2)
            return value, None
        if kind == "toolarge":
            await self.kill()
            return None, InvokeResult.failure(
                ErrorType.OUTPUT_TOO_LARGE, f"the response is {value} bytes; the limit is {RESULT_LIMIT_BYTES}"
            )
        if kind == "flood":
            await self.kill()
            return None, InvokeResult.failure(
                ErrorType.OUTPUT_TOO_LARGE,
                f"the function printed more than {LOG_LIMIT_BYTES // 1024} KiB of logs in one invocation; "
                "the worker was stopped",
            )
        if kind == "timeout":
            self.killed_for = ErrorType.TIMEOUT
            await self.kill()
            return None, InvokeResult.failure(
                ErrorType.TIMEOUT,
                f"the function did not finish within its timeout of {self._fmt_timeout(timeout)}; "
                "it was stopped with everything it started",
            )
        # The worker died, closed its pipe or wrote garbage: find out why.
        if kind == "garbage":
            # This frame, not the runner's real reply that often follows it in the same read.
            self.violation = value
            await self.kill()
            return None, self._protocol_failure()
        try:
            await asyncio.wait_for(asyncio.shield(exit_task), 2)
        except TimeoutError:
            pass
        failure = self._death()
        await self.kill()
        return None, failure

    @staticmethod
    def _fmt_timeout(t: float) -> str:
        return f"{t:g} s"

    def _death(self) -> InvokeResult:
        rc = self.proc.returncode if self.proc else None
        sig = None
        if rc is not None and rc < 0:
            sig = -rc
        elif rc is not None and rc > 128 and self.sandbox.bwrap:
            sig = rc - 128  # bwrap reports its child's signal death as 128+signal
        # The markers that ended earlier invocations' logs mean nothing to the user.
        tail = NONCE_MARKER.sub("", bytes(self.logs.tail).decode("utf-8", errors="replace")) if self.logs else ""
        low = tail.lower()
        oom = self.cg.oom_since_mark() if self.cg else False
        mem = f"{self.memory_mb} MB"
        if oom or any(m in low for m in ("heap out of memory", "runtime: out of memory", "fatal error: out of memory")):
            return InvokeResult.failure(
                ErrorType.MEMORY_LIMIT, f"the function used more than its memory limit of {mem} and was stopped"
            )
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and self.cpu_used + 0.5 >= self.wi.spec.cpu_seconds):
            return InvokeResult.failure(ErrorType.TIMEOUT, "the function used up its CPU time limit and was stopped")
        if sig == signal.SIGXFSZ:
            return InvokeResult.failure(
                ErrorType.OUTPUT_TOO_LARGE, "the function wrote a file larger than the file size limit"
            )
        last = "\n".join(tail.strip().splitlines()[-5:])
        hint = f"; its last output: {last}" if last else ""
        # A runtime's own fatal error (Go: "fatal error: all goroutines are asleep - deadlock!")
        # heads a long dump whose last lines say little: name it first.
        output = self.logs.text() if self.logs else ""
        fatal = next(
            (line.strip() for line in output.splitlines() if line.startswith(("fatal error:", "FATAL ERROR:"))), ""
        )
        if fatal and fatal not in last:
            hint = f"; {fatal}{hint}"
        if self.cg and self.cg.pids_limit_hit_since_mark():
            hint = PIDS_NOTE + hint
        if sig is not None:
            name = SIGNAL_NAMES.get(sig, f"signal {sig}")
            return InvokeResult.failure(ErrorType.WORKER_CRASHED, f"the worker was killed by {name}{hint}")
        if rc is None:
            return InvokeResult.failure(ErrorType.WORKER_CRASHED, f"the worker closed its pipe unexpectedly{hint}")
        return InvokeResult.failure(ErrorType.WORKER_CRASHED, f"the worker exited with code {rc}{hint}")

    async def invoke(self, event_json: str, context: dict[str, str], timeout: float) -> InvokeResult:
        """`event_json`: the event already encoded (the service checks its size that way)."""
        self.busy = True
        try:
            return await self._invoke(event_json, context, timeout)
        finally:
            self.busy = False
            self.last_used = time.monotonic()

    async def _invoke(self, event_json: str, context: dict[str, str], timeout: float) -> InvokeResult:
        collector = self.logs
        assert collector is not None  # spawn() set it
        nonce = self._nonce()
        collector.begin(nonce)
        if self.cg:
            self.cg.reset_peak()
        deadline_ms = time.time() * 1000 + timeout * 1000
        ctx = dict(context)
        ctx["time_remaining_ms"] = str(int(timeout * 1000))
        ctx["deadline_ms"] = str(int(deadline_ms))
        # The same message as json.dumps of {"type", "event", "context", ...}, without encoding
        # the event a second time.
        msg = (
            f'{{"type": "invoke", "event": {event_json}, "context": {json.dumps(ctx)}, '
            f'"nonce": "{nonce}", "timeout": {float(timeout)!r}, "deadline_ms": {deadline_ms!r}, '
            f'"max_result_bytes": {RESULT_LIMIT_BYTES}}}'
        ).encode()
        t0 = time.perf_counter()
        reply, failure = await self._exchange(msg, timeout, nonce=nonce, expect="result")
        if failure is None and self.violation is not None:  # another frame came with the reply
            await self.kill()
            failure = self._protocol_failure()
        duration = (time.perf_counter() - t0) * 1000
        self.invocations += 1
        logs = collector.text()
        peak = self.cg.peak_mb() if self.cg else self.last_peak
        if failure is not None:
            failure.duration_ms = duration
            failure.logs = logs
            if peak is not None:
                failure.memory_used = round(peak, 2)
            return failure
        assert reply is not None  # _exchange answers a reply or a failure
        self.cpu_used = float(reply.get("cpu") or 0.0)
        if peak is None:
            peak = float(reply.get("maxrss_kb") or 0) / 1024
        pids_note = ""
        recycle = False
        if self.cg:
            if self.cg.pids_limit_hit_since_mark():
                # Threads the function left running (and Node's unreaped children) would keep
                # the limit full for every later invocation: this worker is not reused.
                pids_note = PIDS_NOTE if not reply.get("ok") else ""
                recycle = True
            # Anything the function started and left running stops with the invocation. (A thread
            # it left running can start one after any check; the next invocation's check stops that.)
            if not self.cg.holds_only(self.baseline) and set(self.cg.members()) - self.baseline:
                await asyncio.to_thread(self.cg.kill_all, self.baseline)
        if recycle:
            await self.kill()
        # invocation_id is the service's to set: no uuid made here only to be replaced.
        ok = bool(reply.get("ok"))
        res = InvokeResult(
            success=ok,
            result=reply.get("result") if ok else None,
            duration_ms=duration,
            memory_used=round(peak, 2),
            logs=logs,
            invocation_id="",
        )
        if not ok:
            res.error_type = ErrorType(reply.get("error_type", "HandlerError"))
            res.error = (reply.get("error") or "the function failed") + pids_note
            res.stack = stack_frames(reply.get("stack"))
        return res
