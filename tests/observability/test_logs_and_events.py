"""Structured logs (levels, truncation, rotation, queries) and the event bus's back-pressure."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest

from core.events import EventBus
from core.logs import MAX_LINE, LogHub, attach, detach


@pytest.fixture
def hub(tmp_path):
    h = LogHub(tmp_path / "logs", ring_size=100, max_bytes=20_000, backups=2)
    yield h
    detach(h)
    h.shutdown()


def test_platform_records_are_structured_json_lines_with_extra_fields(hub):
    logger = attach(hub, "info")
    logging.getLogger("cloudfn.test").debug("hidden below the level")
    logging.getLogger("cloudfn.test").warning(
        "disk %s%% full", 91, extra={"function": "f", "invocation_id": "i1", "disk": "/"}
    )
    (line,) = hub.path.read_text().splitlines()
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == ("warning", "cloudfn.test", "disk 91% full")
    assert (doc["function"], doc["invocation_id"], doc["extra"]) == ("f", "i1", {"disk": "/"})
    assert logger.level == logging.INFO


def test_function_output_levels_come_from_the_line(hub):
    recs = hub.function_output("fn", "inv", "INFO up\n[warn] careful\nlevel=error broke\nplain\n\nfatal: gone\n")
    assert [(r.level, r.message) for r in recs] == [
        ("info", "INFO up"),
        ("warning", "[warn] careful"),
        ("error", "level=error broke"),
        ("info", "plain"),
        ("critical", "fatal: gone"),
    ]
    assert [r.message for r in hub.query(level="warning")] == ["[warn] careful", "level=error broke", "fatal: gone"]
    assert [r.message for r in hub.query(text="CAREFUL")] == ["[warn] careful"]
    assert hub.query(function="other") == []
    assert len(hub.query(invocation_id="inv", limit=2)) == 2


def test_a_10_mb_line_is_cut_not_stored_whole(hub):
    (rec,) = hub.function_output("fn", "inv", "x" * 10_000_000)
    assert len(rec.message) < MAX_LINE + 100 and rec.message.endswith("characters]")
    assert sum(p.stat().st_size for p in hub.files()) < 100_000


def test_rotation_keeps_a_bounded_number_of_files_and_old_lines_stay_queryable(hub):
    for i in range(400):
        hub.function_output("fn", f"inv-{i}", f"INFO line {i} " + "y" * 100)
    files = hub.files()
    assert len(files) == 3  # the current file and two backups
    assert all(p.stat().st_size <= 20_000 + 1000 for p in files)
    assert len(hub.ring) == 100
    # Asking for lines older than the ring reads the files.
    oldest_kept = json.loads(files[0].read_text().splitlines()[0])
    from datetime import datetime

    found = hub.query(since=datetime.fromisoformat(oldest_kept["time"]), text=oldest_kept["message"])
    assert [r.message for r in found] == [oldest_kept["message"]]


async def test_a_slow_subscriber_loses_events_counted_and_never_stalls_publishing():
    bus = EventBus()
    slow = bus.subscribe(maxsize=10)
    fast = bus.subscribe({"log"}, maxsize=1000)
    for i in range(100):
        bus.publish("log", {"i": i})
    bus.publish("invocation.started", {})
    assert slow.dropped == 91 and bus.dropped == 91
    assert fast.queue.qsize() == 100  # kinds filter: the invocation event is not for it
    assert [(await slow.get()).data["i"] for _ in range(10)] == list(range(10))
    seqs = [(await fast.get()).seq for _ in range(100)]
    assert seqs == sorted(seqs)


async def test_events_published_from_another_thread_arrive():
    bus = EventBus()
    sub = bus.subscribe()
    t = threading.Thread(target=lambda: [bus.publish("log", {"i": i}) for i in range(5)])
    t.start()
    got = [(await asyncio.wait_for(sub.get(), 5)).data["i"] for _ in range(5)]
    t.join()
    assert got == [0, 1, 2, 3, 4]
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown: nope"):
        bus.subscribe({"nope"})
