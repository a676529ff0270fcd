"""`cloudfn cluster up`: nats-server, two workers and a gateway on one machine; Ctrl-C stops all."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from serverproc import REPO, server_env

from core.remote import RemotePlatform


async def test_cluster_up_serves_invocations_and_stops_everything_on_ctrl_c(tmp_path, shared_cache):
    env = server_env(tmp_path, shared_cache)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudfn_tui.cli",
            "--data-dir",
            str(tmp_path / "data"),
            "cluster",
            "up",
            "--port",
            "0",
            "--dir",
            str(tmp_path / "c"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(REPO),
        text=True,
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops them all" in line:
                break
        out = "".join(lines)
        assert "worker-1" in out and "worker-2" in out and "ready" in out, out
        url = re.search(r"serving on (http://\S+)", out)
        assert url, out
        token = (tmp_path / "c" / "gateway" / "server.token").read_text().strip()
        api = RemotePlatform(url.group(1), token)
        try:
            await api.create_function(
                {
                    "name": "up",
                    "runtime": "python",
                    "handler": "handler",
                    "code": "def handler(e, c):\n    return e * 2\n",
                }
            )
            assert (await api.invoke("up", 21)).result == 42
            # The gateway asks for heartbeats when it connects; they arrive within moments.
            for _ in range(200):
                nodes = {n["node"] for n in (await api.info())["cluster"]["nodes"]}
                if len(nodes) == 2:
                    break
            assert nodes == {"worker-1", "worker-2"}
            from cloudfn_tui.output import info_text

            text = info_text(await api.info())  # what `cloudfn info` prints
            assert "cluster: nats://" in text and "worker-1" in text and "worker-2" in text and " up " in text
        finally:
            await api.close()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[0]
        assert proc.returncode == 0 and "cluster stopped" in rest, rest
        assert "Traceback" not in rest, rest
    finally:
        if proc.poll() is None:  # its children are in sessions of their own: it must stop them
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
