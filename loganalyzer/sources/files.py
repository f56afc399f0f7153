"""Find log files under the paths a user gives, and read them as line-aligned byte chunks.

Paths may be files, folders (searched recursively), globs, ``.gz`` files and ``.zip`` archives
(every member is a candidate). Archives are read as streams, never extracted to disk.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from loganalyzer.errors import LogAnalyzerError

#: Bytes read per chunk. A chunk ends at a line end, so a session may cross chunks (and files);
#: the session merge handles both the same way. 32 MiB keeps memory flat on any file size.
CHUNK_BYTES = 32 * 1024 * 1024

_HIDDEN_OR_TEMP = re.compile(r"^(\.|~\$)|(\.tmp|\.swp|~)$", re.IGNORECASE)
#: Notes that travel with bundles: never looked at inside folders.
NOTES = re.compile(r"\.(md|markdown|rst)$", re.IGNORECASE)
#: What a log search skips inside folders: notes, certificate files and scripts (name them
#: explicitly, or pass them to ``--inventory``).
NOT_LOGS = re.compile(
    r"\.(md|markdown|rst|pem|cer|crt|der|p7b|p7c|pfx|p12|key|py|ps1|psm1)$", re.IGNORECASE
)


@dataclass(frozen=True)
class LogInput:
    """One readable log: a plain file, a ``.gz`` file, or a member of a ``.zip`` archive.

    ``name`` is what reports show (``archive.zip!member/path`` for members); ``parts`` are the
    path components used to recognise the server, role and log set.
    """

    name: str
    disk_path: Path
    member: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        """Folder components of the log, outermost first (archive path, then member folders)."""
        parts = list(Path(os.path.abspath(self.disk_path)).parts)
        if self.member is not None:
            parts += list(PurePosixPath(self.member.replace("\\", "/")).parts)
        return tuple(parts[:-1])

    @property
    def file_name(self) -> str:
        """Base name of the log without a ``.gz`` suffix (``RECV2026112607-1.LOG``)."""
        base = (self.member or self.disk_path.name).replace("\\", "/").rsplit("/", 1)[-1]
        return base[:-3] if base.lower().endswith(".gz") else base

    @property
    def folder_key(self) -> str:
        """Identifies the folder that holds this log (its log set when nothing names a server)."""
        return "/".join(self.parts)

    def open(self) -> BinaryIO:
        """Open the decompressed byte stream (see ``Inflater`` for damaged data)."""
        if self.member is not None:
            raw, method = _member_data(self.disk_path, self.member)
            if method == zipfile.ZIP_DEFLATED:
                raw = Inflater(raw, -zlib.MAX_WBITS, self.name)
            if self.member.lower().endswith(".gz"):
                raw = Inflater(raw, 31, self.name)
            return raw  # type: ignore[return-value]
        handle = open(self.disk_path, "rb")  # noqa: SIM115 - the caller closes it
        if self.disk_path.name.lower().endswith(".gz"):
            return Inflater(handle, 31, self.name)  # type: ignore[return-value]
        return handle


class DamagedInputError(EOFError):
    """Compressed data ended early or is corrupt; what came before it was returned."""


class Inflater:
    """A streaming zlib/gzip decompressor that hands out every byte it could recover.

    Unlike ``gzip.GzipFile`` it does not lose the last decoded block when the data turns out to
    be truncated or corrupt: it returns what it has and raises DamagedInputError on the next
    read. ``wbits``: 31 for gzip (several members allowed), ``-15`` for raw deflate (zip).
    """

    def __init__(self, raw: BinaryIO, wbits: int, name: str) -> None:
        self.raw, self.wbits, self.name = raw, wbits, name
        self.inflater = zlib.decompressobj(wbits)
        self.pending = b""
        self.damage: str | None = None
        self.done = False

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else 1 << 20
        out = bytearray()
        while len(out) < size and not self.done:
            if self.damage is not None:
                if out:
                    break
                raise DamagedInputError(self.damage)
            data = self.pending or self.inflater.unconsumed_tail or self.raw.read(64 << 10)
            self.pending = b""
            if not data:
                if not self.inflater.eof:
                    self.damage = "compressed data ends early (truncated)"
                    continue
                self.done = True
                break
            try:
                out += self.inflater.decompress(data, size - len(out))
            except zlib.error as err:
                self.damage = f"corrupt compressed data ({err})"
                continue
            if self.inflater.eof:
                rest = self.inflater.unused_data
                if self.wbits == 31 and rest.strip(b"\0"):  # another gzip member follows
                    self.inflater = zlib.decompressobj(self.wbits)
                    self.pending = rest
                elif not rest and self.wbits == 31:
                    more = self.raw.read(64 << 10)
                    if more.strip(b"\0"):
                        self.inflater = zlib.decompressobj(self.wbits)
                        self.pending = more
                    else:
                        self.done = True
                else:
                    self.done = True
        return bytes(out)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Inflater:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _member_data(archive_path: Path, member: str) -> tuple[BinaryIO, int]:
    """The raw (still compressed) bytes of a zip member, and its compression method."""
    with zipfile.ZipFile(archive_path) as archive:
        info = archive.getinfo(member)
    with open(archive_path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"member {member!r}: bad local header")
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        data = handle.read(info.compress_size)
    return io.BytesIO(data), info.compress_type


@dataclass
class Skipped:
    """An input that was not read, and why."""

    name: str
    reason: str


@dataclass
class Discovery:
    """Result of expanding the user's paths."""

    inputs: list[LogInput] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def discover(
    paths: Iterable[str | os.PathLike[str]], ignore: re.Pattern[str] = NOT_LOGS
) -> Discovery:
    """Expand files, folders (recursively), globs and zip archives into log inputs.

    Hidden and temporary files, and names matching ``ignore`` (default: notes, certificate
    files and scripts) inside folders are ignored; unreadable
    files, FIFOs and devices
    are reported as skipped. Symbolic links to folders are not followed (no loops). Each input
    appears once, even when two paths name it.
    """
    found = Discovery()
    seen: set[tuple[str, str | None]] = set()

    def add(log: LogInput) -> None:
        key = (os.path.realpath(log.disk_path), log.member)
        if key not in seen:
            seen.add(key)
            found.inputs.append(log)

    for raw in paths:
        text = os.fspath(raw)
        candidates: list[Path]
        if any(ch in text for ch in "*?[") and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                found.skipped.append(Skipped(text, "no file matches this pattern"))
            candidates = [Path(m) for m in matches]
        else:
            candidates = [Path(text)]
        for path in candidates:
            if path.is_dir():
                for file in _walk(path, found, ignore):
                    _add_file(file, found, add)
            else:
                _add_file(path, found, add, explicit=True)
    return found


