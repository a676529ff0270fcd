"""FastAPI's request entry point, replaced by Starlette's.

FastAPI.__call__ asks its telemetry on every request whether OpenTelemetry is configured, and
copies `root_path` into the scope; cloudfn uses neither (no root_path is ever set, no telemetry),
and the probe was a few percent of an invoke on the server's fast path (bench_server.py). FastAPI
and Starlette are pinned exactly (pyproject.toml) for it; tests/server/test_fastapi_compat.py
checks that FastAPI's call still only adds those two things to Starlette's.

`CLOUDFN_STOCK_FASTAPI=1` keeps FastAPI's own __call__.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

STOCK = os.environ.get("CLOUDFN_STOCK_FASTAPI", "") not in ("", "0")


class _StarletteCallFastAPI(FastAPI):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)


# The base of the server's application class (core/server/app.py).
if TYPE_CHECKING or not STOCK:
    LeanFastAPI = _StarletteCallFastAPI
else:
    LeanFastAPI = FastAPI
