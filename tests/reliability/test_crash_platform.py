"""The platform SIGKILLed 200 times under a mixed write load (creates, updates, invocations):
after every kill the stores open and every acknowledged function write is there."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from core.history import History
from core.storage import TinyStore

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from core.config import load_config
    from core.local import LocalPlatform

    data_dir, tag = sys.argv[1], sys.argv[2]
    CODE = "def handler(event, context):\\n    return {'v': %d}\\n"

    async def main():
        p = LocalPlatform(load_config(environ={}, flags={"storage.data_dir": data_dir, "monitor.alert_interval": 0}),
                          install_examples=False)
        print("open", flush=True)
        i = 0
        while True:
            name = f"fn-{tag}-{i}"
            fn = await p.create_function({"name": name, "runtime": "python", "code": CODE % 0})
            print("C", name, fn.version, flush=True)
            fn = await p.update_function(name, {"code": CODE % 1, "timeout": 7})
            print("U", name, fn.version, flush=True)
            r = await p.invoke(name, {"i": i})
            print("I", name, r.success, flush=True)
            i += 1

    asyncio.run(main())
    """
)


def _descendants_alive(data_dir) -> list[str]:
    """Processes whose command line mentions the data directory (workers included)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in cmd and "pytest" not in cmd:
            found.append(f"{pid}: {cmd[:120]}")
    return found


def test_200_kills_under_mixed_load_lose_no_acknowledged_function_write(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(99)
    acked: dict[str, int] = {}  # function name -> highest acknowledged version
    invocations = 0
    for round_ in range(200):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), f"r{round_}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stdout.readline().strip() == "open", p.stderr.read()
        seen = [p.stdout.readline() for _ in range(rng.randint(0, 9))]
        time.sleep(rng.uniform(0, 0.01))  # a random kill point, not a wait for anything
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        lines = "".join(seen + [out]).splitlines()
        for n, line in enumerate(lines):
            if len(line.split()) != 3:
                # Only the last line can be cut short by the kill; anything else is stray output.
                assert n == len(lines) - 1, f"round {round_}: unexpected output {line!r} in {lines}"
                continue
            kind, name, value = line.split()
            if kind in "CU":
                acked[name] = max(acked.get(name, 0), int(value))
            elif kind == "I":
                invocations += 1

        # Every store opens; every acknowledged function write is there.
        registry = TinyStore(data_dir / "registry.json")
        stored = {d["name"]: d for d in registry.all("functions")}
        for name, version in acked.items():
            assert name in stored, f"round {round_}: acknowledged create of {name} lost"
            assert stored[name]["version"] >= version, f"round {round_}: acknowledged update of {name} lost"
            if stored[name]["version"] >= 2:
                # The code lives in a file named by its hash, written before the store names it.
                doc = stored[name]
                code = (data_dir / "versions" / doc["id"] / doc["code_sha256"]).read_text()
                assert "{'v': 1}" in code and doc["timeout"] == 7
        registry.close()
        TinyStore(data_dir / "alerts.json").close()
        History(data_dir / "history")

    print(
        f"\nplatform crash test: 200 SIGKILLs, {len(acked)} functions and {invocations} invocations "
        f"acknowledged, 0 function writes lost"
    )
    assert len(acked) >= 100, "too few writes were acknowledged for the test to mean much"
    assert invocations >= 50
    assert _descendants_alive(data_dir) == []

    # And the platform itself starts on what the kills left behind.
    from core.config import load_config
    from core.local import LocalPlatform

    platform = LocalPlatform(load_config(environ={}, flags={"storage.data_dir": str(data_dir)}), install_examples=False)
    assert {f.name for f in platform.registry.list()} >= set(acked)
    platform.lock.release()
    json.loads((data_dir / "registry.json").read_text())
