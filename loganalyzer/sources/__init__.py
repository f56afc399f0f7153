"""Log sources: find inputs, recognise their format, and yield parsed, classified row batches.

Two formats are read. The Exchange protocol log: its module provides ``sniff(head, log)`` and
``parse_chunk(data, first_line, final)`` plus ``classify(rows, direction)``. The Postfix mail
log: ``split_formats`` picks those inputs out (by content), in the order their lines were
written, and ``postfix.read_file`` parses each into session events.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from loganalyzer.errors import LogParseError
from loganalyzer.sources import exchange, postfix
from loganalyzer.sources.files import (
    CHUNK_BYTES,
    DEFAULT_LIMITS,
    READ_ERRORS,
    InflationLimitError,
    Limits,
    LogInput,
    Skipped,
    discover,
    read_chunks,
    read_head,
)

__all__ = [
    "Batch",
    "Limits",
    "LogSet",
    "ReadStats",
    "disk_size",
    "find_logs",
    "iter_batches",
    "read_log",
    "rotation_family",
    "split_formats",
]

_ROLES = {"frontend": "FrontEnd", "hub": "Hub", "edge": "Edge", "mailbox": "Mailbox"}
#: Folder names of an Exchange install or log tree: never a server name.
_EXCHANGE_FOLDERS = {
    "smtpreceive", "smtpsend", "delivery", "submission", "protocollog", "logs", "transportroles",
    "frontend", "hub", "edge", "mailbox", "v14", "v15", "exchange server", "microsoft",
    "program files", "exchangeserver",
}  # fmt: skip
_GENERIC_FOLDERS = {"", "/", "logs", "log", "tmp", "temp", "data", "c:\\", "c$", "d$", "e$"}


@dataclass(frozen=True)
class LogSet:
    """Files written by one transport service of one server in one direction (shared ids)."""

    server: str | None
    role: str | None
    direction: str
    folder: str


@dataclass
class ReadStats:
    """What a read went through: counts, skipped inputs and malformed rows (first few kept)."""

    files: int = 0
    bytes: int = 0
    rows: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    sessions: int = 0
    malformed_fields: int = 0
    malformed_field_examples: list[str] = field(default_factory=list)

    def add_malformed(self, example: str) -> None:
        """Count a malformed row; keep the first few as ``file:line: reason``."""
        self.malformed += 1
        if len(self.malformed_examples) < 10:
            self.malformed_examples.append(example)

    def merge(self, other: ReadStats) -> None:
        """Add another read's counts (from a worker process)."""
        self.files += other.files
        self.bytes += other.bytes
        self.rows += other.rows
        self.malformed += other.malformed
        room = 10 - len(self.malformed_examples)
        self.malformed_examples += other.malformed_examples[: max(room, 0)]
        self.skipped += other.skipped

    def as_dict(self) -> dict:
        """Plain-data form (for DataFrame.attrs and JSON)."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "rows": self.rows,
            "malformed": self.malformed,
            "malformed_examples": list(self.malformed_examples),
            "skipped": [{"file": s.name, "reason": s.reason} for s in self.skipped],
            "sessions": self.sessions,
            "malformed_fields": self.malformed_fields,
            "malformed_field_examples": list(self.malformed_field_examples),
        }


@dataclass
class Batch:
    """Parsed rows of one chunk of one log, and its fact rows (``exchange.classify``)."""

    logset: LogSet
    log: LogInput
    rows: pl.DataFrame
    facts: pl.DataFrame


def log_set_of(log: LogInput, direction: str, server: str | None) -> LogSet:
    """Server and role from the path (``EX01/.../FrontEnd/ProtocolLog/SmtpReceive``)."""
    parts = log.parts
    lowered = [p.lower() for p in parts]
    role = None
    for i, name in enumerate(lowered):
        if name in _ROLES and "protocollog" in lowered[i + 1 : i + 3]:
            role = _ROLES[name]
        elif name == "protocollog" and role is None and i > 0 and lowered[i - 1] == "logs":
            role = "Hub"  # Exchange 2010: TransportRoles\Logs\ProtocolLog
    if server is None:
        server = _server_from_parts(parts, lowered)
    return LogSet(server=server, role=role, direction=direction, folder=log.folder_key)


def _server_from_parts(parts: tuple[str, ...], lowered: list[str]) -> str | None:
    marks = [i for i, name in enumerate(lowered) if name in _EXCHANGE_FOLDERS]
    if not marks:
        return None
    i = marks[0] - 1
    while i >= 0 and lowered[i] in _EXCHANGE_FOLDERS:
        i -= 1
    if i < 0:
        return None
    name = parts[i]
    if name.lower() in _GENERIC_FOLDERS or name.endswith((":", ":\\")):
        return None
    if name.lower().endswith(".zip"):
        name = name[:-4]
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name) else None


def canonical_order(log: LogInput) -> tuple:
    """Canonical order: by folder, then by file name with numbers compared as numbers."""
    name = log.file_name.lower()
    natural = tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))
    return (log.folder_key.lower(), natural, log.name)


def find_logs(
    paths: Iterable[str | os.PathLike[str]], stats: ReadStats, *, strict: bool = False
) -> list[LogInput]:
    """Expand the user's paths into inputs in canonical order (skips go to ``stats``)."""
    found = discover(paths)
    for skip in found.skipped:
        record_skip(stats, skip, strict)
    return sorted(found.inputs, key=canonical_order)


