"""Packages the dependency tests build themselves (no network): wheels and sdists by hand (a
wheel is a zip with a dist-info folder), npm tarballs, and a loopback npm registry serving them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel; `files` maps paths inside site-packages to their text."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    entries = {
        **files,
        f"{dist}.dist-info/METADATA": meta,
        f"{dist}.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for p, text in entries.items():
            data = text.encode()
            z.writestr(p, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{p},sha256={digest},{len(data)}")
        record.append(f"{dist}.dist-info/RECORD,,")
        z.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def make_npm_tarball(name: str, version: str, files: dict[str, str], scripts: dict[str, str] | None = None) -> bytes:
    pkg = {"name": name, "version": version, "main": "index.js", **({"scripts": scripts} if scripts else {})}
    entries = {"package.json": json.dumps(pkg), **files}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for p, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{p}")
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class NpmRegistry:
    """A loopback registry: GET /<name> is the packument, GET /<name>/-/<file>.tgz the tarball.
    `requests` counts what was asked, so a test can tell whether npm came at all."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, bytes]] = {}
        self.requests: list[str] = []
        self.stall: set[str] = set()  # names whose packument never comes (until close)
        self.released = threading.Event()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                registry.requests.append(self.path)
                if self.path.strip("/") in registry.stall:
                    registry.released.wait()
                body, ctype = registry._answer(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                data = body if body is not None else b'{"error":"Not found"}'
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, version: str, tarball: bytes) -> None:
        self.packages.setdefault(name, {})[version] = tarball

    def _answer(self, path: str) -> tuple[bytes | None, str]:
        parts = path.strip("/").replace("%2f", "/").replace("%2F", "/").split("/-/")
        name = parts[0]
        versions = self.packages.get(name)
        if versions is None:
            return None, "application/json"
        if len(parts) == 2:
            for v, tgz in versions.items():
                if parts[1] == f"{name.split('/')[-1]}-{v}.tgz":
                    return tgz, "application/octet-stream"
            return None, "application/json"
        doc = {"name": name, "dist-tags": {"latest": sorted(versions)[-1]}, "versions": {}}
        for v, tgz in versions.items():
            integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
            doc["versions"][v] = {
                "name": name,
                "version": v,
                "dist": {
                    "tarball": f"{self.url}{name}/-/{name.split('/')[-1]}-{v}.tgz",
                    "shasum": hashlib.sha1(tgz).hexdigest(),
                    "integrity": integrity,
                },
            }
        return json.dumps(doc).encode(), "application/json"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


HOSTILE_BACKEND = """
import json, os, socket

def _report():
    out = {"uid": os.getuid(), "env": dict(os.environ), "files": {}, "net": ""}
    for p in TARGETS:
        try:
            with open(p) as f:
                out["files"][p] = f.read()[:80]
        except Exception as e:
            out["files"][p] = type(e).__name__
    if PORT:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
            out["net"] = "connected"
        except Exception as e:
            out["net"] = type(e).__name__
    return out

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(d, config_settings=None):
    raise RuntimeError("HOSTILE-REPORT " + json.dumps(_report()) + " END")

build_wheel = prepare_metadata_for_build_wheel
"""


def make_hostile_sdist(folder: Path, name: str, targets: list[str], port: int = 0) -> Path:
    """An sdist whose in-tree build backend (no build requirements: works offline) reports what
    it can see -- its uid, environment, the files in `targets`, a loopback port -- by failing
    with that report, which the installer's log carries back."""
    dist = f"{name}-1.0"
    path = folder / f"{dist}.tar.gz"
    backend = HOSTILE_BACKEND + f"\nTARGETS = {targets!r}\nPORT = {port}\n"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": backend,
    }
    with tarfile.open(path, "w:gz") as t:
        for p, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{dist}/{p}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def readable(d: Path) -> Path:
    """As an operator's wheel folder must be: readable by the sandbox user that runs installs."""
    d.chmod(0o755)
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def open_platform(deps_flags: dict[str, str], **flags: str):
    from core.config import load_config
    from core.local import LocalPlatform

    return LocalPlatform(load_config(flags={**deps_flags, **flags}), install_examples=False)
