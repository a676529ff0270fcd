"""What a user installs: the wheel holds only `core` and `cloudfn_tui` (nothing else on a user's
path to shadow or be shadowed), a default install gives the whole console, a server-only install
(the Docker image's) runs `cloudfn serve` without Textual, and the version is written once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import core

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=;! ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_default_install_is_exactly_the_union_of_the_parts():
    extras = PROJECT["optional-dependencies"]
    parts = extras["core"] + extras["console"] + extras["server"] + extras["web"]
    assert sorted(PROJECT["dependencies"]) == sorted(parts), "pyproject's dependencies and its extras differ"
    assert {_name(r) for r in extras["core"] + extras["server"]}.isdisjoint({"textual", "tree-sitter", "textual-serve"})


def test_the_version_is_written_once():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "core/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", core.__version__)


def test_the_server_lock_holds_no_console_package():
    names = {
        _name(line)
        for line in (REPO / "requirements-server.lock").read_text().splitlines()
        if line and line[0].isalpha()
    }
    assert {"fastapi", "uvicorn", "pydantic"} <= names
    assert not names & {"textual", "tree-sitter", "textual-serve", "rich"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(out)])
    [built] = out.glob("cloudfn-*.whl")
    return built


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=kw.pop("cwd", "/"), **kw)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def fresh_venv(path: Path, lock: str, wheel: Path) -> Path:
    venv.create(path, with_pip=True)
    py = path / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(REPO / lock)])
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    return py


@pytest.mark.slow
def test_the_wheel_installs_only_core_and_cloudfn_tui_with_the_bundled_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"core", "cloudfn_tui", wheel.name.split("-py3")[0] + ".dist-info"}
    assert any(n.startswith("core/bundled_functions/") and n.endswith("/function.yaml") for n in names)
    assert any(n.startswith("cloudfn_tui/bundled_themes/") and n.endswith(".yaml") for n in names)


@pytest.mark.slow
def test_a_server_only_install_serves_without_textual(wheel, tmp_path):
    py = fresh_venv(tmp_path / "venv", "requirements-server.lock", wheel)
    cloudfn = tmp_path / "venv" / "bin" / "cloudfn"
    assert run([str(cloudfn), "--version"]).stdout.strip() == f"cloudfn {core.__version__}"
    assert "--no-auth" in run([str(cloudfn), "serve", "--help"]).stdout
    probe = (
        "import sys, importlib.util\n"
        "import core.server.app, core.server.runner, core.local\n"
        "from core import paths\n"
        "assert importlib.util.find_spec('textual') is None, 'textual is installed'\n"
        "assert not [m for m in sys.modules if m.startswith(('textual', 'tree_sitter'))]\n"
        "assert any(paths.bundled_functions_dir().glob('*/function.yaml')), paths.bundled_functions_dir()\n"
        "print(paths.bundled_functions_dir())"
    )
    where = run([str(py), "-c", probe]).stdout.strip()
    assert "site-packages/core/bundled_functions" in where
    # The console says what is missing rather than failing with a stack trace.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(cloudfn), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd="/",
        env=env,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "pip install 'cloudfn[console]'" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing taken or written


@pytest.mark.slow
def test_the_default_install_gives_the_console(wheel, tmp_path):
    py = fresh_venv(tmp_path / "venv", "requirements.lock", wheel)
    cloudfn = tmp_path / "venv" / "bin" / "cloudfn"
    assert run([str(cloudfn), "--version"]).stdout.strip() == f"cloudfn {core.__version__}"
    probe = (
        "import cloudfn_tui.app, cloudfn_tui.commands.web, textual_serve\n"
        "from core import paths\n"
        "assert any(paths.bundled_themes_dir().glob('*.yaml')), paths.bundled_themes_dir()\n"
        "import importlib.metadata as m\n"
        "print(sorted((m.distribution('cloudfn').read_text('top_level.txt') or 'core cloudfn_tui').split()))"
    )
    assert run([str(py), "-c", probe]).stdout.strip() == "['cloudfn_tui', 'core']"
