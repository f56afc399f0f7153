"""Write a report into a folder: the page, its Markdown twin, the data files and the charts.

Files (DESIGN.md, ``loganalyzer report``): ``report.html``, ``report.md``, ``findings.json``,
``sessions.parquet``, ``certificates.csv``, ``peers.csv``, ``charts/<name>.png``. Each file is
written atomically; the folder is created when missing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from loganalyzer import __version__
from loganalyzer.output import atomic_writer, iter_records, write
from loganalyzer.report import html, markdown
from loganalyzer.report.charts import report_charts
from loganalyzer.report.data import ReportData
from loganalyzer.report.document import compose

REPORT_FILES = (
    "report.html", "report.md", "findings.json", "sessions.parquet", "certificates.csv",
    "peers.csv",
)  # fmt: skip


def findings_records(data: ReportData) -> list[dict]:
    """Findings as plain JSON records, ``details`` as an object (for ``findings.json``)."""
    out = []
    for record in iter_records(data.findings):
        details = record.get("details")
        record["details"] = json.loads(details) if isinstance(details, str) else {}
        out.append(record)
    return out


def write_report(data: ReportData, out_dir: str | Path, tz: str = "UTC") -> dict[str, Path]:
    """Render and write every report file into ``out_dir``; returns name -> path."""
    out = Path(out_dir)
    doc = compose(data, tz)
    charts = {}
    for name, figure in report_charts(data, tz).items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
        charts[name] = buffer.getvalue()
    paths = {}
    for name, png in charts.items():
        paths[f"charts/{name}.png"] = _write_bytes(out / "charts" / f"{name}.png", png)
    footer = f"Made by loganalyzer {__version__}. Evidence is cited as file:line."
    paths["report.html"] = _write_text(out / "report.html", html.render(doc, charts, footer))
    paths["report.md"] = _write_text(out / "report.md", markdown.render(doc))
    paths["findings.json"] = _write_text(
        out / "findings.json",
        json.dumps(findings_records(data), ensure_ascii=False, indent=2) + "\n",
    )
    paths["sessions.parquet"] = out / "sessions.parquet"
    write(data.sessions, "parquet", out / "sessions.parquet")
    paths["certificates.csv"] = out / "certificates.csv"
    write(data.certificates, "csv", out / "certificates.csv")
    paths["peers.csv"] = out / "peers.csv"
    write(data.peers, "csv", out / "peers.csv")
    return paths


def _write_text(path: Path, text: str) -> Path:
    with atomic_writer(path) as handle:
        handle.write(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    with atomic_writer(path, binary=True) as handle:
        handle.write(data)
    return path
