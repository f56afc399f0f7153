"""The findings contract (DESIGN.md contract 2): one ``Finding`` per verdict, with evidence.

Columns of the findings table (``FINDINGS_SCHEMA``): ``kind, severity, title, server,
direction, connector, remote, cert_thumbprint, first_seen_utc, last_seen_utc, sessions,
messages, cause, evidence`` (``file:line`` references, at most ``MAX_EVIDENCE``) and
``details`` (kind-specific facts, a JSON object stored as text).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa

from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord

SEVERITIES = ("critical", "warning", "info")
#: Default severity per kind (DESIGN.md); ``cert_expiring`` becomes critical within 7 days.
DEFAULT_SEVERITY = {
    "mail_flow_halt": "critical",
    "mail_flow_silence": "critical",
    "connector_cert_missing": "critical",
    "cert_expired_in_use": "critical",
    "cert_expiring": "warning",
    "tls_failure": "warning",
    "tls_fallback": "warning",
    "legacy_tls": "warning",
    "cert_name_mismatch": "warning",
    "self_signed_external": "warning",
    "weak_certificate": "warning",
    "connector_tls_mismatch": "warning",
    "plaintext": "info",
    "cert_not_in_inventory": "info",
    "cert_changed": "info",
}
MAX_EVIDENCE = 20

_TS = pa.timestamp("us", tz="UTC")
FINDINGS_SCHEMA = pa.schema(
    [
        ("kind", pa.large_string()),
        ("severity", pa.large_string()),
        ("title", pa.large_string()),
        ("server", pa.large_string()),
        ("direction", pa.large_string()),
        ("connector", pa.large_string()),
        ("remote", pa.large_string()),
        ("cert_thumbprint", pa.large_string()),
        ("first_seen_utc", _TS),
        ("last_seen_utc", _TS),
        ("sessions", pa.int64()),
        ("messages", pa.int64()),
        ("cause", pa.large_string()),
        ("evidence", pa.large_list(pa.large_string())),
        ("details", pa.large_string()),
    ]
)


@dataclass
class Finding:
    """One verdict. ``evidence``: ``file:line`` of the rows that prove it (capped)."""

    kind: str
    title: str
    severity: str | None = None
    server: str | None = None
    direction: str | None = None
    connector: str | None = None
    remote: str | None = None
    cert_thumbprint: str | None = None
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None
    sessions: int | None = None
    messages: int | None = None
    cause: str | None = None
    evidence: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """Thresholds of the rules (all have defaults; the CLI exposes the main ones)."""

    halt_min_sessions: int = 3
    halt_min_duration: timedelta = timedelta(minutes=10)
    silence_min_gap: timedelta = timedelta(minutes=30)
    silence_gap_factor: float = 5.0
    expiring_within: timedelta = timedelta(days=30)
    expiring_critical_within: timedelta = timedelta(days=7)
    internal_networks: tuple[str, ...] = (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
        "::1/128", "fc00::/7", "fe80::/10",
    )  # fmt: skip


@dataclass
class Context:
    """What every rule reads: the session table, inventory and connector records, time."""

    sessions: pd.DataFrame
    inventory: list[CertificateRecord]
    connectors: list[ConnectorRecord]
    now: datetime
    options: Options

    def is_internal(self, address: str | None) -> bool | None:
        """Inside the internal networks (not ``ipaddress.is_private``, which also counts the
        documentation ranges); None when ``address`` is not an IP address."""
        return _is_internal(address, tuple(self.options.internal_networks))

    def external(self, addresses: pd.Series) -> pd.Series:
        """Boolean Series: the address is an IP address outside the internal networks (each
        distinct address is looked at once)."""
        verdicts = {
            address: _is_internal(address, tuple(self.options.internal_networks)) is False
            for address in addresses.dropna().unique()
        }
        return addresses.map(verdicts).fillna(False).astype(bool)


@functools.lru_cache(maxsize=65536)
def _is_internal(address: str | None, networks: tuple[str, ...]) -> bool | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    return any(ip in network for network in _networks(networks))


@functools.cache
def _networks(networks: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(net) for net in networks)


def evidence_of(rows: pd.DataFrame) -> list[str]:
    """``file:line`` of the first rows of sessions (at most MAX_EVIDENCE)."""
    head = rows.head(MAX_EVIDENCE)
    return [f"{f}:{line}" for f, line in zip(head["file"], head["line"], strict=True)]


def _plain(value):
    """pandas/NumPy scalars from the session table as plain Python values (NA as None)."""
    if isinstance(value, (list, dict)):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def session_span(rows: pd.DataFrame) -> dict:
    """Finding fields for a group of sessions: first/last seen, sessions, messages, evidence."""
    messages = rows["messages"].sum()
    return {
        "first_seen_utc": rows["start_utc"].min(),
        "last_seen_utc": rows["end_utc"].max(),
        "sessions": len(rows),
        "messages": int(messages) if not pd.isna(messages) else None,
        "evidence": evidence_of(rows),
    }


def to_frame(findings: list[Finding]) -> pd.DataFrame:
    """Findings as a DataFrame in FINDINGS_SCHEMA (most severe first, then by time)."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    rows = []
    for f in findings:
        row = {key: _plain(value) for key, value in f.__dict__.items()}
        row["severity"] = f.severity or DEFAULT_SEVERITY[f.kind]
        row["evidence"] = list(f.evidence[:MAX_EVIDENCE])
        row["details"] = json.dumps(f.details, default=str, sort_keys=True)
        rows.append(row)

    def order(row: dict) -> tuple:
        seen = row["first_seen_utc"]
        moment = seen.timestamp() if seen is not None else float("inf")
        return (
            rank[row["severity"]],
            moment,
            row["kind"],
            row["server"] or "",
            row["remote"] or "",
        )

    rows.sort(key=order)
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA).to_pandas(types_mapper=pd.ArrowDtype)
