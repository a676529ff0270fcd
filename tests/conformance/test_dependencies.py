"""Dependencies through PlatformAPI, the same for LocalPlatform and a real `cloudfn serve`
(whose installs come from the conformance wheel folder, see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import BuildError, InvalidInput, NotFound
from core.models import ErrorType

CODE = "import confpkg\n\ndef handler(event, context):\n    return confpkg.VALUE\n"


def spec(name: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": CODE, "dependencies": "confpkg==1.0\n", **kw}


@pytest.mark.executes
async def test_create_with_dependencies_invoke_and_list_them(platform, name):
    fn = await platform.create_function(spec(name))
    assert fn.dependencies == "confpkg==1.0\n" and fn.source_builds is False
    res = await platform.invoke(name, {})
    assert res.success and res.result == "conf", res.error
    report = await platform.function_dependencies(name)
    assert report["function"] == name and report["manifest"] == "requirements.txt" and report["installed"]
    assert report["packages"] == [{"name": "confpkg", "version": "1.0"}]
    rebuilt = await platform.function_dependencies(name, rebuild=True)
    assert rebuilt["packages"] == report["packages"] and rebuilt["key"] == report["key"]
    assert (await platform.invoke(name, {})).result == "conf"


async def test_function_without_dependencies_reports_none(platform, name):
    await platform.create_function({"name": name, "runtime": "python", "code": "def handler(e, c):\n    return 1\n"})
    report = await platform.function_dependencies(name)
    assert report["manifest"] is None and report["installed"] is False and report["packages"] == []
    with pytest.raises(NotFound):
        await platform.function_dependencies(name + "-missing")


@pytest.mark.executes
async def test_a_failed_install_is_a_build_error_with_the_log_and_changes_nothing(platform, name):
    await platform.create_function(spec(name))
    with pytest.raises(BuildError) as exc:
        await platform.update_function(name, {"dependencies": "confpgk\n"})
    assert "No solution found" in exc.value.message and "confpgk" in exc.value.message
    assert "confpgk was not found" in exc.value.log
    fn = await platform.get_function(name)
    assert fn.version == 1 and fn.dependencies == "confpkg==1.0\n"
    with pytest.raises(BuildError):
        await platform.create_function(spec(name + "-b", dependencies="confpgk\n"))
    with pytest.raises(NotFound):
        await platform.get_function(name + "-b")


async def test_bad_manifests_are_invalid_input_naming_dependencies(platform, name):
    for runtime, deps in (
        ("python", "-e git+https://example.com/x\n"),
        ("nodejs", '{"dependencies": {"x": "github:a/b"}}'),
        ("go", "github.com/x/y v1.0.0"),
    ):
        with pytest.raises(InvalidInput) as exc:
            await platform.create_function({"name": name, "runtime": runtime, "code": "x", "dependencies": deps})
        assert "dependencies" in {e.field for e in exc.value.errors}, exc.value.errors
    await platform.create_function(
        {"name": name, "runtime": "python", "code": "def handler(e, c):\n    return 1\n", "dependencies": "confpkg\n"}
    )
    with pytest.raises(InvalidInput) as exc:  # the manifest checked against the runtime it would run on
        await platform.update_function(name, {"runtime": "nodejs", "code": "exports.handler = () => 1;"})
    assert {e.field for e in exc.value.errors} == {"dependencies"}


@pytest.mark.executes
async def test_build_events_stream(platform, name):
    seen: list = []
    done = asyncio.Event()

    async def follow():
        async for ev in platform.events({"build.started", "build.log", "build.finished"}):
            if str(ev.data.get("function", "")).startswith(name):
                seen.append(ev)
                if ev.kind == "build.finished":
                    done.set()
                    return

    task = asyncio.create_task(follow())
    try:
        # An install of its own (the manifest text is new): the stream may take a moment to
        # connect remotely, so create until an install was seen (at most a few attempts).
        for attempt in range(5):
            deps = f"confpkg==1.0  # {name} {attempt}\n"
            await platform.create_function(spec(f"{name}-{attempt}", dependencies=deps))
            try:
                await asyncio.wait_for(done.wait(), 10)
                break
            except TimeoutError:
                seen.clear()
        assert done.is_set()
        kinds = [e.kind for e in seen]
        assert kinds[-1] == "build.finished" and seen[-1].data["ok"] is True
        assert "build.log" in kinds
    finally:
        task.cancel()


async def test_build_error_type_exists():
    assert ErrorType("BuildError") is ErrorType.BUILD_ERROR
