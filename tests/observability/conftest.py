from __future__ import annotations

import pytest

from core.config import load_config
from core.local import LocalPlatform

ECHO = "def handler(event, context):\n    return event\n"
FAIL = "def handler(event, context):\n    raise RuntimeError('boom')\n"
NAP = "import time\n\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return 'slept'\n"
CHATTY = "def handler(event, context):\n    print('INFO starting')\n    print('ERROR it hurts')\n    return 1\n"


@pytest.fixture
def make_platform(data_dir):
    made: list[LocalPlatform] = []

    def make(**settings) -> LocalPlatform:
        # Alert tests drive evaluation with explicit clocks; no background evaluation races them.
        flags = {"storage.data_dir": str(data_dir), "monitor.alert_interval": 0, **settings}
        p = LocalPlatform(load_config(flags=flags), install_examples=False)
        made.append(p)
        return p

    yield make
    for p in made:
        if not p._closed:
            p.lock.release()


@pytest.fixture
async def platform(make_platform):
    p = make_platform()
    for name, code, timeout in (("echo", ECHO, 30), ("fail", FAIL, 30), ("nap", NAP, 1), ("chatty", CHATTY, 30)):
        await p.create_function({"name": name, "runtime": "python", "code": code, "timeout": timeout})
    yield p
    await p.close()
