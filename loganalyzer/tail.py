"""The store's per-file work: the new tail of a log (all of a new one) -> session partials.

It runs in the main process, in spawned worker processes or on Dask workers (``ingest
--jobs``/``--scheduler``), so it imports only Polars and the parsing modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from loganalyzer.aggregate import chunk_partial
from loganalyzer.errors import LogParseError
from loganalyzer.sources import ReadStats, exchange
from loganalyzer.sources.files import READ_ERRORS, InflationLimitError, Limits, LogInput
from loganalyzer.worker import crash_for_tests


@dataclass(frozen=True)
class TailTask:
    """Read ``log`` from byte ``offset`` (line ``first_line``): a file of log set ``direction``,
    known to the store as file ``file_id``, whose next chunk is number ``first_chunk``."""

    log: LogInput
    offset: int
    first_line: int
    direction: str
    file_id: int
    first_chunk: int
    size: int  # bytes on disk now (to spread the work)


@dataclass
class Tail:
    """What was read: partials (one per chunk, text as String; columns ``logset``, ``chunk``,
    ``file`` added), where the complete lines end (byte ``offset``, ``lines`` so far), the
    rows read, and ``damage``: why the read stopped early (the rest of the file is unreadable).
    """

    partials: list[pl.DataFrame] = field(default_factory=list)
    offset: int = 0
    lines: int = 0
    rows: int = 0
    damage: str | None = None
    stats: ReadStats = field(default_factory=ReadStats)


def read_tail_partials(task: TailTask, *, strict: bool, limits: Limits, chunk_bytes: int) -> Tail:
    """The partials of ``task``'s complete new lines (a last line without its line end is left
    for the next run: the log is still being written).

    :raises LogParseError: with ``strict``, at the first malformed row.
    """
    crash_for_tests(task.log)
    tail = Tail(offset=task.offset, lines=task.first_line - 1)
    chunk = task.first_chunk
    lines = read_tail(
        task.log, task.offset, task.first_line, tail.stats,
        strict=strict, limits=limits, chunk_bytes=chunk_bytes,
    )  # fmt: skip
    try:
        for rows, end, next_line in lines:
            if rows.height:
                part = chunk_partial(rows, exchange.classify(rows, task.direction))
                tail.partials.append(
                    part.with_columns(
                        pl.col(pl.Categorical).cast(pl.String),
                        logset=pl.lit(0, pl.UInt32),
                        chunk=pl.lit(chunk, pl.UInt32),
                        file=pl.lit(task.file_id, pl.UInt32),
                    )
                )
                chunk += 1
            tail.offset, tail.lines = end, next_line - 1
            tail.rows += rows.height
    except (*READ_ERRORS, InflationLimitError) as err:
        tail.damage = f"damaged, read up to the damage: {err}"
    return tail


def read_tail(
    log: LogInput,
    offset: int,
    first_line: int,
    stats: ReadStats,
    *,
    strict: bool,
    limits: Limits,
    chunk_bytes: int,
) -> Iterator[tuple[pl.DataFrame, int, int]]:
    """Parse the complete lines after ``offset``: yields ``(rows, end_offset, next_line)``.

    A last line without a line end is left for the next run (the log is still being written).
    """
    with log.open() as stream:
        if log.member is None and not log.disk_path.name.lower().endswith(".gz"):
            stream.seek(offset)
        else:  # compressed: skip what was read before
            left = offset
            while left > 0:
                skipped = stream.read(min(left, 4 << 20))
                if not skipped:
                    return
                left -= len(skipped)
        buffer = b""
        position, line = offset, first_line
        while True:
            block = stream.read(chunk_bytes)
            data = buffer + block
            cut = data.rfind(b"\n") + 1
            if not block and not cut:
                return
            if cut == 0:
                if len(data) > limits.max_row_bytes:
                    raise LogParseError(log.name, line, "line too long in a growing log")
                buffer = data
                continue
            whole, buffer = data[:cut], data[cut:]
            rows, malformed = exchange.parse_chunk(whole, line, False, limits.max_row_bytes)
            for bad in malformed:
                if strict:
                    raise LogParseError(log.name, bad.line, bad.reason)
                stats.add_malformed(f"{log.name}:{bad.line}: {bad.reason}")
            stats.bytes += len(whole)
            stats.rows += rows.height
            position += len(whole)
            line += whole.count(b"\n")
            yield rows, position, line
            if not block:
                return
