"""How LocalPlatform uses dependencies: install before a create, update or rollback commits,
install lazily before an invocation whose env is gone (collected, or a bundled example stored
at first start without installing), and report what is installed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import BuildError, FieldError, InvalidInput
from core.executors.builds import BuildLimits
from core.models import ErrorType, Function, FunctionPatch, FunctionSpec, InvokeResult, parse_patch

from .cache import EnvCache
from .installers import InstallSettings
from .manager import DepsManager
from .manifest import Manifest, find_manifest, manifest_problems

DEPS_DIR = "deps"


class DependencySupport:
    def __init__(self, platform: Any):
        self.platform = platform
        self.root: Path = platform.data_dir / DEPS_DIR
        self._manager: DepsManager | None = None

    @property
    def manager(self) -> DepsManager:
        if self._manager is None:
            c = self.platform.config
            limits = BuildLimits(
                memory_mb=c["runtime.deps_memory"],
                cpu_seconds=c["runtime.deps_timeout"],
                wall_seconds=float(c["runtime.deps_timeout"]),
                pids=c["runtime.deps_pids"],
                setting="runtime.deps_memory",
            )
            settings = InstallSettings(
                pypi_index_url=c["runtime.pypi_index_url"],
                pypi_find_links=c["runtime.pypi_find_links"] or "",
                npm_registry=c["runtime.npm_registry"],
                limits=limits,
            )
            self._manager = DepsManager(
                EnvCache(self.root, c["runtime.deps_cache_max"]),
                self.platform.executor.sandbox,
                settings,
                publish=self.platform.bus.publish,
                in_use=self._in_use,
            )
        return self._manager

    def prepare(self) -> None:
        """A long-running platform keeps a build launcher started ahead (buildlauncher.py)."""
        self.manager.prepare()

    def holding(self) -> contextlib.AbstractContextManager[None]:
        """See DepsManager.holding: around an install and the write that follows it."""
        return self.manager.holding()

    async def close(self) -> None:
        if self._manager is not None:
            await self._manager.close()

    @staticmethod
    def manifest_of(fn: FunctionSpec) -> Manifest | None:
        return find_manifest(fn.runtime, fn.dependencies, fn.files, fn.source_builds)

    def _in_use(self) -> list[str]:
        keys = []
        for fn in self.platform.registry.list():
            m = self.manifest_of(fn)
            if m is not None:
                keys.append(self.manager.key(m))
        return keys

    # -- the executor's view ---------------------------------------------------------------------
    def tree_of(self, fn: Function) -> Path | None:
        m = self.manifest_of(fn)
        return self.manager.tree(m) if m is not None else None

    # -- writes ----------------------------------------------------------------------------------
    @staticmethod
    def check(fn: FunctionSpec, what: str) -> None:
        """Every problem of the manifest the function would install, named by its field: the
        `dependencies` text or the manifest file among its files."""
        m = DependencySupport.manifest_of(fn)
        if m is None:
            return
        problems = manifest_problems(m.runtime, m.text, m.lock)
        if problems:
            field = "dependencies" if fn.dependencies.strip() else f"files.{m.file}"
            raise InvalidInput(what, [FieldError(field, p) for p in problems])

    async def ensure(self, fn: FunctionSpec, rebuild: bool = False) -> dict[str, Any] | None:
        m = self.manifest_of(fn)
        if m is None:
            return None
        return await self.manager.ensure(m, fn.name, rebuild=rebuild)

    async def before_update(self, ref: str, data: dict[str, Any] | FunctionPatch) -> FunctionPatch:
        """The patch, once the version it makes has its dependencies installed. A code-only
        update has the same manifest, hence the same env: nothing installs."""
        patch = data if isinstance(data, FunctionPatch) else parse_patch(data)
        changes = patch.model_dump(exclude_unset=True)
        if not {"dependencies", "runtime", "source_builds", "files"} & set(changes):
            return patch
        current = self.platform.registry.get(ref)
        merged = current.model_copy(update={k: v for k, v in changes.items() if v is not None})
        self.check(merged, "function update")
        await self.ensure(merged)
        return patch

    async def missing(self, fn: Function) -> InvokeResult | None:
        """None when the function's env is there (installing it first if it is not), else the
        BuildError as an invocation result."""
        m = self.manifest_of(fn)
        if m is None or self.manager.tree(m) is not None:
            return None
        try:
            await self.manager.ensure(m, fn.name)
        except BuildError as exc:
            return InvokeResult.failure(ErrorType.BUILD_ERROR, exc.message, logs=exc.log)
        return None

    # -- reads -----------------------------------------------------------------------------------
    async def report(self, fn: Function, rebuild: bool = False) -> dict[str, Any]:
        m = self.manifest_of(fn)
        out: dict[str, Any] = {
            "function": fn.name,
            "runtime": fn.runtime,
            "manifest": None,
            "installed": False,
            "packages": [],
        }
        if m is None:
            return out
        meta: dict[str, Any] | None
        if rebuild:
            meta = await self.manager.ensure(m, fn.name, rebuild=True)
            # The old tree is gone: every function sharing the env gets new workers, which mount the new one.
            key = self.manager.key(m)
            for other in self.platform.registry.list():
                om = self.manifest_of(other)
                if om is not None and self.manager.key(om) == key:
                    await self.platform.executor.replace_workers(other.id)
        else:
            key = self.manager.key(m)
            meta = await asyncio.to_thread(self.manager.cache.meta, key)
        out["manifest"] = m.file
        out["key"] = self.manager.key(m)
        if meta:
            when = meta.get("installed_at")
            out.update(
                installed=True,
                packages=meta.get("packages", []),
                bytes=meta.get("bytes", 0),
                seconds=meta.get("seconds"),
                installed_at=datetime.fromtimestamp(when, UTC).isoformat() if when else None,
            )
        return out
