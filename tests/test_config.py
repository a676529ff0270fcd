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
    env = {
        "CLOUDFN_CONFIG": str(f),
        "PORT": "9100",
        "GIN_MODE": "debug",
        "LOG_LEVEL": "warning",
        "DATA_DIR": str(tmp_path / "seed-data"),
        "FUNCTIONS_DIR": str(tmp_path / "fns"),
    }
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


# The original platform's backend/config/config.yaml and storage.yaml, rebuilt from what
# seed/README.md says of them (the files themselves are not in seed/): every section and key.
ORIGINAL_CONFIG_YAML = """
server:
  host: "0.0.0.0"
  port: 8080
  mode: "debug"
  read_timeout: 30s
  write_timeout: 30s
  idle_timeout: 60s
storage:
  type: "file"
  data_dir: "./data"
  max_conns: 10
  max_idle_time: 5m
runtime:
  work_dir: "./functions"
  max_concurrent: 10
  default_timeout: 30
  default_memory: 256
  enabled_runtimes: ["go", "nodejs", "python"]
  runtime_paths:
    go: "/usr/local/go/bin/go"
    nodejs: "/usr/bin/node"
    python: "/usr/bin/python3"
  max_code_size: 1024
  allowed_packages: ["fmt", "strings", "math"]
security:
  enable_auth: false
  jwt_expiry: 24h
  allowed_origins: ["http://localhost:5173", "http://localhost:3000"]
  rate_limit: 100
  enable_https: false
monitor:
  enable_metrics: true
  metrics_path: "/metrics"
  enable_profiling: false
  profiling_path: "/debug/pprof"
  log_level: "info"
  log_format: "json"
  log_output: "stdout"
  enable_tracing: false
"""

ORIGINAL_STORAGE_YAML = """
storage:
  primary:
    type: "postgresql"
    host: "${DB_HOST}"
    port: 5432
    database: "cloudfunction"
    username: "${DB_USER}"
    password: "${DB_PASSWORD}"
    ssl_mode: "require"
    max_conns: 20
    max_idle_time: 10m
  cache:
    type: "redis"
    host: "${REDIS_HOST}"
    port: 6379
  object:
    type: "s3"
    bucket: "cloudfunction-code"
    region: "us-east-1"
  logs:
    type: "elasticsearch"
    hosts: ["http://es:9200"]
environments:
  development:
    storage: {primary: {host: "localhost"}}
  staging:
    storage: {primary: {host: "staging-db"}}
  production:
    storage: {primary: {host: "prod-db", ssl_mode: "verify-full"}}
"""


def test_the_originals_config_yaml_loads_as_it_is(tmp_path):
    f = tmp_path / "backend" / "config" / "config.yaml"
    f.parent.mkdir(parents=True)
    f.write_text(ORIGINAL_CONFIG_YAML)
    c = load_config(f, environ={})
    assert (c["server.host"], c["server.port"], c["server.mode"]) == ("0.0.0.0", 8080, "debug")
    # Go's ReadTimeout bounds the whole request: both of cloudfn's read timeouts.
    assert c["server.header_timeout"] == 30.0 and c["server.body_timeout"] == 30.0
    assert c.data_dir == f.parent / "data" and c.work_dir == f.parent / "functions"
    assert (c["runtime.max_concurrent"], c["runtime.default_timeout"], c["runtime.default_memory"]) == (10, 30, 256)
    assert c["server.cors_origins"] == "http://localhost:5173,http://localhost:3000"
    assert c["monitor.log_level"] == "info" and c["monitor.enable_metrics"] is True
    assert c.ignored == [
        "server.write_timeout",
        "server.idle_timeout",
        "storage.max_conns",
        "storage.max_idle_time",
        "runtime.enabled_runtimes",
        "runtime.runtime_paths",
        "runtime.max_code_size",
        "runtime.allowed_packages",
        "security.enable_auth",
        "security.jwt_expiry",
        "security.rate_limit",
        "security.enable_https",
        "monitor.metrics_path",
        "monitor.enable_profiling",
        "monitor.profiling_path",
        "monitor.log_format",
        "monitor.log_output",
        "monitor.enable_tracing",
    ]
    assert "storage.type" not in c.ignored  # "file" is what cloudfn does anyway
    assert c.ignored_note().startswith(f"config file {f}: ignored (not used by cloudfn): server.write_timeout, ")


def test_the_originals_storage_yaml_loads_and_is_reported_ignored(tmp_path):
    f = tmp_path / "storage.yaml"
    f.write_text(ORIGINAL_STORAGE_YAML)
    c = load_config(f, environ={})
    assert c.ignored == ["storage.primary", "storage.cache", "storage.object", "storage.logs", "environments"]
    assert c["server.port"] == 8080 and c.data_dir == tmp_path / "xdg-data" / "cloudfn"


def test_a_cloudfn_key_beats_the_seeds_and_seed_typos_stay_errors(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text(
        "server:\n  read_timeout: 1m30s\n  header_timeout: 5\nsecurity:\n  enable_auht: true\n"
        "storage:\n  type: postgresql\n  max_conn: 3\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    assert "unknown key security.enable_auht" in exc.value.message and "enable_auth" in exc.value.message
    assert "unknown key storage.max_conn" in exc.value.message
    f.write_text("server:\n  read_timeout: 1m30s\n  header_timeout: 5\nstorage:\n  type: postgresql\n")
    c = load_config(f, environ={})
    assert c["server.header_timeout"] == 5.0 and c["server.body_timeout"] == 90.0
    assert c.ignored == ["storage.type"]  # a database the embedded store does not use
    f.write_text("server:\n  read_timeout: soon\n")
    with pytest.raises(ConfigError, match="server.read_timeout: expected a number of seconds or a Go duration"):
        load_config(f, environ={})


def test_prewarm_max_is_the_most_and_prewarm_the_least_of_the_pre_started_pool(tmp_path):
    env = {"CLOUDFN_DATA_DIR": str(tmp_path)}
    c = load_config(environ=env)
    assert (c["runtime.prewarm"], c["runtime.prewarm_max"]) == (1, 4)
    assert load_config(environ={**env, "CLOUDFN_RUNTIME_PREWARM": "6"})["runtime.prewarm"] == 6  # default max: no error
    with pytest.raises(ConfigError) as err:
        load_config(environ={**env, "CLOUDFN_RUNTIME_PREWARM": "3", "CLOUDFN_RUNTIME_PREWARM_MAX": "2"})
    msg = str(err.value)
    assert "runtime.prewarm_max=2 (env CLOUDFN_RUNTIME_PREWARM_MAX)" in msg and "runtime.prewarm=3" in msg
    assert "set prewarm_max to 3 or more" in msg
