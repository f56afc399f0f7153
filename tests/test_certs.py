"""The certificate table: inventory + sessions + connectors, and the connector's pick.

The renewal story: the old certificate expired; the renewed one has another issuer, so the
connector's TlsCertificateName (issuer + subject) still selects only the old one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization

import loganalyzer
from loganalyzer.certs import certificate_key, certificates, session_certificate_facts, status_at
from loganalyzer.inventory.records import ConnectorRecord
from loganalyzer.inventory.x509 import read_certificate_file
from tests.certgen import issue, name
from tests.helpers import Session, write_log

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="module")
def story():
    old_ca = issue(name("Example Issuing CA 1", "Example Trust"), serial=1)
    new_ca = issue(name("Example Issuing CA 2", "Example Trust"), serial=2)
    subject = name("mail.corp.example.com", "Example Corp")
    old = issue(subject, old_ca, sans=("mail.corp.example.com",), days=(-400, -1), serial=0x0A)
    new = issue(subject, new_ca, sans=("mail.corp.example.com",), days=(-20, 345), serial=0x0B)
    records = []
    for cert in (old, new):
        records += read_certificate_file(
            cert.cert.public_bytes(PEM), f"{cert.cert.serial_number}.pem"
        )
    return old, new, records


def _send_log(tmp_path, record):
    s = Session(
        "Outbound to Office 365",
        "08DE2D5A00000501",
        "10.0.0.5:50001",
        "203.0.113.80:25",
        "05:59:00",
    )
    s.add("+").add("<", "220 contoso-example.mail.protection.example.net ESMTP")
    s.add(">", "STARTTLS").add("*", "", "Sending certificate")
    s.add("*", record.subject, "Certificate subject")
    s.add("*", record.issuer, "Certificate issuer name")
    s.add("*", record.serial, "Certificate serial number")
    s.add("*", record.thumbprint, "Certificate thumbprint")
    s.add("*", "", "TLS negotiation failed with error UnknownCredentials").add("-", "", "Local")
    write_log(tmp_path / "SEND2026112705-1.LOG", s.rows, kind="Send")
    return loganalyzer.read_sessions(tmp_path, server="EX01")


def test_certificate_table_joins_inventory_sessions_and_connectors(story, tmp_path):
    _, _, records = story
    old_record = records[0]
    sessions = _send_log(tmp_path, old_record)
    connector = ConnectorRecord(
        source="connectors.txt:1",
        kind="send",
        name="Outbound to Office 365",
        tls_cert_issuer=old_record.issuer,
        tls_cert_subject=old_record.subject,
    )
    table = certificates(sessions, records, [connector], now=NOW)
    assert len(table) == 2
    by_serial = {row.serial: row for row in table.itertuples()}
    expired, renewed = by_serial["A"], by_serial["B"]
    assert expired.status == "expired" and renewed.status == "valid"
    assert list(expired.selected_by) == ["send:Outbound to Office 365"]
    assert list(renewed.selected_by) == [] and list(renewed.connectors) == []
    assert expired.sessions == 1 and list(expired.directions) == ["send:presented"]
    assert list(expired.peers) == ["contoso-example.mail.protection.example.net"]
    assert expired.in_inventory and renewed.in_inventory
    assert renewed.sessions == 0 and pd.isna(renewed.last_seen_utc)


def test_connector_without_name_selects_by_fqdn_newest_first(story):
    _, _, records = story
    connector = ConnectorRecord(source="c", kind="receive", name="Default Frontend EX01",
                                server="EX01", fqdn="MAIL.corp.example.com")  # fmt: skip
    table = certificates(None, records, [connector], now=NOW)
    picks = {row.serial: list(row.selected_by) for row in table.itertuples()}
    assert picks == {"A": [], "B": ["receive:EX01\\Default Frontend EX01"]}
    assert all(list(row.connectors) for row in table.itertuples())


def test_certificate_seen_only_in_logs(tmp_path, story):
    _, new, records = story
    sessions = _send_log(tmp_path, records[1])
    table = certificates(sessions, [], [], now=NOW)
    (row,) = table.itertuples()
    assert row.in_inventory is False and row.sessions == 1 and pd.isna(row.status)
    enriched = session_certificate_facts(sessions, records)
    assert enriched.iloc[0].local_cert_in_inventory
    assert enriched.iloc[0].local_cert_valid_at_session
    assert enriched.iloc[0].local_cert_not_after_utc == pd.Timestamp(new.cert.not_valid_after_utc)


def test_keys_and_status():
    assert certificate_key("aa bb" + "0" * 36, None, None) == "AABB" + "0" * 36
    assert certificate_key("xx", "CN=CA, O=T", "00FF") == certificate_key(None, "O=T,CN=CA", "FF")
    assert status_at(None, datetime(2026, 12, 1, tzinfo=UTC), NOW) == "expiring"
    assert status_at(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC), NOW) == (
        "not_yet_valid"
    )


def test_connector_choices_explain_the_pick(story):
    from loganalyzer.certs import connector_choices

    _, _, records = story
    old_record, new_record = records
    self_signed = read_certificate_file(
        issue(
            name("mail.corp.example.com"), sans=("mail.corp.example.com",), days=(-1, 300)
        ).cert.public_bytes(PEM),
        "self.pem",
    )[0]
    auth = read_certificate_file(
        issue(
            name("Microsoft Exchange Server Auth Certificate"), days=(-1, 1800)
        ).cert.public_bytes(PEM),
        "auth.pem",
    )[0]
    pinned = ConnectorRecord(
        source="s", kind="send", name="Outbound to Office 365", server="EX01",
        tls_cert_issuer=old_record.issuer, tls_cert_subject=old_record.subject,
    )  # fmt: skip
    by_fqdn = ConnectorRecord(source="r", kind="receive", name="Default Frontend EX01",
                              server="EX01", fqdn="mail.corp.example.com")  # fmt: skip
    nothing = ConnectorRecord(source="n", kind="send", name="Partner", fqdn="mx.example.org")
    authconfig = ConnectorRecord(source="a", kind="authconfig", name="AuthConfig",
                                 auth_thumbprints={"current": auth.thumbprint})  # fmt: skip
    df = connector_choices(
        [pinned, by_fqdn, nothing, authconfig], [*records, self_signed, auth], now=NOW
    )
    rows = [(r.connector, r.thumbprint, bool(r.chosen), r.reason) for r in df.itertuples()]
    assert rows[0][:3] == ("send:EX01\\Outbound to Office 365", old_record.thumbprint, True)
    assert "expired: Exchange still presents it" in rows[0][3]
    assert len([r for r in rows if r[0] == "send:EX01\\Outbound to Office 365"]) == 1
    fqdn_rows = [r for r in rows if r[0] == "receive:EX01\\Default Frontend EX01"]
    assert [r[1] for r in fqdn_rows] == [
        new_record.thumbprint,
        old_record.thumbprint,
        self_signed.thumbprint,
    ]
    assert [r[2] for r in fqdn_rows] == [True, False, False]
    assert fqdn_rows[1][3].startswith("older NotBefore than")
    assert fqdn_rows[2][3].startswith("self-signed: the CA-issued")
    assert rows[-1][0] == "send:Partner" and pd.isna(rows[-1][1])
    assert rows[-1][2:] == (False, "its FQDN matches no certificate")
    assert auth.thumbprint not in {r[1] for r in rows}


def test_one_certificate_from_pem_clixml_and_format_list_is_one_row(story):
    """Round trip: the same certificate read from PEM, from Clixml RawData and from fl text."""
    import base64

    from loganalyzer.inventory.exchange_certs import read_exchange_certificates

    _, new, _ = story
    der = new.cert.public_bytes(serialization.Encoding.DER)
    (pem,) = read_certificate_file(new.cert.public_bytes(PEM), "new.pem")
    clixml = (
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj RefId="0"><TN RefId="0"><T>Deserialized.Microsoft.Exchange.Management.'
        "SystemConfigurationTasks.ExchangeCertificate</T></TN><Props>"
        f'<BA N="RawData">{base64.b64encode(der).decode()}</BA>'
        "</Props></Obj></Objs>"
    )
    from_xml = read_exchange_certificates(clixml, "EX01-certs.xml")
    fl = "\n".join(
        [
            "",
            f"CertificateDomains : {{{', '.join(pem.sans)}}}",
            "HasPrivateKey      : True",
            "IsSelfSigned       : False",
            f"Issuer             : {pem.issuer}",
            "NotAfter           : 10/27/2027 12:00:00 AM",
            "NotBefore          : 11/6/2026 12:00:00 AM",
            "PublicKeySize      : 2048",
            f"SerialNumber       : {pem.serial}",
            "Services           : IIS, SMTP",
            "Status             : Valid",
            f"Subject            : {pem.subject}",
            f"Thumbprint         : {pem.thumbprint}",
            "",
        ]
    )
    from_fl = read_exchange_certificates(fl, "EX01-certs.txt")
    table = certificates(None, [pem, *from_xml, *from_fl], [], now=NOW)
    (row,) = table.itertuples()
    assert row.thumbprint == pem.thumbprint
    assert sorted(s.split(":")[0] for s in row.sources) == [
        "EX01-certs.txt", "EX01-certs.xml", "new.pem",
    ]  # fmt: skip
    assert list(row.services) == ["IIS", "SMTP"]  # from the export; dates from the bytes
    assert row.not_after_utc == pd.Timestamp(new.cert.not_valid_after_utc)
