"""A store of ingested sessions: read the logs once, keep the sessions, add what is new.

Layout of a store folder::

    manifest.json                       the published state, replaced atomically and last
    sessions/day=YYYY-MM-DD/server=NAME/<logset>-<generation>.parquet
                                        the session table (SESSION_SCHEMA), by start day (UTC)
    partials/<logset>-<generation>.parquet
                                        merged per-session partials of each log set
    .lock                               held by the run that writes

Incremental ingest keeps, per log set, the merged per-session *partials* (aggregate.py) next
to the derived sessions. A new file, or the appended tail of a file that grew, is parsed from
where the last run stopped (after the last complete line) into partials, merged with the stored
ones and the log set's sessions derived again, so a session that was open at the cut is
completed, never duplicated, and the result equals one full read of every file ever ingested.
Files that are rotated away or deleted keep their sessions.

Every run writes new files under a new generation number and publishes them by replacing
``manifest.json``; readers only read the files the manifest lists, so a crash or Ctrl-C leaves
the previous state readable. Unlisted files are removed by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from loganalyzer.aggregate import merge_partials
from loganalyzer.derive import log_set_sessions, to_session_table
from loganalyzer.errors import LogAnalyzerError, NoInputError
from loganalyzer.parallel import (
    PARALLEL_MIN_BYTES,
    Failed,
    absolute_paths,
    parallel_worth_it,
    resolve_scheduler,
    run_inputs,
)
from loganalyzer.schema import SESSION_SCHEMA, empty_sessions, to_pandas
from loganalyzer.sessions import DEFAULT_FALLBACK_WINDOW, _nothing_readable, filter_window
from loganalyzer.sources import (
    Limits,
    LogSet,
    ReadStats,
    canonical_order,
    disk_size,
    find_logs,
    record_skip,
    sniff_log_set,
)
from loganalyzer.sources.files import (
    CHUNK_BYTES,
    READ_ERRORS,
    LogInput,
    Skipped,
)
from loganalyzer.tail import Tail, TailTask, read_tail_partials
from loganalyzer.times import parse_time

__all__ = [
    "FINDINGS_MARGIN",
    "IngestResult",
    "Store",
    "StoreError",
    "StoreLockedError",
    "ingest",
    "open_store",
    "read_store",
]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
#: Bytes of the start of a file whose hash tells "the same file, grown" from "another file".
HEAD_BYTES = 64 * 1024
#: Why a file is named when its log set should be read again but it is not there to be read.
REREAD_MISSING = (
    "not here to read its log set again after another file of it grew or arrived later than "
    "a newer one: sessions crossing files there may lack facts"
)
#: Sessions read before ``since`` so that findings see what leads into the window (a halt or a
#: fallback that crosses midnight, a connector's usual traffic before a silence).
FINDINGS_MARGIN = timedelta(hours=6)


class StoreError(LogAnalyzerError):
    """The store cannot be used (corrupt manifest, wrong folder, written by a newer version)."""


class StoreLockedError(StoreError):
    """Another run is writing to the store."""


# --- the lock ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path, wait: float) -> Iterator[None]:
    """Hold the store's writer lock (an OS lock on ``.lock``: released if the process dies).

    ``wait``: seconds to wait for another writer; then StoreLockedError names the holder.
    """
    path = folder / ".lock"
    handle = open(path, "a+b")  # noqa: SIM115 - closed below
    deadline = time.monotonic() + wait
    try:
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                try:
                    handle.seek(0)
                    holder = handle.read(200).decode("utf-8", "replace").strip()
                except OSError:  # Windows: the locked byte cannot be read
                    holder = ""
                holder = holder or "another process"
                raise StoreLockedError(
                    f"{folder}: another run is writing to this store ({holder}); "
                    "try again later or use --wait SECONDS"
                )
            time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}".encode())
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def _try_lock(handle) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


# --- the manifest ------------------------------------------------------------------------------


def _empty_manifest() -> dict:
    return {
        "format": FORMAT_VERSION,
        "generation": 0,
        "next_file_id": 0,
        "files": [],
        "logsets": {},
    }


def _load_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        known = {".lock", "sessions", "partials"}
        if folder.exists() and any(p.name not in known for p in folder.iterdir()):
            raise StoreError(f"{folder}: not a loganalyzer store (no {MANIFEST}), and not empty")
        return _empty_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{path}: the store's manifest is unreadable or corrupt: {err}") from None
    if not isinstance(manifest, dict) or "files" not in manifest or "logsets" not in manifest:
        raise StoreError(f"{path}: the store's manifest is corrupt (missing files/logsets)")
    if manifest.get("format") != FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format {manifest.get('format')!r} is not {FORMAT_VERSION} "
            "(written by another version of loganalyzer)"
        )
    return manifest


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- reading inputs from where the last run stopped --------------------------------------------


def _identity(log: LogInput) -> str:
    """A file's key in the manifest: its real path (plus the archive member)."""
    real = os.path.realpath(log.disk_path)
    return real if log.member is None else f"{real}!{log.member}"


