"""Build the session table (DESIGN.md contract 1): the library's ``read_sessions``.

Batches of classified rows (sources/) are reduced to per-chunk session partials as they are read
(aggregate.py), so memory holds one chunk plus the partials; after the last file the partials are
merged (sessions crossing chunks and files become one row) and the columns derived (derive.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer.aggregate import chunk_partial, merge_partials
from loganalyzer.derive import session_table
from loganalyzer.errors import NoInputError
from loganalyzer.schema import empty_sessions, to_pandas
from loganalyzer.sources import Batch, LogSet, ReadStats, iter_batches

DEFAULT_FALLBACK_WINDOW = timedelta(minutes=15)


class _Collector:
    """Turns batches into partials as they arrive, and remembers log sets and file names."""

    def __init__(self) -> None:
        self.partials: list[pl.DataFrame] = []
        self.logsets: dict[LogSet, int] = {}
        self.files: dict[str, int] = {}

    def add(self, batch: Batch) -> None:
        logset = self.logsets.setdefault(batch.logset, len(self.logsets))
        file_id = self.files.setdefault(batch.log.name, len(self.files))
        self.partials.append(
            chunk_partial(batch.rows, batch.facts, logset, len(self.partials), file_id)
        )

    def table(self, *, fallback_window: timedelta, server: str | None) -> pa.Table:
        wide = merge_partials(self.partials)
        self.partials = []
        logsets = pl.DataFrame(
            {
                "logset": list(self.logsets.values()),
                "path_server": [ls.server for ls in self.logsets],
                "role": [ls.role for ls in self.logsets],
                "direction": [ls.direction for ls in self.logsets],
            },
            schema={"logset": pl.UInt32, "path_server": pl.String, "role": pl.String,
                    "direction": pl.String},
        )  # fmt: skip
        files = pl.DataFrame(
            {"file": list(self.files.values()), "file_name": list(self.files)},
            schema={"file": pl.UInt32, "file_name": pl.String},
        )
        return session_table(wide, logsets, files, fallback_window=fallback_window, server=server)


def read_sessions(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    server: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fallback_window: timedelta = DEFAULT_FALLBACK_WINDOW,
    strict: bool = False,
    on_file: Callable | None = None,
    chunk_bytes: int | None = None,
) -> pd.DataFrame:
    """Read protocol logs and return one row per SMTP session (DESIGN.md contract 1).

    :param paths: files, folders (recursive), globs, ``.gz`` files, ``.zip`` archives.
    :param server: server name for logs whose path and connector-id name none.
    :param since, until: keep sessions overlapping this window (timezone-aware datetimes).
    :param fallback_window: how soon after a failed TLS session a plaintext one is a fallback.
    :param strict: raise LogParseError at the first malformed row or skipped input.
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
    collector = _Collector()
    for batch in iter_batches(
        paths, stats, server=server, strict=strict, on_file=on_file, chunk_bytes=chunk_bytes
    ):
        collector.add(batch)
    if stats.files == 0:
        raise NoInputError(_nothing_readable(stats))
    if not collector.partials:
        df = empty_sessions()
    else:
        df = to_pandas(collector.table(fallback_window=fallback_window, server=server))
        df = filter_window(df, since, until)
    stats.sessions = len(df)
    df.attrs["read_stats"] = stats.as_dict()
    return df


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
