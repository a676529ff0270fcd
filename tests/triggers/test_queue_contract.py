"""The AsyncQueue contract, run against both backends: the embedded SQLite file and JetStream
on a real nats-server (one per test, so each starts with empty streams). Waits are on the
queue's waker (JetStream pushes work to the gateway), never sleeps."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from core.cluster.natsserver import start_nats
from core.config import load_config
from core.triggers.queue import QueuedInvocation, SqliteQueue

FAR = 1e12  # a `now` past every retry's time: SQLite then claims what JetStream would redeliver


@pytest.fixture(params=["sqlite", "jetstream"])
def make_queue(request, tmp_path, monkeypatch):
    made = []
    server = None

    def make(capacity: int = 8, **kw):
        nonlocal server
        if request.param == "sqlite":
            q = SqliteQueue(tmp_path / f"q{len(made)}.sqlite3")
        else:
            from core.triggers.jsqueue import JetStreamQueue

            if server is None:
                server = start_nats(tmp_path / "nats", secrets.token_hex(16))
                monkeypatch.setenv("CLOUDFN_CLUSTER_NATS_TOKEN", server.token)
            config = load_config(flags={"storage.data_dir": str(tmp_path / "d"), "cluster.nats_url": server.url})
            q = JetStreamQueue(config, **kw)
        ready = threading.Event()
        q.set_waker(ready.set, capacity)
        made.append((q, ready))
        return q, ready

    make.kind = request.param
    yield make
    for q, _ in made:
        q.close()
    if server is not None:
        server.stop()


def claim(q, ready: threading.Event, n: int = 1, timeout: float = 30) -> list[QueuedInvocation]:
    """Claim until `n` items came: SQLite answers at once; JetStream once its fetch loop woke us."""
    got: list[QueuedInvocation] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        ready.clear()
        got += q.claim(n - len(got), FAR)
        if len(got) < n:
            assert ready.wait(max(0.0, deadline - time.monotonic())), f"only {len(got)} of {n} items came"
    return got


def item(fid: str = "f1", event=None) -> QueuedInvocation:
    from core.models import new_uuid

    return QueuedInvocation(id=new_uuid(), function_id=fid, function_name="fn-" + fid, event=event, context={"k": "v"})


def test_enqueue_claim_ack(make_queue):
    q, ready = make_queue()
    first = item(event={"text": "héllo", "n": [1, 2]})
    q.enqueue(first)
    assert q.depth() == 1
    assert q.status(first.id)[0] == "queued"
    [got] = claim(q, ready)
    assert (got.id, got.event, got.context, got.function_name) == (first.id, first.event, {"k": "v"}, "fn-f1")
    got.attempt = 1
    q.ack(got)
    assert q.depth() == 0
    state, seen = q.status(first.id)
    assert state == "success" and seen.attempt == 1
    assert q.stats(time.time())["depth"] == 0
    assert q.status("no-such-id") is None
    # Not ids: as a KV key or subject `>` and `*` would be wildcards answering with another's state.
    for bad in (">", "*", "a.*", first.id[:8] + ".>", "", "x" * 300, "../x"):
        assert q.status(bad) is None, bad
        assert q.find_dead(bad) == [], bad


def test_retry_keeps_attempts_and_errors(make_queue):
    q, ready = make_queue()
    it = item()
    q.enqueue(it)
    [got] = claim(q, ready)
    got.attempt = 1
    got.errors.append({"attempt": 1, "time": time.time(), "error_type": "HandlerError", "error": "boom"})
    q.retry_later(got, time.time() + 0.2)
    state, seen = q.status(it.id)
    assert state == "failed" and seen.errors[0]["error"] == "boom"
    [again] = claim(q, ready)
    assert again.id == it.id and again.attempt == 1 and again.errors[0]["error"] == "boom"
    q.ack(again)


def test_dead_letter_list_find_replay_delete(make_queue):
    q, ready = make_queue()
    a, b = item("fa", {"a": 1}), item("fb", {"b": 2})
    for it in (a, b):
        q.enqueue(it)
    got = {i.id: i for i in claim(q, ready, 2)}
    for it in got.values():
        it.attempt = 3
        q.dead_letter(it, "retries exhausted")
    assert {d.item.id for d in q.dead_letters()} == {a.id, b.id}
    [only] = q.dead_letters("fa")
    assert only.item.event == {"a": 1} and only.reason == "retries exhausted" and only.item.attempt == 3
    assert [d.item.id for d in q.find_dead(a.id[:8])] == [a.id]
    assert q.find_dead("a.*") == [] and q.find_dead(">") == []  # subject wildcards are no ids
    assert q.status(a.id)[0] == "dead"
    assert q.stats(time.time())["dead_letters"] == 2
    replayed = q.take_dead(a.id, time.time())
    assert replayed is not None and replayed.attempt == 0
    assert q.take_dead(a.id, time.time()) is None  # replayed once only
    [back] = claim(q, ready)
    assert back.id == a.id and back.event == {"a": 1} and back.attempt == 0 and back.errors == []
    q.ack(back)
    gone = q.delete_dead(b.id)
    assert gone is not None and gone.item.id == b.id
    assert q.delete_dead(b.id) is None and q.dead_letters() == []


def test_trim_drops_the_oldest(make_queue):
    q, ready = make_queue()
    items = [item() for _ in range(5)]
    for it in items:
        q.enqueue(it)
    claimed = {i.id: i for i in claim(q, ready, 5)}
    for it in items:  # dead in this order: the first ones are the oldest
        q.dead_letter(claimed[it.id], "x")
    assert q.trim_dead(10) == []
    assert q.trim_dead(2) == [it.id for it in items[:3]]
    assert {d.item.id for d in q.dead_letters()} == {it.id for it in items[3:]}


def test_queued_for_and_dead_letter_unclaimed(make_queue):
    """What function_deleted does: the waiting (unclaimed) items become dead letters."""
    q, _ = make_queue(capacity=0)  # JetStream: this gateway holds nothing; all wait on the server
    waiting = [item("gone", {"i": i}) for i in range(3)]
    for it in waiting:
        q.enqueue(it)
    q.enqueue(item("kept"))
    found = q.queued_for("gone")
    assert sorted(i.id for i in found) == sorted(i.id for i in waiting)
    assert sorted(i.event["i"] for i in found) == [0, 1, 2]
    for it in found:
        q.dead_letter(it, "the function was deleted")
    assert len(q.dead_letters("gone")) == 3
    assert q.stats(time.time())["depth"] == 1  # only the other function's item is left
    assert [i.function_id for i in q.queued_for("kept")] == ["kept"]


def test_jetstream_max_deliver_gives_up(make_queue):
    """Every delivery counts towards the consumer's max_deliver (retries and redeliveries after a
    gateway died alike); the last one is handed over marked to be dead-lettered, not run."""
    if make_queue.kind != "jetstream":
        pytest.skip("SQLite has one owner; recover() at its start is its redelivery")
    q, ready = make_queue(ack_wait=30.0, max_deliver=2)
    it = item()
    q.enqueue(it)
    [first] = claim(q, ready)
    assert first.give_up == ""
    first.attempt = 1
    first.errors.append({"attempt": 1, "time": time.time(), "error_type": "Throttled", "error": "busy"})
    q.retry_later(first, time.time())
    [again] = claim(q, ready)
    assert again.id == it.id and "max_deliver 2" in again.give_up and again.attempt == 1
    q.dead_letter(again, again.give_up)
    assert q.status(it.id)[0] == "dead"
    [dead] = q.dead_letters()
    assert dead.item.id == it.id and "max_deliver" in dead.reason
    assert q.take_dead(it.id, time.time()) is not None  # a replay starts a fresh count
    [replayed] = claim(q, ready)
    assert replayed.give_up == "" and replayed.attempt == 0
    q.ack(replayed)


def test_jetstream_watch_settled_sees_another_gateways_outcome(make_queue):
    """`invocation status --wait` on the gateway that accepted: it returns when another one ran it."""
    if make_queue.kind != "jetstream":
        pytest.skip("SQLite's owner runs everything it accepts itself")
    accepting, _ = make_queue(capacity=0)
    running, ready = make_queue()
    it = item()
    accepting.enqueue(it)
    settled = accepting.watch_settled(it.id)
    [got] = claim(running, ready)
    assert not settled.done()
    running.ack(got)
    settled.result(10)
    assert accepting.status(it.id)[0] == "success"
