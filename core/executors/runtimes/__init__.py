"""One module per runtime; `RUNTIMES` maps the runtime name to its class."""

from .base import Runtime
from .go import GoRuntime
from .nodejs import NodeRuntime
from .python import PythonRuntime

RUNTIMES: dict[str, type[Runtime]] = {
    "python": PythonRuntime,
    "nodejs": NodeRuntime,
    "go": GoRuntime,
}

__all__ = ["RUNTIMES", "Runtime", "PythonRuntime", "NodeRuntime", "GoRuntime"]
