"""The per-input work: parse one log and reduce it to session partials.

It runs in the main process or in spawned worker processes, so it imports only Polars and
the parsing modules (not pandas or pyarrow), which keeps worker start-up short.
"""

from __future__ import annotations

import multiprocessing
import os

import polars as pl

from loganalyzer.aggregate import chunk_partial
from loganalyzer.sources import Limits, LogSet, ReadStats, read_log
from loganalyzer.sources.files import LogInput

FilePartials = tuple[list[tuple[LogSet, pl.DataFrame]], ReadStats]
#: Tests set this to a file name ending: a worker process (never the main one) reading that
#: input exits at once.
CRASH_FOR_TESTS = "LOGANALYZER_TEST_WORKER_CRASH"


def file_partials(
    log: LogInput,
    *,
    server: str | None,
    strict: bool,
    chunk_bytes: int | None,
    limits: Limits,
) -> FilePartials:
    """All partials of one input, and what reading it went through (runs in a worker too).

    Text stays Categorical: it pickles as a small dictionary per column and is re-mapped
    when loaded in the main process.
    """
    crash_for_tests(log)
    stats = ReadStats()
    out = []
    batches = read_log(
        log, stats, server=server, strict=strict, chunk_bytes=chunk_bytes, limits=limits
    )
    for batch in batches:
        out.append((batch.logset, chunk_partial(batch.rows, batch.facts)))
    return out, stats


def crash_for_tests(log: LogInput) -> None:
    """Tests only: a worker that dies (out of memory, killed) as it starts on ``log``."""
    crash = os.environ.get(CRASH_FOR_TESTS)
    if crash and log.name.endswith(crash) and multiprocessing.parent_process() is not None:
        os._exit(70)