#: Rotated mail logs: ``mail.log.1``, ``mail.log.2.gz`` (older with higher numbers) or dated
#: ``maillog-20261127``; the live file has no suffix and is the newest.
_ROTATION = re.compile(r"^(?P<base>.+?)(?:\.(?P<number>\d{1,4})|-(?P<date>\d{8,10}))$")
#: Bytes looked at to recognise a mail log (other programs' lines may come first).
POSTFIX_SNIFF_BYTES = 64 * 1024


def split_formats(logs: list[LogInput]) -> tuple[list[LogInput], list[LogInput]]:
    """(Exchange and unknown inputs, Postfix mail logs): the latter recognised by content and
    ordered per folder oldest first (``mail.log.2.gz``, ``mail.log.1``, ``mail.log``).

    Unreadable inputs stay in the first list, where reading reports them.
    """
    others, mail_logs = [], []
    for log in logs:
        try:
            head = read_head(log)
            if head and exchange.sniff(head, log) is None:
                head = read_head(log, POSTFIX_SNIFF_BYTES) if len(head) == 8192 else head
                if postfix.sniff(head):
                    mail_logs.append(log)
                    continue
        except READ_ERRORS:
            pass
        others.append(log)
    return others, sorted(mail_logs, key=_written_order)


def _rotation(log: LogInput) -> tuple[str, float]:
    """(base name, generation: higher is newer) of a possibly rotated mail log."""
    match = _ROTATION.match(log.file_name)
    if match is None:
        return log.file_name.lower(), float("inf")
    if match.group("number") is not None:
        return match.group("base").lower(), -int(match.group("number"))
    return match.group("base").lower(), int(match.group("date"))


def rotation_family(log: LogInput) -> tuple[str, str]:
    """(folder, base name): ``mail.log``, ``mail.log.1`` and ``mail.log.2.gz`` are one."""
    return log.folder_key.lower(), _rotation(log)[0]


def _written_order(log: LogInput) -> tuple:
    base, generation = _rotation(log)
    return (log.folder_key.lower(), base, generation, log.name)


def sniff_log_set(
    log: LogInput, stats: ReadStats, *, server: str | None, strict: bool
) -> tuple[LogSet, bytes] | None:
    """The log set of an Exchange protocol log (from its header and path) and the head read;
    None (the skip recorded in ``stats``, or LogParseError with ``strict``) when it is
    unreadable or no protocol log."""
    try:
        head = read_head(log)
    except READ_ERRORS as err:
        record_skip(stats, Skipped(log.name, f"cannot read: {err}"), strict)
        return None
    sniffed = exchange.sniff(head, log) if head else None
    if sniffed is None:
        record_skip(stats, Skipped(log.name, _not_a_log(head)), strict)
        return None
    return log_set_of(log, sniffed.direction, server), head


