"""What a runtime module provides. Adding a runtime is one module here plus one runner file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from core.filemodes import private_dir
from core.models import TIMEOUT_RANGE, ErrorType, Function, InvokeResult

from ..sandbox import BASE_ENV, HostSandbox, WorkerSpec
from ..worker import Adoption, WorkerInit

RUNNERS_DIR = Path(__file__).resolve().parent.parent / "runners"
# Where things appear inside the sandbox.
FUNCTION_DIR = "/function"
RUNTIME_DIR = "/runtime"
# A pre-started sandbox's CPU limit until it takes on a function: the largest budget any
# function can get (cpu_budget at the longest timeout); the runner then lowers it.
PREWARM_CPU_SECONDS = 4 * TIMEOUT_RANGE[1]


DEPS_DIR = "/deps"  # a Python function's installed packages (on its import path)
NODE_MODULES_DIR = "/node_modules"  # where require() looks after /function/node_modules


class Runtime:
    name = ""
    code_file = ""  # the file name the user's code is written to (and shown in stacks)
    deps_tree: Any = None  # fn -> Path of its installed dependencies, or None (core/deps)

    def __init__(self, work_dir: Path, cache_dir: Path, sandbox: "HostSandbox | None" = None):
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.sandbox = sandbox or HostSandbox("none")  # what builds run in

    # --- discovery ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """{"available", "version", "path", "hint"} for `cloudfn info`."""
        raise NotImplementedError

    # --- per code version ---------------------------------------------------------------------
    def function_dir(self, fn: Function) -> Path:
        digest = hashlib.sha256(f"{fn.handler}\0{fn.code}".encode()).hexdigest()[:16]
        return self.work_dir / fn.id / f"v{fn.version}-{digest}"

    def write_code(self, fn: Function, code: str | None = None) -> Path:
        """The function's folder (written once per version; read-only to the worker)."""
        d = self.function_dir(fn)
        target = d / self.code_file
        if not target.exists():
            private_dir(d, 0o755)
            tmp = d / f".{self.code_file}.{os.getpid()}.tmp"
            tmp.write_text(code if code is not None else fn.code, encoding="utf-8")
            os.chmod(tmp, 0o644)
            tmp.replace(target)
            os.chmod(d, 0o755)
        return d

    def installed_deps(self, fn: Function) -> Path | InvokeResult | None:
        """The function's installed dependency tree, None when it has none, or a BuildError
        result when it names some that are not installed (the platform installs them first)."""
        if not getattr(fn, "dependencies", "") or self.deps_tree is None:
            return None
        tree = self.deps_tree(fn)
        if tree is None:
            return InvokeResult.failure(ErrorType.BUILD_ERROR, "the function's dependencies are not installed: "
                                        "run `cloudfn deps NAME --rebuild`")
        return tree

    async def prepare(self, fn: Function) -> WorkerInit | InvokeResult:
        """Everything a worker of this code version needs, or a failure (CompileError, ...)."""
        raise NotImplementedError

    def prewarm_spec(self, slot: Path) -> WorkerSpec | None:
        """How to pre-start a generic sandboxed runner of this runtime whose function folder is
        `slot` (see prewarm.py), or None if the runtime cannot take on a function after start."""
        return None

    def adoption(self, wi: WorkerInit) -> Adoption:
        """What a pre-started runner needs to take on the version `wi` describes."""
        raise NotImplementedError

    @staticmethod
    def env(fn: Function, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(BASE_ENV)
        env.update(fn.environment or {})
        env.update(extra or {})
        return env

    @staticmethod
    def cpu_budget(fn: Function) -> int:
        """RLIMIT_CPU for a worker's whole life; runners re-arm the soft limit per invocation
        where the runtime can, and a worker near its budget is replaced."""
        return int(max(fn.timeout * 4, 120))

    def base_spec(self, fn: Function, argv: list[str], env: dict[str, str], mounts, **kw) -> WorkerSpec:
        return WorkerSpec(argv=argv, env=env, mounts=mounts, memory_mb=fn.memory,
                          cpu_seconds=self.cpu_budget(fn), network=fn.network, **kw)
