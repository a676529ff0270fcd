"""`LocalPlatform`: the whole platform in this process, owning one data directory."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from core import __version__, paths
from core.bundle import bundles_in
from core.config import Config
from core.errors import InvalidInput, FieldError
from core.models import ErrorType, Function, InvokeResult
from core.registry import Registry
from core.storage import DataDirLock, TinyStore

log = logging.getLogger("cloudfn.platform")
REGISTRY_FILE = "registry.json"
EXAMPLES_KEY = "examples_installed"


class LocalPlatform:
    def __init__(self, config: Config, command: str = "cloudfn", install_examples: bool = True):
        self.config = config
        self.data_dir = config.data_dir
        self.lock = DataDirLock(self.data_dir)
        self.lock.acquire({"command": command, "version": __version__})
        try:
            self.store = TinyStore(self.data_dir / REGISTRY_FILE)
            self.registry = Registry(self.store, default_timeout=config["runtime.default_timeout"])
            if install_examples:
                self._install_examples_once()
            self.executor = self._make_executor()
        except BaseException:
            self.lock.release()
            raise

    def _install_examples_once(self) -> None:
        """The first start on an empty data directory installs the bundled examples; deleting
        them later does not bring them back."""
        if self.registry.get_meta(EXAMPLES_KEY):
            return
        if not self.registry.list():
            for bundle in bundles_in(paths.bundled_functions_dir()):
                self.registry.create(bundle.spec)
        self.registry.set_meta(EXAMPLES_KEY, True)

    def _make_executor(self) -> Any:
        try:
            from core.executors import ExecutionService, ExecutionSettings
        except ImportError:  # the execution layer is optional until it lands
            return None
        c = self.config
        return ExecutionService(
            ExecutionSettings(
                work_dir=c.work_dir,
                cache_dir=c.cache_dir,
                max_concurrent=c["runtime.max_concurrent"],
                queue_size=c["runtime.queue_size"],
                keep_warm=c["runtime.keep_warm"],
                sandbox=c["runtime.sandbox"],
            )
        )

    # -- functions -----------------------------------------------------------------------
    async def list_functions(self) -> list[Function]:
        return await asyncio.to_thread(self.registry.list)

    async def get_function(self, ref: str) -> Function:
        return await asyncio.to_thread(self.registry.get, ref)

    async def create_function(self, data: dict[str, Any]) -> Function:
        return await asyncio.to_thread(self.registry.create, data)

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function:
        fn = await asyncio.to_thread(self.registry.update, ref, data)
        await self._retire(fn.id)
        return fn

    async def delete_function(self, ref: str) -> Function:
        fn = await asyncio.to_thread(self.registry.delete, ref)
        await self._retire(fn.id)
        return fn

    async def function_versions(self, ref: str) -> list[Function]:
        return await asyncio.to_thread(self.registry.versions, ref)

    async def rollback_function(self, ref: str, version: int) -> Function:
        fn = await asyncio.to_thread(self.registry.rollback, ref, version)
        await self._retire(fn.id)
        return fn

    async def _retire(self, function_id: str) -> None:
        if self.executor is not None:
            await self.executor.retire(function_id)

    # -- invoke --------------------------------------------------------------------------
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult:
        fn = await self.get_function(ref)
        if context is not None and (
            not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items())
        ):
            raise InvalidInput("invocation", [FieldError("context", "must be a map of strings to strings")])
        if self.executor is None:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                "this build of cloudfn has no execution layer",
                function_id=fn.id, function_name=fn.name, function_version=fn.version,
            )
        result: InvokeResult = await self.executor.invoke(fn, event, context or {})
        return result.model_copy(
            update={"function_id": fn.id, "function_name": fn.name, "function_version": fn.version}
        )

    # -- about ---------------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        c = self.config
        runtimes = self.executor.runtimes() if self.executor else _runtimes_on_path()
        protections = self.executor.protections() if self.executor else {}
        return {
            "version": __version__,
            "mode": "local",
            "python": sys.version.split()[0],
            "paths": {
                "config_file": str(c.file) + ("" if c.file_exists else " (not present)"),
                "data_dir": str(c.data_dir),
                "registry": str(self.store.path),
                "work_dir": str(c.work_dir),
                "cache_dir": str(c.cache_dir),
                "bundled_functions": str(paths.bundled_functions_dir()),
                "bundled_themes": str(paths.bundled_themes_dir()),
                "user_themes": str(paths.user_themes_dir()),
            },
            "settings": {name: {"value": _plain(s.value), "source": s.source} for name, s in c.settings.items()},
            "runtimes": runtimes,
            "protections": protections,
            "functions": len(await self.list_functions()),
        }

    async def close(self) -> None:
        try:
            if self.executor is not None:
                await self.executor.close()
            self.store.close()
        finally:
            self.lock.release()


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _runtimes_on_path() -> dict[str, dict[str, Any]]:
    found = {"python": sys.executable, "nodejs": shutil.which("node"), "go": shutil.which("go")}
    return {name: {"available": bool(p), "path": p or ""} for name, p in found.items()}
