"""`cloudfn deploy DIR` takes the whole folder and `cloudfn export` writes it back: .cloudfnignore,
the default skips, symlinks and limits named, and deploy -> export -> deploy identical."""

from __future__ import annotations

import json
import os

import yaml

from core.funcfiles import MAX_FILE_BYTES

CODE = (
    "import os, helper\nfrom lib.util import twice\n"
    "def handler(event, context):\n"
    "    here = os.path.dirname(__file__)\n"
    "    return [helper.WORD, twice(2), open(os.path.join(here, 'data', 'table.csv')).read()]\n"
)


def make_folder(root, name="multi"):
    d = root / name
    (d / "lib").mkdir(parents=True)
    (d / "data").mkdir()
    (d / "function.yaml").write_text(yaml.safe_dump({"name": name, "runtime": "python", "timeout": 9}))
    (d / "handler.py").write_text(CODE)
    (d / "helper.py").write_text("WORD = 'hi'\n")
    (d / "lib" / "__init__.py").write_text("")
    (d / "lib" / "util.py").write_text("def twice(n):\n    return n * 2\n")
    (d / "data" / "table.csv").write_text("a,b\n1,2\n")
    (d / "requirements.txt").write_text("# none yet\n")
    # left out by default, or by .cloudfnignore
    for skipped in (".git", "node_modules/left-pad", "__pycache__", ".venv/bin", "lib/__pycache__"):
        (d / skipped).mkdir(parents=True)
        (d / skipped / "junk").write_text("junk")
    (d / "notes.log").write_text("ignored by pattern\n")
    (d / "build").mkdir()
    (d / "build" / "out.bin").write_bytes(b"\x00\xff binary, ignored by folder pattern")
    (d / ".cloudfnignore").write_text("# comments work\n*.log\nbuild/\n")
    return d


def stored(cli, name) -> dict:
    code, out, err = cli("get", name, "--json")
    assert code == 0, err
    return json.loads(out)["function"]


def test_deploy_takes_the_folder_minus_ignored_and_invokes(cli, tmp_path):
    d = make_folder(tmp_path)
    code, out, err = cli("deploy", str(d))
    assert code == 0, err
    fn = stored(cli, "multi")
    assert sorted(fn["files"]) == ["data/table.csv", "helper.py", "lib/__init__.py", "lib/util.py", "requirements.txt"]
    assert fn["code"] == CODE and fn["timeout"] == 9
    code, out, err = cli("invoke", "multi", "--json")
    assert code == 0, err
    assert json.loads(out)["result"] == ["hi", 4, "a,b\n1,2\n"]


def test_deploy_export_deploy_is_identical(cli, tmp_path):
    d = make_folder(tmp_path)
    assert cli("deploy", str(d))[0] == 0
    first = stored(cli, "multi")
    out = tmp_path / "exported"
    code, _, err = cli("export", "multi", str(out))
    assert code == 0, err
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(["function.yaml", "handler.py", *first["files"]])
    assert (out / "lib" / "util.py").read_text() == first["files"]["lib/util.py"]
    # redeploying the export changes nothing but the version
    assert cli("deploy", str(out))[0] == 0
    second = stored(cli, "multi")
    keep = ("code", "files", "handler", "runtime", "timeout", "memory", "environment", "network", "description")
    assert {k: second[k] for k in keep} == {k: first[k] for k in keep}
    assert second["version"] == first["version"] + 1
    # an export over an existing one needs --force, and then rewrites every file
    (out / "lib" / "util.py").write_text("changed by hand\n")
    code, _, err = cli("export", "multi", str(out))
    assert code == 2 and "--force" in err
    assert cli("export", "multi", str(out), "--force")[0] == 0
    assert (out / "lib" / "util.py").read_text() == first["files"]["lib/util.py"]


def test_removing_a_file_from_the_folder_removes_it_from_the_function(cli, tmp_path):
    d = make_folder(tmp_path)
    assert cli("deploy", str(d))[0] == 0
    (d / "requirements.txt").unlink()
    assert cli("deploy", str(d))[0] == 0
    assert "requirements.txt" not in stored(cli, "multi")["files"]
    versions = cli("versions", "multi", "--json")
    assert versions[0] == 0


def test_a_symlink_inside_is_refused_by_name_unless_ignored(cli, tmp_path):
    d = make_folder(tmp_path)
    secret = tmp_path / "server.token"
    secret.write_text("TOKEN-123")
    (d / "lib" / "creds.txt").symlink_to(secret)
    (d / "linked-dir").symlink_to(tmp_path)
    code, out, err = cli("deploy", str(d))
    assert code == 2
    assert "files.lib/creds.txt" in err and "files.linked-dir" in err and "symlink" in err
    assert "TOKEN-123" not in out + err
    assert cli("get", "multi")[0] == 3  # nothing stored
    (d / ".cloudfnignore").write_text("*.log\nbuild/\nlib/creds.txt\nlinked-dir\n")
    code, _, err = cli("deploy", str(d))
    assert code == 0, err


