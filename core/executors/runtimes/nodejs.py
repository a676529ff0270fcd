"""Node.js functions: a (possibly async) function named by `handler`, or `exports.handler`."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.models import ErrorType, Function, InvokeResult

from ..sandbox import Mount, WorkerSpec
from ..worker import Adoption, WorkerInit
from . import shell_prewarm
from .base import FUNCTION_DIR, NODE_MODULES_DIR, RUNNERS_DIR, RUNTIME_DIR, Runtime

INSTALL_HINT = "install Node.js 18 or newer (apt-get install nodejs)"


def _node() -> tuple[str | None, str]:
    return _node_on(os.environ.get("PATH", ""))


@lru_cache(maxsize=8)
def _node_on(search_path: str) -> tuple[str | None, str]:
    """Looked up once per PATH: a toolchain installed later is found when PATH changes or on restart."""
    path = shutil.which("node", path=search_path) or shutil.which("nodejs", path=search_path)
    if not path:
        return None, ""
    path = os.path.realpath(path)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None, ""
    return path, out.lstrip("v")


class NodeRuntime(Runtime):
    name = "nodejs"
    code_file = "index.js"

    @staticmethod
    def _runtime_mounts(node: str) -> list[Mount]:
        mounts = [Mount(RUNNERS_DIR / "node_runner.js", f"{RUNTIME_DIR}/node_runner.js", copy=True)]
        if not node.startswith("/usr/"):
            prefix = os.path.dirname(os.path.dirname(node))
            mounts.append(Mount(Path(prefix), prefix))
        return mounts

    def prewarm_spec(self, slot: Path) -> WorkerSpec | None:
        # Node cannot lower its own limits or heap once started: a shell waits in the sandbox and
        # execs node with the function's flags at adoption (runtimes/shell_prewarm.py).
        node, _ = _node()
        if node is None:
            return None
        return shell_prewarm.waiting_spec(slot, self._runtime_mounts(node))

    def adoption(self, wi: WorkerInit) -> Adoption:
        return shell_prewarm.exec_adoption(wi)

    def info(self) -> dict[str, Any]:
        path, version = _node()
        return {
            "available": path is not None,
            "version": version,
            "path": path or "",
            "hint": "" if path else INSTALL_HINT,
        }

    async def prepare(self, fn: Function) -> WorkerInit | InvokeResult:
        node, _ = _node()
        if node is None:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE, f"Node.js is not installed on this host: {INSTALL_HINT}"
            )
        deps = self.installed_deps(fn)
        if isinstance(deps, InvokeResult):
            return deps
        d = self.laid_out(fn)
        if isinstance(d, InvokeResult):
            return d
        mounts = [Mount(d, FUNCTION_DIR, copy=True), *self._runtime_mounts(node)]
        heap = max(16, int(fn.memory * 0.75))
        argv = [
            node,
            f"--max-old-space-size={heap}",
            "--no-warnings",
            f"{RUNTIME_DIR}/node_runner.js",
            "{REQ_FD}",
            "{RESP_FD}",
        ]
        env = self.env(fn)
        if deps is not None:
            # require() from /function/index.js looks in /node_modules; unsandboxed, NODE_PATH
            # names the host folder instead.
            mounts.append(Mount(deps, NODE_MODULES_DIR))
            if not self.sandbox.bwrap:
                env["NODE_PATH"] = str(deps)
        spec = self.base_spec(fn, argv, env, mounts, host_dir=d.parent / "run")
        return WorkerInit(
            spec=spec,
            init={
                "type": "init",
                "code_path": f"{FUNCTION_DIR}/{self.handler_path(fn)}",
                "root_path": FUNCTION_DIR,
                "handler": fn.handler,
            },
        )
