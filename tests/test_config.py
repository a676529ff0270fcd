"""Configuration layers: defaults < YAML file < environment < flags, and clear errors."""

from __future__ import annotations

import pytest

from core.config import load_config
from core.errors import ConfigError

SEED_YAML = """
server:
  host: "0.0.0.0"
  port: 9000
  mode: "release"
runtime:
  work_dir: "./functions"
  max_concurrent: 4
  default_timeout: 12
monitor:
  log_level: "debug"
  enable_metrics: false
"""


def test_defaults_come_from_the_seed_and_xdg(tmp_path):
    c = load_config(environ={})
    assert c["server.port"] == 8080
    assert c["server.mode"] == "debug"
    assert c["runtime.max_concurrent"] == 10
    assert c["runtime.default_timeout"] == 30
    assert c["monitor.log_level"] == "info"
    assert c.data_dir == tmp_path / "xdg-data" / "cloudfn"
    assert c.work_dir == c.data_dir / "functions"
    assert c.settings["server.port"].source == "default"


def test_the_seeds_yaml_file_is_read_with_paths_relative_to_it(tmp_path):
    f = tmp_path / "conf" / "config.yaml"
    f.parent.mkdir()
    f.write_text(SEED_YAML)
    c = load_config(f, environ={})
    assert (c["server.host"], c["server.port"], c["server.mode"]) == ("0.0.0.0", 9000, "release")
    assert (c["runtime.max_concurrent"], c["runtime.default_timeout"]) == (4, 12)
    assert c["monitor.log_level"] == "debug" and c["monitor.enable_metrics"] is False
    assert c.work_dir == tmp_path / "conf" / "functions"
    assert c.settings["server.port"].source == f"file {f}"


def test_layers_environment_beats_file_and_flags_beat_environment(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text(SEED_YAML)
    env = {"CLOUDFN_CONFIG": str(f), "PORT": "9100", "GIN_MODE": "debug", "LOG_LEVEL": "warning",
           "DATA_DIR": str(tmp_path / "seed-data"), "FUNCTIONS_DIR": str(tmp_path / "fns")}
    c = load_config(environ=env)
    assert c["server.port"] == 9100 and c.settings["server.port"].source == "env PORT"
    assert c["server.mode"] == "debug"
    assert c["monitor.log_level"] == "warning"
    assert c.data_dir == tmp_path / "seed-data"
    assert c.work_dir == tmp_path / "fns"
    assert c["runtime.max_concurrent"] == 4  # still from the file

    env["CLOUDFN_PORT"] = "9200"  # the cloudfn name wins over the seed's
    env["CLOUDFN_DATA_DIR"] = str(tmp_path / "ours")
    c = load_config(environ=env, flags={"server.port": 9300})
    assert c["server.port"] == 9300 and c.settings["server.port"].source == "flag"
    assert c.data_dir == tmp_path / "ours"


def test_the_xdg_config_file_is_read_when_present(tmp_path):
    f = tmp_path / "xdg-config" / "cloudfn" / "config.yaml"
    f.parent.mkdir(parents=True)
    f.write_text("server:\n  port: 8181\n")
    assert load_config(environ={})["server.port"] == 8181


@pytest.mark.parametrize(
    "text, expected",
    [
        ("server:\n  prot: 1\n", ["unknown key server.prot", "known in server: host, port, mode"]),
        ("servers: {}\n", ["unknown section 'servers'"]),
        ("server:\n  port: eighty\n", ["server.port: expected a whole number from 0 to 65535, got 'eighty'"]),
        ("monitor:\n  enable_metrics: maybe\n", ["monitor.enable_metrics: expected true or false"]),
        ("server: [1, 2]\n", ["server: expected a mapping of keys, got list"]),
        ("server:\n  port: 1\n   host: x\n", ["not valid YAML at line"]),
        ("- 1\n", ["expected a mapping of sections"]),
    ],
)
def test_a_bad_file_names_the_file_the_key_and_what_was_expected(tmp_path, text, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    assert str(f) in exc.value.message
    for part in expected:
        assert part in exc.value.message
    assert exc.value.exit_code == 2


def test_every_bad_key_is_reported_at_once(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("server:\n  port: x\n  colour: red\nruntime:\n  max_concurrent: 0\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    for part in ("server.port", "server.colour", "runtime.max_concurrent"):
        assert part in exc.value.message


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml", environ={})
    d = tmp_path / "dir.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match=str(d)):
        load_config(d, environ={})


def test_a_bad_environment_variable_is_named():
    with pytest.raises(ConfigError) as exc:
        load_config(environ={"PORT": "http"})
    assert "PORT='http'" in exc.value.message and "server.port" in exc.value.message
