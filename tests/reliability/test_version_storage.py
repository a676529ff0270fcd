"""Stored versions: each version's code kept once, in a file named by its hash; at most
`storage.max_versions` per function; delete leaves nothing behind; registries of the earlier
format (code inline in every version) are moved over without losing a version."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_config
from core.errors import NotFound
from core.local import CODE_DIR, REGISTRY_FILE, LocalPlatform
from core.models import Function
from core.registry import FUNCTIONS, VERSIONS
from core.storage import TinyStore

REPO = Path(__file__).resolve().parents[2]
HEAD = "def handler(event, context):\n    return {'v': %d}\n"
BIG = "PAD = '" + "x" * 1_000_000 + "'\n"  # ~1 MB, under the 1024 KiB code limit


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def cloudfn(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(data_dir), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def cfg(data_dir: Path, **settings):
    return load_config(flags={"storage.data_dir": str(data_dir), **settings})


async def test_thirty_updates_of_a_1mb_function_keep_the_registry_small(data_dir):
    p = LocalPlatform(cfg(data_dir), install_examples=False)
    try:
        fn = await p.create_function({"name": "big", "runtime": "python", "code": HEAD % 0 + BIG})
        for i in range(1, 31):
            await p.update_function("big", {"code": HEAD % i + BIG})
        registry = data_dir / REGISTRY_FILE
        # Inline, every version's code was rewritten on each write: 32 MB here before.
        assert registry.stat().st_size < 256 * 1024
        await p.create_function({"name": "small", "runtime": "python", "code": HEAD % 1})
        assert registry.stat().st_size < 256 * 1024
        versions = await p.function_versions("big")
        assert [v.version for v in versions] == list(range(12, 32))  # the default keeps 20
        assert all(v.code == HEAD % (v.version - 1) + BIG for v in versions)
        files = sorted(f.name for f in (data_dir / CODE_DIR / fn.id).iterdir())
        assert files == sorted(sha(v.code) for v in versions)  # pruned versions' code is gone
        assert (await p.get_function("big")).code == HEAD % 30 + BIG
    finally:
        await p.close()
    p = LocalPlatform(cfg(data_dir), install_examples=False)  # and it all reads back
    try:
        assert (await p.get_function("big")).code == HEAD % 30 + BIG
        assert len(await p.function_versions("big")) == 20
    finally:
        await p.close()


async def test_max_versions_prunes_the_oldest_and_rollback_reuses_stored_code(data_dir, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("storage:\n  max_versions: 3\n")
    config = load_config(conf, flags={"storage.data_dir": str(data_dir)})
    assert config["storage.max_versions"] == 3
    p = LocalPlatform(config, install_examples=False)
    try:
        fn = await p.create_function({"name": "f", "runtime": "python", "code": HEAD % 1})
        for i in range(2, 5):
            await p.update_function("f", {"code": HEAD % i})
        assert [v.version for v in await p.function_versions("f")] == [2, 3, 4]
        with pytest.raises(NotFound, match="no version 1"):
            await p.rollback_function("f", 1)
        back = await p.rollback_function("f", 2)
        assert (back.version, back.code) == (5, HEAD % 2)
        assert [v.version for v in await p.function_versions("f")] == [3, 4, 5]
        # Version 5 has version 2's code: one file for both, and 2's own entry gone.
        files = {f.name for f in (data_dir / CODE_DIR / fn.id).iterdir()}
        assert files == {sha(HEAD % 2), sha(HEAD % 3), sha(HEAD % 4)}
    finally:
        await p.close()


def test_max_versions_out_of_range_is_a_clear_config_error(data_dir, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("storage:\n  max_versions: 0\n")
    r = cloudfn(data_dir, "--config", str(conf), "list")
    assert r.returncode == 2 and "max_versions" in r.stderr and "Traceback" not in r.stderr


async def test_delete_removes_code_files_worker_folders_and_saved_events(data_dir):
    config = cfg(data_dir)
    p = LocalPlatform(config, install_examples=False)
    try:
        fn = await p.create_function({"name": "gone", "runtime": "python", "code": HEAD % 1})
        await p.update_function("gone", {"code": HEAD % 2})
        await p.save_event("gone", "sample", {"a": 1})
        assert (await p.invoke("gone", {})).success
        keep = await p.create_function({"name": "kept", "runtime": "python", "code": HEAD % 1})
        assert (config.work_dir / fn.id).is_dir() and (data_dir / CODE_DIR / fn.id).is_dir()
        await p.delete_function("gone")
        assert not (config.work_dir / fn.id).exists()
        assert not (data_dir / CODE_DIR / fn.id).exists()
        assert fn.id not in (data_dir / REGISTRY_FILE).read_text()
        assert (await p.get_function("kept")).code == HEAD % 1  # same code, its own file kept
        assert (data_dir / CODE_DIR / keep.id / sha(HEAD % 1)).is_file()
    finally:
        await p.close()


def old_format_registry(data_dir: Path, versions: int) -> Function:
    """A registry.json as cloudfn wrote it before code files: every version's code inline."""
    data_dir.mkdir(parents=True)
    store = TinyStore(data_dir / REGISTRY_FILE)
    fn = Function(name="old", runtime="python", code=HEAD % 1, timeout=1)
    store.insert(VERSIONS, fn.to_doc())
    for v in range(2, versions + 1):
        fn = fn.model_copy(update={"version": v, "code": HEAD % v, "timeout": v})
        store.insert(VERSIONS, fn.to_doc())
    store.insert(FUNCTIONS, fn.to_doc())
    store.upsert("meta", "key", {"key": "examples_installed", "value": True})
    store.close()
    return fn


