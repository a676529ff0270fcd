"""The REST server: a thin HTTP adapter over `PlatformAPI` (README, "REST API and remote attach").

`create_app(platform, settings)` builds the FastAPI application; `serve(...)` runs it under
uvicorn with token auth, a body-size limit and a graceful shutdown. No platform logic lives
here: every route calls one `PlatformAPI` method and maps its answer or its `CloudfnError`
to HTTP. The wire format is the original platform's (README, "Coming from the original platform").
"""

from typing import Any

__all__ = ["API_VERSION", "SERVICE", "ServerSettings", "ServerState", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazily: a CLI call that only looks for an owner's socket (core.server.owner) must not pay
    # for importing FastAPI (~150 ms).
    if name in __all__:
        from core.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'core.server' has no attribute {name!r}")
