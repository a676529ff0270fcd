"""Environments on disk, named by what they were installed from, so every function with the same
manifest (and lock, runtime version, platform) shares one, across restarts.

    <root>/envs/<key>/          the installed tree (site/ for Python, node_modules/ for Node.js)
    <root>/envs/<key>/.cloudfn-env.json   written last: an env without it is not ready
    <root>/tmp/                 installs in progress (removed at start: a crash leaves them)
    <root>/cache/               the installers' package caches (uv, npm), shared

Collection removes the least recently used environments past `max_mb`, never one a current
function names or one being installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.filemodes import private_dir

from .manifest import Manifest

META = ".cloudfn-env.json"
FORMAT = 1  # bump when the layout of an environment changes: old ones are then not reused
TOUCH_EVERY = 60.0  # seconds between two "last used" stamps of one env


def platform_tag() -> str:
    libc, version = platform.libc_ver()
    return f"{platform.system().lower()}-{platform.machine()}-{libc or 'unknown'}{version}"


def cache_key(manifest: Manifest, runtime_version: str, plat: str | None = None) -> str:
    """sha256 of everything that decides what gets installed: the manifest and lock texts, the
    source-build opt-in, the runtime's version and the platform."""
    doc = {
        "format": FORMAT,
        "runtime": manifest.runtime,
        "version": runtime_version,
        "platform": plat or platform_tag(),
        "manifest": manifest.text,
        "lock": manifest.lock,
        "source_builds": manifest.source_builds,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


class EnvCache:
    def __init__(self, root: Path, max_mb: int):
        self.root = Path(root)
        self.max_mb = max_mb
        self.envs = self.root / "envs"
        self.tmp = self.root / "tmp"
        self.packages_cache = self.root / "cache"
        # Workers reach an env through its bind mount, made by root's bwrap (or, unsandboxed, as
        # this same user): nobody else needs to traverse these folders (data dir contract: 0700).
        for d in (self.root, self.envs, self.tmp):
            private_dir(d, 0o700)
        self._touched: dict[str, float] = {}
        for stale in [*self.tmp.iterdir(), *(self.packages_cache / "targets").glob("*")]:  # a crash's leftovers
            shutil.rmtree(stale, ignore_errors=True)

    def path(self, key: str) -> Path:
        return self.envs / key

    def ready(self, key: str) -> bool:
        return (self.envs / key / META).is_file()

    def meta(self, key: str) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.envs / key / META).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def touch(self, key: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        self._touched[key] = now
        with contextlib.suppress(OSError):
            os.utime(self.envs / key / META)

    def scratch(self, key: str) -> Path:
        d = self.tmp / f"{key}-{uuid.uuid4().hex[:8]}"
        private_dir(d, 0o755)
        return d

    def commit(self, key: str, tree: Path, meta: dict[str, Any]) -> Path:
        """Move an installed tree into place; the meta file is written last, so a crash leaves
        no env that looks ready."""
        final = self.envs / key
        if final.exists():  # a rebuild: the old tree goes first (workers of it were retired)
            self.remove(key)
        tree.replace(final)
        tmp = final / f"{META}.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, 0o644)
        tmp.replace(final / META)
        return final

    def remove(self, key: str) -> None:
        path = self.envs / key
        if not path.exists():
            return
        trash = self.tmp / f"gone-{key}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):
            path.replace(trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._touched.pop(key, None)

    def entries(self) -> list[tuple[str, float, int]]:
        """(key, last used, bytes) of every ready env."""
        out = []
        for d in self.envs.iterdir():
            meta = d / META
            with contextlib.suppress(OSError, ValueError):
                st = meta.stat()
                size = int(json.loads(meta.read_text()).get("bytes", 0))
                out.append((d.name, st.st_mtime, size))
        return out

    def collect(self, keep: Iterable[str]) -> list[str]:
        """Remove the least recently used envs until the rest fit in max_mb; never one in `keep`."""
        keep = set(keep)
        entries = sorted(self.entries(), key=lambda e: e[1])
        total = sum(size for _, _, size in entries)
        limit = self.max_mb * 1024 * 1024
        removed = []
        for key, _, size in entries:
            if total <= limit:
                break
            if key in keep:
                continue
            self.remove(key)
            total -= size
            removed.append(key)
        return removed


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total