def test_oversized_binary_and_too_many_files_are_named(cli, tmp_path):
    d = make_folder(tmp_path)
    (d / "big.txt").write_text("x" * (MAX_FILE_BYTES + 1))
    (d / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    os.mkfifo(d / "pipe")
    code, _, err = cli("deploy", str(d))
    assert code == 2
    assert f"big.txt is {MAX_FILE_BYTES + 1} bytes" in err and str(MAX_FILE_BYTES) in err
    assert "logo.png is not UTF-8 text" in err and ".cloudfnignore" in err
    assert "pipe is not a regular file" in err
    assert cli("get", "multi")[0] == 3


def test_files_in_function_yaml_are_refused(cli, tmp_path):
    d = make_folder(tmp_path)
    (d / "function.yaml").write_text(yaml.safe_dump({"name": "multi", "runtime": "python", "files": {"../x": "y"}}))
    code, _, err = cli("deploy", str(d))
    assert code == 2 and "files: is not a known key" in err


def test_a_file_name_with_terminal_escapes_is_shown_escaped(cli, tmp_path):
    d = make_folder(tmp_path)
    (d / "evil\x1b[2Jname.py").write_text("x = 1\n")
    code, _, err = cli("deploy", str(d))
    assert code == 2
    assert "\x1b" not in err and "evil\\u001b[2Jname.py" in err and "control" in err


def test_a_handler_in_a_subfolder_deploys_runs_and_exports_where_it_was(cli, tmp_path):
    d = tmp_path / "sub"
    (d / "src").mkdir(parents=True)
    (d / "function.yaml").write_text(yaml.safe_dump({"name": "sub", "runtime": "python", "file": "src/main.py"}))
    (d / "src" / "main.py").write_text(
        "import util\ndef handler(event, context):\n    return [util.WORD, open('src/table.csv').read()]\n"
    )
    (d / "src" / "util.py").write_text("WORD = 'beside'\n")
    (d / "src" / "table.csv").write_text("a,b\n")
    assert cli("deploy", str(d))[0] == 0
    first = stored(cli, "sub")
    assert first["handler_file"] == "src/main.py" and sorted(first["files"]) == ["src/table.csv", "src/util.py"]
    code, out, err = cli("get", "sub")
    assert code == 0 and any(line.split() == ["handler", "file", "src/main.py"] for line in out.splitlines()), out
    code, out, err = cli("invoke", "sub", "--json")
    assert code == 0, err
    assert json.loads(out)["result"] == ["beside", "a,b\n"]
    out_dir = tmp_path / "exported"
    assert cli("export", "sub", str(out_dir))[0] == 0
    assert sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()) == [
        "function.yaml",
        "src/main.py",
        "src/table.csv",
        "src/util.py",
    ]
    assert yaml.safe_load((out_dir / "function.yaml").read_text())["file"] == "src/main.py"
    assert cli("deploy", str(out_dir))[0] == 0
    second = stored(cli, "sub")
    keep = ("code", "files", "handler", "handler_file")
    assert {k: second[k] for k in keep} == {k: first[k] for k in keep}


def test_a_subfolder_handler_file_outside_the_folder_or_of_another_kind_is_named(cli, tmp_path):
    d = tmp_path / "bad"
    (d / "src").mkdir(parents=True)
    (d / "src" / "main.txt").write_text("x\n")
    (d / "function.yaml").write_text(yaml.safe_dump({"name": "bad", "runtime": "python", "file": "src/main.txt"}))
    code, _, err = cli("deploy", str(d))
    assert code == 2 and "file" in err and "must name a .py file" in err, err
    (d / "function.yaml").write_text(yaml.safe_dump({"name": "bad", "runtime": "python", "file": "../x.py"}))
    code, _, err = cli("deploy", str(d))
    assert code == 2 and "leads out of the function folder" in err, err


def test_a_folder_without_function_yaml_is_told_what_to_write(cli, tmp_path):
    """A newcomer's first deploy: the error shows the manifest that folder needs, and writing
    exactly that makes the deploy work."""
    d = tmp_path / "hello"
    d.mkdir()
    (d / "main.js").write_text("exports.handler = async (event) => ({hello: event.who});\n")
    code, out, err = cli("deploy", str(d))
    assert code == 2 and out == "" and "Traceback" not in err
    assert "function.yaml: is missing: a function folder needs" in err, err
    shown = err.split("the least it holds is:\n", 1)[1].splitlines()
    assert [line.strip() for line in shown] == ["name: hello", "runtime: nodejs", "file: main.js"], err
    (d / "function.yaml").write_text("".join(line.strip() + "\n" for line in shown))
    code, out, err = cli("deploy", str(d))
    assert code == 0, err
    code, out, err = cli("invoke", "hello", "--event", '{"who": "newcomer"}', "--json")
    assert code == 0 and json.loads(out)["result"] == {"hello": "newcomer"}, (out, err)
