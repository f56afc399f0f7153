"""mail_flow_halt and mail_flow_silence on small logs written for each test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import loganalyzer
from loganalyzer.findings.flow import RULES, mail_flow_halt, mail_flow_silence
from loganalyzer.findings.model import Context, Options, to_frame
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord
from tests.helpers import Session, write_log

SEND_DIR = Path("EX01/TransportRoles/Logs/Hub/ProtocolLog/SmtpSend")
RECV_DIR = Path("EX01/TransportRoles/Logs/FrontEnd/ProtocolLog/SmtpReceive")
OUT = "Outbound to Office 365"
INTERNET = "Internet Send"
FRONTEND = r"EX01\Default Frontend EX01"
CLIENT = r"EX01\Client Frontend EX01"
THUMB_A = "1A2B3C4D5E6F708192A3B4C5D6E7F80912345678"
THUMB_B = "9F8E7D6C5B4A39281706F5E4D3C2B1A098765432"
SUBJECT = "CN=mail.corp.example.com, O=Example Corp, C=US"
ISSUER = "CN=Example Issuing CA 2, O=Example Trust, C=US"
ONELINE_CTX = (
    "Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after "
    "Subject alternate names"
)
TLS12 = (
    "TLS protocol SP_PROT_TLS1_2_{side} negotiation succeeded using bulk encryption algorithm "
    "CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits "
    "and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits"
)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def clock(minutes: float) -> str:
    """``HH:MM:SS`` that many minutes after 06:00."""
    return (T0 + timedelta(minutes=minutes)).strftime("%H:%M:%S")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sid(n: int) -> str:
    return f"08DE2D5A{n:08X}"


def certificate(thumb: str, not_after: str = "2027-01-10T23:59:59.000Z") -> str:
    return (
        f" {SUBJECT} {ISSUER} 0A1B2C3D {thumb} 2026-01-10T00:00:00.000Z {not_after} "
        "mail.corp.example.com"
    )


# --- send side -------------------------------------------------------------------------------


def send_start(n: int, minutes: float, connector: str, host: str, ip: str) -> Session:
    s = Session(connector, sid(n), "10.0.0.5:50001", f"{ip}:25", clock(minutes))
    s.add("*", "SendRoutingHeaders", "Set Session Permissions", local="")
    s.add("*", "", "attempting to connect", local="")
    s.add("+")
    s.add("<", f"220 {host} Microsoft ESMTP MAIL Service ready")
    s.add(">", "EHLO ex01.corp.example.com")
    s.add("<", f"250-{host}")
    s.add("<", "250-STARTTLS")
    s.add("<", "250 8BITMIME")
    s.add(">", "STARTTLS")
    s.add("<", "220 2.0.0 SMTP server ready")
    return s


def send_ok(n, minutes, thumb=THUMB_A, connector=OUT, host="mx1.example.net", ip="198.51.100.7"):
    s = send_start(n, minutes, connector, host, ip)
    if thumb:
        s.add("*", certificate(thumb), ONELINE_CTX)
    s.add("*", "", TLS12.format(side="CLIENT"))
    s.add(">", "EHLO ex01.corp.example.com")
    s.add(">", "MAIL FROM:<alice@corp.example.com>")
    s.add("<", "250 2.1.0 Sender OK")
    s.add(">", "RCPT TO:<bob@example.net>")
    s.add("<", "250 2.1.5 Recipient OK")
    s.add(">", "BDAT 1234 LAST")
    s.add("<", "250 2.6.0 <m@corp.example.com> Queued mail for delivery")
    s.add(">", "QUIT")
    s.add("-", "", "Local")
    return s


def send_fail(n, minutes, thumb=THUMB_A, error="UnknownCredentials", connector=OUT,
              host="mx1.example.net", ip="198.51.100.7"):  # fmt: skip
    s = send_start(n, minutes, connector, host, ip)
    if thumb:
        s.add("*", certificate(thumb), ONELINE_CTX)
    s.add("*", "", f"TLS negotiation failed with error {error}")
    s.add("-", "", "Local")
    return s


def connect_failed(n: int, minutes: float) -> list[Session]:
    attempt = Session(INTERNET, sid(n), "", "192.0.2.25:25", clock(minutes))
    attempt.add("*", "None", "Set Session Permissions").add("*", "", "attempting to connect")
    failure = Session(INTERNET, sid(n + 1000), "", "192.0.2.25:25", clock(minutes + 0.35))
    failure.add(
        "*",
        "",
        "Failed to connect. Winsock error code: 10060, Win32 error code: 10060, Destination "
        "domain: example.org, Error Message: A connection attempt failed.",
    )
    return [attempt, failure]


# --- receive side ----------------------------------------------------------------------------


def receive(n, minutes, cid=FRONTEND, offer=True, cert=None, fail=None, client="mail.example.net"):
    s = Session(cid, sid(n), "10.0.0.5:25", f"203.0.113.{10 + n % 200}:40001", clock(minutes))
    s.add("+")
    s.add(">", "220 ex01.corp.example.com Microsoft ESMTP MAIL Service ready")
    s.add("<", f"EHLO {client}")
    extensions = " STARTTLS X-ANONYMOUSTLS" if offer else ""
    s.add(">", f"250  ex01.corp.example.com Hello [203.0.113.10] SIZE 37748736{extensions}")
    if cert is not None:
        s.add("<", "STARTTLS")
        s.add(">", "220 2.0.0 SMTP server ready")
        s.add("*", cert, ONELINE_CTX)
        if fail:
            s.add("*", "", f"TLS negotiation failed with error {fail}")
            s.add("-", "", "Local")
            return s
        s.add("*", "", TLS12.format(side="SERVER"))
        s.add("<", f"EHLO {client}")
    s.add("<", "MAIL FROM:<alice@example.net>")
    s.add(">", "250 2.1.0 Sender OK")
    s.add("<", "RCPT TO:<bob@corp.example.com>")
    s.add(">", "250 2.1.5 Recipient OK")
    s.add("<", "DATA")
    s.add(">", "250 2.6.0 <a@example.net> [InternalId=1, Hostname=EX01] Queued mail for delivery")
    s.add("-", "", "Remote")
    return s


def sessions(tmp_path: Path, send: list[Session] = (), recv: list[Session] = ()) -> pd.DataFrame:
    if send:
        rows = [r for s in send for r in s.rows]
        write_log(tmp_path / SEND_DIR / "SEND2026112606-1.LOG", rows, kind="Send")
    if recv:
        rows = [r for s in recv for r in s.rows]
        write_log(tmp_path / RECV_DIR / "RECV2026112606-1.LOG", rows, kind="Receive")
    return loganalyzer.read_sessions(tmp_path)


def context(df, inventory=(), connectors=(), options=None) -> Context:
    return Context(
        sessions=df,
        inventory=list(inventory),
        connectors=list(connectors),
        now=NOW,
        options=options or Options(),
    )


def evidence(df: pd.DataFrame, mask) -> list[str]:
    rows = df[mask]
    return [f"{f}:{line}" for f, line in zip(rows["file"], rows["line"], strict=True)]


# --- mail_flow_halt --------------------------------------------------------------------------


def test_rules_are_exported():
    assert [mail_flow_halt, mail_flow_silence] == RULES


def test_halt_expired_certificate_comes_first(tmp_path):
    """The renewal case: the server still presents certificate A, expired at 06:30."""
    expiring = certificate(THUMB_A, not_after="2026-11-26T06:30:00.000Z")
    ok = [receive(i, i * 10, cert=expiring) for i in range(3)]  # 06:00, 06:10, 06:20
    failed = [
        receive(10 + i, 35 + 10 * i, cert=expiring, fail="UnknownCredentials") for i in range(5)
    ]  # 06:35 .. 07:15
    df = sessions(tmp_path, recv=ok + failed)
    found = mail_flow_halt(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.kind, f.severity, f.server, f.direction, f.connector, f.remote) == (
        "mail_flow_halt",
        None,
        "EX01",
        "receive",
        "Default Frontend EX01",
        "example.net",
    )
    assert f.cause == (
        f"the certificate presented (thumbprint {THUMB_A}, subject {SUBJECT}) expired at "
        "2026-11-26T06:30:00Z"
    )
    assert f.details["causes"][0] == f.cause
    assert f.details["causes"][1].startswith("UnknownCredentials: a local fault: the certificate")
    assert len(f.details["causes"]) == 2  # same certificate before and after: no change
    assert f.cert_thumbprint == THUMB_A
    assert f.first_seen_utc == at(35)
    assert f.last_seen_utc == pd.Timestamp(at(75)) + pd.Timedelta("800ms")  # its last row
    assert f.details["start"] == "2026-11-26T06:35:00Z"
    assert f.details["end"] is None and f.details["ongoing"] is True
    assert f.details["duration_s"] == 40 * 60 + 0.8
    assert f.details["failures_by_outcome"] == {"tls_failed": 5}
    assert (f.sessions, f.messages) == (5, 0)
    assert f.evidence == evidence(df, df["outcome"] == "tls_failed")
    assert f.title == (
        "Mail flow halted: receive connector 'Default Frontend EX01' (EX01) from example.net, "
        "5 failed sessions over 40 min (ongoing)"
    )


def test_halt_after_a_certificate_change_ends_with_the_next_delivery(tmp_path):
    send = [send_ok(1, 0), send_ok(2, 5)]  # certificate A works
    send += [send_fail(10 + i, 10 + 5 * i, thumb=THUMB_B) for i in range(7)]  # 06:10 .. 06:40
    send += [send_ok(20, 50, thumb=THUMB_B)]  # B works again at 06:50
    df = sessions(tmp_path, send=send)
    found = mail_flow_halt(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.server, f.direction, f.connector, f.remote) == ("EX01", "send", OUT, "example.net")
    assert f.details["causes"] == [
        f"the certificate changed from {THUMB_A} to {THUMB_B} at 2026-11-26T06:10:00Z (renewal)",
        "UnknownCredentials: a local fault: the certificate has no SMTP service or no usable "
        "private key (7 of 7 failed sessions)",
    ]
    assert f.cause == f.details["causes"][0]
    assert f.cert_thumbprint == THUMB_B
    assert f.details["end"] == "2026-11-26T06:50:00Z"
    assert f.details["ongoing"] is False
    assert f.details["duration_s"] == 40 * 60
    assert f.title == (
        f"Mail flow halted: send connector '{OUT}' (EX01) to example.net, 7 failed sessions "
        "over 40 min"
    )
    assert f.evidence == evidence(df, df["outcome"] == "tls_failed")

    # With the connector's settings and an inventory: its TlsCertificateName finds only a
    # third certificate, which expired before the failures began.
    connector = ConnectorRecord(
        source="send.json",
        kind="send",
        name=OUT,
        tls_certificate_name=f"<I>{ISSUER}<S>{SUBJECT}",
        tls_cert_issuer=ISSUER,
        tls_cert_subject=SUBJECT.replace(", ", ","),  # another spelling of the same DN
    )
    expired = CertificateRecord(
        source="certs.json",
        thumbprint="C" * 40,
        subject=SUBJECT,
        issuer=ISSUER,
        not_before_utc=datetime(2025, 11, 1, tzinfo=UTC),
        not_after_utc=at(8),
        has_private_key=True,
    )
    with_settings = mail_flow_halt(context(df, inventory=[expired], connectors=[connector]))
    causes = with_settings[0].details["causes"]
    assert len(causes) == 3
    assert causes[0].startswith(f"the certificate changed from {THUMB_A} to {THUMB_B}")
    assert causes[1] == (
        f"TlsCertificateName <I>{ISSUER}<S>{SUBJECT} selects no valid certificate (1 matching, "
        "none valid with a private key at 2026-11-26T06:10:00Z)"
    )
    assert causes[2].startswith("UnknownCredentials")
    # a valid match in the inventory: the setting is not the cause
    valid = CertificateRecord(
        source="certs.json", thumbprint=THUMB_B, subject=SUBJECT, issuer=ISSUER,
        not_after_utc=datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    ctx = context(df, inventory=[expired, valid], connectors=[connector])
    assert len(mail_flow_halt(ctx)[0].details["causes"]) == 2


def test_halt_by_inventory_expiry_when_the_log_has_no_dates(tmp_path):
    s = []
    for i in range(4):
        fail = send_start(i, 5 * i, OUT, "mx1.example.net", "198.51.100.7")
        fail.add("*", "", "Sending certificate")
        fail.add("*", THUMB_A, "Certificate thumbprint")
        fail.add("*", "", "TLS negotiation failed with error NoCredentials")
        fail.add("-", "", "Local")
        s.append(fail)
    df = sessions(tmp_path, send=s)
    record = CertificateRecord(
        source="certs.json", thumbprint=THUMB_A, subject=SUBJECT, not_after_utc=at(-60)
    )
    f = mail_flow_halt(context(df, inventory=[record]))[0]
    assert f.cause == (
        f"the certificate presented (thumbprint {THUMB_A}, subject {SUBJECT}) expired at "
        "2026-11-26T05:00:00Z"
    )
    assert f.details["causes"][1].startswith("NoCredentials: a local fault")


def test_halt_of_failed_connects_is_a_network_cause(tmp_path):
    attempts = [s for i in range(4) for s in connect_failed(i, 5 * i)]  # 06:00 .. 06:15
    df = sessions(tmp_path, send=attempts)
    assert df["outcome"].tolist() == ["connect_failed"] * 4
    found = mail_flow_halt(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.connector, f.remote) == (INTERNET, "example.org")  # the destination domain
    assert f.cause.startswith(
        "network: connection timed out (4 of 4 failed sessions): Failed to connect. Winsock "
        "error code: 10060"
    )
    assert f.details["failures_by_outcome"] == {"connect_failed": 4}
    assert f.messages == 0


def verdict(n: int, minutes: float, rows: list[tuple[str, str, str]]) -> Session:
    """A send session to mx1.example.net that ends with the given rows."""
    s = send_start(n, minutes, OUT, "mx1.example.net", "198.51.100.7")
    for event, data, context in rows:
        s.add(event, data, context)
    s.add("-", "", "Local")
    return s


UNTRUSTED = [
    ("*", "", TLS12.format(side="CLIENT")),
    ("*", "", "Outbound TLS authentication failed for auth level DomainValidation with error "
              "UntrustedRoot"),
]  # fmt: skip
NO_STARTTLS = [
    ("*", "", "Connector is configured to send mail only over TLS connections and remote "
              "doesn't support TLS"),
]  # fmt: skip
BUSY = [("*", "", TLS12.format(side="CLIENT")), (">", "MAIL FROM:<a@corp.example.com>", ""),
        ("<", "452 4.3.1 Insufficient system resources", "")]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "cause"),
    [
        (UNTRUSTED, "the remote certificate is untrusted or does not match the name: Outbound TLS"),
        (NO_STARTTLS, "STARTTLS required but not offered by the remote: Connector is configured"),
        (BUSY, "452 4.3.1 Insufficient system resources (3 of 3 failed sessions)"),
    ],
)
def test_halt_causes_from_the_errors(tmp_path, rows, cause):
    df = sessions(tmp_path, send=[verdict(i, 6 * i, rows) for i in range(3)])
    (f,) = mail_flow_halt(context(df))
    assert f.cause.startswith(cause)
    assert f.sessions == 3


def test_short_or_interrupted_failures_are_no_halt(tmp_path):
    two = [send_fail(i, 20 * i) for i in range(2)]  # 2 failures over 20 min
    quick = [send_fail(10 + i, 60 + 2 * i, host="mx.example.org") for i in range(3)]  # 4 min
    interrupted = [
        send_fail(20, 100, host="mx.example.com"),
        send_fail(21, 105, host="mx.example.com"),
        send_ok(22, 110, host="mx.example.com"),  # a delivery in between
        send_fail(23, 115, host="mx.example.com"),
        send_fail(24, 125, host="mx.example.com"),
    ]
    df = sessions(tmp_path, send=two + quick + interrupted)
    assert mail_flow_halt(context(df)) == []
    # the same failures pass lower thresholds
    low = Options(halt_min_sessions=2, halt_min_duration=timedelta(minutes=4))
    remotes = sorted(f.remote for f in mail_flow_halt(context(df, options=low)))
    assert remotes == ["example.com", "example.com", "example.net", "example.org"]


# --- mail_flow_silence -----------------------------------------------------------------------


def steady_send(first: int, connector: str, minutes: list[float]) -> list[Session]:
    host = "mx1.example.net" if connector == OUT else "mx.example.org"
    return [send_ok(first + i, m, connector=connector, host=host) for i, m in enumerate(minutes)]


def test_silence_while_other_connectors_go_on(tmp_path):
    out = steady_send(0, OUT, [2 * i for i in range(12)] + [90, 92])  # quiet 06:22 .. 07:30
    internet = steady_send(100, INTERNET, [5 * i for i in range(20)])  # 06:00 .. 07:35
    df = sessions(tmp_path, send=out + internet)
    found = mail_flow_silence(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.kind, f.severity, f.server, f.direction, f.connector) == (
        "mail_flow_silence",
        None,
        "EX01",
        "send",
        OUT,
    )
    assert (f.first_seen_utc, f.last_seen_utc) == (at(22), at(90))
    assert f.details["start"] == "2026-11-26T06:22:00Z"
    assert f.details["end"] == "2026-11-26T07:30:00Z"
    assert f.details["ongoing"] is False
    assert f.details["duration_s"] == 68 * 60
    assert f.details["threshold_s"] == 30 * 60  # max(30 min, 5 x 2 min)
    assert f.details["other_sessions"] == 13  # Internet Send at 06:25 .. 07:25
    assert f.cause is None
    starts = df["start_utc"]
    assert f.evidence[:2] == evidence(df, (df["connector"] == OUT) & starts.isin([at(22), at(90)]))
    assert f.evidence[2] == evidence(df, starts == at(25))[0]
    assert f.title.startswith(f"Mail flow silent: send connector '{OUT}' (EX01) had no sessions")

    # The connector's TlsCertificateName finds only an expired certificate: that is the cause.
    connector = ConnectorRecord(
        source="send.json",
        kind="send",
        name=OUT,
        tls_certificate_name=f"<I>{ISSUER}<S>{SUBJECT}",
        tls_cert_issuer=ISSUER,
        tls_cert_subject=SUBJECT,
    )
    expired = CertificateRecord(
        source="certs.json", thumbprint=THUMB_A, subject=SUBJECT, issuer=ISSUER,
        not_after_utc=at(20),
    )  # fmt: skip
    f = mail_flow_silence(context(df, inventory=[expired], connectors=[connector]))[0]
    assert f.cause.startswith(
        f"TlsCertificateName <I>{ISSUER}<S>{SUBJECT} selects no valid certificate"
    )
    assert "454 4.7.5 The certificate specified in TlsCertificateName" in f.cause


def test_ongoing_silence_lasts_to_the_end_of_the_logs(tmp_path):
    out = steady_send(0, OUT, [2 * i for i in range(12)])  # last at 06:22
    internet = steady_send(100, INTERNET, [5 * i for i in range(20)])
    df = sessions(tmp_path, send=out + internet)
    (f,) = mail_flow_silence(context(df))
    assert f.details["ongoing"] is True and f.details["end"] is None
    assert f.title.endswith("(ongoing) while other connectors logged 15")  # 06:25 .. 07:35
    assert f.first_seen_utc == at(22)
    assert f.last_seen_utc == df["end_utc"].max()


def test_short_silence_or_too_few_sessions_is_no_finding(tmp_path):
    out = steady_send(0, OUT, [2 * i for i in range(12)] + [45 + 5 * i for i in range(11)])
    # OUT: a 23 min gap (06:22 .. 06:45); Few: a long gap, but only 3 sessions before it
    few = steady_send(200, "Few", [0, 5, 10, 80])
    internet = steady_send(100, INTERNET, [5 * i for i in range(20)])
    df = sessions(tmp_path, send=out + few + internet)
    assert mail_flow_silence(context(df)) == []


def test_gap_of_the_whole_server_is_a_coverage_gap(tmp_path):
    out = steady_send(0, OUT, [2 * i for i in range(12)] + [90, 92])  # 06:00 .. 06:22, 07:30
    # Internet Send: 06:01 .. 06:21, 07:35, 07:40; its own gap holds OUT's 06:22 and 07:30,
    # but what is left of it after the coverage gap is short: no connector silence.
    internet = steady_send(100, INTERNET, [1 + 2 * i for i in range(11)] + [95, 100])
    df = sessions(tmp_path, send=out + internet)
    found = mail_flow_silence(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.kind, f.severity, f.connector) == ("mail_flow_silence", "info", None)
    assert f.title == (
        "No logs from EX01 send between 2026-11-26 06:22 UTC and 2026-11-26 07:30 UTC"
    )
    assert f.details["coverage_gap"] is True
    assert (f.details["start"], f.details["end"]) == (
        "2026-11-26T06:22:00Z",
        "2026-11-26T07:30:00Z",
    )
    assert to_frame(found)["severity"].tolist() == ["info"]


def test_receive_connector_that_stops_offering_starttls(tmp_path):
    cert = certificate(THUMB_A, not_after="2026-11-26T06:30:00.000Z")
    recv = [receive(i, 5 * i, cert=cert) for i in range(6)]  # 06:00 .. 06:25 with STARTTLS
    recv += [receive(10 + i, 35 + 5 * i, offer=False) for i in range(4)]  # 06:35 .. 06:50
    df = sessions(tmp_path, recv=recv)
    found = mail_flow_silence(context(df))
    assert len(found) == 1
    f = found[0]
    assert (f.kind, f.severity, f.direction, f.connector) == (
        "mail_flow_silence",
        "critical",
        "receive",
        "Default Frontend EX01",
    )
    assert f.cause.startswith(
        "STARTTLS no longer offered: the connector has no usable certificate (event 12014)"
    )
    assert f.details["causes"][1] == (
        f"the certificate last presented (thumbprint {THUMB_A}) expired at 2026-11-26T06:30:00Z"
    )
    assert f.details["starttls_stopped"] is True and f.details["ongoing"] is True
    assert f.details["start"] == "2026-11-26T06:35:00Z"
    assert (f.sessions, f.messages, f.cert_thumbprint) == (4, 4, THUMB_A)
    assert f.evidence == evidence(df, ~df["starttls_offered"])


def test_two_sessions_without_starttls_are_no_finding(tmp_path):
    recv = [receive(i, 5 * i) for i in range(5)]
    recv += [receive(10, 30, offer=False), receive(11, 35, offer=False), receive(12, 40)]
    recv += [receive(20 + i, 45 + i, cid=CLIENT) for i in range(3)]
    df = sessions(tmp_path, recv=recv)
    assert mail_flow_silence(context(df)) == []
    assert mail_flow_halt(context(df)) == []


def test_empty_table():
    empty = pd.DataFrame(columns=list(loganalyzer.SESSION_COLUMNS))
    assert mail_flow_halt(context(empty)) == []
    assert mail_flow_silence(context(empty)) == []
