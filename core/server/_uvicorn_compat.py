"""Every uvicorn name cloudfn relies on beyond `uvicorn.Config(...)` / `uvicorn.Server(config).serve`.

uvicorn is pinned exactly (pyproject.toml) because of what is here; tests/server/test_uvicorn_compat.py
checks that each name still exists and behaves as assumed, so an upgrade that moves one fails there.
Importing this module imports uvicorn: import it where the server starts, not at module level of
code the CLI loads for every command.

- `HttpToolsProtocol`: the base of the server's protocol (core/server/http_protocol.py: one write
  per response, header/body deadlines, a connection cap) and of the owner socket's (peer uid check).
- `QuietServer`: uvicorn.Server without its own signal handlers; the owner of the process (the
  console, `cloudfn serve`'s runner) installs them, for the close too.
- `loop_factory()`: uvicorn's choice of event loop (uvloop when installed); the method exists from
  uvicorn 0.36 on (below it `cloudfn serve` crashed with AttributeError).

`CLOUDFN_STOCK_UVICORN=1` drops the one override that exists only for speed, the one-write-per-turn
transport (bench_server.py measures it); the deadlines, the connection cap and the signal rules are
protections and behaviour, not speed, and stay.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["HttpToolsProtocol", "QuietServer", "STOCK", "ServerState", "loop_factory"]

STOCK = os.environ.get("CLOUDFN_STOCK_UVICORN", "") not in ("", "0")


class QuietServer(uvicorn.Server):
    """A uvicorn.Server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _no_app(*args: Any) -> None:  # the Config is asked for its loop only
    return None


def loop_factory() -> Callable[[], Any] | None:
    return uvicorn.Config(app=_no_app, loop="auto").get_loop_factory()
