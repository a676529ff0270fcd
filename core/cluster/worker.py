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
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from core.cluster import protocol as p
from core.cluster.connect import connect
from core.config import Config
from core.deps.manifest import has_dependencies
from core.errors import NotFound
from core.local import LocalPlatform
from core.models import ErrorType, Function, InvokeResult

log = logging.getLogger("cloudfn.cluster")
CACHE_VERSIONS = 256  # function versions kept in memory per worker


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
        self._tasks: set[asyncio.Task[None]] = set()
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
        js = nc.jetstream()
        self.obs = await js.create_object_store(p.CODE_BUCKET)
        runtimes = [name for name, info in self.executor.runtimes().items() if info.get("available")]
        taking = [await nc.subscribe(f"{p.INVOKE}.{rt}", queue=p.WORKERS_GROUP, cb=self._on_invoke) for rt in runtimes]
        taking.append(await nc.subscribe(self.subject, cb=self._on_invoke))
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

    async def _on_invoke(self, msg: Msg) -> None:
        # nats-py runs a subscription's callbacks one at a time: each invocation gets a task.
        if msg.subject != self.subject:  # from the queue group: the gateway learns who took it
            with contextlib.suppress(Exception):  # now it watches this node's heartbeats
                await msg.respond(p.dumps({"accepted": self.node}))
        task = asyncio.create_task(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: Msg) -> None:
        self.load += 1
        try:
            result = await self._run(msg)
        finally:
            self.load -= 1
        self.served += 1
        # With the answer, what the gateway routes and reports by: this node has the version warm,
        # and how its invocations found a worker here (summed over nodes by the gateway).
        st = self.executor.burst.get(result.function_id)
        # A worker that ran it and did not die stays warm (cheaper than the executor's full stats).
        warm = result.success or result.error_type in (ErrorType.HANDLER_ERROR, ErrorType.INVALID_RESULT)
        reply = {
            "result": result.model_dump(mode="json"),
            "node": self.node,
            "warm": warm,
            "burst": dict(st.to_dict(), name=st.name) if st is not None else None,
        }
        with contextlib.suppress(Exception):  # the gateway is gone: nobody to answer
            await msg.respond(p.dumps(reply))

    async def _run(self, msg: Msg) -> InvokeResult:
        try:
            req = json.loads(msg.data)
            digest = str(req["digest"])
            request_id = str(req["request_id"])
            context = req.get("context") or {}
            secrets = req.get("secrets") or {}
        except (ValueError, KeyError, TypeError):
            return InvokeResult.failure(ErrorType.INVALID_EVENT, "malformed cluster request")
        fn = await self._function(digest)
        if fn is None:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                f"worker {self.node} refused: no function version with digest {digest[:16]}… in the code store, "
                "or its content does not match the digest",
            )
        if isinstance(secrets, dict):
            self._secrets.update({str(k): str(v) for k, v in secrets.items()})
        missing = has_dependencies(fn) and await self.platform.deps.missing(fn)
        if missing:
            return missing
        result: InvokeResult = await self.executor.invoke(fn, req.get("event"), context, request_id=request_id)
        return result

    async def _function(self, digest: str) -> Function | None:
        """The version from this worker's cache, else the object store; only if its content
        hashes to the digest asked for (a peer cannot swap code under a known digest)."""
        fn = self._versions.get(digest)
        if fn is not None:
            return fn
        try:
            got = await self.obs.get(digest)
        except Exception:  # nats-py raises ObjectNotFoundError, or a timeout
            return None
        data = got.data or b""
        if p.digest_of(data) != digest:
            log.warning("refused function version %s: its content does not match its digest", digest[:16])
            return None
        fn = Function.model_validate_json(data)
        if len(self._versions) >= CACHE_VERSIONS:
            self._versions.pop(next(iter(self._versions)))
        self._versions[digest] = fn
        return fn


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