def _stat(log: LogInput) -> tuple[int, int]:
    st = log.disk_path.stat()
    if log.member is not None:
        import zipfile

        with zipfile.ZipFile(log.disk_path) as archive:
            info = archive.getinfo(log.member)
        return info.file_size, st.st_mtime_ns
    return st.st_size, st.st_mtime_ns


def _head_hash(log: LogInput, length: int) -> str:
    with log.open() as stream:
        return hashlib.sha256(stream.read(length)).hexdigest()


def _logset_key(logset: LogSet) -> str:
    text = json.dumps([logset.server, logset.role, logset.direction, logset.folder])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- ingest ------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What one ingest run did."""

    files_new: int = 0
    files_grown: int = 0
    files_unchanged: int = 0
    files_gone: int = 0
    files_moved: int = 0
    bytes_read: int = 0
    rows_read: int = 0
    logsets_updated: int = 0
    logsets_reread: int = 0
    sessions: int = 0
    stats: ReadStats = field(default_factory=ReadStats)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "stats"}
        out["read_stats"] = self.stats.as_dict()
        return out


def ingest(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    server: str | None = None,
    fallback_window: timedelta = DEFAULT_FALLBACK_WINDOW,
    strict: bool = False,
    limits: Limits | None = None,
    wait: float = 0.0,
    chunk_bytes: int | None = None,
    on_file: Callable | None = None,
    jobs: int | None = None,
    scheduler=None,
) -> IngestResult:
    """Add the sessions of ``paths`` to the store at ``store`` (created when missing).

    Only what is new is read: new files, and the appended tail of files that grew (from after
    the last complete line read before). Files that disappeared keep their sessions. The
    result equals a full ``read_sessions`` of every file the store has ever read.

    :param wait: seconds to wait for another run that holds the store's lock.
    :param jobs, scheduler: cores to use (default: all) and a Dask scheduler, as for
        ``read_sessions``: the files are read in parallel, the store is written here.
    :raises StoreLockedError: another run is writing (after ``wait``).
    :raises StoreError: the store is corrupt or not a store.

    .. code-block:: python

        loganalyzer.ingest("//ex01/c$/Program Files/Microsoft/Exchange Server", "store/")
        sessions = loganalyzer.open_store("store/").sessions(since="24h")
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    folder = Path(store)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder}: not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    result = IngestResult()
    with _locked(folder, wait):
        manifest = _load_manifest(folder)
        before = json.dumps(manifest, sort_keys=True)
        _collect_garbage(folder, manifest)
        logs = find_logs(paths, result.stats, strict=strict)
        if not logs:
            raise NoInputError(_nothing_readable(result.stats))
        plan = _plan(manifest, logs, result, server, strict)
        newest = _newest_read(manifest)  # before this run's new files are entered
        tasks, entries = [], []
        for log, entry in plan:
            if (task := _tail_task(log, entry, manifest, result, server, strict)) is not None:
                tasks.append(task)
                entries.append(entry)
        work = partial(
            read_tail_partials, strict=strict, limits=limits, chunk_bytes=chunk_bytes or CHUNK_BYTES
        )
        jobs = jobs or os.cpu_count() or 1
        scheduler = resolve_scheduler(scheduler)

        def read(tasks: list[TailTask], entries: list[dict], partials: dict) -> None:
            tails = run_inputs(
                tasks, work, jobs=jobs, scheduler=scheduler,
                parallel=parallel_worth_it(tasks, jobs, PARALLEL_MIN_BYTES, size=_new_bytes),
            )  # fmt: skip
            for (task, tail), entry in zip(tails, entries, strict=True):
                _take_tail(task, tail, entry, partials, result, strict)
                if on_file is not None:
                    on_file(task.log, disk_size(task.log))

        new_partials: dict[str, list[pl.DataFrame]] = {}
        read(tasks, entries, new_partials)
        for key in sorted(_out_of_order(folder, manifest, newest, new_partials)):
            again = _read_again(manifest, key, logs, entries, result, strict)
            if again is not None:
                new_partials[key] = []
                read(*again, new_partials)
        if new_partials:
            manifest["generation"] += 1
            rebuild = partial(
                _rebuild_logset, folder, manifest, fallback_window=fallback_window, server=server
            )
            # Log sets are rebuilt side by side: Polars and Parquet writing release the GIL,
            # and each rebuild changes only its own log set's manifest entry.
            with ThreadPoolExecutor(max(1, min(jobs, len(new_partials)))) as pool:
                for _ in pool.map(rebuild, new_partials, new_partials.values()):
                    result.logsets_updated += 1
        if json.dumps(manifest, sort_keys=True) != before:  # else nothing to publish
            manifest["updated_utc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            _write_atomically(
                folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode()
            )
            _collect_garbage(folder, manifest)
    result.bytes_read = result.stats.bytes
    result.sessions = sum(f["rows"] for s in manifest["logsets"].values() for f in s["sessions"])
    result.stats.sessions = result.sessions
    return result


