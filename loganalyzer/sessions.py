"""Build the session table (DESIGN.md contract 1): the library's ``read_sessions``.

Each input is parsed chunk by chunk and every chunk is reduced at once to per-session partials
(aggregate.py), so memory holds a chunk plus the partials. The partials of each log set are
merged (sessions crossing chunks and files become one row) and the columns derived (derive.py,
logsets.py). With several cores, each folder (log sets never span folders) is parsed and
derived by one worker, so only finished sessions cross processes; the smallest folders come
last, split into their files, so that the processes finish together (their partials are
derived here, a folder as soon as its last file is in). When one folder holds most of the
bytes, every file is parsed in workers and derived here. All sessions are sorted last.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer.derive import to_session_table
from loganalyzer.errors import LogParseError, NoInputError
from loganalyzer.logsets import Collector, SpilledSessions, task_sessions
from loganalyzer.parallel import (
    PARALLEL_MIN_BYTES,
    Failed,
    on_this_machine,
    parallel_worth_it,
    resolve_scheduler,
    run_inputs,
    run_isolated,
    task_bytes,
)
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
from loganalyzer.sources.files import LogInput, Skipped
from loganalyzer.syslog_time import zone_by_name
from loganalyzer.worker import file_partials

DEFAULT_FALLBACK_WINDOW = timedelta(minutes=15)
#: Where workers hand their session tables over (a temporary folder is made inside; None:
#: the system's temporary folder). Memory-backed where the system has it.
SPILL_ROOT: str | None = "/dev/shm"


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
    :param scheduler: run the per-file work on Dask: ``"local"`` (a LocalCluster of ``jobs``
        workers), a scheduler address (``tcp://host:8786``) or a ``distributed.Client``;
        default: ``LOGANALYZER_DASK_SCHEDULER``, else this machine.
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
    jobs = jobs or os.cpu_count() or 1
    scheduler = resolve_scheduler(scheduler)
    options = {"server": server, "strict": strict, "chunk_bytes": chunk_bytes}
    options["limits"] = limits or Limits()
    folders = folder_tasks(logs, jobs)
    if folders is not None and (
        scheduler is not None or parallel_worth_it(folders, jobs, PARALLEL_MIN_BYTES)
    ):
        with _spill_folder(scheduler) as spill_dir:
            work = partial(
                task_sessions, fallback_window=fallback_window, spill_dir=spill_dir, **options
            )
            tasks = split_tail(folders, jobs)
            results = run_inputs(tasks, work, jobs=jobs, scheduler=scheduler)
            split = _SplitFolders(tasks, fallback_window, options["server"])
            derived, by_file = _gather_folders(results, split, options, fallback_window, on_file)
    else:
        work = partial(file_partials, **options)
        parallel = parallel_worth_it(logs, jobs, PARALLEL_MIN_BYTES)
        results = run_inputs(logs, work, jobs=jobs, scheduler=scheduler, parallel=parallel)
        derived, by_file = _gather_files(results, options, fallback_window, on_file)
    for log in logs:  # statistics in input order, whatever order the work finished in
        result = by_file[log.name]
        if isinstance(result, Failed):
            if strict:
                raise LogParseError(log.name, None, result.reason)
            stats.skipped.append(Skipped(log.name, result.reason))
        else:
            stats.merge(result)
    mail = _postfix_sessions(
        mail_logs, stats, jobs, options, on_file,
        fallback_window=fallback_window, year=syslog_year, zone=zone,
    )  # fmt: skip
    if stats.files == 0:
        raise NoInputError(_nothing_readable(stats))
    if not derived and not mail:
        df = empty_sessions()
    else:
        derived.sort(key=lambda item: _logset_order(item[0]))  # ties: a fixed order
        parts = [*(sessions for _, sessions in derived), *mail]
        derived.clear()  # the parts are released as they are merged
        mail.clear()
        df = to_pandas(_session_table(parts, threads=jobs))
        df = filter_window(df, since, until)
    stats.sessions = len(df)
    _count_malformed_fields(df, stats)
    df.attrs["read_stats"] = stats.as_dict()
    return df


def _session_table(parts: list, threads: int) -> pa.Table:
    """Derived sessions (Polars frames; ordered Arrow tables from remote workers) -> one table."""
    frames = [pl.from_arrow(part) if isinstance(part, pa.Table) else part for part in parts]
    parts.clear()
    return to_session_table(frames, threads=threads)


@contextlib.contextmanager
def _spill_folder(scheduler):
    """A folder of this machine for workers to hand their tables over in (None when some
    Dask worker may run elsewhere: tables then come back over the network). In memory
    (``/dev/shm``) where there is one; removed afterwards."""
    if not on_this_machine(scheduler):
        yield None
        return
    root = SPILL_ROOT if SPILL_ROOT is None or os.access(SPILL_ROOT, os.W_OK) else None
    with tempfile.TemporaryDirectory(
        prefix="loganalyzer-", dir=root, ignore_cleanup_errors=True
    ) as folder:
        yield folder


def folder_tasks(logs: list[LogInput], jobs: int) -> list[list[LogInput]] | None:
    """The inputs grouped by folder (a log set never spans folders), largest first, when
    the folders spread the work over ``jobs`` workers: at least ``jobs`` folders and none
    holding more than half the bytes. Else None: parse file by file, derive here."""
    groups: dict[str, list[LogInput]] = {}
    for log in logs:
        groups.setdefault(log.folder_key, []).append(log)
    tasks = sorted(groups.values(), key=task_bytes, reverse=True)
    total = sum(task_bytes(t) for t in tasks)
    if len(tasks) < max(jobs, 2) or task_bytes(tasks[0]) > total / 2:
        return None
    return tasks


def split_tail(folders: list[list[LogInput]], jobs: int) -> list[list[LogInput] | LogInput]:
    """Folder tasks (largest first) with the smallest folders split into their files at the
    end, so that a process done with its last folder takes files while the others finish
    theirs, instead of waiting for them.

    The split tail grows until it holds ``jobs - 1`` times the bytes of the smallest folder
    left whole (what the others may still have to read when the folders run out), but not past
    one process's share of all bytes: split folders are derived in this process, one after
    another, and their partials cross processes. At least one folder stays whole.
    """
    sizes = [task_bytes(folder) for folder in folders]
    share = sum(sizes) / jobs
    cut, tail = len(folders), 0
    while cut > 1 and tail < (jobs - 1) * sizes[cut - 1] and tail + sizes[cut - 1] <= share:
        cut -= 1
        tail += sizes[cut]
    return [*folders[:cut], *(log for folder in folders[cut:] for log in folder)]


def _gather_files(results, options, fallback_window, on_file):
    """Per-file partials -> log sets derived here."""
    collector = Collector()
    by_file: dict[str, object] = {}
    for log, result in results:
        _collect(collector, log, result, by_file)
        if on_file is not None:
            on_file(log, disk_size(log))
    return collector.derive(fallback_window=fallback_window, server=options["server"]), by_file


def _collect(collector: Collector, log: LogInput, result, by_file: dict) -> None:
    """One file's result: its partials into ``collector``, its statistics (or the Failed
    that stands for them) into ``by_file``."""
    if isinstance(result, Failed):
        by_file[log.name] = result
        return
    partials, by_file[log.name] = result
    for logset, part in partials:
        collector.add(logset, log.name, part)


def _gather_folders(results, split, options, fallback_window, on_file):
    """Per-folder derived sessions; a folder whose worker died is read again file by file,
    each in a process of its own, so only the file that kills a worker is lost. The files
    of a split folder (``split_tail``) are collected, and derived once the last is in."""
    derived, by_file = [], {}
    for logs, result in results:
        if isinstance(logs, LogInput):
            derived += split.add(logs, result, by_file)
            if on_file is not None:
                on_file(logs, disk_size(logs))
            continue
        if isinstance(result, Failed):
            work = partial(file_partials, **options)
            retried = [(log, run_isolated(log, work)) for log in logs]
            more, stats = _gather_files(retried, options, fallback_window, None)
            derived += more
            by_file.update(stats)
        else:
            sessions, stats = result
            derived += [(logset, _loaded(part)) for logset, part in sessions]
            by_file.update({log.name: st for log, st in zip(logs, stats, strict=True)})
        if on_file is not None:
            for log in logs:
                on_file(log, disk_size(log))
    return derived, by_file


class _SplitFolders:
    """Partials of the files of split folders (``split_tail``), each folder derived as soon
    as its last file is in."""

    def __init__(self, tasks: list, fallback_window: timedelta, server: str | None) -> None:
        self.remaining = Counter(t.folder_key for t in tasks if isinstance(t, LogInput))
        self.collectors: dict[str, Collector] = {}
        self.fallback_window, self.server = fallback_window, server

    def add(self, log: LogInput, result, by_file: dict) -> list:
        """Take one file's result; the derived sessions of its folder if it was the last."""
        collector = self.collectors.setdefault(log.folder_key, Collector())
        _collect(collector, log, result, by_file)
        self.remaining[log.folder_key] -= 1
        if self.remaining[log.folder_key]:
            return []
        del self.collectors[log.folder_key]
        return collector.derive(fallback_window=self.fallback_window, server=self.server)


