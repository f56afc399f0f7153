"""Everything a report shows, gathered once: sessions, findings, certificates, connector
choices, peers and the evidence rows. Renderers (Markdown, HTML, charts) only read this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pandas as pd

from loganalyzer.certs import certificates, connector_choices
from loganalyzer.findings import find_issues
from loganalyzer.findings.model import Options
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord, as_records
from loganalyzer.report.evidence import raw_lines, session_keys, session_rows, split_ref
from loganalyzer.report.peers import peers_table

#: Findings whose evidence rows the appendix shows (most severe first), and sessions each.
EVIDENCE_FINDINGS = 15
EVIDENCE_SESSIONS = 2


@dataclass
class ReportData:
    """The report's content. Frames keep the library's columns (Arrow dtypes, UTC times).

    ``evidence`` maps a finding's position in ``findings`` to the rows of its first sessions
    (``report.evidence.EVIDENCE_COLUMNS``); ``inputs`` is the read summary (files, rows,
    malformed rows, skipped inputs); ``now`` the time expiry is judged at.
    """

    sessions: pd.DataFrame
    findings: pd.DataFrame
    certificates: pd.DataFrame
    choices: pd.DataFrame
    peers: pd.DataFrame
    now: datetime
    inputs: dict = field(default_factory=dict)
    evidence: dict[int, list[pd.DataFrame]] = field(default_factory=dict)

    def with_frames(self, **frames) -> ReportData:
        """A copy with some parts replaced (for redaction)."""
        return replace(self, **frames)


def collect(
    sessions: pd.DataFrame,
    inventory: list[CertificateRecord] | None = None,
    connectors: list[ConnectorRecord] | None = None,
    *,
    now: datetime | None = None,
    options: Options | None = None,
    inventory_skipped: Iterable[tuple[str, str]] = (),
    keep: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    evidence: bool = True,
) -> ReportData:
    """Run the findings and build every table of the report from a session table.

    The evidence rows are read again from the log files the findings cite (where they still
    exist; ``evidence=False`` skips that). ``keep`` filters the findings first (a time window,
    an allowlist, new-only). ``inventory_skipped`` are (name, reason) pairs of inventory or
    connector inputs that could not be read.
    """
    now = now or datetime.now(UTC)
    inventory = as_records(inventory, CertificateRecord)
    connectors = as_records(connectors, ConnectorRecord)
    findings = find_issues(sessions, inventory, connectors, now=now, options=options)
    if keep is not None:
        findings = keep(findings).reset_index(drop=True)
    inputs = dict(sessions.attrs.get("read_stats") or {})
    inputs["inventory_skipped"] = [{"file": n, "reason": r} for n, r in inventory_skipped]
    inputs["inventory_records"] = len(inventory)
    inputs["connector_records"] = len(connectors)
    return ReportData(
        sessions=sessions,
        findings=findings,
        certificates=certificates(sessions, inventory, connectors, now=now),
        choices=connector_choices(connectors, inventory, now=now),
        peers=peers_table(sessions),
        now=now,
        inputs=inputs,
        evidence=_evidence(findings, sessions) if evidence else {},
    )


def _evidence(findings: pd.DataFrame, sessions: pd.DataFrame) -> dict[int, list[pd.DataFrame]]:
    """The rows of the first sessions behind the most severe findings."""
    if findings.empty:
        return {}
    serious = findings["severity"].isin(["critical", "warning"]).to_numpy(bool)
    picked = {
        i: list(refs)[:EVIDENCE_SESSIONS]
        for i, refs in enumerate(findings["evidence"])
        if serious[i] and refs is not None and len(refs)
    }
    picked = dict(list(picked.items())[:EVIDENCE_FINDINGS])
    keys = session_keys([ref for refs in picked.values() for ref in refs], sessions)
    files = {file.split("!", 1)[0] for file, _ in keys.values()}  # a zip member: its archive
    rows = session_rows(sorted(f for f in files if os.path.exists(f)), set(keys.values()))
    unread = [ref for ref in keys if keys[ref] not in rows]  # other formats: the cited line
    lines = raw_lines(parsed for ref in unread if (parsed := split_ref(ref)) is not None)
    out = {}
    for i, refs in picked.items():
        tables = []
        for ref in refs:
            if ref in keys and keys[ref] in rows:
                tables.append(rows[keys[ref]])
            elif (parsed := split_ref(ref)) in lines:
                tables.append(_line_table(parsed, keys[ref][1], lines[parsed]))
        out[i] = tables
    return out


def _line_table(ref: tuple[str, int], session_id: str, text: str) -> pd.DataFrame:
    """One cited line as an evidence table (the raw line in ``data``)."""
    table = pd.DataFrame(
        [{"file": ref[0], "line": ref[1], "date_time": None, "session_id": session_id,
          "event": None, "data": text, "context": None}]
    )  # fmt: skip
    table.attrs["omitted"] = 0
    return table