def _plan(
    manifest: dict, logs: list[LogInput], result: IngestResult, server: str | None, strict: bool
) -> list[tuple[LogInput, dict]]:
    """Which inputs to read and from where: ``(log, manifest entry)`` in canonical order."""
    by_id = {f["identity"]: f for f in manifest["files"] if f.get("current", True)}
    seen = set()
    plan = []
    for log in logs:
        identity = _identity(log)
        seen.add(identity)
        try:
            size, mtime = _stat(log)
        except (*READ_ERRORS, KeyError) as err:
            record_skip(result.stats, Skipped(log.name, f"cannot read: {err}"), strict)
            continue
        entry = by_id.get(identity)
        if entry is not None and entry["size"] == size and entry["mtime_ns"] == mtime:
            result.files_unchanged += 1
            continue
        if entry is not None:
            try:
                same = _head_hash(log, entry["head_len"]) == entry["head_hash"]
            except READ_ERRORS:
                same = False
            if same and size < entry["offset"] and not _compressed(log):  # .gz: compressed size
                entry["size"], entry["mtime_ns"] = size, mtime
                result.stats.skipped.append(
                    Skipped(log.name, "shrank since the last run (same start): kept what was read")
                )
                result.files_unchanged += 1
                continue
            if same:
                entry["size"], entry["mtime_ns"] = size, mtime
                if entry["offset"] < size or log.member is not None or _compressed(log):
                    plan.append((log, entry))
                    result.files_grown += 1
                else:
                    result.files_unchanged += 1
                continue
            entry["current"] = False  # replaced by another file: its sessions stay
        plan.append((log, {"identity": identity, "size": size, "mtime_ns": mtime, "new": True}))
    gone = [entry for identity, entry in by_id.items() if identity not in seen]
    plan = [_moved(log, entry, gone, result) for log, entry in plan]
    result.files_gone = len(gone)
    return plan


def _moved(log: LogInput, entry: dict, gone: list[dict], result: IngestResult) -> tuple:
    """A new path whose start hashes like a file that is no longer where it was (moved to an
    archive folder, renamed, gzipped): the same file, resumed where it was left, so that its
    sessions are not read twice. Otherwise ``(log, entry)`` unchanged.
    """
    if not entry.get("new") or not gone:
        return log, entry
    hashes: dict[int, str | None] = {}
    for old in gone:
        length = old["head_len"]
        if length not in hashes:
            try:
                hashes[length] = _head_hash(log, length)
            except READ_ERRORS:
                hashes[length] = None
        if hashes[length] == old["head_hash"]:
            gone.remove(old)
            old.update(identity=entry["identity"], size=entry["size"], mtime_ns=entry["mtime_ns"])
            result.files_moved += 1
            return log, old
    return log, entry


