"""Build the session table (DESIGN.md contract 1): the library's ``read_sessions``.

Each input is parsed chunk by chunk and every chunk is reduced at once to per-session partials
(aggregate.py), so memory holds a chunk plus the partials. Inputs are independent, so they are
parsed in worker processes when there is enough to read. After the last input the partials are
merged (sessions crossing chunks and files become one row) and the columns derived (derive.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer.aggregate import merge_partials
from loganalyzer.derive import log_set_sessions, to_session_table
from loganalyzer.errors import LogParseError, NoInputError
from loganalyzer.parallel import PARALLEL_MIN_BYTES, Failed, resolve_scheduler, run_inputs
from loganalyzer.schema import empty_sessions, to_pandas
from loganalyzer.sources import Limits, LogSet, ReadStats, disk_size, find_logs
from loganalyzer.sources.files import Skipped
from loganalyzer.worker import file_partials

DEFAULT_FALLBACK_WINDOW = timedelta(minutes=15)


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

    def table(self, *, fallback_window: timedelta, server: str | None) -> pa.Table:
        """The session table: each log set merged and derived on its own, then all sorted."""
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
        return to_session_table(tables)


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
    scheduler=None,
) -> pd.DataFrame:
    """Read protocol logs and return one row per SMTP session (DESIGN.md contract 1).

    :param paths: files, folders (recursive), globs, ``.gz`` files, ``.zip`` archives.
    :param server: server name for logs whose path and connector-id name none.
    :param since, until: keep sessions overlapping this window (timezone-aware datetimes).
    :param fallback_window: how soon after a failed TLS session a plaintext one is a fallback.
    :param strict: raise LogParseError at the first malformed row or skipped input.
    :param jobs: cores to use (default: all); inputs are parsed in that many processes.
    :param scheduler: run the per-file work on Dask: ``"local"`` (a LocalCluster of ``jobs``
        workers), a scheduler address (``tcp://host:8786``) or a ``distributed.Client``;
        default: ``LOGANALYZER_DASK_SCHEDULER``, else this machine.
    :param limits: row length and decompression limits (``loganalyzer.Limits``).
    :param on_file: called as ``on_file(log, disk_bytes)`` after each input (progress bars).
    :param chunk_bytes: bytes per parsing chunk (memory per worker; default 32 MiB).
    :returns: pandas DataFrame with Arrow dtypes, ordered by start_utc, server, session_id.
        ``df.attrs["read_stats"]`` holds files, rows, malformed rows and skipped inputs.
    :raises NoInputError: when no readable protocol log was found.

    .. code-block:: python

        df = loganalyzer.read_sessions("collected-logs/")
        df[df.fallback][["server", "remote_ip", "start_utc"]]
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = ReadStats()
    logs = find_logs(paths, stats, strict=strict)
    work = partial(
        file_partials,
        server=server,
        strict=strict,
        chunk_bytes=chunk_bytes,
        limits=limits or Limits(),
    )
    collector = _Collector()
    results = run_inputs(
        logs,
        work,
        jobs=jobs or os.cpu_count() or 1,
        scheduler=resolve_scheduler(scheduler),
        min_parallel_bytes=PARALLEL_MIN_BYTES,
    )
    for log, result in results:
        if isinstance(result, Failed):
            if strict:
                raise LogParseError(log.name, None, result.reason)
            stats.skipped.append(Skipped(log.name, result.reason))
        else:
            partials, file_stats = result
            stats.merge(file_stats)
            for logset, part in partials:
                collector.add(logset, log.name, part)
        if on_file is not None:
            on_file(log, disk_size(log))
    if stats.files == 0:
        raise NoInputError(_nothing_readable(stats))
    if not collector.partials:
        df = empty_sessions()
    else:
        df = to_pandas(collector.table(fallback_window=fallback_window, server=server))
        df = filter_window(df, since, until)
    stats.sessions = len(df)
    _count_malformed_fields(df, stats)
    df.attrs["read_stats"] = stats.as_dict()
    return df


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
