"""Build the session table (DESIGN.md contract 1): the library's ``read_sessions``.

Each input is parsed chunk by chunk and every chunk is reduced at once to per-session partials
(aggregate.py), so memory holds a chunk plus the partials. Inputs are independent, so they are
parsed in worker processes when there is enough to read. After the last input the partials are
merged (sessions crossing chunks and files become one row) and the columns derived (derive.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from functools import partial

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer.aggregate import merge_partials
from loganalyzer.derive import log_set_sessions, to_session_table
from loganalyzer.errors import NoInputError
from loganalyzer.postfix_sessions import sessions_from_files
from loganalyzer.schema import empty_sessions, to_pandas
from loganalyzer.sources import (
    Limits,
    LogSet,
    ReadStats,
    disk_size,
    find_logs,
    postfix,
    split_formats,
)
from loganalyzer.sources.files import LogInput
from loganalyzer.syslog_time import zone_by_name
from loganalyzer.worker import FilePartials, file_partials

DEFAULT_FALLBACK_WINDOW = timedelta(minutes=15)
#: Inputs smaller than this in total are read in this process (starting workers costs more).
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


class _Collector:
    """Collects partials per log set in canonical order, with chunk and file ids."""

    def __init__(self) -> None:
        self.partials: dict[LogSet, list[pl.DataFrame]] = {}
        self.chunks = 0
        self.files: dict[str, int] = {}

    def add(self, logset: LogSet, file_name: str, part: pl.DataFrame) -> None:
        ids = {
            "logset": pl.lit(0, pl.UInt32),
            "chunk": pl.lit(self.chunks, pl.UInt32),
            "file": pl.lit(self.files.setdefault(file_name, len(self.files)), pl.UInt32),
        }
        self.chunks += 1
        part = part.with_columns(pl.col(pl.String).cast(pl.Categorical), **ids)
        self.partials.setdefault(logset, []).append(part)

    def table(
        self, *, fallback_window: timedelta, server: str | None, extra: list[pl.DataFrame]
    ) -> pa.Table:
        """The session table: each log set merged and derived on its own, then all sorted
        together with ``extra`` (sessions of other formats, already in the table's columns)."""
        files = pl.DataFrame(
            {"file": list(self.files.values()), "file_name": list(self.files)},
            schema={"file": pl.UInt32, "file_name": pl.String},
        )
        tables = []
        while self.partials:
            logset, parts = self.partials.popitem()
            tables.append(
                log_set_sessions(
                    merge_partials(parts),
                    direction=logset.direction,
                    path_server=logset.server,
                    role=logset.role,
                    files=files,
                    fallback_window=fallback_window,
                    server=server,
                )
            )
            del parts
        return to_session_table([*tables, *extra])


def _read_all(logs: list[LogInput], work: Callable, jobs: int) -> Iterator[FilePartials]:
    """Run ``work(log)`` over the inputs, in order: here or in ``jobs`` processes.

    Worker processes start with spawn (safe beside threads, and the Windows default) and run
    Polars single-threaded, so ``jobs`` is the number of cores the parsing uses.
    """
    total = sum(disk_size(log) for log in logs)
    if jobs <= 1 or len(logs) < 2 or total < PARALLEL_MIN_BYTES:
        for log in logs:
            yield work(log)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(logs)), mp_context=context) as pool:
        with _worker_start_environment():
            futures = deque(pool.submit(work, log) for log in logs)
        while futures:  # popped as consumed, so finished results are not kept twice
            yield futures.popleft().result()


@contextlib.contextmanager
def _worker_start_environment():
    """While workers are spawned: single-threaded Polars, and no re-run of the caller's script.

    Spawned workers normally import the parent's ``__main__`` (a user's script or notebook);
    ours need only loganalyzer, so the main module is hidden from multiprocessing meanwhile.
    """
    main = sys.modules.get("__main__")
    saved = {
        name: main.__dict__[name]
        for name in ("__file__", "__spec__")
        if main and name in main.__dict__
    }
    previous = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = "1"  # inherited by the workers spawned meanwhile
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
        if previous is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = previous


