"""Configuration: defaults < YAML file < environment < command-line flags.

The YAML keeps the seed's sections (`server`, `runtime`, `monitor`) and the seed's variables
(`PORT`, `LOG_LEVEL`, `GIN_MODE`, `FUNCTIONS_DIR`, `DATA_DIR`) keep working beside `CLOUDFN_*`
ones, which win when both are set. Every setting remembers where its value came from, so
`cloudfn info` can say so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from core import paths
from core.errors import ConfigError


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError(f"a whole number from {lo} to {hi}")
        try:
            n = int(v) if isinstance(v, (int, str)) else None
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            raise ValueError(f"a whole number from {lo} to {hi}")
        return n

    return parse


def _number(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        try:
            n = float(v) if not isinstance(v, bool) else None
        except (TypeError, ValueError):
            n = None
        if n is None or not lo <= n <= hi:
            raise ValueError(f"a number from {lo:g} to {hi:g}")
        return n

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in options:
            return v.strip().lower()
        raise ValueError("one of " + ", ".join(options))

    return parse


def _text(v: Any) -> str:
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return str(v)
    raise ValueError("a string")


def _optional_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    return _text(v)


def _keymap(v: Any) -> dict[str, str]:
    """Binding id -> keys, as a mapping in the file or `id=keys;id=keys` in the environment."""
    if isinstance(v, str):
        pairs = [p.partition("=") for p in v.split(";") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError("a mapping of binding ids to keys (id=keys;id=keys in the environment)")
        v = {k.strip(): keys.strip() for k, _, keys in pairs}
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(
        isinstance(k, str) and isinstance(x, str) and x.strip() for k, x in v.items()
    ):
        raise ValueError("a mapping of binding ids to keys, such as {main.invoke: f5}")
    return dict(v)


_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def go_duration(v: Any) -> float:
    """Seconds from a number or a Go duration ("30s", "1m30s", "500ms"), as the seed's files write
    its timeouts."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        text = v.strip()
        parts = _GO_DURATION_RE.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _GO_DURATION_UNITS[u] for n, u in parts)
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError("a number of seconds or a Go duration such as 30s or 1m30s")


def _url(v: Any) -> str:
    if isinstance(v, str) and re.match(r"^https?://[^\s]+$", v.strip()):
        return v.strip()
    raise ValueError("an http:// or https:// URL")


def _url_or_none(v: Any) -> str:
    """A URL, or "" for none (written `none`: an empty variable in the environment is unset)."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return ""
    try:
        return _url(v)
    except ValueError:
        raise ValueError("an http:// or https:// URL, or none") from None


def _storage_url(v: Any) -> str | None:
    """A postgresql:// URL, or None (written `none` or empty) for the embedded store."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    if isinstance(v, str) and re.match(r"^postgres(ql)?://\S+$", v.strip()):
        return v.strip()
    raise ValueError("a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL, or none")


def _shown(name: str, raw: Any) -> str:
    """A value for an error message: a storage URL's password is never shown."""
    if name == "storage.url" and isinstance(raw, str):
        from core.storage import mask_url

        return repr(mask_url(raw))
    return repr(raw)


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def seed_primary_url(raw: Any, environ: Mapping[str, str] | None = None) -> str | None:
    """storage.yaml's `primary: {type: postgresql, host, port, database, username, password,
    ssl_mode}` as a storage URL; its ${VAR}s come from the environment. None when it names
    another type or a variable that is not set (the section is then reported ignored)."""
    if not isinstance(raw, dict) or str(raw.get("type", "")).strip().lower() not in ("postgresql", "postgres"):
        return None
    env = os.environ if environ is None else environ
    fields: dict[str, str] = {}
    for key in ("host", "port", "database", "username", "user", "password", "ssl_mode"):
        if raw.get(key) is None:
            continue
        text = str(raw[key])
        names = _PLACEHOLDER.findall(text)
        if any(not env.get(n) for n in names):
            return None
        fields[key] = _PLACEHOLDER.sub(lambda m: env[m.group(1)], text)
    if not fields.get("host"):
        return None
    user = fields.get("username") or fields.get("user") or ""
    auth = quote(user, safe="") + (":" + quote(fields["password"], safe="") if fields.get("password") else "")
    url = f"postgresql://{auth + '@' if auth else ''}{fields['host']}"
    url += f":{fields['port']}" if fields.get("port") else ""
    url += "/" + quote(fields.get("database", ""), safe="")
    return url + (f"?sslmode={quote(fields['ssl_mode'], safe='')}" if fields.get("ssl_mode") else "")


