# Sourced by scripts/console and scripts/test: installs what cloudfn needs on a machine that
# has Python, Node.js and apt, into .venv beside the checkout. Safe to run again: it only
# installs what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Runtimes and the sandbox come from Debian: the Go toolchain (golang-go), goimports
# (golang-golang-x-tools: Go functions may leave out or leave over imports), bubblewrap for the
# namespace sandbox, tmux and chromium (headless, for `cloudfn web`) for the console's end-to-end
# tests. Without root or apt they are skipped, and `cloudfn info` / the test summary say what is
# missing.
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v goimports >/dev/null 2>&1 || need+=(golang-golang-x-tools)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v node >/dev/null 2>&1 || need+=(nodejs)
# npm installs Node.js functions' dependencies (Debian ships it apart from nodejs).
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${CLOUDFN_SETUP_TEST:-0}" = 1 ]; then
  command -v tmux >/dev/null 2>&1 || need+=(tmux)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # the load generator of tests/benchmarks/bench_server.py and bench_triggers.py
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  # tests/pgserver.py runs a throwaway PostgreSQL 15 for the storage tests (storage.url).
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need+=(postgresql)
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)  # cluster tests
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: not installing ${need[*]} (needs root and apt-get); those parts will be unavailable" >&2
  fi
fi

# Functions run as this user when cloudfn runs as root (runtime.sandbox_user), never as root.
if [ "$(id -u)" = 0 ] && ! id cloudfn-sandbox >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cloudfn-sandbox \
    || echo "setup: could not create the cloudfn-sandbox user; functions will run as nobody (65534)" >&2
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# Exactly the versions CI tested, hash-checked, from the lock files (scripts/lock writes them from
# pyproject.toml); then the project itself, editable, without letting pip resolve anything again.
lock=requirements.lock
[ "${CLOUDFN_SETUP_TEST:-0}" = 1 ] && lock=requirements-test.lock
# Reinstall only when the lock or the project's metadata changed since the last install.
stamp=".venv/.cloudfn-installed-${lock}"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --require-hashes -r "$lock"
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
