"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""

from __future__ import annotations

from pathlib import Path


class AneurysmError(Exception):
    """An error caused by the user's input or environment, not by a bug in this package."""


class DataError(AneurysmError):
    """A problem with one file or folder; the message always names it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ConfigError(AneurysmError):
    """A configuration value or file that cannot be used."""