def _compressed(log: LogInput) -> bool:
    return log.disk_path.name.lower().endswith(".gz")


def _tail_task(
    log: LogInput,
    entry: dict,
    manifest: dict,
    result: IngestResult,
    server: str | None,
    strict: bool,
) -> TailTask | None:
    """The read of ``log`` from where the store left it; a new file is sniffed and entered in
    the manifest first (None when it is not a protocol log)."""
    stats = result.stats
    if entry.pop("new", False):
        sniffed = sniff_log_set(log, stats, server=server, strict=strict)
        if sniffed is None:
            return None
        logset, head = sniffed
        key = _logset_key(logset)
        manifest["logsets"].setdefault(
            key,
            {
                "server": logset.server, "role": logset.role, "direction": logset.direction,
                "folder": logset.folder, "partials": None, "sessions": [],
            },
        )  # fmt: skip
        head_len = min(len(head), HEAD_BYTES)
        entry.update(
            id=manifest["next_file_id"], name=log.name, folder_key=log.folder_key,
            file_name=log.file_name, logset=key, offset=0, lines=0, rows=0, chunks=0,
            head_len=head_len, head_hash=_head_hash(log, head_len), current=True,
        )  # fmt: skip
        manifest["next_file_id"] += 1
        manifest["files"].append(entry)
        result.files_new += 1
    stats.files += 1
    return _task_for(log, entry, manifest)


def _task_for(log: LogInput, entry: dict, manifest: dict) -> TailTask:
    """The read of ``log`` from where its manifest entry says the store left it."""
    return TailTask(
        log=absolute_paths(log),  # for Dask workers
        offset=entry["offset"],
        first_line=entry["lines"] + 1,
        direction=manifest["logsets"][entry["logset"]]["direction"],
        file_id=entry["id"],
        first_chunk=entry["chunks"],
        size=entry["size"],
    )


def _newest_read(manifest: dict) -> dict[str, int]:
    """Log set -> canonical rank of its last file that rows were read from."""
    ranks = _order_key(manifest)
    newest: dict[str, int] = {}
    for entry in manifest["files"]:
        if entry.get("rows") and entry.get("current", True):
            key = entry["logset"]
            newest[key] = max(newest.get(key, -1), ranks[entry["id"]])
    return newest


def _out_of_order(
    folder: Path, manifest: dict, newest: dict[str, int], new_partials: dict
) -> set[str]:
    """Log sets whose new rows continue a stored session from a file ranked before that
    session's last file (collected copies can grow or arrive late; Exchange only appends to
    the newest file): their partials would merge out of file order."""
    ranks = _order_key(manifest)
    stale = set()
    for key, parts in new_partials.items():
        info = manifest["logsets"][key]
        if key not in newest or not info["partials"] or not parts:
            continue
        early = [file for file, rank in ranks.items() if rank < newest[key]]
        rank = pl.col("file").replace_strict(ranks, default=None, return_dtype=pl.Int64)
        new = (
            pl.concat([part.select("sid", "file") for part in parts])
            .filter(pl.col("file").is_in(early))
            .group_by("sid")
            .agg(new_rank=rank.min())
        )
        if new.is_empty():
            continue
        path = folder / info["partials"]
        columns = [c for c in ("sid", "last_file") if c in pl.read_parquet_schema(path)]
        if "last_file" in columns:
            last = pl.col("last_file").replace_strict(ranks, default=None, return_dtype=pl.Int64)
        else:  # a store written before last files were kept: any shared session counts
            last = pl.lit(None, pl.Int64)
        stored = pl.read_parquet(path, columns=columns).select("sid", stored_rank=last)
        joined = new.join(stored, on="sid")
        if joined.filter(pl.col("stored_rank").fill_null(1 << 62) > pl.col("new_rank")).height:
            stale.add(key)
    return stale


