"""Times of mail-log lines in UTC: the year and zone that classic syslog leaves out.

Classic syslog (``Nov 27 06:00:01``), Postfix's own ``maillog_file`` and journald's default
output carry neither a year nor a zone. The year comes from ``year``, the year of the newest
line of each rotation family (``mail.log`` with ``mail.log.1``, ``mail.log.2.gz``), or by
default from each file's modification time (the year of its last line, as the file was written
then). Going backwards through the lines, a month that jumps forwards by more than half a year
(``Jan`` after ``Dec``, read backwards) is the New Year, so earlier lines get the year before.
The zone is ``zone`` (an IANA name such as ``Europe/Berlin``) or, by default, this machine's
local zone; in the hour a clock is put back, the earlier (summer-time) reading is taken.
RFC 3339 times with an offset need neither; RFC 3339 times without one take the zone only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

#: A month going back by more than this (Dec -> Jan) between lines is a New Year.
_NEW_YEAR_JUMP = 6


def zone_by_name(name: str | None) -> ZoneInfo | None:
    """The zone for ``--syslog-tz`` (None = the local zone); ValueError for an unknown name."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as err:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)") from (
            err
        )


def settle_times(
    events: pl.DataFrame,
    file_years: dict[int, int],
    *,
    year: int | None,
    zone: ZoneInfo | None,
    file_families: dict[int, int] | None = None,
) -> pl.DataFrame:
    """Add ``time`` (Datetime us, UTC) to events ordered as read (file by file, line by line).

    ``events`` has ``file`` (id), ``ts`` (UTC, lines with an offset), ``naive`` (RFC 3339
    without an offset) and ``mon``/``day``/``hms`` (syslog lines). ``file_years`` maps a file
    id to its modification year; ``file_families`` maps it to its rotation family (``mail.log``,
    ``mail.log.1``, ... are one), the stream whose newest line is in ``year`` when one is given.
    ``time`` is null for a line without a time (a pasted message without a prefix) or with an
    impossible date (``Feb 30``): those have ``bad_time`` true.
    """
    syslog = pl.col("mon").is_not_null()
    rows = events.with_row_index("_i")
    sys_rows = rows.filter(syslog).select("_i", "file", "mon")
    if sys_rows.height:
        if year is None:
            stream, base = "file", pl.col("file").replace_strict(file_years, return_dtype=pl.Int32)
        else:
            stream, base = "_family", pl.lit(year, pl.Int32)
        families = file_families or {}
        sys_rows = sys_rows.with_columns(
            _family=pl.col("file").replace_strict(families, default=0, return_dtype=pl.Int64)
        )
        month = pl.col("mon").cast(pl.Int16)
        jump = ((month.shift(1).over(stream) - month).fill_null(0) > _NEW_YEAR_JUMP).cast(pl.Int32)
        sys_rows = sys_rows.with_columns(_jump=jump)
        later = pl.col("_jump").sum().over(stream) - pl.col("_jump").cum_sum().over(stream)
        sys_rows = sys_rows.select("_i", _year=base - later)
        rows = rows.join(sys_rows, on="_i", how="left")
    else:
        rows = rows.with_columns(_year=pl.lit(None, pl.Int32))
    stamp = pl.format(
        "{}-{}-{} {}", pl.col("_year"), pl.col("mon"), pl.col("day"), pl.col("hms")
    ).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
    rows = rows.with_columns(_local=pl.coalesce(stamp, pl.col("naive")))
    rows = _to_utc(rows, zone)
    has_prefix = syslog | pl.col("naive").is_not_null() | pl.col("ts").is_not_null()
    return (
        rows.sort("_i")
        .with_columns(
            time=pl.coalesce("ts", "_utc"),
            bad_time=syslog & pl.col("_utc").is_null(),
        )
        .with_columns(bad_time=pl.col("bad_time") | (has_prefix & pl.col("time").is_null()))
        .drop("_i", "_year", "_local", "_utc")
    )


def _to_utc(rows: pl.DataFrame, zone: ZoneInfo | None) -> pl.DataFrame:
    """``_local`` (naive wall-clock time) -> ``_utc``, one zone lookup per distinct hour."""
    hours = rows.get_column("_local").dt.truncate("1h").drop_nulls().unique().to_list()
    offsets = {hour: _offset_seconds(hour, zone) for hour in hours}
    hour = pl.col("_local").dt.truncate("1h")
    offset = hour.replace_strict(
        list(offsets), list(offsets.values()), default=None, return_dtype=pl.Int64
    )
    utc = pl.col("_local") - pl.duration(seconds=offset)
    return rows.with_columns(_utc=utc.dt.replace_time_zone("UTC"))


def _offset_seconds(local: datetime, zone: ZoneInfo | None) -> int:
    """UTC offset of a wall-clock time in ``zone`` (None: this machine's zone)."""
    if zone is not None:
        offset = local.replace(tzinfo=zone, fold=0).utcoffset()
    else:
        try:
            offset = local.astimezone().utcoffset()
        except (OverflowError, OSError, ValueError):  # before 1970 on some platforms
            offset = timedelta(0)
    return int((offset or timedelta(0)).total_seconds())
