"""Write tables (sessions, later findings) as a terminal table, CSV, JSON Lines or Parquet.

Log content is attacker-controlled: CSV cells that a spreadsheet would run as a formula are
prefixed with ``'``, terminal text has control characters escaped, JSON is always valid. Files
are written to a temporary name beside the target and moved into place (atomic replace).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "jsonl", "parquet")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: The same starts as a regular expression (for whole columns).
_FORMULA_REGEX = r"^[=+\-@\t\r]"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: Columns shown by the terminal table (all columns go to csv/jsonl/parquet).
TABLE_COLUMNS = (
    "start_utc",
    "server",
    "direction",
    "connector",
    "remote_ip",
    "remote_host",
    "tls_version",
    "outcome",
    "fallback",
    "last_error",
)


def escape_terminal(text: str) -> str:
    """Make text safe to print: control characters and ANSI escapes become visible ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to a CSV cell that a spreadsheet would evaluate (``=cmd|...``)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def plain_value(value: object) -> object:
    """A cell as plain JSON data: ISO timestamps with Z, lists, None for missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        if value.tzinfo is not None:
            value = value.tz_convert("UTC") if isinstance(value, pd.Timestamp) else value
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "tolist"):
        return [plain_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


#: Rows converted at a time by ``iter_records`` (memory stays bounded on large tables).
RECORD_BATCH = 20_000


#: Rows written at a time by ``write_csv``.
CSV_BATCH = 50_000


def iter_records(df: pd.DataFrame) -> Iterator[dict]:
    """Rows as plain dicts (see ``plain_value``)."""
    columns = list(df.columns)
    for start in range(0, len(df), RECORD_BATCH):
        batch = plain_columns(df.iloc[start : start + RECORD_BATCH])
        for values in zip(*batch, strict=True):
            yield dict(zip(columns, values, strict=True))


def plain_columns(df: pd.DataFrame) -> list[list]:
    """Every column's cells as ``plain_value`` gives them, converted a column at a time
    (Arrow-backed columns in bulk: about ten times faster than cell by cell)."""
    return [_plain_column(df.iloc[:, i]) for i in range(df.shape[1])]


def _plain_column(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.ArrowDtype):
        arrow = pa.chunked_array(values.array.__arrow_array__())
        kind = arrow.type
        if pa.types.is_timestamp(kind) and kind.unit != "ns":  # ns: pandas keeps 9 digits
            if kind.tz is not None:
                arrow = arrow.cast(pa.timestamp(kind.unit, tz="UTC"))
            return [None if v is None else _iso(v) for v in arrow.to_pylist()]
        if pa.types.is_floating(kind):
            return [None if v is None or math.isnan(v) else v for v in arrow.to_pylist()]
        if _plain_arrow(kind):
            return arrow.to_pylist()
    return [plain_value(v) for v in values.tolist()]


def _plain_arrow(kind: pa.DataType) -> bool:
    """Arrow types whose Python values are already plain (text, integers, booleans, lists)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _plain_arrow(kind.value_type)
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def write_jsonl(df: pd.DataFrame, out: IO[str]) -> None:
    """One JSON object per line."""
    for record in iter_records(df):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _csv_cell(value: object) -> str:
    """A plain value (``plain_value``) as a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join("" if v is None else str(v) for v in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    return neutralise_formula(str(value))


def write_csv(df: pd.DataFrame, out: IO[str]) -> None:
    """CSV with a header; lists joined with ``;``; formula-like cells neutralised.

    Cells are made a column at a time (Polars for Arrow-backed text, numbers, booleans,
    times and lists; ``_csv_cell`` for anything else) and written in batches of rows.
    """
    for start in range(0, max(len(df), 1), CSV_BATCH):
        rows = df.iloc[start : start + CSV_BATCH]
        frame = pl.DataFrame([_csv_column(rows, i) for i in range(rows.shape[1])])
        out.write(frame.write_csv(include_header=start == 0, line_terminator="\n"))


def _csv_column(df: pd.DataFrame, index: int) -> pl.Series:
    """Column ``index`` as CSV cells (null for an empty cell: written unquoted)."""
    values = df.iloc[:, index]
    name = str(df.columns[index])
    text = None
    if isinstance(values.dtype, pd.ArrowDtype):
        column = pl.from_arrow(pa.chunked_array(values.array.__arrow_array__()))
        text = _csv_text(column.rename(name))
    if text is None:
        text = pl.Series(name, [_csv_cell(plain_value(v)) for v in values.tolist()], pl.String)
    formula = text.str.contains(_FORMULA_REGEX)
    return (
        pl.select(pl.when(text == "").then(None).when(formula).then("'" + text).otherwise(text))
        .to_series()
        .rename(name)
    )


def _csv_text(column: pl.Series) -> pl.Series | None:
    """The cells of a column as text, as ``_csv_cell`` writes them; None for the dtypes it
    does not do here (floats, nanosecond times, lists of other than text or integers)."""
    kind = column.dtype
    if kind in (pl.String, pl.Categorical) or kind.is_integer():
        return column.cast(pl.String)
    if kind == pl.Boolean:
        flag = pl.lit(column)
        return pl.select(pl.when(flag).then(pl.lit("true")).when(~flag).then(pl.lit("false")))[:, 0]
    if isinstance(kind, pl.Datetime) and kind.time_unit != "ns":
        stamp = column.dt.convert_time_zone("UTC") if kind.time_zone else column
        zone = "Z" if kind.time_zone else ""
        return pl.select(
            pl.when(stamp.dt.microsecond() != 0)
            .then(stamp.dt.strftime(f"%Y-%m-%dT%H:%M:%S%.6f{zone}"))
            .otherwise(stamp.dt.strftime(f"%Y-%m-%dT%H:%M:%S{zone}"))
        ).to_series()
    if isinstance(kind, pl.List) and (kind.inner == pl.String or kind.inner.is_integer()):
        items = pl.element().cast(pl.String).fill_null("")
        return column.list.eval(items).list.join(";")
    return None


#: Wider cells for the columns a person reads first.
_WIDE = {"title": 100, "cause": 70, "reason": 70}


def write_table(df: pd.DataFrame, out: IO[str], columns=TABLE_COLUMNS, width: int = 40) -> None:
    """A fixed-width text table of the main columns, safe for a terminal."""
    columns = [c for c in columns if c in df.columns]
    widths = [_WIDE.get(c, width) for c in columns]
    cells = [
        [_table_cell(v, w) for v, w in zip(row, widths, strict=True)]
        for row in df[columns].itertuples(index=False)
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _table_cell(value: object, width: int) -> str:
    value = plain_value(value)
    if value is None:
        text = "-"
    elif isinstance(value, list):
        text = ", ".join("-" if v is None else str(v) for v in value) or "-"
    elif isinstance(value, str) and value.endswith("Z") and "T" in value:
        text = value.replace("T", " ").removesuffix("Z")[:19]
    else:
        text = str(value)
    text = escape_terminal(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """pandas (Arrow dtypes) -> Arrow table without the pandas index."""
    return pa.Table.from_pandas(df, preserve_index=False)


@contextlib.contextmanager
def atomic_writer(path: Path, binary: bool = False):
    """Open a temporary file beside ``path``; on success move it over ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        mode = "wb" if binary else "w"
        kwargs = {} if binary else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write(df: pd.DataFrame, fmt: str, path: Path | None, table_columns=TABLE_COLUMNS) -> None:
    """Write ``df`` in ``fmt`` to ``path`` (atomically) or to stdout when ``path`` is None.

    ``table_columns``: the columns the terminal table shows.
    """
    if fmt == "parquet":
        if path is None:
            raise ValueError("parquet needs an output file (-o FILE)")
        with atomic_writer(path, binary=True) as handle:
            pq.write_table(to_arrow(df), handle)
        return
    if fmt == "table":
        writer = partial(write_table, columns=table_columns)
    else:
        writer = {"csv": write_csv, "jsonl": write_jsonl}[fmt]
    if path is None:
        writer(df, sys.stdout)
        return
    with atomic_writer(path) as handle:
        writer(df, handle)
