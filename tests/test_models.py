"""Function validation: every bad field named at once."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.models import Function, parse_patch, parse_spec


def test_a_valid_spec_gets_defaults_and_node_is_an_alias():
    spec = parse_spec({"name": "hello-1", "runtime": "node", "code": "function handler(){}"})
    assert spec.runtime == "nodejs"
    assert (spec.handler, spec.timeout, spec.memory, spec.network) == ("handler", 30, 128, False)
    fn = Function(**spec.model_dump())
    assert fn.version == 1 and fn.id and fn.created_at == fn.updated_at or fn.created_at <= fn.updated_at


def test_every_bad_field_is_named_at_once():
    with pytest.raises(InvalidInput) as exc:
        parse_spec(
            {
                "name": "Hello/World",
                "runtime": "ruby",
                "timeout": -1,
                "memory": 100000,
                "handler": "1bad",
                "environment": {"9X": "y"},
                "colour": "red",
            }
        )
    fields = {e.field for e in exc.value.errors}
    assert fields == {"name", "runtime", "code", "timeout", "memory", "handler", "environment", "colour"}
    text = exc.value.message
    assert "timeout: must be at least 1 (got -1)" in text
    assert "memory: must be at most 8192" in text
    assert "colour: is not a known field" in text
    assert "code: is required" in text


# The seed accepts any name; its own stored example is "方法".
@pytest.mark.parametrize(
    "name",
    [
        "a",
        "hello-world",
        "fn2",
        "a" * 64,
        "方法",
        "My Function",
        "Test_Go",
        "-a",
        "a-",
        "Привет мир",
        "مرحبا",
        "héllo",
        "v1.2",
        ".hidden",
        "नमस्ते",
        "データ 処理",
    ],
)
def test_good_names(name):
    assert parse_spec({"name": name, "runtime": "go", "code": "x"}).name == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "must not be empty"),
        ("a" * 65, "is 65 characters long; the limit is 64"),
        ("..", "must not be only dots"),
        (".", "must not be only dots"),
        (" lead", "must not start or end with a space"),
        ("trail ", "must not start or end with a space"),
        ("a/b", "must not contain '/'"),
        ("zero\u200bwidth", "an invisible character (U+200B ZERO WIDTH SPACE)"),
        ("bell\x07", "a control character (U+0007"),
        ("new\nline", "a control character (U+000A"),
        ("tab\tbed", "a control character"),
        ("nb\u00a0sp", "whitespace other than a plain space (U+00A0"),
        ("line\u2028sep", "a line break"),
        ("rtl\u202eoverride", "an invisible character (U+202E"),
        ("bang!", "remove or replace '!'"),
        ("smile\U0001f600", "remove or replace"),
    ],
)
def test_bad_names_say_what_is_wrong_and_how_to_fix_it(name, why):
    with pytest.raises(InvalidInput) as exc:
        parse_spec({"name": name, "runtime": "go", "code": "x"})
    assert [e.field for e in exc.value.errors] == ["name"]
    assert why in exc.value.errors[0].message


def test_zero_values_mean_default_on_create_and_unchanged_on_update():
    # A Go client's encoding/json sends every field of the seed's Function struct, unset ones as zeros.
    go = {
        "id": "",
        "name": "方法",
        "runtime": "python",
        "code": "def handler(e, c): return 1",
        "handler": "",
        "environment": None,
        "timeout": 0,
        "memory": 0,
        "created_at": "0001-01-01T00:00:00Z",
        "updated_at": "0001-01-01T00:00:00Z",
    }
    spec = parse_spec(go)
    assert (spec.handler, spec.timeout, spec.memory, spec.environment) == ("handler", 30, 128, {})
    patch = parse_patch({**go, "name": "", "runtime": "", "code": ""})
    assert patch.model_dump(exclude_unset=True) == {}
    assert parse_patch({"environment": {}, "description": ""}).model_dump(exclude_unset=True) == {
        "environment": {},
        "description": "",
    }  # not seed fields' zeros: they clear
    with pytest.raises(InvalidInput) as exc:
        parse_spec({**go, "timeout": -5, "memory": 1})
    assert {e.field for e in exc.value.errors} == {"timeout", "memory"}


def test_duration_is_whole_milliseconds_and_duration_ms_exact():
    from core.models import InvokeResult

    r = InvokeResult(success=True, duration_ms=12.6)
    doc = r.model_dump(mode="json")
    assert doc["duration"] == 13 and isinstance(doc["duration"], int) and doc["duration_ms"] == 12.6
    back = InvokeResult.model_validate(doc)
    assert back.duration_ms == 12.6
    assert InvokeResult.model_validate({"success": True, "duration": 7}).duration_ms == 7.0  # a seed-shaped answer


def test_blank_code_and_non_object_bodies_are_refused():
    with pytest.raises(InvalidInput, match="code: must not be empty"):
        parse_spec({"name": "a", "runtime": "go", "code": "  \n"})
    with pytest.raises(InvalidInput, match="body: must be an object"):
        parse_spec(["name", "a"])


def test_a_patch_is_partial_and_ignores_echoed_read_only_fields():
    patch = parse_patch({"timeout": 5, "id": "x", "version": 9, "created_at": "2020-01-01"})
    assert patch.model_dump(exclude_unset=True) == {"timeout": 5}
    with pytest.raises(InvalidInput, match="timeout"):
        parse_patch({"timeout": "soon"})
