"""Where cloudfn's files are: the bundled examples and themes, and the user's XDG places."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import platformdirs

APP = "cloudfn"
_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = _PACKAGE_DIR.parent


def _bundled(checkout_name: str, package: str, inside: str) -> Path:
    """A checkout keeps the folder at its top; a wheel carries it inside a package (pyproject's
    force-include), found with importlib.resources. Installed as files, not zipped: the
    examples and themes are read as folders."""
    in_checkout = _CHECKOUT_DIR / checkout_name
    if in_checkout.is_dir() and (_CHECKOUT_DIR / "pyproject.toml").is_file():
        return in_checkout
    return Path(str(files(package).joinpath(inside)))


def bundled_functions_dir() -> Path:
    return _bundled("functions", "core", "bundled_functions")


def bundled_themes_dir() -> Path:
    # Inside cloudfn_tui, whose __init__ imports nothing: core still never imports Textual.
    return _bundled("themes", "cloudfn_tui", "bundled_themes")


def default_config_file() -> Path:
    return platformdirs.user_config_path(APP) / "config.yaml"


def default_data_dir() -> Path:
    return platformdirs.user_data_path(APP)


def default_cache_dir() -> Path:
    return platformdirs.user_cache_path(APP)


def user_themes_dir() -> Path:
    return platformdirs.user_config_path(APP) / "themes"
