"""The Postfix incident of sample_logs/postfix/incident: findings work unchanged on Postfix.

``bank.example`` requires verified TLS: after its MX certificate expires, every delivery is
deferred (never plaintext): a ``mail_flow_halt``. ``shop.example.net`` and ``news.example.org``
are at level ``may``: their handshakes fail and Postfix retries in plaintext: ``tls_fallback``.
The story is in ``make_incident.py``'s docstring. Regenerate the golden with
``pytest tests/test_postfix_incident.py --update-golden`` and review the diff.
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
from tests.conftest import GOLDEN, SAMPLE_LOGS, check_golden

INCIDENT = SAMPLE_LOGS / "postfix" / "incident"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return loganalyzer.read_sessions(INCIDENT, syslog_year=2026, syslog_tz="Europe/Berlin")


@pytest.fixture(scope="module")
def findings(sessions) -> pd.DataFrame:
    return find_issues(sessions, now=NOW)


def test_the_log_reads_cleanly(sessions):
    stats = sessions.attrs["read_stats"]
    assert (stats["files"], stats["malformed"], stats["skipped"]) == (1, 0, [])
    assert set(sessions["source"]) == {"postfix"} and set(sessions["server"]) == {"mx1"}


def test_bank_deliveries_are_verified_until_the_expiry_then_deferred_never_plaintext(sessions):
    bank = sessions[sessions["remote_host"] == "mx1.bank.example"]
    before = bank[bank["start_utc"] < pd.Timestamp("2026-11-27T00:00:00Z")]
    after = bank[bank["start_utc"] >= pd.Timestamp("2026-11-27T00:00:00Z")]
    assert len(before) == 10 and set(before["outcome"]) == {"tls"}
    assert set(before["remote_cert_trust"]) == {"Verified"} and before["delivered"].sum() == 10
    assert len(after) == 23 and set(after["outcome"]) == {"tls_failed"}
    assert set(after["tls_error"]) == {"Certificate validation failure: certificate has expired"}
    assert set(after["last_error"]) == {"Server certificate not verified"}
    assert not bank["fallback"].any() and (bank["outcome"] != "plaintext").all()
    assert set(bank["remote_cert_fingerprint_digest"]) == {"sha256"}


def test_may_destinations_fall_back_after_the_first_deferral(sessions):
    for host, messages in (("mx.shop.example.net", 3), ("mail.news.example.org", 2)):
        rows = sessions[sessions["remote_host"] == host]
        assert rows["outcome"].tolist() == ["tls_failed", "tls_failed", "plaintext"] * messages
        assert rows["fallback"].tolist() == [False, False, True] * messages
        assert rows.loc[rows["fallback"], "delivered"].tolist() == [1] * messages


def _of(findings: pd.DataFrame, kind: str) -> pd.DataFrame:
    return findings[findings["kind"] == kind]


def test_the_bank_halt(findings):
    halt = _of(findings, "mail_flow_halt")
    assert len(halt) == 1
    row = halt.iloc[0]
    assert (row["severity"], row["remote"], row["direction"], row["sessions"]) == (
        "critical", "bank.example", "send", 23,
    )  # fmt: skip
    assert "certificate has expired" in row["cause"] and "CN=mx1.bank.example" in row["cause"]
    assert json.loads(row["details"])["ongoing"] is True
    assert row["first_seen_utc"] == pd.Timestamp("2026-11-27T00:15:00Z")


def test_the_fallbacks(findings):
    fallback = _of(findings, "tls_fallback")
    assert sorted(zip(fallback["remote"], fallback["sessions"], strict=True)) == [
        ("mail.news.example.org", 2), ("mx.shop.example.net", 3),
    ]  # fmt: skip
    assert fallback["severity"].eq("warning").all()
    assert set(_of(findings, "mail_flow_halt")["remote"]) == {"bank.example"}


def _relative(evidence: str) -> str:
    path, _, line = evidence.rpartition(":")
    if Path(path).is_absolute():
        path = os.path.relpath(path, SAMPLE_LOGS.parent)
    return f"{Path(path).as_posix()}:{line}"


def test_golden_findings(findings, update_golden):
    records = [
        {
            "kind": row.kind,
            "severity": row.severity,
            "title": row.title,
            "server": row.server,
            "connector": row.connector,
            "remote": row.remote,
            "sessions": int(row.sessions),
            "cause": row.cause if isinstance(row.cause, str) else None,
            "evidence": [_relative(e) for e in row.evidence[:3]],
        }
        for row in findings.itertuples()
    ]
    check_golden(records, GOLDEN / "postfix" / "incident.findings.jsonl", update_golden)
