"""The secrets store on its own: encryption at rest, the key's sources, a wrong or missing key,
rotation (crash-safe), names and sizes, and the masker."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError, Conflict, InvalidInput, NotFound
from core.secrets import KEY_ENV, MAX_VALUE_BYTES, SecretStore, credential_warnings, held_by, mask, mask_text, needles

VALUE = "pa55-w0rd-Ω-7f3a9"


def b64(v: str) -> str:
    return base64.b64encode(v.encode()).decode()


def no_value_in(folder, *values: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for v in values:
                for form in (v, b64(v), b64(v).rstrip("=")):
                    assert form.encode() not in data, f"{form!r} found in {path}"


def test_set_list_values_and_nothing_plain_on_disk(tmp_path):
    s = SecretStore(tmp_path, environ={})
    assert not (tmp_path / "secrets.key").exists()  # made at the first set
    s.set("db-password", VALUE)
    key = tmp_path / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    no_value_in(tmp_path, VALUE)
    [info] = s.info({"db-password": ["fn-a"]})
    assert (info.name, info.size, info.used_by) == ("db-password", len(VALUE.encode()), ["fn-a"])
    assert VALUE not in json.dumps(info.to_doc())
    again = SecretStore(tmp_path, environ={})  # a fresh start decrypts with the key file
    assert again.values(["db-password"]) == {"db-password": VALUE}
    with pytest.raises(NotFound):
        again.values(["other"])


def test_a_value_moved_under_another_name_does_not_open(tmp_path):
    s = SecretStore(tmp_path, environ={})
    s.set("a-secret", VALUE)
    s.set("b-secret", "another value")
    doc = json.loads((tmp_path / "secrets.json").read_text())
    doc["secrets"]["b-secret"]["data"] = doc["secrets"]["a-secret"]["data"]
    (tmp_path / "secrets.json").write_text(json.dumps(doc))
    with pytest.raises(Exception) as info:
        SecretStore(tmp_path, environ={})
    assert "b-secret" in str(info.value) and "does not decrypt" in str(info.value)


def test_missing_key_is_a_clear_error_at_start(tmp_path):
    SecretStore(tmp_path, environ={}).set("x-secret", VALUE)
    (tmp_path / "secrets.key").unlink()
    with pytest.raises(ConfigError) as info:
        SecretStore(tmp_path, environ={})
    msg = info.value.message
    assert "key is missing" in msg and KEY_ENV in msg and "secrets.key_file" in msg and "move" in msg


def test_wrong_key_is_a_clear_error_at_start(tmp_path):
    SecretStore(tmp_path, environ={}).set("x-secret", VALUE)
    other = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ConfigError) as info:
        SecretStore(tmp_path, environ={KEY_ENV: other})
    assert "does not open" in info.value.message and "wrong key" in info.value.message
    with pytest.raises(ConfigError) as info:
        SecretStore(tmp_path, environ={KEY_ENV: "not-a-key"})
    assert "32 bytes of base64" in info.value.message and "urandom" in info.value.message


def test_key_from_environment_or_a_key_file_keeps_the_data_dir_keyless(tmp_path):
    data = tmp_path / "data"
    key = base64.b64encode(os.urandom(32)).decode()
    SecretStore(data, environ={KEY_ENV: key}).set("env-key", VALUE)
    assert not (data / "secrets.key").exists()
    assert SecretStore(data, environ={KEY_ENV: key}).values(["env-key"])["env-key"] == VALUE
    with pytest.raises(ConfigError):
        SecretStore(data, environ={})  # the data directory alone does not open it
    with pytest.raises(Conflict) as info:
        SecretStore(data, environ={KEY_ENV: key}).rotate_key()
    assert KEY_ENV in info.value.message

    other = tmp_path / "other"
    keyfile = tmp_path / "keys" / "cloudfn.key"
    SecretStore(other, key_file=keyfile, environ={}).set("file-key", VALUE)
    assert keyfile.exists() and not (other / "secrets.key").exists()
    no_value_in(other, VALUE)
    keyfile.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        SecretStore(other, key_file=keyfile, environ={})
    assert "chmod 600" in info.value.message


def test_rotation_re_encrypts_and_the_old_key_no_longer_opens(tmp_path):
    s = SecretStore(tmp_path, environ={})
    s.set("one", VALUE)
    s.set("two", "second secret value")
    old_key = base64.b64decode((tmp_path / "secrets.key").read_text())
    old_doc = json.loads((tmp_path / "secrets.json").read_text())
    assert s.rotate_key() == 2
    new_doc = json.loads((tmp_path / "secrets.json").read_text())
    raw = base64.b64decode(new_doc["secrets"]["one"]["data"])
    with pytest.raises(InvalidTag):
        AESGCM(old_key).decrypt(raw[:12], raw[12:], b"cloudfn-secret:one")
    assert new_doc["secrets"]["one"]["data"] != old_doc["secrets"]["one"]["data"]
    fresh = SecretStore(tmp_path, environ={})
    assert fresh.values(["one", "two"]) == {"one": VALUE, "two": "second secret value"}
    assert not list(tmp_path.glob("secrets.key.new*"))


@pytest.mark.parametrize("stop_after", ["store", "pending-key"])
def test_a_rotation_cut_short_is_finished_or_forgotten_at_start(tmp_path, monkeypatch, stop_after):
    s = SecretStore(tmp_path, environ={})
    s.set("one", VALUE)
    real_replace = os.replace

    def crash_replace(src, dst):
        if str(src).endswith(".new"):
            raise OSError("power cut")
        return real_replace(src, dst)

    def crash_save(self, doc):
        raise OSError("power cut")

    if stop_after == "store":  # the store holds the new key's ciphertexts; the key did not move
        monkeypatch.setattr(os, "replace", crash_replace)
    else:  # only the new key was written
        monkeypatch.setattr(SecretStore, "_save", crash_save)
    with pytest.raises(OSError):
        s.rotate_key()
    monkeypatch.undo()
    assert (tmp_path / "secrets.key.new").exists()
    fresh = SecretStore(tmp_path, environ={})
    assert fresh.values(["one"]) == {"one": VALUE}
    assert not (tmp_path / "secrets.key.new").exists()


def test_names_and_values_are_validated(tmp_path):
    s = SecretStore(tmp_path, environ={})
    for bad in ("", "../etc", ".hidden", "a/b", "x" * 64, "sp ace", "ä"):
        with pytest.raises(InvalidInput) as info:
            s.set(bad, VALUE)
        assert [e.field for e in info.value.errors] == ["name"]
    for bad, why in (("", "empty"), ("x" * (MAX_VALUE_BYTES + 1), "KiB"), ("a\0b", "NUL"), (5, "string")):
        with pytest.raises(InvalidInput) as info:
            s.set("ok-name", bad)
        assert why in info.value.message and "x" * 50 not in info.value.message
    assert s.names() == []
    assert not (tmp_path / "secrets.json").exists()  # nothing half-written


def test_delete(tmp_path):
    s = SecretStore(tmp_path, environ={})
    s.set("gone", VALUE)
    s.delete("gone")
    assert s.names() == [] and not SecretStore(tmp_path, environ={}).names()
    with pytest.raises(NotFound):
        s.delete("gone")


def test_masking_covers_the_value_and_its_base64_forms():
    found = needles([VALUE, "abc"])  # "abc" is too short to mask
    raw = VALUE.encode()
    text = (
        f"v={VALUE} b={base64.b64encode(raw).decode()} u={base64.urlsafe_b64encode(raw).decode().rstrip('=')} abc stays"
    )
    out = mask_text(text, found)
    assert VALUE not in out and base64.b64encode(raw).decode() not in out and out.count("***") == 3
    assert "abc stays" in out
    assert mask({"k": [VALUE, 1, {VALUE: None}]}, found) == {"k": ["***", 1, {"***": None}]}


def test_credential_like_keys_and_held_by():
    warned = credential_warnings(
        {
            "DB_PASSWORD": "x",
            "API_TOKEN": "y",
            "AWS_SECRET_ACCESS_KEY": "z",
            "SIGNING_KEY": "k",
            "GREETING": "hi",
            "KEYBOARD": "us",
        }
    )
    assert [w.split()[2] for w in warned] == ["API_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "SIGNING_KEY"]
    assert all("secret_env" in w for w in warned)

    class F:
        secrets = ["a"]
        secret_env = {"B": "b", "A": "a"}

    assert held_by(F()) == ["a", "b"]


def test_the_cli_says_what_to_do_when_the_key_is_missing_or_wrong(cli, data_dir, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(VALUE + "\n"))
    code, out, err = cli("secrets", "set", "db-pw")
    assert code == 0 and "set secret db-pw" in out and VALUE not in out + err
    (data_dir / "secrets.key").rename(data_dir / "elsewhere.key")
    code, out, err = cli("secrets", "list")
    assert code == 2 and "key is missing" in err and "Traceback" not in err
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    code, out, err = cli("list")
    assert code == 2 and "wrong key" in err and "Traceback" not in err
    monkeypatch.setenv(KEY_ENV, (data_dir / "elsewhere.key").read_text().strip())
    code, out, err = cli("secrets", "list")
    assert code == 0 and "db-pw" in out and VALUE not in out
