"""Multi-file functions through PlatformAPI, the same for LocalPlatform and RemotePlatform over a
real `cloudfn serve`: files come back exactly, updates replace the set, versions and rollback
cover every file, every bad path is named and nothing is stored, and an invoke imports them."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import InvalidInput, NotFound
from core.funcfiles import MAX_FILE_BYTES, MAX_FILES, shown_path

CODE = (
    "import os\nimport helper\nfrom lib.util import twice\n"
    "def handler(event, context):\n"
    "    here = os.path.dirname(__file__)\n"
    "    return [helper.WORD, twice(event['n']), open(os.path.join(here, 'data', 'x.txt')).read()]\n"
)
FILES = {
    "helper.py": "WORD = 'héllo ✓'\r\n",  # non-ASCII and CRLF come back byte for byte
    "lib/__init__.py": "",
    "lib/util.py": "def twice(n):\n    return 2 * n\n",
    "data/x.txt": "line one\n\ttabbed\n",
    "ünïcode folder/ñame.md": "# notes\n",
}


def spec(name: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": CODE, "files": FILES, **kw}


def fields(exc: InvalidInput) -> set[str]:
    return {e.field for e in exc.errors}


@pytest.mark.executes
async def test_files_come_back_exactly_and_an_invoke_imports_them(platform, name):
    fn = await platform.create_function(spec(name))
    assert fn.files == FILES
    assert (await platform.get_function(fn.id)).files == FILES
    assert (await platform.get_function(name)).files == FILES
    # a list names the files with their sizes; their texts come with the function alone
    listed = {f.id: f for f in await platform.list_functions()}
    assert listed[fn.id].files == {} and not listed[fn.id].complete
    assert listed[fn.id].file_sizes == {p: len(t.encode()) for p, t in FILES.items()}
    assert listed[fn.id].code == CODE and listed[fn.id].version == fn.version
    assert (await platform.get_function(fn.id)).complete
    res = await platform.invoke(name, {"n": 21})
    assert res.success, res.error
    assert res.result == ["héllo ✓", 42, "line one\n\ttabbed\n"]


@pytest.mark.executes
async def test_a_function_without_files_keeps_working_alone(platform, name):
    fn = await platform.create_function(
        {"name": name, "runtime": "python", "code": "def handler(e, c):\n    return 'alone'\n"}
    )
    assert fn.files == {}
    assert (await platform.invoke(name, {})).result == "alone"


@pytest.mark.executes
async def test_update_replaces_the_whole_set_absent_keeps_it_empty_clears_it(platform, name):
    await platform.create_function(spec(name))
    kept = await platform.update_function(name, {"timeout": 7})
    assert kept.files == FILES and kept.version == 2
    smaller = {
        "helper.py": "WORD = 'v3'\n",
        "lib/__init__.py": "",
        "lib/util.py": "def twice(n):\n    return n\n",
        "data/x.txt": "new\n",
    }
    replaced = await platform.update_function(name, {"files": smaller})
    assert replaced.files == smaller and replaced.version == 3
    assert (await platform.invoke(name, {"n": 5})).result == ["v3", 5, "new\n"]
    cleared = await platform.update_function(name, {"files": {}, "code": "def handler(e, c):\n    return 0\n"})
    assert cleared.files == {}


@pytest.mark.executes
async def test_versions_and_rollback_cover_every_file(platform, name):
    await platform.create_function(spec(name))
    await platform.update_function(name, {"files": {**FILES, "helper.py": "WORD = 'second'\n"}})
    await platform.update_function(name, {"files": {}, "code": "def handler(e, c):\n    return 'third'\n"})
    versions = await platform.function_versions(name)
    assert [v.files for v in versions] == [FILES, {**FILES, "helper.py": "WORD = 'second'\n"}, {}]
    back = await platform.rollback_function(name, 1)
    assert (back.version, back.files, back.code) == (4, FILES, CODE)
    assert (await platform.invoke(name, {"n": 1})).result == ["héllo ✓", 2, "line one\n\ttabbed\n"]
    with pytest.raises(NotFound):
        await platform.rollback_function(name, 99)


HOSTILE = {
    "../escape.py": "x",
    "/etc/cron.d/x": "x",
    "a\\b.py": "x",
    "a//b.py": "x",
    "./here.py": "x",
    "bell\x07.py": "x",
    "handler.py": "x",
    "function.yaml": "x",
    ".cloudfn-start": "x",
    "bin.dat": "\x00\x01",
    "big.txt": "x" * (MAX_FILE_BYTES + 1),
}


async def test_every_bad_path_is_named_and_nothing_is_stored(platform, name):
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(spec(name, files={**HOSTILE, "fine.py": ""}))
    assert fields(info.value) == {f"files.{shown_path(p)}" for p in HOSTILE}
    assert "files.bell\\u0007.py" in fields(info.value)  # escaped: safe to print
    text = info.value.message
    for words in (
        "'..'",
        "absolute",
        "backslash",
        "empty part",
        "control",
        "handler file",
        "reserved",
        "text only",
        f"{MAX_FILE_BYTES} bytes",
    ):
        assert words in text, words
    assert name not in {f.name for f in await platform.list_functions()}


async def test_too_many_files_is_named_with_the_limit(platform, name):
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(spec(name, files={f"f{i}.txt": "" for i in range(MAX_FILES + 1)}))
    assert fields(info.value) == {"files"} and str(MAX_FILES) in info.value.message


async def test_a_bad_update_changes_nothing(platform, name):
    fn = await platform.create_function(spec(name))
    with pytest.raises(InvalidInput) as info:
        await platform.update_function(name, {"files": {"../../x": "y"}})
    assert fields(info.value) == {"files.../../x"}
    # a new runtime whose handler file is one of the files: the merged function is checked
    with pytest.raises(InvalidInput) as info:
        await platform.update_function(
            name, {"runtime": "nodejs", "code": "exports.handler = () => 1;\n", "files": {**FILES, "index.js": "x"}}
        )
    assert fields(info.value) == {"files.index.js"}
    with pytest.raises(InvalidInput) as info:
        await platform.update_function(name, {"files": None})
    assert fields(info.value) == {"files"}
    again = await platform.get_function(name)
    assert (again.version, again.files) == (fn.version, FILES)


@pytest.mark.executes
async def test_a_subfolder_handler_round_trips_and_rolls_back(platform, name):
    code = "import util\ndef handler(event, context):\n    return [util.WHERE, open('src/util.py').read()]\n"
    fn = await platform.create_function(
        {
            "name": name,
            "runtime": "python",
            "code": code,
            "handler_file": "src/main.py",
            "files": {"src/util.py": "WHERE = 'src'\n"},
        }
    )
    assert fn.handler_file == "src/main.py"
    assert (await platform.get_function(name)).handler_file == "src/main.py"
    assert (await platform.invoke(name, {})).result == ["src", "WHERE = 'src'\n"]
    top = await platform.update_function(
        name, {"handler_file": "", "files": {"util.py": "WHERE = 'top'\n", "src/util.py": "x\n"}}
    )
    assert top.handler_file == "" and (await platform.invoke(name, {})).result == ["top", "x\n"]
    await platform.rollback_function(name, 1)
    assert (await platform.get_function(name)).handler_file == "src/main.py"
    assert (await platform.invoke(name, {})).result == ["src", "WHERE = 'src'\n"]
    with pytest.raises(InvalidInput) as exc:
        await platform.update_function(name, {"handler_file": "../main.py"})
    assert fields(exc.value) == {"handler_file"}


async def test_events_name_the_files_and_a_plain_function_lists_whole(platform, name):
    """function.created/updated carry names and sizes, never the texts (up to 5 MiB each)."""
    stream = platform.events({"function.updated"})
    first = asyncio.ensure_future(anext(stream))
    try:
        fn = await platform.create_function(spec(name))
        for i in range(50):  # the subscription starts with the first read: update until it sees one
            await platform.update_function(name, {"timeout": 5 + i})
            done, _ = await asyncio.wait({first}, timeout=0.2)
            if done:
                break
        ev = await asyncio.wait_for(first, 10)
        assert ev.data["id"] == fn.id and "files" not in ev.data
        assert ev.data["file_sizes"] == {p: len(t.encode()) for p, t in FILES.items()}
        assert ev.data["code"] == CODE
    finally:
        first.cancel()
        await stream.aclose()
    plain = await platform.create_function(
        {"name": name + "-plain", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"}
    )
    listed = {f.id: f for f in await platform.list_functions()}
    assert listed[plain.id].complete and listed[plain.id].file_sizes == {}
    doc = listed[plain.id].to_doc()
    assert doc["files"] == {} and "file_sizes" not in doc
    # a client sending a listed function back (the seed's clients echo what they read) changes no file
    back = await platform.update_function(fn.id, {**listed[fn.id].to_doc(), "description": "echoed"})
    assert back.files == FILES and back.description == "echoed"
