"""Attacks through files: deploy reading what a function folder links to, export writing
through links. Run through the real `cloudfn` command line, as a user would meet them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRET = "SECRET-TOKEN-5f0e1d"
PY = "def handler(event, context):\n    return {'ok': True}\n"


def cloudfn(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(data_dir), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def folder(root: Path, manifest: dict | None = None, code: str | None = PY) -> Path:
    d = root / "fn"
    d.mkdir()
    (d / "function.yaml").write_text(yaml.safe_dump(manifest or {"name": "victim", "runtime": "python"}))
    if code is not None:
        (d / "handler.py").write_text(code)
    return d


@pytest.fixture
def secret(tmp_path) -> Path:
    s = tmp_path / "server.token"
    s.write_text(SECRET + "\n")
    return s


def assert_refused(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def assert_nothing_stored(data_dir: Path) -> None:
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
            assert b"root:" not in path.read_bytes(), path


def test_a_symlinked_code_file_is_refused_and_the_target_never_read(tmp_path, data_dir, secret):
    d = folder(tmp_path, code=None)
    (d / "handler.py").symlink_to(secret)
    r = cloudfn(data_dir, "deploy", str(d))
    assert_refused(r, "handler.py", "symlink")
    assert SECRET not in r.stdout + r.stderr
    assert_nothing_stored(data_dir)
    assert cloudfn(data_dir, "get", "victim").returncode == 3


def test_a_symlinked_function_yaml_is_refused(tmp_path, data_dir):
    real = tmp_path / "elsewhere.yaml"
    real.write_text(yaml.safe_dump({"name": "victim", "runtime": "python"}))
    d = tmp_path / "fn"
    d.mkdir()
    (d / "handler.py").write_text(PY)
    (d / "function.yaml").symlink_to(real)
    assert_refused(cloudfn(data_dir, "deploy", str(d)), "function.yaml", "symlink")


def test_a_code_file_under_a_symlinked_subfolder_is_refused(tmp_path, data_dir, secret):
    d = folder(tmp_path, {"name": "victim", "runtime": "python", "file": "src/server.token"}, code=None)
    (d / "src").symlink_to(secret.parent)
    r = cloudfn(data_dir, "deploy", str(d))
    assert_refused(r, "src", "symlink")
    assert_nothing_stored(data_dir)


@pytest.mark.parametrize(
    "name, why",
    [
        ("/etc/passwd", "absolute path"),
        ("/etc/shadow", "absolute path"),
        ("../x.py", "leads out of the function folder"),
        ("sub/../../x.py", "leads out of the function folder"),
    ],
)
def test_a_file_outside_the_folder_is_refused(tmp_path, data_dir, name, why):
    (tmp_path / "x.py").write_text(PY)
    d = folder(tmp_path, {"name": "victim", "runtime": "python", "file": name})
    r = cloudfn(data_dir, "deploy", str(d))
    assert_refused(r, f"file: {name!r} is an" if why == "absolute path" else f"file: {name!r} leads", why)
    assert_nothing_stored(data_dir)


def test_a_fifo_as_code_is_refused_instead_of_hanging(tmp_path, data_dir):
    d = folder(tmp_path, code=None)
    os.mkfifo(d / "handler.py")
    assert_refused(cloudfn(data_dir, "deploy", str(d)), "handler.py", "not a regular file")


def test_the_folder_the_user_names_may_itself_be_a_link(tmp_path, data_dir):
    # The user chose that path: following it is what `cd` and `ls` would do. Links inside it
    # are what a hostile folder author plants, and those are refused above.
    d = folder(tmp_path)
    link = tmp_path / "link-to-fn"
    link.symlink_to(d)
    r = cloudfn(data_dir, "deploy", str(link))
    assert r.returncode == 0, r.stderr
    assert "created victim" in r.stdout


def test_a_plain_folder_still_deploys_with_a_file_in_a_subfolder(tmp_path, data_dir):
    d = folder(tmp_path, {"name": "nested", "runtime": "python", "file": "src/main.py"}, code=None)
    (d / "src").mkdir()
    (d / "src" / "main.py").write_text(PY)
    r = cloudfn(data_dir, "deploy", str(d))
    assert r.returncode == 0, r.stderr
    r = cloudfn(data_dir, "get", "nested", "--json")
    assert "'ok': True" in r.stdout


@pytest.mark.parametrize("dangling", [True, False])
def test_export_does_not_write_through_a_symlinked_file(tmp_path, data_dir, dangling):
    target = tmp_path / "target.txt"
    if not dangling:
        target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "handler.py").symlink_to(target)
    for extra in ([], ["--force"]):
        r = cloudfn(data_dir, "export", "hello-python", str(out), *extra)
        assert_refused(r, "handler.py", "symlink")
    assert target.exists() is not dangling and (dangling or target.read_text() == "keep me")
    assert not (out / "function.yaml").exists()


@pytest.mark.parametrize("dangling", [True, False])
def test_export_does_not_write_into_a_symlinked_folder(tmp_path, data_dir, dangling):
    real = tmp_path / "real"
    if not dangling:
        real.mkdir()
    link = tmp_path / "out"
    link.symlink_to(real)
    assert_refused(cloudfn(data_dir, "export", "hello-python", str(link)), "out", "symlink")
    assert not real.exists() if dangling else list(real.iterdir()) == []


def test_export_then_deploy_round_trips(tmp_path, data_dir):
    out = tmp_path / "out"
    r = cloudfn(data_dir, "export", "hello-python", str(out))
    assert r.returncode == 0, r.stderr
    assert cloudfn(data_dir, "export", "hello-python", str(out)).returncode == 2  # no --force
    assert cloudfn(data_dir, "export", "hello-python", str(out), "--force").returncode == 0
    assert cloudfn(data_dir, "deploy", str(out)).returncode == 0
