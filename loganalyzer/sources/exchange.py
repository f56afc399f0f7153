"""Exchange SmtpSend / SmtpReceive protocol logs (Exchange 2007/2010 to SE).

Format (see docs/columns.md and the format reference): a UTF-8 BOM, ``#`` header lines (also
mid-file after a restart), then 9-field CSV rows ``date-time, connector-id, session-id,
sequence-number, local-endpoint, remote-endpoint, event, data, context`` with CRLF line ends.

The hot path parses a chunk with Polars' multi-threaded CSV reader and classifies every row with
vectorised string tests into an integer *kind* (below); no Python code runs per row.
"""

from __future__ import annotations

import csv
import mmap
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
# One small integer per row says which fact it carries; 0 = none.
K_DISCONNECT = 1
K_EHLO = 2
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
K_LABEL_LOCAL = 20  # "Sending certificate": the block that follows is ours
K_LABEL_REMOTE = 21  # "Remote certificate", "Received certificate", ...: the peer's
K_CERT_SUBJECT = 22
K_CERT_ISSUER = 23
K_CERT_SERIAL = 24
K_CERT_THUMBPRINT = 25
K_CERT_SANS = 26
K_ONELINE_LOCAL = 27  # one-row form "Sending certificate Subject Issuer name ..."
K_ONELINE_REMOTE = 28

CERT_FIELD_KINDS = (K_CERT_SUBJECT, K_CERT_ISSUER, K_CERT_SERIAL, K_CERT_THUMBPRINT, K_CERT_SANS)
CERT_KINDS = (K_LABEL_LOCAL, K_LABEL_REMOTE, *CERT_FIELD_KINDS, K_ONELINE_LOCAL, K_ONELINE_REMOTE)
#: Information rows whose fact is in the data column (the others' is in the context column).
DATA_KINDS = (*CERT_FIELD_KINDS, K_ONELINE_LOCAL, K_ONELINE_REMOTE)

_FIELD_CONTEXTS = {
    "Certificate subject": K_CERT_SUBJECT,
    "Certificate issuer name": K_CERT_ISSUER,
    "Certificate serial number": K_CERT_SERIAL,
    "Certificate thumbprint": K_CERT_THUMBPRINT,
    "Certificate alternate names": K_CERT_SANS,
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
)
_TLS_REPLY_PATTERN = (
    r"Must issue a STARTTLS command first|STARTTLS is required|Certificate validation failure"
    r"|cipher strength is too weak|Cannot accept TLS|Unable to initialize security subsystem"
)


_REPLY_OFFER = re.compile(r"^250[ -](?:.* )?(?:STARTTLS|X-ANONYMOUSTLS)(?: |$)")
_REPLY_QUEUED = re.compile(r"^250 (?:2\.6\.0\b|.*\bqueued\b)", re.IGNORECASE)
_REPLY_TLS = re.compile(_TLS_REPLY_PATTERN)
_COMMANDS = {"EHLO": K_EHLO, "HELO": K_EHLO, "MAIL": K_MAIL, "RCPT": K_RCPT}
_STARTTLS_COMMANDS = ("STARTTLS", "X-ANONYMOUSTLS")


def reply_kinds(data: pl.Expr) -> pl.Expr:
    """Kind of each server reply (UInt8), decided natively in Polars on every row.

    The code and first words (20 characters) say banner, STARTTLS offer (multi-row EHLO
    reply), message queued or error; a single-row EHLO reply (``250  host Hello ...``) is an
    offer when the whole line lists STARTTLS; an error reply is a TLS refusal when the whole
    line says so. (Replies carry message ids, so classifying distinct texts in Python would
    run once per message.)
    """
    prefix = data.str.slice(0, 20)

    def kind(value: int) -> pl.Expr:
        return pl.lit(value, pl.UInt8)

    return (
        pl.when(prefix.str.starts_with("220 2.0.0"))
        .then(kind(0))
        .when(prefix.str.starts_with("220 "))
        .then(kind(K_BANNER))
        .when(prefix.str.starts_with("250  "))
        .then(
            pl.when(data.str.contains(r" (?:STARTTLS|X-ANONYMOUSTLS)(?: |$)"))
            .then(kind(K_OFFER))
            .otherwise(kind(0))
        )
        .when(prefix.str.contains(_REPLY_OFFER.pattern))
        .then(kind(K_OFFER))
        .when(prefix.str.contains("(?i)" + _REPLY_QUEUED.pattern))
        .then(kind(K_QUEUED))
        .when(prefix.str.contains(r"^[45][0-9][0-9]"))
        .then(
            pl.when(data.str.contains(_TLS_REPLY_PATTERN))
            .then(kind(K_TLS_REPLY))
            .otherwise(kind(K_ERROR_REPLY))
        )
        .otherwise(kind(0))
    )


