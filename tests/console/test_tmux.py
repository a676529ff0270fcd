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


def _wait_for(session: str, needle: str, timeout: float = 30.0, gone: bool = False) -> str:
    """Poll the terminal's contents (the only way to observe another process's screen)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if (needle in screen) != gone:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never {'went' if gone else 'appeared'}; the screen was:\n{screen}")


def _wait_until(session: str, ready, what: str, timeout: float = 30.0) -> str:
    """Poll the terminal until `ready(screen)` holds (as _wait_for, for more than one needle)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if ready(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"never {what}; the screen was:\n{screen}")


def test_the_console_in_tmux_lists_invokes_and_quits(tmp_path):
    session = f"cloudfn-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO),
    }
    cmd = f"{sys.executable} -m cloudfn_tui.cli --data-dir {tmp_path / 'd'} console; echo EXITED=$?; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True, env=env, cwd=REPO
    )
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


def test_alt_digits_in_the_editors_switch_panes_and_type_nothing(tmp_path):
    """tmux sends alt+N as ESC then the digit (Textual reads macOS's ¡ ™ £ ...). From inside
    each editor, every one moves to its pane; none is typed: `q` from the list then quits at
    once, where a typed character would have made a draft and the quit dialog."""
    session = f"cloudfn-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO),
    }
    cmd = f"{sys.executable} -m cloudfn_tui.cli --data-dir {tmp_path / 'd'} console; echo EXITED=$?; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True, env=env, cwd=REPO
    )

    def keys(*k: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, *k], check=True)

    try:
        _wait_for(session, "analyze-text")
        keys("M-5")
        _wait_for(session, "Logs · following")  # the live panes are up: keys are read now

        def in_editor(title: str) -> None:
            # The footer follows the focus a frame after the title: until it shows the editor's
            # keys (no "n New"), the editor may not have the focus yet. An Escape sent then was
            # seen as already handled (the list's "n New" still showing), and the next key came
            # within Textual's ESCDELAY of it: ESC and `q` read as alt+q, and nothing quit.
            _wait_until(session, lambda screen: title in screen and "n New" not in screen, f"{title!r} focused")

        for editor, title in (("M-2", "esc: back to list"), ("M-3", "esc: list · alt+N")):
            for digit in range(1, 9):
                keys(editor)
                in_editor(title)
                keys(f"M-{digit}")
                if f"M-{digit}" != editor:  # at 80x24 one pane shows: the editor's went away
                    _wait_for(session, title, gone=True)
            keys(editor)
            in_editor(title)
            keys("Escape")  # back to the list, whose footer has the list's keys
            # "n New  d Delete", not "n New" alone: the alerts table's footer (alt+8, just before)
            # says "n New rule"
            _wait_until(
                session, lambda screen, t=title: "n New  d Delete" in screen and t not in screen, "the list focused"
            )
        screen = _capture(session)
        assert not set("¡™£¢∞§¶•") & set(screen)
        keys("q")
        _wait_for(session, "EXITED=0", timeout=60)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_quitting_after_a_resize_leaves_the_terminal_as_the_shell_left_it(tmp_path):
    """The console draws on the alternate screen; leaving it must give back the shell's screen
    untouched, also when the terminal grew while the console ran (a window maximised, an SSH
    client's window enlarged): nothing of the console may stay on the user's screen or scrollback."""
    session = f"cloudfn-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO),
    }
    cmd = (
        f"echo shell-before; {sys.executable} -m cloudfn_tui.cli --data-dir {tmp_path / 'd'} console; "
        "echo EXITED=$?; sleep 30"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True, env=env, cwd=REPO
    )
    try:
        _wait_for(session, "Logs · following")  # the live panes are up: keys are read now
        subprocess.run(["tmux", "resize-window", "-t", session, "-x", "150", "-y", "50"], check=True)
        deadline = time.monotonic() + 30
        while not (rows := _capture(session).splitlines()[-1:]) or "palette" not in rows[0]:
            # the footer on row 50: the console saw the new size and drew it
            assert time.monotonic() < deadline, f"the console never redrew at 150x50:\n{_capture(session)}"
            time.sleep(0.1)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        _wait_for(session, "EXITED=0", timeout=60)
        everything = subprocess.run(
            ["tmux", "capture-pane", "-p", "-S", "-", "-t", session], capture_output=True, text=True
        ).stdout  # the scrollback too: the user scrolls back into it
        lines = [line for line in everything.splitlines() if line.strip()]
        assert lines == ["shell-before", "EXITED=0"], f"the console left lines on the terminal:\n{everything}"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
