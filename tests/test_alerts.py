"""Scheduled alerts: the allowlist of accepted findings, --new-only, findings over a store."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loganalyzer.cli import app
from loganalyzer.findings import find_issues
from loganalyzer.findings.alerts import (
    AllowlistError,
    apply_allowlist,
    finding_key,
    findings_in_window,
    load_allowlist,
    new_findings,
)
from loganalyzer.sessions import read_sessions
from loganalyzer.store import ingest
from tests.conftest import SAMPLE_LOGS

INCIDENT = SAMPLE_LOGS / "incident"
NOW = "2026-11-28T00:00Z"
ALLOW = """
[[accept]]
kind = "tls_failure"
connector = "Internet Send Connector"
remote = "mx.tailwind.*"
reason = "Tailwind's MX has a broken TLS stack (ticket 4711)"
expires = 2026-12-31

[[accept]]
kind = "legacy_tls"
reason = "old partners, being phased out"
expires = 2026-11-01
"""


@pytest.fixture(scope="module")
def found() -> pd.DataFrame:
    return find_issues(read_sessions(INCIDENT), now=datetime(2026, 11, 28, tzinfo=UTC))


def _kinds(df: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(df["kind"], df["remote"], strict=True))


def test_allowlist_leaves_out_accepted_findings_until_they_expire(found, tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(ALLOW, encoding="utf-8")
    rules = load_allowlist(path)
    kept, accepted, expired = apply_allowlist(found, rules, datetime(2026, 11, 28, tzinfo=UTC))
    assert _kinds(accepted) == [("tls_failure", "mx.tailwind.example")]
    assert accepted["accepted_reason"].tolist() == [
        "Tailwind's MX has a broken TLS stack (ticket 4711)"
    ]
    assert len(kept) == len(found) - 1
    assert [r.entry for r in expired] == [2]  # legacy_tls entry expired: findings stay
    later = apply_allowlist(found, rules, datetime(2027, 1, 1, tzinfo=UTC))
    assert later[1].empty and len(later[2]) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[accept]]\nreason = 'x'\n", "entry 1: 'kind' is required"),
        ("[[accept]]\nkind = 'plaintext'\n", "entry 1: 'reason' is required"),
        ("[[accept]]\nkind = 'plaintext'\nreason = 'x'\nremot = 'a'\n", "unknown field(s) remot"),
        ("[[accept]]\nkind = 'plaintext'\nreason = 'x'\nexpires = 'soon'\n", "'expires' must"),
        ("[[accept]\n", "not valid TOML"),
    ],
)
def test_allowlist_errors_name_the_file_and_entry(tmp_path, text, message):
    path = tmp_path / "allow.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AllowlistError, match=r"allow\.toml: .*" + re.escape(message)):
        load_allowlist(path)


def test_finding_key_ignores_counts_and_times_but_not_a_new_halt(found):
    halt = found[found["kind"] == "mail_flow_halt"].iloc[0].to_dict()
    other_day = {**halt, "sessions": 99, "last_seen_utc": pd.Timestamp("2026-11-29", tz="UTC")}
    assert finding_key(other_day) == finding_key(halt)
    new_episode = {**halt, "first_seen_utc": pd.Timestamp("2026-11-29", tz="UTC")}
    assert finding_key(new_episode) != finding_key(halt)
    failure = found[found["kind"] == "tls_failure"].iloc[0].to_dict()
    moved = {**failure, "first_seen_utc": pd.Timestamp("2026-11-29", tz="UTC")}
    assert finding_key(moved) == finding_key(failure)
    previous = {finding_key(r) for r in found.head(3).to_dict("records")}
    assert len(new_findings(found, previous)) == len(found) - 3


def test_findings_in_window_drops_what_ends_before_it(found):
    since = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    kept = findings_in_window(found, since)
    assert kept["last_seen_utc"].min() >= pd.Timestamp(since)
    assert _kinds(found.drop(kept.index)) == [
        ("legacy_tls", "relay.partner-a.example"),
        ("tls_failure", "mx.tailwind.example"),
        ("tls_fallback", "mx.tailwind.example"),
    ]


def _findings_cli(*args: str) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(app, ["findings", *args, "--now", NOW, "-f", "jsonl", "-q"])
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, rows, result.stderr


def test_new_only_fires_once_per_fact(tmp_path):
    state = tmp_path / "last.json"
    args = [str(INCIDENT), "--fail-on", "warning", "--new-only", "--state", str(state)]
    code, first, _ = _findings_cli(*args)
    assert code == 1 and len(first) == 11
    code, second, err = _findings_cli(*args)
    assert code == 0 and second == []
    assert "11 findings already reported" in err
    result = CliRunner().invoke(app, ["findings", str(INCIDENT), "--new-only"])
    assert result.exit_code == 2 and "--new-only needs --state FILE" in result.output


def test_allowlist_keeps_fail_on_quiet(tmp_path):
    allow = tmp_path / "allow.toml"
    allow.write_text(
        "".join(
            f'[[accept]]\nkind = "{k}"\nreason = "known"\n'
            for k in ("mail_flow_halt", "tls_failure")
        ),
        encoding="utf-8",
    )
    code, rows, err = _findings_cli(
        str(INCIDENT), "--allowlist", str(allow), "--fail-on", "critical"
    )
    assert code == 0
    assert {r["kind"] for r in rows} == {"legacy_tls", "cert_name_mismatch", "tls_fallback"}
    assert "7 findings accepted by the allowlist" in err


def test_findings_over_a_store_window_equal_findings_over_the_logs(tmp_path):
    ingest(INCIDENT, tmp_path / "store")
    store = ["--store", str(tmp_path / "store")]
    _, from_store, err = _findings_cli(*store)
    _, from_logs, _ = _findings_cli(str(INCIDENT))
    assert from_store == from_logs
    assert "367 sessions from 8 store partitions" in err
    code, window, _ = _findings_cli(*store, "--since", "18h", "--fail-on", "critical")
    assert code == 1  # the halts of 27 November reach into the last 18 hours before --now
    assert all(r["last_seen_utc"] >= "2026-11-27T06:00:00" for r in window)
    assert len(window) == len(from_logs) - 3


def test_sessions_and_certs_from_a_store(tmp_path):
    ingest(INCIDENT, tmp_path / "store")
    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(
        app,
        ["sessions", "--store", str(tmp_path / "store"), "--since", "2026-11-27T06:00Z",
         "-f", "jsonl", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["end_utc"] >= "2026-11-27T06:00:00" for r in rows)
    result = CliRunner().invoke(
        app, ["certs", "--store", str(tmp_path / "store"), "--now", NOW, "-f", "jsonl"]
    )
    assert result.exit_code == 0
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) >= 2
    both = CliRunner().invoke(app, ["sessions", str(INCIDENT), "--store", str(Path("x"))])
    assert both.exit_code == 2 and "give LOGS or --store DIR" in both.output
