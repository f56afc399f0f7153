"""Write a report into a folder: the page, its Markdown twin, the data files and the charts.

Files (DESIGN.md, ``loganalyzer report``): ``report.html``, ``report.md``, ``findings.json``,
``sessions.parquet``, ``certificates.csv``, ``peers.csv``, ``charts/<name>.png``. Each file is
written atomically; the folder is created when missing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

from loganalyzer import __version__
from loganalyzer.output import atomic_writer, iter_records, plain_value, write
from loganalyzer.report import html, markdown
from loganalyzer.report.charts import report_charts
from loganalyzer.report.data import ReportData
from loganalyzer.report.document import compose, verdict

REPORT_FILES = (
    "report.html", "report.md", "findings.json", "summary.json", "sessions.parquet",
    "certificates.csv", "peers.csv",
)  # fmt: skip


def findings_records(data: ReportData) -> list[dict]:
    """Findings as plain JSON records, ``details`` as an object (for ``findings.json``)."""
    out = []
    for record in iter_records(data.findings):
        details = record.get("details")
        record["details"] = json.loads(details) if isinstance(details, str) else {}
        out.append(record)
    return out


def summary(data: ReportData, tz: str = "UTC") -> dict:
    """The run in a few numbers, for monitoring systems (``summary.json``).

    ``status``: ``halted`` (a mail-flow halt), ``critical``, ``warning`` or ``ok``; ``findings``:
    counts by severity; ``by_kind``: counts by kind and severity; times in UTC (ISO 8601).
    """
    f = data.findings
    counts = f["severity"].value_counts().to_dict()
    if (f["kind"] == "mail_flow_halt").any():
        status = "halted"
    else:
        status = next((s for s in ("critical", "warning") if counts.get(s)), "ok")
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, severity), n in f.groupby(["kind", "severity"]).size().items():
        by_kind.setdefault(kind, {})[severity] = int(n)
    s, inputs = data.sessions, data.inputs
    period = (
        {"start_utc": plain_value(s["start_utc"].min()), "end_utc": plain_value(s["end_utc"].max())}
        if len(s)
        else None
    )
    return {
        "status": status,
        "verdict": verdict(data, tz).text,
        "now_utc": plain_value(data.now),
        "period": period,
        "findings": {k: int(counts.get(k, 0)) for k in ("critical", "warning", "info")},
        "by_kind": dict(sorted(by_kind.items())),
        "sessions": len(s),
        "files": inputs.get("files", 0),
        "malformed_rows": inputs.get("malformed", 0),
        "skipped_inputs": len(inputs.get("skipped", [])) + len(inputs.get("inventory_skipped", [])),
        "report": "report.html",
    }


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
    paths["summary.json"] = _write_text(
        out / "summary.json", json.dumps(summary(data, tz), ensure_ascii=False, indent=2) + "\n"
    )
    paths["sessions.parquet"] = out / "sessions.parquet"
    write(data.sessions, "parquet", out / "sessions.parquet")
    paths["certificates.csv"] = out / "certificates.csv"
    write(data.certificates, "csv", out / "certificates.csv")
    paths["peers.csv"] = out / "peers.csv"
    write(data.peers, "csv", out / "peers.csv")
    return paths


def publish_latest(report_dir: Path, latest: Path) -> Path:
    """Copy a finished report folder to ``latest`` (a fresh copy replaces the old one)."""
    staging = latest.with_name(f".{latest.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(report_dir, staging)
    old = latest.with_name(f".{latest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if latest.exists():
        os.replace(latest, old)
    os.replace(staging, latest)
    shutil.rmtree(old, ignore_errors=True)
    return latest


def _write_text(path: Path, text: str) -> Path:
    with atomic_writer(path) as handle:
        handle.write(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    with atomic_writer(path, binary=True) as handle:
        handle.write(data)
    return path
