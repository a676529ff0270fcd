"""The console holds whole functions (every file's text: the editor, drafts and saves compare
against them), while lists and events name files with their sizes only. This fills in the
texts, fetching a function only when the one held is not of the same version."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.api import PlatformAPI
from core.errors import NotFound
from core.models import Function

PARALLEL = 8  # gets in flight at once (a remote server answers each with up to 5 MiB)


async def whole_functions(api: PlatformAPI, listed: list[Function], held: Mapping[str, Function]) -> list[Function]:
    """`listed` with every summary replaced by the whole function (a function deleted meanwhile
    is left out)."""
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
