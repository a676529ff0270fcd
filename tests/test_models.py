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
        parse_spec({"name": "Hello World", "runtime": "ruby", "timeout": 0, "memory": 100000,
                    "handler": "1bad", "environment": {"9X": "y"}, "colour": "red"})
    fields = {e.field for e in exc.value.errors}
    assert fields == {"name", "runtime", "code", "timeout", "memory", "handler", "environment", "colour"}
    text = exc.value.message
    assert "timeout: must be at least 1 (got 0)" in text
    assert "memory: must be at most 8192" in text
    assert "colour: is not a known field" in text
    assert "code: is required" in text


@pytest.mark.parametrize("name", ["a", "hello-world", "fn2", "a" * 63])
def test_good_names(name):
    assert parse_spec({"name": name, "runtime": "go", "code": "x"}).name == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a b", "a" * 64, "héllo"])
def test_bad_names(name):
    with pytest.raises(InvalidInput) as exc:
        parse_spec({"name": name, "runtime": "go", "code": "x"})
    assert [e.field for e in exc.value.errors] == ["name"]


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
