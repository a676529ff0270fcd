"""A platform whose dependencies come only from folders and a registry the tests build: no
network. Every test gets its own data directory (so its own env cache and installer count)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deps_packages import NpmRegistry, make_npm_tarball, make_wheel, open_platform, readable  # noqa: E402

NODE_MISSING = shutil.which("node") is None or shutil.which("npm") is None
TINY_V1 = "VALUE = 'tiny 1.0'\ndef shout(s):\n    return s.upper() + '!'\n"
TINY_V2 = "VALUE = 'tiny 2.0'\ndef shout(s):\n    return s.upper() + '!!'\n"
# Writes a file into its own package folder when npm runs its scripts; --ignore-scripts must stop it.
POSTINSTALL = "node -e \"require('fs').writeFileSync('POSTINSTALL_RAN', 'yes')\""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if NODE_MISSING and "node" in item.name:
            item.add_marker(pytest.mark.skip(reason="Node.js and npm are not installed (apt-get install nodejs npm)"))


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    """A find-links folder: tinypkg 1.0 and 2.0 as wheels, buildme only as a (hostile) sdist."""
    d = tmp_path_factory.mktemp("wheels")
    make_wheel(d, "tinypkg", "1.0", {"tinypkg/__init__.py": TINY_V1})
    make_wheel(d, "tinypkg", "2.0", {"tinypkg/__init__.py": TINY_V2})
    make_wheel(d, "otherpkg", "0.1", {"otherpkg/__init__.py": "NAME = 'other'\n"})
    return readable(d)


@pytest.fixture(scope="session")
def npm_registry():
    reg = NpmRegistry()
    reg.add(
        "tiny-npm",
        "1.0.0",
        make_npm_tarball(
            "tiny-npm",
            "1.0.0",
            {"index.js": "module.exports = { shout: (s) => s.toUpperCase() + '!' };\n"},
            scripts={"postinstall": POSTINSTALL, "preinstall": POSTINSTALL, "install": POSTINSTALL},
        ),
    )
    reg.add(
        "tiny-npm",
        "2.0.0",
        make_npm_tarball(
            "tiny-npm", "2.0.0", {"index.js": "module.exports = { shout: (s) => s.toUpperCase() + '!!' };\n"}
        ),
    )
    reg.stall.add("slow-npm")
    yield reg
    reg.close()


@pytest.fixture
def deps_flags(data_dir, wheels, npm_registry) -> dict[str, str]:
    return {
        "storage.data_dir": str(data_dir),
        "runtime.pypi_index_url": "none",
        "runtime.pypi_find_links": str(wheels),
        "runtime.npm_registry": npm_registry.url,
        "runtime.prewarm": "0",
    }


@pytest.fixture
async def platform(deps_flags):
    p = open_platform(deps_flags)
    try:
        yield p
    finally:
        await p.close()
