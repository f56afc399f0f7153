"""`loganalyzer certs` end to end: certificate files, an Exchange export, connectors, logs."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

from loganalyzer.cli import app
from loganalyzer.inventory.reader import read_files
from tests.certgen import issue, name
from tests.conftest import SHARED_FIXTURES

runner = CliRunner()
PEM = serialization.Encoding.PEM


def _inventory(tmp_path):
    ca = issue(name("Example Issuing CA 2", "Example Trust"), serial=1)
    server = issue(
        name("mail.corp.example.com", "Example Corp"), ca, sans=("mail.corp.example.com",), serial=7
    )
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "chain.pem").write_bytes(server.cert.public_bytes(PEM) + ca.cert.public_bytes(PEM))
    pfx = pkcs12.serialize_key_and_certificates(
        b"mail", server.key, server.cert, None, serialization.BestAvailableEncryption(b"pw")
    )
    (folder / "mail-test-only.pfx").write_bytes(pfx)
    (folder / "broken.cer").write_bytes(b"\x30\x82\x01\x00junk")
    connectors = tmp_path / "connectors.txt"
    connectors.write_text(
        "Name                : Outbound to Office 365\n"
        "Fqdn                : mail.corp.example.com\n"
        "TlsCertificateName  : <I>CN=Example Issuing CA 2, O=Example Trust, C=US"
        "<S>CN=mail.corp.example.com, O=Example Corp, C=US\n"
        "RequireTLS          : True\n"
        "SmartHosts          : {contoso-example.mail.protection.example.net}\n"
        "SourceTransportServers : {EX01}\n"
        "AddressSpaces       : {smtp:*;1}\n"
        "CloudServicesMailEnabled : True\n",
        "utf-8",
    )
    return folder, connectors, server


def test_certs_command(tmp_path, monkeypatch):
    folder, connectors, _ = _inventory(tmp_path)
    password = tmp_path / "pfx-password.txt"
    password.write_text("pw\n", "utf-8")
    args = ["certs", "--inventory", str(folder), "--connectors", str(connectors)]
    args += ["--now", "2026-11-27T06:00Z", "-f", "jsonl", "-q"]
    result = runner.invoke(app, [*args, "--pfx-password-file", str(password)])
    assert result.exit_code == 0, result.output
    rows = {r["serial"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"1", "7"}
    leaf = rows["7"]
    assert leaf["status"] == "valid" and leaf["in_inventory"] is True
    assert leaf["selected_by"] == ["send:EX01\\Outbound to Office 365"]
    assert sorted(s.rsplit("/", 1)[-1] for s in leaf["sources"]) == [
        "chain.pem",
        "mail-test-only.pfx",
    ]
    assert "broken.cer" in result.stderr and "pw" not in result.stderr
    result = runner.invoke(app, [*args, "--by-connector"])
    (choice,) = map(json.loads, result.stdout.splitlines())
    assert (choice["connector"], choice["chosen"]) == ("send:EX01\\Outbound to Office 365", True)
    assert choice["thumbprint"] == leaf["thumbprint"]
    monkeypatch.delenv("LOGANALYZER_PFX_PASSWORD", raising=False)
    result = runner.invoke(app, args)
    assert "mail-test-only.pfx: PKCS#12 file: wrong or missing password" in result.stderr


def test_reader_recognises_every_format(tmp_path):
    read = read_files([tmp_path.parent / "nonexistent"])
    assert read.skipped and not read.certificates
    exports = [p for p in (SHARED_FIXTURES / "inventory").glob("*") if p.suffix in (".txt", ".xml")]
    if exports:
        read = read_files(exports)
        assert len(read.certificates) >= 3 and len(read.connectors) == 1
        assert any("event-12014" in s.name for s in read.skipped)


def test_sample_inventory_golden_and_story(update_golden):
    """Every format in sample_logs/inventory, and the certificates the sample logs present."""
    from dataclasses import asdict

    from tests.conftest import GOLDEN, SAMPLE_LOGS, check_golden

    folder = SAMPLE_LOGS / "inventory"
    read = read_files([folder], pfx_password=b"loganalyzer-sample")
    assert read.skipped == []
    records = []
    for record in sorted(read.certificates, key=lambda r: (r.source, r.thumbprint or "")):
        row = asdict(record)
        row.pop("der")
        row["source"] = row["source"].replace(str(SAMPLE_LOGS), "sample_logs")
        records.append(json.loads(json.dumps(row, default=str)))
    connectors = [json.loads(json.dumps(asdict(c), default=str)) for c in read.connectors]
    for c in connectors:
        c["source"] = c["source"].replace(str(SAMPLE_LOGS), "sample_logs")
    check_golden(records + connectors, GOLDEN / "samples" / "inventory.jsonl", update_golden)
    args = ["certs", str(SAMPLE_LOGS / "exchange"), "--inventory", str(folder)]
    result = runner.invoke(app, [*args, "--now", "2026-11-27T06:00Z", "-f", "jsonl", "-q"])
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    ours = [
        r for r in rows if r["sessions"] and r["directions"] and "send:presented" in r["directions"]
    ]
    assert ours and all(
        r["in_inventory"] for r in ours if "corp.example.com" in (r["subject"] or "")
    )
