"""The history store: batches, newest-first paged queries, retention, crash recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.history import SEGMENT, SEGMENT_RECORDS, History
from core.models import InvocationRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(i: int, fn: str = "f", status: str = "success", at: datetime | None = None) -> InvocationRecord:
    return InvocationRecord(
        id=f"inv-{i}",
        function_id=f"id-{fn}",
        function_name=fn,
        function_version=1,
        runtime="python",
        status=status,
        started_at=at or T0 + timedelta(seconds=i),
        duration=float(i),
        result={"i": i},
    )


@pytest.fixture(params=["embedded", "postgresql"])
def open_history(request, tmp_path):
    """History(...) on either backend (the same interface: core/storage/base.py)."""
    if request.param == "embedded":
        yield lambda **kw: History(tmp_path, **kw)
        return
    from core.storage.postgres import PgHistory, PostgresBackend

    backend = PostgresBackend(request.getfixturevalue("pg_url"))
    yield lambda max_records=100_000, max_age=timedelta(days=7), batch_size=256: PgHistory(
        backend, max_records, max_age, batch_size
    )
    backend.close()


def test_queries_are_newest_first_paged_and_filtered_before_and_after_a_flush(open_history):
    h = open_history(max_age=timedelta(days=36500), batch_size=1000)
    for i in range(30):
        h.add(rec(i, fn="a" if i % 2 else "b", status="failed" if i % 3 == 0 else "success"))
    page1 = h.query(limit=10)
    assert [r.id for r in page1] == [f"inv-{i}" for i in range(29, 19, -1)]
    h.flush()
    assert [r.id for r in h.query(limit=10)] == [r.id for r in page1]  # same answer from disk
    assert [r.id for r in h.query(limit=5, offset=10)] == [f"inv-{i}" for i in range(19, 14, -1)]
    assert all(r.function_name == "a" for r in h.query(function_id="id-a", limit=100))
    assert len(h.query(status="failed", limit=100)) == 10
    window = h.query(since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=9), limit=100)
    assert [r.id for r in window] == [f"inv-{i}" for i in range(9, 4, -1)]
    assert h.get("inv-7").result == {"i": 7}


def test_records_survive_a_reopen_and_a_torn_last_line_is_cut_off(tmp_path):
    h = History(tmp_path, max_age=timedelta(days=36500))
    for i in range(5):
        h.add(rec(i))
    h.flush()
    (segment,) = tmp_path.glob("segment-*.jsonl")
    with open(segment, "ab") as f:
        f.write(b'{"id": "inv-torn", "function_id"')  # a crash in the middle of a line
    again = History(tmp_path, max_age=timedelta(days=36500))
    assert [r.id for r in again.query()] == [f"inv-{i}" for i in range(4, -1, -1)]
    again.add(rec(5))
    again.flush()
    assert [r.id for r in History(tmp_path, max_age=timedelta(days=36500)).query(limit=2)] == ["inv-5", "inv-4"]


def test_retention_by_count_drops_whole_old_segments(tmp_path):
    h = History(tmp_path, max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500), batch_size=10_000)
    total = SEGMENT_RECORDS * 2 + 10
    for i in range(total):
        h.add(rec(i))
    h.flush()
    assert len(h) == SEGMENT_RECORDS
    assert h.query(limit=1)[0].id == f"inv-{total - 1}"
    assert h.query(limit=1, offset=SEGMENT_RECORDS - 1)[0].id == f"inv-{total - SEGMENT_RECORDS}"
    assert len(list(tmp_path.glob("segment-*.jsonl"))) <= 2  # the oldest segment is gone
    assert len(History(tmp_path, max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500))) == SEGMENT_RECORDS


def test_retention_by_age(open_history):
    now = datetime.now(UTC)
    h = open_history(max_age=timedelta(hours=1))
    h.add(rec(1, at=now - timedelta(hours=3)))
    h.add(rec(2, at=now - timedelta(minutes=5)))
    h.flush()
    assert [r.id for r in h.query()] == ["inv-2"]


def test_retention_by_count_keeps_the_newest(open_history):
    h = open_history(max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500), batch_size=100_000)
    total = SEGMENT_RECORDS * 2 + 10
    for i in range(total):
        h.add(rec(i))
    h.flush()
    assert len(h) in (SEGMENT_RECORDS, SEGMENT_RECORDS + 10)  # embedded: whole segments go; PostgreSQL: rows
    assert h.query(limit=1)[0].id == f"inv-{total - 1}"
    assert h.query(limit=1, offset=SEGMENT_RECORDS - 1)[0].id == f"inv-{total - SEGMENT_RECORDS}"


def test_records_added_before_the_first_query_merge_with_those_on_disk(tmp_path):
    h = History(tmp_path, max_age=timedelta(days=36500))
    for i in range(10):
        h.add(rec(i))
    h.flush()
    again = History(tmp_path, max_age=timedelta(days=36500))  # opens without reading old records
    for i in range(10, 15):
        again.add(rec(i))
    again.flush()
    again.add(rec(15))  # still pending
    assert [r.id for r in again.query(limit=100)] == [f"inv-{i}" for i in range(15, -1, -1)]
    assert len(again) == 16
    assert again.get("inv-3").result == {"i": 3}


def test_retention_works_without_a_query_ever_loading_the_index(tmp_path):
    total = SEGMENT_RECORDS * 3 + 7
    h = History(tmp_path, max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500), batch_size=10_000)
    for i in range(total):
        h.add(rec(i))
        if i % SEGMENT_RECORDS == SEGMENT_RECORDS - 1:
            h.flush()
            h = History(tmp_path, max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500), batch_size=10_000)
    h.flush()
    assert len(list(tmp_path.glob("segment-*.jsonl"))) <= 2
    kept = History(tmp_path, max_records=SEGMENT_RECORDS, max_age=timedelta(days=36500)).query(limit=1)
    assert kept[0].id == f"inv-{total - 1}"

    aged = tmp_path / "aged"
    old = History(aged, max_age=timedelta(days=36500))
    for i in range(SEGMENT_RECORDS):  # one full segment of old records
        old.add(rec(i, at=datetime.now(UTC) - timedelta(days=30)))
    old.flush()
    fresh = History(aged, max_age=timedelta(days=7))
    fresh.add(rec(99_999, at=datetime.now(UTC)))
    fresh.flush()  # no query: the old segment goes by its newest record's age
    assert [p.name for p in aged.glob("segment-*.jsonl")] == ["segment-00000002.jsonl"]
    assert [r.id for r in History(aged, max_age=timedelta(days=7)).query()] == ["inv-99999"]


def test_a_record_added_during_a_flush_stays_readable_and_is_written_by_the_next(tmp_path, monkeypatch):
    h = History(tmp_path, max_age=timedelta(days=36500), batch_size=1000)
    for i in range(3):
        h.add(rec(i))
    append = h._append

    def add_meanwhile(seg, batch):  # another invocation lands while the batch is on its way to disk
        h.add(rec(99))
        return append(seg, batch)

    monkeypatch.setattr(h, "_append", add_meanwhile)
    assert h.flush() == 3
    monkeypatch.setattr(h, "_append", append)
    assert [e[SEGMENT] >= 0 for e in h._index] == [True, True, True, False]
    assert h.get("inv-99").id == "inv-99" and h.get("inv-1").result == {"i": 1}
    assert h.flush() == 1
    reopened = History(tmp_path, max_age=timedelta(days=36500))
    assert [r.id for r in reopened.query(limit=10)] == ["inv-99", "inv-2", "inv-1", "inv-0"]


def test_indexed_records_are_not_tracked_by_the_cyclic_gc(tmp_path):
    """A busy platform indexes 100,000 records; a full collection walking them all paused the
    event loop for tens of milliseconds."""
    import gc

    h = History(tmp_path, max_age=timedelta(days=36500), batch_size=10)
    for i in range(25):
        h.add(rec(i))
    gc.collect()
    assert h._index and not any(gc.is_tracked(e) for e in h._index)