def _read_again(
    manifest: dict,
    key: str,
    logs: list[LogInput],
    planned: list[dict],
    result: IngestResult,
    strict: bool,
) -> tuple[list[TailTask], list[dict]] | None:
    """The reads of every file of log set ``key`` from the start, its stored partials dropped;
    None (and the missing files reported, ``REREAD_MISSING``) when some file is not here."""
    here = {_identity(log): log for log in logs}
    files = [f for f in manifest["files"] if f["logset"] == key and f.get("current", True)]
    missing = [f for f in files if f["identity"] not in here]
    for f in missing:
        record_skip(result.stats, Skipped(f["name"], REREAD_MISSING), strict)
    if missing:
        return None
    ranks = _order_key(manifest)
    read_before = {id(entry) for entry in planned}
    tasks, entries = [], []
    for entry in sorted(files, key=lambda f: ranks[f["id"]]):
        if id(entry) not in read_before:
            result.stats.files += 1
        entry.update(offset=0, lines=0, rows=0, chunks=0)
        tasks.append(_task_for(here[entry["identity"]], entry, manifest))
        entries.append(entry)
    manifest["logsets"][key]["partials"] = None
    result.logsets_reread += 1
    return tasks, entries


def _new_bytes(task: TailTask) -> int:
    """Bytes a read has ahead of it (all of a new file, the grown part of an old one)."""
    return max(task.size - task.offset, 0)


def _take_tail(
    task: TailTask,
    tail: Tail | Failed,
    entry: dict,
    new_partials: dict[str, list[pl.DataFrame]],
    result: IngestResult,
    strict: bool,
) -> None:
    """Enter what a file's read gave in the manifest entry and the log set's new partials."""
    if isinstance(tail, Failed):
        record_skip(result.stats, Skipped(task.log.name, tail.reason), strict)
        return
    result.stats.merge(tail.stats)
    if tail.partials:
        new_partials.setdefault(entry["logset"], []).extend(tail.partials)
    entry["chunks"] += len(tail.partials)
    entry["offset"], entry["lines"] = tail.offset, tail.lines
    entry["rows"] += tail.rows
    result.rows_read += tail.rows
    if tail.damage is not None:
        record_skip(result.stats, Skipped(task.log.name, tail.damage), strict)


def _order_key(manifest: dict) -> dict[int, int]:
    """File id -> its rank in the canonical order (what a full read would use)."""
    files = sorted(
        manifest["files"],
        key=lambda f: canonical_order(_NamedLog(f["name"], f["folder_key"], f["file_name"])),
    )
    return {f["id"]: rank for rank, f in enumerate(files)}


@dataclass(frozen=True)
class _NamedLog:
    """Enough of a LogInput for the canonical sort key of a file that may be gone."""

    name: str
    folder_key: str
    file_name: str


def _rebuild_logset(
    folder: Path,
    manifest: dict,
    key: str,
    new: list[pl.DataFrame],
    fallback_window: timedelta,
    server: str | None,
) -> None:
    """Merge a log set's stored and new partials, derive its sessions, write both."""
    info = manifest["logsets"][key]
    generation = manifest["generation"]
    parts = []
    if info["partials"]:
        parts.append(_read_parquet(folder / info["partials"]))
    parts += new
    ranks = _order_key(manifest)
    table = pl.concat(parts, how="diagonal_relaxed")
    rank = pl.col("file").replace_strict(ranks, return_dtype=pl.UInt64)
    table = table.with_columns(chunk=rank * (1 << 32) + pl.col("chunk").cast(pl.UInt64))
    last_files = _last_files(table, ranks)
    merged = merge_partials([table.drop("last_file", strict=False)])
    files = pl.DataFrame(
        {
            "file": [f["id"] for f in manifest["files"]],
            "file_name": [f["name"] for f in manifest["files"]],
        },
        schema={"file": pl.UInt32, "file_name": pl.String},
    )
    sessions = log_set_sessions(
        merged.with_columns(pl.col(pl.String).cast(pl.Categorical)),
        direction=info["direction"],
        path_server=info["server"],
        role=info["role"],
        files=files,
        fallback_window=fallback_window,
        server=server,
    )
    stored = merged.with_columns((pl.col("chunk") % (1 << 32)).cast(pl.UInt32)).join(
        last_files, on="sid", how="left", maintain_order="left"
    )
    partials_path = f"partials/{key}-{generation}.parquet"
    _write_parquet_frame(folder / partials_path, stored)
    info["partials"] = partials_path
    info["sessions"] = _write_sessions(folder, key, generation, to_session_table([sessions]))