def read_log(
    log: LogInput,
    stats: ReadStats,
    *,
    server: str | None = None,
    strict: bool = False,
    chunk_bytes: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[Batch]:
    """Read one input: recognise its format, then yield parsed and classified batches.

    Skips and malformed rows are recorded in ``stats``; with ``strict`` the first one raises
    LogParseError instead.
    """
    sniffed = sniff_log_set(log, stats, server=server, strict=strict)
    if sniffed is None:
        return
    logset = sniffed[0]
    stats.files += 1
    kwargs = {"chunk_bytes": chunk_bytes} if chunk_bytes else {}

    def batch(parsed: tuple, size: int) -> Batch | None:
        rows, malformed = parsed
        stats.bytes += size
        for bad in malformed:
            if strict:
                raise LogParseError(log.name, bad.line, bad.reason)
            stats.add_malformed(f"{log.name}:{bad.line}: {bad.reason}")
        if not rows.height:
            return None
        stats.rows += rows.height
        return Batch(logset, log, rows, exchange.classify(rows, logset.direction))

    mapped = _parse_mapped(log, chunk_bytes or CHUNK_BYTES, limits.max_row_bytes)
    if mapped is not None:
        if (found := batch(mapped, disk_size(log))) is not None:
            yield found
        return
    try:
        for chunk in read_chunks(log, limits=limits, **kwargs):
            rows, malformed = exchange.parse_chunk(
                chunk.data, chunk.first_line, chunk.final, limits.max_row_bytes
            )
            dropped = [exchange.Malformed(line, reason) for line, reason in chunk.dropped]
            if (found := batch((rows, dropped + malformed), len(chunk.data))) is not None:
                yield found
    except READ_ERRORS as err:
        record_skip(stats, Skipped(log.name, f"damaged, read up to the damage: {err}"), strict)
    except InflationLimitError as err:
        record_skip(stats, Skipped(log.name, str(err)), strict)


def _parse_mapped(log: LogInput, limit: int, max_row_bytes: int):
    """The memory-mapped fast path for a plain file up to ``limit`` bytes, else None."""
    if log.member is not None or log.disk_path.name.lower().endswith(".gz"):
        return None
    try:
        with open(log.disk_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if not 0 < size <= limit:
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return exchange.parse_mapped(view, max_row_bytes)
    except (OSError, ValueError):
        return None


def iter_batches(
    paths: Iterable[str | os.PathLike[str]],
    stats: ReadStats,
    *,
    server: str | None = None,
    strict: bool = False,
    on_file: Callable[[LogInput, int], None] | None = None,
    chunk_bytes: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[Batch]:
    """Read every protocol log under ``paths`` and yield batches in canonical order.

    ``on_file(log, disk_bytes)`` is called after each input (for progress bars).
    """
    for log in find_logs(paths, stats, strict=strict):
        yield from read_log(
            log, stats, server=server, strict=strict, chunk_bytes=chunk_bytes, limits=limits
        )
        if on_file is not None:
            on_file(log, disk_size(log))


def _not_a_log(head: bytes) -> str:
    """Why a file is not read as a log (an inventory export gets a pointer to --inventory)."""
    if not head:
        return "empty file"
    from loganalyzer.inventory import connectors, exchange_certs  # only for files that are no logs

    text = head.decode("utf-8-sig", "replace")
    try:
        export = exchange_certs.sniff(text) or connectors.sniff(text)
    except Exception:  # a sniffer must never stop the read
        export = False
    if export:
        return "an Exchange certificate or connector export, not a log (use --inventory)"
    return "not an Exchange SMTP protocol log or a Postfix mail log"


def record_skip(stats: ReadStats, skip: Skipped, strict: bool) -> None:
    """Count a skipped input in ``stats``; with ``strict`` raise LogParseError instead."""
    if strict:
        raise LogParseError(skip.name, None, skip.reason)
    stats.skipped.append(skip)


def disk_size(log: LogInput) -> int:
    """Bytes on disk of a plain or gzipped file (0 for archive members)."""
    try:
        return log.disk_path.stat().st_size if log.member is None else 0
    except OSError:
        return 0
