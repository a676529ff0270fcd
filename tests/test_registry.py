"""The function registry through LocalPlatform: CRUD, names, versions, first-start examples;
on the embedded store and on PostgreSQL (tests/pgserver.py)."""

from __future__ import annotations

import json

import pytest

from core.config import load_config
from core.errors import Conflict, DataDirLocked, InvalidInput, NotFound, StoreCorrupt
from core.local import REGISTRY_FILE, LocalPlatform

PY = "def handler(event, context):\n    return event\n"


@pytest.fixture(params=["embedded", "postgresql"])
def config(request, data_dir):
    flags = {"storage.data_dir": str(data_dir)}
    if request.param == "postgresql":
        flags["storage.url"] = request.getfixturevalue("pg_url")
    return load_config(flags=flags)


@pytest.fixture
async def platform(config):
    p = LocalPlatform(config, install_examples=False)
    yield p
    await p.close()


async def test_create_get_by_id_and_name_list_update_delete(platform):
    fn = await platform.create_function({"name": "echo", "runtime": "python", "code": PY})
    assert (await platform.get_function(fn.id)).name == "echo"
    assert (await platform.get_function("echo")).id == fn.id
    assert [f.name for f in await platform.list_functions()] == ["echo"]

    updated = await platform.update_function("echo", {"timeout": 5, "environment": {"A": "1"}})
    assert (updated.version, updated.timeout, updated.environment, updated.code) == (2, 5, {"A": "1"}, PY)
    assert updated.updated_at > fn.updated_at and updated.created_at == fn.created_at

    await platform.delete_function(fn.id)
    with pytest.raises(NotFound, match="no function named 'echo'"):
        await platform.get_function("echo")
    assert await platform.list_functions() == []


async def test_names_are_unique_on_create_and_rename(platform):
    await platform.create_function({"name": "a", "runtime": "python", "code": PY})
    b = await platform.create_function({"name": "b", "runtime": "python", "code": PY})
    with pytest.raises(Conflict, match="'a' already exists"):
        await platform.create_function({"name": "a", "runtime": "go", "code": "x"})
    with pytest.raises(Conflict):
        await platform.update_function("b", {"name": "a"})
    assert (await platform.get_function(b.id)).name == "b"


async def test_an_invalid_write_stores_nothing(platform, data_dir):
    with pytest.raises(InvalidInput) as exc:
        await platform.create_function({"name": "Bad!", "runtime": "cobol", "code": ""})
    assert {e.field for e in exc.value.errors} == {"name", "runtime", "code"}
    assert await platform.list_functions() == []
    ok = await platform.create_function({"name": "ok", "runtime": "python", "code": PY})
    embedded = not platform.config["storage.url"]
    middle = (data_dir / REGISTRY_FILE).read_bytes() if embedded else None
    with pytest.raises(InvalidInput):
        await platform.update_function("ok", {"memory": 1, "timeout": None})
    if embedded:
        assert (data_dir / REGISTRY_FILE).read_bytes() == middle
    assert await platform.list_functions() == [ok] and len(await platform.function_versions("ok")) == 1
    with pytest.raises(NotFound):
        await platform.update_function("ghost", {"timeout": 3})


async def test_versions_are_kept_and_rollback_makes_a_new_version(platform):
    await platform.create_function({"name": "v", "runtime": "python", "code": PY})
    await platform.update_function("v", {"code": "def handler(e, c):\n    return 2\n", "timeout": 9})
    back = await platform.rollback_function("v", 1)
    assert (back.version, back.code, back.timeout) == (3, PY, 30)
    assert [v.version for v in await platform.function_versions("v")] == [1, 2, 3]
    with pytest.raises(NotFound, match="no version 7"):
        await platform.rollback_function("v", 7)


async def test_first_start_installs_the_bundled_examples_once(config):
    p = LocalPlatform(config)
    names = {f.name: f.runtime for f in await p.list_functions()}
    assert {"hello-python", "hello-nodejs", "hello-go"} <= set(names)
    assert set(names.values()) == {"python", "nodejs", "go"}
    for fn in await p.list_functions():
        await p.delete_function(fn.id)
    await p.close()
    p = LocalPlatform(config)  # deleting them all does not bring them back
    assert await p.list_functions() == []
    await p.close()


async def test_the_store_survives_a_reopen(config):
    p = LocalPlatform(config, install_examples=False)
    await p.create_function({"name": "keep", "runtime": "go", "code": "func handler() {}"})
    await p.close()
    p = LocalPlatform(config, install_examples=False)
    assert [f.name for f in await p.list_functions()] == ["keep"]
    await p.close()


async def test_one_owner_per_data_dir(platform, config):
    with pytest.raises(DataDirLocked, match="is in use by process"):
        LocalPlatform(config)


def test_a_corrupt_registry_stops_startup_and_is_not_overwritten(config, data_dir):
    if config["storage.url"]:
        pytest.skip("the embedded store's file; PostgreSQL keeps no registry file")
    data_dir.mkdir(parents=True)
    path = data_dir / REGISTRY_FILE
    path.write_text('{"functions": {"1": ')
    with pytest.raises(StoreCorrupt) as exc:
        LocalPlatform(config)
    assert str(path) in exc.value.message
    assert path.read_text() == '{"functions": {"1": '
    # The failed start released the data directory again.
    path.write_text(json.dumps({}))
    p = LocalPlatform(config, install_examples=False)
    p.lock.release()
