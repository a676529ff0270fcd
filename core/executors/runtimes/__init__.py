"""One module per runtime; `RUNTIMES` maps the runtime name to its class, in the order of
core.models.RUNTIMES, the names' one definition (tests/executors/test_runtimes_registry.py)."""

from .base import Runtime
from .go import GoRuntime
from .nodejs import NodeRuntime
from .python import PythonRuntime

RUNTIMES: dict[str, type[Runtime]] = {cls.name: cls for cls in (PythonRuntime, NodeRuntime, GoRuntime)}

__all__ = ["RUNTIMES", "Runtime", "PythonRuntime", "NodeRuntime", "GoRuntime"]
