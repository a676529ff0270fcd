"""What a runtime module provides. Adding a runtime is one module here plus one runner file."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from core.deps.manifest import has_dependencies
from core.filemodes import private_dir
from core.funcfiles import UnsafePath, files_digest, handler_path, write_tree
from core.models import TIMEOUT_RANGE, ErrorType, Function, InvokeResult

from ..sandbox import BASE_ENV, HostSandbox, Mount, WorkerSpec
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

    def __init__(self, work_dir: Path, cache_dir: Path, sandbox: HostSandbox | None = None):
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.sandbox = sandbox or HostSandbox("none")  # what builds run in

    # --- discovery ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """{"available", "version", "path", "hint"} for `cloudfn info`."""
        raise NotImplementedError

    # --- per code version ---------------------------------------------------------------------
    def function_dir(self, fn: Function) -> Path:
        key = f"{fn.handler}\0{fn.code}"
        if fn.handler_file:
            key += "\0" + fn.handler_file
        if fn.files:
            key += "\0" + files_digest(fn.files)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return self.work_dir / fn.id / f"v{fn.version}-{digest}"

    def write_code(self, fn: Function, code: str | None = None) -> Path:
        """The function's folder: the handler file and every other file of the version, written
        once into a temp folder that is then renamed into place, so a folder that exists is
        whole. Read-only to the worker. Raises UnsafePath for a path that would leave it."""
        d = self.function_dir(fn)
        code_file = self.handler_path(fn)
        if (d / code_file).exists():
            return d
        if not d.parent.is_dir():
            private_dir(d.parent, 0o755)
        tmp = d.parent / f".{d.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        private_dir(tmp, 0o755)
        try:
            write_tree(tmp, {**fn.files, code_file: code if code is not None else fn.code})
            if os.path.lexists(d):  # an older, partial layout: never half-used
                shutil.rmtree(d, ignore_errors=True)
            try:
                os.rename(tmp, d)
            except OSError:
                if not (d / code_file).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return d

    def handler_path(self, fn: Function) -> str:
        """The handler file's path in the function's folder (`handler_file`, else the default)."""
        return handler_path(self.name, fn.handler_file) if self.name != "go" else self.code_file

    def laid_out(self, fn: Function) -> Path | InvokeResult:
        """write_code, with a path that would leave the folder (only a tampered store holds
        one: every write validates) answered as a failure of this version, nothing written."""
        try:
            return self.write_code(fn)
        except (UnsafePath, OSError) as exc:
            return InvokeResult.failure(ErrorType.COMPILE_ERROR, f"the function's files cannot be laid out: {exc}")

    def installed_deps(self, fn: Function) -> Path | InvokeResult | None:
        """The function's installed dependency tree, None when it has none, or a BuildError
        result when it names some that are not installed (the platform installs them first)."""
        if self.deps_tree is None or not has_dependencies(fn):
            return None
        tree: Path | None = self.deps_tree(fn)
        if tree is None:
            return InvokeResult.failure(
                ErrorType.BUILD_ERROR,
                "the function's dependencies are not installed: run `cloudfn deps NAME --rebuild`",
            )
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

    def base_spec(
        self, fn: Function, argv: list[str], env: dict[str, str], mounts: list[Mount], **kw: Any
    ) -> WorkerSpec:
        # The working folder is the function's own (read-only) folder, as Lambda's /var/task:
        # a bare open('data.json') finds a shipped file; /tmp stays the writable place.
        return WorkerSpec(
            argv=argv,
            env=env,
            mounts=mounts,
            memory_mb=fn.memory,
            cpu_seconds=self.cpu_budget(fn),
            network=fn.network,
            chdir=FUNCTION_DIR,
            **kw,
        )
