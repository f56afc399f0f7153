"""Postfix mail logs (syslog, rsyslog RFC 3339, journald ``short-iso``, container output).

Postfix writes no protocol log: its facts are free-text lines of the mail log, one event per
line, from many processes mixed together (format reference: docs/postfix-tls-log.md). This
module turns lines into *events*: one row per line of an ``smtpd`` (receive) or ``smtp``/``lmtp``
(send) process that carries a session fact. Lines are split and matched in bulk with Polars
regular expressions (one pass per distinct message shape, on that shape's lines only); no Python
code runs per line. Sessions are cut from the events in ``loganalyzer.postfix_sessions``.

Line prefixes accepted before the ``<syslog_name>/<program>[<pid>]: `` tag, in any mix: a
docker-compose ``service | `` column; a classic syslog time ``Nov 27 06:00:01`` (space- or
zero-padded day; no year, no zone) or an RFC 3339 time (``...T06:00:01.123456+01:00`` or
journald's ``+0100``); then a host name or a container level column (``INFO``); or nothing.

Event columns (``parse_chunk``):

- ``line`` Int64 (1-based), ``host`` (syslog host, null for a level column), ``svc`` (compose
  service), ``ts`` Datetime(us, UTC) for RFC 3339 lines with an offset, ``naive`` Datetime(us)
  for RFC 3339 lines without one, ``mon``/``day`` Int8 and ``hms`` (``HH:MM:SS``) for
  year-less syslog lines (times are settled by ``loganalyzer.syslog_time``)
- ``tag`` (``postfix/submission/smtpd``), ``name`` (the tag without the program), ``prog``
  (``smtpd``, ``smtp``, ``lmtp``), ``pid`` (as logged: masked pids stay text), ``kind`` (UInt8,
  the ``K_*`` constants)
- facts, null where a kind has none: ``epn``/``epa``/``epp`` (the peer's name, address and port
  from ``name[addr]:port``; a bare host name goes to ``epn``), ``qid``, ``text`` (the reason or
  detail), ``trust``, ``proto``, ``cipher``, ``bits`` (Int32: the first of ``(N/M bits)``),
  ``extra`` (the TLS 1.3 tail), ``sni``, ``cn``, ``issuer``, ``fp``, ``pkey``, ``helo``,
  ``relay`` (a relay that is not an endpoint: ``none``, ``local``), ``conn_use`` (Int32),
  ``tls_status`` (3.11 ``tls=``), ``dsn``, ``status``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from loganalyzer.errors import LogParseError
from loganalyzer.sources.files import (
    CHUNK_BYTES,
    READ_ERRORS,
    InflationLimitError,
    Limits,
    LogInput,
    Skipped,
    read_chunks,
)

if TYPE_CHECKING:
    from loganalyzer.sources import ReadStats

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RECEIVE_PROGRAMS = ("smtpd",)
SEND_PROGRAMS = ("smtp", "lmtp")
#: Postfix daemons whose tag marks a file as a Postfix mail log (sniffing).
DAEMONS = (
    "smtpd", "smtp", "lmtp", "qmgr", "cleanup", "pickup", "postscreen", "tlsproxy", "master",
    "anvil", "bounce", "error", "local", "trivial-rewrite", "scache", "verify", "showq",
    "dnsblog", "postlogd", "virtual", "pipe", "postfix-script", "sendmail", "postdrop",
    "postqueue", "postsuper", "discard", "flush", "tlsmgr", "retry",
)  # fmt: skip
_LEVELS = ("INFO", "WARN", "WARNING", "ERROR", "ERR", "DEBUG", "NOTICE", "CRIT", "FATAL", "PANIC")

_MONTH = "|".join(MONTHS)
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_PREFIX = (
    r"(?:(?P<svc>[A-Za-z0-9][\w.-]*)\s*\|\s?)?"
    rf"(?:(?P<iso>{_ISO})|(?P<mon>{_MONTH})\s+(?P<day>\d{{1,2}})\s(?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?)?"
)
#: Everything before a line's first ``]: `` (the end of the tag); the message follows it.
HEAD = re.compile(
    rf"^{_PREFIX}\s*(?:(?P<host>[^\s\[\]|]+)\s+)?"
    r"(?P<tag>(?P<name>[\w.-]+(?:/[\w.-]+)*)/(?P<prog>[a-z][\w-]*))\[(?P<pid>[^\]\s]*)\]$"
)
_TAG_END = "]: "
#: A line of another program (kernel, dovecot, ...): a timestamp we know, then anything; or
#: an unprefixed line of another Postfix daemon (``postfix/qmgr[12]: ...``).
OTHER = re.compile(
    rf"^(?:[A-Za-z0-9][\w.-]*\s*\|\s?)?(?:{_ISO}|(?:{_MONTH})\s+\d{{1,2}}\s\d\d:)"
    r"|^[\w.-]+(?:/[\w.-]+)*/[a-z][\w-]*\[[^\]\s]*\]:\s"
)
_PROGRAM_MARKS = [f"/{program}[" for program in ("smtpd", "smtp", "lmtp")]
_SNIFF = re.compile(
    rf"(?m)^[^\n]{{0,120}}?[\w.-]+(?:/[\w.-]+)*/(?:{'|'.join(DAEMONS)})\[[^\]\s]*\]: "
)

# --- event kinds ---------------------------------------------------------------------------
K_TLS_LIB = 1
# receive (smtpd)
K_CONNECT = 10
K_DISCONNECT = 11
K_R_TLS = 12
K_SSL_ACCEPT = 13
K_R_SETUP = 14
K_LOST = 15
K_REJECT = 16
K_ABORT = 17
K_CLIENT = 18
K_DISCARD = 19
K_R_PEERCERT = 20
# send (smtp, lmtp)
K_CONNECT_FAIL = 30
K_S_SETUP = 31
K_VERIFY_FAIL = 32
K_SSL_CONNECT = 33
K_S_TLS = 34
K_S_PEERCERT = 35
K_OFFER = 36
K_DELIVERY = 37
K_REASON = 38

KIND_NAMES = {value: name[2:].lower() for name, value in globals().items() if name.startswith("K_")}

_EP = r"(?P<epn>[^\s\[\]]*)\[(?P<epa>[^\]\s]*)\](?::(?P<epp>\d+))?"
_EPB = rf"(?:{_EP}|(?P<epb>[^\s:\[\]]+))"
_SUMMARY = (
    r"(?:: (?P<proto>\S+) with cipher (?P<cipher>\S+) \((?P<bits>\d+)/\d+ bits\)(?P<extra>.*))?$"
)
_TRUST = r"^(?:(?P<trust>Anonymous|Untrusted|Trusted|Verified) )?"
_PEERCERT = (
    rf"^{_EPB}: (?:(?:Matched|Trusted|Untrusted|Verified|Unverified):? )?"
    r"subject_CN=(?P<cn>.*?), issuer(?:_CN)?=(?P<issuer>.*?)"
    r"(?:, (?:cert )?fingerprint=(?P<fp>[0-9A-Fa-f:]+))?"
    r"(?:, pkey[_ ]fingerprint=(?P<pkey>[0-9A-Fa-f:]+))?$"
)
_PEERCERT_START = r"^\S+: (?:\w+:? )?subject_CN="
_SEND_REASONS = (
    r"Cannot start TLS|Server certificate not|TLS is required|lost connection with|"
    r"conversation with|host \S+ (?:said|refused)"
)
_QID = r"(?P<qid>[0-9A-Za-z]+)"

#: kind -> (how to recognise it cheaply, the full pattern that extracts its facts).
#: A line recognised but not matched by the full pattern is reported as malformed.
RECEIVE_SHAPES: dict[int, tuple[pl.Expr, str]] = {}
SEND_SHAPES: dict[int, tuple[pl.Expr, str]] = {}


def _shapes() -> None:
    msg = pl.col("msg")
    RECEIVE_SHAPES.update(
        {
            K_CONNECT: (msg.str.starts_with("connect from "), rf"^connect from {_EP}$"),
            K_DISCONNECT: (
                msg.str.starts_with("disconnect from "),
                rf"^disconnect from {_EP}(?: (?P<text>.*))?$",
            ),
            K_R_TLS: (
                msg.str.contains(r"^(?:\w+ )?TLS connection established from "),
                rf"{_TRUST}TLS connection established from {_EP}(?: to (?P<sni>\S+))?{_SUMMARY}",
            ),
            K_SSL_ACCEPT: (
                msg.str.starts_with("SSL_accept error from "),
                rf"^SSL_accept error from {_EP}: (?P<text>.*)$",
            ),
            K_R_SETUP: (
                msg.str.starts_with("setting up TLS connection from "),
                rf"^setting up TLS connection from {_EP}$",
            ),
            K_LOST: (
                msg.str.contains(r"^(?:\S+: )?(?:lost connection|timeout|too many errors) after "),
                r"^(?:\S+: )?(?P<text>(?:lost connection|timeout|too many errors) after \S+)"
                rf"(?: \(\d+ bytes\))? from {_EP}$",
            ),
            K_REJECT: (
                msg.str.contains(r"^\S+: (?:milter-)?reject: "),
                rf"^{_QID}: (?:milter-)?reject: \S+ from {_EP}: (?P<text>[^;]*)"
                r"(?:;.*?helo=<(?P<helo>.*)>)?",
            ),
            K_ABORT: (
                msg.str.starts_with("NOQUEUE: abort: TLS from "),
                rf"^NOQUEUE: abort: TLS from {_EP}: (?P<text>.*)$",
            ),
            K_CLIENT: (msg.str.contains(r"^[0-9A-Za-z]+: client="), rf"^{_QID}: client="),
            K_DISCARD: (
                msg.str.starts_with("discarding EHLO keywords: "),
                r"^discarding EHLO keywords: (?P<text>.*)$",
            ),
            K_R_PEERCERT: (msg.str.contains(_PEERCERT_START), _PEERCERT),
            K_TLS_LIB: (
                msg.str.starts_with("warning: TLS library problem: "),
                r"^warning: TLS library problem: (?P<text>.*)$",
            ),
        }
    )
    SEND_SHAPES.update(
        {
            K_CONNECT_FAIL: (
                msg.str.starts_with("connect to "),
                rf"^(?P<text>connect to {_EPB}: .*)$",
            ),
            K_S_SETUP: (
                msg.str.starts_with("setting up TLS connection to "),
                rf"^setting up TLS connection to {_EPB}$",
            ),
            K_VERIFY_FAIL: (
                msg.str.contains(r"^(?:\w+ )?certificate verification failed for "),
                rf"^(?:(?:server|CA) )?certificate verification failed for {_EPB}: (?P<text>.*)$",
            ),
            K_SSL_CONNECT: (
                msg.str.starts_with("SSL_connect error to "),
                rf"^SSL_connect error to {_EPB}: (?P<text>.*)$",
            ),
            K_S_TLS: (
                msg.str.contains(r"^(?:\w+ )?TLS connection (?:established|reused) to "),
                rf"{_TRUST}TLS connection (?:established|reused) to {_EPB}{_SUMMARY}",
            ),
            K_S_PEERCERT: (msg.str.contains(_PEERCERT_START), _PEERCERT),
            K_OFFER: (
                msg.str.starts_with("Host offered STARTTLS: "),
                r"^Host offered STARTTLS: \[(?P<text>[^\]]*)\]$",
            ),
            K_DELIVERY: (
                msg.str.contains(r"^[0-9A-Za-z]+: to=<"),
                rf"^{_QID}: to=<[^>]*>,(?: orig_to=<[^>]*>,)? relay=(?:{_EP}|(?P<relay>[^,\s]+)),"
                r"(?: conn_use=(?P<conn_use>\d+),)? delay=[^,]*, delays=[^,]*,"
                r"(?: tls=(?P<tls_status>[^,]*),)? dsn=(?P<dsn>[^,]*), status=(?P<status>[a-z]+)"
                r"(?: \((?P<text>.*)\))?$",
            ),
            K_REASON: (
                msg.str.contains(rf"^[0-9A-Za-z]+: (?:{_SEND_REASONS})"),
                rf"^{_QID}: (?P<text>(?:{_SEND_REASONS}).*)$",
            ),
            K_TLS_LIB: RECEIVE_SHAPES[K_TLS_LIB],
        }
    )


_shapes()

#: Event columns and their types (see the module docstring).
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64,
    "host": pl.String,
    "svc": pl.String,
    "ts": pl.Datetime("us", "UTC"),
    "naive": pl.Datetime("us"),
    "mon": pl.Int8,
    "day": pl.Int8,
    "hms": pl.String,
    "tag": pl.String,
    "name": pl.String,
    "prog": pl.String,
    "pid": pl.String,
    "kind": pl.UInt8,
    "epn": pl.String,
    "epa": pl.String,
    "epp": pl.Int32,
    "qid": pl.String,
    "text": pl.String,
    "trust": pl.String,
    "proto": pl.String,
    "cipher": pl.String,
    "bits": pl.Int32,
    "extra": pl.String,
    "sni": pl.String,
    "cn": pl.String,
    "issuer": pl.String,
    "fp": pl.String,
    "pkey": pl.String,
    "helo": pl.String,
    "relay": pl.String,
    "conn_use": pl.Int32,
    "tls_status": pl.String,
    "dsn": pl.String,
    "status": pl.String,
}


@dataclass(frozen=True)
class Malformed:
    """A line that is not a mail-log line, or a session line whose shape is not understood."""

    line: int
    reason: str


def sniff(head: bytes) -> bool:
    """True when the first bytes hold a Postfix log line (``postfix/smtpd[123]: ...``)."""
    text = head.decode("utf-8", "replace")
    return _SNIFF.search(text) is not None


def empty_events() -> pl.DataFrame:
    """An event frame with no rows."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def parse_chunk(data: bytes, first_line: int) -> tuple[pl.DataFrame, list[Malformed]]:
    """Whole lines of a mail log -> (session events, malformed lines).

    Lines of other programs (anything with a known timestamp and no Postfix tag) and Postfix
    lines that carry no session fact are dropped silently; a non-empty line with neither a
    timestamp nor a Postfix tag, and a session line whose shape is not understood, are
    malformed. See the module docstring for the event columns.
    """
    text = data.decode("utf-8", "replace")
    if not text.strip():
        return empty_events(), []
    lines = (
        pl.DataFrame({"raw": [text]})
        .select(pl.col("raw").str.split("\n"))
        .explode("raw")
        .with_row_index("line", offset=first_line)
        .with_columns(pl.col("line").cast(pl.Int64), pl.col("raw").str.strip_suffix("\r"))
    )
    if text.endswith("\n"):
        lines = lines.head(lines.height - 1)
    # Only lines that name an smtpd/smtp/lmtp process go through the full line pattern.
    candidate = pl.col("raw").str.contains_any(_PROGRAM_MARKS)
    end = pl.col("raw").str.find(_TAG_END, literal=True)
    parts = (
        lines.filter(candidate)
        .with_columns(
            m=pl.col("raw").str.slice(0, end + 1).str.extract_groups(HEAD.pattern),
            msg=pl.col("raw").str.slice(end + len(_TAG_END)),
        )
        .unnest("m")
    )
    tagged = pl.col("tag").is_not_null()
    blank = pl.col("raw").str.strip_chars() == ""
    strays = pl.concat(
        [lines.filter(~candidate & ~blank), parts.filter(~tagged).select("line", "raw")]
    )
    malformed = [
        Malformed(line, "not a mail-log line (no known timestamp and no Postfix tag)")
        for line in strays.filter(~pl.col("raw").str.contains(OTHER.pattern))["line"].to_list()
    ]
    ours = parts.filter(tagged & pl.col("prog").is_in([*RECEIVE_PROGRAMS, *SEND_PROGRAMS])).drop(
        "raw"
    )
    if ours.is_empty():
        return empty_events(), malformed
    ours = _with_times(ours)
    events, unknown = _classify(ours)
    malformed += [
        Malformed(line, f"unrecognised {KIND_NAMES[kind]} line")
        for line, kind in unknown.select("line", "kind").iter_rows()
    ]
    return events, malformed