def _nats_url(v: Any) -> str:
    """nats:// (or tls://) URLs, comma-separated, or "" / none for none. Credentials do not belong
    in it (`cloudfn info` shows it): cluster.nats_token_file and the others."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return ""
    urls = [u.strip() for u in v.split(",")] if isinstance(v, str) else []
    if urls and all(re.match(r"^(nats|tls)://[^\s@/]+(:\d+)?/?$", u) for u in urls):
        return ",".join(urls)
    raise ValueError(
        "nats://host:port (comma-separated for several; no user:password@, which "
        "belongs in cluster.nats_user and its password file), or none"
    )


def _optional_path(v: Any) -> Path | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    return _path(v)


def _path(v: Any) -> Path:
    if isinstance(v, str) and v.strip():
        return Path(v).expanduser()
    raise ValueError("a path")


@dataclass(frozen=True)
class Option:
    section: str
    key: str
    parse: Callable[[Any], Any]
    default: Any
    env: tuple[str, ...] = ()  # later names win over earlier ones
    help: str = ""

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def _env(section: str, key: str, *seed: str) -> tuple[str, ...]:
    return (*seed, f"CLOUDFN_{section.upper()}_{key.upper()}")


def default_max_memory() -> int:
    """runtime.max_memory's default: half of the host's memory (the rest is the platform's, the
    page cache's and other programs'); 4096 MB where /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemTotal:"):
                    return max(128, int(line.split()[1]) // 1024 // 2)
    except (OSError, ValueError, IndexError):
        pass
    return 4096


OPTIONS: tuple[Option, ...] = (
    Option(
        "server",
        "host",
        _text,
        "127.0.0.1",
        _env("server", "host", "CLOUDFN_HOST"),
        "address `cloudfn serve` binds (the seed used 0.0.0.0; loopback is the safe default)",
    ),
    Option(
        "server",
        "port",
        _int(0, 65535),
        8080,
        _env("server", "port", "PORT", "CLOUDFN_PORT"),
        "port `cloudfn serve` listens on",
    ),
    Option(
        "server",
        "mode",
        _choice("debug", "release"),
        "debug",
        _env("server", "mode", "GIN_MODE", "CLOUDFN_MODE"),
        "debug logs more than release",
    ),
    Option(
        "server",
        "cors_origins",
        _text,
        "",
        _env("server", "cors_origins"),
        "origins allowed to call the REST API from a browser, comma-separated (default: none)",
    ),
    Option(
        "server",
        "max_body",
        _int(1024, 1024**3),
        6 * 1024 * 1024,
        _env("server", "max_body"),
        "largest request body `cloudfn serve` accepts, in bytes (larger answers 413)",
    ),
    Option(
        "server",
        "shutdown_grace",
        _number(0, 3600),
        30.0,
        _env("server", "shutdown_grace"),
        "seconds `cloudfn serve` lets invocations in flight finish after SIGTERM/SIGINT",
    ),
    Option(
        "server",
        "header_timeout",
        _number(0.1, 3600),
        10.0,
        _env("server", "header_timeout"),
        "seconds a client has, from connecting (or from its next request's first byte), to send all its "
        "request headers; then 408 and the connection closes (a slowloris defence)",
    ),
    Option(
        "server",
        "body_timeout",
        _number(0.1, 3600),
        60.0,
        _env("server", "body_timeout"),
        "seconds a client has, after its headers, to send the whole request body; then 408 and close",
    ),
    Option(
        "server",
        "max_connections",
        _int(1, 1_000_000),
        1000,
        _env("server", "max_connections"),
        "open connections `cloudfn serve` holds at once; past it a new one gets 503 and is closed",
    ),
    Option(
        "client",
        "remote",
        _text,
        None,
        ("CLOUDFN_REMOTE",),
        "attach to this server instead of a local data directory: a URL or a name from `remotes`",
    ),
    Option(
        "runtime",
        "work_dir",
        _path,
        None,
        _env("runtime", "work_dir", "FUNCTIONS_DIR"),
        "where workers get their folders (default: <data_dir>/functions)",
    ),
    Option(
        "runtime",
        "max_concurrent",
        _int(1, 10000),
        10,
        _env("runtime", "max_concurrent"),
        "invocations running at once, across all functions",
    ),
    Option(
        "runtime",
        "default_timeout",
        _int(1, 900),
        30,
        _env("runtime", "default_timeout"),
        "timeout in seconds for functions that set none",
    ),
    Option(
        "runtime",
        "default_memory",
        _int(64, 8192),
        128,
        _env("runtime", "default_memory"),
        "memory limit in MB for functions that set none",
    ),
    Option(
        "runtime",
        "queue_size",
        _int(0, 100000),
        100,
        _env("runtime", "queue_size"),
        "invocations that may wait for a free slot before being throttled",
    ),
    Option(
        "runtime",
        "keep_warm",
        _number(0, 86400),
        300.0,
        _env("runtime", "keep_warm"),
        "seconds an idle worker stays warm",
    ),
    Option(
        "runtime",
        "sandbox",
        _choice("auto", "none"),
        "auto",
        _env("runtime", "sandbox"),
        "auto uses every protection the host has; none uses rlimits only",
    ),
    Option(
        "runtime",
        "sandbox_user",
        _optional_text,
        None,
        _env("runtime", "sandbox_user"),
        "host user functions and builds run as when cloudfn runs as root (default: cloudfn-sandbox, "
        "which scripts/setup.sh creates, else nobody, 65534)",
    ),
    Option(
        "runtime",
        "build_memory",
        _int(128, 65536),
        1024,
        _env("runtime", "build_memory"),
        "memory limit of one Go build, in MB (compile and link together)",
    ),
    Option(
        "runtime",
        "prewarm",
        _int(0, 16),
        1,
        _env("runtime", "prewarm"),
        "sandboxes kept started per runtime, ready for a cold start (0: start each one then)",
    ),
    Option(
        "runtime",
        "max_memory",
        _int(128, 16 * 1024 * 1024),
        default_max_memory(),
        _env("runtime", "max_memory"),
        "MB all workers' memory limits may add up to; idle ones are reaped for room (default: half the host's)",
    ),
    # Bursts (issue 19): how far the pre-started pool grows when cold starts come together.
    Option(
        "runtime",
        "prewarm_max",
        _int(0, 64),
        4,
        _env("runtime", "prewarm_max"),
        "most sandboxes kept started per runtime while cold starts come in bursts (runtime.prewarm is the "
        "least); the ones past the least use free memory only",
    ),
    # -- dependencies (issue 15): installs are sandboxed builds, envs a shared cache ------------
    Option(
        "runtime",
        "deps_cache_max",
        _int(16, 16 * 1024 * 1024),
        2048,
        _env("runtime", "deps_cache_max"),
        "MB of installed dependency environments kept; the least recently used unused ones go first",
    ),
    Option(
        "runtime",
        "deps_memory",
        _int(16, 65536),
        1024,
        _env("runtime", "deps_memory"),
        "memory limit of one dependency install (uv, npm), in MB",
    ),
    Option(
        "runtime",
        "deps_timeout",
        _int(5, 3600),
        300,
        _env("runtime", "deps_timeout"),
        "seconds one dependency install may take (wall clock, and its CPU time)",
    ),
    Option(
        "runtime",
        "deps_pids",
        _int(16, 4096),
        256,
        _env("runtime", "deps_pids"),
        "processes and threads one dependency install may run",
    ),
    Option(
        "runtime",
        "pypi_index_url",
        _url_or_none,
        "https://pypi.org/simple",
        _env("runtime", "pypi_index_url"),
        "the package index uv installs Python dependencies from; none: only runtime.pypi_find_links (offline)",
    ),
    Option(
        "runtime",
        "pypi_find_links",
        _optional_text,
        None,
        _env("runtime", "pypi_find_links"),
        "a folder of wheels Python dependencies may also come from (read-only to the installer)",
    ),
    Option(
        "runtime",
        "npm_registry",
        _url,
        "https://registry.npmjs.org/",
        _env("runtime", "npm_registry"),
        "the registry npm installs Node.js dependencies from",
    ),
    Option(
        "monitor",
        "log_level",
        _choice("debug", "info", "warning", "warn", "error"),
        "info",
        _env("monitor", "log_level", "LOG_LEVEL", "CLOUDFN_LOG_LEVEL"),
        "platform log level",
    ),
    Option("monitor", "enable_metrics", _bool, True, _env("monitor", "enable_metrics"), "collect metrics"),
    Option(
        "monitor",
        "alert_interval",
        _number(0, 3600),
        1.0,
        _env("monitor", "alert_interval"),
        "seconds between alert evaluations (0 turns background evaluation off)",
    ),
    Option(
        "monitor",
        "history_max_records",
        _int(100, 10_000_000),
        100_000,
        _env("monitor", "history_max_records"),
        "invocations kept in the history",
    ),
    Option(
        "monitor",
        "history_max_age_days",
        _number(0.001, 3650),
        7.0,
        _env("monitor", "history_max_age_days"),
        "days an invocation is kept in the history",
    ),
    Option(
        "storage",
        "data_dir",
        _path,
        None,
        _env("storage", "data_dir", "DATA_DIR", "CLOUDFN_DATA_DIR"),
        "where cloudfn keeps its stores (default: the XDG data folder)",
    ),
    Option(
        "storage",
        "max_versions",
        _int(1, 10_000),
        20,
        _env("storage", "max_versions"),
        "versions kept per function for `cloudfn versions` and rollback; the oldest are removed",
    ),
    # -- secrets (issue 17); the key itself may come from CLOUDFN_SECRETS_KEY, never a setting (info shows these)
    Option(
        "secrets",
        "key_file",
        _path,
        None,
        _env("secrets", "key_file"),
        "file holding the secrets' encryption key (default: <data_dir>/secrets.key, made at the first set); "
        "kept elsewhere, a backup of the data directory reveals no secret",
    ),
    Option(
        "console",
        "theme",
        _optional_text,
        None,
        _env("console", "theme"),
        "the console's theme (default: the last one chosen in the console, else cloudfn-night)",
    ),
    Option(
        "console",
        "keymap",
        _keymap,
        {},
        _env("console", "keymap"),
        "binding id -> keys, remapping the console's keys (`?` in the console lists the ids)",
    ),
    # -- asynchronous invocation (issue 16) --
    Option(
        "async",
        "workers",
        _int(1, 1000),
        4,
        _env("async", "workers"),
        "asynchronous invocations run at once (each still takes a slot of runtime.max_concurrent)",
    ),
    Option(
        "async",
        "max_queued",
        _int(1, 100_000_000),
        100_000,
        _env("async", "max_queued"),
        "asynchronous invocations queued at most (waiting or retrying); past it an accept is refused (429)",
    ),
    Option(
        "async",
        "sync",
        _choice("normal", "full"),
        "normal",
        _env("async", "sync"),
        "normal: an accepted async invocation survives a crash of cloudfn; full: a power loss too "
        "(an fsync per accept, slower)",
    ),
    Option(
        "async",
        "webhook_timeout",
        _number(0.1, 60),
        5.0,
        _env("async", "webhook_timeout"),
        "seconds a destination webhook has to answer; 3 tries in all",
    ),
    Option(
        "async",
        "webhook_allow_private",
        _bool,
        False,
        _env("async", "webhook_allow_private"),
        "let destination webhooks reach loopback, link-local (cloud metadata) and private addresses",
    ),
    Option(
        "async",
        "max_dead_letters",
        _int(1, 10_000_000),
        10_000,
        _env("async", "max_dead_letters"),
        "dead letters kept at most; past it the oldest are dropped (counted in metrics, an event says which)",
    ),
    # -- storage on PostgreSQL (issue 18) --
    Option(
        "storage",
        "url",
        _storage_url,
        None,
        _env("storage", "url"),
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE: keep the registry, alert rules and history in "
        "PostgreSQL, shared by every cloudfn pointing at it (default: the embedded store in the data directory)",
    ),
    # -- cluster mode (issue 18): none of core/cluster is imported without nats_url. Credentials come
    # from files or CLOUDFN_CLUSTER_NATS_TOKEN / _PASSWORD (core/cluster/connect.py), never settings,
    # since `cloudfn info` lists the settings.
    Option(
        "cluster",
        "nats_url",
        _nats_url,
        "",
        _env("cluster", "nats_url"),
        "nats://host:port of the cluster's NATS server(s), comma-separated: `serve` becomes a gateway "
        "and `cloudfn worker` runs functions (default: none, one machine)",
    ),
    Option(
        "cluster",
        "nats_user",
        _optional_text,
        None,
        _env("cluster", "nats_user"),
        "user name for NATS (its password: CLOUDFN_CLUSTER_NATS_PASSWORD or cluster.nats_password_file)",
    ),
    Option(
        "cluster",
        "nats_password_file",
        _optional_path,
        None,
        _env("cluster", "nats_password_file"),
        "file holding the NATS user's password",
    ),
    Option(
        "cluster",
        "nats_token_file",
        _optional_path,
        None,
        _env("cluster", "nats_token_file"),
        "file holding the NATS token (or CLOUDFN_CLUSTER_NATS_TOKEN)",
    ),
    Option(
        "cluster",
        "nats_creds_file",
        _optional_path,
        None,
        _env("cluster", "nats_creds_file"),
        "NATS credentials file (JWT + nkey seed), or an nkey seed file (begins with SU)",
    ),
    Option(
        "cluster",
        "node_id",
        _optional_text,
        None,
        _env("cluster", "node_id"),
        "this node's name in `cloudfn info` (default: host name and process id)",
    ),
    Option(
        "cluster",
        "async_ack_wait",
        _number(1, 3600),
        30.0,
        _env("cluster", "async_ack_wait"),
        "seconds before an asynchronous invocation held by a gateway that stopped answering goes to another",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}
# `remotes` is not a section of options but a table of named servers, like kubectl's contexts:
#   remotes:
#     prod: {url: "https://cloudfn.example.com", token: "..."}   # or token_file: PATH
REMOTES = "remotes"
CONFIG_ENV = "CLOUDFN_CONFIG"

# The original platform's backend/config/config.yaml and storage.yaml, so its files load as they
# are. A key listed here with a cloudfn equivalent is translated (SEED_RENAMES); the others are
# read, reported once as ignored, and never fatal. A key in neither list is still an error, in
# cloudfn's sections and the seed's alike: a typo must not pass as "the original's setting".
SEED_KEYS: dict[str, frozenset[str]] = {
    "server": frozenset({"host", "port", "mode", "read_timeout", "write_timeout", "idle_timeout"}),
    "storage": frozenset({"type", "data_dir", "max_conns", "max_idle_time", "primary", "cache", "object", "logs"}),
    "runtime": frozenset(
        {
            "work_dir",
            "max_concurrent",
            "default_timeout",
            "default_memory",
            "enabled_runtimes",
            "runtime_paths",
            "max_code_size",
            "allowed_packages",
        }
    ),
    "security": frozenset({"enable_auth", "jwt_expiry", "allowed_origins", "rate_limit", "enable_https"}),
    "monitor": frozenset(
        {
            "enable_metrics",
            "metrics_path",
            "enable_profiling",
            "profiling_path",
            "log_level",
            "log_format",
            "log_output",
            "enable_tracing",
        }
    ),
}
# Sections of the seed's files read as a whole and ignored (storage.yaml's per-environment overrides).
SEED_IGNORED_SECTIONS = frozenset({"environments"})


def _comma_list(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return ",".join(v)
    raise ValueError("a list of origins")


# seed key -> (cloudfn option names, parser): Go's ReadTimeout bounds reading the whole request,
# headers and body, so it sets both of cloudfn's read timeouts.
SEED_RENAMES: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "server.read_timeout": (("server.header_timeout", "server.body_timeout"), go_duration),
    "security.allowed_origins": (("server.cors_origins",), _comma_list),
}
SECTIONS = sorted({o.section for o in OPTIONS} | {REMOTES} | set(SEED_KEYS) | SEED_IGNORED_SECTIONS)


@dataclass
class Setting:
    value: Any
    source: str  # "default", "file <path>", "env NAME", "flag --x"


@dataclass(frozen=True)
class Remote:
    """A named server from the config file's `remotes` table. The token is never printed."""

    name: str
    url: str
    token: str | None = None
    token_file: Path | None = None

    def resolve_token(self) -> str | None:
        if self.token:
            return self.token
        if self.token_file:
            try:
                return self.token_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"remote {self.name!r}: cannot read token_file {self.token_file}: {exc.strerror}"
                ) from None
        return None


@dataclass
class Config:
    settings: dict[str, Setting]
    file: Path | None
    file_exists: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    remotes: dict[str, Remote] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # the seed's keys cloudfn has no use for

    def ignored_note(self) -> str:
        """The one line that reports them, or ""."""
        if not self.ignored:
            return ""
        return f"config file {self.file}: ignored (not used by cloudfn): {', '.join(self.ignored)}"

    def __getitem__(self, name: str) -> Any:
        return self.settings[name].value

    @property
    def data_dir(self) -> Path:
        return Path(self["storage.data_dir"])

    @property
    def work_dir(self) -> Path:
        return Path(self["runtime.work_dir"])

    @property
    def cache_dir(self) -> Path:
        return paths.default_cache_dir()


def load_config(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the layers. `flags` maps option names ("storage.data_dir") to values given on the
    command line; None values are ignored. Raises ConfigError naming file, key and expectation."""
    environ = os.environ if environ is None else environ
    settings = {o.name: Setting(o.default, "default") for o in OPTIONS}

    path, explicit = _config_path(config_file, environ)
    exists = path.is_file()
    if explicit and not exists:
        raise ConfigError(
            f"config file {path}: cannot read it (no such file). Create it or drop --config/{CONFIG_ENV}."
        )
    remotes: dict[str, Remote] = {}
    ignored: list[str] = []
    if exists:
        for name, value in _read_file(path, remotes, ignored).items():
            settings[name] = Setting(value, f"file {path}")

    for opt in OPTIONS:
        for var in opt.env:
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                settings[opt.name] = Setting(opt.parse(raw), f"env {var}")
            except ValueError as exc:
                shown = _shown(opt.name, raw)
                raise ConfigError(f"environment variable {var}={shown}: expected {exc} (sets {opt.name})") from None

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        opt = BY_NAME[name]
        try:
            settings[name] = Setting(opt.parse(raw), "flag")
        except ValueError as exc:
            raise ConfigError(f"{name}={_shown(name, raw)}: expected {exc}") from None

    if settings["storage.data_dir"].value is None:
        settings["storage.data_dir"] = Setting(paths.default_data_dir(), "default (XDG data folder)")
    data_dir = Path(settings["storage.data_dir"].value).resolve()
    settings["storage.data_dir"].value = data_dir
    if settings["runtime.work_dir"].value is None:
        settings["runtime.work_dir"] = Setting(data_dir / "functions", "default (<data_dir>/functions)")
    pmax, pmin = settings["runtime.prewarm_max"], settings["runtime.prewarm"]
    if pmax.source != "default" and pmax.value < pmin.value:  # (the default 4 under a larger prewarm: prewarm)
        raise ConfigError(
            f"runtime.prewarm_max={pmax.value} ({pmax.source}) is less than runtime.prewarm={pmin.value} "
            f"({pmin.source}), the least kept: set prewarm_max to {pmin.value} or more"
        )
    return Config(settings=settings, file=path, file_exists=exists, remotes=remotes, ignored=ignored)


def _config_path(config_file: str | Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    if config_file:
        return Path(config_file).expanduser(), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser(), True
    return paths.default_config_file(), False


def _read_remotes(path: Path, body: Any, remotes: dict[str, Remote], problems: list[str]) -> None:
    if not isinstance(body, dict):
        problems.append(f"{REMOTES}: expected a mapping of names to {{url, token}}, got {type(body).__name__}")
        return
    for name, entry in body.items():
        if not isinstance(entry, dict):
            problems.append(f"{REMOTES}.{name}: expected a mapping with url (and token or token_file)")
            continue
        unknown = sorted(set(entry) - {"url", "token", "token_file"})
        if unknown:
            problems.append(
                f"{REMOTES}.{name}: unknown key(s) {', '.join(map(str, unknown))} (known: url, token, token_file)"
            )
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"{REMOTES}.{name}.url: expected an http:// or https:// URL, got {url!r}")
            continue
        token = entry.get("token")
        if token is not None and not isinstance(token, str):
            problems.append(f"{REMOTES}.{name}.token: expected a string")
            continue
        token_file = entry.get("token_file")
        tf = None
        if token_file is not None:
            try:
                tf = _path(token_file)
            except ValueError:
                problems.append(f"{REMOTES}.{name}.token_file: expected a path")
                continue
            if not tf.is_absolute():
                tf = (path.parent / tf).resolve()
        remotes[str(name)] = Remote(str(name), url.rstrip("/"), token, tf)


def _read_file(
    path: Path, remotes: dict[str, Remote] | None = None, ignored: list[str] | None = None
) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(data).__name__}."
        )

    values: dict[str, Any] = {}
    renamed: dict[str, Any] = {}
    problems: list[str] = []
    ignored = ignored if ignored is not None else []
    for section, body in data.items():
        if section not in SECTIONS:
            problems.append(f"unknown section {section!r} (known: {', '.join(SECTIONS)})")
            continue
        if body is None:
            continue
        if section in SEED_IGNORED_SECTIONS:
            ignored.append(str(section))
            continue
        if section == REMOTES:
            _read_remotes(path, body, remotes if remotes is not None else {}, problems)
            continue
        if not isinstance(body, dict):
            problems.append(f"{section}: expected a mapping of keys, got {type(body).__name__}")
            continue
        for key, raw in body.items():
            opt = BY_NAME.get(f"{section}.{key}")
            if opt is None:
                seed_name = f"{section}.{key}"
                if seed_name in SEED_RENAMES:
                    targets, parse = SEED_RENAMES[seed_name]
                    try:
                        value = parse(raw)
                    except ValueError as exc:
                        problems.append(f"{seed_name}: expected {exc}, got {raw!r}")
                        continue
                    for target in targets:
                        try:
                            renamed[target] = BY_NAME[target].parse(value)
                        except ValueError as exc:
                            problems.append(f"{seed_name} (sets {target}): expected {exc}, got {raw!r}")
                    continue
                if seed_name == "storage.primary" and (primary := seed_primary_url(raw)) is not None:
                    renamed["storage.url"] = primary  # the original's PostgreSQL, with its ${VAR}s set
                    continue
                if key in SEED_KEYS.get(section, ()):
                    if not _seed_value_used(section, key, raw):
                        ignored.append(seed_name)
                    continue
                own = [o.key for o in OPTIONS if o.section == section]
                known = own + sorted(SEED_KEYS.get(section, set()) - set(own))
                problems.append(f"unknown key {section}.{key} (known in {section}: {', '.join(known)})")
                continue
            try:
                value = opt.parse(raw)
            except ValueError as exc:
                problems.append(f"{opt.name}: expected {exc}, got {_shown(opt.name, raw)}")
                continue
            if opt.parse is _path and not value.is_absolute():
                value = (path.parent / value).resolve()  # relative to the file, not the caller
            values[opt.name] = value
    if problems:
        raise ConfigError(f"config file {path}:\n" + "\n".join(f"  - {p}" for p in problems))
    return {**renamed, **values}  # cloudfn's own key beats the seed's in the same file


def _seed_value_used(section: str, key: str, raw: Any) -> bool:
    """Whether a seed key without an option of its own still says what cloudfn does anyway, so
    reporting it as ignored would mislead: `storage.type: file` is cloudfn's embedded store."""
    return section == "storage" and key == "type" and isinstance(raw, str) and raw.strip().lower() == "file"
