"""The report (``loganalyzer report``): the story of a log set, with evidence.

``collect`` gathers sessions, findings, certificates, connector choices, peers and evidence
rows into a ``ReportData``; ``redact`` masks it; ``write_report`` renders the HTML page, its
Markdown twin, the data files and the charts into a folder.
"""

from loganalyzer.report.data import ReportData, collect
from loganalyzer.report.redact import redact
from loganalyzer.report.write import REPORT_FILES, write_report

__all__ = ["REPORT_FILES", "ReportData", "collect", "redact", "write_report"]