def command_kind(prefix: str) -> int:
    """Kind of a client command from its first 8 characters (EHLO/HELO, MAIL, RCPT, STARTTLS)."""
    word = prefix.split(" ", 1)[0].upper()
    if word in ("STARTTLS", "X-ANONYM"):
        return K_STARTTLS
    return _COMMANDS.get(word, 0)


def context_kind(context: str) -> int:
    """Kind of an information (``*``) row from its context text."""
    if context.startswith("TLS protocol ") and "succeeded" in context:
        return K_TLS_OK
    if context.startswith("TLS negotiation failed"):
        return K_TLS_FAIL
    if context.startswith(_TLS_VERDICT_PREFIXES):
        return K_TLS_VERDICT
    if context.startswith("Failed to connect"):
        return K_CONNECT_FAIL
    if context.startswith(_FAIL_INFO_PREFIXES):
        return K_FAIL_INFO
    if context in ("attempting to connect", "Set Session Permissions"):
        return K_PRECONNECT
    if context in _FIELD_CONTEXTS:
        return _FIELD_CONTEXTS[context]
    if _ONELINE_SUFFIX in context:
        return K_ONELINE_LOCAL if context.startswith(_LOCAL_LABELS) else K_ONELINE_REMOTE
    if context in _LOCAL_LABELS:
        return K_LABEL_LOCAL
    if context in _REMOTE_LABELS or context.startswith("CRL validation failed"):
        return K_LABEL_REMOTE
    return 0


#: Texts already classified in this process, per classifier (texts repeat across files).
_KNOWN: dict[object, dict[str, int]] = {}
_KNOWN_LIMIT = 200_000


def _lookup(column: pl.Series, classify_one) -> dict[str, int]:
    """Classify the distinct values of a column in Python (a few thousand per chunk at most)."""
    known = _KNOWN.setdefault(classify_one, {})
    if len(known) > _KNOWN_LIMIT:
        known.clear()
    kinds = {}
    for value in column.unique().to_list():
        if value is None:
            continue
        kind = known.get(value)
        if kind is None:
            kind = known[value] = classify_one(value)
        if kind:
            kinds[value] = kind
    return kinds


def _mapped(expr: pl.Expr, column: pl.Series, classify_one) -> pl.Expr:
    """``expr`` mapped to kinds through a table built from the distinct values of ``column``."""
    table = _lookup(column, classify_one)
    return expr.replace_strict(table, default=0, return_dtype=pl.UInt8)


