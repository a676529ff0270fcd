"""Dependencies installed for real (uv and npm in the build sandbox, from a local wheel folder
and a loopback registry), mounted into real sandboxed workers."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from deps_packages import make_hostile_sdist, open_platform, readable

from core.errors import BuildError, NotFound

PY_CODE = (
    "import tinypkg\n\ndef handler(event, context):\n    return {'v': tinypkg.VALUE, 's': tinypkg.shout(event['s'])}\n"
)
NODE_CODE = "const tiny = require('tiny-npm');\nexports.handler = async (event) => tiny.shout(event.s);\n"
NODE_DEPS = json.dumps({"dependencies": {"tiny-npm": "1.0.0"}})


def py(name: str, deps: str = "tinypkg==1.0\n", code: str = PY_CODE, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": code, "dependencies": deps, **kw}


def env_tree(platform, fn) -> Path:
    return platform.deps.tree_of(fn)


async def test_python_function_imports_its_dependency(platform):
    fn = await platform.create_function(py("uses-tiny"))
    res = await platform.invoke("uses-tiny", {"s": "hi"})
    assert res.success, f"{res.error_type}: {res.error}\n{res.logs}"
    assert res.result == {"v": "tiny 1.0", "s": "HI!"}
    report = await platform.function_dependencies("uses-tiny")
    assert report["installed"] and report["manifest"] == "requirements.txt"
    assert report["packages"] == [{"name": "tinypkg", "version": "1.0"}]
    # Read-only inside the sandbox, and root's on the host: neither a function nor a later
    # install (both the sandbox user) can change an env other functions share.
    tree = env_tree(platform, fn)
    assert os.stat(tree / "tinypkg" / "__init__.py").st_uid == os.geteuid()
    write = await platform.create_function(
        py(
            "writes-deps",
            code=(
                "import tinypkg, os\n\ndef handler(event, context):\n"
                "    try:\n        open(os.path.join(os.path.dirname(tinypkg.__file__), 'x.py'), 'w')\n"
                "    except OSError as exc:\n        return type(exc).__name__\n    return 'wrote'\n"
            ),
        )
    )
    res = await platform.invoke(write.name, {})
    assert res.result in ("OSError", "PermissionError"), res


async def test_a_second_function_with_the_same_manifest_installs_nothing(platform):
    await platform.create_function(py("first"))
    installs = platform.deps.manager.installs
    assert installs == 1
    second = await platform.create_function(py("second", code=PY_CODE.replace("'v'", "'value'")))
    assert platform.deps.manager.installs == installs  # no installer ran
    res = await platform.invoke(second.name, {"s": "a"})
    assert res.success and res.result["value"] == "tiny 1.0", res.error


async def test_a_code_only_update_does_not_reinstall(platform):
    await platform.create_function(py("upd"))
    assert platform.deps.manager.installs == 1
    fn = await platform.update_function("upd", {"code": PY_CODE.replace("'s':", "'shouted':")})
    assert fn.version == 2 and platform.deps.manager.installs == 1
    fn = await platform.update_function("upd", {"timeout": 10, "dependencies": "tinypkg==1.0\n"})  # unchanged text
    assert fn.version == 3 and platform.deps.manager.installs == 1
    res = await platform.invoke("upd", {"s": "x"})
    assert res.success and res.result["shouted"] == "X!", res.error


async def test_a_misspelt_package_is_a_build_error_and_the_previous_version_serves(platform):
    await platform.create_function(py("typo"))
    with pytest.raises(BuildError) as exc:
        await platform.update_function(
            "typo", {"dependencies": "reqeusts\n", "code": "def handler(e, c):\n    return 2\n"}
        )
    # uv's own words, naming the package.
    assert "No solution found" in exc.value.message and "reqeusts" in exc.value.message
    assert "reqeusts was not found" in exc.value.log
    fn = await platform.get_function("typo")
    assert fn.version == 1 and fn.dependencies == "tinypkg==1.0\n"
    res = await platform.invoke("typo", {"s": "still"})
    assert res.success and res.result["s"] == "STILL!", res.error
    # A create with a misspelt package stores nothing.
    with pytest.raises(BuildError):
        await platform.create_function(py("never", deps="reqeusts\n"))
    with pytest.raises(NotFound):
        await platform.get_function("never")
    assert [v.version for v in await platform.function_versions("typo")] == [1]


async def test_an_sdist_is_refused_by_default(platform, wheels, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    make_hostile_sdist(links, "buildme", [])
    readable(links)
    await platform.close()
    p = open_platform(
        {
            "storage.data_dir": str(tmp_path / "d2"),
            "runtime.pypi_index_url": "none",
            "runtime.pypi_find_links": str(links),
            "runtime.prewarm": "0",
        }
    )
    try:
        with pytest.raises(BuildError) as exc:
            await p.create_function(py("sdist", deps="buildme\n"))
        assert "no usable wheels" in exc.value.message, exc.value.message
        assert "building from source is disabled" in exc.value.log
        assert "HOSTILE-REPORT" not in exc.value.log  # its build backend never ran
    finally:
        await p.close()


@pytest.mark.parametrize("started", [False, True], ids=["one-shot", "launcher-ahead"])
async def test_an_install_cannot_read_the_platforms_token_or_environment(deps_flags, tmp_path, monkeypatch, started):
    """The worst an install can do: opt into source builds, so the sdist's own build backend runs.
    From inside it, the platform's token (file and variable), its environment, the data
    directory and the host's loopback are out of reach, and it is not root."""
    monkeypatch.setenv("CLOUDFN_TOKEN", "tok-secret-from-env")
    monkeypatch.setenv("CLOUDFN_SECRET_PROBE", "platform-env-secret")
    data_dir = Path(deps_flags["storage.data_dir"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    links = tmp_path / "evil-links"
    links.mkdir()
    p = open_platform({**deps_flags, "runtime.pypi_find_links": str(links)})
    try:
        if started:  # through the launcher started ahead: the same confinement
            await p.start()
            assert await p.deps.manager.launcher_ready()
        token = data_dir / "server.token"
        token.write_text("tok-secret-from-file")
        make_hostile_sdist(
            links,
            "evilpkg",
            [str(token), str(data_dir / "registry.json"), "/etc/shadow", "/proc/1/environ"],
            listener.getsockname()[1],
        )
        readable(links)
        with pytest.raises(BuildError) as exc:
            await p.create_function(py("evil", deps="evilpkg\n", source_builds=True))
        log = exc.value.log
        assert "HOSTILE-REPORT" in log, log  # the backend did run, so what it saw is real
        report = json.loads(log.rsplit("HOSTILE-REPORT ", 1)[1].split(" END", 1)[0])
        assert report["uid"] != 0
        assert "tok-secret" not in log and "platform-env-secret" not in log
        assert not any(k.startswith("CLOUDFN") for k in report["env"]), report["env"]
        # Ours (PATH, LANG, HOME, TMPDIR, UV_*) plus what uv sets for a build; nothing of the host's.
        extra = {k for k in report["env"] if not k.startswith(("UV", "VIRTUAL_ENV", "PYTHON"))}
        assert extra <= {"PATH", "LANG", "HOME", "TMPDIR", "PWD", "SSL_CERT_FILE"}, report["env"]
        for path, got in report["files"].items():
            if path == "/proc/1/environ":  # the sandbox's own pid 1: the fixed launcher environment
                assert "CLOUDFN" not in got, got
            else:
                assert got in ("FileNotFoundError", "PermissionError"), (path, got)
        assert report["net"] in ("ConnectionRefusedError", "OSError", "TimeoutError", "PermissionError"), report
        with pytest.raises(NotFound):
            await p.get_function("evil")
        assert p.deps.manager.prestarted == int(started)
    finally:
        listener.close()
        await p.close()


@pytest.mark.parametrize("started", [False, True], ids=["one-shot", "launcher-ahead"])
async def test_an_install_past_its_memory_limit_fails_cleanly(deps_flags, started):
    p = open_platform(deps_flags, **{"runtime.deps_memory": "16"})
    try:
        if started:  # the launcher started ahead holds the same limit
            await p.start()
            assert await p.deps.manager.launcher_ready()
        with pytest.raises(BuildError) as exc:
            await p.create_function(
                {"name": "oom-node", "runtime": "nodejs", "code": NODE_CODE, "dependencies": NODE_DEPS}
            )
        assert "memory limit of 16 MB (runtime.deps_memory)" in exc.value.message
        assert p.deps.manager.prestarted == int(started)
        with pytest.raises(NotFound):
            await p.get_function("oom-node")
        assert not any(p.deps.root.joinpath("tmp").iterdir())  # no half-installed env left
        assert not any(p.deps.root.joinpath("envs").iterdir())
    finally:
        await p.close()


@pytest.mark.parametrize("started", [False, True], ids=["one-shot", "launcher-ahead"])
async def test_an_install_past_its_time_limit_fails_cleanly(deps_flags, npm_registry, started):
    p = open_platform(deps_flags, **{"runtime.deps_timeout": "5"})
    try:
        if started:
            await p.start()
            assert await p.deps.manager.launcher_ready()
        with pytest.raises(BuildError) as exc:
            await p.create_function(
                {
                    "name": "slow-node",
                    "runtime": "nodejs",
                    "code": NODE_CODE,
                    "dependencies": json.dumps({"dependencies": {"slow-npm": "1"}}),
                }
            )
        assert "did not finish within its time limit of 5 s" in exc.value.message
        assert "/slow-npm" in npm_registry.requests  # it did reach the registry, and hung there
        assert p.deps.manager.prestarted == int(started)
        with pytest.raises(NotFound):
            await p.get_function("slow-node")
    finally:
        await p.close()


async def test_node_function_requires_its_dependency_and_install_scripts_never_run(platform):
    fn = await platform.create_function(
        {"name": "node-tiny", "runtime": "nodejs", "code": NODE_CODE, "dependencies": NODE_DEPS}
    )
    res = await platform.invoke("node-tiny", {"s": "hey"})
    assert res.success, f"{res.error_type}: {res.error}\n{res.logs}"
    assert res.result == "HEY!"
    tree = env_tree(platform, fn)
    pkg = tree / "tiny-npm"
    assert json.loads((pkg / "package.json").read_text())["scripts"]["postinstall"]  # it has scripts...
    assert not (pkg / "POSTINSTALL_RAN").exists()  # ...and none of them ran
    assert not list(tree.rglob("POSTINSTALL_RAN"))
    report = await platform.function_dependencies("node-tiny")
    assert report["packages"] == [{"name": "tiny-npm", "version": "1.0.0"}]


async def test_node_git_and_url_dependencies_are_refused_before_any_install(platform, npm_registry):
    before = len(npm_registry.requests)
    for spec in ("github:evil/pkg", "https://evil.example/p.tgz", "file:/etc"):
        with pytest.raises(Exception) as exc:
            await platform.create_function(
                {
                    "name": "bad-node",
                    "runtime": "nodejs",
                    "code": NODE_CODE,
                    "dependencies": json.dumps({"dependencies": {"p": spec}}),
                }
            )
        assert "are refused" in str(exc.value)
    assert platform.deps.manager.installs == 0 and len(npm_registry.requests) == before


async def test_rollback_across_a_dependency_change_and_collection(deps_flags):
    # A tiny cache: every env but the ones current functions use is collected at once.
    p = open_platform(deps_flags, **{"runtime.deps_cache_max": "16"})
    try:
        await p.create_function(py("roll"))
        v1 = await p.invoke("roll", {"s": "a"})
        assert v1.result["v"] == "tiny 1.0"
        await p.update_function("roll", {"dependencies": "tinypkg==2.0\n"})
        v2 = await p.invoke("roll", {"s": "a"})
        assert v2.result == {"v": "tiny 2.0", "s": "A!!"}, v2.error
        assert p.deps.manager.installs == 2
        # Collection keeps what a current function names; the 1.0 env is nobody's now. Each
        # env is a few KB, so lower the bound to nothing to force the question.
        p.deps.manager.cache.max_mb = 0
        removed = p.deps.manager.collect()
        assert len(removed) == 1
        current = await p.get_function("roll")
        assert p.deps.tree_of(current) is not None  # the env in use was kept
        fn = await p.rollback_function("roll", 1)
        assert fn.version == 3 and fn.dependencies == "tinypkg==1.0\n"
        assert p.deps.manager.installs == 3  # collected, so reinstalled before the rollback committed
        back = await p.invoke("roll", {"s": "a"})
        assert back.result == {"v": "tiny 1.0", "s": "A!"}, back.error
    finally:
        await p.close()


async def test_envs_survive_a_restart_and_a_lost_env_reinstalls_at_invoke(deps_flags):
    p = open_platform(deps_flags)
    try:
        fn = await p.create_function(py("keep"))
        key = p.deps.manager.key(p.deps.manifest_of(fn))
    finally:
        await p.close()
    p = open_platform(deps_flags)
    try:
        res = await p.invoke("keep", {"s": "b"})
        assert res.success and p.deps.manager.installs == 0  # the env on disk is reused
    finally:
        await p.close()
    p = open_platform(deps_flags)
    try:
        p.deps.manager.cache.remove(key)  # lost (removed by hand, or collected)
        res = await p.invoke("keep", {"s": "c"})
        assert res.success and res.result["s"] == "C!", res.error
        assert p.deps.manager.installs == 1
    finally:
        await p.close()


async def test_build_events_reach_the_bus(platform):
    sub = platform.bus.subscribe({"build.started", "build.log", "build.finished"})
    await platform.create_function(py("evented"))
    kinds = []
    while True:
        ev = await sub.get()
        kinds.append(ev.kind)
        assert ev.data["function"] == "evented"
        if ev.kind == "build.finished":
            assert ev.data["ok"] and ev.data["packages"] == [{"name": "tinypkg", "version": "1.0"}]
            break
    assert kinds[0] == "build.started" and "build.log" in kinds


async def test_rebuild_reinstalls_and_renews_every_sharers_workers(platform):
    await platform.create_function(py("rb"))
    await platform.create_function(py("rb-too"))
    for name in ("rb", "rb-too"):  # warm workers holding the env about to be replaced
        assert (await platform.invoke(name, {"s": "w"})).success
    report = await platform.function_dependencies("rb", rebuild=True)
    assert report["installed"] and platform.deps.manager.installs == 2
    for name in ("rb", "rb-too"):
        res = await platform.invoke(name, {"s": "z"})
        assert res.success and res.cold_start, (name, res.error)  # new workers, on the new tree


async def test_a_source_build_gets_a_cache_of_its_own(deps_flags, tmp_path):
    """Its build backend runs as the sandbox user: with the shared cache mounted it could plant
    files every later install would copy. The hostile backend reports its cache path."""
    links = tmp_path / "evil-links"
    links.mkdir()
    make_hostile_sdist(links, "cachepkg", [])
    readable(links)
    p = open_platform({**deps_flags, "runtime.pypi_find_links": str(links)})
    try:
        shared = p.deps.root / "cache"
        before = set(shared.rglob("*")) if shared.exists() else set()
        with pytest.raises(BuildError) as exc:
            await p.create_function(py("cache-evil", deps="cachepkg\n", source_builds=True))
        assert "HOSTILE-REPORT" in exc.value.log
        after = set(shared.rglob("*")) if shared.exists() else set()
        assert not any("cachepkg" in str(x) for x in after - before)  # nothing of it in the shared cache
        assert not any(p.deps.root.joinpath("tmp").iterdir())  # and its own cache is gone
    finally:
        await p.close()


async def test_installs_link_from_the_cache_and_the_links_stay_sealed(platform):
    """uv hardlinks from its cache (target and cache share a mount); sealing makes those inodes
    root's and read-only, in the env and the cache alike, so no later install can change an env
    through the cache. A later install needing the same files copies them and works."""
    first = await platform.create_function(py("link-a", deps="tinypkg==1.0\notherpkg==0.1\n"))
    second = await platform.create_function(py("link-b", deps="tinypkg==1.0\n"))
    assert platform.deps.manager.installs == 2
    for name in ("link-a", "link-b"):
        res = await platform.invoke(name, {"s": "q"})
        assert res.success and res.result["s"] == "Q!", res.error
    linked = env_tree(platform, first) / "tinypkg" / "__init__.py"
    st = os.stat(linked)
    assert st.st_nlink >= 2, "the first install linked from the cache"
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o222 & ~0o200
    copied = os.stat(env_tree(platform, second) / "tinypkg" / "__init__.py")
    assert copied.st_ino != st.st_ino and copied.st_uid == os.geteuid()
    sandbox = platform.executor.sandbox
    if sandbox.drops_uid:  # the cache's top stays the installer's: run_build never re-owns it by walking
        assert (platform.deps.root / "cache").stat().st_uid == sandbox.user.uid
    # No install's target is left; only the folder of a sandbox waiting for the next one (the
    # first invocation started the platform, which keeps one ready).
    await platform.deps.manager.launcher_ready()
    waiting = platform.deps.manager.waiting_launcher
    ahead = {waiting.build_dir.name} if waiting is not None and waiting.build_dir is not None else set()
    assert {d.name for d in (platform.deps.root / "cache" / "targets").iterdir()} <= ahead


def _cgroup_limits(pid: int) -> dict[str, str]:
    """What the host says of a process's cgroups: the memory and pids limits it runs under."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls in ("memory", "pids", ""):
            base = Path("/sys/fs/cgroup") / (ctrls if ctrls else "") / path.lstrip("/")
            for name in ("memory.limit_in_bytes", "memory.max", "pids.max"):
                if (base / name).exists():
                    out[name] = (base / name).read_text().strip()
    return out


async def test_a_started_platform_installs_through_a_launcher_joined_ahead(deps_flags):
    """A console or server keeps one build launcher waiting, already in its own cgroup under the
    install's limits (so an install skips the slow first cgroup join); the install runs through
    it, a new one takes its place, and closing the platform ends it."""
    p = open_platform(deps_flags, **{"runtime.deps_memory": "200", "runtime.deps_pids": "77"})
    m = p.deps.manager
    try:
        await p.start()
        assert await m.launcher_ready()
        first = m.waiting_launcher
        limits = _cgroup_limits(first.proc.pid)
        assert limits.get("memory.limit_in_bytes", limits.get("memory.max")) == str(200 * 1024 * 1024), limits
        assert limits.get("pids.max") == "77", limits
        # Started as the next Python install itself: its sandbox is up, its scratch folder made,
        # and what waits inside is the sandbox user's shell, not root.
        assert first.spec is not None and first.build_dir is not None and first.build_dir.is_dir()
        # (its launching shell, root's and outside, has the same last argument: it started it)
        waiting = [
            pid
            for pid in _descendants(first.proc.pid)
            if _cmd(pid)[-1:] == [b"cloudfn-build"] and b"read -r -d '' go" in _cmd(pid)[2]
        ]
        assert waiting and all(os.stat(f"/proc/{pid}").st_uid != 0 for pid in waiting)
        # uv's look at the interpreter, done while it waited: in the package cache, the sandbox
        # user's like the rest of it.
        found = list((p.deps.root / "cache" / "uv").glob("interpreter-v*/**/*.msgpack"))
        assert found and all(f.stat().st_uid == os.stat(p.deps.root / "cache").st_uid for f in found), found
        await p.create_function(py("through-launcher"))
        assert m.prestarted == 1 and m.installs == 1
        assert not first.build_dir.exists()  # the install's scratch folder, gone with it
        assert first.proc.returncode is not None  # it became the install, which has ended
        assert first.cg.memory is None or not first.cg.memory.exists()  # and its cgroup is gone
        res = await p.invoke("through-launcher", {"s": "ok"})
        assert res.success and res.result == {"v": "tiny 1.0", "s": "OK!"}, res.error
        assert await m.launcher_ready()
        second = m.waiting_launcher
        assert second is not first and second.proc.pid != first.proc.pid
    finally:
        await p.close()
    assert second.proc.returncode is not None
    assert second.cg.memory is None or not second.cg.memory.exists()
    assert m.waiting_launcher is None
    assert second.build_dir is not None and not second.build_dir.exists()


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def _cmd(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return []


async def test_a_node_install_runs_through_the_launcher_of_the_python_sandbox_started_ahead(deps_flags):
    """The sandbox waiting for a Python install does not fit a Node.js one: its launching shell,
    in the cgroup joined ahead, runs the Node.js install's own chain instead (no idle cgroup
    join on its path), and the unused sandbox ends with its scratch folder."""
    p = open_platform(deps_flags)
    m = p.deps.manager
    try:
        await p.start()
        assert await m.launcher_ready()
        first = m.waiting_launcher
        assert first.spec is not None
        await p.create_function({"name": "js", "runtime": "nodejs", "code": NODE_CODE, "dependencies": NODE_DEPS})
        res = await p.invoke("js", {"s": "hi"})
        assert res.success and res.result == "HI!", res.error
        assert m.prestarted == 1
        assert first.proc.returncode == 0  # it became npm's chain (a discarded one is killed: -9)
        assert not first.build_dir.exists()
        assert first.cg.memory is None or not first.cg.memory.exists()
        assert await m.launcher_ready()  # the next one, started once the create was written
        assert [d.name for d in p.deps.root.joinpath("tmp").iterdir() if d != m.waiting_launcher.build_dir] == []
    finally:
        await p.close()


async def test_a_one_shot_platform_keeps_no_launcher(platform):
    """A command that owns the data directory for one create (not started) leaves nothing running."""
    await platform.create_function(py("one-shot"))
    assert platform.deps.manager.prestarted == 0
    assert platform.deps.manager.waiting_launcher is None
