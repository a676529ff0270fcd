"""Local stays local: without cluster.nats_url, nothing of NATS is imported or started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, sys
from core.config import load_config
from core.local import LocalPlatform
import cloudfn_tui.cli
async def main():
    p = LocalPlatform(load_config(flags={"storage.data_dir": sys.argv[1]}), install_examples=False)
    await p.start()
    info = await p.info()
    await p.close()
    return info
info = asyncio.run(main())
loaded = sorted(m for m in sys.modules if m == "nats" or m.startswith(("nats.", "core.cluster")))
print(info["mode"], loaded)
"""


def test_the_embedded_platform_imports_no_nats(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFN_")}
    env.update(PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "local []"


def test_a_nats_url_with_credentials_in_it_is_refused_with_where_they_go(tmp_path):
    from core.config import load_config
    from core.errors import ConfigError

    try:
        load_config(environ={"CLOUDFN_CLUSTER_NATS_URL": "nats://me:pw@host:4222"})
    except ConfigError as exc:
        assert "cluster.nats_user" in exc.message
    else:
        raise AssertionError("accepted a URL with a password in it")


WITHOUT_NATS = """
import sys
sys.modules["nats"] = None  # an install without the `cluster` extra
from cloudfn_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_nats_py_cluster_mode_names_the_extra_to_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFN_")}
    env.update(PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(tmp_path / "cfg"), CLOUDFN_DATA_DIR=str(tmp_path / "d"))
    env["CLOUDFN_CLUSTER_NATS_URL"] = "nats://127.0.0.1:4222"
    for argv in (["worker"], ["list"]):
        out = subprocess.run(
            [sys.executable, "-c", WITHOUT_NATS, *argv], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert "pip install 'cloudfn[cluster]'" in out.stderr, (argv, out.stderr)
        assert "Traceback" not in out.stderr, (argv, out.stderr)
