"""The storage interface's contract, run against both backends: the embedded store (TinyDB
files, code files, JSON-lines history) and PostgreSQL (a real server, tests/pgserver.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.models import InvocationRecord
from core.registry import Registry
from core.storage import open_backend


@pytest.fixture(params=["embedded", "postgresql"])
def backend(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    b = open_backend(url, tmp_path / "data")
    yield b
    b.close()


def _registry(backend, tmp_path, **kw):
    return Registry(backend.documents("registry"), blobs=backend.blobs(tmp_path / "data" / "versions"), **kw)


def _record(fn_id="f1", status="success", trigger="manual", when=None, **kw):
    now = when or datetime.now(UTC)
    return InvocationRecord(
        id=kw.pop("id", str(uuid.uuid4())),
        function_id=fn_id,
        function_name=f"name-{fn_id}",
        status=status,
        trigger=trigger,
        started_at=now,
        finished_at=now,
        duration_ms=1.0,
        function_version=1,
        runtime="python",
        event={"n": kw.pop("n", 0)},
        result=None,
        **kw,
    )


def test_documents_insert_get_upsert_remove_and_transactions(backend):
    s = backend.documents("things")
    s.insert("t", {"key": "a", "v": 1})
    s.insert_many("t", [{"key": "b", "v": 2}, {"key": "c", "v": 3}])
    assert [d["key"] for d in s.all("t")] == ["a", "b", "c"]
    assert s.get("t", "key", "b") == {"key": "b", "v": 2}
    assert s.get("t", "v", 3) == {"key": "c", "v": 3}  # a number matches a number
    assert s.get("t", "key", "zz") is None
    s.upsert("t", "key", {"key": "b", "v": 20})
    s.upsert("t", "key", {"key": "d", "v": 4})
    assert [(d["key"], d["v"]) for d in s.all("t")] == [("a", 1), ("b", 20), ("c", 3), ("d", 4)]
    assert s.remove("t", "key", "a") == 1 and s.remove("t", "key", "a") == 0
    assert s.remove_where("t", lambda d: d["v"] > 10) == 1
    s.replace_all("t", [{"key": "x", "v": 9}])
    assert s.all("t") == [{"key": "x", "v": 9}]
    assert backend.documents("other").all("t") == []  # stores do not see each other's tables

    def check_then_write(store):
        if store.get("t", "key", "y") is None:
            store.insert("t", {"key": "y", "v": 0})
        return len(store.all("t"))

    assert s.transaction(check_then_write) == 2
    with pytest.raises(RuntimeError):
        s.transaction(lambda store: (store.insert("t", {"key": "z"}), (_ for _ in ()).throw(RuntimeError()))[0])
    keys = [d["key"] for d in s.all("t")]
    assert "y" in keys
    if backend.kind == "postgresql":
        assert "z" not in keys  # the failed transaction left nothing


def test_registry_keeps_functions_versions_files_and_saved_events(backend, tmp_path):
    reg = _registry(backend, tmp_path, max_versions=3)
    fn = reg.create(
        {
            "name": "hello",
            "runtime": "python",
            "code": "def handler(e, c):\n    return 1\n",
            "files": {"lib/util.py": "X = 1\n"},
        }
    )
    for i in range(4):
        reg.update("hello", {"code": f"def handler(e, c):\n    return {i + 2}\n"})
    assert reg.get("HELLO").version == 5
    versions = reg.versions("hello")
    assert [v.version for v in versions] == [3, 4, 5]  # max_versions pruned the oldest
    assert versions[0].code.endswith("return 3\n") and versions[0].files == {"lib/util.py": "X = 1\n"}
    with pytest.raises(Conflict):
        reg.create({"name": "Hello", "runtime": "python", "code": "x"})
    reg.save_event("hello", "sample", {"a": 1})
    assert [e.name for e in reg.saved_events("hello")] == ["sample"]
    rolled = reg.rollback("hello", 3)
    assert rolled.version == 6 and rolled.code.endswith("return 3\n")
    # A second registry on the same store (another process) reads the same.
    other = _registry(backend, tmp_path)
    assert other.get(fn.id).code == rolled.code and other.get(fn.id).files == {"lib/util.py": "X = 1\n"}
    reg.delete("hello")
    with pytest.raises(NotFound):
        reg.get("hello")
    assert reg.saved_events.__self__ is reg  # noqa: PLR0124  (the registry still answers after a delete)


def test_history_queries_match_on_both_backends(backend, tmp_path):
    h = backend.history(tmp_path / "data" / "history", max_records=1000, max_age=timedelta(days=7))
    base = datetime.now(UTC) - timedelta(minutes=10)
    ids = []
    for i in range(30):
        rec = _record(
            fn_id="f1" if i % 2 else "f2",
            status="failed" if i % 3 == 0 else "success",
            trigger="http" if i % 5 == 0 else "manual",
            when=base + timedelta(seconds=i),
            n=i,
        )
        ids.append(rec.id)
        h.add(rec)
    h.flush()
    assert len(h) == 30
    assert [r.event["n"] for r in h.query(limit=3)] == [29, 28, 27]  # newest first
    assert [r.event["n"] for r in h.query(function_id="f1", limit=2, offset=1)] == [27, 25]
    assert all(r.status == "failed" for r in h.query(status="failed", limit=100))
    assert len(h.query(status="failed", limit=100)) == 10
    assert [r.event["n"] for r in h.query(trigger="http", limit=100)] == [25, 20, 15, 10, 5, 0]
    window = h.query(since=base + timedelta(seconds=10), until=base + timedelta(seconds=12), limit=100)
    assert [r.event["n"] for r in window] == [12, 11, 10]
    assert h.counts() == {"failed": 10, "success": 20}
    assert h.get(ids[4]).event == {"n": 4}
    assert h.get(ids[7][:13]).id == ids[7]  # a unique prefix is enough
    with pytest.raises(NotFound):
        h.get("nope")
    h.add(_record(id="abc-1"))
    h.add(_record(id="abc-2"))
    with pytest.raises(InvalidInput, match="is the start of 2 invocation ids"):
        h.get("abc-")  # unflushed records are found too


def test_history_retention_keeps_the_newest(backend, tmp_path):
    h = backend.history(tmp_path / "data" / "history", max_records=100, max_age=timedelta(days=1))
    old = _record(when=datetime.now(UTC) - timedelta(days=2), n=-1)
    h.add(old)
    for i in range(250):
        h.add(_record(n=i))
    h.flush()
    if backend.kind == "postgresql":
        assert len(h) == 100 and h.query(limit=1)[0].event == {"n": 249}
    with pytest.raises(NotFound):
        h.get(old.id)


def test_without_a_url_nothing_of_psycopg_is_imported(tmp_path):
    data = str(tmp_path / "d")
    code = (
        "import sys, asyncio; from core.config import load_config; from core.local import LocalPlatform; "
        f"p = LocalPlatform(load_config(flags={{'storage.data_dir': {data!r}}}), install_examples=False); "
        "asyncio.run(p.close()); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool') "
        "or m == 'core.storage.postgres'); print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_storage_url_from_env_file_and_the_originals_storage_yaml(tmp_path):
    from core.config import load_config
    from core.errors import ConfigError

    assert (
        load_config(environ={"CLOUDFN_STORAGE_URL": "postgresql://u:p@db/x"})["storage.url"] == "postgresql://u:p@db/x"
    )
    assert load_config(environ={"CLOUDFN_STORAGE_URL": "none"})["storage.url"] is None
    with pytest.raises(ConfigError, match="CLOUDFN_STORAGE_URL.*postgresql://USER:PASSWORD@HOST:PORT/DATABASE") as exc:
        load_config(environ={"CLOUDFN_STORAGE_URL": "mysql://u:hunter2@db/x?password=hunter3"})
    assert "hunter" not in exc.value.message and "u:***@" in exc.value.message
    f = tmp_path / "storage.yaml"
    f.write_text(
        'storage:\n  primary:\n    type: "postgresql"\n    host: "${DB_HOST}"\n    port: 5432\n'
        '    database: "cloudfunction"\n    username: "${DB_USER}"\n    password: "${DB_PASSWORD}"\n'
        '    ssl_mode: "require"\n'
    )
    env = {"DB_HOST": "db.internal", "DB_USER": "cf", "DB_PASSWORD": "s3cr/t"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        c = load_config(f, environ={})
    assert c["storage.url"] == "postgresql://cf:s3cr%2Ft@db.internal:5432/cloudfunction?sslmode=require"
    assert "storage.primary" not in c.ignored
    assert load_config(f, environ={})["storage.url"] is None  # ${DB_HOST} unset: reported ignored, as before


def test_a_bad_or_unreachable_url_is_a_clear_error_without_the_password(tmp_path):
    from core.errors import ConfigError, Unavailable
    from core.storage.postgres import PostgresBackend

    with pytest.raises(ConfigError, match=r"storage.url .*not a PostgreSQL URL.*CLOUDFN_STORAGE_URL") as bad:
        PostgresBackend("postgresql://u:hunter2@:notaport/db")
    assert "hunter2" not in bad.value.message
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(Unavailable, match="cannot reach the PostgreSQL storage") as down:
        PostgresBackend(f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    assert "hunter2" not in down.value.message and "u:***@" in down.value.message


async def test_info_shows_the_backend_with_the_password_masked(tmp_path, pg_url, postgres_server):
    from cloudfn_tui.output import info_text
    from core.config import load_config
    from core.local import LocalPlatform

    p = LocalPlatform(
        load_config(environ={}, flags={"storage.data_dir": str(tmp_path / "d"), "storage.url": pg_url}),
        install_examples=False,
    )
    try:
        info = await p.info()
    finally:
        await p.close()
    text = json.dumps(info) + info_text(info)
    assert postgres_server.password not in text
    assert info["storage"]["location"].startswith("postgresql postgresql://cloudfn:***@127.0.0.1:")
    assert "storage: postgresql postgresql://cloudfn:***@" in info_text(info)
    assert info["settings"]["storage.url"]["value"].startswith("postgresql://cloudfn:***@")


def test_gateways_starting_at_once_migrate_the_schema_once(pg_url):
    import threading

    import psycopg

    from core.storage.postgres import MIGRATIONS, PostgresBackend

    opened: list[PostgresBackend] = []
    failed: list[BaseException] = []
    go = threading.Barrier(4)

    def start() -> None:
        go.wait()
        try:
            opened.append(PostgresBackend(pg_url, max_size=2))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failed.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in opened:
        b.close()
    assert not failed and len(opened) == 4
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM cloudfn_schema_version ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
