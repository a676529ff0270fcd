"""Where cloudfn uses the standard library instead of its own code (log rotation), and the one
hand-written helper kept for its measured cost (new_uuid)."""

from __future__ import annotations

import logging
import stat
import uuid

from core.logs import LogHub
from core.models import new_uuid


def test_rotated_log_files_are_private_and_bounded(tmp_path):
    hub = LogHub(tmp_path / "logs", ring_size=10, max_bytes=5_000, backups=3)
    try:
        for i in range(300):
            hub.function_output("fn", f"inv-{i}", f"INFO line {i} " + "z" * 80)
        files = hub.files()
        assert [p.name for p in files] == ["cloudfn.jsonl.3", "cloudfn.jsonl.2", "cloudfn.jsonl.1", "cloudfn.jsonl"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
        assert all(p.stat().st_size <= 5_000 + 200 for p in files)
        assert hub.query(limit=1)[0].message.startswith("INFO line 299 ")
    finally:
        hub.shutdown()


def test_a_logging_shutdown_does_not_close_the_hubs_file(tmp_path):
    hub = LogHub(tmp_path / "logs", ring_size=10, max_bytes=5_000, backups=2)
    try:
        logging.shutdown()  # what uvicorn's dictConfig does to every handler ever made
        hub.function_output("fn", "inv-1", "INFO after the shutdown")
        assert "after the shutdown" in hub.path.read_text()
    finally:
        hub.shutdown()


def test_new_uuid_is_a_random_version_4_uuid():
    ids = {new_uuid() for _ in range(1000)}
    assert len(ids) == 1000
    for text in list(ids)[:50]:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
