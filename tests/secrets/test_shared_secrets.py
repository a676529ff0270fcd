"""Secrets on shared storage (storage.url): two gateways' stores over one PostgreSQL database
see each other's sets and deletes, nothing is stored in plain text there, and a gateway whose
key does not open the shared records is refused at start with what to do."""

from __future__ import annotations

import base64
import os

import psycopg
import pytest

from core.errors import ConfigError, Conflict, NotFound
from core.secrets import KEY_ENV, SecretStore
from core.storage.postgres import PostgresBackend

VALUE = "pa55-w0rd-Ω-shared"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def backends(pg_url):
    made = [PostgresBackend(pg_url), PostgresBackend(pg_url)]
    yield made
    for b in made:
        b.close()


def test_two_gateways_share_sets_and_deletes(backends, tmp_path, pg_url):
    k = key()
    a = SecretStore(tmp_path / "a", environ={KEY_ENV: k}, shared=backends[0].documents("secrets"))
    b = SecretStore(tmp_path / "b", environ={KEY_ENV: k}, shared=backends[1].documents("secrets"))
    changes: list[dict[str, str]] = []
    b.on_change = changes.append
    a.set("db-password", VALUE)
    assert b.exists("db-password") and b.values(["db-password"]) == {"db-password": VALUE}
    assert [s.name for s in b.info({})] == ["db-password"]
    a.set("db-password", VALUE + "-2")
    assert b.values(["db-password"]) == {"db-password": VALUE + "-2"}
    assert changes == [{"db-password": VALUE}]  # b learns the value it masked before
    b.delete("db-password")
    assert not a.exists("db-password")
    with pytest.raises(NotFound):
        a.values(["db-password"])
    with pytest.raises(NotFound):
        a.delete("db-password")
    assert "shared secrets store" in a.describe()["store"] and "***" in a.describe()["store"]
    with pytest.raises(Conflict, match=KEY_ENV):  # an environment key cannot be rotated by cloudfn
        a.rotate_key()
    a.set("api-key", VALUE)
    with psycopg.connect(pg_url) as conn:  # sealed in the database, not plain
        dump = str(conn.execute("SELECT doc::text FROM cloudfn_documents").fetchall())
    assert VALUE not in dump and "api-key" in dump
    assert not (tmp_path / "a" / "secrets.json").exists()


def test_a_gateway_with_another_key_is_refused_at_start(backends, tmp_path):
    SecretStore(tmp_path / "a", environ={KEY_ENV: key()}, shared=backends[0].documents("secrets")).set("x-key", VALUE)
    with pytest.raises(ConfigError, match="same key") as wrong:
        SecretStore(tmp_path / "b", environ={KEY_ENV: key()}, shared=backends[1].documents("secrets"))
    assert "different key" in str(wrong.value) and KEY_ENV in str(wrong.value)
    with pytest.raises(ConfigError, match="has no key"):  # no env key, no key file in its data dir
        SecretStore(tmp_path / "c", environ={}, shared=backends[1].documents("secrets"))


def test_rotation_on_one_gateway_tells_the_others_to_take_the_new_key(backends, tmp_path):
    a = SecretStore(tmp_path / "a", environ={}, shared=backends[0].documents("secrets"))
    a.set("x-key", VALUE)
    key_file = tmp_path / "a" / "secrets.key"
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b_key = b_dir / "secrets.key"
    b_key.write_bytes(key_file.read_bytes())
    b_key.chmod(0o600)
    b = SecretStore(b_dir, environ={}, shared=backends[1].documents("secrets"))
    assert b.values(["x-key"]) == {"x-key": VALUE}
    assert a.rotate_key() == 1
    assert a.values(["x-key"]) == {"x-key": VALUE}
    with pytest.raises(ConfigError, match="different key, or rotated it") as told:
        b.values(["x-key"])
    assert "copy the key file of a gateway that opens them" in str(told.value)
    assert str(b_key) in str(told.value) and "no restart needed" in str(told.value)
    b_key.write_text(key() + "\n")  # a key file that does not open them is never taken
    with pytest.raises(ConfigError, match="different key"):
        b.values(["x-key"])
    b_key.write_bytes(key_file.read_bytes())  # given the new key file: the running gateway reads it
    assert b.values(["x-key"]) == {"x-key": VALUE}
    b.set("y-key", VALUE + "-b")  # and writes under it: the rotating gateway opens that
    assert a.values(["y-key"]) == {"y-key": VALUE + "-b"}
