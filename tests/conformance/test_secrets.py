"""Secrets through PlatformAPI: the same answers from LocalPlatform and from RemotePlatform over
a real `cloudfn serve` (the conftest's two platforms). No answer ever carries a value."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.secrets import SecretInfo

HOLDER = (
    "import os\ndef handler(event, context):\n"
    "    return {'file': open('/run/secrets/' + event['s']).read(), 'env': os.environ.get('PW')}\n"
)


async def _needs_sandbox(platform) -> None:
    info = await platform.info()
    if not info["protections"]["bwrap_namespaces"]:
        pytest.skip("secrets need the bwrap sandbox")


async def test_set_list_delete_and_no_value_in_any_answer(platform, name):
    value = f"v-{name}-Zq9"
    info = await platform.set_secret(f"{name}-s", value)
    assert isinstance(info, SecretInfo)
    assert (info.name, info.size, info.used_by) == (f"{name}-s", len(value), [])
    listed = {s.name: s for s in await platform.list_secrets()}
    assert listed[f"{name}-s"].size == len(value)
    assert value not in repr(await platform.list_secrets()) and value not in repr(info)
    gone = await platform.delete_secret(f"{name}-s")
    assert gone.name == f"{name}-s"
    assert f"{name}-s" not in {s.name for s in await platform.list_secrets()}
    with pytest.raises(NotFound):
        await platform.delete_secret(f"{name}-s")


async def test_bad_names_and_values_are_invalid_input(platform, name):
    for bad_name, bad_value, field in (
        ("../x", "value-1", "name"),
        ("a/b", "value-1", "name"),
        (f"{name}-ok", "", "value"),
        (f"{name}-ok", "x" * (64 * 1024 + 1), "value"),
    ):
        with pytest.raises(InvalidInput) as info:
            await platform.set_secret(bad_name, bad_value)
        assert [e.field for e in info.value.errors] == [field]
    with pytest.raises(NotFound):
        await platform.delete_secret("../x")


async def test_functions_name_existing_secrets_and_delete_is_refused_while_held(platform, name):
    with pytest.raises(NotFound) as missing:
        await platform.create_function(
            {"name": name, "runtime": "python", "code": HOLDER, "secrets": [f"{name}-missing"]}
        )
    assert f"'{name}-missing' (in secrets)" in missing.value.message
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(
            {"name": name, "runtime": "python", "code": HOLDER, "secret_env": {"PW": "../up"}}
        )
    assert [e.field for e in info.value.errors] == ["secret_env"]
    await platform.set_secret(f"{name}-s", "value-for-delete-test")
    fn = await platform.create_function(
        {"name": name, "runtime": "python", "code": HOLDER, "secret_env": {"PW": f"{name}-s"}}
    )
    assert (fn.secrets, fn.secret_env) == ([], {"PW": f"{name}-s"})
    listed = {s.name: s for s in await platform.list_secrets()}
    assert listed[f"{name}-s"].used_by == [name]
    with pytest.raises(Conflict):
        await platform.delete_secret(f"{name}-s")
    with pytest.raises(NotFound):
        await platform.update_function(name, {"secrets": [f"{name}-nope"]})
    await platform.update_function(name, {"secret_env": {}})
    await platform.delete_secret(f"{name}-s")


@pytest.mark.executes
async def test_invoke_reads_the_secret_and_history_masks_it(platform, name):
    await _needs_sandbox(platform)
    value = f"conf-{name}-value"
    await platform.set_secret(f"{name}-s", value)
    code = HOLDER.replace(
        "    return", "    print('the value is', open('/run/secrets/' + event['s']).read())\n    return"
    )
    await platform.create_function(
        {"name": name, "runtime": "python", "code": code, "secrets": [f"{name}-s"], "secret_env": {"PW": f"{name}-s"}}
    )
    res = await platform.invoke(name, {"s": f"{name}-s"})
    assert res.success, res.error
    assert res.result == {"file": value, "env": value}  # the caller's own answer is the function's
    await platform.set_secret(f"{name}-s", value + "-2")
    res2 = await platform.invoke(name, {"s": f"{name}-s"})
    assert res2.result == {"file": value + "-2", "env": value + "-2"}
    rec = await platform.get_invocation(res.invocation_id)
    assert rec.result == {"file": "***", "env": "***"} and "the value is ***" in rec.logs
    assert value not in rec.model_dump_json()
    logs = await platform.query_logs(function=name, limit=100)
    assert logs and value not in repr(logs)


@pytest.mark.key_file
async def test_rotate_key(platform, name):
    await platform.set_secret(f"{name}-s", "rotated-value-1")
    done = await platform.rotate_secrets_key()
    assert done["rotated"] >= 1 and "secrets.key" in done["key_source"]
    assert f"{name}-s" in {s.name for s in await platform.list_secrets()}
    await platform.delete_secret(f"{name}-s")


async def test_rollback_to_a_version_naming_a_deleted_secret_is_refused(platform, name):
    """A version that names a secret deleted since would only fail at its next start: rollback
    answers what update answers (NotFound naming each missing secret) and changes nothing."""
    await platform.set_secret(f"{name}-old", "value-for-rollback")
    await platform.create_function(
        {
            "name": name,
            "runtime": "python",
            "code": HOLDER,
            "secrets": [f"{name}-old"],
            "secret_env": {"PW": f"{name}-old"},
        }
    )
    current = await platform.update_function(name, {"secrets": [], "secret_env": {}})
    await platform.delete_secret(f"{name}-old")
    with pytest.raises(NotFound) as missing:
        await platform.rollback_function(name, 1)
    message = missing.value.message
    assert f"'{name}-old' (in secrets)" in message and f"'{name}-old' (in secret_env)" in message, message
    assert "version 1" in message and "cloudfn secrets set" in message, message
    after = await platform.get_function(name)
    assert (after.version, after.secrets, after.secret_env) == (current.version, [], {})
    await platform.set_secret(f"{name}-old", "value-for-rollback")
    back = await platform.rollback_function(name, 1)
    assert (back.secrets, back.secret_env) == ([f"{name}-old"], {"PW": f"{name}-old"})
    await platform.delete_function(name)
    await platform.delete_secret(f"{name}-old")
