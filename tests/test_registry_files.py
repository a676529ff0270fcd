"""How a function's files are stored: by content hash beside the code, never inline in the
registry, pruned with their versions, and a hand-edited store holding a hostile path can neither
write outside a folder when invoked nor when exported."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.bundle import export_bundle
from core.errors import InvalidInput
from core.local import CODE_DIR, REGISTRY_FILE, LocalPlatform
from core.models import ErrorType

PY = "import helper\ndef handler(event, context):\n    return helper.X\n"


@pytest.fixture
async def platform(config):
    p = LocalPlatform(config, install_examples=False)
    yield p
    await p.close()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_files_are_stored_by_hash_not_inline(platform, data_dir):
    big = "# " + "x" * 50_000 + "\n"
    fn = await platform.create_function(
        {"name": "f", "runtime": "python", "code": PY, "files": {"helper.py": "X = 1\n", "big.txt": big}}
    )
    registry = (data_dir / REGISTRY_FILE).read_text()
    assert "x" * 1000 not in registry and "X = 1" not in registry
    doc = next(iter(json.loads(registry)["functions"].values()))
    assert doc["files_sha256"] == {"helper.py": sha("X = 1\n"), "big.txt": sha(big)}
    folder = data_dir / CODE_DIR / fn.id
    assert (folder / sha(big)).read_text() == big
    # a version that changes one file stores one new file; the unchanged one is shared
    await platform.update_function("f", {"files": {"helper.py": "X = 2\n", "big.txt": big}})
    assert sorted(p.name for p in folder.iterdir()) == sorted({sha(PY), sha(big), sha("X = 1\n"), sha("X = 2\n")})


async def test_pruned_versions_take_their_files_with_them(config, data_dir):
    p = LocalPlatform(config, install_examples=False)
    p.registry.max_versions = 2
    try:
        fn = await p.create_function({"name": "f", "runtime": "python", "code": PY, "files": {"helper.py": "X = 0\n"}})
        for i in range(1, 4):
            await p.update_function("f", {"files": {"helper.py": f"X = {i}\n"}})
        folder = data_dir / CODE_DIR / fn.id
        assert sorted(p_.name for p_ in folder.iterdir()) == sorted({sha(PY), sha("X = 2\n"), sha("X = 3\n")})
        assert [v.files["helper.py"] for v in await p.function_versions("f")] == ["X = 2\n", "X = 3\n"]
    finally:
        await p.close()


async def test_a_damaged_file_is_a_clear_error(platform, data_dir):
    fn = await platform.create_function(
        {"name": "f", "runtime": "python", "code": PY, "files": {"helper.py": "X = 1\n"}}
    )
    (data_dir / CODE_DIR / fn.id / sha("X = 1\n")).write_text("X = 666\n")
    platform.registry._by_id = None  # the next read comes from disk
    with pytest.raises(Exception, match="does not match its hash"):
        await platform.get_function("f")


async def test_a_tampered_store_path_never_leaves_the_folder(config, data_dir, tmp_path):
    p = LocalPlatform(config, install_examples=False)
    fn = await p.create_function({"name": "f", "runtime": "python", "code": PY, "files": {"helper.py": "X = 1\n"}})
    await p.close()
    # someone with write access to registry.json points a file at a path outside
    target = tmp_path / "outside.txt"
    evil = f"../../../../../../../../..{target}"
    store = json.loads((data_dir / REGISTRY_FILE).read_text())
    for table in ("functions", "versions"):
        for doc in store[table].values():
            doc["files_sha256"][evil] = sha("X = 1\n")
    (data_dir / REGISTRY_FILE).write_text(json.dumps(store))

    p = LocalPlatform(config, install_examples=False)
    try:
        loaded = await p.get_function("f")
        assert evil in loaded.files
        res = await p.invoke("f", {})
        assert not res.success and res.error_type == ErrorType.COMPILE_ERROR
        assert "cannot be laid out" in res.error
        out = tmp_path / "export"
        with pytest.raises(InvalidInput) as info:
            export_bundle(loaded, out)
        assert f"files.{evil}" in {e.field for e in info.value.errors}
        assert not target.exists() and not (out / "function.yaml").exists()
        assert fn.id == loaded.id
    finally:
        await p.close()
