"""Pre-started sandboxes (prewarm.py): a cold start adopts one, with exactly the isolation of a
freshly started worker, and nothing of them is left after close."""

from __future__ import annotations

import os

import pytest
from exec_helpers import fn

from core.executors.sandbox import BASE_ENV
from core.models import ErrorType

PROBE = (
    "import os, resource\n"
    "def handler(event, context):\n"
    "    out = {'env': dict(os.environ), 'files': sorted(os.listdir('/function')), 'uid': os.getuid(),\n"
    "           'cpu': resource.getrlimit(resource.RLIMIT_CPU), 'data': resource.getrlimit(resource.RLIMIT_DATA),\n"
    "           'nofile': resource.getrlimit(resource.RLIMIT_NOFILE), 'code': open(__file__).read()}\n"
    "    try:\n        open(__file__, 'a').write('# changed')\n        out['write'] = 'writable'\n"
    "    except OSError as exc:\n        out['write'] = exc.strerror\n"
    "    return out\n"
)


def _adopted(svc, f) -> bool:
    """Whether the function's warm worker is a pre-started sandbox that took it on."""
    pool = svc._pools[(f.id, f.version)]
    workers = list(pool.idle) + list(pool.busy)
    assert len(workers) == 1
    return workers[0].slot is not None


@pytest.fixture
async def prewarmed(make_service):
    svc = make_service(prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    await svc.prewarm.wait_ready()
    assert svc.stats()["prewarmed"]["python"] == 1, svc.stats()["prewarm_problem"]
    return svc


async def test_a_cold_start_adopts_a_sandbox_with_the_functions_own_limits(prewarmed, monkeypatch):
    monkeypatch.setenv("CLOUDFN_TEST_SECRET", "hunter2")  # the platform's: never visible
    f = fn("python", PROBE, environment={"GREETING": "hi"}, memory=200, timeout=7)
    res = await prewarmed.invoke(f, {})
    assert res.success, res.error
    assert res.cold_start and _adopted(prewarmed, f)
    r = res.result
    env = dict(r["env"])
    env.pop("PWD", None)  # as in a freshly started worker
    assert env == {**BASE_ENV, "GREETING": "hi"}, r["env"]
    assert r["files"] == ["handler.py"] and r["code"] == PROBE
    assert r["write"] in ("Read-only file system", "Permission denied")
    assert r["uid"] == 65534
    budget = max(7 * 4, 120)
    assert r["cpu"][1] == budget + 1  # the function's CPU budget, not the waiting sandbox's
    assert r["data"] == [(200 + 256) * 1024 * 1024] * 2
    assert r["nofile"] == [1024, 1024]
    # The pool refills in the background.
    await prewarmed.prewarm.wait_ready()
    assert prewarmed.stats()["prewarmed"]["python"] == 1


async def test_an_adopted_sandbox_gets_the_functions_memory_limit(prewarmed):
    hog = "def handler(event, context):\n    b = bytearray(event['mb'] * 1024 * 1024)\n    return len(b)\n"
    # Above the waiting sandbox's own 128 MB: the limit was raised to the function's.
    big = fn("python", hog, name="big", memory=512)
    res = await prewarmed.invoke(big, {"mb": 300})
    assert res.success and _adopted(prewarmed, big), res.error
    await prewarmed.prewarm.wait_ready()
    # And lowered: 64 MB is enforced by the cgroup (RLIMIT_DATA is 64 + 256 MB here).
    small = fn("python", hog, name="small", memory=64)
    res = await prewarmed.invoke(small, {"mb": 100})
    assert res.cold_start and res.error_type == ErrorType.MEMORY_LIMIT, res.error


async def test_a_sandbox_shows_only_its_own_functions_files(prewarmed):
    code = (
        "import os\ndef handler(e, c):\n    return {'files': os.listdir('/function'), 'code': open(__file__).read()}\n"
    )
    seen = []
    for name in ("first", "second", "third"):
        await prewarmed.prewarm.wait_ready()
        f = fn("python", code + f"# {name}\n", name=name)
        res = await prewarmed.invoke(f, {})
        assert res.success and _adopted(prewarmed, f), res.error
        assert res.result["files"] == ["handler.py"]
        assert res.result["code"].endswith(f"# {name}\n")
        seen.append(res.result["code"])
    assert len(set(seen)) == 3


async def test_update_of_an_adopted_function_never_runs_old_code(prewarmed):
    f = fn("python", "def handler(e, c):\n    return 'v1'\n")
    assert (await prewarmed.invoke(f, {})).result == "v1"
    for v in (2, 3):
        await prewarmed.prewarm.wait_ready()
        f = f.model_copy(update={"code": f"def handler(e, c):\n    return 'v{v}'\n", "version": v})
        await prewarmed.retire(f.id)
        res = await prewarmed.invoke(f, {})
        assert res.result == f"v{v}" and res.cold_start and _adopted(prewarmed, f)


@pytest.mark.parametrize(
    "kw", [{"network": True}, {"environment": {"TZ": "UTC"}}, {"environment": {"MALLOC_ARENA_MAX": "2"}}]
)
async def test_functions_that_need_their_own_start_are_not_adopted(prewarmed, kw):
    f = fn("python", "def handler(e, c):\n    return 1\n", **kw)
    res = await prewarmed.invoke(f, {})
    assert res.success and res.cold_start, res.error
    assert not _adopted(prewarmed, f)
    assert prewarmed.stats()["prewarmed"]["python"] == 1  # still waiting, untouched


def _children(pid: int) -> set[int]:
    kids = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.add(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent's reaping does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_close_stops_the_waiting_sandboxes(make_service):
    before = _children(os.getpid())
    svc = make_service(prewarm=2)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    await svc.prewarm.wait_ready()
    assert svc.stats()["prewarmed"]["python"] == 2, svc.stats()["prewarm_problem"]
    pids = svc.prewarm.pids()
    assert len(pids) >= 2 and _children(os.getpid()) - before
    by_cgroup = svc.prewarm.members()
    assert len(by_cgroup) == sum(svc.stats()["prewarmed"].values())
    assert set().union(*by_cgroup.values()) == pids
    slots = list(svc.prewarm.dir.iterdir())
    assert len(slots) == sum(svc.stats()["prewarmed"].values())
    await svc.close()
    assert _children(os.getpid()) - before == set()
    assert not any(_alive(p) for p in pids)
    assert not svc.prewarm.dir.exists()


async def test_without_namespaces_nothing_is_prestarted(make_service):
    svc = make_service(sandbox="none", prewarm=2)
    res = await svc.invoke(fn("python", "def handler(e, c):\n    return 1\n"), {})
    assert res.success and res.cold_start
    await svc.prewarm.wait_ready()
    assert svc.stats()["prewarmed"] == {}


GO_PROBE = """import ("os"; "sort"; "syscall")

func handler(event interface{}, context map[string]string) interface{} {
	var r syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_CPU, &r)
	d, _ := os.Open("/function")
	names, _ := d.Readdirnames(-1)
	sort.Strings(names)
	env := map[string]string{}
	for _, kv := range os.Environ() {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return map[string]interface{}{"env": env, "cpu": []uint64{r.Cur, r.Max}, "files": names, "uid": os.Getuid()}
}
"""


@pytest.mark.go
async def test_a_go_cold_start_adopts_a_sandbox_with_the_functions_own_limits(prewarmed, monkeypatch):
    monkeypatch.setenv("CLOUDFN_TEST_SECRET", "hunter2")
    odd = 'it\'s a "quoted" $HOME `x` \\ value\nwith a line'  # pasted into a shell script: exact
    f = fn("go", GO_PROBE, environment={"GREETING": odd}, memory=200, timeout=7)
    await prewarmed.invoke(f.model_copy(update={"version": 99}), {})  # builds outside the measure
    await prewarmed.prewarm.wait_ready()
    node = {"nodejs": 1} if "nodejs" in prewarmed.prewarm.specs else {}  # (issue 19: Node.js too)
    assert prewarmed.stats()["prewarmed"] == {"python": 1, **node, "go": 1}
    res = await prewarmed.invoke(f, {})
    assert res.success, res.error
    assert res.cold_start and _adopted(prewarmed, f)
    r = res.result
    env = dict(r["env"])
    env.pop("PWD", None)
    assert env == {**BASE_ENV, "GREETING": odd, "GOMEMLIMIT": "180MiB"}, r["env"]
    assert r["files"] == ["handler", "main.go", "notes.json"]  # as a freshly started worker sees
    assert r["uid"] == 65534
    assert r["cpu"] == [120, 121]


async def test_a_started_platform_has_a_sandbox_waiting_for_its_first_cold_start(config):
    from core.local import LocalPlatform

    platform = LocalPlatform(config, install_examples=False)
    try:
        svc = platform.executor
        if not svc.protections()["bwrap_namespaces"]:
            pytest.skip("pre-started sandboxes need bwrap's namespaces")
        assert not any(svc.prewarm.count().values())  # nothing is started by opening a platform
        await platform.start()  # what the console and `cloudfn serve` do before any invocation
        assert svc.prewarm.starting["python"] == 1
        await svc.prewarm.wait_ready()
        assert svc.stats()["prewarmed"]["python"] == 1, svc.stats()["prewarm_problem"]
        f = await platform.create_function(
            {"name": "first", "runtime": "python", "code": "def handler(e, c):\n    return e\n"}
        )
        res = await platform.invoke("first", {"n": 1})
        assert res.success and res.result == {"n": 1}
        assert res.cold_start and _adopted(svc, f)
    finally:
        await platform.close()


async def test_a_sandbox_that_says_up_before_its_pipes_are_all_connected_is_not_lost(make_service, monkeypatch):
    """A waiting runner says "up" as soon as it runs; on a busy event loop that came while the
    worker was still connecting its request pipe, was dropped, and the pool waited 10 s for it
    (the console then took that long to quit)."""
    import asyncio

    from core.executors.worker import Worker

    svc = make_service(prewarm=1)
    if not svc.protections()["bwrap_namespaces"]:
        pytest.skip("pre-started sandboxes need bwrap's namespaces")
    heard = asyncio.Event()
    on_event = Worker._on_event

    def noting(self, kind, value):
        heard.set()
        on_event(self, kind, value)

    monkeypatch.setattr(Worker, "_on_event", noting)
    loop = asyncio.get_running_loop()
    connect_write_pipe = loop.connect_write_pipe

    async def late_connect(*args, **kwargs):
        await heard.wait()  # the runner has spoken before the last pipe is connected
        return await connect_write_pipe(*args, **kwargs)

    monkeypatch.setattr(loop, "connect_write_pipe", late_connect)
    await asyncio.wait_for(svc.prewarm.wait_ready(), 5)
    assert svc.stats()["prewarmed"]["python"] == 1, svc.stats()["prewarm_problem"]
