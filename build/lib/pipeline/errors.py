"""User-facing errors: one clear sentence naming the problem and the fix.

The CLI prints a :class:`LingShiftError` without a traceback and exits with status 2;
every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class LingShiftError(Exception):
    """A problem the user can fix (bad input, missing file, no network).

    ``str(err)`` is the message; ``err.hint`` (optional) says what to do about it.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} {self.hint}" if self.hint else base


class ResourceError(LingShiftError):
    """A pinned external file could not be fetched, verified or read."""


class CorpusFormatError(LingShiftError):
    """A corpus file is malformed; the message names the file and line."""

    def __init__(self, path: object, line: int | None, problem: str, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}", hint)
        self.path = path
        self.line = line


class ConfigError(LingShiftError):
    """params.yaml (or a CLI argument) is invalid."""


class ModelError(LingShiftError):
    """A model cannot be resolved or loaded."""
