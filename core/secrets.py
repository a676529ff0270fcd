"""Secrets: a write-only store encrypted at rest, and the masking of their values.

The store is `<data_dir>/secrets.json`: each value sealed with AES-256-GCM (the `cryptography`
package) under a random 96-bit nonce, the secret's name bound in as associated data (a value
moved under another name does not open). The key is 32 random bytes, base64 text, found in this
order: the environment variable CLOUDFN_SECRETS_KEY, the file `secrets.key_file` of the config,
`<data_dir>/secrets.key` (0600, made at the first `set`). Kept outside the data directory, a
backup of that directory reveals no secret. A `check` token sealed with the same key tells a
wrong key from a damaged file, so the platform says which at start instead of failing later.

Values leave this module only towards a function's sandbox (core/executors) and the masker;
no listing carries them.

With shared storage (`storage.url`: the gateways of a cluster), the same sealed document lives in
PostgreSQL instead of the file, so every gateway sees every secret; each gateway then needs the
same key, and a read first compares the store's generation (one indexed read) to pick up a set
made through another gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, Field

from core.errors import ConfigError, Conflict, FieldError, InvalidInput, NotFound, StoreCorrupt
from core.models import SECRET_NAME_RE as NAME_RE
from core.models import SECRET_NAME_RULE as NAME_RULE
from core.models import utcnow
from core.storage import atomic_write_bytes, fsync_dir, remove_stale_temp_files

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.storage import Storage

STORE_FILE = "secrets.json"
KEY_FILE = "secrets.key"
KEY_ENV = "CLOUDFN_SECRETS_KEY"
FORMAT = 1
MAX_VALUE_BYTES = 64 * 1024
# Shorter values are given to functions but not masked: masking "a" would blank every log.
MIN_MASK_CHARS = 4
MASK = "***"
_CHECK = b"cloudfn secrets key check"
# Environment keys that look like credentials: suggest moving them to secrets.
CREDENTIAL_KEY_RE = re.compile(r"(^|_)(PASSWORD|PASSWD|TOKEN|KEY)$|SECRET", re.IGNORECASE)
MAKE_KEY = "head -c 32 /dev/urandom | base64"
SHARED_TABLE = "store"  # the one document of the shared store, {"id": SHARED_ID, ...the file's doc}
SHARED_ID = "secrets"


def name_problem(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        return f"must be {NAME_RULE} (got {name!r})"
    return ""


def credential_warnings(environment: Mapping[str, str] | None) -> list[str]:
    """A hint per environment key that looks like a credential (values stay plain there)."""
    return [
        f"environment variable {k} looks like a credential: its value is stored and shown in plain text; "
        f"move it to a secret (cloudfn secrets set NAME) and give it as secret_env: {{{k}: NAME}}"
        for k in sorted(environment or {})
        if CREDENTIAL_KEY_RE.search(k)
    ]


def held_by(fn: Any) -> list[str]:
    """The secrets a function may read: those it lists plus those its secret_env names (a
    secret_env entry grants its secret implicitly, so it is also a file at /run/secrets/)."""
    names = list(getattr(fn, "secrets", None) or [])
    for name in (getattr(fn, "secret_env", None) or {}).values():
        if name not in names:
            names.append(name)
    return names


def _decode_key(text: str, where: str) -> bytes:
    raw = text.strip()
    try:
        key = base64.b64decode(raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the secrets key in {where} is not 32 bytes of base64 text; make one with `{MAKE_KEY}`")
    return key


def refuse_missing(names: list[str], env: dict[str, str], exists: Callable[[str], bool], where: str = "") -> None:
    """NotFound naming every secret a function (or `where`: one of its versions) names but that
    does not exist."""
    missing = [
        f"{name!r} (in {field})"
        for field, held in (("secrets", names), ("secret_env", env.values()))
        for name in dict.fromkeys(held)
        if not exists(name)
    ]
    if missing:
        # A 404, as everywhere a request names something that is not there (the REST fuzzer reads
        # a 422 as a schema-valid body refused); exit 3 in the CLI.
        raise NotFound(
            f"no secret named {', '.join(missing)}{where}: set it first (cloudfn secrets set NAME), "
            "or see `cloudfn secrets list`"
        )


def no_secret(name: str) -> NotFound:
    """Shared with the remote client and the console tests' fake, so all word it alike."""
    return NotFound(f"no secret named {name!r} (`cloudfn secrets list` shows them)")


