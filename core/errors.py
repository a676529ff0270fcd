"""Errors a user of the platform can meet, each with the exit code the command line uses."""

from __future__ import annotations

from dataclasses import dataclass


class CloudfnError(Exception):
    """Base for errors that carry a message meant for a person, not a stack trace."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidInput(CloudfnError):
    """One or more fields are wrong; every one of them is named."""

    exit_code = 2
    http_status = 422

    def __init__(self, what: str, errors: list[FieldError]):
        self.what = what
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid {what}:\n{lines}")


class ConfigError(CloudfnError):
    exit_code = 2
    http_status = 500


class NotFound(CloudfnError):
    exit_code = 3
    http_status = 404


class Conflict(CloudfnError):
    exit_code = 4
    http_status = 409


class Unavailable(CloudfnError):
    """The platform cannot be opened or reached: a held data directory, a corrupt store."""

    exit_code = 5
    http_status = 503


class StoreCorrupt(Unavailable):
    pass


class DataDirLocked(Unavailable):
    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class BuildError(CloudfnError):
    """A function's dependencies could not be installed. `log` is the installer's own output
    (uv's "No solution found...", npm's "404 Not Found..."), so the user sees why."""

    exit_code = 2
    http_status = 422

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class QueueFull(CloudfnError):
    """The asynchronous queue holds as many invocations as `async.max_queued` allows."""

    exit_code = 5
    http_status = 429
