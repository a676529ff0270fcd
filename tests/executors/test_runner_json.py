"""The Python runner's JSON (core/executors/runners/python_runner.py) is CPython's private `_json`
driven directly: the `json` package imports `re`, measured at +6.9 ms of a worker's 8 ms
interpreter start against +0.3 ms for `_json` alone. This checks that it still answers what the
standard library does, for every frame the host sends and every result a handler returns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.executors

SOURCE = (Path(core.executors.__file__).parent / "runners" / "python_runner.py").read_text()


def _runner_json():
    head = SOURCE[: SOURCE.index("\nREQ_FD = ")]  # the module's top, before it reads its fds
    namespace: dict = {}
    exec(compile(head, "python_runner.py", "exec"), namespace)
    return namespace["json"]


RUNNER_JSON = _runner_json()
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_it_encodes_and_decodes_as_the_standard_library_does(value):
    assert RUNNER_JSON.dumps(value) == json.dumps(value)
    text = json.dumps(value)
    assert RUNNER_JSON.loads(text) == json.loads(text)
    assert RUNNER_JSON.loads(text.encode()) == json.loads(text)


def test_nan_is_refused_only_where_the_standard_library_refuses_it():
    assert RUNNER_JSON.dumps(float("nan")) == "NaN"
    with pytest.raises(ValueError, match="JSON compliant"):
        RUNNER_JSON.dumps({"x": math.inf}, allow_nan=False)


def test_what_is_not_json_fails_with_the_standard_librarys_error_types():
    with pytest.raises(TypeError, match="not JSON serializable"):
        RUNNER_JSON.dumps({"x": object()})
