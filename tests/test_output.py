"""CSV and JSON Lines writers: cells made a column at a time are the cells the plain,
cell-by-cell rules give (``plain_value`` + ``_csv_cell`` + the csv module), for every kind
of column a table of ours holds, including hostile text."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from loganalyzer import output
from loganalyzer.output import _csv_cell, iter_records, plain_value, write_csv, write_jsonl

HOSTILE = [
    "=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "plain", "a,b", 'say "hi"', "two\nlines",
    "", None, "é ü 中",
]  # fmt: skip


def _table() -> pd.DataFrame:
    n = len(HOSTILE)
    arrow = pa.table(
        {
            "text": pa.array(HOSTILE, pa.large_string()),
            "count": pa.array([None, -5, 0, 7, 12, 1, 2, 3, 4, 5, 6, 8], pa.int64()),
            "flag": pa.array([True, False, None] * 4, pa.bool_()),
            "start_utc": pa.array(
                [
                    datetime(2026, 11, 26, 6, 0, i, i * 1000 if i % 2 else 0, tzinfo=UTC)
                    for i in range(n - 1)
                ]
                + [None],
                pa.timestamp("ms", tz="UTC"),
            ),
            "local": pa.array(
                [datetime(2026, 1, 1, 3, 4, 5, 120_000)] * (n - 1) + [None], pa.timestamp("us")
            ),
            "names": pa.array(
                [["a", None, "=b"], [], None] + [["x", "y"]] * (n - 3),
                pa.large_list(pa.large_string()),
            ),
            "ints": pa.array([[1, -2], None, []] + [[3]] * (n - 3), pa.list_(pa.int32())),
            "ratio": pa.array([0.5, None, float("nan"), -1.25] * 3, pa.float64()),
        }
    )
    df = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    df["numpy_ints"] = range(n)  # a column that is not Arrow-backed
    return df


def _reference_csv(df: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(df.columns)
    for row in df.itertuples(index=False, name=None):
        writer.writerow([_csv_cell(plain_value(v)) for v in row])
    return out.getvalue()


@pytest.mark.parametrize("batch", [1000, 5], ids=["one batch", "batches of 5 rows"])
def test_csv_cells_are_the_cell_by_cell_ones(batch, monkeypatch):
    monkeypatch.setattr(output, "CSV_BATCH", batch)
    monkeypatch.setattr(output, "RECORD_BATCH", batch)
    df = _table()
    out = io.StringIO()
    write_csv(df, out)
    assert out.getvalue() == _reference_csv(df)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert [r[0] for r in rows[1:6]] == ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", "'\tx"]
    assert rows[1][1:4] == ["", "true", "2026-11-26T06:00:00Z"]
    assert rows[2][1:4] == ["'-5", "false", "2026-11-26T06:00:01.001000Z"]
    assert rows[1][5:7] == ["a;;=b", "1;-2"]


def test_records_are_the_cell_by_cell_ones(monkeypatch):
    monkeypatch.setattr(output, "RECORD_BATCH", 5)
    df = _table()
    expected = [
        {c: plain_value(v) for c, v in zip(df.columns, row, strict=True)}
        for row in df.itertuples(index=False, name=None)
    ]
    assert list(iter_records(df)) == expected
    out = io.StringIO()
    write_jsonl(df, out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == json.loads(
        json.dumps(expected)
    )


def test_a_carriage_return_in_a_cell_is_quoted():
    df = pd.DataFrame({"text": pd.array(["a\rb"], dtype=pd.ArrowDtype(pa.string()))})
    out = io.StringIO()
    write_csv(df, out)
    assert out.getvalue() == 'text\n"a\rb"\n'


def test_an_empty_table_has_its_header():
    out = io.StringIO()
    write_csv(_table().iloc[:0], out)
    assert out.getvalue() == ",".join(_table().columns) + "\n"
