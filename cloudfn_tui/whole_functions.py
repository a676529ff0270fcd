"""The console holds whole functions (every file's text: the editor, drafts and saves compare
against them), while lists and events name files with their sizes only. This fills in the
texts, fetching a function only when the one held is not of the same version."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from core.api import PlatformAPI
from core.errors import CloudfnError, NotFound
from core.models import Function

PARALLEL = 8  # gets in flight at once (a remote server answers each with up to 5 MiB)


async def whole_functions(app: Any, held: Mapping[str, Function]) -> list[Function]:
    """The app's platform's functions, whole (a function deleted meanwhile is left out)."""
    api: PlatformAPI = app.platform
    listed = await api.list_functions()
    gate = asyncio.Semaphore(PARALLEL)

    async def whole(fn: Function) -> Function | None:
        if fn.complete:
            return fn
        have = held.get(fn.id)
        if have is not None and have.complete and (have.version, have.updated_at) == (fn.version, fn.updated_at):
            return have
        async with gate:
            try:
                return await api.get_function(fn.id)
            except NotFound:
                return None

    return [fn for fn in await asyncio.gather(*(whole(f) for f in listed)) if fn is not None]


async def whole_function(app: Any, fn_id: str) -> Function | None:
    """One function, whole, or None when it cannot be had (deleted meanwhile, the server gone)."""
    api: PlatformAPI = app.platform
    try:
        return await api.get_function(fn_id)
    except CloudfnError:
        return None