def held_secret(name: str, used_by: list[str]) -> Conflict:
    return Conflict(
        f"secret {name!r} is held by {', '.join(map(repr, used_by))}: remove it from their "
        "secrets and secret_env first, or delete with --force (their next start then fails)"
    )


class SecretInfo(BaseModel):
    """What anyone may know of a secret: never its value."""

    name: str
    size: int = Field(description="bytes of the value (UTF-8)")
    set_at: datetime
    used_by: list[str] = Field(default_factory=list, description="functions holding it")

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SecretStore:
    def __init__(
        self,
        data_dir: Path,
        key_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        shared: Storage | None = None,
    ):
        self.path = Path(data_dir) / STORE_FILE
        self._shared = shared
        self._generation = -1
        # Told (name -> value before) when a reload finds values changed through another gateway.
        self.on_change: Callable[[dict[str, str]], None] | None = None
        environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._env_key = environ.get(KEY_ENV) or None
        if self._env_key:
            self.key_source = f"the environment variable {KEY_ENV}"
            self.key_path: Path | None = None
        else:
            self.key_path = Path(key_file).expanduser() if key_file else Path(data_dir) / KEY_FILE
            self.key_source = f"the file {self.key_path}" + ("" if key_file else " (in the data directory)")
        self._key: bytes | None = None
        self._doc: dict[str, Any] = {"format": FORMAT, "cipher": "AES-256-GCM", "secrets": {}}
        self._values: dict[str, str] = {}
        self._load()

    # -- the key ---------------------------------------------------------------------------
    def _read_key(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the secrets key file {path}: {exc.strerror}; it must be a "
                f"regular file (not a link) readable by this user"
            ) from None
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o077:
                raise ConfigError(
                    f"the secrets key file {path} is readable by others (mode {st.st_mode & 0o777:o}); "
                    f"run `chmod 600 {path}`"
                )
            data = os.read(fd, 4096).decode("ascii", "replace")
        finally:
            os.close(fd)
        return _decode_key(data, str(path))

    def _current_key(self) -> bytes | None:
        if self._env_key:
            return _decode_key(self._env_key, f"the environment variable {KEY_ENV}")
        assert self.key_path is not None
        return self._read_key(self.key_path)

    def _opens(self, key: bytes) -> bool:
        try:
            self._open(key, self._doc["check"], b"check")
            return True
        except (InvalidTag, KeyError, ValueError, binascii.Error):
            return False

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> None:
        if self._shared is not None:
            self._refresh()
            return
        remove_stale_temp_files(self.path)
        if self.key_path is not None:
            remove_stale_temp_files(self.key_path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = None
        if raw is not None:
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("secrets"), dict):
                    raise ValueError("not a cloudfn secrets store")
            except ValueError as exc:
                raise StoreCorrupt(
                    f"the secrets store {self.path} is damaged ({exc}); cloudfn left it untouched. "
                    f"Restore it from a backup, or move it away to start with no secrets"
                ) from None
            self._doc = doc
        if "check" not in self._doc:
            self._key = self._current_key()  # may be None: made at the first set
            return
        key = self._current_key()
        key_path = self.key_path
        pending = key_path.with_name(key_path.name + ".new") if key_path else None
        if key_path is not None and pending is not None and pending.exists():
            # A rotation stopped between writing the store and moving its new key into place.
            new = self._read_key(pending)
            if key is not None and self._opens(key):
                pending.unlink()
            elif new is not None and self._opens(new):
                os.replace(pending, key_path)
                fsync_dir(key_path.parent)
                key = new
        if key is None:
            raise ConfigError(
                f"the secrets store {self.path} holds secrets but their key is missing ({self.key_source} does not "
                f"exist): restore that key file, or set {KEY_ENV} or secrets.key_file to the key they were set with; "
                f"to give up the stored secrets, move {self.path} away"
            )
        if not self._opens(key):
            raise ConfigError(
                f"the secrets key from {self.key_source} does not open the secrets store {self.path} (a wrong key): "
                f"use the key the secrets were set with ({KEY_ENV} or secrets.key_file); to give up the stored "
                f"secrets, move {self.path} away"
            )
        self._key = key
        for name, entry in self._doc["secrets"].items():
            try:
                self._values[name] = self._open(key, entry["data"], name.encode()).decode("utf-8")
            except (InvalidTag, KeyError, ValueError, TypeError, binascii.Error):
                raise StoreCorrupt(
                    f"the secret {name!r} in {self.path} does not decrypt (damaged on disk); "
                    f"restore the file from a backup, or set the secret again"
                ) from None

    # -- shared storage ----------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"the shared secrets store in {self._shared.location}" if self._shared else str(self.path)

    def _shared_doc(self, store: Storage) -> dict[str, Any]:
        doc = store.get(SHARED_TABLE, "id", SHARED_ID)
        if doc is None:
            return {"format": FORMAT, "cipher": "AES-256-GCM", "secrets": {}}
        doc = {k: v for k, v in doc.items() if k != "id"}
        if doc.get("format") != FORMAT or not isinstance(doc.get("secrets"), dict):
            raise StoreCorrupt(f"{self.where} is not a cloudfn secrets store (format {doc.get('format')!r})")
        return doc

    def _shared_key(self, doc: dict[str, Any]) -> bytes | None:
        """This gateway's key, checked against the shared records: a cluster has one key. When the
        key held here stops opening them (another gateway ran rotate-key), the key file is read
        again: the rotated key copied there is taken without a restart. A file that does not open
        them is never taken, so the file can only bring the cluster's own key."""
        held = self._key
        key = held or self._current_key()
        if "check" not in doc:
            return key
        if held is not None and self.key_path is not None and not self._opens_doc(held, doc):
            key = self._current_key()
        same = f"every gateway sharing this storage needs the same key ({KEY_ENV} or secrets.key_file)"
        if self.key_path is None:
            fix = f"set {KEY_ENV} to the key they were set with and restart"
        elif held is not None:
            fix = (
                f"copy the key file of a gateway that opens them (after `cloudfn secrets rotate-key`: the one "
                f"that rotated) to {self.key_path}, mode 0600; it is read again at the next secret read, no "
                f"restart needed"
            )
        else:
            fix = f"copy the key file of a gateway that opens them to {self.key_path}, mode 0600, and start again"
        if key is None:
            raise ConfigError(
                f"{self.where} holds secrets but this gateway has no key ({self.key_source} does not exist): "
                f"{same}; {fix}"
            )
        if not self._opens_doc(key, doc):
            raise ConfigError(
                f"the secrets key from {self.key_source} does not open {self.where} (another gateway set them "
                f"under a different key, or rotated it): {same}; {fix}"
            )
        return key

    def _opens_doc(self, key: bytes, doc: dict[str, Any]) -> bool:
        try:
            self._open(key, doc["check"], b"check")
            return True
        except (InvalidTag, KeyError, ValueError, binascii.Error):
            return False

    def _refresh(self) -> None:
        """Reload the shared document when another gateway changed it (a no-op on the file)."""
        if self._shared is None:
            return
        gen = self._shared.generation()
        if gen == self._generation:
            return
        with self._lock:
            doc = self._shared_doc(self._shared)
            key = self._shared_key(doc)
            values = {}
            for name, entry in doc["secrets"].items():
                assert key is not None  # a record implies a check, so _shared_key had a key
                try:
                    values[name] = self._open(key, entry["data"], name.encode()).decode("utf-8")
                except (InvalidTag, KeyError, ValueError, TypeError, binascii.Error):
                    raise StoreCorrupt(
                        f"the secret {name!r} in {self.where} does not decrypt (damaged); set it again"
                    ) from None
            before = self._values
            self._doc, self._values, self._key, self._generation = doc, values, key, gen
        changed = {n: v for n, v in before.items() if values.get(n) != v}
        if changed and self.on_change is not None:
            self.on_change(changed)

    def _write_shared(
        self, change: Callable[[dict[str, Any], bytes], None], after: Callable[[], None] | None = None
    ) -> None:
        """Apply `change(doc, key)` to the shared document in one transaction (under the
        store's advisory lock, so two gateways' sets do not lose one another)."""
        assert self._shared is not None

        def write(store: Storage) -> None:
            doc = self._shared_doc(store)
            key = self._shared_key(doc)
            if key is None:
                self._key = None
                key = self._ensure_key()
            if "check" not in doc:
                doc["check"] = self._seal(key, _CHECK, b"check")
            change(doc, key)
            store.upsert(SHARED_TABLE, "id", {"id": SHARED_ID, **doc})

        self._shared.transaction(write)
        if after is not None:
            after()
        self._refresh()

    # -- sealing ---------------------------------------------------------------------------
    @staticmethod
    def _seal(key: bytes, data: bytes, aad: bytes) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, data, b"cloudfn-secret:" + aad)).decode()

    @staticmethod
    def _open(key: bytes, sealed: str, aad: bytes) -> bytes:
        raw = base64.b64decode(sealed, validate=True)
        return AESGCM(key).decrypt(raw[:12], raw[12:], b"cloudfn-secret:" + aad)

    def _ensure_key(self) -> bytes:
        if self._key is None:
            if self.key_path is None:  # an env key always decodes (checked in _current_key)
                raise ConfigError(f"{KEY_ENV} is empty")
            key = os.urandom(32)
            self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_bytes(self.key_path, base64.b64encode(key) + b"\n", mode=0o600)
            self._key = key
        if "check" not in self._doc:
            self._doc["check"] = self._seal(self._key, _CHECK, b"check")
        return self._key

    def _save(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(self.path, json.dumps(doc, indent=1, sort_keys=True).encode(), mode=0o600)

    # -- the API ---------------------------------------------------------------------------
    @staticmethod
    def validate(name: Any, value: Any) -> str:
        errors = []
        why = name_problem(name)
        if why:
            errors.append(FieldError("name", why))
        if not isinstance(value, str):
            errors.append(FieldError("value", f"must be a string, got {type(value).__name__}"))
        elif not value:
            errors.append(FieldError("value", "must not be empty"))
        elif "\0" in value:
            errors.append(FieldError("value", "must not contain a NUL character"))
        elif len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            errors.append(FieldError("value", f"is larger than {MAX_VALUE_BYTES // 1024} KiB"))
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors.append(FieldError("value", "must be valid Unicode text (it holds a lone surrogate)"))
        if errors or not isinstance(value, str):  # a non-string has its error in `errors` already
            raise InvalidInput("secret", errors)
        return value

    def set(self, name: str, value: str) -> SecretInfo:
        self.validate(name, value)
        if self._shared is not None:
            data = value.encode("utf-8")
            now = utcnow()

            def put(doc: dict[str, Any], key: bytes) -> None:
                sealed = self._seal(key, data, name.encode())
                doc["secrets"][name] = {"data": sealed, "size": len(data), "set_at": now.isoformat()}

            self._write_shared(put)
            return SecretInfo(name=name, size=len(data), set_at=now)
        with self._lock:
            key = self._ensure_key()
            doc = json.loads(json.dumps(self._doc))
            data = value.encode("utf-8")
            now = utcnow()
            doc["secrets"][name] = {
                "data": self._seal(key, data, name.encode()),
                "size": len(data),
                "set_at": now.isoformat(),
            }
            self._save(doc)
            self._doc = doc
            self._values[name] = value
        return SecretInfo(name=name, size=len(data), set_at=now)

    def delete(self, name: str) -> None:
        if self._shared is not None:

            def drop(doc: dict[str, Any], key: bytes) -> None:
                if name not in doc["secrets"]:
                    raise no_secret(name)
                del doc["secrets"][name]

            self._write_shared(drop)
            return
        with self._lock:
            if name not in self._doc["secrets"]:
                raise no_secret(name)
            doc = json.loads(json.dumps(self._doc))
            del doc["secrets"][name]
            self._save(doc)
            self._doc = doc
            self._values.pop(name, None)

    def names(self) -> list[str]:
        self._refresh()
        return sorted(self._doc["secrets"])

    def exists(self, name: str) -> bool:
        self._refresh()
        return name in self._doc["secrets"]

    def info(self, users: Mapping[str, list[str]]) -> list[SecretInfo]:
        out = []
        for name in self.names():
            e = self._doc["secrets"][name]
            out.append(
                SecretInfo(
                    name=name,
                    size=int(e["size"]),
                    set_at=datetime.fromisoformat(e["set_at"]),
                    used_by=sorted(users.get(name, [])),
                )
            )
        return out

    def values(self, names: Iterable[str]) -> dict[str, str]:
        """The values of `names` (for a function's sandbox); NotFound for one that is gone."""
        self._refresh()
        out = {}
        for name in names:
            if name not in self._values:
                raise no_secret(name)
            out[name] = self._values[name]
        return out

    def rotate_key(self) -> int:
        """Re-encrypt every secret under a new random key; returns how many. Crash-safe: the new
        key is written beside the old one first (`.new`), then the store, then the key moves into
        place; a start after a crash in between finishes or forgets the rotation (_load)."""
        if self.key_path is None:
            raise Conflict(
                f"the secrets key comes from {KEY_ENV}, which cloudfn cannot change: unset it and name a "
                f"key file in the config (secrets.key_file) to rotate, or re-set every secret under a "
                f"new {KEY_ENV}"
            )
        if self._shared is not None:
            return self._rotate_shared(self.key_path)
        with self._lock:
            self._ensure_key()
            new = os.urandom(32)
            pending = self.key_path.with_name(self.key_path.name + ".new")
            atomic_write_bytes(pending, base64.b64encode(new) + b"\n", mode=0o600)
            doc = json.loads(json.dumps(self._doc))
            doc["check"] = self._seal(new, _CHECK, b"check")
            for name, entry in doc["secrets"].items():
                entry["data"] = self._seal(new, self._values[name].encode(), name.encode())
            self._save(doc)
            os.replace(pending, self.key_path)
            fsync_dir(self.key_path.parent)
            self._doc, self._key = doc, new
            return len(doc["secrets"])

    def _rotate_shared(self, key_path: Path) -> int:
        """Rotation on shared storage: the records are re-sealed in one transaction, then the new
        key replaces this gateway's key file. The other gateways' keys no longer open them: each
        is told so at its next secret read until the new key file is copied to its own
        (_shared_key reads it again then)."""
        assert self._shared is not None
        new = os.urandom(32)
        pending = key_path.with_name(key_path.name + ".new")
        atomic_write_bytes(pending, base64.b64encode(new) + b"\n", mode=0o600)
        count = 0

        def reseal(doc: dict[str, Any], key: bytes) -> None:
            nonlocal count
            doc["check"] = self._seal(new, _CHECK, b"check")
            for name, entry in doc["secrets"].items():
                plain = self._open(key, entry["data"], name.encode())
                entry["data"] = self._seal(new, plain, name.encode())
            count = len(doc["secrets"])

        with self._lock:
            self._ensure_key()
        self._write_shared(reseal, after=lambda: self._adopt(new, pending, key_path))
        return count

    def _adopt(self, new: bytes, pending: Path, key_path: Path) -> None:
        os.replace(pending, key_path)
        fsync_dir(key_path.parent)
        self._key = new

    def describe(self) -> dict[str, Any]:
        """For `cloudfn info`: where the key comes from, never the key."""
        return {"store": self.where, "key_source": self.key_source, "count": len(self._doc["secrets"])}


# -- masking -----------------------------------------------------------------------------
def needles(values: Iterable[str]) -> list[str]:
    """What to look for: each value and its base64 forms (standard and URL-safe, padded or not),
    longest first so a value inside another is not cut in half. Values shorter than
    MIN_MASK_CHARS are left out."""
    out: set[str] = set()
    for v in values:
        if len(v) < MIN_MASK_CHARS:
            continue
        out.add(v)
        raw = v.encode("utf-8")
        for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = enc.decode()
            out.add(text)
            out.add(text.rstrip("="))
    return sorted(out, key=len, reverse=True)


def mask_text(text: str, found: list[str]) -> str:
    for n in found:
        if n in text:
            text = text.replace(n, MASK)
    return text


def mask(obj: Any, found: list[str]) -> Any:
    """`obj` (JSON-like) with every needle in its strings, keys included, replaced by ***."""
    if not found:
        return obj
    if isinstance(obj, str):
        return mask_text(obj, found)
    if isinstance(obj, dict):
        return {mask_text(k, found) if isinstance(k, str) else k: mask(v, found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask(v, found) for v in obj]
    return obj
