"""TLS-RPT (RFC 8460): result types from session facts, policy domains, structure, file names."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loganalyzer.cli import app
from loganalyzer.inventory.records import ConnectorRecord
from loganalyzer.store import ingest
from loganalyzer.tlsrpt import RESULT_TYPES, classify, report_filename, tlsrpt_reports
from tests.conftest import ROOT, SAMPLE_LOGS
from tests.test_findings_flow import OUT, at, send_fail, send_ok, sessions

ORG = ["--organization", "Contoso Example", "--contact", "tlsrpt@contoso.example"]
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")


def assert_rfc8460(report: dict) -> None:
    """The report object of RFC 8460 section 4.4, field by field (types and required keys)."""
    assert set(report) == {
        "organization-name", "date-range", "contact-info", "report-id", "policies",
    }  # fmt: skip
    for key in ("organization-name", "contact-info", "report-id"):
        assert isinstance(report[key], str) and report[key]
    assert set(report["date-range"]) == {"start-datetime", "end-datetime"}
    assert all(_DATETIME.match(v) for v in report["date-range"].values())
    assert isinstance(report["policies"], list) and report["policies"]
    for entry in report["policies"]:
        assert set(entry) <= {"policy", "summary", "failure-details"}
        policy = entry["policy"]
        assert policy["policy-type"] in ("tlsa", "sts", "no-policy-found")
        assert isinstance(policy["policy-domain"], str)
        assert policy["policy-domain"].isascii()  # A-labels
        assert set(policy) <= {"policy-type", "policy-string", "policy-domain", "mx-host"}
        if "policy-string" in policy:
            assert all(isinstance(s, str) for s in policy["policy-string"])
        summary = entry["summary"]
        assert set(summary) == {"total-successful-session-count", "total-failure-session-count"}
        assert all(isinstance(v, int) and v >= 0 for v in summary.values())
        details = entry.get("failure-details", [])
        allowed = {
            "result-type", "sending-mta-ip", "receiving-mx-hostname", "receiving-mx-helo",
            "receiving-ip", "failed-session-count", "additional-information",
            "failure-reason-code",
        }  # fmt: skip
        for detail in details:
            assert set(detail) <= allowed
            assert detail["result-type"] in RESULT_TYPES
            assert isinstance(detail["failed-session-count"], int)
            assert detail["failed-session-count"] > 0
        failed = sum(d["failed-session-count"] for d in details)
        assert failed == summary["total-failure-session-count"]


def _run_cli(args: list[str]) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(app, ["tlsrpt", *args, *ORG, "-q"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def _by_domain(reports: list[dict]) -> dict[str, dict]:
    return {r["policies"][0]["policy"]["policy-domain"]: r["policies"][0] for r in reports}


def test_sample_exchange_logs_give_valid_reports_with_mapped_result_types():
    code, reports, err = _run_cli([str(SAMPLE_LOGS / "exchange")])
    assert code == 0
    for report in reports:
        assert_rfc8460(report)
    domains = _by_domain(reports)
    assert domains["example.net"]["failure-details"] == [
        {
            "result-type": "validation-failure",
            "sending-mta-ip": "10.20.1.11",
            "receiving-mx-helo": "mx.example.net",
            "receiving-ip": "198.51.100.25",
            "failed-session-count": 2,
            "failure-reason-code": "IllegalMessage",
        }
    ]
    assert domains["old.example.net"]["failure-details"][0]["result-type"] == (
        "starttls-not-supported"
    )
    assert "local fault (our certificate)" in err and "UnknownCredentials" in err


def test_incident_local_faults_are_not_blamed_on_office_365():
    code, reports, err = _run_cli([str(SAMPLE_LOGS / "incident")])
    assert code == 0
    o365 = _by_domain(reports)["contoso-example.mail.onmicrosoft.com"]
    assert o365["summary"]["total-failure-session-count"] == 0
    assert "63 sessions left out: local fault (our certificate)" in err
    assert "Certificate validation failure: EX01 Outbound to Office 365" in err


def _frame(**facts) -> pd.DataFrame:
    base = {
        "outcome": "tls_failed", "tls_error": None, "last_error": None, "starttls_offered": True,
        "remote_cert_not_after_utc": None, "start_utc": datetime(2026, 11, 26, tzinfo=UTC),
    }  # fmt: skip
    return pd.DataFrame([{**base, **facts}])


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"outcome": "tls"}, ("success", None)),
        ({"outcome": "plaintext", "starttls_offered": False}, ("failure", "starttls-not-supported")),  # noqa: E501
        ({"outcome": "plaintext", "starttls_offered": True}, (None, None)),
        ({"outcome": "connect_failed"}, (None, None)),
        ({"outcome": "incomplete"}, (None, None)),
        ({"tls_error": "UnknownCredentials"}, ("local", None)),
        ({"tls_error": "NoCredentials"}, ("local", None)),
        (
            {"tls_error": "Certificate validation failure",
             "last_error": "454 4.7.5 Certificate validation failure"},
            ("local", None),
        ),
        (
            {"remote_cert_not_after_utc": datetime(2026, 11, 1, tzinfo=UTC),
             "tls_error": "Certificate validation failure"},
            ("failure", "certificate-expired"),
        ),
        (
            {"tls_error": "Outbound TLS authentication failed for auth level DomainValidation "
             "with error SubjectMismatch"},
            ("failure", "certificate-host-mismatch"),
        ),
        ({"tls_error": "ChainNotTrusted"}, ("failure", "certificate-not-trusted")),
        (
            {"tls_error": "Connector is configured to send mail only over TLS connections and "
             "remote doesn't support TLS", "starttls_offered": False},
            ("failure", "starttls-not-supported"),
        ),
        ({"tls_error": "IllegalMessage"}, ("failure", "validation-failure")),
    ],
)  # fmt: skip
def test_session_facts_to_result_types(facts, expected):
    verdict = classify(_frame(**facts)).iloc[0]
    assert (verdict["tlsrpt"], verdict["result_type"]) == expected


def test_policy_domain_from_other_sessions_to_the_same_host_that_day(tmp_path):
    df = sessions(
        tmp_path,
        send=[
            send_ok(1, 0, host="mx1.fabrikam.example", ip="192.0.2.45"),  # RCPT bob@example.net
            send_fail(2, 5, thumb=None, error="ChainNotTrusted", host="mx1.fabrikam.example",
                      ip="192.0.2.45"),
            send_fail(3, 6, thumb=None, error="ChainNotTrusted", host="mx9.unknown.example",
                      ip="192.0.2.99", connector="To Partner"),
        ],
    )  # fmt: skip
    result = tlsrpt_reports(df, organization="Contoso", contact="tlsrpt@contoso.example")
    [report] = result.reports
    assert_rfc8460(report)
    entry = report["policies"][0]
    assert entry["policy"]["policy-domain"] == "example.net"
    assert entry["summary"] == {
        "total-successful-session-count": 1,
        "total-failure-session-count": 1,
    }
    assert entry["failure-details"][0]["result-type"] == "certificate-not-trusted"
    assert entry["failure-details"][0]["failure-reason-code"] == "ChainNotTrusted"
    assert result.unattributed["remote_ip"].tolist() == ["192.0.2.99"]
    # The connector's single address space is the fallback; its smart host the MX name.
    partner = ConnectorRecord(
        source="test", kind="send", name="To Partner",
        address_spaces=("SMTP:partner.example;1",), smart_hosts=("mx9.unknown.example",),
    )  # fmt: skip
    result = tlsrpt_reports(
        df, organization="Contoso", contact="tlsrpt@contoso.example", connectors=[partner]
    )
    partner_report = _by_domain(result.reports)["partner.example"]
    assert partner_report["failure-details"][0]["receiving-mx-hostname"] == "mx9.unknown.example"
    assert result.unattributed.empty


def test_policies_given_replace_no_policy_found(tmp_path):
    df = sessions(tmp_path, send=[send_ok(1, 0)])
    sts = {
        "example.net": {
            "policy-type": "sts",
            "policy-string": ["version: STSv1", "mode: enforce", "mx: *.example.net"],
            "mx-host": "*.example.net",
        }
    }
    result = tlsrpt_reports(df, organization="C", contact="c@example.com", policies=sts)
    policy = result.reports[0]["policies"][0]["policy"]
    assert policy["policy-type"] == "sts" and policy["mx-host"] == "*.example.net"
    assert_rfc8460(result.reports[0])


def test_files_are_named_as_rfc_8460_names_them(tmp_path):
    code = CliRunner().invoke(
        app,
        ["tlsrpt", str(SAMPLE_LOGS / "exchange"), *ORG, "-q", "-o", str(tmp_path), "--gzip",
         "--date", "2026-11-26"],
    ).exit_code  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "contoso.example!example.net!1795651200!1795737599!38127dfe2ae94e06.json.gz" in names
    for path in tmp_path.iterdir():
        report = json.loads(gzip.decompress(path.read_bytes()))
        assert_rfc8460(report)
        assert report_filename(report, "contoso.example", gz=True) == path.name
        assert report["date-range"]["start-datetime"] == "2026-11-26T00:00:00Z"


def test_store_and_a_day(tmp_path):
    ingest(SAMPLE_LOGS / "exchange", tmp_path / "store")
    _, from_store, _ = _run_cli(["--store", str(tmp_path / "store"), "--date", "2026-11-26"])
    _, from_logs, _ = _run_cli([str(SAMPLE_LOGS / "exchange"), "--date", "2026-11-26"])
    assert from_store == from_logs and from_store
    _, none, _ = _run_cli(["--store", str(tmp_path / "store"), "--now", "2026-12-25T06:00Z"])
    assert none == []


def test_bad_options_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["tlsrpt", str(SAMPLE_LOGS / "exchange"), "--date", "x"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["tlsrpt", str(SAMPLE_LOGS / "exchange"), "-q"])
    assert result.exit_code == 2 and "--organization and --contact are required" in result.output


def _parsedmarc_python() -> Path | None:
    configured = os.environ.get("LOGANALYZER_PARSEDMARC_PYTHON")
    candidates = [Path(configured)] if configured else []
    candidates += [
        ROOT / ".venv-parsedmarc" / "bin" / "python",
        ROOT / ".venv-parsedmarc" / "Scripts" / "python.exe",
    ]
    return next((p for p in candidates if p.exists()), None)


_READ_BACK = """
import json, sys
import parsedmarc
out = []
for path in sys.argv[1:]:
    parsed = parsedmarc.parse_report_file(path, offline=True)
    assert parsed["report_type"] == "smtp_tls", parsed["report_type"]
    out.append(parsed["report"])