def _last_files(table: pl.DataFrame, ranks: dict[int, int]) -> pl.DataFrame:
    """``sid, last_file``: the id of the last file (in file order) each session has rows in
    (a stored partial's own ``last_file``; a new chunk's ``file``)."""
    last = pl.col("file")
    if "last_file" in table.columns:
        last = pl.coalesce(pl.col("last_file"), last)
    return (
        table.select("sid", last_file=last)
        .group_by("sid")
        .agg(
            pl.col("last_file")
            .sort_by(pl.col("last_file").replace_strict(ranks, return_dtype=pl.UInt64))
            .last()
        )
    )


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise StoreError(f"{path}: a store file is missing or unreadable: {err}") from None


def _write_parquet_frame(path: Path, frame: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp)
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Flush a written file to disk before the manifest that lists it is published."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _partition_name(value: str | None) -> str:
    return "_" if value is None else quote(value, safe="")


def _write_sessions(folder: Path, key: str, generation: int, table: pa.Table) -> list[dict]:
    """The log set's sessions, one file per start day (UTC) and server."""
    frame = pl.from_arrow(table)
    frame = frame.with_columns(
        _day=pl.col("start_utc").dt.strftime("%Y-%m-%d").fill_null("unknown")
    )
    written = []
    for (day, server), group in frame.group_by(["_day", "server"], maintain_order=True):
        rel = f"sessions/day={day}/server={_partition_name(server)}/{key}-{generation}.parquet"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(group.drop("_day").to_arrow().cast(SESSION_SCHEMA), tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        written.append(
            {
                "path": rel,
                "day": day,
                "server": server,
                "rows": group.height,
                "min_start_utc": _iso(group["start_utc"].min()),
                "max_end_utc": _iso(group["end_utc"].max()),
            }
        )
    return written


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _listed(manifest: dict) -> set[str]:
    listed = {MANIFEST, ".lock"}
    for info in manifest["logsets"].values():
        if info["partials"]:
            listed.add(info["partials"])
        listed.update(f["path"] for f in info["sessions"])
    return listed


def _collect_garbage(folder: Path, manifest: dict) -> None:
    """Remove files the manifest does not list (left by a crash, or superseded)."""
    listed = _listed(manifest)
    for sub in ("sessions", "partials"):
        root = folder / sub
        if not root.exists():
            continue
        for path in sorted(root.rglob("*"), reverse=True):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and rel not in listed:
                with contextlib.suppress(OSError):
                    path.unlink()
            elif path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty
    for path in folder.glob(f".{MANIFEST}.*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


# --- reading the store -------------------------------------------------------------------------


_PEER_COLUMNS = ("remote_ip", "remote_host")


class Store:
    """A store opened for reading (``open_store``); every read follows the manifest.

    .. code-block:: python

        store = loganalyzer.open_store("store/")
        df = store.sessions(since="7d", server="EX01", peer="203.0.113.7")
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not (self.folder / MANIFEST).is_file():
            raise StoreError(f"{self.folder}: not a loganalyzer store (no {MANIFEST})")
        self.manifest = _load_manifest(self.folder)

    @property
    def files(self) -> pd.DataFrame:
        """The manifest's files: path, size, modification time, head hash, rows read, ..."""
        rows = [
            {
                "name": f["name"],
                "path": f["identity"],
                "size": f["size"],
                "mtime_utc": datetime.fromtimestamp(f["mtime_ns"] / 1e9, UTC),
                "head_sha256": f["head_hash"],
                "bytes_read": f["offset"],
                "lines_read": f["lines"],
                "rows": f["rows"],
                "current": f.get("current", True),
            }
            for f in self.manifest["files"]
        ]
        return pd.DataFrame(rows).convert_dtypes(dtype_backend="pyarrow")

    def partitions(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        server: str | Iterable[str] | None = None,
    ) -> list[str]:
        """Session files (relative paths) that can hold sessions overlapping [since, until]
        (of ``server``): partition pruning by the start day, time span and server of each file.
        """
        servers = None if server is None else {server} if isinstance(server, str) else set(server)
        out = []
        for info in self.manifest["logsets"].values():
            for f in info["sessions"]:
                if servers is not None and f["server"] not in servers:
                    continue
                start, end = _parse_iso(f["min_start_utc"]), _parse_iso(f["max_end_utc"])
                if until is not None and start is not None and start > until:
                    continue
                if since is not None and end is not None and end < since:
                    continue
                out.append(f["path"])
        return sorted(out)

    def sessions(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        server: str | Iterable[str] | None = None,
        connector: str | Iterable[str] | None = None,
        peer: str | Iterable[str] | None = None,
        direction: str | None = None,
        margin: timedelta = timedelta(0),
        now: datetime | None = None,
    ) -> pd.DataFrame:
        """Sessions overlapping [since - margin, until], filtered; Arrow dtypes.

        ``since``/``until``: aware datetimes, ISO text, or ages such as ``"24h"``/``"7d"``
        (before ``now``). ``peer`` matches the remote IP or host name. Only the partitions
        that can hold such sessions are read (``df.attrs["partitions_read"]``).
        """
        start = parse_time(since, now)
        end = parse_time(until, now)
        if start is not None:
            start -= margin
        paths, tables = self._read(start, end, server)
        if tables:
            frame = pl.from_arrow(pa.concat_tables(tables))
            frame = _filter(
                frame, server=server, connector=connector, peer=peer, direction=direction
            )
            df = to_pandas(to_session_table([frame]))
        else:
            df = empty_sessions()
        df = filter_window(df, start, end)
        df.attrs["partitions_read"] = paths
        df.attrs["read_stats"] = {
            "files": 0, "bytes": 0, "rows": 0, "malformed": 0, "malformed_examples": [],
            "skipped": [], "sessions": len(df), "malformed_fields": 0,
            "malformed_field_examples": [],
        }  # fmt: skip
        return df

    def _read(self, start, end, server) -> tuple[list[str], list]:
        """The partitions' tables; if a writer replaced them meanwhile, the manifest is read
        again once (old generations are removed after a new manifest is published).
        """
        for attempt in (1, 2):
            paths = self.partitions(start, end, server)
            try:
                return paths, [pq.read_table(self.folder / p, schema=SESSION_SCHEMA) for p in paths]
            except FileNotFoundError:
                if attempt == 2:
                    raise StoreError(
                        f"{self.folder}: a session file the manifest lists is missing"
                    ) from None
                self.manifest = _load_manifest(self.folder)
            except (OSError, pa.ArrowInvalid) as err:
                raise StoreError(f"{self.folder}: a session file is unreadable: {err}") from None
        raise AssertionError("unreachable")


def _filter(frame: pl.DataFrame, **wanted) -> pl.DataFrame:
    for name, value in wanted.items():
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        if name == "peer":
            frame = frame.filter(pl.any_horizontal(pl.col(c).is_in(values) for c in _PEER_COLUMNS))
        else:
            frame = frame.filter(pl.col(name).is_in(values))
    return frame


def _parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def open_store(folder: str | os.PathLike[str]) -> Store:
    """Open a store written by ``ingest`` for reading (notebooks, reports)."""
    return Store(folder)


def read_store(
    folder: str | os.PathLike[str],
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    *,
    margin: timedelta = timedelta(0),
    now: datetime | None = None,
    **filters,
) -> pd.DataFrame:
    """Sessions of a store overlapping [since - margin, until] (see ``Store.sessions``).

    For findings over a window, pass ``margin=FINDINGS_MARGIN`` and keep the findings that
    reach into the window (``findings_in_window``).
    """
    return Store(folder).sessions(since, until, margin=margin, now=now, **filters)
