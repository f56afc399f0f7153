"""Small helpers for tests: session tables as plain records, log files written on the fly."""

from __future__ import annotations

import gzip
import importlib.util
import os
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from loganalyzer.output import iter_records

HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n"
    "#Log-type: SMTP {kind} Protocol Log\r\n#Date: 2026-11-26T06:00:00.000Z\r\n"
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
    "remote-endpoint,event,data,context\r\n"
)


def records(df: pd.DataFrame, base: Path | None = None, drop: tuple[str, ...] = ()) -> list[dict]:
    """Session rows as plain dicts; ``file`` made relative to ``base`` with ``/`` separators."""
    out = []
    for record in iter_records(df):
        if base is not None and record.get("file"):
            record["file"] = Path(os.path.relpath(record["file"], base)).as_posix()
        for column in drop:
            record.pop(column, None)
        out.append(record)
    return out


def write_log(path: Path, rows: list[str], kind: str = "Receive", gz: bool = False) -> Path:
    """Write an Exchange protocol log (BOM, header, CRLF) with the given CSV rows."""
    data = ("\ufeff" + HEADER.format(kind=kind) + "".join(r + "\r\n" for r in rows)).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


def row(
    time: str,
    cid: str,
    sid: str,
    seq: int,
    local: str,
    remote: str,
    event: str,
    data: str = "",
    context: str = "",
) -> str:
    """One protocol-log row, quoted the way Exchange quotes (only fields with , or ")."""

    def q(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if ("," in value or '"' in value) else value

    date = time if "T" in time else f"2026-11-26T{time}Z"
    fields = [date, cid, sid, str(seq), local, remote, event, data, context]
    return ",".join(q(f) for f in fields)


class Session:
    """Builds the rows of one session: increasing sequence numbers, 100 ms apart from ``start``."""

    def __init__(self, cid: str, sid: str, local: str, remote: str, start: str) -> None:
        self.cid, self.sid, self.local, self.remote = cid, sid, local, remote
        self.time = datetime.fromisoformat(f"2026-11-26T{start}+00:00")
        self.seq = 0
        self.rows: list[str] = []

    def add(self, event: str, data: str = "", context: str = "", local: str | None = None):
        stamp = self.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.time.microsecond // 1000:03d}Z"
        lep = self.local if local is None else local
        self.rows.append(
            row(stamp, self.cid, self.sid, self.seq, lep, self.remote, event, data, context)
        )
        self.seq += 1
        self.time += timedelta(milliseconds=100)
        return self


def load_corpus_generator():
    """benchmarks/generate_corpus.py as a module (tests make small corpora with it)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "generate_corpus.py"
    spec = importlib.util.spec_from_file_location("generate_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
