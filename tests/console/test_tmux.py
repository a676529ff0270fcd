"""The real console in a real terminal (tmux): start, see the examples, invoke one, quit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _wait_for(session: str, needle: str, timeout: float = 30.0) -> str:
    """Poll the terminal's contents (the only way to observe another process's screen)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if needle in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared; the screen was:\n{screen}")


def test_the_console_in_tmux_lists_invokes_and_quits(tmp_path):
    session = f"cloudfn-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "TERM": "xterm-256color", "PYTHONPATH": str(REPO)}
    cmd = f"{sys.executable} -m cloudfn_tui.cli --data-dir {tmp_path / 'd'} console; echo EXITED=$?; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True, env=env, cwd=REPO)
    try:
        screen = _wait_for(session, "hello-python")
        assert "fail-python" in screen and "sleep-go" in screen and "local ·" in screen
        _wait_for(session, "Logs · following")  # the live panes are up: keys are read now
        subprocess.run(["tmux", "send-keys", "-t", session, "/"], check=True)
        _wait_for(session, "filter: name")
        subprocess.run(["tmux", "send-keys", "-t", session, "hello-py"], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        _wait_for(session, "hello-python · python")
        subprocess.run(["tmux", "send-keys", "-t", session, "C-r"], check=True)  # the tmux-safe invoke key
        screen = _wait_for(session, "✓ success")
        assert "Hello, World!" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        _wait_for(session, "EXITED=0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
