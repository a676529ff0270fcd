"""The durable TinyDB store: crash safety, concurrent writers, corruption, data-dir ownership."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.errors import DataDirLocked, StoreCorrupt
from core.storage import DataDirLock, TinyStore

WRITER = textwrap.dedent(
    """
    import sys
    from core.storage import TinyStore
    store = TinyStore(sys.argv[1])
    tag, count = sys.argv[2], int(sys.argv[3])
    pad = "x" * int(sys.argv[4])
    for i in range(count):
        store.insert("docs", {"tag": tag, "n": i, "pad": pad})
        print(i, flush=True)  # acknowledged: insert() returned
    """
)


def _writer(path: Path, tag: str, count: int, pad: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), tag, str(count), str(pad)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _valid_docs(path: Path) -> list[dict]:
    data = json.loads(path.read_text())  # raises if the file is not valid JSON
    return list(data.get("docs", {}).values())


def test_threads_and_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "store.json"
    store = TinyStore(path)
    procs = [_writer(path, f"proc{i}", 40) for i in range(3)]

    def thread_writes(tag: str) -> None:
        for i in range(40):
            store.insert("docs", {"tag": tag, "n": i})

    threads = [threading.Thread(target=thread_writes, args=(f"thread{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err

    docs = _valid_docs(path)
    seen = {(d["tag"], d["n"]) for d in docs}
    expected = {(f"thread{i}", n) for i in range(4) for n in range(40)} | {
        (f"proc{i}", n) for i in range(3) for n in range(40)
    }
    assert seen == expected
    assert len(docs) == len(expected), "a write was duplicated"


def test_a_writer_killed_mid_write_never_breaks_the_file_nor_loses_an_acknowledged_write(tmp_path):
    path = tmp_path / "store.json"
    # A few hundred KB of data makes each rewrite long enough for kills to land inside it.
    TinyStore(path).insert_many("docs", [{"tag": "seed", "n": i, "pad": "y" * 2000} for i in range(150)])
    rng = random.Random(1234)
    acknowledged: set[tuple[str, int]] = set()
    kills = mid_write = 0
    for round_ in range(110):
        tag = f"r{round_}"
        p = _writer(path, tag, 10_000, pad=200)
        first = p.stdout.readline()  # the store opened and one write went through
        assert first.strip() == "0", p.stderr.read()
        # Let it run a little, then kill it wherever it is: the random pause (not a wait for
        # anything) spreads the kills over the read, the temp-file write, the fsync and the rename.
        seen = [p.stdout.readline() for _ in range(rng.randint(0, 3))]
        time.sleep(rng.uniform(0, 0.004))
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        kills += p.returncode == -signal.SIGKILL
        acked = [int(x) for x in (first + "".join(seen) + out).split()]
        acknowledged |= {(tag, n) for n in acked}

        mid_write += any(".tmp-" in f.name for f in tmp_path.iterdir())
        docs = _valid_docs(path)  # valid JSON after every kill
        present = {(d["tag"], d["n"]) for d in docs}
        missing = acknowledged - present
        assert not missing, f"round {round_}: acknowledged writes lost: {sorted(missing)[:5]}"
    print(f"\nstore crash test: {kills} SIGKILLs, {mid_write} landed inside a write, 0 writes lost")
    assert kills >= 100
    # A temp file left behind proves a kill landed inside a write (about 1 round in 10 here).
    assert mid_write >= 1, "no kill landed mid-write: the test proved nothing"
    # A new opener cleans the temp files the killed writers left behind.
    TinyStore(path)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_corrupt_file_stops_opening_with_its_name_and_is_left_untouched(tmp_path):
    path = tmp_path / "store.json"
    broken = b'{"docs": {"1": {"n": 1}'
    path.write_bytes(broken)
    with pytest.raises(StoreCorrupt) as exc:
        TinyStore(path)
    assert str(path) in exc.value.message
    assert "untouched" in exc.value.message
    assert path.read_bytes() == broken


def test_stale_temp_files_are_removed_at_start(tmp_path):
    path = tmp_path / "store.json"
    TinyStore(path).insert("docs", {"n": 1})
    stale = tmp_path / ".store.json.tmp-99999-1"
    stale.write_text("half a write")
    store = TinyStore(path)
    assert not stale.exists()
    assert store.all("docs") == [{"n": 1}]


def test_upsert_and_remove_by_key(tmp_path):
    store = TinyStore(tmp_path / "s.json")
    store.upsert("t", "id", {"id": "a", "v": 1})
    store.upsert("t", "id", {"id": "b", "v": 1})
    store.upsert("t", "id", {"id": "a", "v": 2})
    assert sorted((d["id"], d["v"]) for d in store.all("t")) == [("a", 2), ("b", 1)]
    assert store.remove("t", "id", "a") == 1
    assert store.remove("t", "id", "a") == 0
    assert store.get("t", "id", "b") == {"id": "b", "v": 1}


HOLDER = textwrap.dedent(
    """
    import sys
    from core.storage import DataDirLock
    DataDirLock(sys.argv[1]).acquire({"command": "cloudfn serve"})
    print("held", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_process_is_told_which_pid_holds_the_data_dir(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DataDirLocked) as exc:
            DataDirLock(tmp_path).acquire()
        assert exc.value.pid == holder.pid
        assert f"process {holder.pid} (cloudfn serve)" in exc.value.message
        assert str(tmp_path) in exc.value.message
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    # Once the holder is gone, the directory can be taken.
    lock = DataDirLock(tmp_path)
    lock.acquire()
    assert lock.holder()["pid"] == os.getpid()
    lock.release()
