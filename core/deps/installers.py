"""The installers' command lines: uv for Python, npm for Node.js, each run by
core/executors/builds.run_build, so an install is sandboxed like a Go build: the sandbox user,
its own cgroup (memory, pids), CPU and wall-clock limits, seccomp, only /build (its scratch
folder) and /cache (the package cache) writable, the environment below and nothing of the
platform's (no token, no CLOUDFN_*), network only when it downloads.

No code from a package runs: uv installs wheels only (`--only-binary :all:`) unless the function
opts into source builds, and npm runs with `--ignore-scripts`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.executors.builds import BUILD_DIR, CACHE_DIR, BuildLimits, BuildResult, build_spec, run_build
from core.executors.sandbox import Mount, WorkerSpec

from .manifest import NODE_LOCK, NODE_MANIFEST, PY_MANIFEST, Manifest

UV_IN_SANDBOX = "/opt/cloudfn/uv"
LINKS_IN_SANDBOX = "/links"
PY_TREE = "site"  # what a Python env holds: the --target folder
NODE_TREE = "node_modules"
# Whatever the platform's own (000 made uv's cache 0777): nothing an install writes is writable
# by others. Not 077: the tree then comes out with the modes sealing gives it (0644, 0755), so
# sealing only changes owners (with 077 it chmods every entry: 5.9 vs 2.8 ms for 246 entries);
# the package cache stays private through its 0700 top, the sandbox user's.
UMASK = 0o022
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
# The host's trust store (bound into the sandbox with /etc/ssl): uv and Node otherwise trust only
# their built-in roots, and an operator's TLS proxy or private index would fail.
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def _ca_env(*names: str) -> dict[str, str]:
    return {n: SYSTEM_CA for n in names} if os.path.isfile(SYSTEM_CA) else {}


@dataclass
class InstallSettings:
    pypi_index_url: str = "https://pypi.org/simple"  # "" : no index (find-links only, offline)
    pypi_find_links: str = ""  # a folder of wheels (and sdists) read-only in the sandbox
    npm_registry: str = "https://registry.npmjs.org/"
    limits: BuildLimits | None = None


def uv_binary() -> str | None:
    try:
        from uv import find_uv_bin  # the PyPI package ships the binary

        return os.path.realpath(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return os.path.realpath(found) if found else None


def python_version() -> str:
    from core.executors.runtimes.python import _interpreter

    exe, _ = _interpreter()
    return f"{sys.implementation.name}-{sys.version.split()[0]}-{exe}"


def node_version() -> str:
    from core.executors.runtimes.nodejs import _node

    path, version = _node()
    return f"node-{version}-{path}"


def npm_cli() -> str | None:
    npm = shutil.which("npm", path="/usr/local/bin:/usr/bin:/bin")
    return os.path.realpath(npm) if npm else None


async def install(
    sandbox: Any,
    manifest: Manifest,
    build_dir: Path,
    cache_dir: Path,
    settings: InstallSettings,
    on_line: Callable[[str], None],
    launcher: Any = None,
) -> tuple[BuildResult, Path]:
    """Install into `build_dir`; returns the result and the tree to keep (site/ or node_modules/).
    `launcher`: a build launcher started ahead (core/executors/buildlauncher.py), used up here."""
    try:
        if manifest.runtime == "python":
            return await _uv(sandbox, manifest, build_dir, cache_dir, settings, on_line, launcher)
        return await _npm(sandbox, manifest, build_dir, cache_dir, settings, on_line, launcher)
    finally:
        if launcher is not None and launcher.pipe >= 0:  # refused before it ran: never left waiting
            await launcher.discard()


def target_dir(cache_dir: Path, build_dir: Path) -> Path:
    """Where a Python install writes its tree: inside the package cache's mount, so uv hardlinks
    from its cache as bare uv does (across two mounts a link fails with EXDEV and uv copies, 60-100
    ms more for a few packages). The manager seals the tree (root's, read-only) before anyone
    uses it, which makes the shared inodes root's in the cache too: a later install cannot link
    those (protected_hardlinks) and copies them instead, and nothing can change them."""
    return cache_dir / "targets" / build_dir.name


@dataclass
class UvPlan:
    """A Python install's command and sandbox, all known before its manifest is."""

    argv: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    network: bool
    cache_dir: Path
    tree: Path


def uv_plan(
    sandbox: Any, build_dir: Path, cache_dir: Path, settings: InstallSettings, source_builds: bool
) -> UvPlan | str:
    """The plan for an install in `build_dir`, with its folders made; or why there is none.
    A source build runs the package's own code as the sandbox user, so it gets a cache of its
    own: it could otherwise plant files in the shared cache that every later install would use."""
    from core.executors.runtimes.python import PythonRuntime, _interpreter

    if source_builds:
        cache_dir = build_dir.parent / f"{build_dir.name}-cache"
    uv = uv_binary()
    target = target_dir(cache_dir, build_dir)
    tree = target / PY_TREE
    if uv is None:
        return "uv is not installed (pip install uv)"
    fresh = not cache_dir.exists()
    for d in (cache_dir, target.parent, target):
        d.mkdir(mode=0o700, exist_ok=True)
    # All 0700 (data dir contract) and, where installs drop to the sandbox user, that user's: it
    # owns the cache above them already (it could rename and remake them), so this grants nothing.
    # The cache's top is the sandbox user's from the start: run_build gives a root-owned cache to
    # that user by walking it, which would hand back the sealed files linked here.
    owner = (sandbox.user.uid, sandbox.user.gid) if sandbox.drops_uid else None
    (cache_dir / "uv").mkdir(mode=0o700, exist_ok=True)  # uv's own would be 0755 (UMASK)
    for d in (cache_dir, target.parent, target) if fresh else (target.parent, target):
        _private(d, owner)
    _private(cache_dir / "uv", owner)
    exe, _ = _interpreter()
    in_cache = f"{CACHE_DIR}/targets/{build_dir.name}/{PY_TREE}"
    argv = [
        UV_IN_SANDBOX,
        "--no-config",
        "--color",
        "never",
        "--no-progress",
        "pip",
        "install",
        "--target",
        in_cache,
        "--python",
        exe,
        "--cache-dir",
        f"{CACHE_DIR}/uv",
        "--link-mode",
        "hardlink",
        "--no-compile",
        "-r",
        f"{BUILD_DIR}/{PY_MANIFEST}",
    ]
    if not source_builds:
        argv += ["--only-binary", ":all:"]
    argv += ["--index-url", settings.pypi_index_url] if settings.pypi_index_url else ["--no-index"]
    mounts = [Mount(Path(uv), UV_IN_SANDBOX)]
    # The interpreter uv inspects for the target's tags (outside /usr here: a pyenv build).
    mounts += [
        m
        for m in PythonRuntime._mounts(build_dir)
        if m.target not in ("/function",) and not m.target.startswith("/runtime")
    ]
    if settings.pypi_find_links:
        why = _links_problem(Path(settings.pypi_find_links), sandbox.drops_uid)
        if why:
            return why
        mounts.append(Mount(Path(settings.pypi_find_links), LINKS_IN_SANDBOX))
        argv += ["--find-links", LINKS_IN_SANDBOX]
    env = {**BASE_ENV, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CACHE_BUCKET_PRUNE": "1", **_ca_env("SSL_CERT_FILE")}
    return UvPlan(argv, env, mounts, bool(settings.pypi_index_url), cache_dir, tree)


def _private(path: Path, owner: tuple[int, int] | None) -> None:
    """0700 and `owner`'s, with one lstat when it is so already (`targets` made by an older
    version was root's and 0755)."""
    st = os.lstat(path)
    if owner is not None and (st.st_uid, st.st_gid) != owner:
        os.lchown(path, *owner)
    if st.st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)


def ahead_spec(
    sandbox: Any, build_dir: Path, cache_dir: Path, settings: InstallSettings
) -> tuple[WorkerSpec, list[str]] | None:
    """The sandbox of the next wheels-only Python install into `build_dir` (a scratch folder made
    ahead), for a launcher started as that install (buildlauncher.py), and what that sandbox runs
    while it waits; None when there is none.

    What it runs is uv's look at the interpreter (`uv python find`, cached in the package cache
    by the interpreter's path and mtime): on an empty cache it is the largest fixed part of an
    install (a Python start and uv's query script: 70-100 ms of a 150-180 ms install here), and
    it does not depend on the manifest. Later installs find it cached, as bare uv finds it in
    its own cache; once it is there, nothing runs (empty)."""
    plan = uv_plan(sandbox, build_dir, cache_dir, settings, source_builds=False)
    if isinstance(plan, str):
        return None
    limits = settings.limits or BuildLimits()
    spec = build_spec(sandbox, plan.argv, plan.env, build_dir, plan.cache_dir, limits, plan.mounts, plan.network)
    if any((plan.cache_dir / "uv").glob("interpreter-v*/*/*.msgpack")):
        return spec, []  # seen already (uv looks again by itself if the interpreter changed)
    python = plan.argv[plan.argv.index("--python") + 1]
    warm = [
        UV_IN_SANDBOX,
        "--no-config",
        "--color",
        "never",
        "python",
        "find",
        "--cache-dir",
        f"{CACHE_DIR}/uv",
        python,
    ]
    return spec, warm


def _write_new(path: Path, text: str) -> None:
    """A new file, never through whatever might already sit at `path` (a scratch folder made
    ahead is the sandbox user's before root writes the manifest into it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


async def _uv(
    sandbox: Any,
    manifest: Manifest,
    build_dir: Path,
    cache_dir: Path,
    settings: InstallSettings,
    on_line: Callable[[str], None],
    launcher: Any = None,
) -> tuple[BuildResult, Path]:
    plan = uv_plan(sandbox, build_dir, cache_dir, settings, manifest.source_builds)
    if isinstance(plan, str):
        return _refused(plan), target_dir(cache_dir, build_dir) / PY_TREE
    _write_new(build_dir / PY_MANIFEST, manifest.text)
    result = await run_build(
        sandbox,
        plan.argv,
        plan.env,
        build_dir,
        plan.cache_dir,
        settings.limits or BuildLimits(),
        extra_mounts=plan.mounts,
        on_line=on_line,
        network=plan.network,
        launcher=launcher,
        umask=UMASK,
    )
    return result, plan.tree


async def _npm(
    sandbox: Any,
    manifest: Manifest,
    build_dir: Path,
    cache_dir: Path,
    settings: InstallSettings,
    on_line: Callable[[str], None],
    launcher: Any = None,
) -> tuple[BuildResult, Path]:
    from core.executors.runtimes.nodejs import _node

    node, _ = _node()
    npm = npm_cli()
    app = build_dir / "app"
    tree = app / NODE_TREE
    if node is None or npm is None:
        return BuildResult(None, "", "Node.js and npm are not installed (apt-get install nodejs npm)"), tree
    app.mkdir(mode=0o755)
    _npm_cache(sandbox, cache_dir)
    (app / NODE_MANIFEST).write_text(manifest.text)
    if manifest.lock:
        (app / NODE_LOCK).write_text(manifest.lock)
    argv = [
        node,
        npm,
        "ci" if manifest.lock else "install",
        "--prefix",
        f"{BUILD_DIR}/app",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        "--no-update-notifier",
        "--install-links=false",
        "--cache",
        f"{CACHE_DIR}/npm",
        "--registry",
        settings.npm_registry,
        "--loglevel",
        "http",
        "--color",
        "false",
        "--progress",
        "false",
    ]
    if not manifest.lock:
        argv.append("--package-lock=false")
    env = {
        **BASE_ENV,
        "npm_config_userconfig": "/tmp/.npmrc",
        "npm_config_globalconfig": "/tmp/.npmrc-global",
        **_ca_env("NODE_EXTRA_CA_CERTS", "npm_config_cafile"),
    }
    result = await run_build(
        sandbox,
        argv,
        env,
        build_dir,
        cache_dir,
        settings.limits or BuildLimits(),
        on_line=on_line,
        network=True,
        launcher=launcher,
        umask=UMASK,
    )
    return result, tree


def _npm_cache(sandbox: Any, cache_dir: Path) -> None:
    """npm's cache folder, 0700 and the sandbox user's (npm's own would be 0755: UMASK)."""
    cache_dir.mkdir(mode=0o700, exist_ok=True)
    (cache_dir / "npm").mkdir(mode=0o700, exist_ok=True)
    _private(cache_dir / "npm", (sandbox.user.uid, sandbox.user.gid) if sandbox.drops_uid else None)


def _links_problem(links: Path, sandbox_user: bool) -> str:
    """Why the find-links folder cannot serve an install, or ""."""
    try:
        mode = links.stat().st_mode
    except OSError as exc:
        return f"runtime.pypi_find_links {links} cannot be read: {exc.strerror}"
    if sandbox_user and mode & 0o005 != 0o005:
        return (
            f"runtime.pypi_find_links {links} is not readable by the sandbox user that runs "
            f"installs: chmod o+rx {links} (and o+r its files)"
        )
    return ""


def _refused(why: str) -> BuildResult:  # a failed result before the installer runs
    return BuildResult(None, "", why)


def _linked(path: Path, tree: Path) -> bool:
    """A package tarball may hold symlinks; read as root, one could show a host file's fields."""
    p = path
    while p != tree:
        if p.is_symlink():
            return True
        p = p.parent
    return False


def python_packages(tree: Path) -> list[dict[str, str]]:
    """(name, version) of each *.dist-info in a --target folder."""
    out = []
    for meta in sorted(tree.glob("*.dist-info/METADATA")):
        if _linked(meta, tree):
            continue
        name = version = ""
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("Version:"):
                version = line[8:].strip()
            elif not line:
                break
        if name:
            out.append({"name": name, "version": version})
    return out


def node_packages(tree: Path) -> list[dict[str, str]]:
    out = []
    for pj in sorted([*tree.glob("*/package.json"), *tree.glob("@*/*/package.json")]):
        if _linked(pj, tree):
            continue
        try:
            doc = json.loads(pj.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("name"), str):
            out.append({"name": doc["name"], "version": str(doc.get("version", ""))})
    return out
