"""PostgreSQL storage shared by several platforms (the cluster's gateways), and PostgreSQL
restarted under load: requests fail with a clear Unavailable, succeed again after, and nothing
acknowledged is lost. A real server (tests/pgserver.py); each platform on its own data dir."""

from __future__ import annotations

import asyncio
import threading

from core.config import load_config
from core.errors import Unavailable
from core.local import LocalPlatform

CODE = "def handler(event, context):\n    return {'v': %d}\n"


def _platform(tmp_path, url, name):
    flags = {"storage.data_dir": str(tmp_path / name), "storage.url": url, "monitor.alert_interval": 0}
    return LocalPlatform(load_config(environ={}, flags=flags), install_examples=False, announce=False)


async def test_two_platforms_on_one_database_see_each_others_writes(tmp_path, pg_url):
    a, b = _platform(tmp_path, pg_url, "a"), _platform(tmp_path, pg_url, "b")
    try:
        assert await b.list_functions() == []  # b's cache is loaded (empty) before a writes
        fn = await a.create_function(
            {"name": "shared", "runtime": "python", "code": CODE % 1, "files": {"data.txt": "hello"}}
        )
        got = await b.get_function("shared")
        assert (got.id, got.code, got.files) == (fn.id, CODE % 1, {"data.txt": "hello"})
        assert (await b.invoke("shared", {})).result == {"v": 1}
        await a.update_function("shared", {"code": CODE % 2})
        assert (await b.get_function("shared")).version == 2
        assert (await b.invoke("shared", {})).result == {"v": 2}  # b runs the new version, not a stale cache
        assert [v.version for v in await b.function_versions("shared")] == [1, 2]
        await b.save_event("shared", "sample", {"x": 1})
        assert [e.name for e in await a.list_saved_events("shared")] == ["sample"]
        rule = await a.create_alert_rule(
            {"name": "errs", "metric": "error_rate", "comparison": ">", "threshold": 50, "window": 60}
        )
        assert [r.id for r in await b.list_alert_rules() if r.name == "errs"] == [rule.id]
        assert len(await b.list_alert_rules()) == 3  # the two seed rules, installed once
        r1 = await a.invoke("shared", {"from": "a"})
        a.history.flush()  # what the owner's flush loop does every second
        seen = await b.get_invocation(r1.invocation_id)
        assert seen.event == {"from": "a"} and seen.result == {"v": 2}
        ids = {r.id for r in await b.list_invocations(function="shared")}
        assert r1.invocation_id in ids and len(ids) == 3
        await b.delete_function("shared")
        assert await a.list_functions() == []
        info = await a.info()
        assert info["storage"]["backend"] == "postgresql" and info["storage"]["shared"] is True
    finally:
        await a.close()
        await b.close()


async def test_postgresql_restarted_under_load_loses_nothing_acknowledged(tmp_path, pg_url, postgres_server):
    p = _platform(tmp_path, pg_url, "p")
    acked: list[str] = []
    progress = asyncio.Event()  # set at each acknowledged create
    errors: list[Unavailable] = []
    stop = threading.Event()
    outage_seen = threading.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            name = f"w-{i}"
            i += 1
            try:
                await p.create_function({"name": name, "runtime": "python", "code": CODE % i})
            except Unavailable as exc:
                errors.append(exc)
                outage_seen.set()
                continue
            acked.append(name)
            progress.set()

    try:
        await p.create_function({"name": "warm", "runtime": "python", "code": CODE % 0})
        task = asyncio.create_task(writer())
        while len(acked) < 20:
            progress.clear()
            await progress.wait()
        await asyncio.to_thread(postgres_server.stop, "fast")
        # While the server is away, invocations still run (the registry serves what it read);
        # their records wait in memory for the next flush.
        during = await p.invoke("warm", {"during": True})
        assert during.result == {"v": 0}
        await asyncio.to_thread(outage_seen.wait, 30)
        await asyncio.to_thread(postgres_server.start)
        before = len(acked)
        while len(acked) < before + 20:  # writes succeed again once the pool reconnects
            progress.clear()
            await asyncio.wait_for(progress.wait(), 30)
        stop.set()
        await task
        assert errors, "no request met the outage"
        for exc in errors:
            assert "unavailable" in exc.message and "retry" in exc.message
            assert postgres_server.password not in exc.message and "***" in exc.message
        names = {f.name for f in await p.list_functions()}
        assert set(acked) <= names  # every create that returned is there
        assert p.history.flush() >= 0
        assert (await p.get_invocation(during.invocation_id)).event == {"during": True}
    finally:
        stop.set()
        await p.close()


def test_two_served_gateways_share_functions_and_answer_503_while_postgresql_is_away(tmp_path, pg_url, postgres_server):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from serverproc import start_server

    a = start_server(tmp_path / "a", CLOUDFN_STORAGE_URL=pg_url, CLOUDFN_MONITOR_ALERT_INTERVAL="0")
    b = start_server(tmp_path / "b", CLOUDFN_STORAGE_URL=pg_url, CLOUDFN_MONITOR_ALERT_INTERVAL="0")
    try:
        with a.client() as ca, b.client() as cb:
            r = ca.post("/api/v1/functions", json={"name": "via-a", "runtime": "python", "code": CODE % 7})
            assert r.status_code == 201, r.text
            assert cb.post("/api/v1/functions/via-a/invoke", json={}).json()["result"] == {"v": 7}
            info = cb.get("/api/v1/info").json()
            assert info["storage"]["backend"] == "postgresql" and postgres_server.password not in str(info)
            postgres_server.stop("fast")
            try:
                r = ca.post("/api/v1/functions", json={"name": "during", "runtime": "python", "code": CODE % 1})
                assert r.status_code == 503, r.text
                body = r.json()
                assert body["type"] == "Unavailable" and "PostgreSQL storage" in body["error"]
                assert postgres_server.password not in r.text
            finally:
                postgres_server.start()
            r = ca.post("/api/v1/functions", json={"name": "after", "runtime": "python", "code": CODE % 2})
            while r.status_code == 503:  # at most FAIL_FAST (1 s) after the last failure
                r = ca.post("/api/v1/functions", json={"name": "after", "runtime": "python", "code": CODE % 2})
            assert r.status_code == 201, r.text
            names = [f["name"] for f in cb.get("/api/v1/functions").json()["functions"]]
            assert {"via-a", "after"} <= set(names) and "during" not in names
            assert len(names) == len(set(names))  # the bundled examples, installed once by two gateways
    finally:
        assert a.stop() == 0, a.stderr()
        assert b.stop() == 0, b.stderr()
        assert postgres_server.password not in a.stderr() + b.stderr()
