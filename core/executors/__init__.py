"""Runs functions: warm, sandboxed worker processes per function version (README, "Security:
what cloudfn protects, and from whom"). The platform core uses `ExecutionService` and
`ExecutionSettings` only."""

from .service import ExecutionService, ExecutionSettings

__all__ = ["ExecutionService", "ExecutionSettings"]
