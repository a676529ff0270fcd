"""`cloudfn create/update/deploy --deps...` show the install's progress; `cloudfn deps` lists
what is installed; a failed install exits 2 with the installer's words."""

from __future__ import annotations

import io
import json

import pytest

from cloudfn_tui.commands.deps import _Progress

CODE = "import tinypkg\n\ndef handler(event, context):\n    return tinypkg.shout('cli')\n"


@pytest.fixture(autouse=True)
def offline_index(monkeypatch, wheels, npm_registry):
    monkeypatch.setenv("CLOUDFN_RUNTIME_PYPI_INDEX_URL", "none")
    monkeypatch.setenv("CLOUDFN_RUNTIME_PYPI_FIND_LINKS", str(wheels))
    monkeypatch.setenv("CLOUDFN_RUNTIME_NPM_REGISTRY", npm_registry.url)
    monkeypatch.setenv("CLOUDFN_RUNTIME_PREWARM", "0")


def test_create_shows_plain_progress_lines_then_invoke_and_deps(cli, tmp_path):
    (tmp_path / "h.py").write_text(CODE)
    (tmp_path / "req.txt").write_text("tinypkg==1.0\n")
    code, out, err = cli(
        "create",
        "--name",
        "c1",
        "--runtime",
        "python",
        "--file",
        str(tmp_path / "h.py"),
        "--deps-file",
        str(tmp_path / "req.txt"),
    )
    assert code == 0, err
    assert out.startswith("created c1 (python, version 1")
    lines = err.splitlines()
    assert lines[0] == "installing the dependencies of c1 (requirements.txt)"
    assert "build:  + tinypkg==1.0" in lines
    assert lines[-1].startswith("installed 1 package in ")
    assert "\r" not in err and "\x1b" not in err  # not a terminal: plain lines
    code, out, err = cli("invoke", "c1")
    assert code == 0 and '"CLI!"' in out, (out, err)
    code, out, err = cli("deps", "c1")
    assert code == 0 and "tinypkg  1.0" in out and "1 package from requirements.txt" in out, out
    code, out, _ = cli("deps", "c1", "--json")
    assert json.loads(out)["packages"] == [{"name": "tinypkg", "version": "1.0"}]


def test_a_failed_install_exits_2_with_the_installers_message(cli, tmp_path):
    (tmp_path / "h.py").write_text(CODE)
    (tmp_path / "req.txt").write_text("tinypkg==1.0\n")
    (tmp_path / "bad.txt").write_text("reqeusts\n")
    assert (
        cli(
            "create",
            "--name",
            "c2",
            "--runtime",
            "python",
            "--file",
            str(tmp_path / "h.py"),
            "--deps-file",
            str(tmp_path / "req.txt"),
        )[0]
        == 0
    )
    code, out, err = cli("update", "c2", "--deps-file", str(tmp_path / "bad.txt"))
    assert code == 2 and out == ""
    assert "error: installing the dependencies of 'c2' failed: error: No solution found" in err
    # Not a terminal: the installer's lines were printed as they came, and are not printed twice.
    assert any(line.startswith("build: ") and "reqeusts" in line for line in err.splitlines()), err
    assert "the installer said:" not in err, err
    assert "Traceback" not in err
    code, out, _ = cli("get", "c2", "--json")
    assert json.loads(out)["function"]["version"] == 1


def test_bad_manifest_is_refused_before_installing(cli, tmp_path):
    (tmp_path / "h.py").write_text(CODE)
    (tmp_path / "req.txt").write_text("--index-url https://evil.example/simple\ntinypkg\n")
    code, _, err = cli(
        "create",
        "--name",
        "c3",
        "--runtime",
        "python",
        "--file",
        str(tmp_path / "h.py"),
        "--deps-file",
        str(tmp_path / "req.txt"),
    )
    assert code == 2 and "dependencies: line 1" in err and "--index-url is not allowed" in err
    assert "installing" not in err


def test_deploy_reads_the_manifest_beside_the_code_and_export_round_trips(cli, tmp_path):
    src = tmp_path / "fn"
    src.mkdir()
    (src / "function.yaml").write_text("name: dep-fn\nruntime: python\n")
    (src / "handler.py").write_text(CODE)
    (src / "requirements.txt").write_text("tinypkg==2.0\n")
    code, out, err = cli("deploy", str(src))
    assert code == 0 and "installed 1 package" in err, err
    assert '"CLI!!"' in cli("invoke", "dep-fn")[1]
    code, out, err = cli("export", "dep-fn", str(tmp_path / "out"))
    assert code == 0, err
    code, out, err = cli("deploy", str(tmp_path / "out"))
    assert code == 0 and out.startswith("updated dep-fn") and "installing" not in err  # same manifest: cached


def test_terminal_progress_is_one_status_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    p = _Progress("f", s)
    p.show("build.started", {"function": "f", "manifest": "requirements.txt"})
    p.show("build.log", {"function": "f", "line": "Resolved 1 package"})
    p.show("build.log", {"function": "other", "line": "not ours"})
    p.show("build.finished", {"function": "f", "ok": True, "packages": [{}], "seconds": 0.5})
    text = s.getvalue()
    assert "\r\x1b[2K" in text and "Resolved 1 package" in text and "not ours" not in text
    assert text.endswith("installed 1 package in 0.50 s\n")
