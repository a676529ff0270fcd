"""`PlatformAPI`: the one interface the console, the command line and the REST server use.

`LocalPlatform` implements it in process; a remote implementation talks to `cloudfn serve`.
Functions are addressed by id or by name (`ref`). Every method raises a `CloudfnError` subclass
for what a user did wrong (InvalidInput, NotFound, Conflict) and never a library's exception.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from core.models import Function, InvokeResult


@runtime_checkable
class PlatformAPI(Protocol):
    async def list_functions(self) -> list[Function]: ...

    async def get_function(self, ref: str) -> Function: ...

    async def create_function(self, data: dict[str, Any]) -> Function: ...

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function: ...

    async def delete_function(self, ref: str) -> Function: ...

    async def function_versions(self, ref: str) -> list[Function]: ...

    async def rollback_function(self, ref: str, version: int) -> Function: ...

    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult: ...

    async def info(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...
