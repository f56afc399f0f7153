"""Everything a report shows, gathered once: sessions, findings, certificates, connector
choices, peers and the evidence rows. Renderers (Markdown, HTML, charts) only read this.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pandas as pd

from loganalyzer.certs import certificates, connector_choices
from loganalyzer.findings import find_issues
from loganalyzer.findings.model import Options
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord
from loganalyzer.report.evidence import session_keys, session_rows
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
    logs: Iterable[str | os.PathLike[str]] = (),
    options: Options | None = None,
    inventory_skipped: Iterable[tuple[str, str]] = (),
) -> ReportData:
    """Run the findings and build every table of the report from a session table.

    ``logs`` are the inputs the sessions came from: the evidence rows are read again from the
    files the findings reference (none when empty). ``inventory_skipped`` are (name, reason)
    pairs of inventory/connector inputs that could not be read.
    """
    now = now or datetime.now(UTC)
    inventory, connectors = list(inventory or []), list(connectors or [])
    findings = find_issues(sessions, inventory, connectors, now=now, options=options)
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
        evidence=_evidence(findings, sessions, list(logs)),
    )


def _evidence(
    findings: pd.DataFrame, sessions: pd.DataFrame, logs: list
) -> dict[int, list[pd.DataFrame]]:
    """The rows of the first sessions behind the most severe findings."""
    if not logs or findings.empty:
        return {}
    serious = findings["severity"].isin(["critical", "warning"]).to_numpy(bool)
    picked = {
        i: list(refs)[:EVIDENCE_SESSIONS]
        for i, refs in enumerate(findings["evidence"])
        if serious[i] and refs is not None and len(refs)
    }
    picked = dict(list(picked.items())[:EVIDENCE_FINDINGS])
    keys = session_keys([ref for refs in picked.values() for ref in refs], sessions)
    rows = session_rows(logs, set(keys.values()))
    return {
        i: [rows[keys[ref]] for ref in refs if ref in keys and keys[ref] in rows]
        for i, refs in picked.items()
    }
