"""loganalyzer: TLS-aware analysis of SMTP protocol logs (Exchange first).

Library entry points return pandas DataFrames with Arrow-backed dtypes::

    import loganalyzer
    sessions = loganalyzer.read_sessions("collected-logs/")   # one row per SMTP session
    events = loganalyzer.read_events("collected-logs/")       # one row per log row
"""

from loganalyzer.errors import (
    InventoryError,
    LogAnalyzerError,
    LogParseError,
    NoInputError,
    UnknownFormatError,
)
from loganalyzer.events import read_events
from loganalyzer.schema import SESSION_COLUMNS, SESSION_SCHEMA
from loganalyzer.sessions import read_sessions

__version__ = "0.1.0.dev0"

__all__ = [
    "SESSION_COLUMNS",
    "SESSION_SCHEMA",
    "InventoryError",
    "LogAnalyzerError",
    "LogParseError",
    "NoInputError",
    "UnknownFormatError",
    "__version__",
    "read_events",
    "read_sessions",
]
