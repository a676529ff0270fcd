"""Fixtures for the console tests."""

from __future__ import annotations

import pytest
from console_fakes import FakePlatform

from cloudfn_tui.app import CloudfnApp


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def make_app(tmp_path):
    def make(platform, **kw) -> CloudfnApp:
        kw.setdefault("drafts_dir", tmp_path / "drafts")  # never the fake's /data/cloudfn
        kw.setdefault("theme", "cloudfn-night")
        kw.setdefault("remember_theme", False)
        return CloudfnApp(platform, **kw)

    return make