def classify(rows: pl.DataFrame, direction: str) -> pl.DataFrame:
    """The rows that carry a session fact: ``row, sid, seq, kind, v`` (kind > 0 only).

    ``kind`` (UInt8) says which fact; ``v`` is its text (data for commands, replies and
    certificate values; context for information rows and disconnects). Client commands are
    ``<`` rows in receive logs and ``>`` rows in send logs; server replies the other way round.
    Rows are split by event first; within each group every distinct text (or prefix) is
    classified once in Python and mapped back with a hash lookup, so the cost per row is a few
    vectorised operations. Rows keep their file order within each event group, which is all
    the first/last rules need (every kind comes from one event group).
    """
    client, server = ("<", ">") if direction == "receive" else (">", "<")
    rows = rows.select("sid", "seq", "ev", "data", "ctx").with_row_index("row")
    ev = pl.col("ev")
    info = rows.filter(ev == "*").drop("ev")
    info = info.with_columns(kind=_mapped(pl.col("ctx"), info.get_column("ctx"), context_kind))
    info = info.filter(pl.col("kind") > 0).select(
        "row",
        "sid",
        "seq",
        "kind",
        v=pl.when(pl.col("kind").is_in(DATA_KINDS)).then(pl.col("data")).otherwise(pl.col("ctx")),
    )
    replies = rows.filter(ev == server).select("row", "sid", "seq", v="data")
    replies = replies.with_columns(kind=reply_kinds(pl.col("v"))).filter(pl.col("kind") > 0)
    commands = rows.filter(ev == client).select("row", "sid", "seq", v="data")
    first8 = commands.get_column("v").str.slice(0, 8)
    commands = commands.with_columns(
        kind=_mapped(pl.col("v").str.slice(0, 8), first8, command_kind)
    ).filter(pl.col("kind") > 0)
    connects = rows.filter(ev.is_in(["+", "-"])).select(
        "row",
        "sid",
        "seq",
        kind=pl.when(ev == "-").then(K_DISCONNECT).otherwise(K_CONNECT).cast(pl.UInt8),
        v=pl.when(ev == "-").then(pl.col("ctx")),
    )
    columns = ["row", "sid", "seq", "kind", "v"]
    return pl.concat([part.select(columns) for part in (info, replies, commands, connects)])


# --- parsing a chunk --------------------------------------------------------------------------


@dataclass
class Malformed:
    """A row that is not a valid protocol-log row."""

    line: int
    reason: str


def parse_chunk(
    data: bytes, first_line: int, final: bool, max_row_bytes: int = 1 << 20
) -> tuple[pl.DataFrame, list[Malformed]]:
    """Parse whole lines of a protocol log into rows with a 1-based ``line`` column.

    Returns the valid rows (columns FIELDS with ``seq`` as Int64 and ``sid`` as UInt64 (the
    16-hex-digit id as a number), plus ``line``) and the
    malformed rows found. Header lines are skipped wherever they appear; blank lines are
    ignored. The common case (headers only at the top) skips them by count, which is much
    faster than a comment test on every line.
    """
    malformed: list[Malformed] = []
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if data.find(b"\xbb") >= 0 and data.find(BOM) >= 0:  # a BOM mid-file (after a restart)
        data = data.replace(b"\n" + BOM, b"\n")
    if final and data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if not _complete_row(data[cut:].rstrip(b"\r")):
            line = first_line + data.count(b"\n", 0, cut)
            malformed.append(
                Malformed(line, "truncated last line (no line end: file still being written?)")
            )
            data = data[:cut]
    lead, offset = 0, 0
    while data.startswith(b"#", offset):
        lead += 1
        offset = data.find(b"\n", offset) + 1
        if offset == 0:
            offset = len(data)
            break
    if len(data) - offset < 256 and not data[offset:].strip():
        return _empty_rows(), malformed
    comments_inside = _line_starting_with_hash(data, offset)
    try:
        if comments_inside:
            rows = _read_csv(data, comment_prefix="#")
            line = _line_numbers(data, first_line, rows.height)
        else:
            rows = _read_csv(data, skip_rows=lead)
            line = pl.int_range(0, rows.height, eager=True, dtype=pl.Int64) + (first_line + lead)
        rows = rows.with_columns(line=line)
    except pl.exceptions.PolarsError:
        rows, found = _read_csv_slowly(data, first_line)
        malformed.extend(found)
    return _validated(rows, malformed, max_row_bytes)


