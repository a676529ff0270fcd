"""core.syntax: the check a save runs, per runtime (a missing tool means no verdict)."""

from __future__ import annotations

import shutil

import pytest

from core.syntax import check_syntax


def test_python_names_the_line_and_column():
    problem = check_syntax("python", "x = 1\ndef f(:\n    pass\n")
    assert problem is not None and problem.line == 2 and problem.column == 7
    assert check_syntax("python", "def f():\n    return 1\n") is None


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_check_names_the_line():
    problem = check_syntax("nodejs", "function f() {\n  return {a: };\n}\n")
    assert problem is not None and problem.line == 2 and "SyntaxError" in problem.message
    assert check_syntax("nodejs", "function f() { return 1; }\n") is None


@pytest.mark.skipif(shutil.which("gofmt") is None, reason="no gofmt")
def test_gofmt_counts_lines_in_the_users_code_without_a_package_clause():
    problem = check_syntax("go", "func f() int {\n\treturn 1 +\n}\n")
    assert problem is not None and problem.line == 3
    assert check_syntax("go", "package main\n\nfunc f() int {\n\treturn 1\n}\n") is None


def test_a_hung_tool_gives_no_verdict(monkeypatch):
    import subprocess

    def hang(*a, **kw):
        raise subprocess.TimeoutExpired("node", 0.1)

    monkeypatch.setattr(subprocess, "run", hang)
    assert check_syntax("nodejs", "function f( {") is None
