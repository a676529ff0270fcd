"""ensure(): the one way an environment comes to exist. One install per key at a time (a second
caller waits for the first and reuses its env), build events for every step, and counts of
installer runs that tests and benchmarks read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from core.errors import BuildError
from core.executors.buildlauncher import ReadyLauncher, start_launcher
from core.executors.builds import BuildLimits, BuildResult

from . import installers
from .cache import EnvCache, cache_key
from .installers import NODE_TREE, PY_TREE, InstallSettings
from .manifest import Manifest

log = logging.getLogger("cloudfn.deps")
MAX_EVENT_LINES = 2000  # build.log events per install; the rest is in the build log of the answer


class DepsManager:
    def __init__(
        self,
        cache: EnvCache,
        sandbox: Any,
        settings: InstallSettings,
        publish: Callable[[str, Any], None] | None = None,
        in_use: Callable[[], Iterable[str]] = lambda: (),
    ):
        self.cache = cache
        self.sandbox = sandbox
        self.settings = settings
        self.publish = publish or (lambda kind, data: None)
        self.in_use = in_use
        self.installs = 0  # installer runs since start (tests: "no installer ran")
        self._locks: dict[str, asyncio.Lock] = {}
        self._installing: set[str] = set()
        self._versions: dict[str, str] = {}
        self._keys: dict[tuple[str, str, str, bool], str] = {}
        self._launcher: ReadyLauncher | None = None
        self._preparing: asyncio.Task[None] | None = None
        self._closed = False
        self._keep_ready = False  # once prepare() was called: a long-running platform
        self.prestarted = 0  # installs whose launcher was started ahead (tests, benchmarks)
        self._held = 0  # callers between an install and their own write (holding())
        self._wanted = False  # a launcher to start once they are done

    # -- a launcher started ahead ----------------------------------------------------------------
    def prepare(self) -> None:
        """Start a build launcher for the next install now (it joins its cgroup meanwhile: the
        first join after an idle moment costs an RCU grace period, 12-14 ms here). Called when a
        long-running platform starts and after every install; needs a running loop."""
        self._keep_ready = True
        if self._closed or self._launcher is not None or (self._preparing is not None and not self._preparing.done()):
            return
        self._preparing = asyncio.get_running_loop().create_task(self._prepare(), name="cloudfn-build-launcher")

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """The next install's launcher starts when this block ends rather than right after an
        install in it: the caller's own work after the install (a create's durable write) then
        keeps the loop and the CPU (the spawn forks this process; the chain runs on a 2-core host)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._wanted:
                self._wanted = False
                if not self._closed:
                    self.prepare()

    async def _prepare(self) -> None:
        try:
            launcher = await self._start_ahead()
        except OSError as exc:  # the cgroup or the spawn: installs start the usual way
            log.debug("no build launcher ahead: %s", exc)
            return
        if launcher is not None and (self._closed or self._launcher is not None):
            await self._discard(launcher)
            return
        self._launcher = launcher

    async def _start_ahead(self) -> ReadyLauncher | None:
        """The sandbox of the next Python install (wheels only, the common case) up to uv's exec,
        with its scratch folder made and uv's interpreter query cached: an install is then the
        manifest's write, a word on a pipe, uv, the seal and the rename. Other builds (Node.js
        installs, source builds) go through its launching shell, in the cgroup joined ahead.
        Where a sandbox cannot be started ahead, a launcher in its cgroup only."""
        limits = self.settings.limits or BuildLimits()
        scratch = self.cache.scratch("ahead")
        ahead = await asyncio.to_thread(
            installers.ahead_spec, self.sandbox, scratch, self.cache.packages_cache, self.settings
        )
        launcher = None
        if ahead is not None:
            spec, warm = ahead
            launcher = await start_launcher(self.sandbox, limits, spec, nice=True, warm=warm, umask=installers.UMASK)
        if launcher is None:
            self._remove_scratch(scratch)
            return await start_launcher(self.sandbox, limits, nice=True, umask=installers.UMASK)
        launcher.build_dir = scratch
        return launcher

    def _remove_scratch(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(scratch.parent / f"{scratch.name}-cache", ignore_errors=True)  # a source build's own
        shutil.rmtree(installers.target_dir(self.cache.packages_cache, scratch), ignore_errors=True)

    async def _discard(self, launcher: ReadyLauncher) -> None:
        await launcher.discard()
        if launcher.build_dir is not None:
            await asyncio.to_thread(self._remove_scratch, launcher.build_dir)

    @property
    def waiting_launcher(self) -> ReadyLauncher | None:
        return self._launcher

    async def launcher_ready(self) -> bool:
        """Whether a launcher waits for the next install, once the one being started has joined."""
        if self._preparing is not None:
            await asyncio.gather(asyncio.shield(self._preparing), return_exceptions=True)
        return self._launcher is not None and self._launcher.proc.returncode is None

    async def _take_launcher(self) -> ReadyLauncher | None:
        if self._launcher is None and self._preparing is not None and not self._preparing.done():
            await asyncio.shield(self._preparing)  # spawned already: its join overlaps ours
        launcher, self._launcher = self._launcher, None
        if launcher is not None and launcher.proc.returncode is not None:  # died waiting (killed from outside)
            await self._discard(launcher)
            return None
        return launcher

    async def close(self) -> None:
        self._closed = True
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            await self._discard(launcher)

    # -- keys ------------------------------------------------------------------------------------
    def runtime_version(self, runtime: str) -> str:
        if runtime not in self._versions:
            self._versions[runtime] = installers.python_version() if runtime == "python" else installers.node_version()
        return self._versions[runtime]

    def key(self, manifest: Manifest) -> str:
        memo = (manifest.runtime, manifest.text, manifest.lock, manifest.source_builds)
        key = self._keys.get(memo)
        if key is None:
            if len(self._keys) > 4096:
                self._keys.clear()
            key = self._keys[memo] = cache_key(manifest, self.runtime_version(manifest.runtime))
        return key

    def tree(self, manifest: Manifest) -> Path | None:
        """The installed tree a worker mounts, or None when the env is not (or no longer) there."""
        key = self.key(manifest)
        if not self.cache.ready(key):
            return None
        self.cache.touch(key)
        return self.cache.path(key) / (PY_TREE if manifest.runtime == "python" else NODE_TREE)

    # -- installs --------------------------------------------------------------------------------
    async def ensure(self, manifest: Manifest, function: str, rebuild: bool = False) -> dict[str, Any]:
        """The env's meta ({key, packages, bytes, ...}); installs it first when it is missing (or
        `rebuild`). Raises BuildError with the installer's output when the install fails."""
        key = self.key(manifest)
        if not rebuild and self.cache.ready(key):  # the common case: no lock, no event
            self.cache.touch(key)
            return self.cache.meta(key) or {"key": key, "packages": []}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not rebuild and self.cache.ready(key):  # installed by the caller we waited for
                return self.cache.meta(key) or {"key": key, "packages": []}
            self._installing.add(key)
            try:
                return await self._install(manifest, key, function)
            finally:
                self._installing.discard(key)
                if not lock.locked():
                    self._locks.pop(key, None)

    async def _install(self, manifest: Manifest, key: str, function: str) -> dict[str, Any]:
        self.installs += 1
        base = {"function": function, "runtime": manifest.runtime, "key": key}
        self.publish("build.started", {**base, "manifest": manifest.file})
        sent = 0

        def line(text: str) -> None:
            nonlocal sent
            if sent < MAX_EVENT_LINES and text.strip():
                sent += 1
                self.publish("build.log", {**base, "line": text})

        t0 = time.perf_counter()
        launcher = await self._take_launcher()
        ahead = launcher.build_dir if launcher is not None else None
        if ahead is not None and manifest.runtime == "python" and not manifest.source_builds:
            scratch = ahead  # the folder its sandbox binds at /build
        else:
            scratch = self.cache.scratch(key)
        try:
            if launcher is not None:
                self.prestarted += 1
            try:
                result, tree = await installers.install(
                    self.sandbox, manifest, scratch, self.cache.packages_cache, self.settings, line, launcher
                )
            except OSError as exc:  # the scratch folder, the cgroup, the sandbox's launch
                result, tree = BuildResult(None, "", f"the installer could not run: {exc}"), scratch / "missing"
            seconds = time.perf_counter() - t0
            if result.returncode != 0 or result.limit or not tree.is_dir():
                output = result.output.strip()
                why = result.limit or _last_error(output) or "the installer failed"
                message = f"installing the dependencies of {function!r} failed: {why}"
                self.publish("build.finished", {**base, "ok": False, "error": message, "seconds": round(seconds, 3)})
                log.warning("%s", message, extra={"function": function})
                raise BuildError(message, output[-64 * 1024 :])
            size = await asyncio.to_thread(seal, tree)
            packages = (
                installers.python_packages(tree) if manifest.runtime == "python" else installers.node_packages(tree)
            )
            meta = {
                "key": key,
                "runtime": manifest.runtime,
                "packages": packages,
                "bytes": size,
                "installed_at": time.time(),
                "seconds": round(seconds, 3),
                "log": result.output[-16 * 1024 :],
            }
            await asyncio.to_thread(self._commit, key, tree, meta)
        finally:
            if self._keep_ready and not self._closed:
                if self._held:
                    self._wanted = True
                else:
                    self.prepare()  # for the next install
            self._remove_scratch(scratch)
            if ahead is not None and ahead != scratch:  # an unused sandbox's folder
                self._remove_scratch(ahead)
        self.publish("build.finished", {**base, "ok": True, "packages": packages, "seconds": meta["seconds"]})
        log.info(
            "installed %d package%s for %s in %.2f s",
            len(packages),
            "" if len(packages) == 1 else "s",
            function,
            meta["seconds"],
            extra={"function": function},
        )
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.collect)
        return meta

    def _commit(self, key: str, tree: Path, meta: dict[str, Any]) -> None:
        # The env holds the tree under its own name, so a worker mounts exactly that folder.
        holder = tree.parent / f"env-{key}"
        holder.mkdir(mode=0o755)
        tree.replace(holder / tree.name)
        self.cache.commit(key, holder, meta)

    def collect(self) -> list[str]:
        keep = set(self.in_use()) | set(self._installing)
        removed = self.cache.collect(keep)
        for key in removed:
            log.info("removed the unused dependency environment %s (runtime.deps_cache_max)", key)
        return removed