def parse_mapped(
    view: mmap.mmap, max_row_bytes: int = 1 << 20
) -> tuple[pl.DataFrame, list[Malformed]] | None:
    """Fast path for a whole plain file, read through a memory map (no copy into Python).

    Applies to the common shape only: header lines at the top (after an optional BOM), no
    header line or BOM further down, a line end at the end. Returns None for anything else,
    which then goes through ``parse_chunk``.
    """
    size = len(view)
    offset = len(BOM) if view[: len(BOM)] == BOM else 0
    lead = 0
    while view[offset : offset + 1] == b"#":
        end = view.find(b"\n", offset)
        if end < 0:
            return None
        lead, offset = lead + 1, end + 1
    if lead == 0 or view[size - 1 : size] != b"\n" or _line_starting_with_hash(view, offset):
        return None
    if view.find(b"\xbb", offset) >= 0 and view.find(BOM, offset) >= 0:
        return None
    try:
        view.seek(0)
        rows = _read_csv(view, skip_rows=lead)
    except pl.exceptions.PolarsError:
        return None
    line = pl.int_range(0, rows.height, eager=True, dtype=pl.Int64) + (1 + lead)
    return _validated(rows.with_columns(line=line), [], max_row_bytes)


def _validated(
    rows: pl.DataFrame, malformed: list[Malformed], max_row_bytes: int
) -> tuple[pl.DataFrame, list[Malformed]]:
    """Typed ``seq``/``sid`` and only the valid rows; the others are reported as malformed.

    A row whose data and context exceed ``max_row_bytes`` is malformed too (bounded memory
    for what is kept per session).
    """
    seq = pl.col("seq").cast(pl.Int64, strict=False)
    sid = pl.col("sid").str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    size = pl.col("data").str.len_bytes().fill_null(0) + pl.col("ctx").str.len_bytes().fill_null(0)
    event = pl.col("ev")
    known_event = (event == "*") | (event == ">") | (event == "<") | (event == "+") | (event == "-")
    valid = (
        (pl.col("dt").str.len_bytes() == 24)
        & (size <= max_row_bytes)
        & seq.is_not_null()
        & sid.is_not_null()
        & known_event  # five compares: faster than is_in on a string column
    )
    typed = rows.with_columns(seq=seq, sid=sid, valid=valid.fill_null(False))
    if not typed.get_column("valid").all():
        # blank lines (on the raw fields) are skipped silently; anything else is reported
        blank = pl.col("dt").is_null() & pl.col("sid").is_null() & pl.col("ev").is_null()
        bad = rows.filter(~typed.get_column("valid")).filter(~blank)
        malformed.extend(
            Malformed(int(line), "not a protocol-log row (fields missing or malformed)")
            for line in bad.get_column("line").to_list()
        )
        typed = typed.filter(pl.col("valid"))
    return typed.drop("valid"), malformed


def _read_csv(data: bytes, **options) -> pl.DataFrame:
    """Polars' CSV reader with the protocol-log layout; invalid UTF-8 is replaced, not fatal."""
    settings = {
        "has_header": False,
        "new_columns": list(FIELDS),
        "schema": dict.fromkeys(FIELDS, pl.String),
        "quote_char": '"',
        "raise_if_empty": False,
        **options,
    }
    try:
        return pl.read_csv(data, **settings)
    except pl.exceptions.ComputeError as err:
        if "utf-8" not in str(err).lower() and "utf8" not in str(err).lower():
            raise
        if hasattr(data, "seek"):
            data.seek(0)
        return pl.read_csv(data, encoding="utf8-lossy", **settings)


def _empty_rows() -> pl.DataFrame:
    schema = dict.fromkeys(FIELDS, pl.String)
    schema |= {"seq": pl.Int64, "sid": pl.UInt64, "line": pl.Int64}
    return pl.DataFrame(schema=schema)


def _line_starting_with_hash(data: bytes, start: int) -> bool:
    """Is there a ``#`` line after ``start``? (``#`` is rare, so find() on it is fast.)"""
    pos = data.find(b"#", start)
    while pos >= 0:
        if pos == 0 or data[pos - 1] == 10:  # "\n"
            return True
        pos = data.find(b"#", pos + 1)
    return False


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
    )
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
