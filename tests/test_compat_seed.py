"""Bringing functions from the original platform as they are (issue 14): its names, through every
command and onto disk; its data folder, imported; its config files, loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from test_config import ORIGINAL_CONFIG_YAML

PY = "def handler(event, context):\n    return {'hi': event.get('who'), 'fn': context['function_name']}\n"
# Names the original accepts and its users have: its own stored example, capitals, spaces, scripts.
SCRIPT_NAMES = ["方法", "My Function", "Test_Go", "Привет мир", "مرحبا بالعالم", "v1.2 beta", "データ処理"]


@pytest.fixture
def code_file(tmp_path) -> Path:
    f = tmp_path / "fn.py"
    f.write_text(PY)
    return f


def _names_on_disk(root: Path) -> set[str]:
    return {p for _, dirs, files in os.walk(root) for p in (*dirs, *files)}


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_a_name_in_any_script_works_in_every_command_and_never_reaches_a_path(cli, code_file, data_dir, tmp_path, name):
    code, out, err = cli("create", "--name", name, "--runtime", "python", "--file", str(code_file))
    assert code == 0, err
    assert out.startswith(f"created {name} (python")
    code, out, _ = cli("get", name, "--json")
    fn = json.loads(out)["function"]
    assert fn["name"] == name
    code, out, err = cli("invoke", name, "--event", '{"who": "you"}', "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["result"] == {"hi": "you", "fn": name} and res["function_name"] == name
    assert cli("update", name, "--timeout", "9")[0] == 0
    assert json.loads(cli("get", fn["id"], "--json")[1])["function"]["timeout"] == 9

    export_dir = tmp_path / "exported"  # the user names the folder; cloudfn never derives one from the name
    assert cli("export", name, str(export_dir))[0] == 0
    assert yaml.safe_load((export_dir / "function.yaml").read_text(encoding="utf-8"))["name"] == name
    code, out, _ = cli("deploy", str(export_dir))
    assert code == 0 and out.startswith(f"updated {name}")

    # Folders are keyed by id: the name is in no file or folder name under the data directory.
    assert not [p for p in _names_on_disk(data_dir) if name in p]
    assert fn["id"] in _names_on_disk(data_dir)
    code, out, _ = cli("delete", name, "--yes")
    assert code == 0 and out.strip() == f"deleted {name}"


@pytest.mark.parametrize(
    "name, why",
    [
        ("...", "must not be only dots"),
        (" lead", "must not start or end with a space"),
        ("a/b", "must not contain '/'"),
        ("zero\u200bwidth", "invisible character (U+200B ZERO WIDTH SPACE)"),
        ("bell\x07", "control character (U+0007"),
        ("x" * 65, "is 65 characters long; the limit is 64"),
    ],
)
def test_a_rejected_name_exits_2_saying_why_and_how_to_fix(cli, code_file, name, why):
    code, out, err = cli("create", "--name", name, "--runtime", "python", "--file", str(code_file))
    assert code == 2 and out == ""
    assert "name:" in err and why in err and "Traceback" not in err


def test_names_are_unique_without_regard_to_case(cli, code_file):
    assert cli("create", "--name", "My Function", "--runtime", "python", "--file", str(code_file))[0] == 0
    code, _, err = cli("create", "--name", "my function", "--runtime", "python", "--file", str(code_file))
    assert code == 4
    assert "'my function' already exists ('My Function': names are unique without regard to case)" in err
    # Found in any case; a rename to another case of its own name is no conflict.
    assert json.loads(cli("get", "MY FUNCTION", "--json")[1])["function"]["name"] == "My Function"
    code, out, _ = cli("logs", "--function", "my function", "--json")
    assert code == 0 and any(rec["function"] == "My Function" for rec in map(json.loads, out.splitlines()))
    code, out, _ = cli("update", "my function", "--name", "MY FUNCTION")
    assert code == 0 and out.startswith("updated MY FUNCTION")
    code, out, _ = cli("create", "--name", "Straße", "--runtime", "python", "--file", str(code_file))
    code, _, err = cli("create", "--name", "STRASSE", "--runtime", "python", "--file", str(code_file))
    assert code == 4  # casefold, not lower(): ß is ss


# -- import of the original's data folder ------------------------------------------------------
GO_USER_CODE = (
    "func handler(event interface{}, context map[string]string) interface{} {\n"
    '    return map[string]interface{}{"message": "Hello World"}\n}\n'
)
GO_ON_DISK = 'package main\n\nimport (\n    "encoding/json"\n    "fmt"\n)\n\n' + GO_USER_CODE


def write_original_data_folder(root: Path) -> Path:
    """A data folder as the original writes it: functions.json (its Function structs through
    encoding/json: every field, RFC 3339 times with an offset) and a folder per id with the code."""
    root.mkdir(parents=True)
    entries = [
        {
            "id": "fn_1717000000000000001",
            "name": "方法",
            "runtime": "python",
            "code": PY,
            "handler": "handler",
            "environment": {"GREETING": "你好"},
            "timeout": 10,
            "memory": 256,
            "created_at": "2024-05-29T10:00:00.123456789+08:00",
            "updated_at": "2024-05-29T10:00:00.123456789+08:00",
        },
        # Zero values: the defaults. The index has no code: it comes from the function's folder.
        {
            "id": "fn_1717000000000000002",
            "name": "Test_Go",
            "runtime": "go",
            "code": "",
            "handler": "",
            "environment": None,
            "timeout": 0,
            "memory": 0,
            "created_at": "2024-05-29T10:01:00+08:00",
            "updated_at": "2024-05-29T10:01:00+08:00",
        },
        {
            "id": "fn_1717000000000000003",
            "name": "hello node",
            "runtime": "nodejs",
            "code": "async function handler(event, context) {\n  return {statusCode: 200, body: 'hi'};\n}\n",
            "handler": "handler",
            "environment": {},
            "timeout": 30,
            "memory": 128,
            "created_at": "2024-05-29T10:02:00+08:00",
            "updated_at": "2024-05-29T10:02:00+08:00",
        },
        # Broken: a runtime cloudfn does not have.
        {
            "id": "fn_1717000000000000004",
            "name": "legacy ruby",
            "runtime": "ruby",
            "code": "puts 1",
            "handler": "h",
            "environment": None,
            "timeout": 30,
            "memory": 128,
            "created_at": "2024-05-29T10:03:00+08:00",
            "updated_at": "2024-05-29T10:03:00+08:00",
        },
        # Broken: the original allowed it, cloudfn's names are path segments.
        {
            "id": "fn_1717000000000000005",
            "name": "a/b",
            "runtime": "python",
            "code": PY,
            "handler": "handler",
            "environment": None,
            "timeout": 30,
            "memory": 128,
            "created_at": "2024-05-29T10:04:00+08:00",
            "updated_at": "2024-05-29T10:04:00+08:00",
        },
    ]
    (root / "functions.json").write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    files = {
        "1": ("main.py", PY),
        "2": ("main.go", GO_ON_DISK),
        "3": ("index.js", entries[2]["code"]),
        "5": ("main.py", PY),
    }
    for n, (fname, text) in files.items():
        d = root / f"fn_171700000000000000{n}"
        d.mkdir()
        (d / fname).write_text(text, encoding="utf-8")
    return root


def test_import_of_the_originals_data_folder_twice(cli, tmp_path):
    folder = write_original_data_folder(tmp_path / "backend" / "data")

    code, out, _ = cli("import", str(folder), "--dry-run")
    assert code == 2
    assert "would create 'Test_Go' [fn_1717000000000000002]" in out
    assert out.splitlines()[-1] == "dry run, nothing changed: 3 would create, 0 would update, 0 unchanged, 2 failed"
    assert cli("get", "方法")[0] == 3  # the dry run created nothing

    code, out, _ = cli("import", str(folder))
    assert code == 2  # failures make the command fail, after the rest imported
    lines = out.splitlines()
    assert lines[-1] == "3 created, 0 updated, 0 unchanged, 2 failed"
    failed = [line for line in lines if line.startswith("failed")]
    assert "'legacy ruby' [fn_1717000000000000004]: runtime must be one of python, nodejs, go" in failed[0]
    assert "'a/b' [fn_1717000000000000005]: name must not contain '/'" in failed[1]
    assert "rename it in functions.json" in failed[1]

    fn = json.loads(cli("get", "方法", "--json")[1])["function"]
    assert (fn["runtime"], fn["handler"], fn["code"], fn["timeout"], fn["memory"], fn["environment"]) == (
        "python",
        "handler",
        PY,
        10,
        256,
        {"GREETING": "你好"},
    )
    go = json.loads(cli("get", "Test_Go", "--json")[1])["function"]
    assert (go["code"], go["handler"], go["timeout"], go["memory"], go["environment"]) == (
        GO_ON_DISK,
        "handler",
        30,
        128,
        {},
    )
    code, out, _ = cli("invoke", "方法", "--event", '{"who": "me"}', "--json")
    assert code == 0 and json.loads(out)["result"] == {"hi": "me", "fn": "方法"}

    code, out, _ = cli("import", str(folder))
    assert out.splitlines()[-1] == "0 created, 0 updated, 3 unchanged, 2 failed"
    assert json.loads(cli("versions", "方法", "--json")[1])["count"] == 1  # no new version

    # A change in the original's folder is carried over, and only it.
    entries = json.loads((folder / "functions.json").read_text(encoding="utf-8"))
    entries[0]["timeout"] = 20
    (folder / "functions.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    code, out, _ = cli("import", str(folder))
    assert "updated      '方法' [fn_1717000000000000001]: timeout" in out
    assert out.splitlines()[-1] == "0 created, 1 updated, 2 unchanged, 2 failed"


def test_import_of_a_folder_without_functions_json_says_what_to_name(cli, tmp_path):
    code, _, err = cli("import", str(tmp_path))
    assert code == 2 and "has no functions.json" in err and "Traceback" not in err
    (tmp_path / "functions.json").write_text("{not json")
    code, _, err = cli("import", str(tmp_path))
    assert code == 2 and "functions.json: is not valid JSON" in err


def test_import_json_output_and_duplicate_names_in_the_folder(cli, tmp_path):
    tmp_path.joinpath("functions.json").write_text(
        json.dumps(
            [
                {"id": "fn_1", "name": "Same", "runtime": "python", "code": PY},
                {"id": "fn_2", "name": "same", "runtime": "python", "code": PY},
            ]
        )
    )
    code, out, _ = cli("import", str(tmp_path), "--json")
    assert code == 2
    results = json.loads(out)["results"]
    assert [r["action"] for r in results] == ["created", "failed"]
    assert "fn_1 in this folder has the same name" in results[1]["reason"]


# -- the original's config file -----------------------------------------------------------------
def test_the_originals_config_file_reports_ignored_keys_on_stderr_and_in_info(cli, tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text(ORIGINAL_CONFIG_YAML.replace('"./data"', str(tmp_path / "seed-data")))
    code, out, err = cli("--config", str(f), "info")
    assert code == 0
    assert err.count("ignored (not used by cloudfn): server.write_timeout, server.idle_timeout") == 1
    assert "ignored (not used by cloudfn): server.write_timeout" in out
    code, out, _ = cli("--config", str(f), "info", "--json")
    info = json.loads(out)
    assert "security.jwt_expiry" in info["ignored_config"]
    assert info["settings"]["server.header_timeout"]["value"] == 30.0
    assert info["settings"]["runtime.default_memory"]["value"] == 256
