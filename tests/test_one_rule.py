"""Rules that used to be written twice and drift, each now defined once: the loopback check
(serve --no-auth, cloudfn web, the server's Host check), the KEY=VALUE environment parser (the
command line, the console's box), the drop-when-full queue (event bus, SSE writer) and the list
of runtimes (models, executors)."""

from __future__ import annotations

import argparse

import pytest

from cloudfn_tui.commands.web import run_web
from core.envtext import parse_env
from core.errors import ConfigError, InvalidInput
from core.events import DroppingQueue, EventBus
from core.executors.runtimes import RUNTIMES as RUNTIME_CLASSES
from core.loopback import is_loopback, is_loopback_authority
from core.models import RUNTIMES
from core.server.runner import ServeOptions, check_auth_rule

LOOPBACK = [
    "localhost",
    "LOCALHOST",
    " localhost ",
    "localhost.",
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
]
NOT_LOOPBACK = [
    "0.0.0.0",
    "::",
    "[::]",
    "10.0.0.1",
    "example.com",
    "127.0.0.1.evil.example",
    "localhost.evil",
    "[127.0.0.1",
    "::1]",
    "",
    "[]",
    "[localhost",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_names(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize(
    "header, ok",
    [
        (b"localhost", True),
        (b"localhost:8080", True),
        (b"LocalHost:1", True),
        (b"127.0.0.1:80", True),
        (b"[::1]:8080", True),
        (b"[::1]", True),
        (b"localhost.:8080", True),
        (b"::1", False),  # an IPv6 host in a Host header needs its brackets
        (b"localhost:", False),
        (b"localhost:x", False),
        (b"[::1]x", False),
        (b"[::1:80", False),
        (b"evil.example", False),
        (b"127.0.0.1.evil.example:80", False),
        (b"0.0.0.0:8080", False),
    ],
)
def test_host_headers(header, ok):
    assert is_loopback_authority(header) is ok


class Started(Exception):
    pass


@pytest.mark.parametrize(
    "host, bound, url",
    [
        ("[::1]", "::1", "http://[::1]:8000"),
        ("LOCALHOST", "LOCALHOST", "http://LOCALHOST:8000"),
        ("localhost.", "localhost.", "http://localhost.:8000"),
    ],
)
def test_cloudfn_web_takes_bracketed_and_uppercase_loopback_hosts(host, bound, url, monkeypatch):
    import cloudfn_tui.commands.web as web

    class Server:  # past the loopback check: what the server would be made with
        def __init__(self, command, **kw):
            raise Started(kw)

    monkeypatch.setattr(web, "_server_class", lambda: Server)
    with pytest.raises(Started) as made:
        run_web(argparse.Namespace(host=host, port=8000, allow_remote_access=False, public_url=None))
    kw = made.value.args[0]
    assert (kw["host"], kw["public_url"]) == (bound, url)  # bound without brackets, named with them
    assert "http://localhost:8000" in kw["origins"] and url.lower() in kw["origins"]  # browsers lowercase it


def test_cloudfn_web_refuses_other_hosts():
    with pytest.raises(ConfigError, match="not a loopback address"):
        run_web(argparse.Namespace(host="10.1.2.3", port=8000, allow_remote_access=False))


@pytest.mark.parametrize("host, allowed", [("[::1]", True), ("LOCALHOST", True), ("0.0.0.0", False)])
def test_serve_no_auth_follows_the_same_rule(host, allowed):
    opts = ServeOptions(host=host, port=0, no_auth=True)
    if allowed:
        check_auth_rule(opts)
    else:
        with pytest.raises(ConfigError, match="--no-auth"):
            check_auth_rule(opts)


def test_env_entries_from_the_command_line_and_the_console_box_parse_alike():
    pairs = ["A=1", " B = two words ", "C=x=y", "", "# a comment", "EMPTY="]
    expected = {"A": "1", "B": " two words ", "C": "x=y", "EMPTY": ""}
    assert parse_env(pairs) == expected
    assert parse_env("\n".join(pairs).splitlines(), "environment", numbered=True) == expected


def test_every_bad_env_entry_is_named():
    with pytest.raises(InvalidInput) as caught:
        parse_env(["A=1", "novalue", "=x", "B=2"])
    assert [str(e) for e in caught.value.errors] == ["env: 'novalue' is not KEY=VALUE", "env: '=x' is not KEY=VALUE"]
    with pytest.raises(InvalidInput) as caught:
        parse_env("A=1\n\nnovalue".splitlines(), "environment", numbered=True)
    assert [str(e) for e in caught.value.errors] == ["environment: line 3: 'novalue' is not KEY=VALUE"]


async def test_a_full_queue_drops_and_counts_and_still_takes_its_end_mark():
    q = DroppingQueue(2)
    assert q.offer(1) and q.offer(2) and not q.offer(3)
    assert q.dropped == 1
    q.end(None)  # full: the oldest item makes room, and counts as dropped
    assert [q.get_nowait(), q.get_nowait()] == [2, None]
    assert q.take_dropped() == 2 and q.take_dropped() == 0


async def test_the_bus_drops_for_a_slow_reader_through_the_same_queue():
    bus = EventBus(maxsize=3)
    sub = bus.subscribe()
    for i in range(5):
        bus.publish("log", {"i": i})
    assert isinstance(sub.queue, DroppingQueue) and sub.dropped == 2 and bus.dropped == 2


def test_one_list_of_runtimes():
    assert tuple(RUNTIME_CLASSES) == RUNTIMES == ("python", "nodejs", "go")
    assert all(cls.name == name for name, cls in RUNTIME_CLASSES.items())
