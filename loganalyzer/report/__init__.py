"""The report (``loganalyzer report``): the story of a log set, with evidence.

``collect`` gathers sessions, findings, certificates, connector choices, peers and evidence
rows into a ``ReportData``; ``redact`` masks it; ``write_report`` renders the HTML page, its
Markdown twin, the data files and the charts into a folder.
"""

from loganalyzer.report.data import ReportData, collect
from loganalyzer.report.redact import redact
from loganalyzer.report.write import REPORT_FILES, write_report

#: Names in the top-level API (``loganalyzer.collect_report`` ...).
collect_report = collect
redact_report = redact

__all__ = [
    "REPORT_FILES",
    "ReportData",
    "collect",
    "collect_report",
    "redact",
    "redact_report",
    "write_report",
]
