"""Golden sessions for every real published excerpt in ../shared/fixtures/postfix/.

The excerpts are read in place (never copied into the project). Their year-less lines are read
with a pinned year and zone. A fixture that is no mail log (a quoted fragment without prefix,
tag or pid) is skipped with a reason, and the golden records that reason.
Regenerate the goldens with ``pytest tests/test_postfix_fixtures.py --update-golden``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

import loganalyzer
from loganalyzer import NoInputError
from tests.conftest import GOLDEN, SHARED_FIXTURES, check_golden
from tests.helpers import records

FOLDER = SHARED_FIXTURES / "postfix"
FIXTURE_NAMES = sorted(p.name for p in FOLDER.glob("*.log")) if FOLDER.is_dir() else []
PINNED = {"syslog_year": 2026, "syslog_tz": "UTC"}


@pytest.fixture(params=FIXTURE_NAMES or ["(none)"])
def fixture_log(request) -> Path:
    if not FOLDER.is_dir():
        pytest.skip(f"shared fixtures not found at {FOLDER} (they live beside the project)")
    if request.param == "(none)":
        pytest.skip("no .log fixtures in the shared postfix folder")
    return FOLDER / request.param


def _records(path: Path) -> list[dict]:
    try:
        df = loganalyzer.read_sessions(path, **PINNED)
    except NoInputError as err:
        return [{"skipped": str(err).replace(str(FOLDER) + "/", "")}]
    assert df.attrs["read_stats"]["malformed"] == 0
    return records(df, FOLDER)


def test_golden_sessions(fixture_log, update_golden):
    golden = GOLDEN / "postfix" / "fixtures" / f"{fixture_log.stem}.sessions.jsonl"
    check_golden(_records(fixture_log), golden, update_golden)


def test_gzipped_fixture_gives_the_same_sessions(fixture_log, tmp_path):
    target = tmp_path / (fixture_log.name + ".gz")
    target.write_bytes(gzip.compress(fixture_log.read_bytes(), mtime=0))
    expected = [{k: v for k, v in r.items() if k != "file"} for r in _records(fixture_log)]
    got = [{k: v for k, v in r.items() if k != "file"} for r in _records(target)]
    if expected and "skipped" in expected[0]:
        assert "not an Exchange SMTP protocol log or a Postfix mail log" in got[0]["skipped"]
    else:
        assert got == expected


def test_the_facts_of_the_real_excerpts():
    if not FOLDER.is_dir():
        pytest.skip(f"shared fixtures not found at {FOLDER}")
    df = loganalyzer.read_sessions(FOLDER, **PINNED)
    by_file = {Path(f).name: rows for f, rows in df.groupby("file")}
    cert = by_file["smtp-cert-verification-failed-untrusted-issuer-tls13-docker.log"]
    first = cert.iloc[0]
    assert (first["server"], first["outcome"], first["tls_version"]) == (
        "postfix",
        "tls_failed",
        "TLS1.3",
    )
    assert first["tls_error"].startswith("Certificate validation failure: untrusted issuer /OU=")
    assert first["last_error"] == "Server certificate not trusted"
    assert (first["tls_key_exchange"], first["remote_cert_trust"]) == ("X25519", "Untrusted")
    accept = by_file["smtpd-ssl-accept-error-no-shared-cipher-starttls.log"].iloc[0]
    assert accept["tls_error"] == "SSL_accept error: no shared cipher"
    assert accept["disconnect"] == "lost connection after STARTTLS"
    assert (accept["starttls_requested"], accept["tls"]) == (True, False)
    submission = by_file["smtpd-submission-anonymous-tls-from-localhost.log"].iloc[0]
    assert (submission["connector"], submission["remote_cert_trust"]) == ("submission", "Anonymous")
    masked = by_file["smtp-untrusted-tls-tls12-cipher.log"].iloc[0]
    assert pd.isna(masked["start_utc"]) and masked["session_id"] == "postfix/smtp[xxxxx]@line1"
    assert (masked["tls_cipher"], masked["tls_cipher_bits"]) == ("ECDHE-RSA-AES128-GCM-SHA256", 128)
    skipped = df.attrs["read_stats"]["skipped"]
    assert [Path(s["file"]).name for s in skipped] == [
        "smtp-deferred-tls-required-not-offered-fragment.log"
    ]
