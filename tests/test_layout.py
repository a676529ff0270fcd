"""The house rules that keep the parts apart."""

from __future__ import annotations

import ast
from pathlib import Path

from core import paths

REPO = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_textual_or_the_console():
    offenders = {
        str(p.relative_to(REPO)): sorted(_imports(p) & {"textual", "cloudfn_tui", "rich"})
        for p in (REPO / "core").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"core/ must stay free of the console: {offenders}"


def test_the_checkout_finds_its_bundled_examples_and_themes():
    assert paths.bundled_functions_dir() == REPO / "functions"
    assert paths.bundled_themes_dir() == REPO / "themes"
    assert any(paths.bundled_functions_dir().glob("*/function.yaml"))
    assert any(paths.bundled_themes_dir().glob("*.yaml"))


def test_an_installed_wheel_finds_its_bundled_examples_and_themes(tmp_path):
    """Outside a checkout, `pip install` of the wheel must still carry functions/ and themes/."""
    import subprocess
    import sys
    import zipfile

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("cloudfn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "core/bundled_functions/hello-python/function.yaml" in names
    assert any(n.startswith("cloudfn_tui/bundled_themes/") and n.endswith(".yaml") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "from core import paths, bundle;"
        "print(paths.bundled_functions_dir());print(paths.bundled_themes_dir());"
        "print(len(bundle.bundles_in(paths.bundled_functions_dir())))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.split()
    assert out[0] == str(target / "core" / "bundled_functions")
    assert out[1] == str(target / "cloudfn_tui" / "bundled_themes")
    assert int(out[2]) == len(list((REPO / "functions").glob("*/function.yaml")))