def _walk(folder: Path, found: Discovery, ignore: re.Pattern[str]) -> Iterator[Path]:
    def on_error(err: OSError) -> None:
        found.skipped.append(Skipped(str(err.filename), f"cannot read folder: {err.strerror}"))

    for root, dirs, files in os.walk(folder, onerror=on_error, followlinks=False):
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                found.skipped.append(
                    Skipped(os.path.join(root, name), "symbolic link to a folder: not followed")
                )
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not _HIDDEN_OR_TEMP.search(name) and not ignore.search(name):
                yield Path(root) / name


def _add_file(path: Path, found: Discovery, add, explicit: bool = False) -> None:
    name = str(path)
    try:
        mode = path.stat().st_mode
    except OSError as err:
        reason = "no such file or folder" if not path.exists() else f"cannot read: {err.strerror}"
        found.skipped.append(Skipped(name, reason))
        return
    if not stat.S_ISREG(mode):
        found.skipped.append(Skipped(name, "not a regular file (FIFO, device or socket)"))
        return
    if not os.access(path, os.R_OK):
        found.skipped.append(Skipped(name, "permission denied"))
        return
    if path.name.lower().endswith(".zip") or (explicit and zipfile.is_zipfile(path)):
        _add_zip(path, found, add)
        return
    add(LogInput(name=name, disk_path=path))


def _add_zip(path: Path, found: Discovery, add) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(
                (info for info in archive.infolist() if not info.is_dir()),
                key=lambda info: info.filename,
            )
    except (zipfile.BadZipFile, OSError) as err:
        found.skipped.append(Skipped(str(path), f"not a readable zip archive: {err}"))
        return
    for info in members:
        member = info.filename
        base = member.rstrip("/").rsplit("/", 1)[-1]
        if _HIDDEN_OR_TEMP.search(base) or NOTES.search(base):
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Python decompresses bzip2/LZMA members without an output bound: refuse them.
            found.skipped.append(
                Skipped(
                    f"{path}!{member}",
                    f"compression method {info.compress_type} is not read "
                    "(only stored and deflate members are)",
                )
            )
            continue
        add(LogInput(name=f"{path}!{member}", disk_path=path, member=member))


