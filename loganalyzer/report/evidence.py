"""Evidence: the log rows behind a finding's ``file:line`` references.

A finding's evidence points at the first row of each session involved; the report shows every
row of those sessions (capped), read again from the inputs that hold them, so nothing but the
referenced files is parsed a second time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd
import polars as pl

from loganalyzer.sources import Limits, ReadStats, find_logs, read_log
from loganalyzer.sources.files import READ_ERRORS, discover

#: Columns of an evidence table: where the row is and its raw protocol-log fields.
EVIDENCE_COLUMNS = ("file", "line", "date_time", "session_id", "event", "data", "context")
#: Rows shown per session: a long session keeps its first rows and its last ones (where the
#: error and the disconnect are).
FIRST_ROWS, LAST_ROWS = 8, 16


def split_ref(ref: str) -> tuple[str, int] | None:
    """``path:line`` -> (path, line); paths may hold ``:`` (``C:\\logs``). None if no line."""
    path, sep, line = ref.rpartition(":")
    if not sep or not line.isdigit():
        return None
    return path, int(line)


def session_keys(refs: Iterable[str], sessions: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Map each ``file:line`` reference to (file, session_id) through the session table."""
    wanted = {parsed: ref for ref in refs if (parsed := split_ref(ref)) is not None}
    if not wanted or sessions.empty:
        return {}
    index = {
        (f, int(line)): sid
        for f, line, sid in zip(
            sessions["file"], sessions["line"], sessions["session_id"], strict=True
        )
        if f is not None and not pd.isna(line)
    }
    return {ref: (key[0], index[key]) for key, ref in wanted.items() if key in index}


def session_rows(
    paths: Iterable[str | os.PathLike[str]],
    keys: Iterable[tuple[str, str]],
    limits: Limits | None = None,
) -> dict[tuple[str, str], pd.DataFrame]:
    """The rows of each (file, session_id), from the inputs under ``paths`` (columns
    ``EVIDENCE_COLUMNS``; ``date_time`` as logged; ``attrs["omitted"]``: middle rows left
    out). Sessions not found are left out."""
    by_file: dict[str, set[int]] = {}
    for file, session_id in keys:
        try:
            by_file.setdefault(file, set()).add(int(session_id, 16))
        except (TypeError, ValueError):
            continue
    found: dict[tuple[str, str], list[pl.DataFrame]] = {}
    if not by_file:
        return {}
    stats = ReadStats()
    for log in find_logs(paths, stats):
        ids = by_file.get(log.name)
        if not ids:
            continue
        for batch in read_log(log, stats, limits=limits or Limits()):
            rows = batch.rows.filter(pl.col("sid").is_in(list(ids)))
            for (sid,), part in rows.group_by(["sid"], maintain_order=True):
                found.setdefault((log.name, f"{sid:016X}"), []).append(part)
    return {key: _table(key, parts) for key, parts in found.items()}


def _table(key: tuple[str, str], parts: list[pl.DataFrame]) -> pd.DataFrame:
    rows = pl.concat(parts).sort("line")
    omitted = max(rows.height - FIRST_ROWS - LAST_ROWS, 0)
    if omitted:
        rows = pl.concat([rows.head(FIRST_ROWS), rows.tail(LAST_ROWS)])
    out = rows.select(
        file=pl.lit(key[0]),
        line=pl.col("line"),
        date_time=pl.col("dt"),
        session_id=pl.lit(key[1]),
        event=pl.col("ev"),
        data=pl.col("data"),
        context=pl.col("ctx"),
    )
    table = out.to_pandas()
    table.attrs["omitted"] = omitted
    return table


def raw_lines(
    refs: Iterable[tuple[str, int]], max_bytes: int = 64 * 1024
) -> dict[tuple[str, int], str]:
    """The text of the cited lines, as logged (for formats without a session-row reader, such
    as Postfix mail logs); lines longer than ``max_bytes`` are cut. Unreadable files are left
    out."""
    wanted: dict[str, set[int]] = {}
    for file, line in refs:
        wanted.setdefault(file, set()).add(line)
    out: dict[tuple[str, int], str] = {}
    paths = sorted(
        {file.split("!", 1)[0] for file in wanted if os.path.exists(file.split("!", 1)[0])}
    )
    if not paths:
        return out
    found = discover(paths)
    for log in found.inputs:
        lines = wanted.get(log.name)
        if not lines:
            continue
        last = max(lines)
        try:
            with log.open() as stream:
                for number, raw in enumerate(stream, start=1):
                    if number in lines:
                        text = raw[:max_bytes].decode("utf-8", "replace").rstrip("\r\n")
                        out[(log.name, number)] = text.lstrip("\ufeff")
                    if number >= last:
                        break
        except READ_ERRORS:
            continue
    return out
