"""Postfix reading rules: year and zone of year-less lines, New Year, malformed and hostile
lines, other programs' lines, strict mode and the CLI options."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import loganalyzer
from loganalyzer import LogParseError
from loganalyzer.cli import app
from tests.conftest import SAMPLE_LOGS

POSTFIX = SAMPLE_LOGS / "postfix"
SESSION = (
    "{day} 10:00:00 mx1 postfix/smtpd[{pid}]: connect from client.example.net[198.51.100.7]\n"
    "{day} 10:00:01 mx1 postfix/smtpd[{pid}]: disconnect from client.example.net[198.51.100.7]"
    " ehlo=1 quit=1 commands=2\n"
)


def _write(path: Path, text: str, mtime_year: int | None = None) -> Path:
    path.write_text(text, "utf-8")
    if mtime_year is not None:
        stamp = datetime(mtime_year, 6, 1).timestamp()
        os.utime(path, (stamp, stamp))
    return path


def test_default_year_is_the_files_modification_year_and_zone_the_local_one(tmp_path):
    log = _write(tmp_path / "mail.log", SESSION.format(day="Jul  4", pid=1), mtime_year=2024)
    df = loganalyzer.read_sessions(log)  # conftest pins TZ=Pacific/Auckland (UTC+12 in July)
    assert str(df["start_utc"][0]) == "2024-07-03 22:00:00+00:00"


def test_explicit_year_and_zone(tmp_path):
    log = _write(tmp_path / "mail.log", SESSION.format(day="Jul  4", pid=1), mtime_year=2024)
    df = loganalyzer.read_sessions(log, syslog_year=2021, syslog_tz="America/New_York")
    assert str(df["start_utc"][0]) == "2021-07-04 14:00:00+00:00"  # EDT, UTC-4
    winter = _write(tmp_path / "w.log", SESSION.format(day="Jan  4", pid=2))
    df = loganalyzer.read_sessions(winter, syslog_year=2021, syslog_tz="America/New_York")
    assert str(df["start_utc"][0]) == "2021-01-04 15:00:00+00:00"  # EST, UTC-5


def test_new_year_inside_a_file_counts_back_from_its_modification_year(tmp_path):
    text = SESSION.format(day="Dec 31", pid=1) + SESSION.format(day="Jan  1", pid=2)
    log = _write(tmp_path / "mail.log", text, mtime_year=2027)
    df = loganalyzer.read_sessions(log, syslog_tz="UTC")
    assert [str(t) for t in df["start_utc"]] == [
        "2026-12-31 10:00:00+00:00",
        "2027-01-01 10:00:00+00:00",
    ]


def test_new_year_between_rotated_files_with_an_explicit_year(tmp_path):
    _write(tmp_path / "mail.log.1", SESSION.format(day="Dec 30", pid=1))
    _write(tmp_path / "mail.log", SESSION.format(day="Jan  2", pid=2))
    df = loganalyzer.read_sessions(tmp_path, syslog_year=2027, syslog_tz="UTC")
    assert [str(t.date()) for t in df["start_utc"]] == ["2026-12-30", "2027-01-02"]


def test_malformed_lines_are_counted_with_file_and_line(tmp_path):
    text = (
        SESSION.format(day="Nov 26", pid=1)
        + "garbage without any prefix\n"
        + "Nov 26 10:00:02 mx1 postfix/smtpd[3]: connect from no-brackets-here\n"
        + "Feb 30 10:00:03 mx1 postfix/smtpd[4]: connect from a.example[192.0.2.1]\n"
        + "Nov 26 10:00:04 mx1 sshd[77]: Accepted publickey for root\n"
        + "Nov 26 10:00:05 mx1 postfix/qmgr[5]: 0A1B2C: removed\n"
        + "\n"
    )
    log = _write(tmp_path / "mail.log", text)
    df = loganalyzer.read_sessions(log, syslog_year=2026, syslog_tz="UTC")
    stats = df.attrs["read_stats"]
    assert stats["malformed"] == 3
    assert [e.split(": ", 1)[0].rsplit("/", 1)[-1] for e in stats["malformed_examples"]] == [
        "mail.log:3", "mail.log:4", "mail.log:5",
    ]  # fmt: skip
    assert "impossible date" in stats["malformed_examples"][2]
    assert len(df) == 1
    with pytest.raises(LogParseError) as err:
        loganalyzer.read_sessions(log, syslog_year=2026, syslog_tz="UTC", strict=True)
    assert (Path(err.value.file).name, err.value.line) == ("mail.log", 3)


def test_attacker_controlled_text_stays_data(tmp_path):
    helo = "<script>alert(1)</script>'; DROP TABLE sessions;--"
    text = (
        "Nov 26 10:00:00 mx1 postfix/smtpd[9]: connect from unknown[203.0.113.66]\n"
        "Nov 26 10:00:01 mx1 postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[203.0.113.66]: "
        "554 5.7.1 <x@corp.example.com>: Relay access denied; from=<a@b> to=<x@corp.example.com> "
        f"proto=ESMTP helo=<{helo}>\n"
        "Nov 26 10:00:02 mx1 postfix/smtpd[9]: disconnect from unknown[203.0.113.66] "
        "ehlo=1 mail=1 rcpt=0/1 commands=2/3\n"
    )
    log = _write(tmp_path / "mail.log", text)
    row = loganalyzer.read_sessions(log, syslog_year=2026, syslog_tz="UTC").iloc[0]
    assert row["helo"] == helo
    assert pd.isna(row["remote_host"])
    assert row["last_error"] == "554 5.7.1 <x@corp.example.com>: Relay access denied"


def test_postfix_facts_in_their_columns():
    df = loganalyzer.read_sessions(
        POSTFIX / "recv-tls-established-trust-words.log", syslog_year=2026, syslog_tz="UTC"
    )
    trusted = df.iloc[1]
    assert trusted["remote_cert_subject"] == "CN=relay.example.com"
    assert trusted["remote_cert_issuer"] == "CN=Example Issuing CA 1"
    assert trusted["remote_cert_fingerprint_digest"] == "sha256"
    assert trusted["remote_cert_fingerprint"].startswith("3F:A1:07")
    assert pd.isna(trusted["remote_cert_thumbprint"])  # SHA-256 is no SHA-1 thumbprint
    assert (trusted["tls_key_exchange"], trusted["tls_cipher_bits"]) == ("ECDHE", 256)
    legacy = df.iloc[2]
    assert (legacy["tls_version"], legacy["remote_cert_fingerprint_digest"]) == ("TLS1.0", "md5")
    submission = df.iloc[3]
    assert submission["tls_key_exchange"] == "X25519MLKEM768"
    assert (submission["messages"], submission["recipients"], submission["delivered"]) == (1, 1, 1)


def test_exchange_sessions_have_the_postfix_columns_null():
    df = loganalyzer.read_sessions(SAMPLE_LOGS / "exchange" / "send-multirow-cert-blocks-tls12.LOG")
    for column in (
        "remote_cert_fingerprint",
        "remote_cert_fingerprint_digest",
        "remote_cert_trust",
    ):
        assert df[column].isna().all()


def test_cli_options_pin_the_year_and_zone(tmp_path):
    log = _write(tmp_path / "mail.log", SESSION.format(day="Jul  4", pid=1), mtime_year=2024)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sessions", str(log), "-f", "jsonl", "-q", "--syslog-year", "2022", "--syslog-tz", "UTC"],
    )
    assert result.exit_code == 0, result.output
    assert '"start_utc": "2022-07-04T10:00:00Z"' in result.stdout
    bad = runner.invoke(app, ["findings", str(log), "-q", "--syslog-tz", "Nowhere/Else"])
    assert bad.exit_code == 2 and "unknown time zone" in bad.output


def test_lines_copied_into_another_log_of_the_folder_are_read_once(tmp_path):
    text = (POSTFIX / "recv-ssl-accept-error-then-plaintext.log").read_text("utf-8")
    _write(tmp_path / "mail.log", text)
    _write(tmp_path / "syslog", "Nov 26 07:19:59 mx1 kernel: eth0 up\n" + text)
    warnings = [line for line in text.splitlines(keepends=True) if "warning:" in line]
    _write(tmp_path / "mail.warn", "".join(warnings))
    alone = loganalyzer.read_sessions(tmp_path / "mail.log", syslog_year=2026, syslog_tz="UTC")
    folder = loganalyzer.read_sessions(tmp_path, syslog_year=2026, syslog_tz="UTC")
    assert folder.attrs["read_stats"]["files"] == 3
    assert folder.drop(columns="file").equals(alone.drop(columns="file"))


def test_queue_ids_link_the_attempts_for_one_message():
    df = loganalyzer.read_sessions(
        [
            POSTFIX / "send-ssl-connect-error-next-mx-deferred.log",
            POSTFIX / "send-plaintext-fallback-after-backoff.log",
        ],
        syslog_year=2026,
        syslog_tz="UTC",
    )
    attempts = df[df["queue_ids"].map(lambda ids: ids is not None and "6A7B8C9D0E" in ids)]
    assert attempts["remote_host"].tolist() == [
        "mx.example.net", "mx2.example.net", "mx.example.net", "mx.example.net",
    ]  # fmt: skip
    assert attempts["outcome"].tolist() == ["tls_failed", "tls_failed", "tls_failed", "plaintext"]
    assert attempts["fallback"].tolist() == [False, False, False, True]


def test_a_session_still_open_at_the_end_of_the_log_is_incomplete(tmp_path):
    text = SESSION.format(day="Nov 26", pid=1) + (
        "Nov 26 10:01:00 mx1 postfix/smtpd[1]: connect from late.example.net[198.51.100.9]\n"
    )
    df = loganalyzer.read_sessions(_write(tmp_path / "mail.log", text), syslog_year=2026)
    assert df["outcome"].tolist() == ["plaintext", "incomplete"]


def test_a_postfix_tag_after_other_programs_lines_is_still_recognised(tmp_path):
    other = "".join(
        f"Nov 26 09:{i // 60:02d}:{i % 60:02d} mx1 kernel: noise {i:06d}\n" for i in range(1200)
    )
    df = loganalyzer.read_sessions(
        _write(tmp_path / "syslog", other + SESSION.format(day="Nov 26", pid=1)), syslog_year=2026
    )
    assert len(df) == 1 and df.attrs["read_stats"]["malformed"] == 0
