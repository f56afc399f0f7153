"""Keeping scheduled alerts meaningful: accepted findings (an allowlist) and new-only runs.

A daily ``--fail-on`` run would fire every day on the same known facts (a partner that has no
TLS, say). Two filters keep it quiet until something changes:

- an **allowlist** (TOML) of accepted findings, each with a reason and an optional expiry::

      [[accept]]
      kind = "plaintext"                  # required; patterns (fnmatch) allowed in every field
      remote = "*.partner.example"        # optional: server, direction, connector, remote,
      reason = "Partner has no TLS (ticket 4711)"   # cert_thumbprint, severity
      expires = 2027-03-31                # optional: a date (UTC, end of day) or a date-time

- **new-only**: findings whose key (``finding_key``) was not in the previous run's findings.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import pandas as pd

from loganalyzer.errors import LogAnalyzerError

__all__ = [
    "Accepted",
    "AllowlistError",
    "apply_allowlist",
    "finding_key",
    "findings_in_window",
    "load_allowlist",
    "new_findings",
    "read_previous_keys",
    "write_state",
]

#: Fields an allowlist entry can match (all optional except ``kind``).
MATCH_FIELDS = ("kind", "severity", "server", "direction", "connector", "remote", "cert_thumbprint")
#: Kinds that are episodes: a new episode (another start) is a new finding.
EPISODE_KINDS = ("mail_flow_halt", "mail_flow_silence")
KEY_FIELDS = ("kind", "server", "direction", "connector", "remote", "cert_thumbprint")


class AllowlistError(LogAnalyzerError):
    """The allowlist file cannot be used; names the file and the entry."""


@dataclass(frozen=True)
class Accepted:
    """One allowlist entry: field patterns, why it is accepted, until when."""

    match: dict[str, str]
    reason: str
    expires_utc: datetime | None = None
    entry: int = 0

    def active(self, now: datetime) -> bool:
        return self.expires_utc is None or now <= self.expires_utc

    def matches(self, finding: dict) -> bool:
        for name, pattern in self.match.items():
            value = finding.get(name)
            if value is None or pd.isna(value):
                return False
            if not fnmatch.fnmatchcase(str(value).lower(), pattern.lower()):
                return False
        return True


def load_allowlist(path: str | os.PathLike[str]) -> list[Accepted]:
    """Read an allowlist (TOML, ``[[accept]]`` entries; see the module doc).

    :raises AllowlistError: unreadable file, bad TOML, unknown field, missing kind or reason.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise AllowlistError(f"{path}: cannot read the allowlist: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise AllowlistError(f"{path}: not valid TOML: {err}") from None
    entries = data.get("accept", [])
    unknown_top = set(data) - {"accept"}
    if unknown_top or not isinstance(entries, list):
        raise AllowlistError(f"{path}: expected only [[accept]] entries, found {sorted(data)}")
    out = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: entry {number}"
        unknown = set(entry) - {*MATCH_FIELDS, "reason", "expires"}
        if unknown:
            raise AllowlistError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if not isinstance(entry.get("kind"), str) or not entry["kind"]:
            raise AllowlistError(f"{where}: 'kind' is required")
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise AllowlistError(f"{where}: 'reason' is required (why is this accepted?)")
        match = {}
        for name in MATCH_FIELDS:
            if name in entry:
                if not isinstance(entry[name], str):
                    raise AllowlistError(f"{where}: {name!r} must be text")
                match[name] = entry[name]
        out.append(Accepted(match, entry["reason"], _expiry(entry.get("expires"), where), number))
    return out


def _expiry(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.max, UTC)
    if isinstance(value, str):
        try:
            return _expiry(datetime.fromisoformat(value.replace("Z", "+00:00")), where)
        except ValueError:
            pass
    raise AllowlistError(f"{where}: 'expires' must be a date (2027-03-31) or a date-time")


def apply_allowlist(
    findings: pd.DataFrame, allowlist: list[Accepted], now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[Accepted]]:
    """Split findings into (kept, accepted) by the allowlist's active entries.

    ``accepted`` gets a ``accepted_reason`` column. The third value lists the entries that have
    expired at ``now`` (default: the wall clock), for a reminder.
    """
    now = now or datetime.now(UTC)
    active = [a for a in allowlist if a.active(now)]
    expired = [a for a in allowlist if not a.active(now)]
    reasons = []
    for record in findings.to_dict("records"):
        hit = next((a for a in active if a.matches(record)), None)
        reasons.append(hit.reason if hit else None)
    mask = pd.Series([r is not None for r in reasons], index=findings.index, dtype=bool)
    accepted = findings[mask].copy()
    accepted["accepted_reason"] = [r for r in reasons if r is not None]
    return findings[~mask], accepted, expired


def finding_key(finding: dict) -> str:
    """What makes a finding "the same" from one run to the next: kind and scope (server,
    direction, connector, remote, certificate); for halts and silences also their start, so
    a new episode is new. Counts and times of the evidence do not matter.
    """
    parts = []
    for name in KEY_FIELDS:
        value = finding.get(name)
        parts.append(None if value is None or _missing(value) else str(value))
    if finding.get("kind") in EPISODE_KINDS:
        start = finding.get("first_seen_utc")
        parts.append(None if start is None or _missing(start) else pd.Timestamp(start).isoformat())
    return json.dumps(parts)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def new_findings(findings: pd.DataFrame, previous_keys: set[str]) -> pd.DataFrame:
    """Findings whose ``finding_key`` is not among the previous run's keys."""
    keys = [finding_key(r) for r in findings.to_dict("records")]
    mask = pd.Series([k not in previous_keys for k in keys], index=findings.index, dtype=bool)
    return findings[mask]


def read_previous_keys(path: str | os.PathLike[str]) -> set[str] | None:
    """Keys of the findings in a state file written by ``write_state`` (None when absent).

    A findings file written with ``--format jsonl`` is read too (one finding per line).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError:
            data = None  # JSON lines
        if isinstance(data, dict) and "keys" in data:
            return set(data["keys"])
        return {finding_key(json.loads(line)) for line in text.splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise AllowlistError(f"{path}: not a findings state file: {err}") from None


def write_state(findings: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Remember this run's findings (their keys) for the next ``--new-only`` run (atomic)."""
    from loganalyzer.output import atomic_writer

    keys = sorted({finding_key(r) for r in findings.to_dict("records")})
    with atomic_writer(Path(path)) as handle:
        json.dump({"keys": keys}, handle, indent=0)


def findings_in_window(
    findings: pd.DataFrame, since: datetime | None, until: datetime | None = None
) -> pd.DataFrame:
    """Findings whose evidence reaches into [since, until] (those found in a margin before
    the window, and nothing else, are dropped). Findings without times are kept.
    """
    keep = pd.Series(True, index=findings.index)
    if since is not None:
        last = findings["last_seen_utc"]
        keep &= (last.isna() | (last >= pd.Timestamp(since))).astype(bool)
    if until is not None:
        first = findings["first_seen_utc"]
        keep &= (first.isna() | (first <= pd.Timestamp(until))).astype(bool)
    return findings[keep.astype(bool)]
