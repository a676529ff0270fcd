"""Runs functions: warm, sandboxed worker processes per function version (see DESIGN.md
"Execution"). The platform core uses `ExecutionService` and `ExecutionSettings` only."""

from .service import ExecutionService, ExecutionSettings

__all__ = ["ExecutionService", "ExecutionSettings"]
