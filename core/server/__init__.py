"""The REST server: a thin HTTP adapter over `PlatformAPI` (DESIGN.md "REST API").

`create_app(platform, settings)` builds the FastAPI application; `serve(...)` runs it under
uvicorn with token auth, a body-size limit and a graceful shutdown. No platform logic lives
here: every route calls one `PlatformAPI` method and maps its answer or its `CloudfnError`
to HTTP. The wire format is the seed's (`seed/README.md`).
"""

from core.server.app import API_VERSION, SERVICE, ServerSettings, ServerState, create_app

__all__ = ["API_VERSION", "SERVICE", "ServerSettings", "ServerState", "create_app"]
