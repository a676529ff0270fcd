"""What gateways and workers say to each other over NATS: subjects, and a function version's
content digest (what a worker checks before it runs anything)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from typing import Any

from pydantic import BaseModel

from core.config import Config
from core.models import Function, InvokeResult

INVOKE = "cloudfn.invoke"  # a queue group of all workers
WORKERS_GROUP = "workers"
HEARTBEAT = "cloudfn.nodes.heartbeat"
GATEWAYS = "cloudfn.gateways.heartbeat"  # gateways beat too: one shares its events only with others up
PING = "cloudfn.nodes.ping"  # a gateway that just connected: every node (gateways too) beats at once
CONTROL = "cloudfn.control"  # retire / replace a function's workers, to every worker
EVENTS = "cloudfn.events"  # cloudfn.events.<gateway>.<kind>: what a gateway's event bus carries
CODE_BUCKET = "cloudfn-code"  # JetStream object store: function versions by digest
HEARTBEAT_EVERY = 1.0  # seconds
DOWN_AFTER = 3.5  # seconds without a heartbeat: the node is marked down


def node_id(config: Config, role: str) -> str:
    """cluster.node_id, else host name and process id; a valid NATS subject token."""
    raw = config["cluster.node_id"] or f"{role}-{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:64]


def node_invoke(node_id: str) -> str:
    """A worker's own subject: a gateway sends here when that worker has the version warm."""
    return f"cloudfn.node.{node_id}.invoke"


def function_blob(fn: Function) -> tuple[str, bytes]:
    """The version's whole definition (code, files, settings), canonical, and its sha256."""
    data = json.dumps(fn.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest(), data


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class Reply(BaseModel):
    """A worker's answer: {"accepted": node} first when it came through the queue group, then the
    result with what the gateway routes and reports by (this node has the version warm; how its
    invocations found a worker here). Parsed in one pass from the bytes (pydantic's JSON parser
    is twice as fast as json.loads and then validating the dict)."""

    result: InvokeResult | None = None
    node: str = ""
    warm: bool = False
    burst: dict[str, Any] | None = None
    accepted: str = ""


def encode_reply(result: InvokeResult, node: str, warm: bool, burst: bytes) -> bytes:
    """Reply's JSON, spliced from parts the worker already holds encoded (`burst`: JSON or null)."""
    return b"".join(
        (
            b'{"result":',
            result.model_dump_json().encode(),
            b',"node":',
            json.dumps(node).encode(),
            b',"warm":true' if warm else b',"warm":false',
            b',"burst":',
            burst,
            b"}",
        )
    )
