"""`cloudfn worker`: today's sandboxed executors, taking invocations from the cluster over NATS.

A worker owns a data directory of its own (its dependency environments, its build caches) and
runs a LocalPlatform there with no examples, schedules or queue: only its executor and
dependency support are used. It answers `cloudfn.invoke.<runtime>` in the `workers` queue group
and its own subject, and beats every second with its runtimes, capacity, load and warm versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from typing import Any

from nats.aio.msg import Msg

from core.cluster import codestore
from core.cluster import protocol as p
from core.cluster.connect import connect
from core.cluster.natsclient import Client
from core.config import Config
from core.deps.manifest import has_dependencies
from core.errors import NotFound
from core.local import LocalPlatform
from core.models import ErrorType, Function, InvokeResult

log = logging.getLogger("cloudfn.cluster")
CACHE_VERSIONS = 256  # function versions kept in memory per worker
SLOW_MARGIN = 30.0  # seconds past a function's timeout after which a gateway gives up (its START_MARGIN)


class WorkerPlatform(LocalPlatform):
    """Runs functions locally even though cluster.nats_url is set (it is the one they reach)."""

    dispatch_over_nats = False


class Worker:
    def __init__(self, config: Config, platform: LocalPlatform) -> None:
        self.config = config
        self.platform = platform
        self.executor = platform.executor
        self.node = p.node_id(config, "worker")
        self.subject = p.node_invoke(self.node)  # asked directly: the gateway knows who runs it
        self.capacity: int = config["runtime.max_concurrent"]
        self.load = 0
        self.served = 0
        self._secrets: dict[str, str] = {}
        self.executor.secret_values = self._secret_values
        self._versions: dict[str, Function] = {}
        self._bursts: dict[str, tuple[tuple[int, int], bytes]] = {}  # function id -> (counts, JSON)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[_Steps] = set()  # the invocations in flight, looked at by each beat
        self._nc: Client | None = None
        self._leaving = False

    def _secret_values(self, names: Any) -> dict[str, str]:
        """What the gateway sent with the request (it holds the secret store)."""
        out = {}
        for n in names:
            if n not in self._secrets:
                raise NotFound(f"secret {n} was not sent by the gateway")
            out[n] = self._secrets[n]
        return out

    async def run(self, stop: asyncio.Event, ready: Any = None) -> None:
        await self.platform.start()
        nc = self._nc = await connect(self.config, f"cloudfn-worker-{self.node}")
        js = self.js = nc.jetstream()
        self.obs = await js.create_object_store(p.CODE_BUCKET)
        runtimes = [name for name, info in self.executor.runtimes().items() if info.get("available")]
        taking = [
            await nc.subscribe_direct(f"{p.INVOKE}.{rt}", self._take, self._on_invoke, queue=p.WORKERS_GROUP)
            for rt in runtimes
        ]
        taking.append(await nc.subscribe_direct(self.subject, self._take, self._on_invoke))
        await nc.subscribe(p.CONTROL, cb=self._on_control)
        await nc.subscribe(p.PING, cb=self._on_ping)
        beats = asyncio.create_task(self._beat(), name="cloudfn-heartbeat")
        await nc.flush()
        log.info("worker %s serving %s on %s", self.node, ", ".join(runtimes), self.config["cluster.nats_url"])
        if ready is not None:
            ready(self)
        try:
            await stop.wait()
        finally:
            # Stop taking requests; keep beating (as leaving) while those in flight finish and answer.
            self._leaving = True
            for sub in taking:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            beats.cancel()
            with contextlib.suppress(Exception):
                await nc.publish(p.HEARTBEAT, p.dumps(self._heartbeat()))
            try:
                await (nc.drain() if nc.is_connected else nc.close())
            except Exception as exc:  # NATS went away first: nobody is left to answer
                log.warning("NATS close: %s", exc or type(exc).__name__)

    def _heartbeat(self) -> dict[str, Any]:
        stats = self.executor.stats()
        warm = [f"{fid}:{d['version']}" for fid, d in stats["workers"].items() if d["warm"]]
        return {
            "node": self.node,
            "role": "worker",
            "capacity": self.capacity,
            "load": self.load,
            "queued": stats["queued"],
            "warm_workers": stats["warm_workers"],
            "warm": warm,
            "served": self.served,
            "leaving": self._leaving,
            "runtimes": {
                k: {"available": v.get("available"), "version": v.get("version")}
                for k, v in self.executor.runtimes().items()
                if v.get("available")
            },
        }

    async def _beat(self) -> None:
        assert self._nc is not None
        while True:
            with contextlib.suppress(Exception):  # a reconnect in progress: the next beat goes out
                await self._nc.publish(p.HEARTBEAT, p.dumps(self._heartbeat()))
            report_stuck(self._running, time.monotonic())
            await asyncio.sleep(p.HEARTBEAT_EVERY)

    async def _on_ping(self, msg: Msg) -> None:
        assert self._nc is not None
        await self._nc.publish(p.HEARTBEAT, p.dumps(self._heartbeat()))

    async def _on_control(self, msg: Msg) -> None:
        try:
            doc = json.loads(msg.data)
            fid = str(doc["function_id"])
        except (ValueError, KeyError, TypeError):
            return
        if doc.get("action") == "retire":
            await self.executor.retire(fid)
        elif doc.get("action") == "replace":
            await self.executor.replace_workers(fid)

    def _take(self, subject: bytes, reply: bytes, data: bytes) -> None:
        """An invocation, straight from the connection's read loop (natsclient.py): a task each,
        since they run at once."""
        task = asyncio.create_task(self._serve(subject.decode() != self.subject, reply.decode(), data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_invoke(self, msg: Msg) -> None:
        # Only a request with NATS headers comes this way (none of cloudfn's have any).
        self._take(msg.subject.encode(), msg.reply.encode(), msg.data)

    async def _serve(self, queued: bool, reply_to: str, data: bytes) -> None:
        assert self._nc is not None
        if not reply_to:
            return  # not a request: nobody would hear the answer
        if queued:  # from the queue group: the gateway learns who took it, and watches its heartbeats
            with contextlib.suppress(Exception):
                await self._nc.publish(reply_to, p.dumps({"accepted": self.node}))
        self.load += 1
        steps = _Steps()
        self._running.add(steps)
        try:
            result = await self._run(data, steps)
        finally:
            self.load -= 1
            self._running.discard(steps)
        self.served += 1
        # A worker that ran it and did not die stays warm (cheaper than the executor's full stats).
        warm = result.success or result.error_type in (ErrorType.HANDLER_ERROR, ErrorType.INVALID_RESULT)
        reply = p.encode_reply(result, self.node, warm, self._burst(result.function_id))
        try:
            await self._nc.publish(reply_to, reply)
        except Exception as exc:  # NATS is reconnecting, or the gateway is gone: say so, the caller waits in vain
            log.warning(
                "the answer to invocation %s could not be sent: %s", result.invocation_id, exc or type(exc).__name__
            )

    def _burst(self, function_id: str) -> bytes:
        """The function's scheduling counts here, encoded once per change: they change only when a
        worker starts or a call waits, and sorting the recent waits for every reply cost the
        worker ~5% of its time under load."""
        st = self.executor.burst.get(function_id)
        if st is None:
            return b"null"
        key = (st.workers_started, st.queue_waits)
        known = self._bursts.get(function_id)
        if known is None or known[0] != key:
            if len(self._bursts) > CACHE_VERSIONS:
                self._bursts.clear()
            known = self._bursts[function_id] = (key, p.dumps(dict(st.to_dict(), name=st.name)))
        return known[1]

    async def _run(self, data: bytes, steps: _Steps) -> InvokeResult:
        try:
            req = json.loads(data)
            digest = str(req["digest"])
            request_id = str(req["request_id"])
            context = req.get("context") or {}
            secrets = req.get("secrets") or {}
        except (ValueError, KeyError, TypeError):
            return InvokeResult.failure(ErrorType.INVALID_EVENT, "malformed cluster request")
        steps.invocation = request_id
        fn = await self._function(digest)
        steps.mark("code fetched")
        if fn is None:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                f"worker {self.node} refused: no function version with digest {digest[:16]}… in the code store, "
                "or its content does not match the digest",
            )
        steps.limit = fn.timeout + SLOW_MARGIN
        if isinstance(secrets, dict):
            self._secrets.update({str(k): str(v) for k, v in secrets.items()})
        missing = has_dependencies(fn) and await self.platform.deps.missing(fn)
        steps.mark("dependencies checked")
        if missing:
            return missing
        result: InvokeResult = await self.executor.invoke(fn, req.get("event"), context, request_id=request_id)
        steps.mark("executor answered")
        return result

    async def _function(self, digest: str) -> Function | None:
        """The version from this worker's cache, else the object store; only if its content
        hashes to the digest asked for (a peer cannot swap code under a known digest)."""
        fn = self._versions.get(digest)
        if fn is not None:
            return fn
        try:
            data = await codestore.fetch(self.js, self.obs, p.CODE_BUCKET, digest)
        except Exception:  # nats-py raises ObjectNotFoundError, or a timeout
            return None
        if p.digest_of(data) != digest:
            log.warning("refused function version %s: its content does not match its digest", digest[:16])
            return None
        fn = Function.model_validate_json(data)
        if len(self._versions) >= CACHE_VERSIONS:
            self._versions.pop(next(iter(self._versions)))
        self._versions[digest] = fn
        return fn


class _Steps:
    """When each step of one invocation ended here. The executor stops a function at its
    timeout, so an invocation still running `limit` seconds after it arrived is stuck outside
    the function, and its gateway has given up with only "no answer": the worker's beat logs
    which steps were done, while it is stuck rather than after (it may never end)."""

    __slots__ = ("start", "marks", "limit", "invocation", "reported")

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []
        self.limit = SLOW_MARGIN  # until the function's timeout is known
        self.invocation = "?"
        self.reported = False

    def mark(self, name: str) -> None:
        self.marks.append((name, time.monotonic()))


def report_stuck(running: set[_Steps], now: float) -> None:
    """Log, once each, the invocations in flight past their limit (called by every beat)."""
    for steps in running:
        if steps.reported or now - steps.start <= steps.limit:
            continue
        steps.reported = True
        done = ", ".join(f"{name} at +{at - steps.start:.2f} s" for name, at in steps.marks) or "none"
        log.warning(
            "invocation %s still running on this worker after %.0f s; steps done: %s",
            steps.invocation,
            now - steps.start,
            done,
        )


def run_worker(config: Config, data_dir_note: str = "") -> int:
    """`cloudfn worker`'s body: until SIGTERM/SIGINT, then in-flight invocations finish."""
    if not config["cluster.nats_url"]:
        from core.errors import ConfigError

        raise ConfigError(
            "cloudfn worker needs cluster.nats_url (or CLOUDFN_CLUSTER_NATS_URL): the NATS "
            "server of the cluster it joins"
        )

    async def main() -> None:
        platform = WorkerPlatform(
            config,
            command="cloudfn worker",
            install_examples=False,
            announce=True,
            run_schedules=False,
            consume_async=False,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def announce(w: Worker) -> None:
            print(f"cloudfn worker {w.node} ready on {config['cluster.nats_url']}", flush=True)

        try:
            await Worker(config, platform).run(stop, announce)
        finally:
            await platform.close()

    from core.server._uvicorn_compat import loop_factory

    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop when installed, as `serve`
        runner.run(main())
    return 0