async def test_an_old_format_registry_is_migrated_without_losing_a_version(data_dir):
    fn = old_format_registry(data_dir, versions=25)  # more than max_versions: none dropped on load
    p = LocalPlatform(cfg(data_dir), install_examples=False)
    try:
        versions = await p.function_versions("old")
        assert [(v.version, v.code, v.timeout) for v in versions] == [(v, HEAD % v, v) for v in range(1, 26)]
        raw = json.loads((data_dir / REGISTRY_FILE).read_text())
        assert all("code" not in d for t in (FUNCTIONS, VERSIONS) for d in raw[t].values())
        assert (await p.get_function("old")).code == HEAD % 25
        back = await p.rollback_function("old", 1)  # the first write prunes to max_versions
        assert (back.version, back.code) == (26, HEAD % 1)
        assert [v.version for v in await p.function_versions("old")] == list(range(7, 27))
        assert len(list((data_dir / CODE_DIR / fn.id).iterdir())) == 20
    finally:
        await p.close()


def test_the_cli_lists_and_rolls_back_a_migrated_registry(data_dir):
    old_format_registry(data_dir, versions=3)
    r = cloudfn(data_dir, "versions", "old", "--json")
    assert r.returncode == 0, r.stderr
    assert [v["version"] for v in json.loads(r.stdout)["versions"]] == [1, 2, 3]
    r = cloudfn(data_dir, "rollback", "old", "2", "--json")
    assert r.returncode == 0, r.stderr
    r = cloudfn(data_dir, "get", "old", "--json")
    got = json.loads(r.stdout)["function"]
    assert (got["version"], got["code"]) == (4, HEAD % 2)


def test_a_missing_code_file_stops_with_a_clear_message(data_dir):
    fn = old_format_registry(data_dir, versions=2)
    assert cloudfn(data_dir, "list").returncode == 0  # migrates
    (data_dir / CODE_DIR / fn.id / sha(HEAD % 2)).unlink()
    before = (data_dir / REGISTRY_FILE).read_bytes()
    r = cloudfn(data_dir, "list")
    assert r.returncode == 5 and "Traceback" not in r.stderr
    assert str(data_dir / CODE_DIR / fn.id / sha(HEAD % 2)) in r.stderr and "backup" in r.stderr
    assert (data_dir / REGISTRY_FILE).read_bytes() == before


def test_leftovers_of_a_crash_are_swept_at_start(data_dir):
    fn = old_format_registry(data_dir, versions=2)
    assert cloudfn(data_dir, "list").returncode == 0
    orphan = data_dir / CODE_DIR / "0f0f0f0f-dead-function"
    orphan.mkdir()
    (orphan / sha("x")).write_text("x")
    stray = data_dir / CODE_DIR / fn.id / f".{sha('y')}.tmp-1-2"
    stray.write_text("y")
    assert cloudfn(data_dir, "list").returncode == 0
    assert not orphan.exists() and not stray.exists()
    assert len(list((data_dir / CODE_DIR / fn.id).iterdir())) == 2
