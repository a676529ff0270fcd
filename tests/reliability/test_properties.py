"""Property tests (hypothesis): the config loader, the models, and what travels as JSON never
crash on odd input; they accept or refuse with a named field."""

from __future__ import annotations

import json
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import OPTIONS, load_config
from core.errors import ConfigError, InvalidInput
from core.models import Function, InvocationRecord, InvokeResult, parse_patch, parse_spec

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "name",
    "runtime",
    "code",
    "handler",
    "timeout",
    "memory",
    "environment",
    "description",
    "max_concurrency",
    "network",
    "id",
    "bogus",
]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_a_function_body_is_accepted_or_refused_with_named_fields(body):
    try:
        spec = parse_spec(body)
    except InvalidInput as exc:
        assert exc.errors and all(e.field and e.message for e in exc.errors)
        assert all(e.field.split(".")[0] in FIELDS + ["body"] for e in exc.errors)
        return
    fn = Function(**spec.model_dump())
    assert Function.model_validate(json.loads(json.dumps(fn.to_doc()))) == fn  # round-trips


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_patch_of_any_json_never_crashes(body):
    try:
        parse_patch(body)
    except InvalidInput as exc:
        assert exc.errors


section_values = st.dictionaries(
    st.sampled_from([o.key for o in OPTIONS] + ["nope"]),
    st.none() | st.booleans() | st.integers(-10, 100_000) | st.text(string.printable, max_size=12),
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(st.sampled_from(["server", "runtime", "monitor", "storage", "other"]), section_values, max_size=4)
)
def test_the_config_loader_accepts_or_names_the_file_and_key(tmp_path, doc):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        c = load_config(f, environ={})
    except ConfigError as exc:
        assert str(f) in exc.message
        return
    for section, body in doc.items():
        for key in body or {}:
            assert f"{section}.{key}" in c.settings


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_a_config_file_of_arbitrary_text_never_crashes(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    try:
        load_config(f, environ={})
    except ConfigError as exc:
        assert str(f) in exc.message


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_results_and_records_round_trip_through_json(event, result):
    r = InvokeResult(success=True, result=result, duration=1.5)
    assert InvokeResult.model_validate_json(r.model_dump_json()).result == result
    rec = InvocationRecord(
        id="i",
        function_id="f",
        function_name="f",
        function_version=1,
        runtime="python",
        status="success",
        started_at="2026-01-01T00:00:00Z",
        event=event,
        result=result,
    )
    assert InvocationRecord.model_validate_json(rec.model_dump_json()) == rec
