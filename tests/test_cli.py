"""The command line, as a user types it: output, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.local import REGISTRY_FILE, LocalPlatform

PY = "def handler(event, context):\n    return {'got': event}\n"


@pytest.fixture
def code_file(tmp_path) -> Path:
    f = tmp_path / "fn.py"
    f.write_text(PY)
    return f


def test_list_json_shows_bundled_examples_of_all_three_runtimes(cli):
    code, out, _ = cli("list", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["count"] == len(data["functions"]) >= 18
    assert {f["runtime"] for f in data["functions"]} == {"python", "nodejs", "go"}
    code, out, _ = cli("list")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "RUNTIME", "HANDLER", "VERSION", "TIMEOUT", "MEMORY", "UPDATED"]
    assert any(r.split()[:2] == ["hello-go", "go"] for r in rows)


def test_info_json_names_paths_settings_with_sources_and_runtimes(cli, data_dir, monkeypatch):
    monkeypatch.setenv("PORT", "9099")
    code, out, _ = cli("info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["paths"]["data_dir"] == str(data_dir.resolve())
    assert info["settings"]["server.port"] == {"value": 9099, "source": "env PORT"}
    assert info["settings"]["storage.data_dir"]["source"] == "flag"
    assert set(info["runtimes"]) == {"python", "nodejs", "go"}
    assert info["runtimes"]["python"]["available"] is True
    assert info["functions"] >= 18
    code, out, _ = cli("info")
    assert "env PORT" in out and "runtimes:" in out


def test_create_get_update_versions_rollback_delete(cli, code_file):
    code, out, _ = cli(
        "create", "--name", "echo", "--runtime", "node", "--file", str(code_file), "--env", "A=1", "--timeout", "7"
    )
    assert code == 0 and out.startswith("created echo (nodejs, version 1")
    code, out, _ = cli("get", "echo", "--json")
    fn = json.loads(out)["function"]
    assert (fn["runtime"], fn["timeout"], fn["environment"], fn["code"]) == ("nodejs", 7, {"A": "1"}, PY)

    code, out, _ = cli("update", "echo", "--env", "B=2", "--unset-env", "A", "--memory", "256")
    assert code == 0 and "version 2" in out
    code, out, _ = cli("get", fn["id"], "--json")
    fn2 = json.loads(out)["function"]
    assert (fn2["environment"], fn2["memory"], fn2["timeout"]) == ({"B": "2"}, 256, 7)

    code, out, _ = cli("versions", "echo")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1", "2"]
    code, out, _ = cli("rollback", "echo", "1", "--json")
    assert json.loads(out)["function"]["memory"] == 128

    code, out, _ = cli("delete", "echo", "--yes")
    assert code == 0 and out.strip() == "deleted echo"
    code, _, err = cli("get", "echo")
    assert code == 3 and err.strip() == "error: no function named 'echo'"


def test_an_invalid_function_names_every_bad_field_exits_2_and_stores_nothing(cli, code_file, data_dir):
    cli("list")
    before = (data_dir / REGISTRY_FILE).read_bytes()
    code, out, err = cli(
        "create",
        "--name",
        "Bad/Name",
        "--runtime",
        "ruby",
        "--file",
        str(code_file),
        "--timeout",
        "-1",
        "--env",
        "novalue",
    )
    assert code == 2 and out == ""
    assert "env: 'novalue' is not KEY=VALUE" in err
    code, out, err = cli(
        "create", "--name", "Bad/Name", "--runtime", "ruby", "--file", str(code_file), "--timeout", "-1"
    )
    assert code == 2
    for field in ("name:", "runtime:", "timeout:"):
        assert field in err
    assert "Traceback" not in err
    assert (data_dir / REGISTRY_FILE).read_bytes() == before


def test_a_missing_code_file_and_a_duplicate_name(cli, tmp_path, code_file):
    code, _, err = cli("create", "--name", "x", "--runtime", "python", "--file", str(tmp_path / "nope.py"))
    assert code == 2 and "cannot read" in err and "nope.py" in err
    code, _, err = cli("create", "--name", "hello-python", "--runtime", "python", "--file", str(code_file))
    assert code == 4 and "already exists" in err


def test_deploy_creates_then_updates_and_export_round_trips(cli, tmp_path, code_file):
    folder = tmp_path / "greeter"
    folder.mkdir()
    (folder / "handler.py").write_text(PY)
    (folder / "function.yaml").write_text("name: greeter\nruntime: python\ntimeout: 9\nenvironment: {X: y}\n")
    code, out, _ = cli("deploy", str(folder))
    assert code == 0 and out.startswith("created greeter")
    (folder / "function.yaml").write_text("name: greeter\nruntime: python\ntimeout: 11\n")
    code, out, _ = cli("deploy", str(folder))
    assert code == 0 and out.startswith("updated greeter") and "version 2" in out

    target = tmp_path / "out"
    code, out, _ = cli("export", "greeter", str(target))
    assert code == 0
    manifest = yaml.safe_load((target / "function.yaml").read_text())
    assert (manifest["name"], manifest["timeout"], manifest["file"]) == ("greeter", 11, "handler.py")
    assert (target / "handler.py").read_text() == PY
    code, _, err = cli("export", "greeter", str(target))
    assert code == 2 and "--force" in err
    assert cli("export", "greeter", str(target), "--force")[0] == 0


def test_deploy_of_a_bad_folder_names_the_problem(cli, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    code, _, err = cli("deploy", str(folder))
    assert code == 2 and "function.yaml: is missing" in err
    (folder / "function.yaml").write_text("name: bad\nruntime: python\nlanguage: py\n")
    code, _, err = cli("deploy", str(folder))
    assert code == 2 and "language: is not a known key" in err
    (folder / "function.yaml").write_text("name: bad\nruntime: python\n")
    code, _, err = cli("deploy", str(folder))
    assert code == 2 and "handler.py" in err and "file" in err


def test_delete_without_a_terminal_needs_yes(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))
    code, _, err = cli("delete", "hello-python")
    assert code == 2 and "--yes" in err
    assert cli("get", "hello-python")[0] == 0


def test_a_held_data_dir_says_who_holds_it(cli, config):
    holder = LocalPlatform(config, command="cloudfn serve")
    try:
        code, _, err = cli("list")
    finally:
        holder.lock.release()
    assert code == 5 and "is in use by process" in err and "(cloudfn serve)" in err


def test_a_corrupt_store_exits_5_naming_the_file_untouched(cli, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / REGISTRY_FILE).write_text("{not json")
    code, _, err = cli("list")
    assert code == 5 and str(data_dir / REGISTRY_FILE) in err
    assert (data_dir / REGISTRY_FILE).read_text() == "{not json"


def test_a_bad_config_file_exits_2_naming_file_and_key(cli, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("runtime:\n  max_concurent: 3\n")
    code, _, err = cli("--config", str(conf), "list")
    assert code == 2 and str(conf) in err and "runtime.max_concurent" in err


def test_invoke_rejects_bad_json_before_running_anything(cli):
    code, _, err = cli("invoke", "hello-python", "--event", "{oops")
    assert code == 2 and "--event: is not valid JSON" in err
    code, _, err = cli("invoke", "hello-python", "--context", '{"a": 1}')
    assert code == 2 and "context" in err


def test_the_installed_entry_point_and_usage_errors():
    exe = Path(sys.executable).with_name("cloudfn")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("cloudfn ")
    r = subprocess.run([str(exe), "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice: 'frobnicate'" in r.stderr and "Traceback" not in r.stderr
