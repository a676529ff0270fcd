"""Fuzzing the REST API (issue 7, item 4): schemathesis, with all its checks, against a real
`cloudfn serve` and its own /openapi.json: no 5xx, no status, header, content type or body the
document does not declare, no request the document allows refused, none it forbids accepted,
no created resource missing afterwards, and every route refusing requests without the token.
Its four phases run: the document's examples, coverage (boundary and negative values of every
parameter), random generation, and stateful sequences following the document's links (create
a function, then get, update, invoke, roll back, delete it...).

The seed is fixed so a run is reproducible (CLOUDFN_FUZZ_SEED picks another one, and
CLOUDFN_FUZZ_EXAMPLES more cases per operation); the hypothesis tests for the config loader,
the models and the JSON round trips are in test_properties.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import start_server  # noqa: E402

from core.models import EVENT_KINDS  # noqa: E402

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CLOUDFN_FUZZ_SEED", "20240501"))
EXAMPLES = int(os.environ.get("CLOUDFN_FUZZ_EXAMPLES", "60"))
EVENTS = "/api/v1/events"
ENDPOINTS = "^/fn/"

# What this run changes from schemathesis's defaults, and why; ST302 is left out on the command
# line below. Nothing else is excluded.
CONFIG = """\
[phases.stateful]
# Longer sequences than the default 6 steps, so create -> update -> invoke -> history chains
# are reached.
max-steps = 12

[phases.stateful.inference]
# Only the links the document declares and those inferred from it. The "location-headers"
# algorithm is off: the API sends no Location headers, and schemathesis 4.32's scan of response
# bodies for URLs crashes (ValueError: Invalid IPv6 URL, inside schemathesis) on a stored string
# such as a fuzzed alert webhook "http://[".
algorithms = ["dependency-analysis"]

[[operations]]
# A function's `dependencies` (issue 15) is a manifest whose packages are installed before the
# version is stored: a schema-valid manifest naming packages the index lacks is a 422 BuildError
# (and a rollback reinstalls). The fuzz server has an empty index and registry, so every
# non-empty manifest is one. Only positive_data_acceptance learns 422 here; every other check
# still runs on these operations.
include-path-regex = "^/api/v1/functions(/[{]ref[}](/rollback|/dependencies/rebuild)?)?$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, shared_cache):
    # Alert evaluation off: fuzzed rules carry fuzzed webhook URLs, and a firing rule would
    # post to them. Everything else is the default configuration.
    # Dependencies come from nowhere (no index, a loopback registry that knows no package): a
    # fuzzed manifest fails fast and never reaches the network.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deps"))
    from deps_packages import NpmRegistry

    registry = NpmRegistry()
    server = start_server(
        tmp_path_factory.mktemp("fuzz"),
        "--mode",
        "release",
        cache=shared_cache,
        token="fuzz-token-" + "x" * 24,
        CLOUDFN_MONITOR_ALERT_INTERVAL="0",
        CLOUDFN_RUNTIME_PYPI_INDEX_URL="none",
        CLOUDFN_RUNTIME_NPM_REGISTRY=registry.url,
    )
    yield server
    registry.close()
    assert server.stop() == 0, server.stderr()


def test_schemathesis_all_checks_find_nothing(fuzz_server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{fuzz_server.url}/openapi.json",
        "-H",
        f"Authorization: Bearer {fuzz_server.token}",
        "--checks",
        "all",
        # ST302 reads any 404 after a create as "the created resource is missing". Updates that
        # name something missing in their body (an alert rule's scope function, a secret, a
        # rollback's version) answer a documented 404 NotFound while the resource exists, and
        # `--checks all` overrides per-operation check switches in a config file (schemathesis
        # 4.32.5: a PUT /alerts/rules/{ref} with scope `function:<missing>` still failed with
        # them), so ST302 is left out of this run; that a created resource is there afterwards is the conformance
        # suite's (get after create, on every platform).
        "--exclude-checks",
        "ensure_resource_availability",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "60",
        # The event stream never ends, and a request/response fuzzer waits for the end of the
        # body; test_the_event_stream_accepts_exactly_the_documented_kinds below fuzzes it.
        "--exclude-path",
        EVENTS,
        # The functions' endpoints answer what their function answers: a failing function is a
        # documented 502, a DELETE deletes nothing of the platform's, a slow function is slow. The
        # REST checks (no 5xx, use after free, response time) do not apply; test_endpoints.py
        # and test_server_auth.py test them.
        "--exclude-path-regex",
        ENDPOINTS,
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "junit.xml"),
    ]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-20000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", out)
    assert cases, out[-3000:]
    operations = re.search(r"Tested: (\d+)", out)
    with httpx.Client(base_url=fuzz_server.url, headers=fuzz_server.headers()) as c:
        paths = c.get("/openapi.json").json()["paths"]
        documented = sum(len(ops) for p, ops in paths.items() if not re.match(ENDPOINTS, p))
        assert c.get("/api/health").status_code == 200
    assert operations and int(operations.group(1)) == documented - 1, out[-3000:]  # all but the stream
    log = fuzz_server.stderr()
    assert "Traceback" not in log and "InternalError" not in log, log[-5000:]
    print(
        f"\nfuzzing: schemathesis --checks all, {cases.group(1)} cases over {operations.group(1)} of "
        f"{documented} operations (examples, coverage, fuzzing, stateful), seed {SEED}: "
        f"{cases.group(2)} passed, 0 failures, no server error"
    )


# -- the event stream: accepted exactly when its documented schema says so ---------------------------
kind_items = st.lists(
    st.sampled_from([*EVENT_KINDS, "", " ", "\t", "bogus", "log ", "LOG", "function.*", "\x1c"]) | st.text(max_size=12),
    max_size=4,
).map(",".join)


@pytest.fixture(scope="module")
def kinds_validator(fuzz_server):
    import jsonschema_rs  # schemathesis's validator

    with httpx.Client(base_url=fuzz_server.url, headers=fuzz_server.headers()) as c:
        op = c.get("/openapi.json").json()["paths"][EVENTS]["get"]
    (p,) = [p for p in op["parameters"] if p["name"] == "kinds"]
    return jsonschema_rs.validator_for(p["schema"])


@settings(max_examples=150, deadline=None)
@given(values=st.lists(kind_items, min_size=1, max_size=3))
def test_the_event_stream_accepts_exactly_the_documented_kinds(fuzz_server, kinds_validator, values):
    documented_ok = kinds_validator.is_valid(values)
    with httpx.Client(base_url=fuzz_server.url, headers=fuzz_server.headers(), timeout=30) as c:
        with c.stream("GET", EVENTS, params=[("kinds", v) for v in values]) as r:
            if documented_ok:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), values
            else:
                r.read()
                assert r.status_code == 422, (values, r.status_code, r.text)
                assert r.json()["errors"][0]["field"] == "kinds"
