"""Python functions: `def handler(event, context)` or `async def`, any handler name."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from core.models import Function, InvokeResult

from ..sandbox import BASE_ENV, Mount, WorkerSpec
from ..worker import Adoption, WorkerInit
from .base import DEPS_DIR, FUNCTION_DIR, PREWARM_CPU_SECONDS, RUNNERS_DIR, RUNTIME_DIR, Runtime


def _interpreter() -> tuple[str, str]:
    """(the real interpreter, the install prefix to show the sandbox). The venv shim is skipped:
    workers run isolated (-I -S), with the standard library only."""
    exe = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    return exe, prefix


class PythonRuntime(Runtime):
    name = "python"
    code_file = "handler.py"

    def info(self) -> dict[str, Any]:
        exe, _ = _interpreter()
        return {
            "available": os.access(exe, os.X_OK),
            "version": sys.version.split()[0],
            "path": exe,
            "hint": "" if os.access(exe, os.X_OK) else "the platform's own Python runs Python functions",
        }

    @staticmethod
    def _mounts(function_dir: Path, copy: bool = True) -> list[Mount]:
        """`copy` False: a pre-started sandbox's folder, bound, since files arrive after it starts."""
        exe, prefix = _interpreter()
        mounts = [
            Mount(function_dir, FUNCTION_DIR, copy=copy),
            Mount(RUNNERS_DIR / "python_runner.py", f"{RUNTIME_DIR}/python_runner.py", copy=True),
        ]
        if not prefix.startswith("/usr/") and prefix != "/usr":
            mounts.append(Mount(Path(prefix), prefix))
        stdlib = sysconfig.get_paths().get("stdlib", "")
        real_stdlib = os.path.realpath(stdlib) if stdlib else ""
        if real_stdlib and not real_stdlib.startswith(prefix) and not real_stdlib.startswith("/usr/"):
            mounts.append(Mount(Path(real_stdlib), real_stdlib))
        return mounts

    @staticmethod
    def _argv(*extra: str) -> list[str]:
        exe, _ = _interpreter()
        return [exe, "-I", "-S", "-u", "-B", f"{RUNTIME_DIR}/python_runner.py", "{REQ_FD}", "{RESP_FD}", *extra]

    async def prepare(self, fn: Function) -> WorkerInit | InvokeResult:
        deps = self.installed_deps(fn)
        if isinstance(deps, InvokeResult):
            return deps
        d = self.laid_out(fn)
        if isinstance(d, InvokeResult):
            return d
        mounts = self._mounts(d)
        init = {
            "type": "init",
            "code_path": f"{FUNCTION_DIR}/{self.handler_path(fn)}",
            "handler": fn.handler,
            "root_path": FUNCTION_DIR,
        }
        if deps is not None:  # bound, not copied: a cold start costs the same with 1 or 1000 files
            mounts.append(Mount(deps, DEPS_DIR))
            init["deps_path"] = DEPS_DIR
        spec = self.base_spec(
            fn, self._argv(), self.env(fn), mounts, data_mb=fn.memory + 256, host_dir=d.parent / "run"
        )
        return WorkerInit(spec=spec, init=init)

    def prewarm_spec(self, slot: Path) -> WorkerSpec | None:
        # The interpreter and runner start now; the function's rlimits (CPU, data) and
        # environment come with its init frame and are applied before its code loads.
        return WorkerSpec(
            argv=self._argv("prewarm"),
            env=dict(BASE_ENV),
            mounts=self._mounts(slot, copy=False),
            cpu_seconds=PREWARM_CPU_SECONDS,
            chdir=FUNCTION_DIR,
        )

    def adoption(self, wi: WorkerInit) -> Adoption:
        # python_runner.py applies these (rlimits first) before it loads the code.
        limits = {"cpu": [wi.spec.cpu_seconds, wi.spec.cpu_seconds + 1]}
        if wi.spec.data_mb:
            limits["data"] = [wi.spec.data_mb * 1024 * 1024] * 2
        return Adoption(init={"env": dict(wi.spec.env), "limits": limits})
