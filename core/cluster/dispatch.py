"""The gateway's executor: LocalPlatform.run_invocation calls `invoke` as it would the local
ExecutionService, and the invocation runs on a `cloudfn worker` instead.

The version's definition goes to the JetStream object store once (keyed by its digest); the
request names the digest, and the worker refuses to run code whose digest differs. A worker
with a free slot is asked directly (warm for the version if one is, by its heartbeats and
answers), and answers once; the queue group spreads requests only when no worker is known to
have room. Per invocation a gateway sends the request and receives the result, nothing else
unless another gateway is up to read its events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.errors import NoRespondersError
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import ObjectStore

from core.cluster import protocol as p
from core.cluster.connect import connect
from core.cluster.leader import Lease
from core.cluster.natsclient import Client
from core.config import Config
from core.errors import NotFound
from core.events import EventBus
from core.models import ErrorType, Function, InvokeResult, normalize_runtime
from core.secrets import held_by

log = logging.getLogger("cloudfn.cluster")
SHARED_KINDS = (
    "invocation.started",
    "invocation.finished",
    "log",
    "alert.fired",
    "alert.resolved",
    "schedule.fired",
    "schedule.skipped",
)
ACCEPT_WITHIN = 10.0  # seconds for some worker to take a request (they accept on arrival)
START_MARGIN = 30.0  # seconds on top of the function's timeout: a cold start, a dependency install
PEERS_KEPT = 300.0  # seconds a silent gateway stays known (info shows only those up)


class Nodes:
    """The workers' last heartbeats; a node silent for DOWN_AFTER seconds is marked down."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, dict[str, Any]]] = {}

    def beat(self, doc: dict[str, Any]) -> None:
        node = doc.get("node")
        if isinstance(node, str):
            self.seen[node] = (time.monotonic(), doc)

    def alive(self, node: str) -> bool:
        """Still beating (a leaving node beats until its invocations in flight have answered)."""
        at, _ = self.seen.get(node, (0.0, {}))
        return time.monotonic() - at <= p.DOWN_AFTER

    def up(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [doc for at, doc in self.seen.values() if now - at <= p.DOWN_AFTER and not doc.get("leaving")]

    def describe(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for node, (at, doc) in sorted(self.seen.items()):
            age = now - at
            health = "left" if doc.get("leaving") else ("up" if age <= p.DOWN_AFTER else "down")
            out.append(
                {
                    "node": node,
                    "role": doc.get("role", "worker"),
                    "health": health,
                    "last_seen_s": round(age, 1),
                    "capacity": doc.get("capacity", 0),
                    "load": doc.get("load", 0),
                    "runtimes": sorted(doc.get("runtimes", {})),
                    "warm_workers": doc.get("warm_workers", 0),
                    "served": doc.get("served", 0),
                }
            )
        return out


class NatsDispatcher:
    def __init__(self, config: Config, local: Any, bus: EventBus | None = None) -> None:
        # The local ExecutionService stays for what a gateway itself does: its sandbox installs
        # dependencies at create time (errors reach the caller there) and says what it protects.
        self.config = config
        self.local = local
        self.sandbox = local.sandbox
        self.burst: dict[str, dict[str, dict[str, Any]]] = {}  # function id -> node -> its scheduling counts
        self.warm: dict[str, set[str]] = {}  # "function id:version" -> nodes that have it warm
        self.sent: dict[str, int] = {}  # node -> requests this gateway has in flight there
        self.secret_values: Callable[[Any], dict[str, str]] | None = None
        self.nodes = Nodes()
        self._nc: Client | None = None
        self._obs: ObjectStore | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._stored: set[str] = set()
        self._storing: dict[str, asyncio.Future[None]] = {}  # digest -> its put, shared while it runs
        self._closed = False
        self.node = p.node_id(config, "gateway")
        self.lease: Lease | None = None
        self.bus = bus
        self._share_task: asyncio.Task[None] | None = None
        # Told of each invocation another gateway finished, so metrics are the cluster's.
        self.remote_finished: Callable[[dict[str, Any]], None] | None = None
        self._inbox = ""
        self._boxes: dict[str, _Box] = {}
        self._next_token = 0  # reply subjects: unique per gateway, and the inbox itself is random
        self._digests: dict[tuple[str, int, str], str] = {}
        self._lease_task: asyncio.Task[None] | None = None
        self.peers: dict[str, float] = {}  # other gateways -> when last heard (monotonic)
        self._peer_seen = asyncio.Event()
        self._beat_task: asyncio.Task[None] | None = None

    # -- connection --------------------------------------------------------------------------
    def warm_up(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect(), name="cloudfn-nats-connect")

    async def _connect(self) -> None:
        nc = await connect(self.config, "cloudfn-gateway", no_echo=True)
        js = nc.jetstream()
        self._obs = await js.create_object_store(p.CODE_BUCKET)
        await nc.subscribe(p.HEARTBEAT, cb=self._on_heartbeat)
        self._inbox = nc.new_inbox()
        await nc.subscribe_direct(f"{self._inbox}.*", self._take_reply, self._on_reply)
        await nc.subscribe(p.GATEWAYS, cb=self._on_gateway)
        await nc.subscribe(p.PING, cb=self._on_ping)
        if self.bus is not None:
            await nc.subscribe(f"{p.EVENTS}.>", cb=self._on_shared_event)
            self._share_task = asyncio.get_running_loop().create_task(
                self._share(nc, self.bus), name="cloudfn-share-events"
            )
        # Subscribed first: the others' answers to this ping, and their events, find us listening.
        await nc.publish(p.PING, b"")
        self._beat_task = asyncio.get_running_loop().create_task(self._beat(nc), name="cloudfn-gateway-heartbeat")
        self._nc = nc
        if self.lease is not None:
            self._lease_task = asyncio.get_running_loop().create_task(self.lease.run(js), name="cloudfn-lease")

    def lead(self, on_won: Callable[[], Awaitable[None]], on_lost: Callable[[], Awaitable[None]]) -> None:
        """Run `on_won` when this gateway takes the cluster's lease, `on_lost` when it loses it."""
        self.lease = Lease(self.node, on_won, on_lost)
        self.warm_up()

    async def ready(self) -> Client:
        if self._connecting is None or (self._connecting.done() and self._connecting.exception() is not None):
            self._connecting = asyncio.get_running_loop().create_task(self._connect(), name="cloudfn-nats-connect")
        await asyncio.shield(self._connecting)
        assert self._nc is not None
        return self._nc

    async def _beat(self, nc: Client) -> None:
        beat = p.dumps({"node": self.node})
        while True:
            with contextlib.suppress(Exception):  # a reconnect in progress: the next beat goes out
                await nc.publish(p.GATEWAYS, beat)
            now = time.monotonic()  # restarted gateways come back under new names: forget old ones
            for node in [n for n, at in self.peers.items() if now - at > PEERS_KEPT]:
                del self.peers[node]
            await asyncio.sleep(p.HEARTBEAT_EVERY)  # the heartbeat's own rhythm

    async def _on_ping(self, msg: Any) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.publish(p.GATEWAYS, p.dumps({"node": self.node}))

    async def _on_gateway(self, msg: Any) -> None:
        try:
            node = json.loads(msg.data).get("node")
        except (ValueError, AttributeError):
            return
        if isinstance(node, str) and node != self.node:
            self.peers[node] = time.monotonic()
            self._peer_seen.set()

    def gateways(self) -> list[str]:
        """The other gateways heard from within DOWN_AFTER seconds."""
        now = time.monotonic()
        return sorted(n for n, at in self.peers.items() if now - at <= p.DOWN_AFTER)

    def _peer_up(self) -> bool:
        now = time.monotonic()
        return any(now - at <= p.DOWN_AFTER for at in self.peers.values())

    async def _share(self, nc: Client, bus: EventBus) -> None:
        """This gateway's events (invocations, logs, alerts...) to the other gateways, so every
        gateway's SSE stream, `logs -f` and console show the whole cluster. Events that came from
        another gateway carry its name in `gateway` and are not sent back. With no other gateway
        up yet, it does not even listen: a subscriber makes the bus build every event's payload
        (lazy otherwise) and woke this task twice per invocation for nothing to send. Once one has
        been seen it listens for good (no per-event timeout: a task per event made it lag, and a
        gateway killed right after an invocation took that invocation's events with it)."""
        await self._peer_seen.wait()  # set by the first beat of another gateway
        async for ev in bus.subscribe(set(SHARED_KINDS)):
            if ev.data.get("gateway", self.node) != self.node or not self._peer_up():
                continue
            with contextlib.suppress(Exception):  # NATS reconnecting: those events stay local
                await nc.publish(f"{p.EVENTS}.{self.node}.{ev.kind}", p.dumps(dict(ev.data, gateway=self.node)))

    async def _on_shared_event(self, msg: Any) -> None:
        parts = msg.subject.split(".")
        if len(parts) < 4 or parts[2] == self.node or self.bus is None:
            return
        kind = ".".join(parts[3:])
        if kind not in SHARED_KINDS:
            return
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(data, dict):
            self.bus.publish(kind, data)
            if kind == "invocation.finished" and self.remote_finished is not None:
                with contextlib.suppress(Exception):  # a malformed record counts nowhere
                    self.remote_finished(data)

    async def _on_heartbeat(self, msg: Any) -> None:
        try:
            self.nodes.beat(json.loads(msg.data))
        except ValueError:
            log.warning("ignored a heartbeat that is not JSON")

    # -- invoke --------------------------------------------------------------------------------
    async def invoke(
        self, fn: Function, event: Any, context: dict[str, str] | None = None, request_id: str | None = None
    ) -> InvokeResult:
        from core.models import new_uuid

        request_id = request_id or new_uuid()
        t0 = time.perf_counter()
        try:
            res = await self._invoke(fn, event, context or {}, request_id)
        except _Refused as exc:
            res = InvokeResult.failure(ErrorType.RUNTIME_UNAVAILABLE, str(exc))
        except Exception as exc:  # the platform (CloudfnError) answers these itself
            from core.errors import CloudfnError

            if isinstance(exc, CloudfnError):
                res = InvokeResult.failure(ErrorType.RUNTIME_UNAVAILABLE, f"Unavailable: {exc.message}")
            else:
                res = InvokeResult.failure(
                    ErrorType.WORKER_CRASHED, f"internal error while dispatching: {type(exc).__name__}: {exc}"
                )
        res.invocation_id, res.function_id, res.function_name, res.function_version = (
            request_id,
            fn.id,
            fn.name,
            fn.version,
        )
        if not res.duration_ms:
            res.duration_ms = (time.perf_counter() - t0) * 1000
        return res

    async def _invoke(
        self, fn: Function, event: Any, context: dict[str, str], request_id: str, any_worker: bool = False
    ) -> InvokeResult:
        nc = await self.ready()
        if not nc.is_connected:  # a request would wait out its whole timeout in the reconnect buffer
            raise _Refused(
                f"Unavailable: the NATS server at {self.config['cluster.nats_url']} is unreachable "
                "(reconnecting); retry when it is back"
            )
        digest = await self._publish_version(fn)
        try:
            secrets = self._secrets(fn)
        except NotFound as exc:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                f"{exc.message.split(' (')[0]}, which this function holds: set it (cloudfn secrets set NAME) or "
                "remove it from the function's secrets and secret_env",
            )
        try:
            body = p.dumps(
                {"digest": digest, "event": event, "context": context, "request_id": request_id, "secrets": secrets}
            )
        except (TypeError, ValueError) as exc:
            return InvokeResult.failure(ErrorType.INVALID_EVENT, f"the event is not JSON: {exc}")
        subject = f"{p.INVOKE}.{normalize_runtime(fn.runtime)}" if any_worker else self._subject(fn)
        direct = subject.split(".")[2] if subject.startswith("cloudfn.node.") else None
        if direct:
            self.sent[direct] = self.sent.get(direct, 0) + 1
        try:
            reply = await self._exchange(nc, subject, body, fn, direct)
        except NoRespondersError:
            if direct:  # it left since its last heartbeat: any worker will do
                self.warm.get(f"{fn.id}:{fn.version}", set()).discard(direct)
                return await self._invoke(fn, event, context, request_id, any_worker=True)
            raise _Refused(self._no_worker(fn)) from None
        except _WorkerLost as exc:
            return InvokeResult.failure(ErrorType.WORKER_CRASHED, str(exc))
        finally:
            if direct:
                self.sent[direct] -= 1
        node = reply.node
        key = f"{fn.id}:{fn.version}"
        if reply.warm:
            self.warm.setdefault(key, set()).add(node)
        else:
            self.warm.get(key, set()).discard(node)
        if reply.burst:
            self.burst.setdefault(fn.id, {})[node] = reply.burst
        assert reply.result is not None
        return reply.result

    async def _exchange(self, nc: Client, subject: str, body: bytes, fn: Function, node: str | None) -> p.Reply:
        """Request and answer. Replies come to one wildcard inbox of this gateway (no
        subscription per request). `node`: the worker it was sent to, which answers once, with
        the result. Sent to the queue group instead, some worker takes it and says at once which
        (its "accepted"). Either way the gateway then watches that node's heartbeats, so a worker
        that dies mid-invocation is noticed within DOWN_AFTER seconds, not at the end of the
        function's timeout."""
        self._next_token += 1
        token = str(self._next_token)
        box = self._boxes[token] = _Box()
        try:
            await nc.publish(subject, body, reply=f"{self._inbox}.{token}")
            deadline = time.monotonic() + fn.timeout + START_MARGIN
            while True:
                if node is None:
                    msg = await box.next(ACCEPT_WITHIN)
                    if msg is None:
                        raise _WorkerLost(f"no worker took the invocation within {ACCEPT_WITHIN:g} s")
                else:
                    msg = await box.next(min(p.HEARTBEAT_EVERY, max(0.01, deadline - time.monotonic())))
                    if msg is None:
                        if not self.nodes.alive(node):
                            raise _WorkerLost(
                                f"worker {node} stopped answering during the invocation (no heartbeat "
                                f"for {p.DOWN_AFTER:g} s); it may have run"
                            )
                        if time.monotonic() >= deadline:
                            raise _WorkerLost(
                                f"no answer from worker {node} within {fn.timeout + START_MARGIN:g} s; it may have run"
                            )
                        continue
                data, headers = msg
                if headers and headers.get("Status") == "503":
                    raise NoRespondersError
                reply = p.Reply.model_validate_json(data)
                if reply.result is not None:
                    return reply
                node = reply.accepted or node  # the result follows
        finally:
            del self._boxes[token]

    def _take_reply(self, subject: bytes, reply: bytes, data: bytes) -> None:
        box = self._boxes.get(subject.rsplit(b".", 1)[-1].decode())
        if box is not None:  # else: the caller gave up; a late answer has nobody to go to
            box.put((data, None))

    async def _on_reply(self, msg: Any) -> None:  # one with headers: no responders, say
        box = self._boxes.get(msg.subject.rsplit(".", 1)[-1])
        if box is not None:
            box.put((msg.data, msg.headers))

    def _no_worker(self, fn: Function) -> str:
        up = self.nodes.up()
        if not up:
            return "Unavailable: no cloudfn worker is connected to the cluster (start one: cloudfn worker)"
        names = ", ".join(f"{d['node']} [{', '.join(sorted(d.get('runtimes', {})))}]" for d in up)
        return f"Unavailable: no worker can take runtime {fn.runtime!r} (workers: {names})"

    def _subject(self, fn: Function) -> str:
        """A live worker with room to spare, asked directly (it answers once, with the result):
        one that has the version warm (its last answer or heartbeat said so), else the least
        busy that has the runtime. With none known (no heartbeat yet) or all full, the queue
        group, which spreads requests over all workers."""
        key = f"{fn.id}:{fn.version}"
        runtime = normalize_runtime(fn.runtime)
        up = {d["node"]: d for d in self.nodes.up() if runtime in d.get("runtimes", {})}
        free = [n for n, d in up.items() if d.get("load", 0) + self.sent.get(n, 0) < d.get("capacity", 0)]
        if free:
            warm = self.warm.get(key, set())
            warm_free = [n for n in free if n in warm or key in up[n].get("warm", ())]
            sent = self.sent.get
            if warm_free:
                # By this gateway's own count, ties by its own (per-process, salted) string hash:
                # sequential calls stay on one warm worker, and gateways do not all pick the same.
                return p.node_invoke(min(warm_free, key=lambda n: (sent(n, 0), hash(n))))
            # Ties at random: gateways that read the same heartbeats would all pick the same node.
            return p.node_invoke(min(free, key=lambda n: (sent(n, 0) + up[n].get("load", 0), random.random())))
        return f"{p.INVOKE}.{runtime}"

    def _secrets(self, fn: Function) -> dict[str, str]:
        names = held_by(fn)
        if not names:
            return {}
        if self.secret_values is None:
            raise NotFound("no secret store")
        return dict(self.secret_values(names))

    async def _publish_version(self, fn: Function) -> str:
        # Every change makes a new version, so (id, version, updated_at) names one content: its
        # digest is computed once, not per invocation.
        key = (fn.id, fn.version, fn.updated_at.isoformat() if fn.updated_at else "")
        known = self._digests.get(key)
        if known is not None:
            return known
        digest, data = p.function_blob(fn)
        if digest not in self._stored:
            # One put per digest, awaited by every invocation that needs it: the first calls
            # after an update used to put the same object each, and a put of an existing name
            # purges its chunks while workers read them (nats-py's get then waited for good).
            storing = self._storing.get(digest)
            if storing is None:
                storing = self._storing[digest] = asyncio.ensure_future(self._store(digest, data))
                storing.add_done_callback(lambda _: self._storing.pop(digest, None))
            await asyncio.shield(storing)
            self._stored.add(digest)
        if len(self._digests) > 10_000:
            self._digests.clear()
        self._digests[key] = digest  # only once it is in the store
        return digest

    async def _store(self, digest: str, data: bytes) -> None:
        """Put the version unless the store has it (another gateway, or this one before a
        restart): the name is the content's digest, so one there is the same bytes."""
        assert self._obs is not None
        try:
            await self._obs.get_info(digest)
            return
        except ObjectNotFoundError:
            pass
        await self._obs.put(digest, data)

    # -- what LocalPlatform asks of its executor -------------------------------------------------
    async def retire(self, function_id: str) -> None:
        await self._control("retire", function_id)

    async def replace_workers(self, function_id: str) -> None:
        await self._control("replace", function_id)

    async def _control(self, action: str, function_id: str) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(p.CONTROL, p.dumps({"action": action, "function_id": function_id}))

    def cluster_info(self) -> dict[str, Any]:
        cluster = {
            "nats_url": self.config["cluster.nats_url"],
            "node": self.node,
            "connected": bool(self._nc and self._nc.is_connected),
            "leader": self.lease.holder if self.lease else None,
            "is_leader": bool(self.lease and self.lease.leader),
            "nodes": self.nodes.describe(),
            "gateways": sorted([self.node, *self.gateways()]),
        }
        return {"mode": "cluster gateway", "cluster": cluster}

    def protections(self) -> dict[str, Any]:
        return dict(self.local.protections())

    def runtimes(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for d in self.nodes.up():
            for name, info in d.get("runtimes", {}).items():
                out.setdefault(name, dict(info, nodes=[]))["nodes"].append(d["node"])
        return out

    def stats(self) -> dict[str, Any]:
        up = self.nodes.up()
        return {
            "workers": {},
            "warm_workers": sum(d.get("warm_workers", 0) for d in up),
            "busy_workers": sum(d.get("load", 0) for d in up),
            "in_flight": sum(d.get("load", 0) for d in up),
            "queued": sum(d.get("queued", 0) for d in up),
            "burst": {fid: _summed(per_node) for fid, per_node in self.burst.items() if per_node},
            "nodes": self.nodes.describe(),
        }

    async def close(self) -> None:
        self._closed = True
        for task in (self._share_task, self._beat_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._lease_task is not None:  # first: the lease goes to another gateway at once
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None:
            try:
                await (self._nc.drain() if self._nc.is_connected else self._nc.close())
            except Exception as exc:  # NATS went away meanwhile: nothing left to hand over
                log.warning("NATS close: %s", exc or type(exc).__name__)
        await self.local.close()


def _summed(per_node: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One function's scheduling counts over all nodes (core/executors/demand.py's shape)."""
    docs = list(per_node.values())
    started = sum(d.get("workers_started", 0) for d in docs)
    cold = sum((d.get("start_ms_avg") or 0) * d.get("workers_started", 0) for d in docs)
    waits = [d.get("queue_wait_ms", {}) for d in docs]

    def most(k: str) -> float | None:
        vals = [w[k] for w in waits if w.get(k) is not None]
        return max(vals) if vals else None

    out: dict[str, Any] = {
        "name": docs[0].get("name"),
        "runtime": docs[0].get("runtime"),
        "workers_started": started,
        "start_ms_avg": round(cold / started, 3) if started else None,
        "queue_wait_ms": {
            "sum": round(sum(w.get("sum", 0) for w in waits), 3),
            "max": most("max"),
            "p50": most("p50"),
            "p99": most("p99"),
        },
        "nodes": sorted(per_node),
    }
    for k in ("background_starts", "spare_starts", "clones", "queue_waits"):
        out[k] = sum(d.get(k, 0) for d in docs)
    return out


class _Box:
    """One request's answers: a future per wait instead of asyncio.Queue + wait_for, which cost
    the gateway two more passes of the event loop (a task of its own) per answer."""

    __slots__ = ("msgs", "waiter")

    def __init__(self) -> None:
        self.msgs: collections.deque[Any] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, msg: Any) -> None:
        self.msgs.append(msg)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self, timeout: float) -> Any:
        """The next answer, or None after `timeout` seconds without one."""
        if not self.msgs:
            loop = asyncio.get_running_loop()
            self.waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
        return self.msgs.popleft() if self.msgs else None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _WorkerLost(Exception):
    pass


class _Refused(Exception):
    pass
