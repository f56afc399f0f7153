"""Arbitrary and truncated input never raises anything but the documented errors."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

import loganalyzer
from loganalyzer import LogParseError, NoInputError
from tests.helpers import HEADER, Session

_VALID = Session(
    r"EX01\Default Frontend EX01", "08DE2D5A00000201", "10.0.0.5:25", "203.0.113.9:1", "06:00:00"
)
_VALID.add("+").add("<", "EHLO a.example.net").add("<", "STARTTLS")
_VALID.add("*", "", "Sending certificate").add("*", "CN=a, O=b", "Certificate subject")
_VALID.add("*", "", "TLS negotiation failed with error UnknownCredentials").add("-", "", "Local")
VALID = (
    "\ufeff" + HEADER.format(kind="Receive") + "".join(r + "\r\n" for r in _VALID.rows)
).encode()


def _read(tmp_path_factory, data: bytes, strict: bool = False):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "RECV2026112606-1.LOG").write_bytes(data)
    try:
        df = loganalyzer.read_sessions(folder, strict=strict)
    except (NoInputError, LogParseError):
        return None
    assert tuple(df.columns) == loganalyzer.SESSION_COLUMNS
    return df


@given(cut=st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_log_at_any_byte(tmp_path_factory, cut):
    df = _read(tmp_path_factory, VALID[:cut])
    if df is not None and len(df):
        assert df["outcome"].isin(["tls_failed", "incomplete", "plaintext"]).all()


@given(junk=st.binary(max_size=400), at=st.integers(min_value=0, max_value=len(VALID)))
@example(junk=b'"', at=len(VALID))
@example(junk=b"\x00\xff\xfe", at=300)
def test_junk_inserted_anywhere(tmp_path_factory, junk, at):
    _read(tmp_path_factory, VALID[:at] + junk + VALID[at:])
    _read(tmp_path_factory, VALID[:at] + junk + VALID[at:], strict=True)


@given(text=st.text(max_size=300))
def test_arbitrary_fields_after_a_header(tmp_path_factory, text):
    line = ",".join(
        ["2026-11-26T06:00:00.000Z", text, "08DE2D5A00000202", "0", text, text, "*", text, text]
    )
    _read(tmp_path_factory, VALID + line.encode("utf-8", "surrogatepass") + b"\r\n")