print(json.dumps(out, default=str))
"""


def test_parsedmarc_reads_the_reports_back_with_the_same_counts(tmp_path):
    python = _parsedmarc_python()
    if python is None:
        if os.environ.get("CI") == "true":
            pytest.fail("parsedmarc's virtual environment (.venv-parsedmarc) is missing in CI")
        pytest.skip("parsedmarc not installed in .venv-parsedmarc (.ci/run installs it)")
    out = tmp_path / "reports"
    for logs in ("exchange", "incident"):
        result = CliRunner().invoke(
            app, ["tlsrpt", str(SAMPLE_LOGS / logs), *ORG, "-q", "-o", str(out)]
        )
        assert result.exit_code == 0
    paths = sorted(str(p) for p in out.iterdir())
    assert len(paths) >= 10
    run = subprocess.run(
        [str(python), "-c", _READ_BACK, *paths], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    parsed = json.loads(run.stdout)
    for path, back in zip(paths, parsed, strict=True):
        ours = json.loads(Path(path).read_text(encoding="utf-8"))
        assert back["organization_name"] == ours["organization-name"]
        assert back["report_id"] == ours["report-id"]
        [policy] = back["policies"]
        [entry] = ours["policies"]
        assert policy["policy_domain"] == entry["policy"]["policy-domain"]
        assert policy["policy_type"] == entry["policy"]["policy-type"]
        assert (
            policy["successful_session_count"] == entry["summary"]["total-successful-session-count"]
        )
        assert policy["failed_session_count"] == entry["summary"]["total-failure-session-count"]
        details = policy.get("failure_details", [])
        assert [d["failed_session_count"] for d in details] == [
            d["failed-session-count"] for d in entry.get("failure-details", [])
        ]
        assert [d["result_type"] for d in details] == [
            d["result-type"] for d in entry.get("failure-details", [])
        ]


def test_dates_in_reports_cover_one_utc_day(tmp_path):
    df = sessions(tmp_path, send=[send_ok(1, 0)])
    [report] = tlsrpt_reports(
        df, organization="C", contact="c@example.com", day=date(2026, 11, 26)
    ).reports
    assert report["date-range"] == {
        "start-datetime": "2026-11-26T00:00:00Z",
        "end-datetime": "2026-11-26T23:59:59Z",
    }
    assert at(0).date() == date(2026, 11, 26)
    assert OUT == "Outbound to Office 365"
