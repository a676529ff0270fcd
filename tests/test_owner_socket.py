"""Many cloudfn processes, one data directory: the owner serves the API on a private socket and
every other `cloudfn` attaches to it; read-only commands leave no trace; the CLI's small
courtesies (did you mean, id prefixes, confirmations)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.config import load_config
from core.errors import Unavailable
from core.local import LocalPlatform
from core.models import InvocationRecord
from core.remote import attach_to_socket
from core.server.owner import SOCKET_FILE, probe

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))
from serverproc import REPO, start_server  # noqa: E402

PRINTS = "def handler(event, context):\n    print('marker ' + str((event or {}).get('n')))\n    return {'ok': True}\n"
DEADLINE = 60.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


async def _cloudfn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloudfn_tui.cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=str(REPO),
    )


async def _line_with(proc: asyncio.subprocess.Process, needle: str, deadline: float = DEADLINE) -> str:
    """The first stdout line of `proc` holding `needle`: waiting on the output, never sleeping."""
    seen = []

    async def read() -> str:
        while True:
            line = (await proc.stdout.readline()).decode(errors="replace")
            if not line:
                raise AssertionError(f"output ended without {needle!r}:\n{''.join(seen)}")
            seen.append(line)
            if needle in line:
                return line

    try:
        return await asyncio.wait_for(read(), deadline)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {deadline} s:\n{''.join(seen)}") from None


async def _stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.terminate()
    _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    return err.decode(errors="replace")


def _log_lines(data_dir: Path) -> list[str]:
    path = data_dir / "logs" / "cloudfn.jsonl"
    return path.read_text().splitlines() if path.exists() else []


# -- the owner's socket ---------------------------------------------------------------------------
async def test_a_second_process_attaches_through_the_owners_socket(config, data_dir):
    """An owner that serves no TCP at all (as the console): `cloudfn invoke` from another process
    can only succeed through the socket, and `cloudfn logs -f`, which holds nothing, shows the
    line the function printed."""
    owner = LocalPlatform(config, command="cloudfn console", install_examples=False, serve_socket=True)
    follow = None
    try:
        await owner.start()
        sock = data_dir / SOCKET_FILE
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
        await owner.create_function({"name": "printer", "runtime": "python", "handler": "handler", "code": PRINTS})

        follow = await _cloudfn("--data-dir", str(data_dir), "logs", "-f", "--function", "printer")
        invoke = await _cloudfn("--data-dir", str(data_dir), "invoke", "printer", "--event", '{"n": 4242}')
        out, err = await asyncio.wait_for(invoke.communicate(), DEADLINE)
        assert invoke.returncode == 0, err.decode()
        assert out.decode().startswith("ok ") and "marker 4242" in out.decode()
        assert "[printer] marker 4242" in await _line_with(follow, "marker 4242")
        # It ran in the owner: its history has it, and the second process left no lock of its own.
        assert (await owner.list_invocations("printer"))[0].logs.strip() == "marker 4242"
        assert json.loads((data_dir / "cloudfn.lock").read_text())["command"] == "cloudfn console"
        # A line made after the follow began reaches it too.
        await owner.invoke("printer", {"n": 7})
        await _line_with(follow, "marker 7")
    finally:
        if follow is not None:
            await _stop(follow)
        await owner.close()
    assert not (data_dir / SOCKET_FILE).exists()  # the owner removes its socket when it stops


async def test_a_symlink_at_the_socket_path_is_refused(config, data_dir, tmp_path, cli):
    target = tmp_path / "elsewhere.sock"
    owner = LocalPlatform(config, install_examples=False, serve_socket=True)
    (data_dir / SOCKET_FILE).symlink_to(target)
    try:
        with pytest.raises(Unavailable, match="symbolic link"):
            await owner.start()
    finally:
        await owner.close()
    assert not target.exists() and (data_dir / SOCKET_FILE).is_symlink()
    with pytest.raises(Unavailable, match="symbolic link"):
        attach_to_socket(data_dir)
    code, _, err = await asyncio.to_thread(cli, "list")
    assert code == 5 and "symbolic link" in err and "Traceback" not in err


async def test_a_stale_socket_is_detected_and_replaced(config, data_dir, cli):
    data_dir.mkdir(parents=True, mode=0o700)
    dead = socket.socket(socket.AF_UNIX)  # what a killed owner leaves: a socket file, nobody listening
    dead.bind(str(data_dir / SOCKET_FILE))
    dead.close()
    assert probe(data_dir / SOCKET_FILE) == "stale" and attach_to_socket(data_dir) is None
    assert (await asyncio.to_thread(cli, "list"))[0] == 0  # refused connect: no owner, so the command owns briefly
    owner = LocalPlatform(config, install_examples=False, serve_socket=True)
    try:
        await owner.start()
        assert probe(data_dir / SOCKET_FILE) == "live"
        attached = attach_to_socket(data_dir)
        try:
            assert (await attached.health())["status"] == "ok"
        finally:
            await attached.close()
    finally:
        await owner.close()


async def test_remote_logs_follow_shows_new_lines(tmp_path, shared_cache):
    """`cloudfn --remote URL logs -f` prints what a function prints after it started (the served
    event stream used to carry no log line)."""
    from core.remote import RemotePlatform

    server = start_server(tmp_path / "srv", "--mode", "release", cache=shared_cache)
    follow = None
    remote = RemotePlatform(server.url, server.token)
    try:
        await remote.create_function({"name": "printer", "runtime": "python", "handler": "handler", "code": PRINTS})
        follow = await _cloudfn("--remote", server.url, "--token", server.token, "logs", "-f", "--function", "printer")
        # The follow prints the stored lines, then subscribes. Once any line of ours shows, its
        # query is done, so a "b" line can only come through the event stream.
        for phase in ("a", "b"):
            task = asyncio.ensure_future(_line_with(follow, f"marker {phase}", DEADLINE))
            for n in range(100):
                await remote.invoke("printer", {"n": f"{phase}{n}"})
                done, _ = await asyncio.wait({task}, timeout=0.5)
                if done:
                    break
            line = await task
        assert "[printer] marker b" in line
    finally:
        await remote.close()
        if follow is not None:
            await _stop(follow)
        assert server.stop() == 0


# -- read-only commands ---------------------------------------------------------------------------
def test_read_only_commands_leave_no_trace_and_metrics_count_the_history(cli, data_dir, tmp_path):
    code_file = tmp_path / "p.py"
    code_file.write_text(PRINTS)
    assert cli("create", "--name", "printer", "--runtime", "python", "--file", str(code_file))[0] == 0
    for n in range(3):
        assert cli("invoke", "printer", "--event", json.dumps({"n": n}))[0] == 0
    before = _log_lines(data_dir)
    assert not any("platform started" in line or "platform stopped" in line for line in before)
    for argv in (["list"], ["get", "printer"], ["history"], ["logs"], ["metrics"], ["alerts", "list"]):
        code, _, err = cli(*argv)
        assert code == 0, (argv, err)
    assert _log_lines(data_dir) == before  # not a line more
    code, out, _ = cli("metrics", "--json")
    snap = json.loads(out)
    assert snap["source"] == "history" and snap["total_executions"] == 3
    assert snap["functions"]["printer"]["invocations"] == 3
    code, out, _ = cli("metrics")
    assert code == 0 and "invocations 3" in out and "from the history since" in out
    code, out, _ = cli("metrics", "--since", "2099-01-01T00:00:00+00:00", "--json")
    assert json.loads(out)["total_executions"] == 0


# -- small courtesies -----------------------------------------------------------------------------
def test_a_typo_in_a_function_name_suggests_the_closest(cli):
    code, _, err = cli("invoke", "helo-python")
    assert code == 3 and "did you mean 'hello-python'?" in err
    code, _, err = cli("get", "zzzzqqqq")
    assert code == 3 and "did you mean" not in err


async def test_history_id_takes_a_unique_prefix_and_prints_a_human_form(cli, config):
    p = LocalPlatform(config, install_examples=False)
    try:
        fn = await p.create_function({"name": "printer", "runtime": "python", "handler": "handler", "code": PRINTS})
        when = datetime.now(UTC)
        for rid in ("abc1" + "0" * 32, "abc2" + "0" * 32, "f00d" + "1" * 32):
            p.history.add(
                InvocationRecord(
                    id=rid,
                    function_id=fn.id,
                    function_name=fn.name,
                    function_version=1,
                    runtime="python",
                    status="success",
                    started_at=when,
                    result={"ok": rid},
                    logs="marker x\n",
                )
            )
    finally:
        await p.close()
    code, out, err = await asyncio.to_thread(cli, "history", "--id", "f00d")
    assert code == 0, err
    assert out.startswith(f"invocation f00d{'1' * 32}\n") and "marker x" in out and "printer" in out
    with pytest.raises(ValueError):
        json.loads(out)
    code, out, _ = await asyncio.to_thread(cli, "history", "--id", "f00d", "--json")
    assert json.loads(out)["id"] == "f00d" + "1" * 32
    code, _, err = await asyncio.to_thread(cli, "history", "--id", "abc")
    assert code == 2 and "abc1" in err and "abc2" in err and "more characters" in err
    code, _, err = await asyncio.to_thread(cli, "history", "--id", "0123")
    assert code == 3 and "no invocation" in err


def test_alerts_delete_asks_first(cli, monkeypatch):
    assert cli("alerts", "add", "slow", "--metric", "error_rate", "--threshold", "50")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no terminal
    code, _, err = cli("alerts", "delete", "slow")
    assert code == 2 and "--yes" in err
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, out, _ = cli("alerts", "delete", "slow")
    assert code == 0 and out.strip() == "not deleted"
    assert "slow" in cli("alerts", "list")[1]
    code, out, _ = cli("alerts", "delete", "slow", "--yes")
    assert code == 0 and out.strip() == "deleted alert rule slow"
    code, _, err = cli("alerts", "delete", "slow", "--yes")
    assert code == 3 and "no alert rule named 'slow'" in err


async def test_a_killed_owners_socket_is_replaced_by_the_next_owner(tmp_path, shared_cache):
    """A `cloudfn serve` killed with SIGKILL leaves its socket file; the next command finds it
    refusing connections, owns the directory and serves a socket of its own."""
    import signal

    server = start_server(tmp_path / "srv", "--mode", "release", cache=shared_cache)
    sock = server.data_dir / SOCKET_FILE
    assert probe(sock) == "live"
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    assert probe(sock) == "stale"
    owner = LocalPlatform(load_config(flags={"storage.data_dir": str(server.data_dir)}), serve_socket=True)
    try:
        await owner.start()
        assert probe(sock) == "live"  # (a freed inode number is reused at once: no inode check)
        follower = await _cloudfn("--data-dir", str(server.data_dir), "invoke", "hello-python")
        out, err = await asyncio.wait_for(follower.communicate(), DEADLINE)
        assert follower.returncode == 0, err.decode()
        assert len(await owner.list_invocations("hello-python")) == 1  # it ran in the new owner
    finally:
        await owner.close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to be another uid")
async def test_a_peer_of_another_uid_is_hung_up_on_even_if_the_modes_are_loosened():
    import tempfile

    # Under /tmp itself: pytest's own temporary folders are 0700, which would stop the other uid
    # before the socket does.
    data_dir = Path(tempfile.mkdtemp(prefix="cloudfn-peer-", dir="/tmp"))
    owner = LocalPlatform(
        load_config(flags={"storage.data_dir": str(data_dir)}), install_examples=False, serve_socket=True
    )
    try:
        await owner.start()
        sock = data_dir / SOCKET_FILE
        # What a user might do by hand: open the folder and the socket to everyone.
        os.chmod(data_dir, 0o711)
        os.chmod(sock, 0o666)
        client = (
            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(b'GET /api/v1/health HTTP/1.1\\r\\nhost: localhost\\r\\n\\r\\n'); "
            "print(repr(s.recv(100)))"
        )
        probe_as = await asyncio.create_subprocess_exec(
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-I",
            "-c",
            client,
            str(sock),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(probe_as.communicate(), DEADLINE)
        # Hung up unanswered: an empty read, or a reset.
        assert out.decode().strip() == "b''" or b"ConnectionResetError" in err, (out, err)
        mine = attach_to_socket(data_dir)  # the owner's own uid is still served
        try:
            assert (await mine.health())["status"] == "ok"
        finally:
            await mine.close()
    finally:
        await owner.close()
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_an_owner_that_stops_lets_an_attached_invocation_finish(config, data_dir):
    """A quick owner (a CLI call) closing while another process's invocation runs through its
    socket waits for it, rather than cutting it off."""
    # Longer than uvicorn's own 2 s grace (timeout_graceful_shutdown), which alone cut it off.
    slow = "import time\n\ndef handler(event, context):\n    time.sleep(3)\n    return {'slept': True}\n"
    owner = LocalPlatform(config, install_examples=False, serve_socket=True)
    await owner.start()
    try:
        await owner.create_function({"name": "slow", "runtime": "python", "handler": "handler", "code": slow})
        started = owner.events({"invocation.started"})
        invoke = await _cloudfn("--data-dir", str(data_dir), "invoke", "slow", "--json")
        ev = await asyncio.wait_for(anext(started), DEADLINE)  # it is running in the owner now
        assert ev.data["function_name"] == "slow"
        await started.aclose()
    finally:
        await owner.close()
    out, err = await asyncio.wait_for(invoke.communicate(), DEADLINE)
    assert invoke.returncode == 0, err.decode()
    assert json.loads(out)["result"] == {"slept": True}