def read_sessions(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    server: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fallback_window: timedelta = DEFAULT_FALLBACK_WINDOW,
    strict: bool = False,
    jobs: int | None = None,
    limits: Limits | None = None,
    on_file: Callable | None = None,
    chunk_bytes: int | None = None,
    syslog_year: int | None = None,
    syslog_tz: str | None = None,
) -> pd.DataFrame:
    """Read protocol logs and return one row per SMTP session (DESIGN.md contract 1).

    :param paths: files, folders (recursive), globs, ``.gz`` files, ``.zip`` archives: Exchange
        protocol logs and Postfix mail logs (recognised by content), alone or mixed.
    :param server: server name for logs whose path and connector-id name none.
    :param since, until: keep sessions overlapping this window (timezone-aware datetimes).
    :param fallback_window: how soon after a failed TLS session a plaintext one is a fallback.
    :param strict: raise LogParseError at the first malformed row or skipped input.
    :param jobs: cores to use (default: all); inputs are parsed in that many processes.
    :param limits: row length and decompression limits (``loganalyzer.Limits``).
    :param on_file: called as ``on_file(log, disk_bytes)`` after each input (progress bars).
    :param chunk_bytes: bytes per parsing chunk (memory per worker; default 32 MiB).
    :param syslog_year: year of the newest year-less line of a Postfix mail log (classic syslog
        ``Nov 27 06:00:01``); default: each file's modification year. A New Year is seen where
        the month goes back (Dec -> Jan).
    :param syslog_tz: IANA zone of times written without one (default: this machine's zone).
    :returns: pandas DataFrame with Arrow dtypes, ordered by start_utc, server, session_id.
        ``df.attrs["read_stats"]`` holds files, rows, malformed rows and skipped inputs.
    :raises NoInputError: when no readable protocol log was found.

    .. code-block:: python

        df = loganalyzer.read_sessions("collected-logs/")
        df[df.fallback][["server", "remote_ip", "start_utc"]]
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    zone = zone_by_name(syslog_tz)
    stats = ReadStats()
    logs, mail_logs = split_formats(find_logs(paths, stats, strict=strict))
    work = partial(
        file_partials,
        server=server,
        strict=strict,
        chunk_bytes=chunk_bytes,
        limits=limits or Limits(),
    )
    collector = _Collector()
    for log, (partials, file_stats) in zip(
        logs, _read_all(logs, work, jobs or os.cpu_count() or 1), strict=True
    ):
        stats.merge(file_stats)
        for logset, part in partials:
            collector.add(logset, log.name, part)
        if on_file is not None:
            on_file(log, disk_size(log))
    postfix = _postfix_sessions(
        mail_logs, stats, jobs, server, strict, chunk_bytes, limits, on_file,
        fallback_window=fallback_window, year=syslog_year, zone=zone,
    )  # fmt: skip
    if stats.files == 0:
        raise NoInputError(_nothing_readable(stats))
    if not collector.partials and not postfix:
        df = empty_sessions()
    else:
        table = collector.table(fallback_window=fallback_window, server=server, extra=postfix)
        df = to_pandas(table)
        df = filter_window(df, since, until)
    stats.sessions = len(df)
    _count_malformed_fields(df, stats)
    df.attrs["read_stats"] = stats.as_dict()
    return df


def _postfix_sessions(
    logs, stats, jobs, server, strict, chunk_bytes, limits, on_file, **options
) -> list[pl.DataFrame]:
    """Sessions of the Postfix mail logs (read in parallel like the protocol logs)."""
    if not logs:
        return []
    work = partial(
        postfix.read_file, strict=strict, chunk_bytes=chunk_bytes, limits=limits or Limits()
    )

    def read():
        for log, (events, file_stats) in zip(
            logs, _read_all(logs, work, jobs or os.cpu_count() or 1), strict=True
        ):
            stats.merge(file_stats)
            if on_file is not None:
                on_file(log, disk_size(log))
            yield log, events

    return sessions_from_files(read(), stats, server=server, strict=strict, **options)


#: Certificate fields that Exchange writes as hex; other values (masked ones) are kept as logged.
_HEX_FIELDS = (
    "local_cert_thumbprint", "local_cert_serial", "remote_cert_thumbprint", "remote_cert_serial",
)  # fmt: skip


def _count_malformed_fields(df: pd.DataFrame, stats: ReadStats) -> None:
    """Count certificate thumbprints and serials that are not hex (kept, never invented)."""
    for column in _HEX_FIELDS:
        values = df[column]
        bad = (values.notna() & ~values.str.fullmatch(r"[0-9A-Fa-f]+")).fillna(False).astype(bool)
        stats.malformed_fields += int(bad.sum())
        for row in df.loc[bad, ["file", "line", column]].head(5).itertuples(index=False):
            if len(stats.malformed_field_examples) < 10:
                stats.malformed_field_examples.append(
                    f"{row.file}:{row.line}: {column} {row[2]!r} is not hex (kept as logged)"
                )


def _nothing_readable(stats: ReadStats) -> str:
    if not stats.skipped:
        return "no input given"
    lines = [f"{s.name}: {s.reason}" for s in stats.skipped[:5]]
    more = len(stats.skipped) - len(lines)
    return "nothing readable: " + "; ".join(lines) + (f" (and {more} more)" if more > 0 else "")


def filter_window(df: pd.DataFrame, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Keep sessions that overlap [since, until]."""
    keep = pd.Series(True, index=df.index)
    if since is not None:
        keep &= df["end_utc"] >= pd.Timestamp(since)
    if until is not None:
        keep &= df["start_utc"] <= pd.Timestamp(until)
    out = df[keep.astype(bool)].reset_index(drop=True)
    out.attrs = df.attrs
    return out