def _loaded(part):
    """Spilled sessions loaded (``SpilledSessions.load``); the file is removed at once."""
    if not isinstance(part, SpilledSessions):
        return part
    table = part.load()
    with contextlib.suppress(OSError):  # Windows keeps a file in use: the folder goes later
        os.unlink(part.path)
    return table


def _logset_order(logset: LogSet) -> tuple:
    return (logset.folder, logset.direction, logset.server or "", logset.role or "")


def _postfix_sessions(logs, stats, jobs, options, on_file, **rules) -> list:
    """Sessions of the Postfix mail logs (files read in parallel like the protocol logs;
    the sessions are built here, across the files of each folder)."""
    if not logs:
        return []
    work = partial(
        postfix.read_file,
        strict=options["strict"],
        chunk_bytes=options["chunk_bytes"],
        limits=options["limits"],
    )
    parallel = parallel_worth_it(logs, jobs, PARALLEL_MIN_BYTES)

    def read():
        for log, result in run_inputs(logs, work, jobs=jobs, parallel=parallel):
            if isinstance(result, Failed):
                if options["strict"]:
                    raise LogParseError(log.name, None, result.reason)
                stats.skipped.append(Skipped(log.name, result.reason))
                continue
            events, file_stats = result
            stats.merge(file_stats)
            if on_file is not None:
                on_file(log, disk_size(log))
            yield log, events

    return sessions_from_files(
        read(), stats, server=options["server"], strict=options["strict"], **rules
    )


