"""Exchange SmtpSend / SmtpReceive protocol logs (Exchange 2007/2010 to SE).

Format (see docs/columns.md and the format reference): a UTF-8 BOM, ``#`` header lines (also
mid-file after a restart), then 9-field CSV rows ``date-time, connector-id, session-id,
sequence-number, local-endpoint, remote-endpoint, event, data, context`` with CRLF line ends.

The hot path parses a chunk with Polars' multi-threaded CSV reader and classifies every row with
vectorised string tests into an integer *kind* (below); no Python code runs per row.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import polars as pl

from loganalyzer.sources.files import LogInput

FIELDS = ("dt", "cid", "sid", "seq", "lep", "rep", "ev", "data", "ctx")
"""Short internal names of the 9 fields, in file order."""

RAW_FIELD_NAMES = (
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
)

BOM = b"\xef\xbb\xbf"
_LOG_TYPE = re.compile(rb"^#Log-type:\s*SMTP (Send|Receive) Protocol Log", re.MULTILINE)
_ROW_START = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z,[^,\r\n]*,[0-9A-Fa-f]{16},\d+,")


@dataclass(frozen=True)
class Sniffed:
    """What the header says about a protocol log."""

    direction: str  # "send" or "receive"


def sniff(head: bytes, log: LogInput) -> Sniffed | None:
    """Recognise an Exchange protocol log from its first bytes; None if it is not one.

    The ``#Log-type`` header decides. A file without a header (a fragment) is accepted when its
    first line is a protocol-log row and its name or folder says SEND/RECV.
    """
    head = head.removeprefix(BOM)
    if head.startswith(b"#"):
        if not head.startswith(b"#Software: Microsoft Exchange"):
            return None
        match = _LOG_TYPE.search(head)
        if match is None:
            return None
        return Sniffed("send" if match.group(1) == b"Send" else "receive")
    if _ROW_START.match(head):
        hint = "/".join((*log.parts[-2:], log.file_name)).lower()
        if "smtpsend" in hint or log.file_name.upper().startswith("SEND"):
            return Sniffed("send")
        if "smtpreceive" in hint or log.file_name.upper().startswith("RECV"):
            return Sniffed("receive")
    return None


# --- row kinds -------------------------------------------------------------------------------
# One small integer per row says which fact it carries; 0 = none. Certificate rows get
# CERT_BASE + side * 16 + field * 2 + after_tls_result (see cert_kind()).
K_DISCONNECT = 1
K_EHLO = 2
K_EHLO_AFTER_TLS = 3
K_STARTTLS = 4
K_MAIL = 5
K_RCPT = 6
K_BANNER = 7
K_OFFER = 8
K_QUEUED = 9
K_ERROR_REPLY = 10
K_TLS_REPLY = 11
K_TLS_OK = 12
K_TLS_FAIL = 13
K_TLS_VERDICT = 14
K_CONNECT_FAIL = 15
K_FAIL_INFO = 16
K_PRECONNECT = 17
K_CONNECT = 18
K_CERT_LABEL = 19
CERT_BASE = 32

SIDE_LOCAL, SIDE_REMOTE, SIDE_UNKNOWN = 0, 1, 2
CERT_FIELDS = ("subject", "issuer", "serial", "thumbprint", "sans", "oneline")
_FIELD_CONTEXTS = {
    "Certificate subject": 0,
    "Certificate issuer name": 1,
    "Certificate serial number": 2,
    "Certificate thumbprint": 3,
    "Certificate alternate names": 4,
}
_LOCAL_LABELS = ("Sending certificate",)
_REMOTE_LABELS = (
    "Remote certificate",
    "Received certificate",
    "Validated received certificate",
    "DirectTrust certificate",
    "SmartHost certificate",
    "Secure domain certificate",
)
_ONELINE_SUFFIX = " Subject Issuer name Serial number Thumbprint Not before Not after"

ERROR_KINDS = (
    K_ERROR_REPLY,
    K_TLS_REPLY,
    K_TLS_FAIL,
    K_TLS_VERDICT,
    K_CONNECT_FAIL,
    K_FAIL_INFO,
)

_TLS_VERDICT_PREFIXES = (
    "Tls cipher strength is too weak",
    "Outbound TLS authentication failed",
    "DirectTrust certificate failed",
    "Connector is configured to send mail only over TLS",
    "Message to secure domain",
)
_FAIL_INFO_PREFIXES = (
    "Outbound Authentication failed",
    "Inbound AUTH LOGIN failed",
    "Inbound authentication failed",
    "The connection was dropped because",
    "Connection to remote endpoint",
    "CryptographicException",
)
_TLS_REPLY_PATTERN = (
    r"Must issue a STARTTLS command first|STARTTLS is required|Certificate validation failure"
    r"|cipher strength is too weak|Cannot accept TLS|Unable to initialize security subsystem"
)


def cert_kind(side: int, field: int, after_result: int) -> int:
    """Kind code of a certificate field row."""
    return CERT_BASE + side * 16 + field * 2 + after_result


def _starts_any(col: pl.Expr, prefixes: tuple[str, ...]) -> pl.Expr:
    expr = col.str.starts_with(prefixes[0])
    for prefix in prefixes[1:]:
        expr = expr | col.str.starts_with(prefix)
    return expr


def classify(rows: pl.DataFrame, direction: str) -> pl.DataFrame:
    """Add ``kind`` (UInt8) and ``v`` (the row's fact text) to parsed rows of one direction.

    Client commands are ``<`` rows in receive logs and ``>`` rows in send logs; server replies
    the other way round. Certificate rows are attributed to a side by the last label row before
    them in the session, and marked as before/after the TLS result row.
    """
    client, server = ("<", ">") if direction == "receive" else (">", "<")
    ev, data, ctx = pl.col("ev"), pl.col("data"), pl.col("ctx")
    upper4 = data.str.slice(0, 4).str.to_uppercase()
    reply_code = data.str.slice(0, 1)
    is_info = ev == "*"
    is_error = (reply_code == "4") | (reply_code == "5")
    kind = (
        pl.when(ev == server)
        .then(
            pl.when(data.str.starts_with("220 ") & ~data.str.starts_with("220 2.0.0"))
            .then(K_BANNER)
            .when(
                data.str.starts_with("250")
                & data.str.contains(r"[ -](?:STARTTLS|X-ANONYMOUSTLS)(?: |$)")
            )
            .then(K_OFFER)
            .when(data.str.starts_with("250 2.6.0") | data.str.contains("(?i)^250 .*queued"))
            .then(K_QUEUED)
            .when(is_error & data.str.contains(_TLS_REPLY_PATTERN))
            .then(K_TLS_REPLY)
            .when(is_error)
            .then(K_ERROR_REPLY)
            .otherwise(0)
        )
        .when(ev == client)
        .then(
            pl.when((upper4 == "EHLO") | (upper4 == "HELO"))
            .then(K_EHLO)
            .when(upper4 == "MAIL")
            .then(K_MAIL)
            .when(upper4 == "RCPT")
            .then(K_RCPT)
            .when(data.str.to_uppercase().is_in(["STARTTLS", "X-ANONYMOUSTLS"]))
            .then(K_STARTTLS)
            .otherwise(0)
        )
        .when(is_info)
        .then(
            pl.when(ctx.str.starts_with("TLS protocol ") & ctx.str.contains("succeeded"))
            .then(K_TLS_OK)
            .when(ctx.str.starts_with("TLS negotiation failed"))
            .then(K_TLS_FAIL)
            .when(_starts_any(ctx, _TLS_VERDICT_PREFIXES))
            .then(K_TLS_VERDICT)
            .when(ctx.str.starts_with("Failed to connect"))
            .then(K_CONNECT_FAIL)
            .when(_starts_any(ctx, _FAIL_INFO_PREFIXES))
            .then(K_FAIL_INFO)
            .when(
                ctx.is_in(list(_FIELD_CONTEXTS))
                | ctx.str.contains(" certificate")
                | ctx.str.starts_with("CRL validation failed")
            )
            .then(K_CERT_LABEL)  # refined into side/field kinds by _refine_certificates()
            .when((ctx == "attempting to connect") | (ctx == "Set Session Permissions"))
            .then(K_PRECONNECT)
            .otherwise(0)
        )
        .when(ev == "-")
        .then(K_DISCONNECT)
        .when(ev == "+")
        .then(K_CONNECT)
        .otherwise(0)
        .cast(pl.UInt8)
    )
    rows = rows.with_columns(kind=kind)
    k = pl.col("kind")
    value = (
        pl.when(ctx.is_in(list(_FIELD_CONTEXTS)))
        .then(data)
        .when(k == K_CERT_LABEL)
        .then(pl.coalesce(data, ctx))
        .when(is_info | (ev == "-"))
        .then(ctx)
        .otherwise(data)
    )
    rows = rows.with_columns(v=value)
    return _refine_certificates(rows)


def _refine_certificates(rows: pl.DataFrame) -> pl.DataFrame:
    """Give certificate rows their side/field kind, and EHLO rows after TLS their own kind."""
    ctx = pl.col("ctx")
    tls_result = pl.col("kind").is_in([K_TLS_OK, K_TLS_FAIL])
    interesting = rows.filter(
        (pl.col("kind") == K_CERT_LABEL) | tls_result | (pl.col("kind") == K_EHLO)
    )
    if interesting.is_empty():
        return rows
    label_side = (
        pl.when(ctx.is_in(_LOCAL_LABELS) & pl.col("data").is_null())
        .then(SIDE_LOCAL)
        .when(ctx.is_in(_REMOTE_LABELS) & pl.col("data").is_null())
        .then(SIDE_REMOTE)
        .when(ctx.str.starts_with("CRL validation failed"))
        .then(SIDE_REMOTE)
    )
    oneline_side = (
        pl.when(ctx.str.starts_with("Sending certificate" + _ONELINE_SUFFIX))
        .then(SIDE_LOCAL)
        .when(ctx.str.contains(_ONELINE_SUFFIX, literal=True))
        .then(SIDE_REMOTE)
    )
    field = pl.col("ctx").replace_strict(_FIELD_CONTEXTS, default=None, return_dtype=pl.Int32)
    result_seq = pl.when(tls_result).then(pl.col("seq")).otherwise(None).min().over("sid")
    after = (pl.col("seq") > result_seq).fill_null(False).cast(pl.Int32)
    refined = interesting.with_columns(
        side=pl.when(pl.col("kind") == K_CERT_LABEL).then(label_side.cast(pl.Int32)),
        oneline=oneline_side.cast(pl.Int32),
        field=field,
        after=after,
    ).with_columns(side=pl.col("side").forward_fill().over("sid"))
    new_kind = (
        pl.when(pl.col("kind") == K_EHLO)
        .then(pl.when(pl.col("after") == 1).then(K_EHLO_AFTER_TLS).otherwise(K_EHLO))
        .when(pl.col("kind") != K_CERT_LABEL)
        .then(pl.col("kind"))
        .when(pl.col("oneline").is_not_null())
        .then(CERT_BASE + pl.col("oneline") * 16 + 5 * 2 + pl.col("after"))
        .when(pl.col("field").is_not_null())
        .then(
            CERT_BASE
            + pl.col("side").fill_null(SIDE_UNKNOWN) * 16
            + pl.col("field") * 2
            + pl.col("after")
        )
        .otherwise(0)
        .cast(pl.UInt8)
    )
    refined = refined.select("row", kind=new_kind)
    return rows.update(refined, on="row")


# --- parsing a chunk --------------------------------------------------------------------------


@dataclass
class Malformed:
    """A row that is not a valid protocol-log row."""

    line: int
    reason: str


def parse_chunk(data: bytes, first_line: int, final: bool) -> tuple[pl.DataFrame, list[Malformed]]:
    """Parse whole lines of a protocol log into rows with a 1-based ``line`` column.

    Returns the valid rows (columns FIELDS with ``seq`` as Int64, plus ``line`` and ``row``) and
    the malformed rows found. Header lines are skipped wherever they appear; blank lines are
    ignored.
    """
    malformed: list[Malformed] = []
    if data.startswith(BOM):
        data = b"#" + data[len(BOM) :] if data[3:4] == b"#" else data[len(BOM) :]
    if b"\n" + BOM in data:
        data = data.replace(b"\n" + BOM, b"\n")
    if final and data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        last = data[cut:].rstrip(b"\r")
        if not _complete_row(last):
            line = first_line + data.count(b"\n", 0, cut)
            malformed.append(
                Malformed(line, "truncated last line (no line end: file still being written?)")
            )
            data = data[:cut]
    if not data.strip():
        return _empty_rows(), malformed
    try:
        rows = _read_csv(data).with_row_index("row")
        rows = rows.with_columns(line=_line_numbers(data, first_line, rows.height))
    except pl.exceptions.PolarsError:
        rows, found = _read_csv_slowly(data, first_line)
        malformed.extend(found)
    rows = rows.filter(~pl.all_horizontal(pl.col(FIELDS).is_null()))
    seq = pl.col("seq").cast(pl.Int64, strict=False)
    valid = (
        (pl.col("dt").str.len_bytes() == 24)
        & pl.col("dt").str.ends_with("Z")
        & seq.is_not_null()
        & pl.col("sid").is_not_null()
        & pl.col("ev").is_in(["+", "-", ">", "<", "*"])
    )
    rows = rows.with_columns(seq=seq, valid=valid.fill_null(False))
    bad = rows.filter(~pl.col("valid"))
    if bad.height:
        malformed.extend(
            Malformed(int(line), "not a protocol-log row (fields missing or malformed)")
            for line in bad["line"].to_list()
        )
        rows = rows.filter(pl.col("valid"))
    return rows.drop("valid"), malformed


def _read_csv(data: bytes) -> pl.DataFrame:
    return pl.read_csv(
        data,
        has_header=False,
        new_columns=list(FIELDS),
        schema=dict.fromkeys(FIELDS, pl.String),
        comment_prefix="#",
        quote_char='"',
        encoding="utf8-lossy",
        raise_if_empty=False,
    )


def _empty_rows() -> pl.DataFrame:
    schema = dict.fromkeys(FIELDS, pl.String) | {
        "seq": pl.Int64,
        "line": pl.Int64,
        "row": pl.UInt32,
    }
    return pl.DataFrame(schema=schema)


def _complete_row(line: bytes) -> bool:
    try:
        fields = next(csv.reader([line.decode("utf-8", "replace")]))
    except (csv.Error, StopIteration):
        return False
    return len(fields) == len(FIELDS)


def _read_csv_slowly(data: bytes, first_line: int) -> tuple[pl.DataFrame, list[Malformed]]:
    """Slow path for a chunk the fast reader rejects (an unbalanced quote, extra fields).

    Each line is parsed on its own with the standard csv module; lines that do not give exactly
    9 fields are reported as malformed and the rest are kept, with their line numbers.
    """
    found: list[Malformed] = []
    columns: list[list[str | None]] = [[] for _ in FIELDS]
    lines: list[int] = []
    for offset, raw in enumerate(data.split(b"\n")):
        body = raw.rstrip(b"\r")
        if not body.strip() or body.startswith(b"#"):
            continue
        try:
            fields = next(csv.reader([body.decode("utf-8", "replace")], strict=True))
        except csv.Error:
            fields = []
        if len(fields) != len(FIELDS):
            found.append(Malformed(first_line + offset, "not a 9-field protocol-log row"))
            continue
        for column, value in zip(columns, fields, strict=True):
            column.append(value or None)
        lines.append(first_line + offset)
    rows = pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(FIELDS, columns, strict=True)
        }
    ).with_row_index("row")
    return rows.with_columns(line=pl.Series("line", lines, dtype=pl.Int64)), found


def _line_numbers(data: bytes, first_line: int, count: int) -> pl.Series:
    """1-based line number of each parsed row (rows exclude ``#`` lines, which we locate)."""
    comment_lines: list[int] = []  # 0-based line offsets of '#' lines in the chunk
    if data.startswith(b"#"):
        comment_lines.append(0)
    line_at, last = 0, 0
    pos = data.find(b"\n#")
    while pos >= 0:
        line_at += data.count(b"\n", last, pos + 1)
        last = pos + 1
        comment_lines.append(line_at)
        pos = data.find(b"\n#", pos + 1)
    rows = pl.int_range(0, count, eager=True, dtype=pl.Int64)
    if not comment_lines:
        return rows + first_line
    # Row i sits after k comment lines, where k counts comments c_j with c_j - j <= i + k ...
    # equivalently, with shifted = c_j - j (non-decreasing), k = #{j : shifted_j <= i}.
    shifted = pl.Series([c - j for j, c in enumerate(comment_lines)], dtype=pl.Int64)
    k = shifted.search_sorted(rows, side="right")
    return rows + k.cast(pl.Int64) + first_line
