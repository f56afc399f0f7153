"""Findings over the sample logs and inventory, and the findings command's exit codes.

The sample logs (sample_logs/README.md) contain a fallback, plaintext mail, TLS failures
(a local UnknownCredentials fault among them), legacy TLS 1.0/1.1/SSL 3 partners, a weak
cipher, a RequireTLS connector towards a peer without STARTTLS, and certificates that changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

import loganalyzer
from loganalyzer.cli import app
from loganalyzer.findings import at_or_above, find_issues
from loganalyzer.inventory.reader import read_files
from tests.conftest import SAMPLE_LOGS

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_findings():
    sessions = loganalyzer.read_sessions(SAMPLE_LOGS / "exchange")
    inventory = read_files([SAMPLE_LOGS / "inventory"], pfx_password=b"loganalyzer-sample")
    return find_issues(sessions, inventory.certificates, inventory.connectors, now=NOW)


def _kind(df, kind):
    return df[df["kind"] == kind]


def test_fallback_plaintext_failures_and_legacy(sample_findings):
    fallback = _kind(sample_findings, "tls_fallback")
    assert set(fallback["remote"]) >= {"mx.example.net"}
    row = fallback[fallback["remote"] == "mx.example.net"].iloc[0]
    assert row.sessions == 2 and row.severity == "warning" and "IllegalMessage" in row.cause
    assert all(":" in e for e in row.evidence)
    failures = _kind(sample_findings, "tls_failure")
    local = failures[failures["details"].str.contains('"fault": "local"')]
    assert "Outbound to Office 365" in set(local["connector"])
    assert "a local fault" in local.iloc[0].cause
    legacy = _kind(sample_findings, "legacy_tls")
    versions = {v for d in legacy["details"] for v in json.loads(d)["versions"]}
    assert versions == {"SSL3", "TLS1.0", "TLS1.1"}
    plain = _kind(sample_findings, "plaintext")
    assert len(plain) >= 3 and set(plain["severity"]) == {"info"}


def test_connector_and_certificate_findings(sample_findings, tmp_path):
    expiring = _kind(sample_findings, "cert_expiring")
    assert any("*.corp.example.com" in t for t in expiring["title"])
    assert expiring.iloc[0].severity == "warning"  # 18 days left: not yet critical
    mismatch = _kind(sample_findings, "cert_name_mismatch")
    assert set(mismatch["remote"]) == {"mail.fabrikam.example", "mail2.fabrikam.example"}
    assert "remote banner host (hint)" in mismatch.iloc[0].cause
    external = _kind(sample_findings, "self_signed_external")
    assert list(external["remote"]) == ["legacy.example.org"]
    # A changed certificate, a RequireTLS connector towards a peer without STARTTLS, and a
    # connector whose TlsCertificateName selects nothing valid.
    from loganalyzer.inventory.records import ConnectorRecord
    from tests.helpers import Session, write_log

    rows = []
    for i, thumb in enumerate(["A" * 40, "A" * 40, "B" * 40]):
        s = Session("Secure Partner Send", f"08DE2D5A0000060{i}", "10.0.0.5:5000", "203.0.113.7:25",
                    f"06:0{i}:00")  # fmt: skip
        s.add("+").add("<", "220 relay.example.org ESMTP").add("<", "250 relay.example.org")
        s.add(">", "STARTTLS").add("*", "", "Sending certificate")
        s.add("*", "CN=mail.corp.example.com", "Certificate subject")
        s.add("*", thumb, "Certificate thumbprint").add("-", "", "Local")
        rows += s.rows
    write_log(tmp_path / "SEND.LOG", rows, kind="Send")
    sessions = loganalyzer.read_sessions(tmp_path, server="EX01")
    require = ConnectorRecord(
        source="c.txt:1",
        kind="send",
        name="Secure Partner Send",
        server="EX01",
        require_tls=True,
        tls_cert_issuer="CN=Nobody CA",
        tls_cert_subject="CN=nothing",
    )
    inventory = read_files([SAMPLE_LOGS / "inventory"], pfx_password=b"loganalyzer-sample")
    found = find_issues(sessions, inventory.certificates, [require], now=NOW)
    changed = _kind(found, "cert_changed").iloc[0]
    assert json.loads(changed.details)["before"] == "A" * 40
    assert json.loads(changed.details)["after"] == "B" * 40
    mismatch = _kind(found, "connector_tls_mismatch").iloc[0]
    assert "requires TLS but 1 peers do not offer STARTTLS" in mismatch.title
    missing = _kind(found, "connector_cert_missing").iloc[0]
    assert missing.severity == "critical" and "matches no certificate" in missing.cause
    unknown = _kind(found, "cert_not_in_inventory")
    assert set(unknown["cert_thumbprint"]) == {"A" * 40, "B" * 40}


def test_order_and_fail_on(sample_findings):
    ranks = {"critical": 0, "warning": 1, "info": 2}
    order = [ranks[s] for s in sample_findings["severity"]]
    assert order == sorted(order)
    assert len(at_or_above(sample_findings, "info")) == len(sample_findings)
    assert set(at_or_above(sample_findings, "warning")["severity"]) <= {"critical", "warning"}


def test_findings_command_formats_and_exit_codes(tmp_path):
    base = ["findings", str(SAMPLE_LOGS / "exchange"), "--now", "2026-11-27T06:00Z", "-q"]
    result = runner.invoke(app, [*base, "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert rows and {"kind", "severity", "evidence", "details"} <= set(rows[0])
    assert runner.invoke(app, [*base, "--fail-on", "info"]).exit_code == 1
    out = tmp_path / "findings.csv"
    assert runner.invoke(app, [*base, "-f", "csv", "-o", str(out)]).exit_code == 0
    assert out.read_text("utf-8").startswith("kind,severity,title")
    table = runner.invoke(app, base)
    assert table.exit_code == 0 and "tls_fallback" in table.stdout


def _send_with_cert(tmp_path, subject, sans="", start="06:00:00", sid="08DE2D5A00000701"):
    from tests.helpers import Session, write_log

    s = Session("Outbound to Office 365", sid, "10.0.0.5:5000", "203.0.113.80:25", start)
    s.add("+").add("<", "220 contoso-example.mail.protection.example.net ESMTP")
    s.add("<", "250-STARTTLS").add(">", "STARTTLS").add("*", "", "Sending certificate")
    s.add("*", subject, "Certificate subject")
    s.add("*", "CN=Example Issuing CA 2, O=Example Trust, C=US", "Certificate issuer name")
    s.add("*", "0A", "Certificate serial number").add("*", "C" * 40, "Certificate thumbprint")
    s.add("*", sans, "Certificate alternate names")
    s.add("*", "", "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk "
          "encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm "
          "CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with "
          "strength 384 bits")  # fmt: skip
    s.add(">", "MAIL FROM:<a@corp.example.com>").add(
        "<", "250 2.6.0 <x@y> Queued mail for delivery"
    )
    s.add("-", "", "Local")
    write_log(tmp_path / "SEND.LOG", s.rows, kind="Send")
    return loganalyzer.read_sessions(tmp_path, server="EX01")


def test_tenant_attribution_mismatch_and_its_absence(tmp_path):
    from loganalyzer.inventory.records import ConnectorRecord

    inbound = ConnectorRecord(source="exo.json#0", kind="inbound", name="From Example Corp",
                              tls_sender_certificate_name="*.corp.example.com")  # fmt: skip
    wrong = _send_with_cert(tmp_path / "a", "CN=mail.other.example", "mail.other.example")
    found = find_issues(wrong, [], [inbound], now=NOW)
    (row,) = _kind(found, "connector_tls_mismatch").itertuples()
    assert "TenantAttribution" in row.cause and row.evidence[0] == "exo.json#0"
    quiet = ConnectorRecord(source="c.txt:3", kind="receive", name="Client Frontend EX01",
                            server="EX01", protocol_logging_level="None")  # fmt: skip
    (logging,) = _kind(
        find_issues(wrong, [], [quiet], now=NOW), "connector_tls_mismatch"
    ).itertuples()
    assert "protocol logging off" in logging.title
    right = _send_with_cert(tmp_path / "b", "CN=hybrid.corp.example.com", "hybrid.corp.example.com")
    assert _kind(find_issues(right, [], [inbound], now=NOW), "connector_tls_mismatch").empty


def test_quiet_cases_give_no_findings(tmp_path):
    """A clean TLS session: no fallback, plaintext, failure, legacy, halt or mismatch."""
    sessions = _send_with_cert(tmp_path, "CN=hybrid.corp.example.com", "hybrid.corp.example.com")
    found = find_issues(sessions, [], [], now=NOW)
    assert set(found["kind"]) <= {"cert_name_mismatch"}  # banner host hint only
    assert _kind(found, "cert_expiring").empty and _kind(found, "cert_changed").empty


def test_renewal_with_identical_names_is_picked_up(tmp_path):
    """TlsCertificateName pins names: a renewal with the same issuer and subject is chosen by
    itself, so no connector_cert_missing even though the old certificate expired."""
    from cryptography.hazmat.primitives import serialization

    from loganalyzer.inventory.records import ConnectorRecord
    from loganalyzer.inventory.x509 import read_certificate_file
    from tests.certgen import issue, name

    ca = issue(name("Example Issuing CA 2", "Example Trust"), serial=1)
    subject = name("hybrid.corp.example.com", "Example Corp")
    old = issue(subject, ca, sans=("hybrid.corp.example.com",), days=(-400, -1), serial=5)
    new = issue(subject, ca, sans=("hybrid.corp.example.com",), days=(-10, 355), serial=6)
    records = [
        r
        for c in (old, new)
        for r in read_certificate_file(c.cert.public_bytes(serialization.Encoding.PEM), "x.pem")
    ]
    connector = ConnectorRecord(
        source="c", kind="send", name="Outbound to Office 365",
        tls_cert_issuer=records[0].issuer, tls_cert_subject=records[0].subject,
    )  # fmt: skip
    sessions = _send_with_cert(tmp_path, "CN=hybrid.corp.example.com", "hybrid.corp.example.com")
    found = find_issues(sessions, records, [connector], now=NOW)
    assert _kind(found, "connector_cert_missing").empty
    old_only = find_issues(sessions, records[:1], [connector], now=NOW)
    assert len(_kind(old_only, "connector_cert_missing")) == 1


def test_weak_and_self_signed_certificates(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from loganalyzer.inventory.x509 import read_certificate_file
    from tests.certgen import NOW as CERT_NOW
    from tests.certgen import name

    key = rsa.generate_private_key(65537, 1024)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("old.corp.example.com"))
        .issuer_name(name("old.corp.example.com"))
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(CERT_NOW)
        .not_valid_after(CERT_NOW.replace(year=2030))
        .sign(key, hashes.SHA256())  # cryptography no longer signs with SHA-1
    )
    weak = read_certificate_file(cert.public_bytes(serialization.Encoding.PEM), "old.pem")
    weak[0].signature_hash = "sha1"  # as the certificate bytes of an old export would say
    sessions = _send_with_cert(tmp_path, "CN=hybrid.corp.example.com", "hybrid.corp.example.com")
    found = find_issues(sessions, weak, [], now=NOW)
    (row,) = _kind(found, "weak_certificate").itertuples()
    assert row.cause == "RSA 1024 bits, SHA1 signature"
    # the session's certificate is not self-signed, and the peer is external: nothing
    assert _kind(found, "self_signed_external").empty
    # presented certificate unknown to a given inventory
    assert len(_kind(found, "cert_not_in_inventory")) == 1
    assert _kind(find_issues(sessions, [], [], now=NOW), "cert_not_in_inventory").empty


def test_self_signed_only_towards_external_peers(tmp_path):
    from tests.helpers import Session, write_log

    rows = []
    for i, remote in enumerate(["203.0.113.9:25", "10.1.2.3:25"]):
        s = Session("Internet Send", f"08DE2D5A0000080{i}", "10.0.0.5:5000", remote, f"06:0{i}:00")
        s.add("+").add("<", "220 peer.example.net ESMTP").add(">", "STARTTLS")
        s.add("*", "", "Remote certificate").add("*", "CN=peer.example.net", "Certificate subject")
        s.add("*", "CN=peer.example.net", "Certificate issuer name").add("-", "", "Local")
        rows += s.rows
    write_log(tmp_path / "SEND.LOG", rows, kind="Send")
    found = find_issues(loganalyzer.read_sessions(tmp_path), [], [], now=NOW)
    (row,) = _kind(found, "self_signed_external").itertuples()
    assert row.remote == "peer.example.net" and row.sessions == 1  # the 10.x peer is internal
