"""Findings: verdicts over the session table, the inventory and the connectors (contract 2).

Each family of rules lives in its own module and registers its rules in ``RULES``; a rule is
``rule(ctx: Context) -> list[Finding]``. ``find_issues`` runs them all.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from loganalyzer.findings import certificates, flow, tls
from loganalyzer.findings.model import (
    DEFAULT_SEVERITY,
    FINDINGS_SCHEMA,
    SEVERITIES,
    Context,
    Finding,
    Options,
    to_frame,
)
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord, as_records

__all__ = [
    "DEFAULT_SEVERITY",
    "FINDINGS_SCHEMA",
    "SEVERITIES",
    "Finding",
    "Options",
    "at_or_above",
    "find_issues",
]

RULES = [*flow.RULES, *tls.RULES, *certificates.RULES]


def find_issues(
    sessions: pd.DataFrame,
    inventory: list[CertificateRecord] | pd.DataFrame | None = None,
    connectors: list[ConnectorRecord] | pd.DataFrame | None = None,
    now: datetime | None = None,
    options: Options | None = None,
) -> pd.DataFrame:
    """All findings, most severe first (columns: ``FINDINGS_SCHEMA``).

    ``inventory``/``connectors``: what ``read_inventory``/``read_connectors`` return (or the
    records of ``inventory.reader.read_files``); ``now`` fixes "today" for expiry checks
    (validity at session time never uses it).

    .. code-block:: python

        exports = "collected/inventory"
        findings = la.find_issues(
            sessions, la.read_inventory(exports), la.read_connectors(exports), now=now
        )
        findings[findings.severity == "critical"][["title", "cause"]]
    """
    ctx = Context(
        sessions=sessions,
        inventory=as_records(inventory, CertificateRecord),
        connectors=as_records(connectors, ConnectorRecord),
        now=now or datetime.now(UTC),
        options=options or Options(),
    )
    found: list[Finding] = []
    for rule in RULES:
        found += rule(ctx)
    return to_frame(found)


def at_or_above(findings: pd.DataFrame, severity: str) -> pd.DataFrame:
    """Findings whose severity is ``severity`` or worse (for ``--fail-on``)."""
    allowed = SEVERITIES[: SEVERITIES.index(severity) + 1]
    return findings[findings["severity"].isin(allowed)]