def read_head(log: LogInput, size: int = 8192) -> bytes:
    """First bytes of the decompressed stream (for format sniffing)."""
    with log.open() as stream:
        return stream.read(size)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile input from exhausting memory or disk.

    ``max_row_bytes``: a longer line is reported as malformed and skipped. ``max_inflate_ratio``
    and ``max_inflate_bytes``: a compressed input (a ``.gz`` file or a zip member) that expands
    beyond either is stopped as a likely decompression bomb; the rest of the input goes on.
    """

    max_row_bytes: int = 1 << 20
    max_inflate_ratio: int = 1000
    max_inflate_bytes: int = 20 * 10**9


DEFAULT_LIMITS = Limits()


class InflationLimitError(LogAnalyzerError):
    """A compressed input expanded beyond the configured limits."""


@dataclass
class Chunk:
    """A run of whole lines from one log; ``first_line`` is the 1-based line number of its start.

    ``dropped`` lists lines left out before this chunk's data was cut (``(line, reason)``).
    """

    data: bytes
    first_line: int
    final: bool
    dropped: list[tuple[int, str]] = field(default_factory=list)


class _Inflation:
    """Counts what a decompressing stream yields and stops it past the limits."""

    def __init__(self, stream: BinaryIO, compressed: int, name: str, limits: Limits) -> None:
        self.stream, self.compressed, self.name, self.limits = (
            stream,
            max(compressed, 1),
            name,
            limits,
        )
        self.out = 0

    def read(self, size: int) -> bytes:
        block = self.stream.read(size)
        self.out += len(block)
        ratio = self.out / self.compressed
        if self.out > self.limits.max_inflate_bytes or (
            self.out > 10_000_000 and ratio > self.limits.max_inflate_ratio
        ):
            raise InflationLimitError(
                f"stopped after {self.out:,} bytes: it expands {ratio:,.0f}:1 from "
                f"{self.compressed:,} bytes, beyond the limits ({self.limits.max_inflate_ratio}:1, "
                f"{self.limits.max_inflate_bytes:,} bytes); a decompression bomb?"
            )
        return block


def _compressed_size(log: LogInput) -> int | None:
    """Size of the compressed input, or None for a plain file."""
    if log.member is not None:
        with zipfile.ZipFile(log.disk_path) as archive:
            info = archive.getinfo(log.member)
        return info.compress_size if info.compress_type != zipfile.ZIP_STORED else None
    if log.disk_path.name.lower().endswith(".gz"):
        return log.disk_path.stat().st_size
    return None


def read_chunks(
    log: LogInput, chunk_bytes: int = CHUNK_BYTES, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Chunk]:
    """Yield the log as chunks that end at line ends (the final one may end mid-line).

    Lines longer than ``limits.max_row_bytes`` are dropped and listed in the next chunk's
    ``dropped``. On damaged input (``READ_ERRORS``) the complete lines read so far are yielded
    as a final chunk before the error is raised; ``InflationLimitError`` stops a bomb the same
    way.
    """
    line = 1
    buffer = bytearray()
    dropped: list[tuple[int, str]] = []
    skipping = False  # inside an over-long line
    compressed = _compressed_size(log)
    # Small reads from compressed streams: a damaged stream loses at most one block.
    block_size = max(1, min(chunk_bytes, 4 << 20 if compressed is None else 256 << 10))
    with log.open() as raw:
        stream = raw if compressed is None else _Inflation(raw, compressed, log.name, limits)
        while True:
            try:
                block = stream.read(block_size)
            except (*READ_ERRORS, InflationLimitError):
                cut = buffer.rfind(b"\n") + 1
                if cut or dropped:
                    yield Chunk(bytes(buffer[:cut]), line, final=True, dropped=dropped)
                raise
            if not block:
                yield Chunk(bytes(buffer), line, final=True, dropped=dropped)
                return
            if skipping:
                end = block.find(b"\n")
                if end < 0:
                    continue
                block, skipping = block[end + 1 :], False
                line += 1
            buffer += block
            start = buffer.rfind(b"\n") + 1
            if len(buffer) - start > limits.max_row_bytes:  # the line in progress is too long
                if start:
                    chunk = bytes(buffer[:start])
                    yield Chunk(chunk, line, final=False, dropped=dropped)
                    dropped = []
                    line += chunk.count(b"\n")
                dropped.append((line, f"line longer than {limits.max_row_bytes:,} bytes: skipped"))
                buffer.clear()
                skipping = True
            elif len(buffer) >= chunk_bytes and start:
                chunk = bytes(buffer[:start])
                del buffer[:start]
                yield Chunk(chunk, line, final=False, dropped=dropped)
                dropped = []
                line += chunk.count(b"\n")


#: Errors that mean "this input is damaged" rather than a bug.
READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile)
# (DamagedInputError is an EOFError.)
