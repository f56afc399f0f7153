"""The command line, in process (typer's runner): formats, exit codes, messages, safety."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loganalyzer.cli import app
from tests.conftest import exchange_fixtures
from tests.helpers import Session, write_log

runner = CliRunner()


def _log(tmp_path, ehlo="mail.example.net"):
    s = Session(
        r"EX01\Default Frontend EX01",
        "08DE2D5A00000101",
        "10.0.0.5:25",
        "203.0.113.9:1",
        "06:00:00",
    )
    s.add("+").add(">", "220 ex01.corp.example.com ESMTP").add("<", f"EHLO {ehlo}")
    s.add("<", "MAIL FROM:<a@example.net>").add("-", "", "Remote")
    return write_log(tmp_path / "logs" / "RECV2026112606-1.LOG", s.rows)


@pytest.mark.parametrize(
    "args", [[], ["sessions"], ["certs"], ["findings"], ["ingest"], ["tlsrpt"]]
)
def test_help(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_jsonl_on_fixtures():
    folder = exchange_fixtures()
    result = runner.invoke(app, ["sessions", str(folder), "--format", "jsonl", "-q"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["session_id"] for x in lines] == [
        "08D50D3D9730A8D2",
        "08D675E58CA1DA38",
        "08D6EF29D1B8E590",
        "123453EC62278461",
    ]
    assert lines[0]["start_utc"] == "2017-10-07T04:42:56.804000Z"
    assert lines[3]["local_cert_sans"] == ["SERVER-HOSTNAME", "SERVER-HOSTNAME.DOMAIN.TEST"]
    assert "4 files, 32 rows, 4 sessions, 0 malformed rows" in result.stderr
    assert "skipped" not in result.stderr  # SOURCES.md is a note, not a log


def test_table_output_escapes_control_characters(tmp_path):
    _log(tmp_path, ehlo="evil\x1b[31mred\x07")
    result = runner.invoke(app, ["sessions", str(tmp_path / "logs")])
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\\x1b[31mred\\x07" in result.stdout
    assert "plaintext" in result.stdout


def test_csv_neutralises_formulas(tmp_path):
    _log(tmp_path, ehlo='=HYPERLINK("http://203.0.113.66")')
    out = tmp_path / "out" / "sessions.csv"
    result = runner.invoke(app, ["sessions", str(tmp_path / "logs"), "-f", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert text.splitlines()[0].startswith("source,server,role,direction,connector,session_id")


def test_parquet_round_trip_and_needs_output(tmp_path):
    _log(tmp_path)
    result = runner.invoke(app, ["sessions", str(tmp_path / "logs"), "-f", "parquet"])
    assert result.exit_code == 2 and "parquet needs -o FILE" in result.output
    out = tmp_path / "s.parquet"
    result = runner.invoke(
        app, ["sessions", str(tmp_path / "logs"), "-f", "parquet", "-o", str(out)]
    )
    assert result.exit_code == 0
    table = pq.read_table(out)
    assert table.num_rows == 1
    assert str(table.schema.field("start_utc").type) == "timestamp[us, tz=UTC]"


def test_nothing_readable_exits_2_without_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("not a log", "utf-8")
    result = runner.invoke(app, ["sessions", str(tmp_path)])
    assert result.exit_code == 2
    assert "nothing readable" in result.stderr and "notes.txt" in result.stderr
    assert "Traceback" not in result.output


def test_strict_stops_at_the_first_malformed_row(tmp_path):
    path = _log(tmp_path)
    path.write_bytes(path.read_bytes() + b"garbage line\r\n")
    result = runner.invoke(app, ["sessions", str(path), "-q"])
    assert result.exit_code == 0
    assert f"malformed: {path}:11: not a protocol-log row" in result.stderr
    result = runner.invoke(app, ["sessions", str(path), "--strict"])
    assert result.exit_code == 2
    assert f"{path}:11: not a protocol-log row" in result.stderr
    assert "Traceback" not in result.output


def test_since_accepts_iso_and_rejects_nonsense(tmp_path):
    _log(tmp_path)
    logs = str(tmp_path / "logs")
    result = runner.invoke(app, ["sessions", logs, "--since", "2026-11-26T07:00Z", "-f", "jsonl"])
    assert result.exit_code == 0 and result.stdout == ""
    result = runner.invoke(app, ["sessions", logs, "--since", "yesterday"])
    assert result.exit_code == 2 and "is not a time" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("loganalyzer ")
