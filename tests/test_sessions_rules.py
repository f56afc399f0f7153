"""The session-table rules of DESIGN.md contract 1, each on a small log written for the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import loganalyzer
from loganalyzer import LogParseError, NoInputError
from tests.helpers import Session, write_log

RECV = r"EX01\Default Frontend EX01"
THUMB_OLD = "1A2B3C4D5E6F708192A3B4C5D6E7F80912345678"
THUMB_NEW = "9F8E7D6C5B4A39281706F5E4D3C2B1A098765432"
ONELINE_CTX = (
    "Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after "
    "Subject alternate names"
)
TLS12_SERVER = (
    "TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm "
    "CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits "
    "and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits"
)
TLS13_CLIENT = TLS12_SERVER.replace("TLS1_2_SERVER", "TLS1_3_CLIENT")


def receive_tls(sid: str, start: str, remote: str = "203.0.113.10:40001") -> Session:
    s = Session(RECV, sid, "10.0.0.5:25", remote, start)
    s.add("+")
    s.add(">", "220 ex01.corp.example.com Microsoft ESMTP MAIL Service ready at Thu, 26 Nov 2026")
    s.add("<", "EHLO mail.example.net")
    s.add(
        ">", "250  ex01.corp.example.com Hello [203.0.113.10] SIZE 37748736 STARTTLS X-ANONYMOUSTLS"
    )
    s.add("<", "STARTTLS")
    s.add(">", "220 2.0.0 SMTP server ready")
    s.add(
        "*",
        " CN=mail.corp.example.com, O=Example Corp, C=US CN=Example Issuing CA 2, O=Example Trust,"
        f" C=US 0A1B2C3D {THUMB_OLD} 2026-01-10T00:00:00.000Z 2027-01-10T23:59:59.000Z "
        "mail.corp.example.com;autodiscover.corp.example.com",
        ONELINE_CTX,
    )
    s.add("*", "", TLS12_SERVER)
    s.add("<", "EHLO after-tls.example.net")
    s.add(">", "250  ex01.corp.example.com Hello [203.0.113.10] SIZE 37748736 AUTH LOGIN")
    s.add("<", "MAIL FROM:<alice@example.net>")
    s.add(">", "250 2.1.0 Sender OK")
    s.add("<", "RCPT TO:<bob@corp.example.com>")
    s.add(">", "250 2.1.5 Recipient OK")
    s.add("<", "RCPT TO:<carol@corp.example.com>")
    s.add(">", "250 2.1.5 Recipient OK")
    s.add("<", "DATA")
    s.add(">", "354 Start mail input; end with <CRLF>.<CRLF>")
    s.add(">", "250 2.6.0 <a@example.net> [InternalId=1, Hostname=EX01] Queued mail for delivery")
    s.add("<", "QUIT")
    s.add(">", "221 2.0.0 Closing connection.")
    s.add("-", "", "Local")
    return s


def send_session(sid: str, start: str, connector: str = "Internet Send", remote="198.51.100.7:25"):
    s = Session(connector, sid, "10.0.0.5:50001", remote, start)
    s.add("*", "SendRoutingHeaders", "Set Session Permissions", local="")
    s.add("*", "", "attempting to connect", local="")
    s.add("+")
    s.add("<", "220 mx.example.net ESMTP Postfix")
    s.add(">", "EHLO ex01.corp.example.com")
    s.add("<", "250-mx.example.net")
    s.add("<", "250-STARTTLS")
    s.add("<", "250 8BITMIME")
    return s


def send_tls_failed(sid: str, start: str, **kw) -> Session:
    s = send_session(sid, start, **kw)
    s.add(">", "STARTTLS")
    s.add("<", "220 2.0.0 Ready to start TLS")
    s.add("*", "", "TLS negotiation failed with error IllegalMessage")
    s.add("-", "", "Local")
    return s


def send_plaintext(sid: str, start: str, **kw) -> Session:
    s = send_session(sid, start, **kw)
    s.add(">", "MAIL FROM:<alice@corp.example.com>")
    s.add("<", "250 2.1.0 Ok")
    s.add(">", "RCPT TO:<bob@example.net>")
    s.add("<", "250 2.1.5 Ok")
    s.add(">", "DATA")
    s.add("<", "354 End data with <CR><LF>.<CR><LF>")
    s.add("<", "250 2.0.0 Ok: queued as 4ABC123")
    s.add(">", "QUIT")
    s.add("-", "", "Local")
    return s


def send_tls_ok(sid: str, start: str, **kw) -> Session:
    s = send_session(sid, start, **kw)
    s.add(">", "STARTTLS")
    s.add("<", "220 2.0.0 Ready to start TLS")
    s.add("*", "", "Remote certificate")
    s.add("*", "CN=mx.example.net, O=Example Net", "Certificate subject")
    s.add("*", "CN=Example Public CA, O=Example Trust", "Certificate issuer name")
    s.add("*", "00C0FFEE", "Certificate serial number")
    s.add("*", THUMB_NEW, "Certificate thumbprint")
    s.add("*", "mx.example.net", "Certificate alternate names")
    s.add("*", "", TLS13_CLIENT)
    s.add("*", "", "Received certificate")
    s.add("*", THUMB_NEW, "Certificate thumbprint")
    s.add(">", "EHLO ex01.corp.example.com")
    s.add("-", "", "Local")
    return s


def read(tmp_path, *sessions: Session, kind="Receive", name="RECV2026112606-1.LOG", **kw):
    rows = [r for s in sessions for r in s.rows]
    write_log(tmp_path / name, rows, kind=kind)
    return loganalyzer.read_sessions(tmp_path, **kw)


def test_receive_tls_session_has_every_fact(tmp_path):
    df = read(tmp_path, receive_tls("08DE2D5A00000001", "06:00:00"))
    assert len(df) == 1
    s = df.iloc[0]
    assert (s.source, s.server, s.direction, s.connector) == (
        "exchange",
        "EX01",
        "receive",
        "Default Frontend EX01",
    )
    assert s.start_utc == pd.Timestamp("2026-11-26T06:00:00Z")
    assert s.end_utc == pd.Timestamp("2026-11-26T06:00:02.100Z")
    assert (s.local_ip, s.local_port, s.remote_ip, s.remote_port) == (
        "10.0.0.5",
        25,
        "203.0.113.10",
        40001,
    )
    assert s.helo == "after-tls.example.net"  # first EHLO after TLS
    assert s.remote_host == "after-tls.example.net"
    assert s.starttls_offered and s.starttls_requested and s.tls
    assert (s.tls_version, s.tls_cipher, s.tls_cipher_bits) == ("TLS1.2", "CALG_AES_256", 256)
    assert (s.tls_mac, s.tls_mac_bits) == ("CALG_SHA_384", 0)
    assert (s.tls_key_exchange, s.tls_key_exchange_bits) == ("CALG_ECDH_EPHEM", 384)
    assert s.local_cert_subject == "CN=mail.corp.example.com, O=Example Corp, C=US"
    assert s.local_cert_issuer == "CN=Example Issuing CA 2, O=Example Trust, C=US"
    assert (s.local_cert_serial, s.local_cert_thumbprint) == ("0A1B2C3D", THUMB_OLD)
    assert s.local_cert_not_before_utc == pd.Timestamp("2026-01-10T00:00:00Z")
    assert s.local_cert_not_after_utc == pd.Timestamp("2027-01-10T23:59:59Z")
    assert list(s.local_cert_sans) == ["mail.corp.example.com", "autodiscover.corp.example.com"]
    assert pd.isna(s.remote_cert_thumbprint)
    assert (s.messages, s.recipients, s.delivered) == (1, 2, 1)
    assert pd.isna(s.last_error)
    assert (s.disconnect, s.outcome, s.fallback) == ("Local", "tls", False)
    assert s.line == 6


def test_arrow_dtypes_and_column_order(tmp_path):
    df = read(tmp_path, receive_tls("08DE2D5A00000001", "06:00:00"))
    assert tuple(df.columns) == loganalyzer.SESSION_COLUMNS
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in df.dtypes)
    assert str(df["start_utc"].dtype) == "timestamp[us, tz=UTC][pyarrow]"


def test_send_side_certificates_and_banner_host(tmp_path):
    df = read(tmp_path, send_tls_ok("08DE2D5A00000002", "06:00:00"), kind="Send", name="SEND1.LOG")
    s = df.iloc[0]
    assert (s.direction, s.connector) == ("send", "Internet Send") and pd.isna(s.server)
    assert s.remote_host == "mx.example.net"
    assert s.helo == "ex01.corp.example.com"
    assert (s.tls_version, s.outcome) == ("TLS1.3", "tls")
    assert s.remote_cert_subject == "CN=mx.example.net, O=Example Net"
    assert s.remote_cert_thumbprint == THUMB_NEW
    assert list(s.remote_cert_sans) == ["mx.example.net"]
    assert pd.isna(s.local_cert_thumbprint)
    assert s.local_ip == "10.0.0.5"  # from the connect row, not the empty pre-connect rows


def test_last_certificate_block_before_the_tls_result_wins(tmp_path):
    s = Session(RECV, "08DE2D5A00000003", "10.0.0.5:25", "203.0.113.10:40001", "06:00:00")
    s.add("+").add("<", "STARTTLS").add(">", "220 2.0.0 SMTP server ready")
    for thumb in (THUMB_OLD, THUMB_NEW):
        s.add("*", "", "Sending certificate")
        s.add("*", "CN=mail.corp.example.com", "Certificate subject")
        s.add("*", thumb.lower(), "Certificate thumbprint")
    s.add("*", "", TLS12_SERVER)
    s.add("*", "", "Sending certificate")  # a block after the result does not win
    s.add("*", THUMB_OLD, "Certificate thumbprint")
    s.add("-", "", "Remote")
    df = read(tmp_path, s)
    assert df.iloc[0].local_cert_thumbprint == THUMB_NEW  # upper-cased


def test_masked_thumbprint_is_kept_and_mojibake_repaired(tmp_path):
    s = Session(RECV, "08DE2D5A00000004", "10.0.0.5:25", "203.0.113.10:40001", "06:00:00")
    s.add("+").add("<", "STARTTLS")
    s.add("*", "", "Sending certificate")
    s.add("*", "CN=mail.example.de, O=Beispiel GmbH, L=MÃ¼nchen", "Certificate subject")
    s.add("*", "xxxxxxxxxxxx", "Certificate thumbprint")
    s.add("*", "", "TLS negotiation failed with error UnknownCredentials")
    s.add("-", "", "Local")
    row = read(tmp_path, s).iloc[0]
    assert row.local_cert_subject == "CN=mail.example.de, O=Beispiel GmbH, L=München"
    assert row.local_cert_thumbprint == "xxxxxxxxxxxx"
    stats = read(tmp_path, s).attrs["read_stats"]
    assert stats["malformed_fields"] == 1
    assert "local_cert_thumbprint 'xxxxxxxxxxxx' is not hex" in stats["malformed_field_examples"][0]
    assert (row.outcome, row.tls_error) == ("tls_failed", "UnknownCredentials")
    assert row.last_error == "TLS negotiation failed with error UnknownCredentials"


def test_session_crossing_files_is_one_row(tmp_path):
    s = receive_tls("08DE2D5A00000005", "06:59:59")
    write_log(tmp_path / "RECV2026112606-1.LOG", s.rows[:9])
    write_log(tmp_path / "RECV2026112607-1.LOG", s.rows[9:])
    df = loganalyzer.read_sessions(tmp_path)
    assert len(df) == 1
    row = df.iloc[0]
    assert row.file.endswith("RECV2026112606-1.LOG") and row.line == 6
    assert (row.outcome, row.helo, row.messages, row.delivered) == (
        "tls",
        "after-tls.example.net",
        1,
        1,
    )
    assert row.end_utc == pd.Timestamp("2026-11-26T07:00:01.100Z")


def test_fallback_after_failed_tls_with_same_peer(tmp_path):
    df = read(
        tmp_path,
        send_tls_failed("08DE2D5A00000010", "06:00:00"),
        send_plaintext("08DE2D5A00000011", "06:01:00"),
        send_plaintext("08DE2D5A00000012", "06:30:00"),  # outside the 15-minute window
        kind="Send",
        name="SEND1.LOG",
    )
    assert df["outcome"].tolist() == ["tls_failed", "plaintext", "plaintext"]
    assert df["fallback"].tolist() == [False, True, False]
    wide = loganalyzer.read_sessions(tmp_path, fallback_window=timedelta(hours=1))
    assert wide["fallback"].tolist() == [False, True, True]


def test_no_fallback_after_tls_success_or_with_another_peer(tmp_path):
    df = read(
        tmp_path,
        send_tls_failed("08DE2D5A00000020", "06:00:00"),
        send_tls_ok("08DE2D5A00000021", "06:01:00"),
        send_plaintext("08DE2D5A00000022", "06:02:00"),
        send_tls_failed("08DE2D5A00000023", "07:00:00", connector="Partner A"),
        send_plaintext("08DE2D5A00000024", "07:01:00", connector="Partner B"),
        kind="Send",
        name="SEND1.LOG",
    )
    assert df["fallback"].tolist() == [False] * 5


def test_failed_connect_under_another_id_is_one_connect_failed_row(tmp_path):
    attempt = Session("Internet Send", "08DE2D5A000022A0", "", "192.0.2.25:25", "06:00:00")
    attempt.add("*", "None", "Set Session Permissions").add("*", "", "attempting to connect")
    failure = Session("Internet Send", "08DE2D5A0000229F", "", "192.0.2.25:25", "06:00:21")
    failure.add(
        "*",
        "",
        "Failed to connect. Winsock error code: 10060, Win32 error code: 10060, Destination "
        "domain: example.org, Error Message: A connection attempt failed.",
    )
    df = read(tmp_path, attempt, failure, kind="Send", name="SEND1.LOG")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.session_id, row.outcome) == ("08DE2D5A000022A0", "connect_failed")
    assert row.last_error.startswith("Failed to connect. Winsock error code: 10060")
    assert row.end_utc == pd.Timestamp("2026-11-26T06:00:21Z")
    assert row.line == 6


def test_outcomes(tmp_path):
    must = Session(RECV, "08DE2D5A00000030", "10.0.0.5:25", "203.0.113.11:40002", "06:00:00")
    must.add("+").add("<", "EHLO app.example.org").add("<", "MAIL FROM:<a@example.org>")
    must.add(">", "530 5.7.0 Must issue a STARTTLS command first").add("-", "", "Remote")
    plain = Session(RECV, "08DE2D5A00000031", "10.0.0.5:25", "192.168.1.20:40003", "06:01:00")
    plain.add("+").add("<", "HELO printer").add("<", "MAIL FROM:<scan@corp.example.com>")
    open_session = Session(RECV, "08DE2D5A00000032", "10.0.0.5:25", "203.0.113.12:4", "06:02:00")
    open_session.add("+").add("<", "EHLO slow.example.com")
    refused = Session(RECV, "08DE2D5A00000033", "10.0.0.5:25", "203.0.113.13:5", "06:03:00")
    refused.add("+").add("<", "STARTTLS")
    refused.add(">", "454 4.7.0 Cannot accept TLS as maximum TLS rate exceeded for server")
    refused.add("-", "", "Remote")
    df = read(tmp_path, must, plain, open_session, refused)
    assert df["outcome"].tolist() == ["tls_failed", "plaintext", "incomplete", "tls_failed"]
    assert df["tls_error"].tolist()[0] == "Must issue a STARTTLS command first"
    assert df["last_error"].tolist()[0] == "530 5.7.0 Must issue a STARTTLS command first"
    assert df["helo"].tolist()[:3] == ["app.example.org", "printer", "slow.example.com"]


def test_since_until_keep_overlapping_sessions(tmp_path):
    sessions = [receive_tls(f"08DE2D5A0000004{i}", f"0{6 + i}:00:00") for i in range(3)]
    rows = [r for s in sessions for r in s.rows]
    write_log(tmp_path / "RECV.LOG", rows)
    since = datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)
    until = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)
    df = loganalyzer.read_sessions(tmp_path, since=since, until=until)
    assert df["session_id"].tolist() == ["08DE2D5A00000041", "08DE2D5A00000042"]


def test_server_option_names_a_flattened_bundle(tmp_path):
    df = read(tmp_path, send_tls_ok("08DE2D5A00000050", "06:00:00"), kind="Send", name="S.LOG")
    assert pd.isna(df.iloc[0].server)
    named = loganalyzer.read_sessions(tmp_path, server="EX09")
    assert named.iloc[0].server == "EX09"


def test_server_and_role_from_the_exchange_folder_layout(tmp_path):
    folder = tmp_path / "EX02" / "TransportRoles" / "Logs" / "Hub" / "ProtocolLog" / "SmtpSend"
    write_log(
        folder / "SEND2026112606-1.LOG", send_tls_ok("08DE2D5A00000051", "06:00:00").rows, "Send"
    )
    row = loganalyzer.read_sessions(tmp_path).iloc[0]
    assert (row.server, row.role, row.direction) == ("EX02", "Hub", "send")


# --- bad input --------------------------------------------------------------------------------


def test_malformed_rows_are_counted_with_file_and_line(tmp_path):
    good = receive_tls("08DE2D5A00000060", "06:00:00").rows
    rows = [*good[:3], "this is not a log row", '2026-11-26T06:00:00.000Z,"unbalanced', *good[3:]]
    path = write_log(tmp_path / "RECV.LOG", rows)
    df = loganalyzer.read_sessions(tmp_path)
    stats = df.attrs["read_stats"]
    assert len(df) == 1 and df.iloc[0].outcome == "tls"
    assert stats["malformed"] == 2
    assert stats["malformed_examples"][0].startswith(f"{path}:9: ")
    with pytest.raises(LogParseError) as err:
        loganalyzer.read_sessions(tmp_path, strict=True)
    assert (err.value.file, err.value.line) == (str(path), 9)


def test_a_row_with_only_a_bad_session_id_is_reported_and_blank_rows_are_not(tmp_path):
    good = receive_tls("08DE2D5A00000060", "06:00:00").rows
    rows = [*good[:3], ",,NOT-HEX,,,,,,", ",,,,,,,,", *good[3:]]
    path = write_log(tmp_path / "RECV.LOG", rows)
    stats = loganalyzer.read_sessions(tmp_path).attrs["read_stats"]
    assert stats["malformed"] == 1
    assert stats["malformed_examples"][0].startswith(f"{path}:9: not a protocol-log row")


def test_truncated_last_line_is_reported(tmp_path):
    rows = receive_tls("08DE2D5A00000061", "06:00:00").rows
    path = write_log(tmp_path / "RECV.LOG", rows)
    path.write_bytes(path.read_bytes() + rows[0][:40].encode())
    df = loganalyzer.read_sessions(tmp_path)
    stats = df.attrs["read_stats"]
    assert stats["malformed"] == 1 and "truncated last line" in stats["malformed_examples"][0]
    assert f":{6 + len(rows)}:" in stats["malformed_examples"][0]


def test_mid_file_header_keeps_line_numbers(tmp_path):
    first = receive_tls("08DE2D5A00000062", "06:00:00").rows
    second = receive_tls("08DE2D5A00000063", "06:10:00").rows
    header = ["#Software: Microsoft Exchange Server", "#Version: 15.0.0.0"]
    write_log(tmp_path / "RECV.LOG", [*first, *header, *second])
    df = loganalyzer.read_sessions(tmp_path)
    assert df["line"].tolist() == [6, 6 + len(first) + 2]


def test_non_protocol_files_are_skipped_and_named(tmp_path):
    write_log(tmp_path / "RECV.LOG", receive_tls("08DE2D5A00000064", "06:00:00").rows)
    (tmp_path / "MSGTRK2026112606-1.LOG").write_text(
        "#Software: Microsoft Exchange Server\n#Log-type: Message Tracking Log\n", "utf-8"
    )
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.LOG").write_bytes(b"")
    df = loganalyzer.read_sessions(tmp_path)
    skipped = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in df.attrs["read_stats"]["skipped"]}
    assert skipped == {
        "MSGTRK2026112606-1.LOG": "not an Exchange SMTP protocol log or a Postfix mail log",
        "empty.LOG": "empty file",
        "junk.bin": "not an Exchange SMTP protocol log or a Postfix mail log",
    }
    assert len(df) == 1


def test_header_only_file_gives_an_empty_table(tmp_path):
    write_log(tmp_path / "RECV.LOG", [])
    df = loganalyzer.read_sessions(tmp_path)
    assert len(df) == 0 and tuple(df.columns) == loganalyzer.SESSION_COLUMNS


def test_nothing_readable_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", "utf-8")
    with pytest.raises(NoInputError, match=r"notes\.txt: not an Exchange SMTP protocol log"):
        loganalyzer.read_sessions(tmp_path)
    with pytest.raises(NoInputError, match="no such file"):
        loganalyzer.read_sessions(tmp_path / "missing")
