"""Secrets inside functions, on a LocalPlatform with the real sandbox: each runtime reads its
secret as a file and a variable; a new value reaches the next invocation and no warm worker
serves the old one; a function that did not list a secret finds it nowhere."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hostile import HOLDER, HUNTER

from core.errors import Conflict, InvalidInput, NotFound
from core.local import LocalPlatform
from core.models import ErrorType

RUNTIMES = ["python", "nodejs", pytest.param("go", marks=pytest.mark.go)]
V1 = "first-Value-of-db-pw-8c1e"
V2 = "second-Value-of-db-pw-44aa"


@pytest.fixture
async def platform(config):
    p = LocalPlatform(config, install_examples=False)
    if not p.executor.sandbox.namespaces:
        await p.close()
        pytest.skip("secrets need the bwrap sandbox, which this host lacks")
    yield p
    await p.close()


def forms(v: str) -> list[str]:
    return [v, base64.b64encode(v.encode()).decode().rstrip("=")]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_file_and_variable_then_a_new_value_with_warm_workers(platform, runtime):
    await platform.set_secret("db-pw", V1)
    await platform.set_secret("unrelated", "not-for-this-function")
    await platform.create_function(
        {
            "name": f"holder-{runtime}",
            "runtime": runtime,
            "code": HOLDER[runtime],
            "secrets": ["db-pw"],
            "secret_env": {"DB_PW": "db-pw"},
            "max_concurrency": 3,
        }
    )
    first = await asyncio.gather(*(platform.invoke(f"holder-{runtime}", {}) for _ in range(3)))
    for r in first:
        assert r.success, r.error
        assert r.result == {"file": V1, "env": V1, "ls": ["db-pw"]}
    warm = await platform.invoke(f"holder-{runtime}", {})
    assert warm.success and not warm.cold_start and warm.result["file"] == V1
    assert platform.executor.stats()["warm_workers"] >= 1

    info = await platform.set_secret("db-pw", V2)
    assert info.used_by == [f"holder-{runtime}"]
    # set returned: every warm worker with the old value is gone already
    assert platform.executor.stats()["warm_workers"] == 0
    after = await asyncio.gather(*(platform.invoke(f"holder-{runtime}", {}) for _ in range(6)))
    for r in after:
        assert r.success, r.error
        assert r.result == {"file": V2, "env": V2, "ls": ["db-pw"]}


async def test_an_invocation_running_across_a_set_never_answers_with_the_old_value(platform):
    await platform.set_secret("slow-pw", V1)
    code = (
        "import time\ndef handler(event, context):\n    v = open('/run/secrets/slow-pw').read()\n"
        "    print('started', flush=True)\n    time.sleep(event.get('sleep', 0))\n    return v\n"
    )
    await platform.create_function({"name": "slow", "runtime": "python", "code": code, "secrets": ["slow-pw"]})
    assert (await platform.invoke("slow", {})).result == V1  # warm now
    events = platform.events({"invocation.started"})
    running = asyncio.ensure_future(platform.invoke("slow", {"sleep": 30}))
    async for _ in events:  # delivered once the invoking task waits on its warm worker's answer
        break
    await platform.set_secret("slow-pw", V2)
    res = await running
    assert not res.success and res.error_type == ErrorType.WORKER_CRASHED
    assert V1 not in str(res.result)
    assert (await platform.invoke("slow", {})).result == V2


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_function_that_did_not_list_a_secret_cannot_read_it(platform, runtime, data_dir):
    await platform.set_secret("db-pw", V1)
    await platform.create_function(
        {
            "name": "holder",
            "runtime": "python",
            "code": HOLDER["python"],
            "secrets": ["db-pw"],
            "secret_env": {"DB_PW": "db-pw"},
        }
    )
    assert (await platform.invoke("holder", {})).success  # a warm holder runs beside the hunter
    await platform.create_function(
        {"name": f"hunter-{runtime}", "runtime": runtime, "code": HUNTER[runtime], "environment": {"GREETING": "hi"}}
    )
    paths = [str(data_dir / "secrets.json"), str(data_dir / "secrets.key"), str(data_dir / "registry.json")]
    res = await platform.invoke(f"hunter-{runtime}", {"paths": paths})
    assert res.success, res.error
    assert res.result["read"] > 3  # it did read things (its own /proc, environment)
    dump = res.result["dump"] + res.logs
    for f in forms(V1):
        assert f not in dump


async def test_names_must_exist_and_a_held_secret_is_not_deleted(platform):
    with pytest.raises(NotFound) as info:  # a 404, as a request naming a missing function
        await platform.create_function(
            {
                "name": "f",
                "runtime": "python",
                "code": HOLDER["python"],
                "secrets": ["nope"],
                "secret_env": {"X_PW": "nada"},
            }
        )
    assert "'nope' (in secrets), 'nada' (in secret_env)" in info.value.message
    assert "cloudfn secrets set" in info.value.message
    with pytest.raises(InvalidInput) as bad:  # a bad shape is still reported first, per field
        await platform.create_function(
            {"name": "f", "runtime": "python", "code": HOLDER["python"], "secrets": ["../up"], "timeout": 0.5}
        )
    assert {e.field for e in bad.value.errors} == {"secrets", "timeout"}
    assert not await platform.list_functions()
    await platform.set_secret("db-pw", V1)
    await platform.create_function(
        {"name": "f", "runtime": "python", "code": HOLDER["python"], "secret_env": {"DB_PW": "db-pw"}}
    )  # held implicitly
    with pytest.raises(Conflict) as c:
        await platform.delete_secret("db-pw")
    assert "'f'" in c.value.message and "--force" in c.value.message
    deleted = await platform.delete_secret("db-pw", force=True)
    assert deleted.used_by == ["f"]
    res = await platform.invoke("f", {})
    assert not res.success and res.error_type == ErrorType.RUNTIME_UNAVAILABLE
    assert "db-pw" in res.error and "secrets set" in res.error


async def test_holders_skip_pre_started_sandboxes(config):
    config.settings["runtime.prewarm"].value = 1
    p = LocalPlatform(config, install_examples=False)
    try:
        if not p.executor.prewarm.specs:
            pytest.skip("no pre-started sandboxes on this host")
        await p.set_secret("db-pw", V1)
        fn = await p.create_function({"name": "g", "runtime": "python", "code": HOLDER["python"], "secrets": ["db-pw"]})
        assert not p.executor.prewarm.eligible(fn, "python")
        assert (await p.invoke("g", {})).result["file"] == V1
    finally:
        await p.close()
