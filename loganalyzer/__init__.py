"""loganalyzer: TLS-aware analysis of SMTP protocol logs (Exchange first).

Library entry points return pandas DataFrames with Arrow-backed dtypes::

    import loganalyzer
    sessions = loganalyzer.read_sessions("collected-logs/")   # one row per SMTP session
    events = loganalyzer.read_events("collected-logs/")       # one row per log row
    findings = loganalyzer.find_issues(sessions, loganalyzer.read_inventory("exports/"))
    loganalyzer.plot_tls_over_time(sessions)                  # a matplotlib Figure

The heavy modules are imported on first use, so worker processes that only parse stay light.
"""

from __future__ import annotations

import importlib

from loganalyzer.errors import (
    InventoryError,
    LogAnalyzerError,
    LogParseError,
    NoInputError,
    UnknownFormatError,
)

__version__ = "0.1.0.dev0"

_LAZY = {
    "Limits": "loganalyzer.sources.files",
    "read_inventory": "loganalyzer.inventory.reader",
    "read_connectors": "loganalyzer.inventory.reader",
    "certificates": "loganalyzer.certs",
    "connector_choices": "loganalyzer.certs",
    "session_certificate_facts": "loganalyzer.certs",
    "read_sessions": "loganalyzer.sessions",
    "read_events": "loganalyzer.events",
    "find_issues": "loganalyzer.findings",
    "collect_report": "loganalyzer.report",
    "write_report": "loganalyzer.report",
    "redact_report": "loganalyzer.report",
    "peers_table": "loganalyzer.report.peers",
    "plot_tls_over_time": "loganalyzer.report.charts",
    "plot_failures_over_time": "loganalyzer.report.charts",
    "plot_tls_versions": "loganalyzer.report.charts",
    "plot_certificate_timeline": "loganalyzer.report.charts",
    "SESSION_COLUMNS": "loganalyzer.schema",
    "SESSION_SCHEMA": "loganalyzer.schema",
    "ingest": "loganalyzer.store",
    "open_store": "loganalyzer.store",
    "read_store": "loganalyzer.store",
    "Store": "loganalyzer.store",
    "StoreError": "loganalyzer.store",
    "write_tlsrpt": "loganalyzer.tlsrpt",
    "tlsrpt_reports": "loganalyzer.tlsrpt",
}

__all__ = [
    "SESSION_COLUMNS",
    "SESSION_SCHEMA",
    "InventoryError",
    "Limits",
    "LogAnalyzerError",
    "LogParseError",
    "NoInputError",
    "Store",
    "StoreError",
    "UnknownFormatError",
    "__version__",
    "certificates",
    "collect_report",
    "connector_choices",
    "find_issues",
    "ingest",
    "open_store",
    "peers_table",
    "plot_certificate_timeline",
    "plot_failures_over_time",
    "plot_tls_over_time",
    "plot_tls_versions",
    "read_connectors",
    "read_events",
    "read_inventory",
    "read_sessions",
    "read_store",
    "redact_report",
    "session_certificate_facts",
    "tlsrpt_reports",
    "write_report",
    "write_tlsrpt",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'loganalyzer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
