"""Issue 15, a function's `files` as an attack surface, against the real `cloudfn serve` (root,
real sandbox): hostile paths sent over HTTP are 422s naming each path with nothing stored; a
function's code cannot reach outside its own folder through its files, cannot write them, and
cannot see another function's files; oversized maps are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import start_server  # noqa: E402

from core.funcfiles import MAX_FILE_BYTES  # noqa: E402

PROBE = (
    "import os\n"
    "HERE = os.path.dirname(__file__)\n"
    "def handler(event, context):\n"
    "    out = {'files': sorted(os.path.relpath(os.path.join(r, f), HERE) for r, _, fs in os.walk(HERE) for f in fs)}\n"
    "    try:\n"
    "        open(os.path.join(HERE, 'lib', 'a.py'), 'w').write('x')\n"
    "        out['write'] = 'writable'\n"
    "    except OSError as exc:\n"
    "        out['write'] = exc.strerror\n"
    "    try:\n"
    "        os.makedirs(os.path.join(HERE, 'new'))\n"
    "        out['mkdir'] = 'made'\n"
    "    except OSError as exc:\n"
    "        out['mkdir'] = exc.strerror\n"
    "    out['other'] = os.path.exists('/function/../secret.txt') or os.path.exists(HERE + '/../other')\n"
    "    return out\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache):
    s = start_server(tmp_path_factory.mktemp("files-attacks"), "--mode", "release", cache=shared_cache)
    yield s
    assert s.stop() == 0, s.stderr()


def test_hostile_paths_over_http_are_named_and_nothing_is_stored(server):
    hostile = [
        "../../etc/cron.d/evil",
        "/root/.ssh/authorized_keys",
        "a/../../b",
        "x\\..\\y",
        "ok/\u202egnp.py",
        "nul\x00.py",
        "lib//a.py",
        "handler.py",
        ".cloudfn-start",
    ]
    body = {"name": "evil-files", "runtime": "python", "code": PROBE, "files": {p: "x" for p in hostile}}
    with server.client() as c:
        r = c.post("/api/v1/functions", json=body)
        assert r.status_code == 422, r.text
        named = {e["field"] for e in r.json()["errors"]}
        # control and invisible characters come back escaped: a terminal showing the error is safe
        assert named == {"files." + p.replace("\u202e", "\\u202e").replace("\x00", "\\u0000") for p in hostile}
        assert "\u202e" not in r.json()["error"] and "Traceback" not in r.text
        assert c.get("/api/v1/functions/evil-files").status_code == 404
        # a value that is not text, and a map too large for one file, are named too
        r = c.post("/api/v1/functions", json={**body, "files": {"a.py": {"nested": 1}}})
        assert r.status_code == 422 and "files.a.py" in r.text, r.text
        r = c.post("/api/v1/functions", json={**body, "files": {"big.txt": "x" * (MAX_FILE_BYTES + 1)}})
        assert r.status_code == 422 and str(MAX_FILE_BYTES) in r.text, r.text
        assert c.get("/api/v1/functions/evil-files").status_code == 404


def test_a_functions_files_are_read_only_and_its_own_only(server):
    with server.client() as c:
        r = c.post(
            "/api/v1/functions",
            json={
                "name": "other",
                "runtime": "python",
                "code": "def handler(e, c):\n    return 1\n",
                "files": {"secret.txt": "OTHER-SECRET"},
            },
        )
        assert r.status_code in (200, 201), r.text
        r = c.post(
            "/api/v1/functions",
            json={
                "name": "probe-files",
                "runtime": "python",
                "code": PROBE,
                "files": {"lib/a.py": "A = 1\n", "lib/b.txt": "b"},
            },
        )
        assert r.status_code in (200, 201), r.text
        r = c.post("/api/v1/functions/probe-files/invoke", json={"event": {}})
        res = r.json()
        assert res["success"], res
        out = res["result"]
        assert out["files"] == ["handler.py", "lib/a.py", "lib/b.txt"]
        assert out["write"] in ("Read-only file system", "Permission denied")
        assert out["mkdir"] in ("Read-only file system", "Permission denied")
        assert out["other"] is False
        assert "OTHER-SECRET" not in r.text
