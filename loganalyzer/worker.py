"""The per-input work: parse one log and reduce it to session partials.

It runs in the main process or in spawned worker processes, so it imports only Polars and
the parsing modules (not pandas or pyarrow), which keeps worker start-up short.
"""

from __future__ import annotations

import polars as pl

from loganalyzer.aggregate import chunk_partial
from loganalyzer.sources import LogSet, ReadStats, read_log
from loganalyzer.sources.files import LogInput

FilePartials = tuple[list[tuple[LogSet, pl.DataFrame]], ReadStats]


def file_partials(
    log: LogInput,
    *,
    server: str | None,
    strict: bool,
    chunk_bytes: int | None,
    portable: bool,
) -> FilePartials:
    """All partials of one input, and what reading it went through (runs in a worker too).

    ``portable`` turns Categorical text into plain strings, for sending to another process.
    """
    stats = ReadStats()
    out = []
    for batch in read_log(log, stats, server=server, strict=strict, chunk_bytes=chunk_bytes):
        part = chunk_partial(batch.rows, batch.facts)
        if portable:
            part = part.with_columns(pl.col(pl.Categorical).cast(pl.String))
        out.append((batch.logset, part))
    return out, stats
