"""`cloudfn cluster up`: PostgreSQL, nats-server, two workers and two gateways sharing the
database on one machine; Ctrl-C stops all (PostgreSQL included)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pgserver import available
from serverproc import REPO, server_env

from core.remote import RemotePlatform


@pytest.mark.skipif(not available(), reason="Debian's postgresql is not installed")
async def test_cluster_up_serves_invocations_and_stops_everything_on_ctrl_c(tmp_path, shared_cache):
    env = server_env(tmp_path, shared_cache)
    env.pop("CLOUDFN_STORAGE_URL", None)
    env.pop("CLOUDFN_SECRETS_KEY", None)
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
        urls = re.findall(r"serving on (http://\S+)", out)
        assert len(urls) == 2, out
        assert "postgresql    postgresql://cloudfn:***@127.0.0.1" in out, out
        apis = [
            RemotePlatform(u, (tmp_path / "c" / f"gateway-{i + 1}" / "server.token").read_text().strip())
            for i, u in enumerate(urls)
        ]
        api, other = apis
        try:
            await api.set_secret("up-secret", "s3cret-value")
            await api.create_function(
                {
                    "name": "up",
                    "runtime": "python",
                    "handler": "handler",
                    "secret_env": {"S": "up-secret"},
                    "code": "import os\ndef handler(e, c):\n    return [e * 2, len(os.environ['S'])]\n",
                }
            )
            assert (await api.invoke("up", 21)).result == [42, 12]
            # The other gateway: the same function and secret, through the shared database.
            assert (await other.invoke("up", 1)).result == [2, 12]
            # The gateway asks for heartbeats when it connects; they arrive within moments.
            for _ in range(200):
                nodes = {n["node"] for n in (await api.info())["cluster"]["nodes"]}
                if len(nodes) == 2:
                    break
            assert nodes == {"worker-1", "worker-2"}
            from cloudfn_tui.output import info_text

            text = info_text(await api.info())  # what `cloudfn info` prints
            assert "cluster: nats://" in text and "worker-1" in text and "worker-2" in text and " up " in text
            assert "postgresql" in text.lower(), text
        finally:
            for a in apis:
                await a.close()
        # The workers never get the database URL or the secrets key (only the gateways do).
        found = subprocess.run(["pgrep", "-f", str(tmp_path / "c" / "worker-")], capture_output=True, text=True)
        pids = found.stdout.split()
        assert len(pids) >= 2, found
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"CLOUDFN_STORAGE_URL" not in environ and b"CLOUDFN_SECRETS_KEY" not in environ
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[0]
        assert proc.returncode == 0 and "cluster stopped" in rest, rest
        assert "Traceback" not in rest, rest
        folder = re.search(r"\(data in (\S+)\)", out)
        assert folder, out
        pg = subprocess.run(["pgrep", "-f", f"postgres.*{folder.group(1)}"], capture_output=True, text=True)
        assert not pg.stdout.strip(), "PostgreSQL still runs after Ctrl-C"
    finally:
        folder = re.search(r"\(data in (\S+)\)", "".join(lines))
        if folder and "cloudfn-cluster-" in folder.group(1):  # moved to the postgres user's home
            shutil.rmtree(folder.group(1), ignore_errors=True)
        if proc.poll() is None:  # its children are in sessions of their own: it must stop them
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