def _with_times(rows: pl.DataFrame) -> pl.DataFrame:
    """Parse the prefix: RFC 3339 times to UTC (or naive without an offset), syslog fields."""
    iso = pl.col("iso").str.replace(",", ".", literal=True)
    has_offset = iso.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$")
    with_offset = iso.str.replace(r"Z$", "+0000")
    month = pl.col("mon").replace_strict(
        {m: i + 1 for i, m in enumerate(MONTHS)}, default=None, return_dtype=pl.Int8
    )
    host = pl.col("host")
    return rows.with_columns(
        ts=pl.when(has_offset).then(
            with_offset.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", time_zone="UTC", strict=False
            )
        ),
        naive=pl.when(~has_offset).then(
            iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
        ),
        mon=month,
        day=pl.col("day").cast(pl.Int8, strict=False),
        host=pl.when(host.is_in(_LEVELS)).then(None).otherwise(host),
    ).drop("iso")


def _classify(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Kind and facts of every line: (events, recognised lines whose shape did not match).

    Shapes are tried in their table's order, each on the lines no earlier shape took, so the
    commonest lines are taken first and later tests run on few lines.
    """
    pieces, unknown = [], []
    for shapes, programs in ((RECEIVE_SHAPES, RECEIVE_PROGRAMS), (SEND_SHAPES, SEND_PROGRAMS)):
        left = rows.filter(pl.col("prog").is_in(programs))
        for code, (test, pattern) in shapes.items():
            if left.is_empty():
                break
            hit = left.select(test).to_series()
            subset = left.filter(hit).with_columns(kind=pl.lit(code, pl.UInt8))
            left = left.filter(~hit)
            if subset.is_empty():
                continue
            ok = subset.select(pl.col("msg").str.contains(pattern)).to_series()
            unknown.append(subset.filter(~ok).select("line", "kind"))
            matched = subset.filter(ok)
            facts = matched.with_columns(f=pl.col("msg").str.extract_groups(pattern)).unnest("f")
            pieces.append(facts)
    events = pl.concat(pieces, how="diagonal_relaxed") if pieces else empty_events()
    events = _normalise(events).sort("line")
    if not unknown:
        return events, pl.DataFrame(schema={"line": pl.Int64, "kind": pl.UInt8})
    return events, pl.concat(unknown, how="vertical_relaxed")


def _normalise(events: pl.DataFrame) -> pl.DataFrame:
    """Typed event columns in EVENT_SCHEMA order (the bare host name joins ``epn``)."""
    if "epb" in events.columns:
        events = events.with_columns(epn=pl.coalesce("epn", "epb"))
    return events.select(
        pl.col(c).cast(t, strict=False) if c in events.columns else pl.lit(None, t).alias(c)
        for c, t in EVENT_SCHEMA.items()
    )


def read_file(
    log: LogInput,
    *,
    strict: bool,
    chunk_bytes: int | None,
    limits: Limits,
) -> tuple[pl.DataFrame, ReadStats]:
    """All session events of one mail log, and what reading it went through (runs in a worker).

    Malformed lines are counted in the stats as ``file:line: reason`` (with ``strict`` the first
    one raises LogParseError); a damaged compressed file keeps the lines read before the damage.
    """
    from loganalyzer.sources import ReadStats  # the registry imports this module

    stats = ReadStats(files=1)
    pieces = []

    def take(data: bytes, first_line: int, dropped: list[tuple[int, str]]) -> None:
        events, malformed = parse_chunk(data, first_line)
        stats.bytes += len(data)
        stats.rows += data.count(b"\n")
        for line, reason in [*dropped, *((m.line, m.reason) for m in malformed)]:
            if strict:
                raise LogParseError(log.name, line, reason)
            stats.add_malformed(f"{log.name}:{line}: {reason}")
        if events.height:
            pieces.append(events)

    try:
        for chunk in read_chunks(log, chunk_bytes or CHUNK_BYTES, limits):
            take(chunk.data, chunk.first_line, chunk.dropped)
    except READ_ERRORS as err:
        _skipped(stats, log, f"damaged, read up to the damage: {err}", strict)
    except InflationLimitError as err:
        _skipped(stats, log, str(err), strict)
    events = pl.concat(pieces, how="vertical_relaxed") if pieces else empty_events()
    return events, stats


def _skipped(stats: ReadStats, log: LogInput, reason: str, strict: bool) -> None:
    if strict:
        raise LogParseError(log.name, None, reason)
    stats.skipped.append(Skipped(log.name, reason))