def seal(tree: Path) -> int:
    """Root's and read-only to everyone else: the installer ran as the sandbox user, and so do
    functions; a later install or function must not be able to change a shared env. Returns the
    bytes of what is not a folder (the env's size for collection), counted in the same walk.

    One scandir walk, whose entries carry their lstat, and a chown or chmod only where one
    changes something: an install's tree of ~250 entries took three walks and five calls an
    entry before (~9 ms of a ~100 ms install). The installer has exited (its whole cgroup is
    gone) before this runs, so nothing changes the tree meanwhile."""
    root = os.geteuid() == 0
    total = 0

    def fix(path: str, st: os.stat_result) -> None:
        if root and (st.st_uid or st.st_gid):
            os.lchown(path, 0, 0)
        if stat.S_ISLNK(st.st_mode):
            return
        mode = (st.st_mode & 0o755) | 0o444 | (0o111 if stat.S_ISDIR(st.st_mode) else 0)
        # a chown clears set-id bits, which `mode` never keeps anyway
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)

    fix(str(tree), os.lstat(tree))
    folders = [str(tree)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                fix(entry.path, st)
                if stat.S_ISDIR(st.st_mode):
                    folders.append(entry.path)
                else:
                    total += st.st_size
    os.chmod(tree.parent, 0o755)
    return total


def _last_error(output: str) -> str:
    """The installer's own words: uv's "error: ..." / "No solution found ...", npm's "npm error ..."."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        low = ln.lower()
        if low.startswith(("error:", "× no solution found", "no solution found")) or "no solution found" in low:
            return " ".join(lines[i : i + 6])[:2000]
    errs = [ln.removeprefix("npm error").strip() for ln in lines if ln.startswith(("npm error", "npm ERR!"))]
    errs = [e for e in errs if e and not e.startswith(("A complete log", "/tmp/"))]
    if errs:
        return " ".join(errs[:6])[:2000]
    return lines[-1][:2000] if lines else ""
