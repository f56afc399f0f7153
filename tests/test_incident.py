"""The two-server incident of sample_logs/incident: the story's verdicts, and golden findings.

sample_logs/incident/README.md tells the story. Regenerate the golden after an intended change
(or after ``make_incident.py --new-certificates``) with
``pytest tests/test_incident.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import loganalyzer
from loganalyzer.findings import find_issues
from loganalyzer.inventory.reader import read_files
from tests.conftest import GOLDEN, SAMPLE_LOGS, check_golden

INCIDENT = SAMPLE_LOGS / "incident"
NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
EXPIRY = "2026-11-27T03:00:00"
O365 = "Outbound to Office 365"
INTERNET = "Internet Send Connector"


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return loganalyzer.read_sessions(INCIDENT)


@pytest.fixture(scope="module")
def findings(sessions) -> pd.DataFrame:
    inventory = read_files([INCIDENT / "inventory"])
    assert inventory.skipped == []
    return find_issues(sessions, inventory.certificates, inventory.connectors, now=NOW)


def _of(findings: pd.DataFrame, kind: str) -> pd.DataFrame:
    return findings[findings["kind"] == kind]


def test_the_logs_read_cleanly(sessions):
    stats = sessions.attrs["read_stats"]
    assert stats["malformed"] == 0
    assert {s["reason"] for s in stats["skipped"]} == {
        "an Exchange certificate or connector export, not a log (use --inventory)"
    }
    assert sessions["session_id"].is_unique
    assert set(sessions["server"]) == {"EX01", "EX02"}
    assert sessions["session_id"].str.startswith("08DF4C").all()


def test_hybrid_mail_flows_until_the_certificate_expires(sessions):
    o365 = sessions[sessions["connector"] == O365]
    cut = pd.Timestamp(EXPIRY, tz="UTC")
    before, after = o365[o365["start_utc"] < cut], o365[o365["start_utc"] >= cut]
    assert set(before["outcome"]) == {"tls"} and (before["delivered"] == 1).all()
    assert set(after["outcome"]) == {"tls_failed"} and (after["delivered"] == 0).all()
    # the same (old) certificate is presented throughout; inbound shows the renewal
    assert o365["local_cert_thumbprint"].nunique() == 1
    inbound = sessions[sessions["direction"] == "receive"]
    assert set(inbound["outcome"]) == {"tls"}
    assert inbound["local_cert_thumbprint"].nunique() == 1
    assert set(inbound["local_cert_issuer"]) == {"CN=Example Issuing CA 3, O=Example Trust, C=US"}
    assert set(o365["local_cert_issuer"]) == {"CN=Example Issuing CA 2, O=Example Trust, C=US"}


def test_the_send_connector_halts_on_each_server(findings):
    halts = _of(findings, "mail_flow_halt")
    assert sorted(halts["server"]) == ["EX01", "EX02"]
    for halt in halts.itertuples():
        assert halt.severity == "critical"
        assert (halt.direction, halt.connector, halt.remote) == ("send", O365, "example.net")
        assert halt.cause.startswith("the certificate presented (thumbprint ")
        assert f"expired at {EXPIRY}Z" in halt.cause
        details = json.loads(halt.details)
        assert details["ongoing"] is True and details["end"] is None
        assert halt.first_seen_utc >= pd.Timestamp(EXPIRY, tz="UTC")
        assert halt.sessions >= 30


def test_the_expired_certificate_is_in_use(findings):
    expired = _of(findings, "cert_expired_in_use")
    assert sorted(expired["server"]) == ["EX01", "EX02"]
    assert set(expired["connector"]) == {O365}
    assert all(f"expired at {EXPIRY}" in cause for cause in expired["cause"])
    halts = _of(findings, "mail_flow_halt")
    assert set(expired["cert_thumbprint"].dropna()) <= set(halts["cert_thumbprint"])


def test_the_connector_selects_only_the_expired_certificate(findings):
    missing = _of(findings, "connector_cert_missing")
    assert list(missing["connector"]) == [O365]
    cause = missing.iloc[0]["cause"]
    assert cause.startswith("TlsCertificateName selects only ")
    assert "expired at 2026-11-27 07:00Z" in cause
    thumbprint = cause.split()[3].rstrip(",")
    assert thumbprint in set(_of(findings, "mail_flow_halt")["cert_thumbprint"])


def test_the_side_stories(findings):
    fallback = _of(findings, "tls_fallback")
    assert list(
        zip(fallback["server"], fallback["connector"], fallback["remote"], strict=True)
    ) == [("EX01", INTERNET, "mx.tailwind.example")]
    assert fallback.iloc[0]["sessions"] == 2
    legacy = _of(findings, "legacy_tls")
    assert set(zip(legacy["server"], legacy["connector"], legacy["remote"], strict=True)) == {
        ("EX01", "Default Frontend EX01", "relay.partner-a.example"),
        ("EX01", "Default Frontend EX01", "smtp.legacy.example"),
    }
    mismatch = _of(findings, "cert_name_mismatch")
    assert list(zip(mismatch["connector"], mismatch["remote"], strict=True)) == [
        (INTERNET, "mx.fabrikam-mail.example")
    ]
    assert "mailgw.hosting.example.net" in mismatch.iloc[0]["title"]
    # the renewal works inbound: no receive connector fails or halts
    assert not (findings["direction"] == "receive").any() or set(
        findings[findings["direction"] == "receive"]["kind"]
    ) == {"legacy_tls"}


def _relative(evidence: str) -> str:
    path, _, line = evidence.rpartition(":")
    base = SAMPLE_LOGS.parent
    if Path(path).is_absolute():
        path = os.path.relpath(path, base)
    return f"{Path(path).as_posix()}:{line}"


def test_golden_findings(findings, update_golden):
    records = []
    for row in findings.itertuples():
        details = json.loads(row.details)
        records.append(
            {
                "kind": row.kind,
                "severity": row.severity,
                "title": row.title,
                "server": row.server if isinstance(row.server, str) else None,
                "connector": row.connector if isinstance(row.connector, str) else None,
                "remote": row.remote if isinstance(row.remote, str) else None,
                "sessions": None if pd.isna(row.sessions) else int(row.sessions),
                "cause": row.cause if isinstance(row.cause, str) else None,
                "ongoing": details.get("ongoing"),
                "evidence": [_relative(e) for e in row.evidence[:3]],
            }
        )
    check_golden(records, GOLDEN / "incident" / "findings.jsonl", update_golden)


def test_connector_cert_missing_names_the_fix(findings):
    (missing,) = _of(findings, "connector_cert_missing").itertuples(index=False)
    details = json.loads(missing.details)
    renewal = "F0F2CBEB028391A4A230C34DDF43DC419E9EA88E"
    assert details["replacement"] == renewal
    assert details["fix"] == (
        'Set-SendConnector "Outbound to Office 365" -TlsCertificateName '
        '"<I>CN=Example Issuing CA 3, O=Example Trust, C=US'
        '<S>CN=hybrid.corp.example.com, O=Example Corp, C=US"'
    )
    assert renewal in missing.cause


def test_rejections_of_our_expired_certificate_are_a_local_fault(findings):
    failures = _of(findings, "tls_failure")
    by_remote = {r.remote: json.loads(r.details)["fault"] for r in failures.itertuples()}
    assert by_remote["mx.tailwind.example"] == "remote"  # IllegalMessage from the peer
    o365 = failures[failures["connector"] == O365]
    assert len(o365) == 4
    assert {json.loads(d)["fault"] for d in o365["details"]} == {"local"}
    assert o365["cause"].str.endswith("the certificate we presented had expired").all()
