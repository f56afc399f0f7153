"""Errors users see: the CLI reports every LogAnalyzerError as one line, without a traceback."""

from __future__ import annotations


class LogAnalyzerError(Exception):
    """Base class for errors that are reported to the user as a one-line message."""


class LogParseError(LogAnalyzerError):
    """A row or file could not be parsed; carries the file and 1-based line when known."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # so that it crosses process boundaries intact
        return (type(self), (self.file, self.line, self.reason))


class UnknownFormatError(LogAnalyzerError):
    """A file is not a log format loganalyzer reads."""


class NoInputError(LogAnalyzerError):
    """Nothing readable was given."""


class InventoryError(LogAnalyzerError):
    """A certificate or connector export could not be read."""