#: Certificate fields that Exchange writes as hex; other values (masked ones) are kept as logged.
_HEX_FIELDS = (
    "local_cert_thumbprint", "local_cert_serial", "remote_cert_thumbprint", "remote_cert_serial",
)  # fmt: skip


def _count_malformed_fields(df: pd.DataFrame, stats: ReadStats) -> None:
    """Count certificate thumbprints and serials that are not hex (kept, never invented).

    Each column holds a handful of distinct values: those are checked, and rows are looked
    at only when one of them is not hex.
    """
    for column in _HEX_FIELDS:
        values = df[column]
        distinct = values.dropna().unique()
        if not len(distinct) or all(_HEX.fullmatch(value) for value in distinct):
            continue
        bad = (values.notna() & ~values.str.fullmatch(_HEX.pattern)).fillna(False).astype(bool)
        stats.malformed_fields += int(bad.sum())
        for row in df.loc[bad, ["file", "line", column]].head(5).itertuples(index=False):
            if len(stats.malformed_field_examples) < 10:
                stats.malformed_field_examples.append(
                    f"{row.file}:{row.line}: {column} {row[2]!r} is not hex (kept as logged)"
                )


_HEX = re.compile(r"[0-9A-Fa-f]+")


def _nothing_readable(stats: ReadStats) -> str:
    if not stats.skipped:
        return "no input given"
    lines = [f"{s.name}: {s.reason}" for s in stats.skipped[:5]]
    more = len(stats.skipped) - len(lines)
    return "nothing readable: " + "; ".join(lines) + (f" (and {more} more)" if more > 0 else "")


def filter_window(df: pd.DataFrame, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Keep sessions that overlap [since, until] (no copy when every session does)."""
    keep = pd.Series(True, index=df.index)
    if since is not None:
        keep &= df["end_utc"] >= pd.Timestamp(since)
    if until is not None:
        keep &= df["start_utc"] <= pd.Timestamp(until)
    keep = keep.fillna(False).astype(bool)
    if keep.all():
        return df
    out = df[keep].reset_index(drop=True)
    out.attrs = df.attrs
    return out
