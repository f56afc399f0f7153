"""Arbitrary, truncated and garbled mail logs never raise anything but the documented errors.

The parser may only return events and malformed lines (``parse_chunk``), and ``read_sessions``
may only return a table or raise NoInputError / LogParseError (strict).
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

import loganalyzer
from loganalyzer import LogParseError, NoInputError
from loganalyzer.sources import postfix
from tests.conftest import SAMPLE_LOGS

VALID = b"".join(
    (SAMPLE_LOGS / "postfix" / name).read_bytes()
    for name in (
        "recv-ssl-accept-error-then-plaintext.log",
        "send-plaintext-fallback-after-backoff.log",
        "send-tls-established-sent-peercert.log",
    )
)
PREFIXES = [
    "Nov 26 08:00:00 mx1 postfix/smtp[3101]: ",
    "Nov 26 08:00:00 mx1 postfix/smtpd[2101]: ",
    "2026-11-26T08:00:00.5+01:00 mx1 postfix/submission/smtpd[7]: ",
    "mta | 2026-11-26T08:00:00Z INFO    postfix/relay/smtp[8]: ",
]


def _read(tmp_path_factory, data: bytes, strict: bool = False):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "mail.log").write_bytes(data)
    try:
        df = loganalyzer.read_sessions(folder, strict=strict, syslog_year=2026, syslog_tz="UTC")
    except (NoInputError, LogParseError):
        return None
    assert tuple(df.columns) == loganalyzer.SESSION_COLUMNS
    assert (
        df["outcome"].isin(["tls", "plaintext", "tls_failed", "connect_failed", "incomplete"]).all()
    )
    return df


@given(cut=st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_log_at_any_byte(tmp_path_factory, cut):
    _read(tmp_path_factory, VALID[:cut])


@given(junk=st.binary(max_size=300), at=st.integers(min_value=0, max_value=len(VALID)))
@example(junk=b"\x00\xff\xfe\r", at=200)
@example(junk=b"]: [", at=len(VALID))
def test_junk_inserted_anywhere(tmp_path_factory, junk, at):
    _read(tmp_path_factory, VALID[:at] + junk + VALID[at:])
    _read(tmp_path_factory, VALID[:at] + junk + VALID[at:], strict=True)


@given(
    prefix=st.sampled_from(PREFIXES),
    message=st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from(
                [
                    "connect from ",
                    "disconnect from a[1.2.3.4] ",
                    "SSL_connect error to ",
                    "Verified TLS connection established to ",
                    "0A1B: to=<",
                    "connect to ",
                    "x.example[192.0.2.1]:25: subject_CN=",
                    "certificate verification failed for ",
                    "Anonymous TLS connection established from b[",
                    "0A1B: Cannot start TLS",
                    "warning: TLS library problem: ",
                    "NOQUEUE: reject: RCPT from ",
                ]
            ),
            st.text(max_size=120),
        ),
    ),
)
@example(
    prefix=PREFIXES[0],
    message="0A1B: to=<a>, relay=x[1]:99999999999, delay=1, delays=1, dsn=2.0.0, status=sent (ok)",
)
def test_arbitrary_messages(tmp_path_factory, prefix, message):
    line = (prefix + message).replace("\n", " ").replace("\r", " ")
    events, malformed = postfix.parse_chunk(line.encode("utf-8", "surrogatepass") + b"\n", 1)
    assert set(events.columns) == set(postfix.EVENT_SCHEMA)
    assert all(m.line == 1 for m in malformed)
    _read(tmp_path_factory, VALID + line.encode("utf-8", "surrogatepass") + b"\n")
