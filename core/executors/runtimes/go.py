"""Go functions: `func NAME(event interface{}, context map[string]string) interface{}` or
returning `(interface{}, error)`, and every aws-lambda-go signature (an optional leading
context.Context, a typed event, TOut and/or error results), with or without `package main` and
`import` lines: missing standard imports are added and unused ones made blank, without moving a
line of the user's code, so compile errors keep the user's line and column.

Each code version is compiled once into the cache (key: code, handler, toolchain version, runner),
together with runners/go_runner.go, into a static binary that stays warm in its workers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Set as AbstractSet
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.filemodes import private_dir
from core.funcfiles import UnsafePath, files_digest, write_tree
from core.models import ErrorType, Function, InvokeResult, StackFrame

from ..builds import BUILD_DIR, CACHE_DIR, BuildLimits, reclaim, run_build
from ..sandbox import BASE_ENV, HostSandbox, Mount, WorkerSpec
from ..worker import Adoption, NotAdopted, WorkerInit
from .base import FUNCTION_DIR, PREWARM_CPU_SECONDS, RUNNERS_DIR, Runtime

INSTALL_HINT = "install the Go toolchain (apt-get install golang-go), then invoke again"
BUILD_FORMAT = "5"  # bump when the wrapper changes: old cache entries are then ignored
USER_FILE = "main.go"
RUNNER_SRC = RUNNERS_DIR / "go_runner.go"
PREWARM_START = ".cloudfn-start"  # a pre-started sandbox's last step (see prewarm_spec)

# Packages added automatically when code without any `import` line uses them.
AUTO_IMPORTS = {
    "fmt": "fmt",
    "strings": "strings",
    "strconv": "strconv",
    "math": "math",
    "time": "time",
    "sort": "sort",
    "errors": "errors",
    "os": "os",
    "json": "encoding/json",
    "regexp": "regexp",
    "bytes": "bytes",
    "unicode": "unicode",
    "rand": "math/rand",
    "utf8": "unicode/utf8",
    "base64": "encoding/base64",
    "hex": "encoding/hex",
    "sha256": "crypto/sha256",
    "context": "context",
}
# go 1.19 says `imported and not used: "p"`, later releases `"p" imported and not used`
UNUSED_IMPORT_RE = re.compile(
    r'(?:"([\w./\-]+)" imported (?:as \w+ )?and not used'
    r'|imported (?:as \w+ )?and not used: "([\w./\-]+)")'
)
UNDEFINED_RE = re.compile(r"^undefined: (\w+)$")
IMPORT_SPEC_RE = re.compile(r'^\s*(?:import\s+)?\(?\s*(?:[\w.]+\s+)?"([^"]+)"\s*\)?\s*$', re.M)
PACKAGE_RE = re.compile(r"^\s*package\s+\w+\s*;?\s*(//.*)?$")
IMPORT_RE = re.compile(r"^\s*import\b", re.M)
ERROR_LINE_RE = re.compile(r"^(?:\./)?([\w.\-/]+\.go):(\d+):(?:(\d+):)?\s*(.*)$")
# What `go` prints when it cannot reach the module proxy (or may not: GOPROXY=off).
MODULE_FETCH_RE = re.compile(
    r"dial tcp|no such host|i/o timeout|connection refused|network is unreachable"
    r"|proxyconnect|TLS handshake|server misbehaving|module lookup disabled"
    r"|GOPROXY=off|temporary failure in name resolution",
    re.I,
)
VENDOR_MANIFEST = "vendor/modules.txt"
MISSING_COMMA = "unexpected newline in composite literal; possibly missing comma or }"


def _go() -> tuple[str | None, str]:
    return _go_on(os.environ.get("PATH", ""))


@lru_cache(maxsize=8)
def _go_on(search_path: str) -> tuple[str | None, str]:
    """Looked up once per PATH: a toolchain installed later is found when PATH changes or on restart."""
    path = shutil.which("go", path=search_path)
    if not path:
        return None, ""
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "GOTOOLCHAIN": "local"}
        out = subprocess.run([path, "env", "GOVERSION"], capture_output=True, text=True, timeout=30, env=env)
        version = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None, ""
    return (path, version) if version else (None, "")


@lru_cache(maxsize=1)
def _default_proxy() -> str:
    """The toolchain's own default GOPROXY (asked of it, not written here)."""
    go = _go()[0]
    if go is None:
        return "off"
    try:
        out = subprocess.run(
            [go, "env", "GOPROXY"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "GOTOOLCHAIN": "local", "GOENV": "off"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return "off"
    return out.stdout.strip() or "off"


def _proxies(value: str) -> str:
    """A GOPROXY list without `direct` and `off` (the build may use proxies only)."""
    kept = [p for p in re.split(r"[,|]", value) if p.strip() and p.strip() not in ("direct", "off")]
    return ",".join(kept) or "off"


_FIRST_DECL_RE = re.compile(r"^(?:func|var|const|type)\b", re.M)
_IMPORT_DECL_RE = re.compile(r'\bimport\s*(\([^)]*\)|(?:[\w.]+\s+)?"[^"\n]*")')


def _import_specs(body: str, pkg: str) -> list[str]:
    """The import specs naming the package (`"fmt"`, `f "fmt"`). Go puts every import before
    the first other declaration, so only that head is read: a string "errors" in code is no import."""
    first = _FIRST_DECL_RE.search(body)
    head = re.sub(r"//[^\n]*", "", body[: first.start()] if first else body)
    specs = []
    for decl in _IMPORT_DECL_RE.finditer(head):
        specs += [m.group(0) for m in re.finditer(rf'(?:[\w.]+[ \t]+)?"{re.escape(pkg)}"', decl.group(1))]
    return specs


def _aliased(body: str, pkg: str) -> bool:
    """Whether the package is imported under another name (`f "fmt"`, `. "fmt"`)."""
    return any(not spec.startswith('"') for spec in _import_specs(body, pkg))


class GoSource:
    """The user's code made into a compilable main.go, with the line offset to undo.

    Import fixes never move the user's lines: imports cloudfn adds go on the line it writes
    before the code, or onto the user's `package` line (`package main; import ("context")`), and
    an unused import becomes a blank one (`_ "encoding/json"`) where it stands."""

    def __init__(self, code: str, handler: str):
        self.handler = handler
        self.notes: list[str] = []
        lines = code.split("\n")
        self.offset = 0
        self.package_index: int | None = None
        self.package_comment = ""
        for i, line in enumerate(lines):
            s = line.strip()
            if not s or s.startswith("//"):
                continue
            m = PACKAGE_RE.match(line)
            if m:
                self.package_index = i
                self.package_comment = " " + m.group(1) if m.group(1) else ""
            break
        self.auto_imports: list[str] = []
        self.added: list[str] = []  # imports added after a build named the package undefined
        self.blanked: dict[int, str] = {}  # user line -> unused import made blank there
        self.lines = lines
        body = "\n".join(lines)
        if self.package_index is None:
            if not IMPORT_RE.search(body):
                for ident, pkg in AUTO_IMPORTS.items():
                    if re.search(rf"(?<![\w.]){ident}\.[A-Z]", body):
                        self.auto_imports.append(pkg)
            self.offset = 1

    def render(self, skip_imports: AbstractSet[str] = frozenset()) -> str:
        lines = list(self.lines)
        for line_no, pkg in self.blanked.items():
            lines[line_no - 1] = re.sub(
                rf'(?:(?<![\w.])(?!import\b)[\w.]+\s+)?"{re.escape(pkg)}"', f'_ "{pkg}"', lines[line_no - 1], count=1
            )
        imports = [p for p in self.auto_imports + self.added if p not in skip_imports]
        if self.package_index is not None:
            clause = "package main"
            if imports:
                clause += "; import (" + "; ".join(f'"{p}"' for p in imports) + ")"
            lines[self.package_index] = clause + self.package_comment
        body = "\n".join(lines)
        # fmt.Errorf / errors.New calls are routed through the runner so a returned error keeps
        # the stack where it was made. Same length: columns in compile errors stay the user's.
        tail = []
        uses_fmt = bool(_import_specs(body, "fmt")) or "fmt" in imports
        uses_errors = bool(_import_specs(body, "errors")) or "errors" in imports
        if uses_fmt and not _aliased(body, "fmt"):
            body = re.sub(r"(?<![\w.])fmt\.Errorf\(", "cfn_Errorf(", body)
            tail.append("var _ = fmt.Sprint")
        if uses_errors and not _aliased(body, "errors"):
            body = re.sub(r"(?<![\w.])errors\.New\(", "cfn_errNew(", body)
            tail.append("var _ = errors.Is")
        head = ""
        if self.offset:
            head = "package main"
            if imports:
                head += "; import (" + "; ".join(f'"{p}"' for p in imports) + ")"
            head += "\n"
        return head + body + "\n" + "\n".join(tail) + "\n"

    def ours(self, pkg: str, user_line: int) -> bool:
        """Whether an import the compiler names at this line is one cloudfn added."""
        on_our_line = user_line <= 0 or (self.package_index is not None and user_line == self.package_index + 1)
        return on_our_line and pkg in self.auto_imports + self.added

    def blank(self, pkg: str, user_line: int) -> bool:
        if not (1 <= user_line <= len(self.lines)) or user_line in self.blanked:
            return False
        if f'"{pkg}"' not in self.lines[user_line - 1]:
            return False
        self.blanked[user_line] = pkg
        return True

    def import_notes(self, skip: set[str]) -> list[str]:
        added = [p for p in self.auto_imports + self.added if p not in skip]
        notes = [f'cloudfn: added the missing import "{p}" (the code uses it without importing it)' for p in added]
        notes += [
            f'cloudfn: removed the unused import "{p}" at line {n} (Go refuses to build with it)'
            for n, p in sorted(self.blanked.items())
        ]
        return notes

    def add_comma(self, user_line: int) -> bool:
        """The seed's own example leaves out a trailing comma Go requires; add it when the line
        plainly ends an element (no comment, not already ending in a comma or brace)."""
        i = user_line - 1
        if not (0 <= i < len(self.lines)):
            return False
        line = self.lines[i]
        s = line.rstrip()
        if not s or "//" in s or s.endswith((",", "{", "(", "[")) or s.strip() in ("}", ")", "]"):
            return False
        self.lines[i] = s + "," + line[len(s) :]
        self.notes.append(
            f"cloudfn: added a missing trailing comma at the end of line {user_line} "
            "(Go requires one after the last element of a multi-line literal)"
        )
        return True


class GoRuntime(Runtime):
    name = "go"
    code_file = USER_FILE

    def __init__(self, work_dir: Path, cache_dir: Path, sandbox: HostSandbox | None = None):
        super().__init__(work_dir, cache_dir, sandbox)
        self._locks: dict[str, asyncio.Lock] = {}
        self.build_limits = BuildLimits()
        self.last_build_ms = 0.0  # for benchmarks: time of the last real build
        self.use_goimports = True  # False: missing imports come from AUTO_IMPORTS only

    def info(self) -> dict[str, Any]:
        path, version = _go()
        return {
            "available": path is not None,
            "version": version,
            "path": path or "",
            "hint": "" if path else INSTALL_HINT,
            "goimports": self._goimports() or "",
        }

    def _key(self, fn: Function, version: str) -> str:
        h = hashlib.sha256()
        tools = "goimports" if self._goimports() else ""
        files = files_digest(fn.files) if fn.files else ""  # every file: a changed module rebuilds
        for part in (BUILD_FORMAT, version, tools, fn.handler, fn.code, RUNNER_SRC.read_text(), files):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()[:32]

    @staticmethod
    def module_mode(fn: Function) -> str:
        """How the build gets the modules: "" (offline: the standard library and the function's
        own packages), "vendor" (the folder's vendor/, no network) or "proxy" (a go.mod that
        requires modules, without vendor/: the module proxy is tried, the build's network on)."""
        if VENDOR_MANIFEST in fn.files:
            return "vendor"
        # a go.mod that requires nothing (the function's own packages only) builds offline
        return "proxy" if re.search(r"^\s*require\b", fn.files.get("go.mod", ""), re.M) else ""

    def _go_env(self, mode: str = "") -> dict[str, str]:
        """The build's whole environment, with paths as the build sandbox shows them."""
        env = self._base_go_env()
        if mode == "vendor":
            env["GOFLAGS"] = "-mod=vendor"
        elif mode == "proxy":
            # The host's proxy, else the toolchain's default, never `direct`: a direct fetch
            # would let a go.mod send the build's requests to any HTTPS host (loopback too) and
            # run version-control tools. Modules are kept in the cache across builds.
            env["GOPROXY"] = _proxies(os.environ.get("GOPROXY") or _default_proxy())
            env["GOVCS"] = "*:off"
            for k in ("GONOSUMDB", "GOPRIVATE", "GOSUMDB"):
                if os.environ.get(k):
                    env[k] = os.environ[k]
            env["GOMODCACHE"] = f"{CACHE_DIR}/mod"
        return env

    def _base_go_env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "GOCACHE": f"{CACHE_DIR}/build-cache",
            "GOPATH": "/tmp/gopath",
            "GOFLAGS": "-mod=mod",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            "GO111MODULE": "on",
            "CGO_ENABLED": "0",
            "GOENV": "off",
            "LANG": "C.UTF-8",
        }

    @staticmethod
    def _toolchain_mounts(go: str) -> list[Mount]:
        """A toolchain outside /usr (say /opt/go) is shown to the build at its own path."""
        real = os.path.realpath(go)
        if real.startswith("/usr/"):
            return []
        root = os.path.dirname(os.path.dirname(real))
        return [Mount(Path(root), root)]

    async def prepare(self, fn: Function) -> WorkerInit | InvokeResult:
        go, version = _go()
        if go is None:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE, f"Go is not installed on this host: {INSTALL_HINT}"
            )
        key = self._key(fn, version)
        out_dir = self.cache_dir / "go" / key
        binary = out_dir / "handler"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not binary.exists():
                failure = await self._build(go, fn, out_dir)
                if failure is not None:
                    return failure
        notes: list[str] = []
        try:
            notes = json.loads((out_dir / "notes.json").read_text())
        except (OSError, ValueError):
            pass
        mounts = [Mount(out_dir, FUNCTION_DIR, copy=True)]
        env = self.env(fn, {"GOMEMLIMIT": f"{max(8, int(fn.memory * 0.9))}MiB"})
        spec = self.base_spec(
            fn,
            [f"{FUNCTION_DIR}/handler", "{REQ_FD}", "{RESP_FD}"],
            env,
            mounts,
            host_dir=self.function_dir(fn).parent / "run",
        )
        return WorkerInit(spec=spec, init={"type": "init", "handler": fn.handler}, notes=notes)

    # --- pre-started sandboxes (prewarm.py) ----------------------------------------------------
    # A Go function is its own binary, so what waits in the sandbox is a shell: it says "up",
    # waits for one line on the request pipe, then sources the adopting function's PREWARM_START
    # (its rlimits and environment) and execs the binary, which reads the init frame as usual.
    def prewarm_spec(self, slot: Path) -> WorkerSpec | None:
        sh = shutil.which("sh")
        sh = os.path.realpath(sh) if sh else ""
        if _go()[0] is None or not sh.startswith("/usr/"):
            return None
        up = '{"type":"up","logs_closed":false}'
        # (dash redirects only fds 0-9 with >&N: the pipes are reopened through /proc instead)
        script = (
            f"printf '\\000\\000\\000\\{len(up):03o}%s' '{up}' >/proc/self/fd/\"$2\" || exit 70\n"
            'IFS= read -r _ </proc/self/fd/"$1" || exit 0\n'
            f". {FUNCTION_DIR}/{PREWARM_START}\n"
            "exit 71\n"
        )
        return WorkerSpec(
            argv=[sh, "-c", script, "cloudfn-prewarm", "{REQ_FD}", "{RESP_FD}"],
            env=dict(BASE_ENV),
            mounts=[Mount(slot, FUNCTION_DIR)],
            cpu_seconds=PREWARM_CPU_SECONDS,
            chdir=FUNCTION_DIR,
        )

    def adoption(self, wi: WorkerInit) -> Adoption:
        cpu = wi.spec.cpu_seconds
        lines = [f"ulimit -S -t {cpu} && ulimit -H -t {cpu + 1} || exit 71"]
        for k, v in wi.spec.env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):  # the model refuses such names
                raise NotAdopted(f"environment variable name {k!r} cannot go into a shell script")
            lines.append(f"export {k}='" + v.replace("'", "'\\''") + "'")
        lines.append(f'exec {FUNCTION_DIR}/handler "$1" "$2"')
        return Adoption(files={PREWARM_START: "\n".join(lines) + "\n"}, prelude=b"go\n")

    def build_dir_files(self, src: GoSource, skip: set[str], own_go_mod: bool = False) -> dict[str, str]:
        files = {} if own_go_mod else {"go.mod": "module cloudfn\n\ngo 1.19\n"}
        return {
            **files,
            USER_FILE: src.render(skip),
            "cloudfn_runner.go": RUNNER_SRC.read_text(),
            "cloudfn_handler.go": (
                "package main\n\n"
                f"var cloudfnHandler interface{{}} = {src.handler.split('.')[-1]}\n\n"
                f"const cloudfnLineOffset = {src.offset}\n\n"
                f'const cloudfnUserFile = "{USER_FILE}"\n'
            ),
        }

    async def _build(self, go: str, fn: Function, out_dir: Path) -> InvokeResult | None:
        src = GoSource(fn.code, fn.handler)
        tmp = self.cache_dir / "go" / f"build-{uuid.uuid4().hex[:12]}"
        private_dir(tmp, 0o700)  # the build's own (given to the sandbox user)
        skip: set[str] = set()
        mode = self.module_mode(fn)
        t0 = time.perf_counter()
        try:
            try:
                write_tree(tmp, fn.files)  # the user's other files, once: only main.go changes between tries
            except (UnsafePath, OSError) as exc:
                return InvokeResult.failure(ErrorType.COMPILE_ERROR, f"the function's files cannot be laid out: {exc}")
            for _attempt in range(8):
                for name, text in self.build_dir_files(src, skip, own_go_mod="go.mod" in fn.files).items():
                    (tmp / name).write_text(text)
                res = await run_build(
                    self.sandbox,
                    [go, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", f"{BUILD_DIR}/handler", "."],
                    self._go_env(mode),
                    tmp,
                    self.cache_dir / "go" / "sandbox-cache",
                    self.build_limits,
                    extra_mounts=self._toolchain_mounts(go),
                    network=mode == "proxy",
                )
                if res.limit:
                    return InvokeResult.failure(ErrorType.COMPILE_ERROR, f"go build was stopped: {res.limit}")
                if res.returncode == 0:
                    break
                if mode == "proxy" and MODULE_FETCH_RE.search(res.output):
                    return self._fetch_failure(res.output)
                out = res.output.encode()
                errors = self._parse_errors(out.decode(errors="replace"), src)
                # unused and missing imports both fixed before the next try: one more compile, not two
                retry = self._fix_imports(src, errors, skip)
                missing = {
                    m.group(1)
                    for e in errors
                    if e["file"] == USER_FILE
                    for m in [UNDEFINED_RE.match(e["message"])]
                    if m
                }
                if missing:
                    (tmp / USER_FILE).write_text(src.render(skip))
                    found = await self._resolve_imports(src, missing, skip, tmp)
                    retry = retry or bool(found)
                    src.added += found
                if not retry:
                    commas = [e for e in errors if e["file"] == USER_FILE and MISSING_COMMA in e["message"]]
                    if commas and len(src.notes) < 5 and src.add_comma(commas[0]["line"]):
                        retry = True
                if not retry:
                    return self._compile_failure(errors, out.decode(errors="replace"), fn)
            else:
                return InvokeResult.failure(ErrorType.COMPILE_ERROR, "the code did not compile")
            self.last_build_ms = (time.perf_counter() - t0) * 1000
            private_dir(out_dir, 0o755)
            (tmp / "notes.json").write_text(json.dumps(src.import_notes(skip) + src.notes))
            os.chmod(tmp / "notes.json", 0o644)
            os.replace(tmp / "notes.json", out_dir / "notes.json")
            (out_dir / "main.go").write_text(fn.code)
            os.chmod(out_dir / "main.go", 0o644)
            write_tree(out_dir, fn.files, exclusive=False)  # data files are read at run time too
            reclaim(tmp / "handler")
            os.chmod(tmp / "handler", 0o755)
            os.replace(tmp / "handler", out_dir / "handler")  # last: its presence means "built"
            os.chmod(out_dir, 0o755)
            return None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _fetch_failure(output: str) -> InvokeResult:
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        return InvokeResult.failure(
            ErrorType.COMPILE_ERROR,
            "go build could not download the modules go.mod requires (the Go module proxy is not reachable "
            "from this host). Vendor them: run `go mod vendor` in the function folder and deploy it with its "
            "vendor/ folder (cloudfn then builds with -mod=vendor, offline). go said: " + " | ".join(lines[-3:]),
        )

    def _goimports(self) -> str | None:
        if not self.use_goimports:
            return None
        path = shutil.which("goimports", path=os.environ.get("PATH", "") + ":/usr/bin")
        return os.path.realpath(path) if path else None

    @staticmethod
    def _fix_imports(src: GoSource, errors: list[dict[str, Any]], skip: set[str]) -> bool:
        """Unused imports: cloudfn's own are dropped, the user's made blank. True if any changed."""
        changed = False
        for e in errors:
            m = UNUSED_IMPORT_RE.search(e["message"])
            if e["file"] != USER_FILE or not m:
                continue
            pkg = m.group(1) or m.group(2)
            if src.ours(pkg, e["line"]):
                if pkg not in skip:
                    skip.add(pkg)
                    changed = True
            elif src.blank(pkg, e["line"]):
                changed = True
        return changed

    async def _resolve_imports(self, src: GoSource, names: set[str], skip: set[str], tmp: Path) -> list[str]:
        """The standard packages that define the undefined names, as goimports picks them (run in
        the build sandbox, it reads the code), else from AUTO_IMPORTS; only new ones."""
        if not names:
            return []
        have = set(src.auto_imports) - skip | set(src.added)
        listed = [p for p in (AUTO_IMPORTS.get(n) for n in sorted(names)) if p and p not in have]
        goimports = self._goimports()
        if goimports is None:
            return listed
        rendered = (tmp / USER_FILE).read_text()
        mounts = {m.target: m for m in self._toolchain_mounts(_go()[0] or "/usr/bin/go")}
        if not goimports.startswith("/usr/"):  # the binary alone, not the folder it was installed in
            mounts[goimports] = Mount(Path(goimports), goimports)
        res = await run_build(
            self.sandbox,
            [goimports, f"{BUILD_DIR}/{USER_FILE}"],
            self._go_env(),
            tmp,
            self.cache_dir / "go" / "sandbox-cache",
            self.build_limits,
            extra_mounts=list(mounts.values()),
        )
        if res.returncode != 0:
            return listed
        out = res.output.split("\nfunc ", 1)[0]
        found = [p for p in IMPORT_SPEC_RE.findall(out) if f'"{p}"' not in rendered and "." not in p.split("/")[0]]
        # goimports knows every package; only those naming an undefined identifier are wanted
        return [p for p in dict.fromkeys(found) if p.rsplit("/", 1)[-1] in names and p not in have]

    def _parse_errors(self, text: str, src: GoSource) -> list[dict[str, Any]]:
        errors = []
        for raw in text.splitlines():
            m = ERROR_LINE_RE.match(raw.strip())
            if not m:
                continue
            file, line, col, msg = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            if file == USER_FILE:
                line -= src.offset
                msg = msg.replace("cfn_Errorf", "fmt.Errorf").replace("cfn_errNew", "errors.New")
            errors.append({"file": file, "line": line, "column": int(col) if col else None, "message": msg})
        return errors

    def _compile_failure(self, errors: list[dict[str, Any]], raw: str, fn: Function) -> InvokeResult:
        user = [e for e in errors if (e["file"] == USER_FILE or e["file"] in fn.files) and e["line"] > 0]
        handler = fn.handler.split(".")[-1]
        if not user:
            for e in errors:
                if e["file"] == "cloudfn_handler.go" and "undefined" in e["message"]:
                    return InvokeResult.failure(
                        ErrorType.COMPILE_ERROR,
                        f"handler '{handler}' is not defined in the code (define func {handler}(event interface{{}}, "
                        "context map[string]string) interface{}, or an aws-lambda-go form such as "
                        f"func {handler}(ctx context.Context, event T) (R, error))",
                    )
                if e["file"] == "cloudfn_runner.go" or e["file"] == "cloudfn_handler.go":
                    return InvokeResult.failure(
                        ErrorType.COMPILE_ERROR,
                        f"the code clashes with cloudfn's wrapper: {e['message']} "
                        "(do not define main() or names starting with cfn or cloudfn)",
                    )
            text = raw.strip().splitlines()
            return InvokeResult.failure(ErrorType.COMPILE_ERROR, "go build failed: " + " | ".join(text[-5:]))
        first = user[0]
        where = f"line {first['line']}" + (f", column {first['column']}" if first["column"] else "")
        where += "" if first["file"] == USER_FILE else f" of {first['file']}"
        msg = f"{first['file']}:{first['line']}:{first['column'] or 0}: {first['message']} ({where})"
        if len(user) > 1:
            msg += "".join(f"\n{e['file']}:{e['line']}:{e['column'] or 0}: {e['message']}" for e in user[1:10])
        return InvokeResult.failure(
            ErrorType.COMPILE_ERROR,
            msg,
            stack=[StackFrame(file=e["file"], line=e["line"], column=e["column"], function="") for e in user[:10]],
        )
